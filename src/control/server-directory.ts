import { randomBytes } from 'node:crypto';

/** Another server of the store, as this one reaches it. */
export interface PeerServer {
  serverId: string;
  /** Its WebSocket listener (`--advertise-url`). */
  url: string;
}

/**
 * The servers of one store, as the relay sees them (issue 11): a node's tunnel may be on another
 * server, which this one reaches as a peer. On the file store there is only this server.
 */
export interface ServerDirectory {
  readonly serverId: string;
  /** Several servers share the store (etcd): a node's tunnel may be on another, or on one that stopped answering. */
  readonly shared: boolean;
  /** What this server presents to the others (`Authorization: Bearer server.<id>.<secret>`). */
  readonly peerToken: string;
  /** The server holding the node's tunnel when it is another one; undefined when none is known. */
  tunnelElsewhere(nodeId: string): PeerServer | undefined;
  /** Whether `secret` is that registered server's. */
  verifyPeer(serverId: string, secret: string): boolean;
}

/** A peer's bearer token: `server.<id>.<secret>`. */
export const PEER_TOKEN = /^server\.([A-Za-z0-9._:-]{1,128})\.([A-Za-z0-9_-]+)$/;

export function newPeerSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The file store's: one server, no peers. */
export function aloneDirectory(serverId: string): ServerDirectory {
  return { serverId, shared: false, peerToken: '', tunnelElsewhere: () => undefined, verifyPeer: () => false };
}
