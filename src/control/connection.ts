import type { Logger } from 'pino';
import type WebSocket from 'ws';
import { errorFrame, MAX_PAYLOAD_DEPTH, NODE_FRAME_MAX_BYTES, PROTOCOL, reply, USER_FRAME_MAX_BYTES, type RequestFrame } from '../protocol/envelope.js';
import { ProtocolError } from '../protocol/errors.js';
import { jsonBoundProblem } from '../protocol/json-bounds.js';
import type { Schemas } from '../protocol/schemas.js';
import { ACHERON_VERSION } from '../protocol/version.js';
import type { ConnectionPeer } from './connection-peer.js';
import { replyFrame, SerializedPayload, type WebSocketFrame } from './frames.js';
import { opFailure } from './op-failure.js';
import { ALREADY_REPLIED, OPS, type OpContext } from './ops.js';
import { parseRequest } from './upsert-frame.js';
import type { ProjectSession } from './policy.js';
import { describePrincipal, type Principal } from './principal.js';
import { corkUntilNextTick, type Transport } from './socket-cork.js';
import { RequestFlow, type DrainSource } from './request-flow.js';
import { answersPing } from './ping-probe.js';

const REQUEST_SCHEMA = 'https://acheron.dev/schemas/control-protocol.schema.json#/definitions/request';
const VERSION_SCHEMA = 'https://acheron.dev/schemas/control-protocol.schema.json#/definitions/version';

/** ws closes with 1009 itself above the server-wide cap; this applies the per-role cap (SPEC §6). */
const TOO_BIG = 1009;
const PROTOCOL_MISMATCH = 4002;

/** The longest request id (the envelope schema's maxLength): a longer one is not echoed back. */
const MAX_ID_LENGTH = 128;
/** How far behind (bytes queued, unsent) a peer may fall before it is dropped. */
export const MAX_UNSENT_BYTES = 64 << 20;

export interface ConnectionHost {
  schemas: Schemas;
  log: Logger;
  context(connection: ControlConnection): Omit<OpContext, 'principal' | 'schemas' | 'becomeNode' | 'replyNow' | 'connection' | 'session' | 'attach'>;
  /** A joiner's join made it its node's tunnel. */
  onBecameNode(connection: ControlConnection): void;
  onClose(connection: ControlConnection): void;
}

/**
 * One peer's session: the version handshake, then every frame validated (envelope, role, payload)
 * before its op runs. A bad frame gets an error naming the field and the connection stays up; only
 * an oversize frame or a protocol mismatch (a first frame that is not the version frame, or a
 * version frame naming another protocol at any time) closes it.
 */
export class ControlConnection implements ConnectionPeer {
  readonly socket: WebSocket;
  readonly id: number;
  /** When it was accepted (this server's clock): a node's lapsed lease puts the tunnels older than it in doubt (fleet-changes.ts). */
  readonly openedMs = Date.now();
  principal: Principal;
  /**
   * The secret this connection speaks for its node with (its token's, or the one its join got): when
   * another server of a shared store replaces it, the connection ends (ControlServer).
   */
  nodeSecret: string | undefined;
  session: ProjectSession | undefined;
  #host: ConnectionHost;
  #log: Logger;
  #versioned = false;
  #missedPongs = 0;
  /** The TCP socket under `socket`: corked while a burst of frames is queued (socket-cork.ts). */
  #transport: Transport | undefined;
  /** Its requests, served in turn and within bounds (request-flow.ts). */
  readonly #flow: RequestFlow;

