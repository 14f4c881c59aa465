// The harness's own catalog watcher: an admin watch of delta events kept for the whole run (as every
// client of ours watches), its frames recorded as they came (for test/helpers/history-validator.ts) with their arrival times (offline and online
// events are timed from them).
import { ControlClient } from '../../src/protocol/control-client.js';
import type { ServerFrame } from '../../src/protocol/envelope.js';
import { emitted, type EmittedEvent, type WatchFrame, type WatchSession } from '../../test/helpers/history-validator.js';
import { waitFor } from '../../test/helpers/process.js';

export interface SeenEvent {
  seq: number;
  kind: string;
  node_id: string;
  receivedMs: number;
}

const EVENT = 'control.node_service_event';

export class CatalogWatcher {
  readonly session: WatchSession;
  readonly events: SeenEvent[] = [];
  #client: ControlClient;

  private constructor(client: ControlClient, session: WatchSession) {
    this.#client = client;
    this.session = session;
  }

  /** Watches from now on (no replay): the ack, then every frame of the watch. */
  static async start(url: string, token: string): Promise<CatalogWatcher> {
    const frames: WatchFrame[] = [];
    let watcher: CatalogWatcher | undefined;
    const client = await ControlClient.connect({
      url,
      token,
      onPush: (frame: ServerFrame) => {
        frames.push(frame as WatchFrame);
        if (frame.ok && frame.type === EVENT) {
          const { seq, kind, node_id } = frame.payload as Omit<SeenEvent, 'receivedMs'>;
          watcher?.events.push({ seq, kind, node_id, receivedMs: Date.now() });
        }
      },
    });
    const request = { replay_limit: 0, include: 'delta' as const };
    const ack = await client.request('control.node_service_watch', request);
    // The ack precedes every push of its watch on the wire, so it goes first.
    frames.unshift({ type: 'control.node_service_watch', ok: true, payload: ack });
    watcher = new CatalogWatcher(client, { request, frames });
    return watcher;
  }

  get headSeq(): number {
    return this.events.at(-1)?.seq ?? 0;
  }

  /** The first event after `afterSeq` that matches, waiting at most `timeoutMs`. */
  waitForEvent(what: string, afterSeq: number, match: (event: SeenEvent) => boolean, timeoutMs: number): Promise<SeenEvent> {
    return waitFor(() => this.events.find((e) => e.seq > afterSeq && match(e)), { what, timeoutMs, intervalMs: 20 });
  }

  close(): void {
    this.#client.terminate();
  }
}

/** Every event the server still holds, from seq 1, in seq order, as delta events: the reference a watcher's view is checked against. */
export async function allEvents(url: string, token: string): Promise<EmittedEvent[]> {
  const events: EmittedEvent[] = [];
  let synced = false;
  const client = await ControlClient.connect({
    url,
    token,
    onPush: (frame: ServerFrame) => {
      if (frame.ok && frame.type === EVENT) events.push(emitted(frame.payload as Record<string, unknown>));
      else if (frame.ok && frame.type === 'control.node_service_watch_synced') synced = true;
    },
  });
  try {
    await client.request('control.node_service_watch', { since_seq: 0, include: 'delta' });
    await waitFor(() => synced, { what: 'the replay of every event', timeoutMs: 30_000 });
    return events;
  } finally {
    client.terminate();
  }
}
