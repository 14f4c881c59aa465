import { GRPCOutOfRangeError, type IRangeResponse } from 'etcd3';
import type { Logger } from 'pino';
import { ProtocolError } from '../../protocol/errors.js';
import type { CatalogEvent } from '../catalog-event.js';
import { EventRing } from '../event-ring.js';
import { decodeLease, decodeServer, decodeTunnel, headSeqOf, LEASES, NODES, RETRY_MS, SERVERS, TUNNELS, type Mirrored } from './catalog-layout.js';
import type { CatalogMirror, ClosedTunnel, Listing } from './catalog-mirror.js';
import type { EtcdConnection } from './connection.js';
import { PrefixWatch, type WatchCompactedError, type WatchedChange } from './prefix-watch.js';
import { RevisionWaiters } from './revision-waiters.js';

/** Revisions of history a starting server reads into its replay ring (bounded by etcd's compaction). */
const HISTORY_RINGS = 2;

/** etcd's current revision. */
async function readHead(connection: EtcdConnection): Promise<bigint> {
  return BigInt((await connection.read('reading the catalog head', (client) => client.get(connection.key(SERVERS)).exec())).header.revision);
}

/** A read refused because etcd compacted the revision it asked for. */
function isCompacted(error: unknown): boolean {
  return error instanceof ProtocolError && error.cause instanceof GRPCOutOfRangeError && /compacted/.test(error.cause.message);
}

/**
 * The oldest revision etcd holds, newer than `compacted` (one it refused): the revision of its last
 * compaction, found by bisection between it and the head (which etcd always holds), about
 * log2(2 × ring capacity) one-key reads.
 */
async function oldestHeld(connection: EtcdConnection, compacted: bigint): Promise<bigint> {
  let gone = compacted;
  let held = await readHead(connection);
  while (held - gone > 1n) {
    const middle = (gone + held) / 2n;
    try {
      await connection.read('finding the oldest revision etcd holds', (client) => client.get(connection.key(SERVERS)).revision(String(middle)).exec());
      held = middle;
    } catch (error) {
      if (!isCompacted(error)) throw error;
      gone = middle;
    }
  }
  return held;
}

/** Every key of the catalog's areas as of one revision. */
async function listCatalog(connection: EtcdConnection, at: bigint): Promise<Listing> {
  const read = (area: string): Promise<IRangeResponse> =>
    connection.read(`listing ${area}`, (client) => client.getAll().prefix(connection.key(area)).revision(String(at)).exec());
  const [nodes, leases, tunnels, servers] = await Promise.all([read(NODES), read(LEASES), read(TUNNELS), read(SERVERS)]);
  const id = (key: Buffer, area: string): string => key.toString('utf8').slice(connection.key(area).length);
  const mirrored = <T>(kvs: IRangeResponse['kvs'], area: string, decode: (value: Buffer) => T | undefined): Map<string, Mirrored<T>> => {
    const map = new Map<string, Mirrored<T>>();
    for (const kv of kvs) {
      const value = decode(kv.value);
      if (value !== undefined) map.set(id(kv.key, area), { value, revision: BigInt(kv.mod_revision) });
    }
    return map;
  };
  return {
    revision: at,
    nodes: nodes.kvs.map((kv) => ({ key: id(kv.key, NODES), value: kv.value, revision: BigInt(kv.mod_revision) })),
    leases: mirrored(leases.kvs, LEASES, decodeLease),
    tunnels: mirrored(tunnels.kvs, TUNNELS, decodeTunnel),
    servers: new Map([...mirrored(servers.kvs, SERVERS, decodeServer)].map(([serverId, { value }]) => [serverId, value])),
  };
}

/**
 * What keeps the mirror current: a listing, then one watch of the whole prefix in revision order,
 * listed again when etcd compacted history the watch had not read. Each event goes to the replay
 * ring and its listeners; `applied` tells writes and resumes when their revision is in.
 */
export class CatalogFeed {
  readonly applied = new RevisionWaiters();
  #connection: EtcdConnection;
  #mirror: CatalogMirror;
  #log: Logger;
  #ring: EventRing;
  #watch: PrefixWatch | undefined;
  #tunnelsClosed: (closed: ClosedTunnel[]) => void;
  #closed = false;

  /** `tunnelsClosed`: the tunnel keys each revision removed, after the mirror has that revision. */
  constructor(connection: EtcdConnection, mirror: CatalogMirror, ringCapacity: number, log: Logger, tunnelsClosed: (closed: ClosedTunnel[]) => void) {
    this.#connection = connection;
    this.#mirror = mirror;
    this.#log = log;
    this.#ring = new EventRing(ringCapacity);
    this.#tunnelsClosed = tunnelsClosed;
  }

