import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { JOIN_TTL_DEFAULT_MS } from '../../src/cli/store-options.js';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import { TOKENS_FILE } from '../../src/control/token-file.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { bearerSubprotocol } from '../../src/protocol/envelope.js';
import { ACHERON, manifest, startNode, tempDir, type Exit, type RunningNode, type Teardown } from './node.js';
import { removeLocksOf } from './locks.js';
import type { Test } from 'tap';
import { q, sh, waitFor, watchdog, type ShResult } from './process.js';

export interface RunningControl {
  /** ws://127.0.0.1:<port> */
  url: string;
  /** http://127.0.0.1:<port> (livez, metrics) */
  httpUrl: string;
  dataDir: string;
  logFile: string;
  adminToken: string;
  userToken: string;
  child: ChildProcess;
  exited: Promise<Exit>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<Exit>;
  /** SIGKILL to the process group, then waits for the exit. */
  kill9(): Promise<Exit>;
  /** Stops this server if it still runs (SIGTERM), then starts it again on the same ports and data dir. */
  restart(): Promise<RunningControl>;
}

/** Quick manifest reloads and reconnects, for the nodes of tests that change manifests or restart servers. */
export const QUICK_NODE_ARGS: readonly string[] = [
  '--manifest-reload-interval-ms',
  '300',
  '--reconnect-backoff-ms',
  '200',
  '--reconnect-backoff-max-ms',
  '1000',
];

/** A node's argv to join the control server at `url` with the join token in `tokenFile`, with QUICK_NODE_ARGS. */
export function joinArgs(url: string, tokenFile: string): string[] {
  return ['--control-url', url, '--join-token-file', tokenFile, ...QUICK_NODE_ARGS];
}

/** One line on stderr, `acheron: ` and the message: no log line, no stack. */
export function oneLine(tt: Test, stderr: string, message: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  tt.equal(lines.length, 1, `one line: ${stderr}`);
  tt.match(lines[0], message);
  tt.match(lines[0], /^acheron: /);
}

/** Runs `acheron <args>` in a child process (no shell quoting needed). */
export function acheron(args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ShResult> {
  return sh(`exec node ${q(ACHERON)} ${args.map(q).join(' ')}`, options);
}

/** A port nobody listens on right now (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A loopback port that refuses connections and that no other test can take while this one uses it:
 * below the kernel's ephemeral range, where listen(0) never binds (a port freed by freePort can be
 * handed to another test's listener between the retry rounds of a CLI that is meant to find nobody).
 */
export async function refusingPort(): Promise<number> {
  const low = Number((await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)[0]);
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * (low - 20_000));
    const refused = await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(false)));
      socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) return port;
  }
  throw new Error(`no refusing port found between 20000 and ${low}`);
}

/**
 * A single-use node join token, made as `acheron token join` makes it: in a data dir's file store by
 * this process (the same FileTokenStore, under the same lock; a CLI process per node a test joined was
 * half a second of CPU each), in an etcd store of the test's by the CLI (its last output line).
 */
export async function joinToken(where: string | TestStore, ttlMs?: number): Promise<string> {
  const store = typeof where === 'string' ? storeOfDataDir.get(where) : where;
  if (!store) return withFileTokenStore(where as string, async (tokens) => (await tokens.createJoin(ttlMs ?? JOIN_TTL_DEFAULT_MS)).token);
  const r = await acheron(['token', 'join', ...store.args, ...(ttlMs === undefined ? [] : ['--ttl-ms', String(ttlMs)])]);
  if (r.code !== 0) throw new Error(`acheron token join: ${r.stderr.trim()}`);
  const token = r.stdout.trim().split('\n').at(-1);
  if (!token) throw new Error('acheron token join printed nothing');
  return token;
}

/** What `acheron token list --json` prints. */
export interface TokenList {
  admin: string;
  user: string;
  tokens: Array<{ id: string; role: string; token?: string; user_id?: string; used_ms?: number | null }>;
}

/** The data dir's token store, opened as `acheron token` opens it: one a server made, never a new one (a mistyped path). */
async function withFileTokenStore<T>(dataDir: string, use: (tokens: FileTokenStore) => Promise<T>): Promise<T> {
  if (!(await stat(join(dataDir, TOKENS_FILE)).catch(() => undefined))?.isFile())
    throw new Error(`${dataDir}: no ${TOKENS_FILE}: no control server has started on it`);
  const tokens = await FileTokenStore.open(dataDir);
  try {
    return await use(tokens);
  } finally {
    await tokens.close();
  }
}

