import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { removeStaleTemps, writeFileAtomic } from '../store/atomic-file.js';
import { makeDirectory } from '../store/make-directory.js';
import { namedError } from '../store/named-error.js';
import { JoinIndex } from './join-index.js';
import { lockFile } from './lock-file.js';
import type { Principal } from './principal.js';
import { copyOf, emptyFile, fileVersion, readTokens, TOKENS_FILE, type TokenFile } from './token-file.js';
import {
  digestHex,
  joinStale,
  joinNotRotatable,
  joinUsable,
  lastAdmin,
  newJoinEntry,
  newToken,
  newUserEntry,
  sameSecret,
  unknownToken,
} from './token-store.js';
import type { JoinTokenEntry, ListedToken, TokenEntry, TokenStore, UserTokenEntry } from './token-store.js';

/** How often a following server looks at the file's mtime (one stat). */
const FOLLOW_POLL_MS = 1_000;

/**
 * The token file, shared by the running server and the `acheron token` helpers: every change is a
 * read-modify-write under a lock file, written by atomic rename; a following server notices the new
 * file (one stat a second, and one per authentication) and drops sessions whose token is gone.
 * Beside it: the file's format (`token-file.ts`), the lock file (`lock-file.ts`), join tokens by
 * digest (`join-index.ts`).
 */
export class FileTokenStore implements TokenStore {
  readonly #path: string;
  #data: TokenFile;
  /** The file's identity when this process last read or wrote it (`fileVersion`); '' before that. */
  #version = '';
  /** Changes waiting for the next read-modify-write; all those queued meanwhile share one (group commit). */
  #queued: QueuedUpdate[] = [];
  #writing: Promise<void> | undefined;
  #joins = new JoinIndex();
  /** This process holds the lock file (a batch is being written). */
  #locked = false;
  #reloading: Promise<boolean> | undefined;
  /** The reload after the one in flight, shared by the calls that came during it. */
  #reloadingNext: Promise<boolean> | undefined;
  #listeners: Array<() => void> = [];
  #poll: NodeJS.Timeout | undefined;
  #log: Logger | undefined;

  private constructor(path: string, data: TokenFile, log: Logger | undefined) {
    this.#path = path;
    this.#data = data;
    this.#log = log;
  }

