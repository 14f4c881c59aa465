import { ControlClient } from '../protocol/control-client.js';
import { ReconnectLoop } from '../protocol/reconnect-loop.js';
import { CatalogElsewhere, noticeText } from '../protocol/catalog-elsewhere.js';
import { payloadOf, type ServerFrame } from '../protocol/envelope.js';
import { ProtocolError } from '../protocol/errors.js';
import { ServerFrameCheck } from '../protocol/server-frames.js';
import type { CatalogDeltaPayload, PublicNode, SessionAttachReply } from '../protocol/types.gen.js';
import { FsError } from '../errors/errno.js';
import { CatalogMirror } from './catalog-mirror.js';
import { eventNodeId, readNode, refreshLeases, resumeWatch, unwatch, watchFromNow } from './catalog-requests.js';
import { Rereads } from './catalog-rereads.js';
import { RelayLog, relayOnce, type RelayOperation } from './relay-call.js';
import { CatalogReach } from './catalog-reach.js';
import { StartAttempts } from './start-attempts.js';
import { tokenFor, type WorldCatalogOptions } from './world-catalog-options.js';

/**
 * The catalog a WorldFS mount shows, kept current from the control server (SPEC §9): the mount is itself a watcher, of delta events.
 * On every connection it starts a watch first and then reads each node (`node_get {view: "stored"}`, which says the seq it
 * reflects); an event of a node being read waits for the read and applies if it is newer. After that each event changes only what it
 * names (`CatalogMirror`); one of a node it does not know makes it read that node (gone by then, not_found: the events before the
 * answer go with it), and one that does not fit makes it read everything again on a new connection. A watch the server ends with
 * `resync_required` (the session's project changed, or the watch fell behind) is attached and read again on the same connection, so
 * relays in flight go on; so is a new project token (`reattach`), and a session refused meanwhile waits on it, as on a new connection
 * once the mount is live (catalog-rereads.ts). While the connection is down, `connected` is false (reads fail with ENOTCONN) and it
 * reconnects, to the next server of its list (Failover: jittered, then backoff once every server failed). A reconnect resumes the
 * watch with `since_seq` after the last position it learned (event, synced or progress head), on whichever server, without reading
 * anything again; only when refused (`resync_required`), or the last connection left reads unfinished, does it read everything.
 */
export class WorldCatalog {
  readonly #options: WorldCatalogOptions;
  readonly #relayLog: RelayLog;
  readonly #check: ServerFrameCheck;
  #mirror = new CatalogMirror();
  /** The mirror holds every event up to this seq (undefined: it must be read again before it is followed). */
  #position: number | undefined;
  #reconnect: ReconnectLoop;
  /** Where to go when the server's store is lost (its catalog stops changing). */
  #elsewhere: CatalogElsewhere;
  #client: ControlClient | undefined;
  /** Attaches the session again on the connection that follows events now (its project token changed). */
  #reattach: ((why: string) => void) | undefined;
  #grant: SessionAttachReply | undefined;
  #reach = new CatalogReach();
  #firstSync: Promise<void>;
  #everSynced = false;
  #synced!: () => void;
  readonly #start: StartAttempts;

