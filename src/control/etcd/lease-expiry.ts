import type { Logger } from 'pino';
import type { NodeRecord } from '../catalog-store.js';
import { lapsed, offlinePlan, refreshPlan } from '../node-record.js';
import { restartGraceMs } from '../restart-grace.js';
import { LEASES, TUNNELS, type StoredLease } from './catalog-layout.js';
import type { CatalogMirror, ClosedTunnel } from './catalog-mirror.js';
import type { EtcdConnection } from './connection.js';
import type { NodeChange, NodeChanges } from './node-changes.js';
import type { ServerRegistration } from './server-registration.js';

/** The lease a server writes for a node it serves: the node's deadline, set by that server. */
export function leaseOf(node: NodeRecord, serverId: string): StoredLease {
  return { expires_at_ms: node.lease_expires_at_ms, last_seen_ms: node.last_seen_ms, server_id: serverId };
}

/**
 * A lease refresh as this server writes it: the lease, and for a node that was offline its record
 * and `online` event; `result` from the refreshed record and whether it came online.
 */
export function refreshChange<R>(
  node: NodeRecord,
  now: number,
  leaseTtlMs: number,
  serverId: string,
  result: (next: NodeRecord, cameOnline: boolean) => R,
): NodeChange<R> {
  const { next, kind, delta } = refreshPlan(node, now, leaseTtlMs);
  return {
    ...(kind ? { record: { next, event: { kind, timestamp_ms: now, service_delta: delta } } } : {}),
    lease: leaseOf(next, serverId),
    result: result(next, kind !== undefined),
  };
}

export interface LeaseExpiryContext {
  connection: EtcdConnection;
  mirror: CatalogMirror;
  changes: NodeChanges;
  registration: ServerRegistration;
  startedMs: number;
  offlineGraceMs: number;
  leaseTtlMs: number;
  isClosed: () => boolean;
  log: Logger;
}

/**
 * When nodes go offline: every server sweeps lapsed leases, and the guarded `offline` write succeeds
 * once; when the server holding a node's tunnel loses it (closed, or gone with its registration),
 * the node's lease is cut to at most a grace period from then. A node whose tunnel a live server
 * holds is that server's to judge: it knows whether the node still asks for its lease.
 */
export class LeaseExpiry {
  #context: LeaseExpiryContext;
  #started = false;
  /** Nodes connected here whose last lease refresh etcd has not taken: when they last asked, and whether that one is still being written. */
  #unansweredRefreshes = new Map<string, { askedMs: number; writing: boolean }>();
  /** Tunnel keys under this server's id that its previous run left (killed, or an etcd restore): they go once that run's etcd lease lapses. */
  #leftByPreviousRun = new Set<string>();

  constructor(context: LeaseExpiryContext) {
    this.#context = context;
  }

  /** The catalog is current: nodes with no tunnel anywhere whose lease a server now gone set (it died while none watched) get a restart's grace period now. */
  start(): void {
    this.#started = true;
    const { mirror, registration } = this.#context;
    for (const node of mirror.nodes.values()) {
      const tunnelServer = mirror.tunnelServer(node.node_id);
      if (tunnelServer === registration.serverId && !registration.holds(node.node_id)) this.#leftByPreviousRun.add(node.node_id);
      if (node.state === 'online' && tunnelServer === undefined) this.startGrace(node.node_id, undefined);
    }
  }

