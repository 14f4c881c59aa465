import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { BEARER_SUBPROTOCOL_PREFIX } from '../protocol/envelope.js';
import type { WireErrorCode } from '../protocol/errors.js';
import type { CatalogStore } from './catalog-store.js';
import type { Principal } from './principal.js';
import { PEER_TOKEN, type ServerDirectory } from './server-directory.js';
import type { TokenStore } from './token-store.js';

/** Who an upgrade request is, and how it said so: a browser offers its token as a subprotocol. */
export interface UpgradeIdentity {
  /** Undefined: no token, or one nobody has. */
  principal?: Principal;
  viaSubprotocol: boolean;
  /** An admin's or user's token, to notice its revocation or rotation. */
  token?: string;
  /** A node's secret, to notice its replacement (a join again through another server). */
  nodeSecret?: string;
}

/** What checks each kind of bearer token. */
export interface Verifiers {
  servers: ServerDirectory;
  catalog: CatalogStore;
  tokens: TokenStore;
}

/**
 * The bearer token of an upgrade (`Authorization: Bearer` or the bearer subprotocol): a peer
 * server's `server.<id>.<secret>`, a node's `node.<id>.<secret>`, else an admin or user token.
 * Rejects when the store cannot say.
 */
export async function authenticateUpgrade(request: IncomingMessage, verifiers: Verifiers): Promise<UpgradeIdentity> {
  const header = request.headers.authorization;
  let token: string | undefined;
  let viaSubprotocol = false;
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  if (header !== undefined && /^bearer /i.test(header)) token = header.slice(7).trim();
  else {
    const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const bearer = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
    if (bearer) {
      token = Buffer.from(bearer.slice(BEARER_SUBPROTOCOL_PREFIX.length), 'base64url').toString();
      viaSubprotocol = true;
    }
  }
  if (!token) return { viaSubprotocol };
  const peer = PEER_TOKEN.exec(token);
  if (peer) {
    const [, serverId, secret] = peer as unknown as [string, string, string];
    return { principal: verifiers.servers.verifyPeer(serverId, secret) ? { kind: 'peer', serverId } : undefined, viaSubprotocol };
  }
  const node = /^node\.([A-Za-z0-9._-]{1,128})\.(.+)$/.exec(token);
  if (node) {
    const [, nodeId, secret] = node as unknown as [string, string, string];
    return (await verifiers.catalog.verifyNode(nodeId, secret))
      ? { principal: { kind: 'node', nodeId }, viaSubprotocol, nodeSecret: secret }
      : { viaSubprotocol };
  }
  const principal = await verifiers.tokens.authenticate(token);
  return principal ? { principal, viaSubprotocol, token } : { viaSubprotocol };
}

/** The HTTP status of each refused upgrade, by the wire code a request would get for the same reason. */
const UPGRADE_REFUSALS = {
  unauthorized: '401 Unauthorized',
  forbidden: '403 Forbidden',
  unavailable: '503 Service Unavailable',
} as const satisfies Partial<Record<WireErrorCode, string>>;

export type UpgradeRefusal = keyof typeof UPGRADE_REFUSALS;

/** The body of a 503 upgrade refusal: not the store's error, which names its endpoints, to an unauthenticated peer. */
export const STORE_UNAVAILABLE =
  "control store: the token could not be checked (the store is unreachable or without quorum; the server's log and /readyz say why)";

/**
 * Ends an upgrade with the HTTP status of `code`; `reason` is the plain-text body, for the client
 * to show: a bare 503 does not say the store is the problem. Returns the status.
 */
export function refuseUpgrade(socket: Socket, code: UpgradeRefusal, reason?: string): string {
  const status = UPGRADE_REFUSALS[code];
  const body = reason === undefined ? '' : `${reason.replace(/\s+/g, ' ')}\n`;
  const type = body ? 'Content-Type: text/plain; charset=utf-8\r\n' : '';
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return status;
}
