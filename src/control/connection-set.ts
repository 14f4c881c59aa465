import type { Principal } from './principal.js';

/**
 * A server's connections, and each node's among them. What a node's event, close or new secret looks
 * up is that node's one or two tunnels: a scan of every connection per node made a fleet-wide change
 * (10,000 leases lapsing, 10,000 tunnels closing after a network cut) cost the square of the fleet.
 */
export class ConnectionSet<C extends { principal: Principal }> implements Iterable<C> {
  readonly #all = new Set<C>();
  readonly #byNode = new Map<string, Set<C>>();
  /** The node each indexed connection was filed under: a joiner's principal changes when it joins. */
  readonly #nodeOf = new Map<C, string>();

  [Symbol.iterator](): Iterator<C> {
    return this.#all[Symbol.iterator]();
  }

  add(connection: C): void {
    this.#all.add(connection);
    this.reindex(connection);
  }

  delete(connection: C): void {
    this.#all.delete(connection);
    this.#unfile(connection);
  }

  /** Files the connection under the node its principal names now (after a join made a joiner a node). */
  reindex(connection: C): void {
    this.#unfile(connection);
    const p = connection.principal;
    if (p.kind !== 'node' || !this.#all.has(connection)) return;
    let ofNode = this.#byNode.get(p.nodeId);
    if (ofNode === undefined) this.#byNode.set(p.nodeId, (ofNode = new Set()));
    ofNode.add(connection);
    this.#nodeOf.set(connection, p.nodeId);
  }

  /** The node's connections (its tunnels) here, oldest first. */
  ofNode(nodeId: string): readonly C[] {
    return [...(this.#byNode.get(nodeId) ?? [])];
  }

  hasNode(nodeId: string): boolean {
    return this.#byNode.has(nodeId);
  }

  #unfile(connection: C): void {
    const nodeId = this.#nodeOf.get(connection);
    if (nodeId === undefined) return;
    this.#nodeOf.delete(connection);
    const ofNode = this.#byNode.get(nodeId);
    ofNode?.delete(connection);
    if (ofNode?.size === 0) this.#byNode.delete(nodeId);
  }
}