  get ring(): EventRing {
    return this.#ring;
  }

  /**
   * Reads the catalog as it was a little while ago (so the replay ring starts with that history, or
   * with what compaction left of it) and follows every change since.
   */
  async start(): Promise<void> {
    const capacity = this.#ring.capacity;
    const head = await readHead(this.#connection);
    const wanted = head - BigInt(HISTORY_RINGS * capacity);
    const listing = await this.#listHeld(wanted > 0n ? wanted : 1n, head);
    this.#adopt(listing);
    // Revision 1 is etcd's empty start: a listing there misses no event, so every seq may be resumed from.
    this.#ring = new EventRing(capacity, [], headSeqOf(listing.revision), listing.revision <= 1n ? 0 : headSeqOf(listing.revision));
    this.#ring.knownEvent(this.#newestListedEvent());
    this.#follow(listing.revision + 1n);
  }

  /**
   * The catalog as of `from`, or, when etcd compacted that revision, as of the oldest one it still
   * holds (its compaction revision): the watch from there brings every event etcd has, so resumes
   * across this start work back to the compaction; only what it removed is gone.
   */
  async #listHeld(from: bigint, head: bigint): Promise<Listing> {
    for (let at = from; ;) {
      try {
        return await listCatalog(this.#connection, at);
      } catch (error) {
        if (!isCompacted(error)) throw error;
        // `at` refused: the oldest held is newer (compacted again meanwhile, the next turn searches past it).
        const held = await oldestHeld(this.#connection, at);
        if (at === from) {
          this.#log.info(
            { from_revision: from.toString(), compact_revision: held.toString(), head_revision: head.toString() },
            'etcd compacted the catalog history before this start: the replay ring starts at the oldest revision etcd holds, so watchers resuming from before it list again',
          );
        }
        at = held;
      }
    }
  }

  waitFor(revision: bigint, timeoutMs: number): Promise<boolean> {
    return this.applied.waitFor(revision, timeoutMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.applied.close();
    await this.#watch?.close();
  }

  #adopt(listing: Listing): void {
    this.#mirror.adopt(listing);
    this.applied.reached(listing.revision);
  }

  #follow(from: bigint): void {
    this.#watch = new PrefixWatch(this.#connection, this.#connection.prefix, from, {
      changes: (changes, revision) => this.#apply(changes, revision),
      compacted: (error) => void this.#relist(error),
      state: (connected, cause) =>
        this.#log[connected ? 'info' : 'warn'](
          { err: cause },
          connected ? 'etcd catalog watch stream open (changes come once its member has a leader)' : 'etcd catalog watch disconnected; it resumes by itself',
        ),
    });
  }

  /** Changes in revision order: the mirror follows, each event goes to the ring and the listeners. */
  #apply(changes: WatchedChange[], revision: bigint): void {
    const closedTunnels = this.#mirror.apply(changes, (event) => this.#publish(event));
    this.#ring.advance(headSeqOf(revision));
    this.applied.reached(revision);
    this.#tunnelsClosed(closedTunnels);
  }

  #publish(event: CatalogEvent): void {
    this.#ring.add(event);
    try {
      this.#ring.publish(event);
    } catch (error) {
      this.#log.error({ err: error, seq: event.seq }, 'fanning out an event failed');
    }
  }

  /** The newest event the listed node records name (a deleted node's is gone with it): the last event until the watch brings one. */
  #newestListedEvent(): number {
    let newest = 0;
    for (const node of this.#mirror.nodes.values()) newest = Math.max(newest, node.seq);
    return newest;
  }

  /** The watch's history was compacted (this server was cut off from etcd that long): list again; running watches must start over. */
  async #relist(error: WatchCompactedError): Promise<void> {
    this.#log.warn({ err: error }, "etcd history compacted past this server's catalog watch: listing the catalog again");
    this.#watch = undefined;
    while (!this.#closed) {
      try {
        const listing = await listCatalog(this.#connection, await readHead(this.#connection));
        if (this.#closed) return;
        this.#adopt(listing);
        this.#ring.restart(headSeqOf(listing.revision), `etcd compacted the history this server had not yet read (${error.message}), so events were missed`);
        this.#ring.knownEvent(this.#newestListedEvent());
        this.#follow(listing.revision + 1n);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }
}
