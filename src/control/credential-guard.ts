import type { Logger } from 'pino';
import type { CatalogStore } from './catalog-store.js';
import type { ControlConnection } from './connection.js';
import type { ConnectionPeer } from './connection-peer.js';
import type { ConnectionSet } from './connection-set.js';
import type { TokenStore } from './token-store.js';

/**
 * Ends, with 4001, the connections whose credentials are gone: a node deleted or joined again (here,
 * or through another server of a shared store), an admin's or user's token revoked or rotated (on
 * any server of the store).
 */
export class CredentialGuard {
  readonly #connections: ConnectionSet<ControlConnection>;
  readonly #catalog: CatalogStore;
  readonly #tokens: TokenStore;
  readonly #log: Logger;
  /** The bearer token of each admin and user session, to notice its revocation or rotation. */
  readonly #tokenOf = new WeakMap<ControlConnection, string>();

  constructor(connections: ConnectionSet<ControlConnection>, catalog: CatalogStore, tokens: TokenStore, log: Logger) {
    this.#connections = connections;
    this.#catalog = catalog;
    this.#tokens = tokens;
    this.#log = log;
  }

  /** An admin's or user's session, and the token it was opened with. */
  remember(connection: ControlConnection, token: string): void {
    this.#tokenOf.set(connection, token);
  }

  /** Closes the node's connections but `except` (deleted, or joined again here). */
  dropNode(nodeId: string, why: string, except?: ConnectionPeer): void {
    for (const connection of this.#connections.ofNode(nodeId)) if (connection !== except) connection.socket.close(4001, why);
  }

  /** Closes the node's connections whose secret is no longer the node's (a join through another server replaced it). */
  async dropReplacedSecret(nodeId: string): Promise<void> {
    await Promise.all(
      this.#connections.ofNode(nodeId).map(async (connection) => {
        const { nodeSecret } = connection;
        if (nodeSecret === undefined) return;
        try {
          if (!(await this.#catalog.verifyNode(nodeId, nodeSecret))) connection.socket.close(4001, 'node joined again: its secret was replaced');
        } catch (error) {
          this.#log.warn({ err: error, node_id: nodeId }, "could not check a node connection's secret");
        }
      }),
    );
  }

  /** Closes the admin and user sessions whose token was revoked or rotated (by `acheron token`, on any server of the store). */
  async dropRevoked(): Promise<void> {
    await Promise.all(
      [...this.#connections].map(async (connection) => {
        const p = connection.principal;
        if (p.kind !== 'admin' && p.kind !== 'user') return;
        const used = this.#tokenOf.get(connection);
        if (used === undefined || !(await this.#tokens.isCurrent(p.tokenId, used))) connection.socket.close(4001, 'token revoked or rotated');
      }),
    );
  }
}