  /**
   * Tunnel keys the watch saw go. Gone with its server (its registration expired): every survivor
   * starts the grace period; one does it. Under this server's own id but not among its tunnels: left
   * by its previous run (killed, started again under the same id). Among its tunnels: its own
   * registration lapsed while the node is still here, and re-registering puts it back.
   */
  tunnelsClosed(closed: readonly ClosedTunnel[]): void {
    if (!this.#started) return;
    const { registration, mirror } = this.#context;
    for (const { nodeId, serverId } of closed) {
      const gone = serverId === registration.serverId ? !registration.holds(nodeId) : serverId !== undefined && mirror.server(serverId) === undefined;
      if (gone) this.startGrace(nodeId, serverId);
    }
  }

  /** The node asked for a lease refresh here: etcd is to write it. */
  refreshAsked(nodeId: string): void {
    this.#unansweredRefreshes.set(nodeId, { askedMs: Date.now(), writing: true });
  }

  /** The node's lease refresh is written: nothing unanswered to remember. */
  refreshTaken(nodeId: string): void {
    this.#unansweredRefreshes.delete(nodeId);
  }

  /** The node's lease refresh is refused: it was still asking until now. */
  refreshRefused(nodeId: string): void {
    this.#unansweredRefreshes.set(nodeId, { askedMs: Date.now(), writing: false });
  }

  /** The node's tunnel here closed: its unanswered refreshes no longer say it is asking here. */
  tunnelClosed(nodeId: string): void {
    this.#unansweredRefreshes.delete(nodeId);
    this.#leftByPreviousRun.delete(nodeId);
  }

  /**
   * Every server sweeps; the guarded write of each `offline` succeeds once. None in the first grace
   * period after this server started (SPEC §6: a fresh grace after a restart). A node another live
   * server holds the tunnel of is left to that server. One connected here that asked for a refresh
   * etcd has not taken, within the lease's TTL, is alive and asking: its lease is refreshed instead
   * (SPEC §6: a lease lapses when the node stops refreshing, not when the store could not take it).
   */
  async expire(): Promise<string[]> {
    const { mirror, changes, registration, log } = this.#context;
    if (this.#context.isClosed() || Date.now() < this.#context.startedMs + this.#context.offlineGraceMs) return [];
    const heldElsewhere = (nodeId: string): boolean => {
      const holder = mirror.tunnelServer(nodeId);
      return holder !== undefined && holder !== registration.serverId && mirror.server(holder) !== undefined;
    };
    const candidates = [...mirror.nodes.values()].filter((n) => lapsed(n, Date.now()) && !heldElsewhere(n.node_id));
    const expired = await Promise.all(
      candidates.map(async ({ node_id: nodeId }) => {
        const asking = this.#stillAsking(nodeId);
        try {
          const what = asking ? `refreshing the lease of node ${nodeId} for it (etcd did not take its own refresh)` : `marking node ${nodeId} offline`;
          const { result } = await changes.run(nodeId, what, (node, now) => {
            if (!lapsed(node, now)) return { result: false };
            if (asking) return refreshChange(node, now, this.#context.leaseTtlMs, registration.serverId, () => false);
            const { next, delta } = offlinePlan(node, now);
            return {
              record: { next, event: { kind: 'offline', timestamp_ms: now, service_delta: delta } },
              guards: [{ key: this.#key(LEASES, nodeId), modRevision: mirror.lease(nodeId)?.revision ?? 0n }],
              result: true,
            };
          });
          if (asking) this.refreshTaken(nodeId);
          return result ? nodeId : undefined;
        } catch (error) {
          log.warn(
            { err: error, node_id: nodeId },
            `${asking ? "could not refresh a node's lease" : 'could not mark a node offline'}; the next sweep tries again`,
          );
          return undefined;
        }
      }),
    );
    return expired.filter((nodeId): nodeId is string => nodeId !== undefined);
  }

  /**
   * This server registered again after its registration lapsed, and the node's tunnel is still here.
   * Meanwhile the others took the node for gone with the registration: they cut its lease to a grace
   * period and may have turned it offline. Once the tunnel's peer answers a ping (an open socket
   * alone may be a peer gone without a FIN), it is here: its lease is refreshed for it now rather
   * than at its own next refresh (a third of the lease's TTL away, at worst). One that does not answer is left to that refresh, or its grace.
   */
  async heldThroughLapse(nodeId: string, answers: () => Promise<boolean>): Promise<void> {
    const { changes, registration, leaseTtlMs, log } = this.#context;
    if (this.#context.isClosed() || !(await answers())) return;
    await changes
      .run(nodeId, `refreshing the lease of node ${nodeId}, whose tunnel is here (this server registered again)`, (node, now) =>
        node && registration.holds(nodeId) ? refreshChange(node, now, leaseTtlMs, registration.serverId, () => undefined) : { result: undefined },
      )
      .catch((error: unknown) =>
        log.warn({ err: error, node_id: nodeId }, "could not refresh a node's lease after registering again; its own next refresh does"),
      );
  }

  /** Connected here, with a refresh etcd has not taken still being written or asked for within the lease's TTL. */
  #stillAsking(nodeId: string): boolean {
    const unanswered = this.#unansweredRefreshes.get(nodeId);
    if (unanswered === undefined || !this.#context.registration.holds(nodeId)) return false;
    return unanswered.writing || Date.now() - unanswered.askedMs < this.#context.leaseTtlMs;
  }

  /**
   * The tunnel of the server that set the node's lease is gone (`closedBy`; undefined: whichever
   * server set it, if that one is no longer registered or was this server's previous run under the
   * same id): the lease ends at most a grace period from now; at this server's start, or for a tunnel
   * its previous run left, a restart's grace (restartGraceMs, as on the file store: the node may have
   * been backing off while no server answered). Not when the node has a tunnel, or another server set
   * the lease since (the node is there); guarded, so a refresh or a new tunnel meanwhile wins.
   */
  startGrace(nodeId: string, closedBy: string | undefined): void {
    const { mirror, registration, offlineGraceMs } = this.#context;
    if (this.#context.isClosed()) return;
    const restarted = closedBy === undefined || this.#leftByPreviousRun.delete(nodeId);
    void this.#context.changes
      .run(nodeId, `starting the grace period of node ${nodeId}`, (node, now) => {
        const lease = mirror.lease(nodeId);
        if (node?.state !== 'online' || !lease || mirror.tunnelServer(nodeId) !== undefined || registration.holds(nodeId)) return { result: undefined };
        const owner = lease.value.server_id;
        const ownerGone = closedBy === undefined ? owner === registration.serverId || mirror.server(owner) === undefined : owner === closedBy;
        if (!ownerGone) return { result: undefined };
        const expires = restarted
          ? now + restartGraceMs(offlineGraceMs, lease.value.last_seen_ms, now)
          : Math.min(lease.value.expires_at_ms, now + offlineGraceMs);
        if (expires === lease.value.expires_at_ms) return { result: undefined };
        return {
          lease: { ...lease.value, expires_at_ms: expires },
          guards: [
            { key: this.#key(LEASES, nodeId), modRevision: lease.revision },
            { key: this.#key(TUNNELS, nodeId), modRevision: 0n },
          ],
          result: undefined,
        };
      })
      .catch((error: unknown) =>
        this.#context.log.warn({ err: error, node_id: nodeId }, "could not start a node's grace period; its lease runs out by itself"),
      );
  }

  #key(area: string, id: string): string {
    return this.#context.connection.key(area + id);
  }
}
