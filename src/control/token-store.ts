import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { Principal } from './principal.js';

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

/** `<data-dir>/auth_tokens.json` (mode 0600). */
export interface TokenFile {
  version: 1;
  admin: TokenEntry[];
  users: UserTokenEntry[];
  join: JoinTokenEntry[];
}

export const TOKENS_FILE = 'auth_tokens.json';
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

const newToken = (kind: string): string => `ach_${kind}_${randomBytes(24).toString('base64url')}`;
const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
const digestHex = (text: string): string => digest(text).toString('hex');
/** Equal-length digests, so the comparison takes the same time whatever the token. */
export const sameSecret = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

/**
 * The token file, shared by the running server and the `acheron token` helpers: every change is a
 * read-modify-write under a lock file, written by atomic rename; the server notices the new file
 * and drops sessions whose token is gone.
 */
export class TokenStore {
  readonly path: string;
  #data: TokenFile;
  #mtimeMs = 0;
  /** Changes waiting for the next read-modify-write; all those queued meanwhile share one (group commit). */
  #queued: QueuedUpdate[] = [];
  #writing: Promise<void> | undefined;
  /** The digest of every join token seen in the file, so a reload or a join hashes only new tokens. */
  #joinDigests = new Map<string, string>();
  /** This process holds the lock file (a batch is being written). */
  #locked = false;
  #reloading: Promise<boolean> | undefined;

  private constructor(path: string, data: TokenFile) {
    this.path = path;
    this.#data = data;
  }