/** The secrets of the tokens `admin` and `user` in a data dir's file store, as `acheron token list --json` shows them. */
async function firstTokens(dataDir: string): Promise<{ admin: string; user: string }> {
  const listed = await withFileTokenStore(dataDir, (tokens) => tokens.list());
  const secretOf = (id: string): string => {
    const secret = listed.find((entry) => entry.id === id)?.token;
    if (secret === undefined) throw new Error(`${dataDir}: no token ${id}`);
    return secret;
  };
  return { admin: secretOf('admin'), user: secretOf('user') };
}

export async function listTokens(dataDir: string): Promise<TokenList> {
  const r = await acheron(['token', 'list', '--data-dir', dataDir, '--json']);
  if (r.code !== 0) throw new Error(`acheron token list: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as TokenList;
}

/** A store other than the data dir (etcd): the options naming it, and tokens made in it for the tests. */
export interface TestStore {
  args: string[];
  adminToken: string;
  userToken: string;
}

/**
 * Where this test file's servers keep their catalog unless a test names a store: files in their data
 * dir (the default), or a store this makes (etcd: a fresh prefix per new server), so one suite runs on
 * both stores. A server restarted on a data dir keeps that data dir's store.
 */
let newServerStore: (() => Promise<TestStore>) | undefined;
const storeOfDataDir = new Map<string, TestStore>();

export function serversUseStore(makeStore: () => Promise<TestStore>): void {
  newServerStore = makeStore;
}

/** Which store this file's servers run on (see serversUseStore). */
export function serverStoreKind(): 'files' | 'etcd' {
  return newServerStore ? 'etcd' : 'files';
}

/**
 * For a case of a shared suite in which the store plays no part (frame parsing, pings, policy, a
 * watcher's own queue): skipped on etcd, where the file-store run of the same suite covers it.
 */
export function sameOnEveryStore(): string | false {
  return serverStoreKind() === 'etcd' && 'the store plays no part: the file-store run covers it';
}

/**
 * Starts `acheron control` as a child process (its own process group) on two free loopback ports
 * and waits for /livez. Teardown kills it, also when the test failed. `tokens`: the admin and user
 * tokens of the data dir, when the caller knows them.
 */

export async function startControl(t: Teardown, options: ControlOptions = {}): Promise<RunningControl> {
  // A port freePort() found free can be taken before the server binds it (CI failed so once): ports
  // the test did not choose are chosen again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startControlOnce(t, options);
    } catch (error) {
      if (options.ports || attempt === 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
    }
  }
}

type ControlOptions = {
  args?: string[];
  dataDir?: string;
  ports?: { ws: number; http: number };
  store?: TestStore;
  tokens?: { admin: string; user: string };
  /** PEM files: the server listens with TLS (wss://, https://), and the test trusts `cert`. */
  tls?: { cert: string; key: string };
};

async function startControlOnce(t: Teardown, options: ControlOptions): Promise<RunningControl> {
  const dataDir = options.dataDir ?? join(await tempDir(t, 'acheron-control-'), 'data');
  const store = options.store ?? storeOfDataDir.get(dataDir) ?? (await newServerStore?.());
  if (store) storeOfDataDir.set(dataDir, store);
  const ports = options.ports ?? { ws: await freePort(), http: await freePort() };
  const logFile = `${dataDir}.log`;
  const args = [
    ACHERON,
    'control',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${ports.ws}`,
    '--http-listen',
    `127.0.0.1:${ports.http}`,
    '--log-file',
    logFile,
    '--log-level',
    'debug',
    ...(store?.args ?? []),
    ...(options.tls ? ['--tls-cert', options.tls.cert, '--tls-key', options.tls.key] : []),
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  watchdog(child.pid as number);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  const signal = async (name: NodeJS.Signals, group: boolean): Promise<Exit> => {
    if (!gone) {
      try {
        process.kill(group ? -(child.pid as number) : (child.pid as number), name);
      } catch {
        // already gone
      }
    }
    return exited;
  };
  t.teardown(async () => {
    await signal('SIGKILL', true);
    await removeLocksOf(child.pid, { dataDir }); // dead: a lock naming it is stale
  });
  const tls = options.tls;
  const httpUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${ports.http}`;
  const ca = tls ? await readFile(tls.cert) : undefined;
  await waitFor(async () => gone || (await livez(`${httpUrl}/livez`, ca)), { what: `control server on ${httpUrl}`, timeoutMs: 30_000 });
  if (gone) throw new Error(`acheron control exited before listening: ${stderr.trim()}`);
  // Known already (a store of the test's, or a restart on the same data dir): not read again.
  const tokens = store ?? options.tokens ?? (await firstTokens(dataDir));
  const control: RunningControl = {
    url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${ports.ws}`,
    httpUrl,
    dataDir,
    logFile,
    adminToken: 'adminToken' in tokens ? tokens.adminToken : tokens.admin,
    userToken: 'userToken' in tokens ? tokens.userToken : tokens.user,
    child,
    exited,
    stop: () => signal('SIGTERM', false),
    kill9: () => signal('SIGKILL', true),
    restart: async () => {
      await control.stop();
      return startControl(t, { ...options, dataDir, ports });
    },
  };
  return control;
}

