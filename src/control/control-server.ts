/**
 * src/control: the control server (docs/control-protocol.md). Owns the ws connections and their
 * principals, tokens and projects, the catalog with its deltas and leases, the event stream with
 * replay and resume, the watch fan-out, the WorldFS relay and its policy, metrics and the console,
 * and the storage seam `ControlStore` with its file and etcd (`etcd/`) implementations.
 *
 * Must not import: node/, world/, fuse/, vfs/ or cli/ (nodes and mounts are peers on the wire, never
 * code it calls); etcd3 and cockatiel only in etcd/.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { BEARER_SUBPROTOCOL_PREFIX, NODE_FRAME_MAX_BYTES } from '../protocol/envelope.js';
import type { Schemas } from '../protocol/schemas.js';
import { CONTROL_DEFAULTS } from './defaults.js';
import type { CatalogStore } from './catalog-store.js';
import { ControlConnection } from './connection.js';
import { ConnectionSet } from './connection-set.js';
import { ControlMetrics } from './metrics.js';
import type { ProjectStore } from './projects.js';
import type { TokenStore } from './token-store.js';
import { openControlStore, type ControlStore } from './control-store.js';
import type { EtcdOptions } from './etcd/options.js';
import { isOwnOrigin, ownOrigins } from './origins.js';
import { WatchHub } from './watch-hub.js';
import { RelayHub, relaySession } from './relay-hub.js';
import { RelayPolicy } from './relay-policy.js';
import { PeerLinks } from './peer-links.js';
import { CredentialGuard } from './credential-guard.js';
import { watchPolicyFromEnv, type WatchPolicy } from './watch-policy.js';
import { serveHttpPages } from './http-pages.js';
import { followFleetChanges } from './fleet-changes.js';
import { advertiseUrlOf, bindStarting, boundAddress, closeListener, defaultServerId, isWildcardHost, takeOver, type HostPort } from './listeners.js';
import { checkReadiness, type Readiness, type ReadinessCheck } from './readiness.js';
import { StoreOutage } from './store-outage.js';
import { answersPing } from './ping-probe.js';
import { RepeatedFailure } from '../store/repeated-failure.js';
import { authenticateUpgrade, refuseUpgrade, STORE_UNAVAILABLE, type UpgradeRefusal } from './upgrade-auth.js';
import { closeAll, closeAndThrow } from '../store/closing.js';

export { parseHostPort, type HostPort } from './listeners.js';
export type { Readiness, ReadinessCheck } from './readiness.js';

export interface ControlServerOptions {
  listen: HostPort;
  httpListen: HostPort;
  dataDir: string;
  offlineGraceMs: number;
  leaseTtlMs: number;
  /** How often every peer is pinged; one that missed two pongs is dropped (SPEC §6: 10 s). */
  pingIntervalMs?: number;
  log: Logger;
  schemas: Schemas;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Event history settings of the file store; defaults from the ACHERON_NODE_SERVICE_EVENT_LOG_* variables. */
  eventLog?: { ringCapacity?: number; rotateMaxBytes?: number; archiveKeep?: number };
  watchPolicy?: WatchPolicy;
  /** Everything in etcd (shared by every server on it) instead of the data dir. */
  etcd?: EtcdOptions | undefined;
  /** This server's id among the servers of one store (metrics label; etcd registration). Default: defaultServerId(listen). */
  serverId?: string | undefined;
  /** etcd: how long this server's registration outlives it (see CatalogOptions). */
  serverTtlMs?: number | undefined;
  /** etcd: where the other servers reach this one for relays (default ws[s]://<listen host, or the host name for a wildcard>:<port>). */
  advertiseUrl?: string | undefined;
  /** Origins besides the server's own whose pages may authenticate by subprotocol (`--allowed-origin`, normalized by parseOrigin). */
  allowedOrigins?: string[];
}

const HOUSEKEEPING_MS = 1_000;

/**
 * The control server (SPEC §6-7): one WebSocket listener for nodes, users and admins, the catalog
 * with leases, and an HTTP listener for health and metrics.
 */
