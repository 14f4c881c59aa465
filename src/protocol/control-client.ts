import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { PROTOCOL, type ServerFrame } from './envelope.js';
import type { ServerErrorFrame, VersionReply } from './types.gen.js';
import { isWireErrorCode, ProtocolError } from './errors.js';
import { SchemaError } from './schemas.js';
import { notJson, type SentRequest, type ServerFrameCheck } from './server-frames.js';
import { REFUSED } from './server-failures.js';

interface Pending {
  request: SentRequest;
  resolve(payload: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export interface ControlClientOptions {
  url: string;
  token: string;
  /** How long a request may wait for its reply. */
  requestTimeoutMs?: number;
  /** Pushed frames (events, markers): everything without a matching request id. */
  onPush?: (frame: ServerFrame) => void;
  maxPayload?: number;
  /** How long the server may take to answer the WebSocket upgrade (default 10 s); then the connection fails. */
  handshakeTimeoutMs?: number;
  /**
   * Checks every frame before anything reads it (docs/schemas/control-replies.schema.json). A reply
   * that fails rejects its request with the SchemaError (naming the field); a push that fails goes
   * to `onInvalidPush` instead of `onPush`.
   */
  check?: ServerFrameCheck;
  onInvalidPush?: (error: SchemaError, frame: unknown) => void;
  /** PING_INTERVAL_MS unless a test says otherwise. */
  pingIntervalMs?: number;
}

/**
 * The client pings the server this often (ws answers a ping by itself, whatever the server is
 * doing) and takes a server not heard from (no pong, ping or frame) for DEAD_AFTER_PINGS intervals
 * for dead: 9 s, noticed within 12 s, well before the other servers take a hung server's nodes for
 * gone (--server-ttl-ms + --offline-grace-ms, 5 + 15 s by default), so its nodes are on another
 * server by then; three missed pongs in a row, so a loaded machine is no false alarm.
 */
const PING_INTERVAL_MS = 3_000;
const DEAD_AFTER_PINGS = 3;
/** Enough for a refusal's reason (one line); a larger body is cut. */
const REFUSAL_MAX_BYTES = 4_096;

/**
 * One WebSocket to the control server: sends `control.version` first, matches replies by id,
 * rejects every pending request with a clear error when the connection drops.
 */
export class ControlClient {
  readonly #socket: WebSocket;
  readonly #pending = new Map<string, Pending>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #closedReason: string | undefined;
  /** Why the liveness check dropped the connection. */
  #silence: string | undefined;
  /** Handed back (retire): no push, no new request; the socket stays until the requests in flight are answered. */
  #retired = false;
  /** Resolves `closed`. */
  #ended!: (how: { code: number; reason: string }) => void;
  /** The connection is over for its user: the socket closed, or the client was retired. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Who the server took the token for (its `control.version` reply). */
  principal: VersionReply['principal'] | undefined;

  private constructor(socket: WebSocket, options: ControlClientOptions) {
    this.#socket = socket;
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    const { check } = options;
    socket.on('message', (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        if (check) options.onInvalidPush?.(new SchemaError([notJson()]), data.toString());
        return;
      }
      const id = typeof parsed === 'object' && parsed !== null && 'id' in parsed && typeof parsed.id === 'string' ? parsed.id : undefined;
      const pending = id === undefined ? undefined : this.#pending.get(id);
      const problems = check?.problems(parsed, pending?.request) ?? [];
      const frame = parsed as ServerFrame;
      if (!pending || id === undefined) {
        if (this.#retired) return;
        if (problems.length > 0) options.onInvalidPush?.(new SchemaError(problems), parsed);
        else options.onPush?.(frame);
        return;
      }
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      if (problems.length > 0) pending.reject(new SchemaError(problems));
      else if (frame.ok) pending.resolve(frame.payload);
      else pending.reject(frameError(frame));
      this.#closeOnceRetiredIdle();
    });
    this.closed = new Promise((resolve) => {
      this.#ended = resolve;
      socket.on('close', (code, reason) => {
        // Dropped here for silence: that is the reason (ws has none for a connection it terminated).
        const why = reason.length ? reason.toString() : (this.#silence ?? '');
        this.#closedReason = `connection closed (${code}${why ? ` ${why}` : ''})`;
        for (const [id, pending] of this.#pending) {
          this.#pending.delete(id);
          clearTimeout(pending.timer);
          pending.reject(new ProtocolError('unavailable', `control server: ${this.#closedReason}`));
        }
        resolve({ code, reason: why });
      });
    });
  }

  /** Connects, authenticates with the bearer token and negotiates the protocol version. */
  static async connect(options: ControlClientOptions): Promise<ControlClient> {
    const socket = new WebSocket(options.url, {
      headers: { authorization: `Bearer ${options.token}` },
      maxPayload: options.maxPayload ?? 64 << 20,
      handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('unexpected-response', (_request, response) => {
        void refusalReason(response).then(({ reason, bytes }) => {
          const status = response.statusCode;
          socket.terminate();
          // A control server's refusal is one line of text; a page (a web server on that port) is named, not shown on stderr.
          if (reason.includes('\n') || reason.startsWith('<')) {
            const type = response.headers['content-type'] ?? 'no content type';
            const proxy = status !== undefined && status >= 500 ? ' (a proxy whose control server is down?)' : '';
            return reject(new ProtocolError('unavailable', `not a control server's answer: HTTP ${status} with a body of ${bytes} bytes (${type})${proxy}`));
          }
          // The server says no more on a 401 (docs/control-protocol.md), so every cause is named here.
          const detail = reason ? `: ${reason}` : status === 401 ? ' (no token, or a wrong or revoked one, or a join token already used or expired)' : '';
          reject(new ProtocolError(status === 401 ? 'unauthorized' : 'unavailable', `${REFUSED}HTTP ${status}${detail}`));
        });
      });
      socket.once('error', (error) => {
        // A server that took the connection and never answered (hung, stopped): said as such, with the bound.
        const timedOut = error.message === 'Opening handshake has timed out';
        const why = timedOut ? `no answer to the connection within ${options.handshakeTimeoutMs ?? 10_000} ms` : error.message.trim(); // one line: OpenSSL's end with a newline
        reject(new ProtocolError('unavailable', `cannot reach the control server at ${options.url}: ${why}`, { cause: error }));
      });
    });
    const client = new ControlClient(socket, options);
    socket.on('error', () => undefined);
    client.#watchLiveness(options.pingIntervalMs ?? PING_INTERVAL_MS);
    client.principal = (await client.request<VersionReply>('control.version', { protocol: PROTOCOL })).principal;
    return client;
  }

  #watchLiveness(intervalMs: number): void {
    const deadAfterMs = intervalMs * DEAD_AFTER_PINGS;
    let lastHeard = Date.now();
    let lastTick = lastHeard;
    const heard = (): void => {
      lastHeard = Date.now();
    };
    this.#socket.on('pong', heard);
    this.#socket.on('ping', heard);
    this.#socket.on('message', heard);
    const timer = setInterval(() => {
      const now = Date.now();
      // A tick long overdue: this process was stopped (SIGSTOP, a suspended VM) or starved, and what
      // the server sent meanwhile is still unread; its silence counts from now, not from before.
      if (now - lastTick > 2 * intervalMs) lastHeard = now;
      lastTick = now;
      if (now - lastHeard > deadAfterMs) {
        this.#silence = `no answer from the control server for ${deadAfterMs} ms`;
        this.#socket.terminate();
      } else this.#socket.ping();
    }, intervalMs);
    timer.unref();
    this.#socket.once('close', () => clearInterval(timer));
  }

  /** The socket itself has closed: a retired client's does once its requests in flight are answered. */
  get socketClosed(): boolean {
    return this.#socket.readyState === WebSocket.CLOSED;
  }

  get isOpen(): boolean {
    return this.#socket.readyState === WebSocket.OPEN && !this.#retired;
  }

  get retired(): boolean {
    return this.#retired;
  }

  /** One request and its reply; `timeoutMs` overrides the client's bound (every wait has one). */
  request<T = unknown>(type: string, payload: Record<string, unknown> = {}, timeoutMs = this.#timeoutMs): Promise<T> {
    if (this.#closedReason) return Promise.reject(new ProtocolError('unavailable', `control server: ${this.#closedReason}`));
    const id = String(this.#nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new NoReplyError(type, timeoutMs));
        this.#closeOnceRetiredIdle();
      }, timeoutMs);
      this.#pending.set(id, { request: { type, payload }, resolve: resolve as (payload: unknown) => void, reject, timer });
      this.#socket.send(JSON.stringify({ channel: 'control', type, id, payload }));
    });
  }

