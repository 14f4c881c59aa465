// Simulated catalog peers for event tests (no FUSE): nodes that join with a join token and send
// their own control.node_service_upsert frames, and watchers that resume with since_seq after a
// dropped connection, keeping every frame for the history validator.
import { applyDefaults } from '../../src/manifest/index.js';
import type { PublicNode, ServiceDescriptor } from '../../src/protocol/types.gen.js';
import { joinToken, session, type Frame, type RawPeer, type TestStore } from './control.js';
import { emitted, type EmittedEvent, type WatchFrame, type WatchRequest, type WatchSession } from './history-validator.js';
import { waitFor } from './process.js';

/** A catalog entry with every default applied; `extra` lands in capabilities (to vary or bulk it). */
export function service(nodeId: string, serviceId: string, version = '1', extra: Record<string, unknown> = {}): ServiceDescriptor {
  return applyDefaults({ service_id: serviceId, kind: 'test', version, capabilities: extra }, nodeId);
}

/** A node speaking the protocol itself: joins once, then reconnects with its node secret. */
/** An online node as the server publishes it (control.node_get), with `services` and any `fields` over the defaults. */
export function publicNode(nodeId: string, services: ServiceDescriptor[], fields: Partial<PublicNode> = {}): PublicNode {
  return {
    node_id: nodeId,
    node_name: nodeId,
    platform: {},
    labels: {},
    state: 'online',
    lease_expires_at_ms: 0,
    last_seen_ms: 0,
    joined_at_ms: 0,
    updated_ms: 1,
    seq: 0,
    services,
    ...fields,
  };
}

export class SimNode {
  readonly nodeId: string;
  /** The catalog it wants published: service id → version. */
  readonly services = new Map<string, string>();
  peer: RawPeer;
  #secret: string;

  private constructor(nodeId: string, peer: RawPeer, secret: string) {
    this.nodeId = nodeId;
    this.peer = peer;
    this.#secret = secret;
  }

  /** Joins with a fresh join token from `acheron token join` on the data dir or store (the join emits an `online` event). */
  static async join(url: string, store: string | TestStore, nodeId: string): Promise<SimNode> {
    const token = await joinToken(store);
    const peer = await session(url, { token });
    const joined = await peer.call<{ node_secret: string }>('control.node_join', { join_token: token, node_id: nodeId });
    return new SimNode(nodeId, peer, joined.node_secret);
  }

  /** Joined by an admin (no join token, no CLI process), then connected as the node itself. */
  static async provision(url: string, adminToken: string, nodeId: string): Promise<SimNode> {
    const admin = await session(url, { token: adminToken });
    try {
      const joined = await admin.call<{ node_secret: string }>('control.node_join', { join_token: 'admin-provisioned', node_id: nodeId });
      return new SimNode(nodeId, await session(url, { token: `node.${nodeId}.${joined.node_secret}` }), joined.node_secret);
    } finally {
      await admin.close();
    }
  }

  /** A new tunnel authenticated as `node.<id>.<secret>` (after a server restart or a close). */
  async reconnect(url: string): Promise<void> {
    this.peer.socket.terminate();
    this.peer = await session(url, { token: `node.${this.nodeId}.${this.#secret}` });
  }

  descriptors(extra: Record<string, unknown> = {}): ServiceDescriptor[] {
    return [...this.services].map(([id, version]) => service(this.nodeId, id, version, extra));
  }

  /** Sends the wanted catalog; resolves with the reply frame (or the error frame). */
  upsert(extra: Record<string, unknown> = {}): Promise<Frame> {
    return this.peer.request('control.node_service_upsert', { node_id: this.nodeId, services: this.descriptors(extra) });
  }

  /** An upsert that must succeed: returns whether it changed the catalog. */
  async publish(extra: Record<string, unknown> = {}): Promise<boolean> {
    const frame = await this.upsert(extra);
    if (frame.ok !== true) throw new Error(`upsert of ${this.nodeId} failed: ${JSON.stringify(frame.error)}`);
    return (frame.payload as { service_delta: { changed: boolean } }).service_delta.changed;
  }
}

interface OpenSession {
  request: WatchRequest;
  peer: RawPeer;
  ack: Frame;
  /** Closed by the watcher while still open, or lost with the server: its stream may stop anywhere. */
  cut: boolean;
}

/** The frames of one watch on a peer: its reply, then every frame naming its watch_id, in arrival order. */
export function watchFrames(peer: RawPeer, ack: Frame): WatchFrame[] {
  const watchId = (ack.payload as { watch_id?: string } | undefined)?.watch_id;
  // Pushes carry no request id; a reply that names the watch (unwatch) is not part of its stream.
  const pushed = (frame: Frame): boolean => frame.id === undefined || frame.id === null;
  return peer.frames.filter(
    (frame) =>
      frame === ack ||
      (pushed(frame) &&
        ((frame.payload as { watch_id?: string } | undefined)?.watch_id === watchId ||
          (frame.error as { watch_id?: string } | undefined)?.watch_id === watchId)),
  ) as WatchFrame[];
}

