/** Who is on the other end of a connection (SPEC §6 Auth). */
export type Principal =
  | { kind: 'admin'; tokenId: string }
  | { kind: 'user'; tokenId: string; userId: string; agentId: string | null }
  | { kind: 'node'; nodeId: string }
  /** Holds a single-use join token: may only say its version and join. */
  | { kind: 'joiner'; tokenId: string }
  /** Another server of the same store, forwarding relays to the node tunnels this one holds. */
  | { kind: 'peer'; serverId: string };

export type Role = Principal['kind'];

/** Every role, so that metrics by role have a series (0) before the first connection of each. */
export const ROLES: readonly Role[] = ['admin', 'user', 'node', 'joiner', 'peer'];

export function describePrincipal(p: Principal): string {
  switch (p.kind) {
    case 'admin':
      return `admin (${p.tokenId})`;
    case 'user':
      return `user ${p.userId}${p.agentId ? ` agent ${p.agentId}` : ''}`;
    case 'node':
      return `node ${p.nodeId}`;
    case 'joiner':
      return `joining node (${p.tokenId})`;
    case 'peer':
      return `server ${p.serverId}`;
  }
}
