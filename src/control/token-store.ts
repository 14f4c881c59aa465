import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from './principal.js';
import { TokenRefused } from './token-refused.js';

/**
 * Bearer tokens (SPEC §6 Auth) behind one interface: `FileTokenStore` keeps them in
 * `<data-dir>/auth_tokens.json`, `EtcdTokenStore` under `<prefix>tokens/` so that every server on
 * the same etcd honours a token made or revoked anywhere at once. Request handling sees only this.
 */
export interface TokenStore {
  /** The principal a bearer token stands for, as the store has it now; undefined for unknown, spent or expired tokens. */
  authenticate(token: string): Promise<Principal | undefined>;
  /** Spends a join token, once across every server; false when it is unknown, used or expired. */
  consumeJoin(token: string): Promise<boolean>;
  /** Makes a join token spent by a join that then failed usable again (until it expires): nothing joined with it. */
  returnJoin(token: string): Promise<void>;
  createUser(userId: string, agentId: string | null): Promise<UserTokenEntry>;
  createJoin(ttlMs: number): Promise<JoinTokenEntry>;
  /** `admin`, `user` (the first of each; made when there is none) or a token id: a new secret, same identity. */
  rotate(which: string): Promise<TokenEntry>;
  /** Throws when the id is unknown or is the last admin token. */
  revoke(id: string): Promise<void>;
  /** Every token; the secret only where the store keeps it (the file store). */
  list(): Promise<ListedToken[]>;
  /**
   * From now on, calls `listener` after admin or user tokens changed, by whatever server or CLI.
   * A server follows its store so that a revoked or rotated token ends its sessions (`isCurrent`).
   */
  follow(listener: () => void): Promise<void>;
  /**
   * After `follow`: whether a session opened with `token`, authenticated as `tokenId`, may go on.
   * Before saying no, a store whose copy may lag (etcd) reads the token to make sure.
   */
  isCurrent(tokenId: string, token: string): Promise<boolean>;
  close(): Promise<void>;
}

export type TokenRole = 'admin' | 'user' | 'join';

export interface TokenEntry {
  id: string;
  token: string;
  created_ms: number;
}

export interface UserTokenEntry extends TokenEntry {
  user_id: string;
  agent_id: string | null;
}

export interface JoinTokenEntry extends TokenEntry {
  expires_ms: number;
  used_ms: number | null;
}

/** One line of `acheron token list`. */
export interface ListedToken {
  id: string;
  role: TokenRole;
  created_ms: number;
  user_id?: string;
  agent_id?: string | null;
  expires_ms?: number;
  used_ms?: number | null;
  /** Absent where only a digest is kept (etcd). */
  token?: string;
}

/** Spent and expired join tokens are kept this long for the record, then dropped. */
export const JOIN_RECORD_MS = 86_400_000;

export const newToken = (kind: TokenRole): string => `ach_${kind}_${randomBytes(24).toString('base64url')}`;
const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
/** SHA-256 of a token, hex: tokens carry 192 random bits, so an unsalted digest cannot be reversed. */
export const digestHex = (text: string): string => digest(text).toString('hex');
/** Equal-length digests, so the comparison takes the same time whatever the token. */
export const sameSecret = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

export function newUserEntry(userId: string, agentId: string | null): UserTokenEntry {
  return {
    id: `user-${userId}${agentId ? `-${agentId}` : ''}-${randomBytes(3).toString('hex')}`,
    token: newToken('user'),
    user_id: userId,
    agent_id: agentId,
    created_ms: Date.now(),
  };
}

export function newJoinEntry(ttlMs: number): JoinTokenEntry {
  const now = Date.now();
  return { id: `join-${randomBytes(4).toString('hex')}`, token: newToken('join'), created_ms: now, expires_ms: now + ttlMs, used_ms: null };
}

/** A join token may still be spent. */
export const joinUsable = (entry: { used_ms: number | null; expires_ms: number }, now = Date.now()): boolean =>
  entry.used_ms === null && entry.expires_ms > now;

/** A spent or expired join token past its record time. */
export const joinStale = (entry: { used_ms: number | null; expires_ms: number }, now = Date.now()): boolean =>
  (entry.used_ms ?? entry.expires_ms) <= now - JOIN_RECORD_MS;

export const unknownToken = (id: string): TokenRefused =>
  new TokenRefused(`no token ${JSON.stringify(id)} (never made, or already revoked: see acheron token list)`);
export const joinNotRotatable = (id: string): TokenRefused =>
  new TokenRefused(`token ${JSON.stringify(id)} is a join token: join tokens are single-use and cannot be rotated (make a new one with acheron token join)`);
export const lastAdmin = (): TokenRefused => new TokenRefused('refusing to revoke the last admin token (rotate it instead)');