/** Whether GET `url` answers 200; over https trusting `ca` alone. */
function livez(url: string, ca: Buffer | undefined): Promise<boolean> {
  if (!ca) return fetch(url).then((response) => response.ok);
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    }).once('error', reject);
  });
}

/** One request as admin, on a connection of its own. */
export async function adminRequest<T>(control: Pick<RunningControl, 'url' | 'adminToken'>, type: string, payload: Record<string, unknown> = {}): Promise<T> {
  const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 30_000 });
  try {
    return await client.request<T>(type, payload);
  } finally {
    client.terminate();
  }
}

/** The server's /metrics, as Prometheus text. */
export async function scrape(control: Pick<RunningControl, 'httpUrl'>): Promise<string> {
  return (await fetch(`${control.httpUrl}/metrics`)).text();
}

/** The sum of a Prometheus metric's samples (the label sets that include `labels`), or undefined when it is absent. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name || (labels && !(match[2] ?? '').includes(labels))) continue;
    total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

/** Upgrades the server refused with `code` (401 unauthorized, 403 forbidden, 503 unavailable), error replies of that code included. */
export async function errorsCounted(control: Pick<RunningControl, 'httpUrl'>, code: string): Promise<number> {
  return metricValue(await scrape(control), 'acheron_errors_total', `code="${code}"`) ?? 0;
}

/** Waits until the server's catalog of the node lists the service (a joined node has upserted). */
export async function waitForService(control: Pick<RunningControl, 'url' | 'adminToken'>, nodeId: string, serviceId: string): Promise<void> {
  await waitFor(
    async () => {
      const doc = await adminRequest<{ services: Array<{ service_id: string }> }>(control, 'control.node_get', { node_id: nodeId }).catch(() => undefined);
      return doc !== undefined && doc.services.some((s) => s.service_id === serviceId);
    },
    { what: `service ${serviceId} of node ${nodeId} in the server's catalog`, timeoutMs: 30_000 },
  );
}

/**
 * A node joined to `control` (a join token written to a file in `dir`) with one `echo` service,
 * once the server's catalog lists it: the set-up of tests that act on a real node through the server
 * (`args`: more of its flags, an `--export`).
 */