  constructor(socket: WebSocket, principal: Principal, id: number, host: ConnectionHost, transport?: Transport & DrainSource) {
    this.socket = socket;
    this.#transport = transport;
    this.#flow = new RequestFlow(socket, transport, (data, isBinary) => this.#onMessage(data, isBinary));
    this.principal = principal;
    this.id = id;
    this.#host = host;
    this.#log = host.log.child({ conn_id: id, principal: describePrincipal(principal) });
    socket.on('message', (data, isBinary) => this.#flow.receive(data as Buffer, isBinary));
    socket.on('pong', () => (this.#missedPongs = 0));
    socket.on('close', () => {
      this.#flow.closed();
      host.onClose(this);
    });
    socket.on('error', (error) => this.#log.debug({ err: error }, 'socket error'));
  }

  /**
   * Called every ping interval: a peer that missed two pongs is dropped (SPEC §6), unless the server
   * itself left them unread (RequestFlow.pongMissable).
   */
  ping(): void {
    if (!this.#flow.pongMissable()) this.#missedPongs = 0;
    if (this.#missedPongs >= 2) {
      if (this.#flow.holding === 'unsent')
        this.drop('not_reading', `peer does not read: ${this.socket.bufferedAmount} bytes unsent for two ping intervals, connection dropped`);
      else this.drop('missed_pongs', 'peer missed two pongs: dropping it');
      return;
    }
    this.#missedPongs++;
    this.socket.ping();
  }

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  send(frame: unknown): void {
    if (!this.isOpen) return;
    this.socket.send(JSON.stringify(frame));
    this.#dropIfNotReading();
  }

  /**
   * A frame already serialized as UTF-8 JSON, sent as text as it is (no copy, no re-encoding);
   * given in parts, as one message in as many fragments (RFC 6455 §5.4), so the parts are not joined.
   */
  sendSerialized(frame: Buffer | readonly Buffer[]): void {
    if (!this.isOpen) return;
    if (this.#transport) corkUntilNextTick(this.#transport);
    if (Buffer.isBuffer(frame)) this.socket.send(frame, { binary: false });
    else frame.forEach((part, index) => this.socket.send(part, { binary: false, fin: index === frame.length - 1 }));
    this.#dropIfNotReading();
  }

  /**
   * Written to the TCP socket as it is, beside ws: the server negotiates no extension (no
   * permessage-deflate), so ws itself writes every frame to the socket when it is sent, and frames
   * from either path leave in the order they were sent; the unsent bytes count in ws's
   * bufferedAmount all the same.
   */
  sendFrame(frame: WebSocketFrame): void {
    if (!this.isOpen) return;
    const transport = this.#transport;
    if (!transport) this.socket.send(frame.payload, { binary: false });
    else {
      corkUntilNextTick(transport);
      transport.write(frame.bytes);
    }
    this.#dropIfNotReading();
  }

  /**
   * A peer more than MAX_UNSENT_BYTES behind does not read what it asks for (replies, replays): it
   * is cut off rather than held in memory. A watch alone ends earlier, at SLOW_WATCHER_BYTES.
   */
  #dropIfNotReading(): void {
    const unsent = this.socket.bufferedAmount;
    if (unsent <= MAX_UNSENT_BYTES) return;
    this.drop('not_reading', `peer does not read: more than ${MAX_UNSENT_BYTES} bytes unsent, connection dropped`);
  }

  /**
   * Ends the connection at once, counted by `reason`: not with a close frame, which would wait
   * behind the bytes the peer does not read (holding them in memory); the peer sees 1006.
   */
  drop(reason: 'not_reading' | 'missed_pongs' | 'lease_lapsed', message: string): void {
    // A silent link is the network's doing (info); a peer that does not read is the client's (warn).
    this.#log[reason === 'not_reading' ? 'warn' : 'info']({ unsent_bytes: this.socket.bufferedAmount, reason }, message);
    this.#host.context(this).metrics.dropped.inc({ reason });
    this.#flow.discard();
    this.socket.terminate();
  }

  /**
   * Resolves when every frame this connection had read has been served and every op it started has
   * ended: a close does not cancel them (a lease refresh the node sent before it went may still be
   * committing when the close is seen).
   */
  settled(): Promise<void> {
    return this.#flow.settled();
  }

  /** Bytes queued on the socket and not yet sent: how far behind this peer is. */
  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Synchronous up to the op: the frame's bytes (and the socket read they are part of) are not
   * held while the op waits for a commit, so they die young instead of lasting, promoted, until
   * the next full collection.
   */
  #onMessage(data: Buffer, isBinary: boolean): Promise<void> | undefined {
    const cap = this.principal.kind === 'node' || this.principal.kind === 'joiner' ? NODE_FRAME_MAX_BYTES : USER_FRAME_MAX_BYTES;
    if (data.length > cap) {
      this.#fail(null, new ProtocolError('payload_too_large', `frame of ${data.length} bytes exceeds ${cap} for ${this.principal.kind} connections`));
      this.socket.close(TOO_BIG, 'frame too large');
      return undefined;
    }
    let id: string | null = null;
    try {
      if (isBinary) throw new ProtocolError('invalid_envelope', 'frames are JSON text, not binary');
      let frame: unknown;
      try {
        const { catalog } = this.#host.context(this);
        frame = parseRequest(data, (nodeId) => catalog.storedServices(nodeId));
      } catch (error) {
        throw new ProtocolError('invalid_envelope', `frame is not JSON: ${(error as Error).message}`);
      }
      // Echoed in the error only when it is an id the reply schema allows (1 to 128 characters).
      const claimed = frame && typeof frame === 'object' ? (frame as { id?: unknown }).id : undefined;
      if (typeof claimed === 'string' && claimed.length >= 1 && claimed.length <= MAX_ID_LENGTH) id = claimed;
      const problem = this.#host.schemas.problems(REQUEST_SCHEMA, frame, 'frame')[0];
      if (problem) throw new ProtocolError('invalid_envelope', problem.message, { field: problem.json_path });
      const request = frame as RequestFrame;
      return this.#dispatch(request).catch((error: unknown) => this.#refuse(request.id, error));
    } catch (error) {
      this.#refuse(id, error);
      return undefined;
    }
  }

  #refuse(id: string | null, error: unknown): void {
    // Before the handshake a frame that cannot be read is not the version frame either (SPEC §6).
    if (!this.#versioned && error instanceof ProtocolError && error.code === 'invalid_envelope')
      this.#mismatch(id, `the first frame must be control.version with protocol ${PROTOCOL}; this one is invalid: ${error.message}`);
    else this.#fail(id, error);
  }

  async #dispatch(frame: RequestFrame): Promise<void> {
    this.#host.context(this).metrics.frames.inc({ role: this.principal.kind });
    if (!this.#versioned) {
      if (frame.type !== 'control.version' || frame.payload.protocol !== PROTOCOL) {
        this.#mismatch(frame.id, `the first frame must be control.version with protocol ${PROTOCOL}`);
        return;
      }
      const problem = this.#host.schemas.problems(VERSION_SCHEMA, frame.payload, 'payload')[0];
      if (problem) {
        this.#mismatch(
          frame.id,
          `the first frame must be control.version with protocol ${PROTOCOL}; this one is invalid: ${problem.message}`,
          problem.json_path,
        );
        return;
      }
      this.#versioned = true;
      this.send(reply(frame.type, frame.id, { protocol: PROTOCOL, server_version: ACHERON_VERSION, principal: this.principal.kind }));
      return;
    }
    if (frame.type === 'control.version') {
      // After the handshake it is an op like the others: its payload is validated too.
      const problem = this.#host.schemas.problems(VERSION_SCHEMA, frame.payload, 'payload')[0];
      if (problem) throw new ProtocolError('invalid_payload', problem.message, { field: problem.json_path });
      // A peer that says it speaks another protocol cannot go on in this one, handshake or not.
      if (frame.payload.protocol !== PROTOCOL) {
        this.#mismatch(frame.id, `protocol ${JSON.stringify(frame.payload.protocol)} is not ${PROTOCOL}, the protocol of this session`, '/payload/protocol');
        return;
      }
      this.send(reply(frame.type, frame.id, { protocol: PROTOCOL, server_version: ACHERON_VERSION, principal: this.principal.kind }));
      return;
    }
    const op = OPS[frame.type];
    if (!op) throw new ProtocolError('unknown_op', `unknown op ${frame.type}`, { field: '/type' });
    if (!op.roles.includes(this.principal.kind)) {
      throw new ProtocolError('forbidden', `${frame.type} is not allowed for ${describePrincipal(this.principal)} (only for ${op.roles.join(', ')})`);
    }
    // Before the schema: ajv takes 1e400 (Infinity) for a number, and what hashes it would throw.
    const bound = jsonBoundProblem(frame.payload, MAX_PAYLOAD_DEPTH);
    if (bound !== undefined) throw new ProtocolError('invalid_payload', `payload: ${bound.pointer}: ${bound.message}`, { field: bound.pointer });
    const problem = this.#host.schemas.problems(op.schema, frame.payload, 'payload')[0];
    if (problem) throw new ProtocolError('invalid_payload', problem.message, { field: problem.json_path });
    const context: OpContext = {
      ...this.#host.context(this),
      schemas: this.#host.schemas,
      principal: this.principal,
      connection: this,
      session: this.session,
      attach: (session) => {
        this.session = session;
      },
      replyNow: (payload) => this.send(reply(frame.type, frame.id, payload)),
      becomeNode: (nodeId, secret) => {
        // The connection gauge counts it by role: it moves from joiner (or admin) to node.
        const { metrics, catalog } = this.#host.context(this);
        metrics.connections.dec({ role: this.principal.kind });
        metrics.connections.inc({ role: 'node' });
        this.principal = { kind: 'node', nodeId };
        this.#host.onBecameNode(this);
        this.nodeSecret = secret;
        catalog.tunnelOpened(nodeId, () => answersPing(this.socket));
        this.#log = this.#host.log.child({ conn_id: this.id, principal: describePrincipal(this.principal) });
      },
    };
    const result = await op.handle(context, frame.payload as never);
    if (result instanceof SerializedPayload) this.sendSerialized(replyFrame(frame.type, frame.id, result));
    else if (result !== ALREADY_REPLIED) this.send(reply(frame.type, frame.id, result));
    this.#log.debug({ op: frame.type, id: frame.id }, 'served');
  }

  /** `protocol_mismatch`, then close 4002 (SPEC §6). */
  #mismatch(id: string | null, message: string, field?: string): void {
    this.#fail(id, new ProtocolError('protocol_mismatch', message, field === undefined ? undefined : { field }));
    this.socket.close(PROTOCOL_MISMATCH, 'protocol mismatch');
  }

  #fail(id: string | null, error: unknown): void {
    const protocolError = opFailure(error);
    if (!(error instanceof ProtocolError)) this.#log.error({ err: error }, 'op failed with an unexpected error');
    this.#host.context(this).metrics.errors.inc({ code: protocolError.code });
    this.send(errorFrame(id, protocolError.toWire()));
  }
}