  constructor(options: WorldCatalogOptions) {
    this.#options = options;
    this.#relayLog = new RelayLog(options.log);
    this.#check = new ServerFrameCheck(options.schemas, { events: 'delta' });
    const start = (this.#start = new StartAttempts(options.urls.length));
    this.#reconnect = new ReconnectLoop({
      urls: options.urls,
      backoff: { firstMs: options.backoffMs ?? 500, maxMs: options.backoffMaxMs ?? 10_000 },
      session: (url) => this.#session(url),
      failed: (url, error) => {
        this.#reach.why = error instanceof ProtocolError ? `${url}: ${error.code}: ${error.message}` : `${url}: ${(error as Error).message}`;
        // Before the first full read, what ends the start is start()'s to report, in one line, not a log line's too.
        if (!this.#everSynced) start.failed(url, error);
        this.#options.log[this.#everSynced ? 'warn' : 'debug']({ err: (error as Error).message, url }, 'control server connection failed');
      },
      // A move keeps the catalog shown while the next server resumes (relays meanwhile wait for it: CatalogReach).
      ended: () => void (this.#elsewhere.takeMoving() || this.#reach.available(this.#reach.why)),
      beforePause: () => {
        if (!this.#everSynced && this.#reconnect.roundFailed) start.roundFailed();
      },
    });
    this.#elsewhere = new CatalogElsewhere({
      urls: options.urls,
      connect: async (url, handshakeTimeoutMs) => ControlClient.connect({ url, token: await tokenFor(this.#options), check: this.#check, handshakeTimeoutMs }),
      loop: this.#reconnect,
      say: (notice) =>
        options.log[notice.kind === 'back' ? 'info' : 'warn']({ url: notice.from }, noticeText(notice, 'the catalog shown does not change until it is back')),
      backoffMs: options.backoffMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 10_000,
    });
    this.#firstSync = new Promise((resolve) => (this.#synced = resolve));
  }

  get connected(): boolean {
    return this.#reach.shown;
  }

  /** Why the catalog is not available now (for ENOTCONN messages and logs). */
  get lastError(): string {
    return this.#reach.why;
  }

  /** The current connection, the relay session its handles belong to (a node releases them when it ends); none between two. */
  readonly link = (): ControlClient | undefined => this.#client;
  get changedMs(): number {
    return this.#reach.changedMs;
  }

  /** The project session's grant (what `control.session_attach` says it may do: `allowed` or the refusal), or undefined for an admin token (sees everything). */
  get grant(): SessionAttachReply | undefined {
    return this.#grant;
  }

  nodeIds(): string[] {
    return this.#mirror.nodeIds();
  }

  node(nodeId: string): PublicNode | undefined {
    return this.#mirror.node(nodeId);
  }

  /** Another object once the node retired the service's runtime (CatalogMirror.incarnation); undefined while it is not in the catalog. */
  incarnation(nodeId: string, serviceId: string): object | undefined {
    return this.#mirror.incarnation(nodeId, serviceId);
  }

  /**
   * One operation on a node's tree, relayed through the control server (SPEC §9). ENOTCONN at once
   * while the control server is out of reach (during a move, once the next server is not there
   * within MOVE_WAIT_MS), EHOSTUNREACH at once when the node is offline; otherwise the node's own
   * errno, by name (`relayOnce`: never retried, bounded).
   */
  async relay(nodeId: string, operation: RelayOperation): Promise<Record<string, unknown>> {
    const client = await this.#reach.relayClient();
    if (this.#mirror.node(nodeId)?.state === 'offline') throw new FsError('EHOSTUNREACH', `node ${nodeId} is offline`);
    return relayOnce(client, nodeId, operation, this.#relayLog);
  }

  /**
   * Connects and keeps the catalog current. Resolves after the first full read; rejects when that
   * fails (bad token, project refused, server out of reach). Later disconnects are retried.
   */
  start(): Promise<void> {
    return Promise.race([this.#firstSync, this.#reconnect.start()]);
  }

  /** Connects again at once, ending the current connection or a pause between attempts: the credentials changed. */
  reconnect(reason: string): void {
    this.#options.log.info({ reason }, 'reconnecting');
    if (this.#client) this.#client.terminate();
    else this.#reconnect.wake();
  }

  /** The project token changed: attached again on the live connection, so files open on it stay valid; else as `reconnect`. */
  reattach(reason: string): void {
    if (this.#reattach) this.#reattach(reason);
    else this.reconnect(reason);
  }

  async stop(): Promise<void> {
    this.#elsewhere.stop();
    this.#reconnect.stop();
    this.#client?.terminate();
    await this.#reconnect.start().catch(() => undefined);
  }

  /** One connection, from connect to close: a resumed watch, or a watch and a full read. */
  async #session(url: string): Promise<void> {
    // Kept until this connection says otherwise: an attempt that fails to connect loses nothing.
    let mirror = this.#position === undefined ? new CatalogMirror() : this.#mirror;
    let position = this.#position;
    /** Nodes being read: the events that came meanwhile (applied once the read is in) and the read. */
    let reading = new Map<string, { events: CatalogDeltaPayload[]; done: Promise<void> }>();
    let client: ControlClient | undefined;
    let cut: string | undefined;
    /** Set once this connection follows events: a watch the server ends after that is read again in place. */
    let following = false;
    let watchId: string | undefined;
    const learned = (seq: number): void => {
      position = Math.max(position ?? seq, seq);
    };
    /** The watch is cut short: connect again; a deleted project (`gone`) shows nothing meanwhile (ENOTCONN). Not once moved (retired): its relays go on. */
    const resync = (why: string, gone = false): void => {
      if (client?.retired) return;
      cut ??= why;
      if (gone) this.#mirror = mirror = new CatalogMirror();
      this.#options.log.warn({ reason: why }, gone ? 'project gone: nothing shown until it is made again' : 'catalog out of step: reading it again');
      client?.terminate();
    };
    const apply = (event: CatalogDeltaPayload): void => {
      const outcome = mirror.apply(event);
      if (outcome === 'mismatch') resync(`event seq ${event.seq} of node ${event.node_id} does not fit the catalog read`);
      else if (outcome === 'unknown node')
        read(event.node_id, event).catch((error: unknown) => resync(`reading node ${event.node_id}: ${(error as Error).message}`));
      else if (outcome === 'applied') {
        this.#reach.changed();
        this.#options.log.debug(
          { seq: event.seq, node_id: event.node_id, kind: event.kind, changed: event.changed_services.length, removed: event.service_delta.removed.length },
          'delta event applied',
        );
      }
    };
    /**
     * Reads one node (once however often asked); events that come meanwhile wait and apply after
     * it, those it reflects as stale. A node gone (not_found) settles those it covers instead. A
     * read answered after the catalog was read again (readAll) belongs to the mirror it was for: dropped.
     */
    const read = (nodeId: string, first?: CatalogDeltaPayload): Promise<void> => {
      const busy = reading.get(nodeId);
      if (busy) return busy.done;
      const [into, pending] = [mirror, reading];
      const events = first ? [first] : [];
      const done = readNode(client as ControlClient, nodeId, events, into, () => mirror).then((queued) => {
        pending.delete(nodeId);
        if (into !== mirror) return;
        this.#reach.changed();
        for (const event of queued) apply(event);
      });
      pending.set(nodeId, { events, done });
      return done;
    };
    /** A new watch, then every node: the mirror shown once all is read, with the `grant` it was read under (relays go on meanwhile). */
    const readAll = async (grant: SessionAttachReply | undefined): Promise<void> => {
      mirror = new CatalogMirror(this.#mirror);
      reading = new Map();
      position = undefined;
      await unwatch(client as ControlClient, watchId);
      watchId = await watchFromNow(client as ControlClient);
      const listed = await (client as ControlClient).request<{ nodes: Array<{ node_id: string }> }>('control.node_list');
      await Promise.all(listed.nodes.map((n) => read(n.node_id)));
      if (!(client as ControlClient).retired) [this.#grant, this.#mirror] = [grant, mirror];
      this.#reach.changed();
    };
    const rereads = new Rereads(this.#options, {
      client: () => client as ControlClient,
      readAll: async (grant) => (await readAll(grant), mirror.nodeIds().length),
      available: (up) => void (client?.retired || this.#reach.available(up)),
      resync,
    });
    client = await ControlClient.connect({
      url,
      ...(this.#everSynced ? {} : { handshakeTimeoutMs: this.#start.handshakeTimeoutMs }),
      token: await tokenFor(this.#options),
      check: this.#check,
      // A malformed event is dropped and its node read again (so the mirror misses nothing it said); any other bad push (a marker, an error) may hide a lost watch: everything is read again.
      onInvalidPush: (error, frame) => {
        this.#options.log.error({ problems: error.problems.map((p) => p.message) }, `bad frame from the control server, dropped: ${error.message}`);
        const nodeId = eventNodeId(frame);
        if (nodeId === undefined) resync(`bad frame from the control server: ${error.message}`);
        else read(nodeId).catch((readError: unknown) => resync(`reading node ${nodeId}: ${(readError as Error).message}`));
      },
      onPush: (frame: ServerFrame) => {
        if (frame.ok && frame.type === 'control.node_service_event') {
          const event = payloadOf<CatalogDeltaPayload>(frame);
          learned(event.seq);
          const busy = reading.get(event.node_id);
          if (busy) busy.events.push(event);
          else apply(event);
        } else if (frame.ok && (frame.type === 'control.node_service_watch_synced' || frame.type === 'control.node_service_watch_progress'))
          learned((frame.payload as { head_seq: number }).head_seq);
        else if (frame.ok && frame.type === 'control.store_unavailable')
          void this.#elsewhere.notice(url, client as ControlClient, (frame.payload as { reason: string }).reason);
        // A watch the server ended follows nothing more: not_found, the project was deleted; resync_required, read again.
        else if (!frame.ok && frame.error.watch_id !== undefined) {
          const why = `${frame.error.code}: ${frame.error.message}`;
          if (frame.error.code === 'not_found' || !following) resync(why, frame.error.code === 'not_found');
          else rereads.watchEnded(why);
        }
      },
    });
    this.#client = client;
    try {
      // A session that may now see otherwise (the project's nodes, actions or token changed) reads
      // everything again: a resumed watch brings no event for a node it may see or no longer sees.
      const resumed = await rereads.first(this.#everSynced, async (grant) => {
        const sameSight = JSON.stringify(this.#grant) === JSON.stringify(grant);
        watchId = position !== undefined && sameSight ? await resumeWatch(client as ControlClient, position, this.#options.log) : undefined;
        return watchId !== undefined || (await readAll(grant), false);
      });
      // Resumed, this.#mirror and this.#grant stay as they were: the kept mirror (`mirror` above), which the replayed events update.
      [following, this.#reattach] = [true, (why: string) => rereads.newToken(why)];
      if (!client.retired) this.#reach.attached(client);
      this.#reconnect.succeeded();
      this.#elsewhere.began();
      if (resumed !== undefined) {
        this.#everSynced = true;
        this.#reach.available(true);
        this.#options.log.info(
          { url, nodes: mirror.nodeIds().length, resumed_after: resumed ? position : undefined },
          resumed ? 'watch resumed; following events' : 'catalog read; following events',
        );
        this.#synced();
      }
      const refresh = setInterval(() => void refreshLeases(client as ControlClient, () => this.#mirror, this.#options.log), this.#options.refreshMs ?? 5000);
      try {
        await client.closed;
      } finally {
        clearInterval(refresh);
        rereads.stop();
      }
      this.#reach.why = cut ?? `the connection to ${url} closed`;
    } finally {
      if (!client.retired) client.terminate();
      [this.#client, this.#reattach] = [undefined, undefined];
      this.#reach.attached(undefined);
      // The next connection resumes after `position` only if the mirror shown holds everything up to
      // it: the one followed here, or the one kept from before while its resume replayed, in order.
      this.#position = mirror === this.#mirror && cut === undefined && reading.size === 0 ? position : undefined;
    }
  }
}