/** The furthest seq a watcher may resume after: its last event, or a synced or progress head_seq. */
export function learnedPosition(frames: readonly WatchFrame[]): number | undefined {
  let position: number | undefined;
  for (const frame of frames) {
    const payload = frame.payload as { seq?: number; head_seq?: number } | undefined;
    if (frame.ok !== true || !payload) continue;
    const seq = frame.type === 'control.node_service_event' ? payload.seq : frame.type === 'control.node_service_watch' ? undefined : payload.head_seq;
    if (typeof seq === 'number') position = Math.max(position ?? seq, seq);
  }
  return position;
}

/**
 * A watcher that survives reconnects: the first watch uses its request as given, every later one
 * resumes with since_seq = the learned position. Sessions whose ack never came are left out.
 */
export class ResumingWatcher {
  readonly name: string;
  readonly request: WatchRequest;
  /** Resumes refused with resync_required, each followed by a fresh watch (only with `relist`). */
  readonly resyncs: string[] = [];
  #token: string;
  #relist: boolean;
  #sessions: OpenSession[] = [];

  /** `relist`: a resume refused with resync_required watches afresh (the client's re-list) instead of throwing. */
  constructor(name: string, token: string, request: WatchRequest, options: { relist?: boolean } = {}) {
    this.name = name;
    this.#token = token;
    this.request = request;
    this.#relist = options.relist ?? false;
  }

  get sessions(): WatchSession[] {
    return this.#sessions.map((s) => ({ request: s.request, frames: watchFrames(s.peer, s.ack), cut: s.cut }));
  }

  get position(): number | undefined {
    let position: number | undefined;
    for (const s of this.#sessions) {
      const p = learnedPosition(watchFrames(s.peer, s.ack));
      if (p !== undefined) position = Math.max(position ?? p, p);
    }
    return position;
  }

  /** Every event payload received, in order (replays included). */
  get events(): Array<Record<string, unknown>> {
    return this.sessions.flatMap((s) => s.frames.filter((f) => f.type === 'control.node_service_event').map((f) => f.payload as Record<string, unknown>));
  }

  get current(): RawPeer | undefined {
    return this.#sessions.at(-1)?.peer;
  }

  /** Opens a connection and watches (first time: the request; then: resume after the learned position). */
  async connect(url: string): Promise<Frame> {
    const previous = this.#sessions.at(-1);
    if (previous) {
      // A session the server closed by itself was not cut: its stream must be whole.
      previous.cut ||= previous.peer.socket.readyState === previous.peer.socket.OPEN;
      previous.peer.socket.terminate();
    }
    const position = this.position;
    const { since_seq: _since, replay_limit: _limit, ...base } = this.request;
    let request: WatchRequest = this.#sessions.length === 0 || position === undefined ? this.request : { ...base, since_seq: position };
    const peer = await session(url, { token: this.#token });
    let ack = await peer.request('control.node_service_watch', request);
    if (this.#relist && ack.ok !== true && ack.error?.code === 'resync_required' && request.since_seq !== undefined) {
      this.resyncs.push(ack.error.message);
      request = { ...base, ...(this.request.replay_limit === undefined ? {} : { replay_limit: this.request.replay_limit }) };
      ack = await peer.request('control.node_service_watch', request);
    }
    if (ack.ok !== true) throw new Error(`${this.name}: watch refused: ${JSON.stringify(ack.error)}`);
    this.#sessions.push({ request, peer, ack, cut: false });
    return ack;
  }

  /** The server is about to be killed: the current session ends wherever its stream is then. */
  serverGone(): void {
    const current = this.#sessions.at(-1);
    if (current) current.cut = true;
  }

  /** Waits until the current watch has said synced. */
  async synced(): Promise<void> {
    const last = this.#sessions.at(-1);
    if (!last) throw new Error(`${this.name}: not watching`);
    await waitFor(() => watchFrames(last.peer, last.ack).some((f) => f.type === 'control.node_service_watch_synced'), {
      what: `${this.name} synced`,
      timeoutMs: 20_000,
    });
  }

  /** Waits until the watcher has learned a position at or beyond `seq`. */
  async reach(seq: number): Promise<void> {
    await waitFor(() => (this.position ?? -1) >= seq, { what: `${this.name} at seq ${seq} (now ${String(this.position)})`, timeoutMs: 20_000 });
  }

  /** Waits until the watcher has seen `count` distinct events (on etcd a seq is a revision, so counting seqs tells nothing). */
  async reachCount(count: number): Promise<void> {
    await waitFor(() => historyOf(this).length >= count, { what: `${this.name} with ${count} events (now ${historyOf(this).length})`, timeoutMs: 20_000 });
  }

  close(): void {
    this.current?.socket.terminate();
  }
}

/** The events a watcher saw (a reference watching everything), one per seq, in seq order. */
export function historyOf(watcher: ResumingWatcher): EmittedEvent[] {
  const bySeq = new Map<number, EmittedEvent>();
  for (const payload of watcher.events) {
    const event = emitted(payload);
    if (!bySeq.has(event.seq)) bySeq.set(event.seq, event);
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}
