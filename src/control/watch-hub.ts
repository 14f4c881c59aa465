import { push } from '../protocol/envelope.js';
import type { NodeServiceWatchPayload } from '../protocol/types.gen.js';
import { ProtocolError, type WireErrorCode } from '../protocol/errors.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { CatalogEvent } from './catalog-event.js';
import type { EventStream } from './catalog-store.js';
import { eventFrame, watchEventHead, type EventShape, type WebSocketFrame } from './frames.js';
import type { ControlMetrics } from './metrics.js';
import type { Sight } from '../protocol/visibility.js';
import type { ProjectChange, ProjectStore } from './projects.js';
import { eventBodyAsSeen, seesEvent } from './sight.js';

export type WatchRequest = NodeServiceWatchPayload;

/** Whose events a watch gets (SPEC §8): `sight` undefined for admins, who see everything; `projectId` of a user's session. */
export interface WatchScope {
  sight: Sight;
  projectId?: string;
  /** Whether the session's project was deleted since the attach (policy.ts `sessionProject`). */
  projectGone?: () => boolean;
  /**
   * The session held the project's token when the watch started: a new token alone may change what
   * it sees, so it ends the watch. Asked then, not at the change, which a rotation has already made
   * by the time the watch learns of it.
   */
  withProjectToken?: boolean;
}

interface Watch {
  id: string;
  connection: ConnectionPeer;
  nodeId: string | undefined;
  /** Whose events these are (SPEC §8): undefined for admins, who see everything. */
  sight: Sight;
  /** The project of a user's session: the watch ends when it is deleted or changes (a new token alone: only `withProjectToken`). */
  projectId: string | undefined;
  withProjectToken: boolean;
  lastSentMs: number;
  /** The head of its live event frames (see frames.ts). */
  liveHead: Buffer;
  shape: EventShape;
}

const watchKey = (connection: ConnectionPeer, watchId: string): string => `${connection.id}/${watchId}`;
const projectDeleted = (projectId: string): string => `project ${projectId} was deleted: the watch has ended`;
const projectNewToken = (projectId: string): string =>
  `project ${projectId} has a new project token (the one this session attached with may no longer count): read the catalog again and watch`;

export const DEFAULT_REPLAY_LIMIT = 25;
/** Progress frames after this much silence, so a filtered watcher can resume without replays. */
export const PROGRESS_AFTER_MS = 10_000;
/** A watcher whose socket holds more unsent bytes than this is too slow: its watch ends. */
export const SLOW_WATCHER_BYTES = 8 << 20;

/**
 * Watches (SPEC §6 Events): per watch, the ack, the replay (oldest first, `replay:true`), one
 * `synced` marker with `head_seq`, then live events and progress frames, all carrying `watch_id`.
 * Replay and registration happen in one synchronous step, and events reach the hub only once
 * durable and in seq order, so a watcher sees each matching event at most once, in order, with no
 * gap. A watcher that falls too far behind gets `resync_required` instead of a silent drop.
 */
export class WatchHub {
  #events: EventStream;
  #metrics: ControlMetrics;
  /** By connection id and watch id. */
  #watches = new Map<string, Watch>();
  /**
   * Watch ids count per connection (w1, w2, … on each): watchers whose watches have the same id
   * get byte-identical event frames, so the fan-out builds one frame for all of them.
   */
  #nextIdOf = new WeakMap<ConnectionPeer, number>();
  #timer: NodeJS.Timeout;

