import { randomBytes } from 'node:crypto';
import { push } from '../protocol/envelope.js';
import type { RelayOutcome, RelayRequest } from '../protocol/relay.js';
import type { RelayPayload } from '../protocol/types.gen.js';
import type { ControlConnection } from './connection.js';
import type { ControlMetrics } from './metrics.js';

interface Pending {
  nodeId: string;
  /** The connection it went out on: if that one closes, nobody will answer. */
  tunnel: ControlConnection;
  op: string;
  started: number;
  resolve(outcome: RelayOutcome): void;
}

/**
 * WorldFS relay on the server (SPEC §9): a requester's operation goes to the node's tunnel as a
 * `control.relay_request` push with a relay id; the node's `control.relay_reply` resolves it. A node
 * without a tunnel, or whose tunnel closes meanwhile, answers EHOSTUNREACH at once: never a hang.
 * Nothing is retried here, so an operation runs at most once (the node also de-duplicates by
 * request_id).
 */
export class RelayHub {
  #nodeConnection: (nodeId: string) => ControlConnection | undefined;
  #metrics: ControlMetrics;
  #pending = new Map<string, Pending>();
  /** The nodes each session has opened handles on: told when the session ends. */
  #sessionNodes = new Map<string, Set<string>>();
  #nextId = 1;

  constructor(nodeConnection: (nodeId: string) => ControlConnection | undefined, metrics: ControlMetrics) {
    this.#nodeConnection = nodeConnection;
    this.#metrics = metrics;
  }

  forward(request: RelayPayload, session: string): Promise<RelayOutcome> {
    const { node_id: nodeId, ...operation } = request;
    const tunnel = this.#nodeConnection(nodeId);
    if (!tunnel) return Promise.resolve(this.#count(request.op, { ok: false, errno: 'EHOSTUNREACH', message: `node ${nodeId} is not connected to the control server` }));
    const relayId = `r${this.#nextId++}`;
    return new Promise<RelayOutcome>((resolve) => {
      this.#pending.set(relayId, { nodeId, tunnel, op: request.op, started: performance.now(), resolve });
      if (request.op === 'open' || request.op === 'create') {
        const nodes = this.#sessionNodes.get(session) ?? new Set<string>();
        this.#sessionNodes.set(session, nodes.add(nodeId));
      }
      const pushed: RelayRequest = { ...operation, relay_id: relayId, session };
      tunnel.send(push('control.relay_request', pushed));
    });
  }

  /** A node's reply; only the node the request went to may answer it. */
  complete(nodeId: string, relayId: string, outcome: RelayOutcome): boolean {
    const pending = this.#pending.get(relayId);
    if (!pending || pending.nodeId !== nodeId) return false;
    this.#pending.delete(relayId);
    this.#metrics.relayLatency.observe({ op: pending.op }, (performance.now() - pending.started) / 1000);
    pending.resolve(this.#count(pending.op, outcome));
    return true;
  }

  /** A node connection closed (a reconnect may already have replaced it): what it had not answered fails now. */
  tunnelClosed(tunnel: ControlConnection): void {
    for (const [relayId, pending] of this.#pending) {
      if (pending.tunnel !== tunnel) continue;
      this.#pending.delete(relayId);
      pending.resolve(this.#count(pending.op, { ok: false, errno: 'EHOSTUNREACH', message: `node ${pending.nodeId} disconnected before it answered` }));
    }
  }

  /** A requester's connection closed: the nodes it opened handles on release them. */
  sessionGone(session: string): void {
    for (const nodeId of this.#sessionNodes.get(session) ?? []) this.#nodeConnection(nodeId)?.send(push('control.relay_session_closed', { session }));
    this.#sessionNodes.delete(session);
  }

  #count(op: string, outcome: RelayOutcome): RelayOutcome {
    this.#metrics.relayed.inc({ op, outcome: outcome.ok ? 'ok' : (outcome.errno ?? 'error') });
    return outcome;
  }
}

/**
 * A requester's relay session: unique across server restarts too (a node keeps handles for a while,
 * and connection ids start again at 1), so one session can never reach another's handles.
 */
const BOOT_ID = randomBytes(6).toString('hex');
export function relaySession(connection: ControlConnection): string {
  return `${BOOT_ID}:c${connection.id}`;
}
