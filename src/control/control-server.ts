/**
 * src/control: the control server (docs/control-protocol.md). Owns the ws connections and their
 * principals, tokens and projects, the catalog with its deltas and leases, the event stream with
 * replay and resume, the watch fan-out, the WorldFS relay and its policy, metrics and the console,
 * and the storage seam `ControlStore` with its file and etcd (`etcd/`) implementations.
 *
 * Must not import: node/, world/, fuse/, vfs/ or cli/ (nodes and mounts are peers on the wire, never
 * code it calls); etcd3 and cockatiel only in etcd/.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { BEARER_SUBPROTOCOL_PREFIX, NODE_FRAME_MAX_BYTES } from '../protocol/envelope.js';
import type { Schemas } from '../protocol/schemas.js';
import { CONTROL_DEFAULTS } from './defaults.js';
import type { CatalogStore, EventStream } from './catalog-store.js';
import { ControlConnection } from './connection.js';
import { ControlMetrics } from './metrics.js';
import type { Principal } from './principal.js';
import type { ProjectStore } from './projects.js';
import type { TokenStore } from './token-store.js';
import { openControlStore, type ControlStore } from './control-store.js';
import type { EtcdOptions } from './etcd/options.js';
import { isOwnOrigin, ownOrigins } from './origins.js';
import { WatchHub } from './watch-hub.js';
import { RelayHub, relaySession } from './relay-hub.js';
import { RelayPolicy } from './relay-policy.js';
import { PeerLinks } from './peer-links.js';
import { PEER_TOKEN } from './server-directory.js';
import { serveDebugPage } from './debug-page.js';
import { watchPolicyFromEnv, type WatchPolicy } from './watch-policy.js';

export interface HostPort {
  host: string;
  port: number;
}

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
  tls?: { cert: Buffer; key: Buffer };
  /** Event history settings of the file store; defaults from the ACHERON_NODE_SERVICE_EVENT_LOG_* variables. */
  eventLog?: { ringCapacity?: number; rotateMaxBytes?: number; archiveKeep?: number };
  watchPolicy?: WatchPolicy;
  /** Everything in etcd (shared by every server on it) instead of the data dir. */
  etcd?: EtcdOptions | undefined;
  /** This server's id among the servers of one store (metrics label; etcd registration). Default: `<hostname>:<listen port>`. */
  serverId?: string | undefined;
  /** etcd: how long this server's registration outlives it (see CatalogOptions). */
  serverTtlMs?: number | undefined;
  /** etcd: where the other servers reach this one for relays (default ws[s]://<listen host, or the host name for a wildcard>:<port>). */
  advertiseUrl?: string | undefined;
  /** Origins besides the server's own whose pages may authenticate by subprotocol (`--allowed-origin`, normalized by parseOrigin). */
  allowedOrigins?: string[];
}

/**
 * One condition /readyz checks: undefined while it holds, else why not. A store with a backend of
 * its own (etcd) adds a check that the backend is reachable.
 */
export type ReadinessCheck = () => Promise<string | undefined> | string | undefined;

export interface Readiness {
  ready: boolean;
  /** Each check by name: `ok` or why not. */
  checks: Record<string, string>;
}
const HOUSEKEEPING_MS = 1_000;

/**
 * The control server (SPEC §6-7): one WebSocket listener for nodes, users and admins, the catalog
 * with leases, and an HTTP listener for health and metrics.
 */