export async function startJoinedNode(t: Teardown, control: RunningControl, nodeId: string, dir: string, args: readonly string[] = []): Promise<RunningNode> {
  const joinTokenFile = join(dir, 'join-token');
  await writeFile(joinTokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
  const node = await startNode(t, { nodeId, manifests: [manifest('echo', 'echo')], args: [...joinArgs(control.url, joinTokenFile), ...args] });
  await waitForService(control, nodeId, 'echo');
  return node;
}

/** One frame from the server, as parsed JSON (or the raw text when it was not JSON). */
export interface Frame {
  channel?: string;
  type?: string;
  id?: string | null;
  ok?: boolean;
  payload?: unknown;
  error?: { code: string; message: string; field?: string };
  raw?: string;
}

export interface ConnectOptions {
  /** `Authorization: Bearer <token>` */
  token?: string;
  /** `Sec-WebSocket-Protocol: acheron.bearer.<base64url token>` (the browser way) */
  subprotocolToken?: string;
  origin?: string;
  headers?: Record<string, string>;
  /** false: never answer the server's pings (a peer whose link went silent). */
  autoPong?: boolean;
}

interface Waiter {
  match(frame: Frame): boolean;
  resolve(frame: Frame): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A WebSocket peer for protocol tests: sends whatever it is told (bad frames included), keeps every
 * frame it receives, and hands each to at most one `next()` caller, in arrival order.
 */
export class RawPeer {
  readonly socket: WebSocket;
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #unread: Frame[] = [];
  #waiters: Waiter[] = [];
  #nextId = 1;
  #closeInfo: string | undefined;

  constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      let frame: Frame;
      try {
        frame = JSON.parse(text) as Frame;
      } catch {
        frame = { raw: text };
      }
      this.frames.push(frame);
      const waiter = this.#waiters.find((w) => w.match(frame));
      if (!waiter) {
        this.#unread.push(frame);
        return;
      }
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      clearTimeout(waiter.timer);
      waiter.resolve(frame);
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.#closeInfo = `closed (${code} ${reason.toString()})`;
        for (const waiter of this.#waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`connection ${this.#closeInfo} while waiting for a frame`));
        }
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends text as is, an object as JSON text, a Buffer as a binary frame. */
  send(data: string | Buffer | object): void {
    if (Buffer.isBuffer(data)) this.socket.send(data, { binary: true });
    else this.socket.send(typeof data === 'string' ? data : JSON.stringify(data));
  }

  /**
   * Runs `sending` with the TCP socket corked: the frames it sends go out in one write, so the server
   * reads them in one turn, as from a peer that pipelines (on a quick machine they could otherwise
   * arrive one by one, each served before the next is read).
   */
  inOneWrite<T>(sending: () => T): T {
    const tcp = (this.socket as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    tcp.cork();
    try {
      return sending();
    } finally {
      tcp.uncork();
    }
  }

  /** The first unread frame that matches (already received or still to come). */
  next(match: (frame: Frame) => boolean = () => true, timeoutMs = 10_000): Promise<Frame> {
    const index = this.#unread.findIndex(match);
    if (index >= 0) return Promise.resolve(this.#unread.splice(index, 1)[0] as Frame);
    if (this.#closeInfo) return Promise.reject(new Error(`connection ${this.#closeInfo}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(
          this.#waiters.findIndex((w) => w.timer === timer),
          1,
        );
        reject(new Error(`no matching frame within ${timeoutMs} ms; received: ${JSON.stringify(this.frames).slice(0, 2000)}`));
      }, timeoutMs);
      this.#waiters.push({ match, resolve, reject, timer });
    });
  }

  /** Sends a well-formed request and waits for the frame with its id (reply or error). */
  request(type: string, payload: unknown = {}, id = `r${this.#nextId++}`): Promise<Frame> {
    this.send({ channel: 'control', type, id, payload });
    return this.next((frame) => frame.id === id);
  }

  /** A request that must succeed: returns its reply payload. */
  async call<T = Record<string, unknown>>(type: string, payload: unknown = {}): Promise<T> {
    const frame = await this.request(type, payload);
    if (frame.ok !== true) throw new Error(`${type} failed: ${JSON.stringify(frame.error ?? frame)}`);
    return frame.payload as T;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close(1000);
    return this.closed;
  }
}

/**
 * Opens a WebSocket. Resolves `{peer}` once open, or `{status}` with the HTTP status of a refused
 * upgrade (401, 403, ...).
 */
export function connect(url: string, options: ConnectOptions = {}): Promise<{ peer: RawPeer; status: 101 } | { peer?: undefined; status: number }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const protocols = options.subprotocolToken === undefined ? [] : [bearerSubprotocol(options.subprotocolToken)];
  const socket = new WebSocket(url, protocols, {
    headers,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    autoPong: options.autoPong ?? true,
    handshakeTimeout: 10_000,
  });
  const peer = new RawPeer(socket);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ peer, status: 101 }));
    socket.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      response.resume();
      socket.terminate();
    });
    socket.once('error', (error) => reject(error));
  });
}

/** Sends a request again and again (every 50 ms) until it succeeds: its reply frame. */
export function eventually(peer: RawPeer, type: string, payload: unknown, what: string, timeoutMs = 30_000): Promise<Frame> {
  return waitFor(
    async () => {
      const frame = await peer.request(type, payload);
      return frame.ok === true ? frame : undefined;
    },
    { what, timeoutMs },
  );
}

/** Connects and says `control.version`: a session ready for requests. */
export async function session(url: string, options: ConnectOptions): Promise<RawPeer> {
  const opened = await connect(url, options);
  if (!opened.peer) throw new Error(`${url}: upgrade refused with HTTP ${opened.status}`);
  const reply = await opened.peer.request('control.version', { protocol: 'unified-v2' });
  if (reply.ok !== true) throw new Error(`control.version failed: ${JSON.stringify(reply)}`);
  return opened.peer;
}
