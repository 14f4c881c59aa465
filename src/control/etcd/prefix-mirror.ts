import type { EtcdConnection } from './connection.js';
import { RevisionWaiters } from './revision-waiters.js';
import { PrefixWatch, type WatchCompactedError, type WatchedChange } from './prefix-watch.js';

/** A key's value before and after a change (undefined: absent); keys are relative to the mirror's prefix. */
export interface MirrorChange<T> {
  key: string;
  before: T | undefined;
  after: T | undefined;
}

/** A stored value as a T, or undefined when it is not one (then it is logged and treated as absent). */
export type Decode<T> = (value: Buffer, key: string) => T | undefined;

const RELIST_RETRY_MS = 500;

/**
 * Every key under a prefix, in memory and kept in step with etcd: listed once, then followed by a
 * PrefixWatch from the list's revision. When the watch's history is compacted the prefix is listed
 * again and the differences are reported as changes, so listeners never miss one.
 */
export class PrefixMirror<T> {
  readonly prefix: string;
  #connection: EtcdConnection;
  #decode: Decode<T>;
  #values = new Map<string, T>();
  #listeners: Array<(changes: MirrorChange<T>[]) => void> = [];
  #applied = new RevisionWaiters();
  #watch: PrefixWatch | undefined;
  #closed = false;

  private constructor(connection: EtcdConnection, prefix: string, decode: Decode<T>) {
    this.#connection = connection;
    this.prefix = prefix;
    this.#decode = decode;
  }

  /** Lists `relativePrefix` under the connection's prefix and follows it. */
  static async open<T>(connection: EtcdConnection, relativePrefix: string, decode: Decode<T>): Promise<PrefixMirror<T>> {
    const mirror = new PrefixMirror(connection, connection.key(relativePrefix), decode);
    mirror.#follow(await mirror.#list());
    return mirror;
  }

  get(key: string): T | undefined {
    return this.#values.get(key);
  }

  values(): IterableIterator<T> {
    return this.#values.values();
  }

  /** The mirror holds every change up to this revision. */
  get revision(): bigint {
    return this.#applied.revision;
  }

  onChange(listener: (changes: MirrorChange<T>[]) => void): void {
    this.#listeners.push(listener);
  }

  /** Resolves true once the mirror holds `revision` (a write's), false after `timeoutMs`. */
  waitFor(revision: bigint, timeoutMs: number): Promise<boolean> {
    return this.#applied.waitFor(revision, timeoutMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#applied.close();
    await this.#watch?.close();
  }

  async #list(): Promise<{ values: Map<string, T>; revision: bigint }> {
    const response = await this.#connection.read(`list ${this.prefix}`, (client) => client.getAll().prefix(this.prefix).exec());
    const values = new Map<string, T>();
    for (const kv of response.kvs) {
      const key = kv.key.toString('utf8').slice(this.prefix.length);
      const value = this.#decoded(kv.value, key);
      if (value !== undefined) values.set(key, value);
    }
    return { values, revision: BigInt(response.header.revision) };
  }

  /** Takes a listing as the current state, reports what differs from before, and watches from there. */
  #follow(listing: { values: Map<string, T>; revision: bigint }): void {
    const changes: MirrorChange<T>[] = [];
    for (const [key, before] of this.#values) if (!listing.values.has(key)) changes.push({ key, before, after: undefined });
    for (const [key, after] of listing.values) {
      const before = this.#values.get(key);
      if (JSON.stringify(before) !== JSON.stringify(after)) changes.push({ key, before, after });
    }
    this.#values = listing.values;
    this.#advance(listing.revision, changes);
    this.#watch = new PrefixWatch(this.#connection, this.prefix, listing.revision + 1n, {
      changes: (watched, revision) =>
        this.#advance(
          revision,
          watched.map((change) => this.#apply(change)),
        ),
      compacted: (error) => void this.#relist(error),
      state: (connected, cause) =>
        this.#connection.log[connected ? 'info' : 'warn'](
          { prefix: this.prefix, err: cause },
          connected ? 'etcd watch stream open (changes come once its member has a leader)' : 'etcd watch disconnected; it resumes by itself',
        ),
    });
  }

  #apply(change: WatchedChange): MirrorChange<T> {
    const key = change.key.slice(this.prefix.length);
    const before = this.#values.get(key);
    const after = change.value === undefined ? undefined : this.#decoded(change.value, key);
    if (after === undefined) this.#values.delete(key);
    else this.#values.set(key, after);
    return { key, before, after };
  }

  #advance(revision: bigint, changes: MirrorChange<T>[]): void {
    if (changes.length > 0) for (const listener of this.#listeners) listener(changes);
    this.#applied.reached(revision);
  }

  async #relist(error: WatchCompactedError): Promise<void> {
    this.#connection.log.warn({ err: error, prefix: this.prefix }, 'etcd history compacted past this mirror: listing the prefix again');
    this.#watch = undefined;
    while (!this.#closed) {
      try {
        const listing = await this.#list();
        if (!this.#closed) this.#follow(listing);
        return;
      } catch {
        // Logged by the connection; etcd is down: try again.
        await new Promise((resolve) => setTimeout(resolve, RELIST_RETRY_MS));
      }
    }
  }

  #decoded(value: Buffer, key: string): T | undefined {
    const decoded = this.#decode(value, key);
    if (decoded === undefined)
      this.#connection.log.warn({ key: this.prefix + key, bytes: value.length }, 'etcd value is not what Acheron stores there: ignored');
    return decoded;
  }
}