  /** Opens the store, creating the data dir and a first admin and user token if there are none. */
  static async open(dataDir: string): Promise<TokenStore> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const store = new TokenStore(join(dataDir, TOKENS_FILE), emptyFile());
    await store.update((data) => {
      if (data.admin.length === 0) data.admin.push({ id: 'admin', token: newToken('admin'), created_ms: Date.now() });
      if (data.users.length === 0) data.users.push({ id: 'user', token: newToken('user'), user_id: 'user', agent_id: null, created_ms: Date.now() });
    });
    return store;
  }

  get data(): TokenFile {
    return this.#data;
  }

  authenticate(token: string): Principal | undefined {
    for (const entry of this.#data.admin) if (sameSecret(entry.token, token)) return { kind: 'admin', tokenId: entry.id };
    for (const entry of this.#data.users) if (sameSecret(entry.token, token)) return { kind: 'user', tokenId: entry.id, userId: entry.user_id, agentId: entry.agent_id };
    // Join tokens can be many: found by digest (a hash lookup leaks nothing about the secret).
    const entry = this.#joinByDigest().get(digestHex(token));
    if (entry && entry.used_ms === null && entry.expires_ms > Date.now()) return { kind: 'joiner', tokenId: entry.id };
    return undefined;
  }

  #joinIndex: { data: TokenFile; byDigest: Map<string, JoinTokenEntry> } | undefined;

  #joinByDigest(): Map<string, JoinTokenEntry> {
    return this.#joinsOf(this.#data);
  }

  /** `data`'s join tokens by digest, built once per version of the file (a batch of joins shares it). */
  #joinsOf(data: TokenFile): Map<string, JoinTokenEntry> {
    if (this.#joinIndex?.data !== data) this.#joinIndex = { data, byDigest: this.#indexJoins(data) };
    return this.#joinIndex.byDigest;
  }

  /** Join tokens by digest; digests of tokens no longer in the file are forgotten. */
  #indexJoins(data: TokenFile): Map<string, JoinTokenEntry> {
    const digests = new Map<string, string>();
    const byDigest = new Map<string, JoinTokenEntry>();
    for (const entry of data.join) {
      const hex = this.#joinDigests.get(entry.token) ?? digestHex(entry.token);
      digests.set(entry.token, hex);
      byDigest.set(hex, entry);
    }
    this.#joinDigests = digests;
    return byDigest;
  }

  /** Spends a join token; false when it is unknown, used or expired. */
  async consumeJoin(token: string): Promise<boolean> {
    let spent = false;
    const wanted = digestHex(token);
    await this.update((data) => {
      const entry = this.#joinsOf(data).get(wanted);
      if (entry && entry.used_ms === null && entry.expires_ms > Date.now()) {
        entry.used_ms = Date.now();
        spent = true;
      }
    });
    return spent;
  }

  createUser(userId: string, agentId: string | null): Promise<UserTokenEntry> {
    const entry: UserTokenEntry = { id: `user-${userId}${agentId ? `-${agentId}` : ''}-${randomBytes(3).toString('hex')}`, token: newToken('user'), user_id: userId, agent_id: agentId, created_ms: Date.now() };
    return this.update((data) => void data.users.push(entry)).then(() => entry);
  }

  createJoin(ttlMs: number): Promise<JoinTokenEntry> {
    const now = Date.now();
    const entry: JoinTokenEntry = { id: `join-${randomBytes(4).toString('hex')}`, token: newToken('join'), created_ms: now, expires_ms: now + ttlMs, used_ms: null };
    return this.update((data) => {
      // Spent and expired join tokens are kept a day for the record, then dropped.
      data.join = data.join.filter((e) => (e.used_ms ?? e.expires_ms) > now - 86_400_000);
      data.join.push(entry);
    }).then(() => entry);
  }

  /** `admin`, `user` (the first of each) or a token id: a new secret, same identity. */
  async rotate(which: string): Promise<TokenEntry> {
    let rotated: TokenEntry | undefined;
    await this.update((data) => {
      const entry = which === 'admin' ? data.admin[0] : which === 'user' ? data.users[0] : [...data.admin, ...data.users].find((e) => e.id === which);
      if (entry) {
        entry.token = newToken(data.admin.includes(entry) ? 'admin' : 'user');
        rotated = entry;
      }
    });
    if (!rotated) throw new Error(`no token ${JSON.stringify(which)} (see acheron token list)`);
    return rotated;
  }

  async revoke(id: string): Promise<void> {
    let found = false;
    await this.update((data) => {
      const before = data.admin.length + data.users.length + data.join.length;
      if (data.admin.length === 1 && data.admin[0]?.id === id) throw new Error('refusing to revoke the last admin token (rotate it instead)');
      data.admin = data.admin.filter((e) => e.id !== id);
      data.users = data.users.filter((e) => e.id !== id);
      data.join = data.join.filter((e) => e.id !== id);
      found = data.admin.length + data.users.length + data.join.length < before;
    });
    if (!found) throw new Error(`no token ${JSON.stringify(id)} (see acheron token list)`);
  }

  /**
   * Re-reads the file when another process changed it; true when it did. While this process holds
   * the lock, only it changes the file, and its write installs what it wrote: no reading it back.
   * Concurrent calls (every upgrade asks) share one stat and read.
   */
  reloadIfChanged(): Promise<boolean> {
    if (this.#locked) return Promise.resolve(false);
    this.#reloading ??= (async () => {
      const mtimeMs = (await stat(this.path).catch(() => undefined))?.mtimeMs;
      if (mtimeMs === undefined || mtimeMs === this.#mtimeMs || this.#locked) return false;
      this.#data = await readTokens(this.path);
      this.#mtimeMs = mtimeMs;
      return true;
    })().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /**
   * Read-modify-write under the lock file, then atomic rename. Updates from this process queue
   * here first, so only other processes (`acheron token`) ever wait on the lock file's polling;
   * the updates that queued while one was written go together in the next (100 joins at once
   * cost one rewrite, not 100). `mutate` runs on the file as read; one that throws must do so
   * before changing anything: it fails alone, the others of its batch are written.
   */
  update(mutate: (data: TokenFile) => void): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#queued.push({ mutate, resolve, reject }));
    this.#writing ??= this.#drain();
    return done;
  }

  async #drain(): Promise<void> {
    while (this.#queued.length > 0) {
      const batch = this.#queued;
      this.#queued = [];
      // Settled after the lock is released: a CLI that exits on the answer leaves no lock file behind.
      const failed = await this.#update(batch).catch((error: unknown) => new Map(batch.map((update) => [update, error as Error])));
      for (const update of batch) {
        const error = failed.get(update);
        if (error) update.reject(error);
        else update.resolve();
      }
    }
    this.#writing = undefined;
  }

  /** One read-modify-write for the batch; the updates whose `mutate` threw, with their errors. */
  async #update(batch: QueuedUpdate[]): Promise<Map<QueuedUpdate, Error>> {
    const release = await lock(`${this.path}.lock`);
    this.#locked = true;
    try {
      // The file as this process last wrote or read it needs no second parse (with 10,000 join tokens it is 2 MiB of JSON).
      const current = await stat(this.path).catch(() => undefined);
      const data = current !== undefined && this.#mtimeMs !== 0 && current.mtimeMs === this.#mtimeMs ? copyOf(this.#data) : await readTokens(this.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return emptyFile();
        throw error;
      });
      const failed = new Map<QueuedUpdate, Error>();
      for (const update of batch) {
        try {
          update.mutate(data);
        } catch (error) {
          failed.set(update, error as Error);
        }
      }
      // Compact: with 10,000 join tokens every join batch rewrites 2 MiB (`acheron token list` is for reading it).
      await writeFileAtomic(this.path, JSON.stringify(data) + '\n', 0o600);
      // Both together: a reload between them would take stale data for current.
      const { mtimeMs } = await stat(this.path);
      this.#data = data;
      this.#mtimeMs = mtimeMs;
      return failed;
    } finally {
      this.#locked = false;
      await release();
    }
  }
}

interface QueuedUpdate {
  mutate(data: TokenFile): void;
  resolve(): void;
  reject(error: Error): void;
}

/** A copy to change: what readers hold stays as it was until the write is done. */
function copyOf(data: TokenFile): TokenFile {
  return { version: 1, admin: data.admin.map((e) => ({ ...e })), users: data.users.map((e) => ({ ...e })), join: data.join.map((e) => ({ ...e })) };
}

function emptyFile(): TokenFile {
  return { version: 1, admin: [], users: [], join: [] };
}

async function readTokens(path: string): Promise<TokenFile> {
  const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<TokenFile>;
  if (!Array.isArray(parsed.admin) || !Array.isArray(parsed.users)) throw new Error(`${path}: not an Acheron token file (admin and users lists expected)`);
  return { version: 1, admin: parsed.admin, users: parsed.users, join: Array.isArray(parsed.join) ? parsed.join : [] };
}

async function lock(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(String(process.pid)).finally(() => file.close());
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) await rm(path, { force: true });
      else if (Date.now() > deadline) throw new Error(`${path}: locked by another process for over ${LOCK_WAIT_MS} ms`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
