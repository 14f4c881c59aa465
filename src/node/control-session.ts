import type { Logger } from 'pino';
import { ControlClient, NoReplyError } from '../protocol/control-client.js';
import { isFinalRefusal } from '../protocol/connect-any.js';
import { ReconnectLoop } from '../protocol/reconnect-loop.js';
import { ProtocolError } from '../protocol/errors.js';
import type { LeaseRefreshReply, NodeJoinReply, NodeLabels, NodePlatform, ServiceDescriptor } from '../protocol/types.gen.js';
import type { Schemas } from '../protocol/schemas.js';
import { ServerFrameCheck } from '../protocol/server-frames.js';
import type { RelayServer } from './relay-server.js';
import { nodePushes } from './control-pushes.js';
import { nodeBearer, readNodeCredentials, saveNodeCredentials } from './node-credentials.js';
import { LeaseElsewhere, TRIAL_HANDSHAKE_MS, type Refreshed } from './lease-elsewhere.js';
import { CatalogPublisher, CATALOG_CHECK_MS } from './catalog-publisher.js';

export type ControlState = 'standalone' | 'connecting' | 'joining' | 'connected' | 'disconnected';

export interface ControlSessionOptions {
  /** The control servers, tried in turn (servers of one store share the node's identity and lease). */
  urls: readonly string[];
  nodeId: string;
  stateFile: string;
  /** The join token, read when the node has no credentials yet (or they were rejected). */
  joinToken: () => Promise<string | undefined>;
  /** The catalog this node publishes now (descriptors with live state overlaid). */
  catalog: () => ServiceDescriptor[];
  node: { node_name: string; platform: NodePlatform; labels: NodeLabels };
  backoffMs: number;
  backoffMaxMs: number;
  log: Logger;
  /** Every frame the server sends is checked against docs/schemas before the session reads it. */
  schemas: Schemas;
  /** Runs WorldFS operations the server relays to this node (SPEC §9). */
  relay?: RelayServer;
}

/** How soon a lease refresh the server refused is tried again (its store may be back by then). */
const REFUSED_REFRESH_RETRY_MS = 2000;
/** The shortest refresh period: a third of the shortest lease a server takes (1000 ms) is above it. */
const MIN_REFRESH_MS = 250;

/**
 * The node's one WebSocket to the control server (SPEC §6): joins once, then authenticates as
 * `node.<id>.<secret>`; upserts its catalog after every (re)connect and after every real change,
 * never otherwise; refreshes its lease every third of the TTL (a refused refresh sooner); reconnects with exponential backoff
 * and jitter, each time to the next server of its list (Failover): on another server of the same
 * store it is the same node, with the same secret and lease, so back within the grace period it
 * never shows offline. A server whose store is lost (`control.store_unavailable`, a refresh refused
 * `unavailable`) is left for another of the list that refreshes the lease (LeaseElsewhere), if any.
 * The local tree keeps working whatever happens here.
 */
export class NodeControlSession {
  state: ControlState = 'connecting';
  /**
   * Why the link is down (the last failed attempt, or how the connection closed); null while
   * connected. A refusal of the node's credentials stays until a session connects: another
   * server's connect error after it would hide what the operator must fix.
   */
  #linkError: string | null = null;
  #refused = false;
  /** While connected: the session's last lease refresh refused (null: accepted); its upserts' in `#publisher.error`. */
  #refreshError: string | null = null;
  connectedMs: number | null = null;
  #options: ControlSessionOptions;
  #client: ControlClient | undefined;
  #timers: NodeJS.Timeout[] = [];
  #refreshTimer: NodeJS.Timeout | undefined;
  #publisher: CatalogPublisher;
  #reconnect: ReconnectLoop;
  readonly #check: ServerFrameCheck;
  /** The current session got as far as connected: its end is a loss, logged once (`#lost`, why). */
  #connected = false;
  #lost: string | undefined;
  #elsewhere: LeaseElsewhere;
  /** A server that refreshed the lease while this one's store was lost: the next session's connection. */
  #handover: Refreshed | undefined;

