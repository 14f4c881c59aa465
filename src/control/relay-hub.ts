import { randomBytes } from 'node:crypto';
import { errnoLabel } from '../errors/errno.js';
import { push } from '../protocol/envelope.js';
import { invokeWaitMs, RELAY_WAIT_MS } from '../protocol/relay.js';
import type { RelayOutcome, RelayPayload, RelayRequest } from '../protocol/types.gen.js';
import type { CatalogStore } from './catalog-store.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { ControlMetrics } from './metrics.js';
import type { PeerLinks } from './peer-links.js';
import type { PeerServer, ServerDirectory } from './server-directory.js';

interface Pending {
  nodeId: string;
  /** The connection it went out on: if that one closes, nobody will answer. */
  tunnel: ConnectionPeer;
  op: string;
  started: number;
  timer: NodeJS.Timeout;
  resolve(outcome: RelayOutcome): void;
}

/** Operations that may leave a handle or a staged payload on the node, for the session to release. */
const LEAVES_STATE = new Set(['open', 'create', 'read_file', 'invoke', 'stage']);

/**
 * How long the server waits for the node's answer to a relay: the requester's `timeout_ms`; for an
 * invoke that states none, invokeWaitMs of the service's descriptor in this server's catalog (a
 * requester without `read` cannot see the descriptor, and a day would hold its wait on a node that
 * never answers); else, as for a service not in the catalog (the node names it absent), RELAY_WAIT_MS.
 */
export function relayWaitMs(catalog: Pick<CatalogStore, 'service'>, request: RelayPayload): number {
  if (request.timeout_ms !== undefined) return request.timeout_ms;
  const [top, serviceId] = request.path.split('/').filter(Boolean);
  const runtime = request.op === 'invoke' && top === 'services' && serviceId !== undefined ? catalog.service(request.node_id, serviceId)?.runtime : undefined;
  return runtime ? invokeWaitMs(runtime) : RELAY_WAIT_MS;
}

/**
 * WorldFS relay on the server (SPEC §9): a requester's operation goes to the node's tunnel as a
 * `control.relay_request` push with a relay id; the node's `control.relay_reply` resolves it. A
 * connection becomes a tunnel when its node says it is ready (`control.relay_ready`, after the
 * version handshake and its own set-up), so a relay never reaches a connection that would drop it.
 * Every wait has a bound: a node without a ready tunnel, or whose tunnel closes meanwhile, answers
 * EHOSTUNREACH at once; one that does not answer within relayWaitMs answers ETIMEDOUT. Nothing is
 * retried here, so an operation runs at most once (the node also de-duplicates by request_id).
 *
 * On a store with several servers (etcd) a node without a tunnel here may have one on another
 * server: the relay goes there over a peer link (PeerLinks), once, and that server forwards it to
 * the node without forwarding it again (`via`), within the bound this server derived: it goes over
 * as the relay's `timeout_ms`, so both servers wait as long (the peer's link PEER_SLACK_MS longer).
 */
export class RelayHub {
  #metrics: ControlMetrics;
  #servers: ServerDirectory;
  #peers: PeerLinks;
  #catalog: Pick<CatalogStore, 'service' | 'nodeState'>;
  /** The peers each session reached nodes through (for handles): told when the session ends. */
  #sessionPeers = new Map<string, Map<string, PeerServer>>();
  /** Each node's ready tunnels, oldest first: a reconnect may overlap the connection it replaces. */
  #tunnels = new Map<string, ConnectionPeer[]>();
  /** See doubt(). */
  #inDoubt = new WeakSet<ConnectionPeer>();
  #pending = new Map<string, Pending>();
  /** The nodes each session has opened handles on: told when the session ends. */
  #sessionNodes = new Map<string, Set<string>>();
  /**
   * The sessions each peer server's link forwarded here (by the link's own session): they end with
   * the link too, for a server that died cannot say `relay_session_gone` for its sessions.
   */
  #forwardedVia = new Map<string, Set<string>>();
  #nextId = 1;

  constructor(metrics: ControlMetrics, servers: ServerDirectory, peers: PeerLinks, catalog: Pick<CatalogStore, 'service' | 'nodeState'>) {
    this.#metrics = metrics;
    this.#servers = servers;
    this.#peers = peers;
    this.#catalog = catalog;
  }

  /** The node behind this connection serves relays from now on; the newest ready tunnel gets them. */
  tunnelReady(nodeId: string, tunnel: ConnectionPeer): void {
    const tunnels = this.#tunnels.get(nodeId) ?? [];
    if (!tunnels.includes(tunnel)) this.#tunnels.set(nodeId, [...tunnels, tunnel]);
  }

  /**
   * Its node's lease lapsed while this tunnel looked open (or stays in doubt until it answers a ping:
   * fleet-changes.ts): a silent link, most likely, that a relay would wait on for nothing.
   */
  doubt(tunnel: ConnectionPeer, inDoubt: boolean): void {
    if (inDoubt) this.#inDoubt.add(tunnel);
    else this.#inDoubt.delete(tunnel);
  }

