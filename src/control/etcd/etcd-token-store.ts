import type { Principal } from '../principal.js';
import {
  digestHex,
  joinNotRotatable,
  joinStale,
  joinUsable,
  lastAdmin,
  newJoinEntry,
  newToken,
  newUserEntry,
  unknownToken,
  type JoinTokenEntry,
  type ListedToken,
  type TokenEntry,
  type TokenRole,
  type TokenStore,
  type UserTokenEntry,
} from '../token-store.js';
import type { EtcdConnection } from './connection.js';
import { commitGuarded, storedObject, transact, type TxnRead, type Write } from './guarded-txn.js';
import { PrefixMirror } from './prefix-mirror.js';

/** A token as etcd keeps it: everything but the secret, which only its SHA-256 (the key) stands for. */
type StoredToken = Omit<ListedToken, 'token'>;

const TOKENS = 'tokens/';
const TOKEN_IDS = 'token-ids/';
/** Stale join tokens dropped per new join token (two deletes each; etcd allows 128 ops per txn). */
const PRUNE_BATCH = 40;
const ROLES: readonly TokenRole[] = ['admin', 'user', 'join'];

function decodeToken(value: Buffer): StoredToken | undefined {
  const object = storedObject(value)?.object;
  if (!object || typeof object.id !== 'string' || !ROLES.includes(object.role as TokenRole) || typeof object.created_ms !== 'number') return undefined;
  return object as unknown as StoredToken;
}

function decodeIndex(value: Buffer): string | undefined {
  const hex = storedObject(value)?.object.token_sha256;
  return typeof hex === 'string' ? hex : undefined;
}

/**
 * Tokens in etcd, shared by every server on it: `<prefix>tokens/<sha256 of the secret>` holds the
 * token's id, role and dates (never the secret), `<prefix>token-ids/<id>` names its digest (one id,
 * one token). A bearer token is looked up by a linearizable read of its digest's key, so a token
 * made or revoked through any server or CLI counts on every server at once; a server that follows
 * the store mirrors `tokens/` to end the sessions of revoked or rotated tokens. Spending a join token
 * is a guarded transaction: single-use across servers.
 */
export class EtcdTokenStore implements TokenStore {
  #connection: EtcdConnection;
  #mirror: PrefixMirror<StoredToken> | undefined;
  #ownsConnection: boolean;

  /** `ownsConnection`: close() closes the connection too (the CLI's store is all it opens). */
  constructor(connection: EtcdConnection, options: { ownsConnection?: boolean } = {}) {
    this.#connection = connection;
    this.#ownsConnection = options.ownsConnection ?? false;
  }

  async authenticate(token: string): Promise<Principal | undefined> {
    const kv = (await this.#connection.read('token lookup', (client) => client.get(this.#tokenKey(digestHex(token))).exec())).kvs[0];
    const stored = kv && decodeToken(kv.value);
    switch (stored?.role) {
      case 'admin':
        return { kind: 'admin', tokenId: stored.id };
      case 'user':
        return { kind: 'user', tokenId: stored.id, userId: stored.user_id ?? stored.id, agentId: stored.agent_id ?? null };
      case 'join':
        return joinUsable(joinDates(stored)) ? { kind: 'joiner', tokenId: stored.id } : undefined;
      default:
        return undefined;
    }
  }

  async consumeJoin(token: string): Promise<boolean> {
    const key = this.#tokenKey(digestHex(token));
    const { result } = await transact(this.#connection, 'spending a join token', async (read) => {
      const stored = await this.#readToken(read, key);
      if (stored?.role !== 'join' || !joinUsable(joinDates(stored))) return { writes: [], result: false };
      return { writes: [{ key, value: { ...stored, used_ms: Date.now() } }], result: true };
    });
    return result;
  }