  /**
   * Opens the store, creating the data dir and a first admin and user token if there are none.
   * With a logger (the server), an unreadable file is logged and the tokens loaded before are kept.
   */
  static async open(dataDir: string, log?: Logger): Promise<FileTokenStore> {
    await makeDirectory(dataDir, 0o700);
    const store = new FileTokenStore(join(dataDir, TOKENS_FILE), emptyFile(), log);
    // What a writer killed mid-write left: the server and every `acheron token` write this file.
    await removeStaleTemps(store.#path, log);
    await store.#enqueue((data) => {
      if (data.admin.length === 0) data.admin.push({ id: 'admin', token: newToken('admin'), created_ms: Date.now() });
      if (data.users.length === 0) data.users.push({ id: 'user', token: newToken('user'), user_id: 'user', agent_id: null, created_ms: Date.now() });
    });
    return store;
  }

  /** The server's file as it is, for `acheron token`: no write before a change (`token list` on a read-only or full disk); temps left by a writer killed mid-write are the server's to remove at its start. */
  static existing(dataDir: string): FileTokenStore {
    return new FileTokenStore(join(dataDir, TOKENS_FILE), emptyFile(), undefined);
  }

  get data(): TokenFile {
    return this.#data;
  }

  async authenticate(token: string): Promise<Principal | undefined> {
    // Tokens made, rotated or revoked by `acheron token` a moment ago count at once (one stat).
    await this.#reload();
    for (const entry of this.#data.admin) if (sameSecret(entry.token, token)) return { kind: 'admin', tokenId: entry.id };
    for (const entry of this.#data.users)
      if (sameSecret(entry.token, token)) return { kind: 'user', tokenId: entry.id, userId: entry.user_id, agentId: entry.agent_id };
    // Join tokens can be many: found by digest (a hash lookup leaks nothing about the secret).
    const entry = this.#joins.of(this.#data).get(digestHex(token));
    if (entry && joinUsable(entry)) return { kind: 'joiner', tokenId: entry.id };
    return undefined;
  }

  /** Spends a join token; false when it is unknown, used or expired. */
  async consumeJoin(token: string): Promise<boolean> {
    let spent = false;
    const wanted = digestHex(token);
    await this.#enqueue((data) => {
      const entry = this.#joins.of(data).get(wanted);
      if (entry && joinUsable(entry)) {
        entry.used_ms = Date.now();
        spent = true;
      }
    });
    return spent;
  }

  async returnJoin(token: string): Promise<void> {
    const wanted = digestHex(token);
    await this.#enqueue((data) => {
      const entry = this.#joins.of(data).get(wanted);
      if (entry) entry.used_ms = null;
    });
  }

  createUser(userId: string, agentId: string | null): Promise<UserTokenEntry> {
    const entry = newUserEntry(userId, agentId);
    return this.#enqueue((data) => void data.users.push(entry)).then(() => entry);
  }

  createJoin(ttlMs: number): Promise<JoinTokenEntry> {
    const entry = newJoinEntry(ttlMs);
    return this.#enqueue((data) => {
      data.join = data.join.filter((e) => !joinStale(e));
      data.join.push(entry);
    }).then(() => entry);
  }

  /** `admin`, `user` (the first of each) or a token id: a new secret, same identity. */
  async rotate(which: string): Promise<TokenEntry> {
    let rotated: TokenEntry | undefined;
    await this.#enqueue((data) => {
      // By id only: `admin` and `user` are the first tokens' ids, and once revoked they are made
      // again under that id (another holder's token is never rotated in their place).
      const entry = [...data.admin, ...data.users].find((e) => e.id === which);
      if (entry) entry.token = newToken(data.admin.includes(entry) ? 'admin' : 'user');
      else if (data.join.some((e) => e.id === which)) throw joinNotRotatable(which);
      else if (which === 'admin') data.admin.push({ id: 'admin', token: newToken('admin'), created_ms: Date.now() });
      else if (which === 'user') data.users.push({ id: 'user', token: newToken('user'), user_id: 'user', agent_id: null, created_ms: Date.now() });
      rotated = entry ?? [...data.admin, ...data.users].find((e) => e.id === which);
    });
    if (!rotated) throw unknownToken(which);
    return rotated;
  }

  async revoke(id: string): Promise<void> {
    let found = false;
    await this.#enqueue((data) => {
      const before = data.admin.length + data.users.length + data.join.length;
      if (data.admin.length === 1 && data.admin[0]?.id === id) throw lastAdmin();
      data.admin = data.admin.filter((e) => e.id !== id);
      data.users = data.users.filter((e) => e.id !== id);
      data.join = data.join.filter((e) => e.id !== id);
      found = data.admin.length + data.users.length + data.join.length < before;
    });
    if (!found) throw unknownToken(id);
  }

  async list(): Promise<ListedToken[]> {
    await this.reloadIfChanged();
    const { admin, users, join: joins } = this.#data;
    return [
      ...admin.map((e): ListedToken => ({ id: e.id, role: 'admin', created_ms: e.created_ms, token: e.token })),
      ...users.map((e): ListedToken => ({ id: e.id, role: 'user', created_ms: e.created_ms, user_id: e.user_id, agent_id: e.agent_id, token: e.token })),
      ...joins.map((e): ListedToken => ({ id: e.id, role: 'join', created_ms: e.created_ms, expires_ms: e.expires_ms, used_ms: e.used_ms })),
    ];
  }

  async follow(listener: () => void): Promise<void> {
    this.#listeners.push(listener);
    this.#poll ??= setInterval(() => void this.#reload(), FOLLOW_POLL_MS).unref();
  }

  async isCurrent(tokenId: string, token: string): Promise<boolean> {
    // By secret, not by id: a rotation keeps the id.
    const entry = [...this.#data.admin, ...this.#data.users].find((e) => e.id === tokenId);
    return entry !== undefined && sameSecret(entry.token, token);
  }

  async close(): Promise<void> {
    clearInterval(this.#poll);
    this.#listeners = [];
  }

  /**
   * Re-reads the file when another process changed it; true when it did. While this process writes
   * the file (holding the lock) it installs what it wrote, read-modify-write of the file as it was:
   * no reading it back, but a caller waits for that write (a token made by another process before
   * it counts once it is done).
   * Concurrent calls (every upgrade asks) share one stat and read; a call that comes while one is in
   * flight (its stat may predate the change this caller knows of: a token made a moment ago) waits
   * for it and shares the next one.
   */
  reloadIfChanged(): Promise<boolean> {
    // A write of this process in flight installs the file as it was under the lock: wait for it, then look.
    if (this.#writing) return this.#writing.then(() => this.reloadIfChanged());
    if (this.#reloading) {
      const next = (): Promise<boolean> => {
        this.#reloadingNext = undefined;
        return this.reloadIfChanged();
      };
      this.#reloadingNext ??= this.#reloading.then(next, next);
      return this.#reloadingNext;
    }
    this.#reloading = (async () => {
      const version = fileVersion(await stat(this.#path).catch(() => undefined));
      if (version === '' || version === this.#version || this.#locked) return false;
      this.#data = await readTokens(this.#path);
      this.#version = version;
      this.#changed();
      return true;
    })().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /** A reload for the server: a file it cannot read is logged, and the tokens loaded before stay. */
  async #reload(): Promise<void> {
    await this.reloadIfChanged().catch((error: unknown) => {
      if (!this.#log) throw error;
      this.#log.error({ err: error, path: this.#path }, 'token file unreadable: keeping the tokens loaded before');
    });
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /**
   * Read-modify-write under the lock file, then atomic rename. Updates from this process queue
   * here first, so only other processes (`acheron token`) ever wait on the lock file's polling;
   * the updates that queued while one was written go together in the next (100 joins at once
   * cost one rewrite, not 100). `mutate` runs on the file as read; one that throws must do so
   * before changing anything: it fails alone, the others of its batch are written.
   */
  #enqueue(mutate: (data: TokenFile) => void): Promise<void> {
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
    const release = await lockFile(`${this.#path}.lock`);
    this.#locked = true;
    try {
      // The file as this process last wrote or read it needs no second parse (with 10,000 join tokens it is 2 MiB of JSON).
      const current = fileVersion(await stat(this.#path).catch(() => undefined));
      const data =
        current !== '' && current === this.#version
          ? copyOf(this.#data)
          : await readTokens(this.#path).catch((error: NodeJS.ErrnoException) => {
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
      await writeFileAtomic(this.#path, JSON.stringify(data) + '\n', 0o600).catch((error: unknown) => Promise.reject(namedError(this.#path, error)));
      // Both together: a reload between them would take stale data for current.
      const version = fileVersion(await stat(this.#path));
      this.#data = data;
      this.#version = version;
      this.#changed();
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