export class ControlServer {
  readonly catalog: CatalogStore;
  readonly store: ControlStore;
  readonly tokens: TokenStore;
  readonly metrics: ControlMetrics;
  readonly events: EventStream;
  readonly watches: WatchHub;
  readonly relays: RelayHub;
  readonly relayPolicy: RelayPolicy;
  readonly projects: ProjectStore;
  #options: ControlServerOptions;
  #log: Logger;
  /** Links to the other servers of the store, for relays to node tunnels held there. */
  #peers: PeerLinks;
  #ws: Server;
  #http: Server;
  #wss: WebSocketServer;
  #connections = new Set<ControlConnection>();
  /** The bearer token of each admin and user session, to notice its revocation or rotation. */
  #tokenOf = new WeakMap<ControlConnection, string>();
  #nextConnectionId = 1;
  #timers: NodeJS.Timeout[] = [];
  #watchPolicy: WatchPolicy;
  /** Where browser pages may come from (set once both listeners are bound: ports may be 0 until then). */
  #origins = new Set<string>();
  #stopping = false;
  /** What /readyz checks: the server can serve while its listener is up and its store takes writes. */
  #readinessChecks: Record<string, ReadinessCheck> = {
    listener: () => (this.#ws.listening ? undefined : 'the WebSocket listener is not listening'),
    store: async () => (this.#stopping ? 'the server is stopping' : this.store.problem()),
  };

  private constructor(options: ControlServerOptions, store: ControlStore, serverId: string) {
    this.store = store;
    this.tokens = store.tokens;
    this.projects = store.projects;
    this.#options = options;
    this.#watchPolicy = options.watchPolicy ?? watchPolicyFromEnv();
    this.#log = options.log;
    this.catalog = store.catalog;
    this.events = store.events;
    const { catalog, events } = store;
    this.metrics = new ControlMetrics(catalog, events, serverId);
    this.watches = new WatchHub(events, this.metrics);
    this.#peers = new PeerLinks(store.servers.peerToken, options.schemas, this.#log.child({ component: 'peers' }));
    this.relays = new RelayHub(this.metrics, store.servers, this.#peers);
    this.relayPolicy = new RelayPolicy(catalog, store.projects, events);
    const create = options.tls ? () => createHttpsServer({ cert: options.tls?.cert, key: options.tls?.key }) : () => createHttpServer();
    this.#ws = create();
    this.#http = create();
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: NODE_FRAME_MAX_BYTES,
      handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX)) ?? false,
    });
    this.#ws.on('upgrade', (request, socket, head) => void this.#upgrade(request, socket as Socket, head));
    this.#ws.on('request', (_request, response: ServerResponse) =>
      response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only (see /livez on the HTTP listener)\n'),
    );
    this.#http.on('request', (request, response) => {
      // A failing page is a 500 and a log line, never an unhandled rejection that ends the server.
      this.#serveHttp(request, response).catch((error: unknown) => {
        this.#log.error({ err: error, url: request.url }, 'HTTP request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('internal error; see the server log\n');
      });
    });
  }

  static async start(options: ControlServerOptions): Promise<ControlServer> {
    const serverId = options.serverId ?? `${hostname()}:${options.listen.port}`;
    // First: with etcd unreachable the server stops here, with an error naming the endpoints.
    const host = ['0.0.0.0', '::', ''].includes(options.listen.host)
      ? hostname()
      : options.listen.host.includes(':')
        ? `[${options.listen.host}]`
        : options.listen.host;
    const advertiseUrl = options.advertiseUrl ?? `${options.tls ? 'wss' : 'ws'}://${host}:${options.listen.port}`;
    const store = await openControlStore(
      {
        dataDir: options.dataDir,
        etcd: options.etcd,
        serverId,
        advertiseUrl,
        catalog: {
          leaseTtlMs: options.leaseTtlMs,
          offlineGraceMs: options.offlineGraceMs,
          serverTtlMs: options.serverTtlMs,
          ...(options.eventLog ? { eventLog: options.eventLog } : {}),
        },
      },
      options.log,
    );
    options.log.info({ store: store.description, server_id: serverId }, `control store: tokens, projects, catalog and events in ${store.description}`);
    const server = new ControlServer(options, store, serverId);
    // A token revoked or rotated anywhere ends its sessions here.
    await store.tokens.follow(() => void server.#dropRevoked());
    await listen(server.#ws, options.listen);
    await listen(server.#http, options.httpListen);
    server.#origins = ownOrigins(
      [
        { host: options.listen.host, port: server.address.port },
        { host: options.httpListen.host, port: server.httpAddress.port },
      ],
      options.tls !== undefined,
      options.allowedOrigins,
    );
    server.#timers.push(
      setInterval(() => server.#connections.forEach((c) => c.ping()), options.pingIntervalMs ?? CONTROL_DEFAULTS.pingIntervalMs),
      setInterval(() => void server.#housekeeping(), HOUSEKEEPING_MS),
    );
    options.log.info({ listen: server.address, http: server.httpAddress }, 'control server listening');
    return server;
  }

  get address(): HostPort {
    const a = this.#ws.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get httpAddress(): HostPort {
    const a = this.#http.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Whether the server can serve now, check by check (/readyz). */
  async readiness(): Promise<Readiness> {
    const checks: Record<string, string> = {};
    for (const [name, check] of Object.entries(this.#readinessChecks)) {
      try {
        checks[name] = (await check()) ?? 'ok';
      } catch (error) {
        checks[name] = `the check failed: ${(error as Error).message}`;
      }
    }
    return { ready: Object.values(checks).every((result) => result === 'ok'), checks };
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.watches.close();
    this.#peers.close();
    for (const connection of this.#connections) connection.socket.close(1001, 'server shutting down');
    await Promise.all([close(this.#ws), close(this.#http)]);
    await this.store.close();
  }

  async #authenticate(request: IncomingMessage): Promise<{ principal?: Principal; viaSubprotocol: boolean; token?: string }> {
    const header = request.headers.authorization;
    let token: string | undefined;
    let viaSubprotocol = false;
    if (header?.startsWith('Bearer ')) token = header.slice(7).trim();
    else {
      const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
      const bearer = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
      if (bearer) {
        token = Buffer.from(bearer.slice(BEARER_SUBPROTOCOL_PREFIX.length), 'base64url').toString();
        viaSubprotocol = true;
      }
    }
    if (!token) return { viaSubprotocol };
    const peer = PEER_TOKEN.exec(token);
    if (peer) {
      const [, serverId, secret] = peer as unknown as [string, string, string];
      return { principal: this.store.servers.verifyPeer(serverId, secret) ? { kind: 'peer', serverId } : undefined, viaSubprotocol };
    }
    const node = /^node\.([A-Za-z0-9._-]{1,128})\.(.+)$/.exec(token);
    if (node) {
      const [, nodeId, secret] = node as unknown as [string, string, string];
      return { principal: (await this.catalog.verifyNode(nodeId, secret)) ? { kind: 'node', nodeId } : undefined, viaSubprotocol };
    }
    const principal = await this.tokens.authenticate(token);
    return principal ? { principal, viaSubprotocol, token } : { viaSubprotocol };
  }

  async #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    let authenticated;
    try {
      authenticated = await this.#authenticate(request);
    } catch (error) {
      // The store could not say (etcd down): neither a refusal of the token nor an acceptance.
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      this.#log.warn({ err: error, remote: socket.remoteAddress }, 'could not check a token: answered 503');
      return;
    }
    const { principal, viaSubprotocol, token } = authenticated;
    // Browsers authenticate by subprotocol: only pages this server serves (or --allowed-origin) may use it (SPEC §6).
    const originOk = !viaSubprotocol || isOwnOrigin(this.#origins, request.headers.origin);
    if (!principal || !originOk) {
      const status = principal ? '403 Forbidden' : '401 Unauthorized';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      this.#log.info({ remote: socket.remoteAddress, status }, 'refused a connection');
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new ControlConnection(
        ws,
        principal,
        this.#nextConnectionId++,
        {
          schemas: this.#options.schemas,
          log: this.#log,
          context: () => ({
            catalog: this.catalog,
            tokens: this.tokens,
            metrics: this.metrics,
            watches: this.watches,
            relays: this.relays,
            relayPolicy: this.relayPolicy,
            projects: this.projects,
            watchPolicy: this.#watchPolicy,
          }),
          onClose: (closed) => {
            this.#connections.delete(closed);
            this.watches.drop(closed);
            this.metrics.connections.dec({ role: closed.principal.kind });
            // The grace period starts when the node's last tunnel closes (a reconnect may overlap).
            const { principal: gone } = closed;
            // Not while stopping: a store shared with other servers (etcd) hands this server's tunnels over as a whole when it closes.
            if (
              !this.#stopping &&
              gone.kind === 'node' &&
              ![...this.#connections].some((c) => c.principal.kind === 'node' && c.principal.nodeId === gone.nodeId)
            ) {
              this.catalog.tunnelClosed(gone.nodeId, this.#options.offlineGraceMs);
            }
            if (gone.kind === 'node') this.relays.tunnelClosed(closed);
            this.relays.sessionGone(relaySession(closed));
          },
        },
        socket,
      );
      this.#connections.add(connection);
      if (principal.kind === 'node') this.catalog.tunnelOpened(principal.nodeId);
      if (token !== undefined) this.#tokenOf.set(connection, token);
      this.metrics.connections.inc({ role: principal.kind });
    });
  }

  async #housekeeping(): Promise<void> {
    try {
      await this.catalog.expireLeases();
    } catch (error) {
      this.#log.error({ err: error }, 'housekeeping failed');
    }
  }

  /** A token revoked or rotated (by `acheron token`, on any server of the store) ends the sessions that used it. */
  async #dropRevoked(): Promise<void> {
    await Promise.all(
      [...this.#connections].map(async (connection) => {
        const p = connection.principal;
        if (p.kind !== 'admin' && p.kind !== 'user') return;
        const used = this.#tokenOf.get(connection);
        if (used === undefined || !(await this.tokens.isCurrent(p.tokenId, used))) connection.socket.close(4001, 'token revoked or rotated');
      }),
    );
  }

  async #serveHttp(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    const send = (status: number, type: string, body: string): void => void response.writeHead(status, { 'content-type': type }).end(body);
    switch (path) {
      case '/livez':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz': {
        const { ready, checks } = await this.readiness();
        const lines = Object.entries(checks)
          .map(([name, result]) => `${name}: ${result}\n`)
          .join('');
        return send(ready ? 200 : 503, 'text/plain', `${ready ? 'ready' : 'not ready'}\n${lines}`);
      }
      case '/metrics':
        return send(200, this.metrics.registry.contentType, await this.metrics.registry.metrics());
      case '/metrics.json':
        return send(200, 'application/json', JSON.stringify(await this.metrics.json(), null, 2) + '\n');
      default:
        // SPEC §10 debug page: static files and config.json.
        if (path === '/debug' || path.startsWith('/debug/')) return serveDebugPage(request, response, path, { wsPort: this.address.port });
        return send(404, 'text/plain', `no such page: ${path}\n`);
    }
  }
}

function listen(server: Server, at: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** `host:port` → HostPort; throws a TypeError naming the option. */
export function parseHostPort(text: string, option: string): HostPort {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !match[1] || port > 65535) throw new TypeError(`${option} ${JSON.stringify(text)}: expected host:port`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}
