import type { CatalogDeltaPayload } from '../protocol/types.gen.js';
import { ControlClient } from '../protocol/control-client.js';
import { Failover } from '../protocol/control-urls.js';
import { payloadOf, type ServerFrame } from '../protocol/envelope.js';
import { ProtocolError } from '../protocol/errors.js';
import { attachProject, frameCheck } from './client-connection.js';
import { SchemaError } from '../protocol/schemas.js';
import { resolveClient } from './client-options.js';

/** `control.node_service_event` as this command's watch receives it: the delta shape. */
type EventPayload = CatalogDeltaPayload & { watch_id: string; replay?: boolean };

export interface WatchArgs {
  node_id?: string | undefined;
  'replay-limit'?: number | undefined;
  since?: number | undefined;
  json: boolean;
  project?: string | undefined;
  'project-token-file'?: string | undefined;
  'control-url'?: string | readonly string[] | undefined;
  token?: string | undefined;
  'token-file'?: string | undefined;
}

const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 10_000;
/** Whole rounds over every URL that fail in a row before the command gives up (about 15 s of backoff). */
const GIVE_UP_ROUNDS = 5;

/** One readable line per event: seq, time, node, kind, and the services it touched. */
export function formatEvent(e: EventPayload): string {
  const d = e.service_delta;
  const parts = [
    ...d.added.map((s) => `+${s.service_id}@${s.version}`),
    ...d.updated.map((s) => `~${s.service_id}@${s.previous_version}->${s.version}`),
    ...d.removed.map((s) => `-${s.service_id}@${s.version}`),
  ];
  return `${String(e.seq).padStart(6)} ${new Date(e.timestamp_ms).toISOString()} ${e.node_id} ${e.kind}${e.replay ? ' (replay)' : ''}${parts.length ? ' ' + parts.join(' ') : ''}`;
}

/**
 * `acheron node watch`: the live catalog event stream, as delta events (`include: "delta"`): a line
 * per event, or with `--json` each event as received (node meta, seq, kind, timestamp_ms,
 * service_delta, and `changed_services`: the descriptors of the added and updated services).
 * Reconnects by itself and resumes after the last seq it printed (or the last progress head), so
 * nothing is printed twice and nothing is skipped; `resync_required` starts over from the replay
 * window, saying so on stderr.
 */
export async function runWatchCommand(args: WatchArgs, out: NodeJS.WritableStream, err: NodeJS.WritableStream, stop: Promise<void>): Promise<number> {
  const { urls, token } = await resolveClient(args);
  const failover = new Failover(urls, { firstMs: RECONNECT_FIRST_MS, maxMs: RECONNECT_MAX_MS });
  const failures = new Map<string, string>();
  let failedRounds = 0;
  let since = args.since;
  let stopped = false;
  void stop.then(() => (stopped = true));
  const check = await frameCheck('delta');
  /** A frame that failed the check: the command stops rather than print past it (every server would send the same). */
  let badFrame: SchemaError | undefined;
  while (!stopped) {
    let client: ControlClient | undefined;
    let resync = false;
    try {
      client = await ControlClient.connect({
        url: failover.current,
        token,
        check,
        onInvalidPush: (error) => {
          badFrame = error;
          client?.terminate();
        },
        onPush: (frame: ServerFrame) => {
          if (frame.ok && frame.type === 'control.node_service_event') {
            const event = payloadOf<EventPayload>(frame);
            since = event.seq;
            out.write((args.json ? JSON.stringify(event) : formatEvent(event)) + '\n');
          } else if (frame.ok && (frame.type === 'control.node_service_watch_progress' || frame.type === 'control.node_service_watch_synced')) {
            since = Math.max(since ?? 0, (frame.payload as { head_seq: number }).head_seq);
          } else if (!frame.ok && frame.error.code === 'resync_required') {
            err.write(`acheron node watch: ${frame.error.message}; starting over from the replay window\n`);
            resync = true;
            client?.terminate();
          }
        },
      });
      await attachProject(client, args);
      const request: Record<string, unknown> = { include: 'delta' };
      if (args.node_id !== undefined) request.node_id = args.node_id;
      if (since !== undefined) request.since_seq = since;
      else if (args['replay-limit'] !== undefined) request.replay_limit = args['replay-limit'];
      await client.request('control.node_service_watch', request);
      failover.succeeded();
      failures.clear();
      failedRounds = 0;
      await Promise.race([client.closed, stop]);
      if (badFrame) throw badFrame;
      if (stopped) {
        await client.close();
        return 0;
      }
      if (!resync) err.write(`acheron node watch: connection to ${failover.current} lost; reconnecting and resuming after seq ${since ?? 0}\n`);
    } catch (error) {
      if (error instanceof SchemaError) {
        err.write(`acheron node watch: bad frame from the control server: ${error.message}\n`);
        client?.terminate();
        return 1;
      }
      if (error instanceof ProtocolError && error.code === 'forbidden') {
        err.write(
          `acheron node watch: refused: ${error.message}\nhint: user watches need ACHERON_NODE_SERVICE_WATCH_ALLOW_USER=true on the server and --project P (with --project-token-file when observe needs the token); admins can watch with an admin token\n`,
        );
        return 1;
      }
      // A bad request fails the same way on every retry.
      if (error instanceof ProtocolError && (error.code === 'unauthorized' || error.code === 'invalid_payload')) {
        err.write(`acheron node watch: ${error.message}\n`);
        return 1;
      }
      if (error instanceof ProtocolError && error.code === 'resync_required') {
        err.write(`acheron node watch: ${error.message}; starting over from the replay window\n`);
        resync = true;
      } else failures.set(failover.current, (error as Error).message);
      client?.terminate();
    }
    if (resync) {
      since = undefined;
      continue;
    }
    const from = failover.current;
    const delay = failover.failed();
    if (failover.roundFailed && ++failedRounds >= GIVE_UP_ROUNDS) {
      err.write(
        `acheron node watch: no control server answered in ${GIVE_UP_ROUNDS} rounds: ${[...failures].map(([url, why]) => `${url}: ${why}`).join('; ')}\n`,
      );
      return 1;
    }
    err.write(`acheron node watch: ${failures.get(from) ?? `${from} closed the connection`}; trying ${failover.current} in ${delay} ms\n`);
    await Promise.race([new Promise((resolve) => setTimeout(resolve, delay)), stop]);
  }
  return 0;
}