  close(): Promise<void> {
    this.#socket.close(1000);
    return this.closed.then(() => undefined);
  }

  /** Drops the connection at once (tests, shutdown on a dead peer), requests in flight too. */
  terminate(): void {
    this.#socket.terminate();
  }

  /**
   * Hands the connection back (its user moves to another server): `closed` resolves at once, no
   * push is delivered and no request taken any more, but the requests in flight keep their
   * replies (an invoke relayed before a move ends there, not in ENOTCONN); the socket closes once
   * they are answered or their own bounds pass (at once when there are none).
   */
  retire(reason: string): void {
    if (this.#closedReason !== undefined || this.#retired) return;
    this.#retired = true;
    this.#closedReason = reason;
    this.#ended({ code: 1000, reason });
    this.#closeOnceRetiredIdle();
  }

  #closeOnceRetiredIdle(): void {
    if (this.#retired && this.#pending.size === 0) this.#socket.terminate();
  }
}

/** A request the server did not answer within its bound: not a refusal (the link or the server may be stuck). */
export class NoReplyError extends ProtocolError {
  constructor(type: string, timeoutMs: number) {
    super('unavailable', `${type}: no reply within ${timeoutMs} ms`);
  }
}

/** The ProtocolError an error frame carries (a code this client does not know is taken as `unavailable`). */
export function frameError(frame: ServerErrorFrame): ProtocolError {
  const code = isWireErrorCode(frame.error?.code) ? frame.error.code : 'unavailable';
  return new ProtocolError(code, frame.error?.message ?? 'unknown error', frame.error?.field === undefined ? undefined : { field: frame.error.field });
}

/** The body of a refused upgrade, which says why (a 503: the store could not check the token); at most REFUSAL_MAX_BYTES, '' if none, and its whole length. */
function refusalReason(response: IncomingMessage): Promise<{ reason: string; bytes: number }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (): void => resolve({ reason: Buffer.concat(chunks).subarray(0, REFUSAL_MAX_BYTES).toString('utf8').trim(), bytes: length });
    response.on('data', (chunk: Buffer) => {
      if (length < REFUSAL_MAX_BYTES) chunks.push(chunk);
      length += chunk.length;
    });
    response.once('end', done);
    response.once('error', done);
    response.once('close', done);
  });
}