  async returnJoin(token: string): Promise<void> {
    const key = this.#tokenKey(digestHex(token));
    await transact(this.#connection, 'giving a join token back', async (read) => {
      const stored = await this.#readToken(read, key);
      if (stored?.role !== 'join' || stored.used_ms === null) return { writes: [], result: undefined };
      return { writes: [{ key, value: { ...stored, used_ms: null } }], result: undefined };
    });
  }

  async createUser(userId: string, agentId: string | null): Promise<UserTokenEntry> {
    return this.#insert(
      () => newUserEntry(userId, agentId),
      (e) => ({ id: e.id, role: 'user', created_ms: e.created_ms, user_id: e.user_id, agent_id: e.agent_id }),
    );
  }

  async createJoin(ttlMs: number): Promise<JoinTokenEntry> {
    const entry = await this.#insert(
      () => newJoinEntry(ttlMs),
      (e) => ({ id: e.id, role: 'join', created_ms: e.created_ms, expires_ms: e.expires_ms, used_ms: null }),
    );
    // Housekeeping: the token is made, and must reach its maker, whatever befalls the pruning.
    await this.#pruneJoins().catch((error: unknown) => this.#connection.log.warn({ err: error }, 'stale join tokens not dropped: the next join tries again'));
    return entry;
  }

  async rotate(which: string): Promise<TokenEntry> {
    for (;;) {
      const id = await this.#resolve(which);
      if (id === undefined) {
        // No token `admin` or `user` (none yet, or revoked): made under that very id.
        const role = which as 'admin' | 'user';
        const made = await this.#insertAs(
          { id: which, token: newToken(role), created_ms: Date.now() },
          { id: which, role, created_ms: Date.now(), ...(role === 'user' ? { user_id: which, agent_id: null } : {}) },
        );
        if (made) return made;
        continue;
      }
      const { result } = await transact(this.#connection, `rotating token ${id}`, async (read) => {
        const hex = await this.#readIndex(read, id);
        const stored = hex === undefined ? undefined : await this.#readToken(read, this.#tokenKey(hex));
        if (hex === undefined || !stored) throw unknownToken(id);
        if (stored.role === 'join') throw joinNotRotatable(id);
        const token = newToken(stored.role);
        const fresh = digestHex(token);
        const writes: Write[] = [
          { key: this.#idKey(id), value: { token_sha256: fresh } },
          { key: this.#tokenKey(hex), delete: true },
          { key: this.#tokenKey(fresh), value: { ...stored } },
        ];
        return {
          writes,
          result: {
            id,
            token,
            created_ms: stored.created_ms,
            ...(stored.role === 'user' ? { user_id: stored.user_id, agent_id: stored.agent_id ?? null } : {}),
          },
        };
      });
      return result;
    }
  }

  async revoke(id: string): Promise<void> {
    await transact(this.#connection, `revoking token ${id}`, async (read, attempt) => {
      const hex = await this.#readIndex(read, id);
      if (hex === undefined) {
        // Gone on a later attempt: our own first attempt committed, or another revoke did.
        if (attempt > 0) return { writes: [], result: undefined };
        throw unknownToken(id);
      }
      const stored = await this.#readToken(read, this.#tokenKey(hex));
      if (stored?.role === 'admin') {
        // The other admin tokens' index keys become guards: two revokes at once cannot remove the last two.
        const others = (await this.list()).filter((t) => t.role === 'admin' && t.id !== id);
        const remaining = await Promise.all(others.map((t) => this.#readIndex(read, t.id)));
        if (!remaining.some((h) => h !== undefined)) throw lastAdmin();
      }
      return {
        writes: [
          { key: this.#idKey(id), delete: true },
          { key: this.#tokenKey(hex), delete: true },
        ],
        result: undefined,
      };
    });
  }

  async list(): Promise<ListedToken[]> {
    const { kvs } = await this.#connection.read('token list', (client) => client.getAll().prefix(this.#connection.key(TOKENS)).exec());
    const stored = kvs.map((kv) => decodeToken(kv.value)).filter((t): t is StoredToken => t !== undefined);
    const order = (t: StoredToken): number => ROLES.indexOf(t.role);
    return stored.sort((a, b) => order(a) - order(b) || a.created_ms - b.created_ms || (a.id < b.id ? -1 : 1)).map((t) => ({ ...t }));
  }

  async follow(listener: () => void): Promise<void> {
    this.#mirror ??= await PrefixMirror.open(this.#connection, TOKENS, decodeToken);
    // Join tokens open no lasting sessions: their changes (each join spends one) need no check.
    const opensSessions = (t: StoredToken | undefined): boolean => t !== undefined && t.role !== 'join';
    this.#mirror.onChange((changes) => {
      if (changes.some((c) => opensSessions(c.before) || opensSessions(c.after))) listener();
    });
  }

  async isCurrent(tokenId: string, token: string): Promise<boolean> {
    if (!this.#mirror) throw new Error('EtcdTokenStore.isCurrent before follow()');
    if (this.#mirror.get(digestHex(token))?.id === tokenId) return true;
    // The mirror may not yet hold a token made a moment ago through another server: a read decides.
    // When etcd cannot answer (the connection logs why), the mirror's word stands.
    const principal = await this.authenticate(token).catch(() => undefined);
    return principal !== undefined && 'tokenId' in principal && principal.tokenId === tokenId;
  }

  async close(): Promise<void> {
    await this.#mirror?.close();
    if (this.#ownsConnection) this.#connection.close();
  }

  #tokenKey(hex: string): string {
    return this.#connection.key(TOKENS + hex);
  }

  #idKey(id: string): string {
    return this.#connection.key(TOKEN_IDS + id);
  }

  async #readToken(read: TxnRead, key: string): Promise<StoredToken | undefined> {
    const value = await read(key);
    return value && decodeToken(value);
  }

  async #readIndex(read: TxnRead, id: string): Promise<string | undefined> {
    const value = await read(this.#idKey(id));
    return value && decodeIndex(value);
  }

  /** A token id for `admin`, `user` or an id: undefined when `admin`/`user` has no token yet. */
  async #resolve(which: string): Promise<string | undefined> {
    if (which !== 'admin' && which !== 'user') return which;
    // By id only: once revoked, `admin` or `user` is made again, never another holder's token rotated.
    return (await this.list()).find((t) => t.id === which)?.id;
  }

  /** Stores a new token under a fresh id (made again on the rare id collision). */
  async #insert<E extends TokenEntry>(make: () => E, store: (entry: E) => StoredToken): Promise<E> {
    for (;;) {
      const entry = make();
      if (await this.#insertAs(entry, store(entry))) return entry;
    }
  }

  /** Stores the token if its id is free; false when the id is taken. */
  async #insertAs<E extends TokenEntry>(entry: E, stored: StoredToken): Promise<E | undefined> {
    const hex = digestHex(entry.token);
    const { result } = await transact(this.#connection, `creating token ${entry.id}`, async (read, attempt) => {
      const taken = await this.#readIndex(read, entry.id);
      // Taken by our own first attempt (its answer lost): that is our token.
      if (taken !== undefined) return { writes: [], result: attempt > 0 && taken === hex };
      return {
        writes: [
          { key: this.#idKey(entry.id), value: { token_sha256: hex } },
          { key: this.#tokenKey(hex), value: { ...stored } },
        ],
        result: true,
      };
    });
    return result ? entry : undefined;
  }

  /** Drops spent and expired join tokens past their record time, a batch at a time; a conflict waits for the next join. */
  async #pruneJoins(): Promise<void> {
    const { kvs } = await this.#connection.read('token list', (client) => client.getAll().prefix(this.#connection.key(TOKENS)).exec());
    const stale = kvs
      .flatMap((kv) => {
        const stored = decodeToken(kv.value);
        return stored?.role === 'join' && joinStale(joinDates(stored)) ? [{ kv, stored }] : [];
      })
      .slice(0, PRUNE_BATCH);
    if (stale.length === 0) return;
    await commitGuarded(
      this.#connection,
      'dropping stale join tokens',
      stale.map(({ kv }) => ({ key: kv.key.toString('utf8'), modRevision: BigInt(kv.mod_revision) })),
      stale.flatMap(({ kv, stored }): Write[] => [
        { key: kv.key.toString('utf8'), delete: true },
        { key: this.#idKey(stored.id), delete: true },
      ]),
    );
  }
}

function joinDates(stored: StoredToken): { used_ms: number | null; expires_ms: number } {
  return { used_ms: stored.used_ms ?? null, expires_ms: stored.expires_ms ?? 0 };
}