  #tunnel(nodeId: string): ConnectionPeer | undefined {
    return this.#tunnels.get(nodeId)?.findLast((tunnel) => !this.#inDoubt.has(tunnel));
  }

  /** Why a node has no tunnel to relay to, as far as this server knows: the operator's next step differs. */
  #noTunnel(nodeId: string): string {
    const state = this.#catalog.nodeState(nodeId);
    if (state === 'offline') return `node ${nodeId} is offline (its lease lapsed or its tunnel closed: no tunnel to relay to)`;
    if (state === undefined || !this.#servers.shared)
      return `node ${nodeId} has no tunnel ready for relays (not connected to the control server, or still starting up)`;
    return `node ${nodeId} is online but no server of the store holds a tunnel of it that serves now (it closed, its server stopped answering or was cut off from the store, or the node is starting up): it connects again, or turns offline after the grace period`;
  }

  /** `via`: a peer server's forward (the session of its link), served only by a tunnel here. */
  forward(request: RelayPayload, session: string, options: { via?: string } = {}): Promise<RelayOutcome> {
    const waitMs = relayWaitMs(this.#catalog, request);
    const { node_id: nodeId, timeout_ms: _stated, ...operation } = request;
    const started = performance.now();
    const tunnel = this.#tunnel(nodeId);
    const peer = tunnel || options.via !== undefined ? undefined : this.#servers.tunnelElsewhere(nodeId);
    if (peer) {
      if (LEAVES_STATE.has(request.op)) {
        const peers = this.#sessionPeers.get(session) ?? new Map<string, PeerServer>();
        this.#sessionPeers.set(session, peers.set(peer.serverId, peer));
      }
      return this.#peers.forward(peer, { ...request, timeout_ms: waitMs }, session).then((outcome) => this.#ended(request.op, started, outcome));
    }
    if (!tunnel) return Promise.resolve(this.#ended(request.op, started, { ok: false, errno: 'EHOSTUNREACH', message: this.#noTunnel(nodeId) }));
    const relayId = `r${this.#nextId++}`;
    return new Promise<RelayOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(relayId);
        resolve(
          this.#ended(request.op, started, {
            ok: false,
            errno: 'ETIMEDOUT',
            message: `node ${nodeId} did not answer ${request.op} ${request.path} within ${waitMs} ms`,
          }),
        );
      }, waitMs);
      timer.unref();
      this.#pending.set(relayId, { nodeId, tunnel, op: request.op, started, timer, resolve });
      if (LEAVES_STATE.has(request.op)) {
        const nodes = this.#sessionNodes.get(session) ?? new Set<string>();
        this.#sessionNodes.set(session, nodes.add(nodeId));
        if (options.via !== undefined) this.#forwardedVia.set(options.via, (this.#forwardedVia.get(options.via) ?? new Set<string>()).add(session));
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
    clearTimeout(pending.timer);
    pending.resolve(this.#ended(pending.op, pending.started, outcome));
    return true;
  }

  /** A node connection closed (a reconnect may already have replaced it): what it had not answered fails now. */
  tunnelClosed(tunnel: ConnectionPeer): void {
    for (const [nodeId, tunnels] of this.#tunnels) {
      if (!tunnels.includes(tunnel)) continue;
      const left = tunnels.filter((t) => t !== tunnel);
      if (left.length > 0) this.#tunnels.set(nodeId, left);
      else this.#tunnels.delete(nodeId);
    }
    for (const [relayId, pending] of this.#pending) {
      if (pending.tunnel !== tunnel) continue;
      this.#pending.delete(relayId);
      clearTimeout(pending.timer);
      pending.resolve(
        this.#ended(pending.op, pending.started, { ok: false, errno: 'EHOSTUNREACH', message: `node ${pending.nodeId} disconnected before it answered` }),
      );
    }
  }

  /**
   * A requester's connection closed: the nodes it opened handles (or staged payloads) on release
   * them, here and through peers; a peer server's link: so do the sessions it forwarded.
   */
  sessionGone(session: string): void {
    for (const nodeId of this.#sessionNodes.get(session) ?? []) this.#tunnel(nodeId)?.send(push('control.relay_session_closed', { session }));
    this.#sessionNodes.delete(session);
    const forwarded = this.#forwardedVia.get(session);
    this.#forwardedVia.delete(session);
    for (const gone of forwarded ?? []) this.sessionGone(gone);
    // Told by its server (relay_session_gone): the link no longer needs to end it.
    for (const sessions of this.#forwardedVia.values()) sessions.delete(session);
    for (const peer of this.#sessionPeers.get(session)?.values() ?? []) this.#peers.sessionGone(peer, session);
    this.#sessionPeers.delete(session);
  }

  /** Every relay ends here, once: counted and observed with its outcome (a hung node shows in the latency as ETIMEDOUT). */
  #ended(op: string, started: number, outcome: RelayOutcome): RelayOutcome {
    const labels = { op, outcome: outcome.ok ? 'ok' : errnoLabel(outcome.errno) };
    this.#metrics.relay.operations.inc(labels);
    this.#metrics.relay.latency.observe(labels, (performance.now() - started) / 1000);
    return outcome;
  }
}

/**
 * A requester's relay session: unique across server restarts too (a node keeps handles for a while,
 * and connection ids start again at 1), so one session can never reach another's handles.
 */
const BOOT_ID = randomBytes(6).toString('hex');
export function relaySession(connection: ConnectionPeer): string {
  return `${BOOT_ID}:c${connection.id}`;
}