  /** `projects`: a deleted or changed project's watches end (whichever server of the store changed it). */
  constructor(events: EventStream, metrics: ControlMetrics, projects: Pick<ProjectStore, 'onChange'>) {
    this.#events = events;
    this.#metrics = metrics;
    events.onEvent((event) => this.#fanOut(event));
    projects.onChange((projectId, change) => this.#projectChanged(projectId, change));
    events.onGap((message) => {
      for (const watch of [...this.#watches.values()]) this.#resync(watch, `${message}; list again and watch from head_seq ${events.headSeq}`);
    });
    this.#timer = setInterval(() => this.#progress(), 1000);
    this.#timer.unref();
  }

  get size(): number {
    return this.#watches.size;
  }

  /**
   * Starts a watch: `ack` sends the reply frame (before anything else), then the replay, the
   * synced marker, and the watch is live. Throws `resync_required` when `since_seq` is older than
   * the retained history (which restarts after events lost in a crash) or ahead of the head. A
   * `since_seq` this server has not delivered yet (another server's, a moment ahead) is waited for
   * first; from there on the start is one synchronous step. Throws `not_found` when the session's
   * project was deleted meanwhile, as a running watch ends.
   */
  async watch(
    connection: ConnectionPeer,
    request: WatchRequest,
    { sight, projectId, projectGone, withProjectToken = false }: WatchScope,
    ack: (payload: Record<string, unknown>) => void,
  ): Promise<void> {
    if (request.since_seq !== undefined) {
      await this.#events.reach(request.since_seq);
      // Closed while waiting: drop() has run already, so nothing may be registered for it now.
      if (!connection.isOpen) return;
    }
    // Its project deleted while it waited: the deletion has ended the running watches already, so this one ends as they did.
    if (projectId !== undefined && projectGone?.()) throw new ProtocolError('not_found', projectDeleted(projectId));
    const ring = this.#events.retained();
    const head = this.#events.headSeq;
    const matches = (e: CatalogEvent): boolean => (request.node_id === undefined || e.node_id === request.node_id) && seesEvent(e, sight);
    let replay: readonly CatalogEvent[];
    const replayLimit = Math.min(request.replay_limit ?? DEFAULT_REPLAY_LIMIT, this.#events.ringCapacity);
    if (request.since_seq !== undefined) {
      // Ahead of the head: events this server cannot prove it delivered (lost in a crash, or another server's history).
      if (request.since_seq > head)
        throw new ProtocolError(
          'resync_required',
          `since_seq ${request.since_seq} is ahead of head_seq ${head}, so events after it may be lost: list again and watch from head_seq ${head}`,
          { field: '/since_seq' },
        );
      const after = this.#events.retainedAfter;
      if (request.since_seq < after) {
        throw new ProtocolError(
          'resync_required',
          `since_seq ${request.since_seq} is older than the retained history (every event after seq ${after} is kept; older ones were dropped or lost): list again and watch from head_seq ${head}`,
          { field: '/since_seq' },
        );
      }
      replay = ring.filter((e) => e.seq > (request.since_seq as number) && matches(e));
    } else replay = replayLimit === 0 ? [] : ring.filter(matches).slice(-replayLimit);

    const n = this.#nextIdOf.get(connection) ?? 1;
    this.#nextIdOf.set(connection, n + 1);
    const id = `w${n}`;
    const shape: EventShape = request.include === 'delta' ? 'delta' : 'full';
    ack({
      watch_id: id,
      enabled: true,
      ...(request.node_id === undefined ? {} : { node_id: request.node_id }),
      ...(request.include === undefined ? {} : { include: request.include }),
      replay_limit: replayLimit,
      replayed: replay.length,
      head_seq: head,
    });
    this.#metrics.watch.replayRequests.inc();
    const replayHead = watchEventHead(id, true);
    for (const event of replay) {
      const frame = eventFrame(replayHead, event, shape, eventBodyAsSeen(event, shape, sight));
      this.#metrics.watch.replayEvents.inc();
      this.#metrics.watch.replayBytes.inc(frame.payload.length);
      connection.sendFrame(frame);
    }
    connection.send(push('control.node_service_watch_synced', { watch_id: id, head_seq: head }));
    this.#watches.set(watchKey(connection, id), {
      id,
      connection,
      nodeId: request.node_id,
      sight,
      projectId,
      withProjectToken,
      lastSentMs: Date.now(),
      liveHead: watchEventHead(id, false),
      shape,
    });
    this.#metrics.watch.subscribers.set(this.#watches.size);
  }

  unwatch(connection: ConnectionPeer, watchId: string): void {
    if (!this.#watches.delete(watchKey(connection, watchId)))
      throw new ProtocolError('not_found', `no watch ${watchId} on this connection`, { field: '/watch_id' });
    this.#metrics.watch.subscribers.set(this.#watches.size);
  }

  /** The connection closed: its watches end with it. */
  drop(connection: ConnectionPeer): void {
    for (const [key, watch] of this.#watches) if (watch.connection === connection) this.#watches.delete(key);
    this.#metrics.watch.subscribers.set(this.#watches.size);
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #fanOut(event: CatalogEvent): void {
    this.#metrics.watch.fanoutEvents.inc();
    const now = Date.now();
    // Counted once per event, not per watcher: a counter update costs more than it seems at 100 watchers.
    let attempts = 0;
    let sent = 0;
    const frames = new Map<string, WebSocketFrame>();
    for (const watch of this.#watches.values()) {
      if ((watch.nodeId !== undefined && event.node_id !== watch.nodeId) || !seesEvent(event, watch.sight)) continue;
      attempts++;
      if (watch.connection.bufferedBytes > SLOW_WATCHER_BYTES) {
        this.#resync(watch, `watcher too slow: more than ${SLOW_WATCHER_BYTES} bytes unsent; watch again from seq ${event.seq - 1} or list again`);
        continue;
      }
      // Each shape of the event was serialized once; a frame only adds the head of its watch id, built once per id and shape.
      // A user session that may not see all of the event gets its own body, one per shape and project token (sight.ts).
      const seen = eventBodyAsSeen(event, watch.shape, watch.sight);
      const key = seen ? `${watch.shape}/${watch.id}/${watch.sight?.hasProjectToken === true}` : `${watch.shape}/${watch.id}`;
      let frame = frames.get(key);
      if (!frame) {
        frame = eventFrame(watch.liveHead, event, watch.shape, seen);
        frames.set(key, frame);
      }
      watch.connection.sendFrame(frame);
      watch.lastSentMs = now;
      sent++;
    }
    this.#metrics.watch.fanoutAttempts.inc(attempts);
    this.#metrics.watch.fanoutSent.inc(sent);
  }

  /**
   * The project is gone: the watches of its sessions end with `not_found` naming it, rather than
   * stay open and silent (their sight is empty now; a project made again under the id is another).
   * Its nodes, policy or token changed: they end with `resync_required`, since a watch brings no
   * event for a node its session may now see (or no longer sees) until that node changes. A new
   * token alone ends only the watches of sessions attached with a token: the others see as before.
   */
  #projectChanged(projectId: string, change: ProjectChange): void {
    const error =
      change === 'deleted'
        ? { code: 'not_found' as const, message: projectDeleted(projectId) }
        : change === 'token'
          ? { code: 'resync_required' as const, message: projectNewToken(projectId) }
          : {
              code: 'resync_required' as const,
              message: `project ${projectId} changed (its nodes or policy, or it got or lost its token): read the catalog again and watch`,
            };
    for (const watch of [...this.#watches.values()])
      if (watch.projectId === projectId && (change !== 'token' || watch.withProjectToken))
        this.#end(watch, change === 'deleted' ? 'project_deleted' : 'project_changed', error);
  }

  /** Ends a watch that missed events it should have had (a drop, counted as one). */
  #resync(watch: Watch, message: string): void {
    this.#metrics.watch.fanoutDropped.inc();
    this.#end(watch, 'resync_required', { code: 'resync_required', message });
  }

  /** Ends the watch with a pushed error naming it (`reason`: the label of acheron_watch_ended_total). */
  #end(watch: Watch, reason: 'resync_required' | 'project_deleted' | 'project_changed', error: { code: WireErrorCode; message: string }): void {
    this.#watches.delete(watchKey(watch.connection, watch.id));
    this.#metrics.watch.ended.inc({ reason });
    this.#metrics.watch.subscribers.set(this.#watches.size);
    watch.connection.send({ channel: 'control', type: 'control.error', id: null, ok: false, error: { ...error, watch_id: watch.id } });
  }

  #progress(): void {
    const now = Date.now();
    for (const watch of this.#watches.values()) {
      if (now - watch.lastSentMs >= PROGRESS_AFTER_MS) {
        watch.connection.send(push('control.node_service_watch_progress', { watch_id: watch.id, head_seq: this.#events.headSeq }));
        watch.lastSentMs = now;
      }
    }
  }
}