  constructor(options: ControlSessionOptions) {
    this.#options = options;
    const { urls, nodeId, backoffMs, backoffMaxMs, log } = options;
    const open = async (url: string): Promise<ControlClient> => {
      const credentials = await readNodeCredentials(options.stateFile, nodeId, log);
      if (!credentials) throw new Error(`no credentials in ${options.stateFile}`);
      return this.#open(nodeBearer(credentials), url, TRIAL_HANDSHAKE_MS);
    };
    this.#elsewhere = new LeaseElsewhere({ urls, nodeId, open, backoffMs, backoffMaxMs, log });
    this.#publisher = new CatalogPublisher({ nodeId, node: options.node, catalog: options.catalog, log });
    this.#check = new ServerFrameCheck(options.schemas, { events: 'full' });
    this.#reconnect = new ReconnectLoop({
      urls: options.urls,
      backoff: { firstMs: options.backoffMs, maxMs: options.backoffMaxMs },
      unref: true,
      session: async () => {
        await this.#serve(await this.#connect());
      },
      failed: (url, error) => {
        const final = isFinalRefusal(error);
        if (final || !this.#refused) this.#linkError = `${url}: ${(error as Error).message}`;
        this.#refused ||= final;
        // Still retried (the operator may put a new join token in the file), but a refusal needs them.
        if (final) options.log.error({ err: error.message, url }, 'control session: refused; the node stays local until its credentials are fixed');
        else if (this.#connected) this.#lost = (error as Error).message;
        else options.log.warn({ err: (error as Error).message, url }, 'control session: not connected');
      },
      ended: () => {
        this.#connected = false;
        // A session that failed while its socket was still open (a refused upsert) must not leak it.
        this.#client?.terminate();
        this.#client = undefined;
        // WorldFS sessions end with the link: their handles go too (they cannot come back to them).
        void options.relay?.dropAll();
        for (const timer of this.#timers) clearInterval(timer);
        this.#timers = [];
        clearTimeout(this.#refreshTimer);
      },
      beforePause: (pauseMs, url) => {
        this.state = 'disconnected';
        // A working session that ended: say so, or a failover shows only the next "connected".
        if (this.#lost === undefined) return;
        const next = this.url === url ? 'again' : this.url;
        options.log.warn(
          { url, err: this.#lost, next_url: this.url, pause_ms: pauseMs },
          `control session lost: ${url}: ${this.#lost}; trying ${next} in ${pauseMs} ms`,
        );
        this.#lost = undefined;
      },
    });
  }

  /** The server this session uses (or tries next). */
  /** What NODE.json says is wrong: the link, or while connected this session's refused lease refresh and upsert (both, when both are). */
  get lastError(): string | null {
    return this.#linkError ?? ([this.#refreshError, this.#publisher.error].filter((e) => e !== null).join('; ') || null);
  }

  get url(): string {
    return this.#reconnect.url;
  }

  start(): void {
    void this.#reconnect.start();
  }

  async stop(): Promise<void> {
    this.#reconnect.stop();
    this.#elsewhere.stop();
    this.#handover?.client.terminate();
    await this.#client?.close().catch(() => undefined);
    await this.#reconnect.start();
  }

  async #connect(): Promise<ControlClient> {
    const o = this.#options;
    const handover = this.#handover;
    this.#handover = undefined;
    if (handover?.url === this.url && handover.client.isOpen) return handover.client;
    handover?.client.terminate();
    const credentials = await readNodeCredentials(o.stateFile, o.nodeId, o.log);
    if (credentials) {
      this.state = 'connecting';
      try {
        return await this.#open(nodeBearer(credentials));
      } catch (error) {
        if (!(error instanceof ProtocolError && error.code === 'unauthorized')) throw error;
        o.log.error("control session: the server rejected this node's secret; joining again needs a new join token");
      }
    }
    const joinToken = await o.joinToken();
    if (!joinToken) throw new Error(`no credentials in ${o.stateFile} and no join token (--join-token-file): cannot join ${this.url}`);
    this.state = 'joining';
    const client = await this.#open(joinToken);
    const joined = await client.request<NodeJoinReply>('control.node_join', { join_token: joinToken, node_id: o.nodeId, ...o.node }).catch((error: unknown) => {
      client.terminate();
      throw error;
    });
    await saveNodeCredentials(o.stateFile, { node_id: joined.node_id, node_secret: joined.node_secret, control_url: this.url, joined_ms: Date.now() });
    o.log.info({ node_id: joined.node_id }, 'joined the control server');
    return client;
  }

  /** A connection to `url` whose pushes reach this node's RelayServer (relayed operations) and this session (a store outage). */
  async #open(token: string, url = this.url, handshakeTimeoutMs?: number): Promise<ControlClient> {
    const { relay, log } = this.#options;
    let client: ControlClient | undefined;
    const onPush = nodePushes(
      () => client,
      relay,
      log,
      (reason) => client && void this.#moveIfServed(client, reason),
    );
    // A malformed push is dropped: a relayed operation then times out on the server (ETIMEDOUT to its requester).
    const onInvalidPush = (error: Error): void => log.error(`bad frame from the control server, dropped: ${error.message}`);
    client = await ControlClient.connect({ url, token, onPush, check: this.#check, onInvalidPush, ...(handshakeTimeoutMs ? { handshakeTimeoutMs } : {}) });
    return client;
  }

  async #serve(client: ControlClient): Promise<void> {
    this.#client = client;
    this.#connected = true;
    this.state = 'connected';
    this.connectedMs = Date.now();
    [this.#linkError, this.#refreshError, this.#refused] = [null, null, false];
    this.#publisher.restart(); // a reconnect counts as a start: upsert once
    this.#options.log.info({ url: this.url }, 'control session connected');
    this.#elsewhere.reset();
    // The server routes relays only to a connection that said it is ready (SPEC §9): this one now is.
    if (this.#options.relay) await client.request('control.relay_ready', { node_id: this.#options.nodeId });
    // A refused upsert or refresh (the server's store down) is tried again, and the session stays:
    // ending it would only meet the same store, through HTTP 503s, for as long as it is down. The
    // session's first upsert refused for another reason (too large, invalid) ends it, as before.
    const current = (): boolean => this.#client === client;
    await this.#publisher.publishOrSay(client, true, current);
    // Working once its catalog went through: a server that closes the session on it (1009, a frame
    // too large) is a failure like a refused connection, so the retries back off.
    if (client.isOpen) this.#reconnect.succeeded();
    this.#scheduleRefresh(client, 0);
    this.#timers.push(setInterval(() => void this.#publisher.publishOrSay(client, false, current), CATALOG_CHECK_MS));
    const closed = await client.closed;
    this.state = 'disconnected';
    this.#linkError = `connection closed (${closed.code}${closed.reason ? ` ${closed.reason}` : ''})`;
    this.#lost = this.#handover ? undefined : this.#linkError; // a move says so itself
  }

  /**
   * This session's server cannot refresh the lease (its store lost): the session moves to another
   * server of the list that refreshed it (LeaseElsewhere), so the node is back within the grace
   * period the other servers start; with none, it stays (quorum lost everywhere: no server could do better).
   */
  async #moveIfServed(client: ControlClient, why: string): Promise<void> {
    if (this.#client !== client || !this.#elsewhere.possible) return;
    const from = this.url;
    const found = await this.#elsewhere.search(from, client, why, () => this.#client === client);
    if (!found) return;
    // The session ended meanwhile: the loop goes on as it would have.
    if (this.#client !== client || !client.isOpen || this.#reconnect.stopped) return found.client.terminate();
    this.#handover = found;
    this.#reconnect.handOver(found.url);
    const message = `control session moves: the control store of ${from} is unavailable (${why}); ${found.url} refreshed the lease`;
    this.#options.log.warn({ url: from, err: why, next_url: found.url }, message);
    client.terminate(); // at once: a close handshake would wait for a server that may be stuck
  }

  /**
   * The next lease refresh, `afterMs` from now; then every third of the lease's TTL (each reply
   * gives it). A refused one (the server's store down), the first of a session included, is tried
   * again after REFUSED_REFRESH_RETRY_MS (or the refresh period, when shorter), so the lease is
   * extended soon after the store is back, and said: logged once, and in `lastError` (NODE.json)
   * until one is accepted. `everyMs`: the period, once a reply has given it.
   */
  #scheduleRefresh(client: ControlClient, afterMs: number, refused = 0, everyMs?: number): void {
    const { log, nodeId } = this.#options;
    this.#refreshTimer = setTimeout(() => {
      // Bounded by the period once known: a reply held up (the server's store retrying) must not delay the next refresh past the lease.
      client.request<LeaseRefreshReply>('control.node_lease_refresh', { node_id: nodeId }, everyMs).then(
        ({ lease_ttl_ms: leaseTtlMs }) => {
          if (this.#client !== client) return; // the session ended meanwhile: no timers for it again
          this.#elsewhere.reset(); // its server serves it: a later outage is looked into at once
          if (refused > 0) {
            log.info({ refused }, `lease refresh accepted again after ${refused} refused`);
            this.#refreshError = null;
          }
          // A third of the lease: a floor of 1000 ms made a 1000 ms lease lapse between refreshes (the node flapped offline and online).
          const period = Math.max(MIN_REFRESH_MS, Math.floor(leaseTtlMs / 3));
          this.#scheduleRefresh(client, period, 0, period);
        },
        (error: unknown) => {
          if (this.#client !== client || !client.isOpen) return; // the session ends and says why
          this.#refreshError = `lease refresh ${error instanceof NoReplyError ? 'unanswered' : 'refused'}: ${(error as Error).message}`;
          if (refused === 0) log.warn({ err: (error as Error).message }, `${this.#refreshError}; trying again every ${REFUSED_REFRESH_RETRY_MS} ms`);
          if (error instanceof ProtocolError && error.code === 'unavailable') void this.#moveIfServed(client, error.message);
          this.#scheduleRefresh(client, Math.min(everyMs ?? REFUSED_REFRESH_RETRY_MS, REFUSED_REFRESH_RETRY_MS), refused + 1, everyMs);
        },
      );
    }, afterMs);
  }
}