export class ControlServer {
  readonly #catalog: CatalogStore;
  readonly store: ControlStore;
  readonly #tokens: TokenStore;
  readonly #metrics: ControlMetrics;
  readonly #watches: WatchHub;
  readonly #relays: RelayHub;
  readonly #relayPolicy: RelayPolicy;
  readonly #projects: ProjectStore;
  #options: ControlServerOptions;
  #log: Logger;
  /** Links to the other servers of the store, for relays to node tunnels held there. */
  #peers: PeerLinks;
  #ws: Server;
  #http: Server;
  #wss: WebSocketServer;
  #connections = new ConnectionSet<ControlConnection>();
  #credentials: CredentialGuard;
  #nextConnectionId = 1;
  #timers: NodeJS.Timeout[] = [];
  #watchPolicy: WatchPolicy;
  /** Where browser pages may come from: the bound listeners (a port may be given as 0) and --allowed-origin. */
  #origins: Set<string>;
  #stopping = false;
  /** What /readyz checks: the server can serve while its listener is up and its store answers (etcd: a linearizable read within 1 s). */
  #readinessChecks: Record<string, ReadinessCheck> = {
    listener: () => (this.#ws.listening ? undefined : 'the WebSocket listener is not listening'),
    store: async () => (this.#stopping ? 'the server is stopping' : this.store.problem()),
  };

  private constructor(options: ControlServerOptions, store: ControlStore, serverId: string, listeners: { ws: Server; http: Server }) {
    this.store = store;
    this.#tokens = store.tokens;
    this.#projects = store.projects;
    this.#options = options;
    this.#watchPolicy = options.watchPolicy ?? watchPolicyFromEnv();
    this.#log = options.log;
    this.#catalog = store.catalog;
    const { catalog, events } = store;
    this.#credentials = new CredentialGuard(this.#connections, catalog, store.tokens, this.#log);
    this.#metrics = new ControlMetrics(catalog, events, serverId, () => store.problem());
    this.#watches = new WatchHub(events, this.#metrics, store.projects);
    this.#peers = new PeerLinks(store.servers.peerToken, options.schemas, this.#log.child({ component: 'peers' }));
    this.#relays = new RelayHub(this.#metrics, store.servers, this.#peers, catalog);
    this.#relayPolicy = new RelayPolicy(catalog, store.projects, events);
    followFleetChanges(events, this.#log, {
      connections: this.#connections,
      relays: this.#relays,
      dropDeleted: (nodeId) => this.#credentials.dropNode(nodeId, 'node deleted'),
    });
    // A node joined again through another server of the store: its connections here with the old secret end.
    catalog.onSecretReplaced((nodeId) => void this.#credentials.dropReplacedSecret(nodeId));
    this.#ws = listeners.ws;
    this.#http = listeners.http;
    this.#origins = ownOrigins(
      [
        { host: options.listen.host, port: this.address.port },
        { host: options.httpListen.host, port: this.httpAddress.port },
      ],
      options.tls !== undefined,
      options.allowedOrigins,
    );
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: NODE_FRAME_MAX_BYTES,
      // No extension: watch frames are framed once and written beside ws (ControlConnection.sendFrame).
      perMessageDeflate: false,
      handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX)) ?? false,
    });
    this.#ws.on('upgrade', (request, socket, head) => void this.#upgrade(request, socket as Socket, head));
    takeOver(this.#ws, (_request, response) =>
      response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only (see /livez on the HTTP listener)\n'),
    );
    takeOver(this.#http, serveHttpPages({ readiness: () => this.readiness(), metrics: this.#metrics, wsPort: () => this.address.port, log: this.#log }));
  }

  static async start(options: ControlServerOptions): Promise<ControlServer> {
    // Ports first: a start that fails on a port in use must not touch the store (etcd: a live server's registration under this id).
    const ws = await bindStarting(options.tls, options.listen);
    const listening = { ...options.listen, port: boundAddress(ws).port }; // --listen host:0 names the port it got
    const serverId = options.serverId ?? defaultServerId(listening);
    const http = await bindStarting(options.tls, options.httpListen).catch((error: unknown) => closeAndThrow({ close: () => closeListener(ws) }, error));
    const closeListeners = { close: async () => void (await Promise.all([closeListener(ws), closeListener(http)])) };
    // With etcd unreachable the server stops here, with an error naming the endpoints.
    const store = await openControlStore(
      {
        dataDir: options.dataDir,
        etcd: options.etcd,
        serverId,
        advertiseUrl: options.advertiseUrl ?? advertiseUrlOf(listening, options.tls !== undefined),
        advertiseUrlIsBound: options.advertiseUrl === undefined && !isWildcardHost(listening.host),
        catalog: {
          leaseTtlMs: options.leaseTtlMs,
          offlineGraceMs: options.offlineGraceMs,
          serverTtlMs: options.serverTtlMs,
          ...(options.eventLog ? { eventLog: options.eventLog } : {}),
        },
      },
      options.log,
    ).catch((error: unknown) => closeAndThrow(closeListeners, error));
    options.log.info({ store: store.description, server_id: serverId }, `control store: tokens, projects, catalog and events in ${store.description}`);
    let made: ControlServer | undefined;
    try {
      const server = (made = new ControlServer(options, store, serverId, { ws, http }));
      // A token revoked or rotated anywhere ends its sessions here.
      await store.tokens.follow(() => void server.#credentials.dropRevoked());
    } catch (error) {
      return closeAndThrow({ close: () => made?.stop() ?? closeAll([store, closeListeners]) }, error);
    }
    const server = made;
    const outage = new StoreOutage({ store, connections: () => server.#connections, offlineGraceMs: options.offlineGraceMs, log: options.log });
    // Fails every second while the disk is full (the file store's offline events): logged once, then once a minute.
    const housekeeping = new RepeatedFailure(options.log, 'housekeeping failed', 'housekeeping works again');
    server.#timers.push(
      setInterval(() => void outage.check(), HOUSEKEEPING_MS),
      setInterval(() => [...server.#connections].forEach((c) => c.ping()), options.pingIntervalMs ?? CONTROL_DEFAULTS.pingIntervalMs),
      setInterval(() => void housekeeping.run(() => server.#catalog.expireLeases()), HOUSEKEEPING_MS),
    );
    options.log.info({ listen: server.address, http: server.httpAddress }, 'control server listening');
    return server;
  }

  get address(): HostPort {
    return boundAddress(this.#ws);
  }

  get httpAddress(): HostPort {
    return boundAddress(this.#http);
  }

  /** Whether the server can serve now, check by check (/readyz). */
  readiness(): Promise<Readiness> {
    return checkReadiness(this.#readinessChecks);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#watches.close();
    this.#peers.close();
    for (const connection of this.#connections) connection.socket.close(1001, 'server shutting down');
    await Promise.all([closeListener(this.#ws), closeListener(this.#http)]);
    await this.store.close();
  }

  /** Ends an upgrade with the HTTP status of `code` (and `reason` as its body), counted under that code as an error reply would be; returns the status. */
  #refuse(socket: Socket, code: UpgradeRefusal, reason?: string): string {
    this.#metrics.errors.inc({ code });
    return refuseUpgrade(socket, code, reason);
  }

  async #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    // Node takes its own error listener off before 'upgrade', and ws adds one only in handleUpgrade:
    // until then a peer that resets (during the token check, or as we refuse) would end the process.
    const onSocketError = (error: Error): void => this.#log.debug({ err: error, remote: socket.remoteAddress }, 'upgrading socket failed');
    socket.on('error', onSocketError);
    let authenticated;
    try {
      authenticated = await authenticateUpgrade(request, { servers: this.store.servers, catalog: this.#catalog, tokens: this.#tokens });
    } catch (error) {
      // The store could not say (etcd down): neither a refusal of the token nor an acceptance. The
      // peer is not authenticated: it learns that the store is the problem, the log gets the details.
      this.#refuse(socket, 'unavailable', STORE_UNAVAILABLE);
      this.#log.warn({ err: error, remote: socket.remoteAddress }, 'could not check a token: answered 503');
      return;
    }
    const { principal, viaSubprotocol, token, nodeSecret } = authenticated;
    // Browsers authenticate by subprotocol: only pages this server serves (or --allowed-origin) may use it (SPEC §6).
    const originOk = !viaSubprotocol || isOwnOrigin(this.#origins, request.headers.origin);
    if (!principal || !originOk) {
      const status = this.#refuse(socket, principal ? 'forbidden' : 'unauthorized');
      this.#log.info({ remote: socket.remoteAddress, status }, 'refused a connection');
      return;
    }
    socket.off('error', onSocketError);
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new ControlConnection(
        ws,
        principal,
        this.#nextConnectionId++,
        {
          schemas: this.#options.schemas,
          log: this.#log,
          context: () => ({
            catalog: this.#catalog,
            tokens: this.#tokens,
            metrics: this.#metrics,
            watches: this.#watches,
            relays: this.#relays,
            relayPolicy: this.#relayPolicy,
            projects: this.#projects,
            watchPolicy: this.#watchPolicy,
            dropNode: (nodeId, except) => this.#credentials.dropNode(nodeId, 'node joined again: its secret was replaced', except),
          }),
          onBecameNode: (joined) => this.#connections.reindex(joined),
          onClose: (closed) => {
            this.#connections.delete(closed);
            this.#watches.drop(closed);
            this.#metrics.connections.dec({ role: closed.principal.kind });
            // The grace period starts when the node's last tunnel closes (a reconnect may overlap).
            const { principal: gone } = closed;
            // Not while stopping: a store shared with other servers (etcd) hands this server's tunnels over as a whole when it closes.
            // After the ops it had started: a lease refresh committed later would bring the node back online with no tunnel.
            const lastTunnelClosed = (): void => {
              if (this.#stopping || gone.kind !== 'node') return;
              if (!this.#connections.hasNode(gone.nodeId)) this.#catalog.tunnelClosed(gone.nodeId, this.#options.offlineGraceMs);
            };
            void closed.settled().then(lastTunnelClosed);
            if (gone.kind === 'node') this.#relays.tunnelClosed(closed);
            this.#relays.sessionGone(relaySession(closed));
            // Again once the frames it had read are served: a relay among them opened handles after the first.
            void closed.settled().then(() => this.#relays.sessionGone(relaySession(closed)));
          },
        },
        socket,
      );
      connection.nodeSecret = nodeSecret;
      this.#connections.add(connection);
      if (principal.kind === 'node') this.#catalog.tunnelOpened(principal.nodeId, () => answersPing(connection.socket));
      if (token !== undefined) this.#credentials.remember(connection, token);
      this.#metrics.connections.inc({ role: principal.kind });
    });
  }
}
