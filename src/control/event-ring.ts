import type { CatalogEvent } from './catalog-event.js';

/** Events kept in memory for replay (SPEC §6). */
export const RING_CAPACITY = 1024;
/**
 * ... and at most this many bytes of the descriptors they changed: 1024 events of a large catalog
 * whose every descriptor changes (7.7 MB each) held gigabytes, and came back after a restart.
 */
export const RING_MAX_BYTES = 256 << 20;

export interface RetainedWindow {
  events: number;
  capacity: number;
  oldest_seq: number | null;
  newest_seq: number | null;
  oldest_ms: number | null;
  newest_ms: number | null;
  window_ms: number;
}

/**
 * The recent events of a catalog for replay, the head seq and the listeners, as both stores keep
 * them. Seqs need not be contiguous (etcd's are revisions): what a resume may rely on is
 * `retainedAfter`, the seq after which the ring holds every event.
 */
export class EventRing {
  readonly capacity: number;
  readonly maxBytes: number;
  #events: CatalogEvent[];
  /** The changedBytes of the events kept. */
  #bytes = 0;
  #head: number;
  #lastEvent: number;
  #after: number;
  #listeners: Array<(event: CatalogEvent) => void> = [];
  #gapListeners: Array<(message: string) => void> = [];

  /** `events`: the retained ones, oldest first, every event after `after` (default: the seq before the first, or the head when there are none). */
  constructor(capacity: number, events: CatalogEvent[] = [], head = 0, after?: number, maxBytes = RING_MAX_BYTES) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    this.#events = events.slice(-capacity);
    this.#head = head;
    this.#lastEvent = this.#events.at(-1)?.seq ?? 0;
    this.#after = after ?? (this.#events[0] ? this.#events[0].seq - 1 : head);
    this.#bytes = this.#events.reduce((sum, e) => sum + e.changedBytes, 0);
    this.#trim();
  }

  get head(): number {
    return this.#head;
  }

  /** The seq of the newest event this ring was given or told of: unlike the head, it moves only with an event. */
  get lastEventSeq(): number {
    return this.#lastEvent;
  }

  get retainedAfter(): number {
    return this.#after;
  }

  retained(): readonly CatalogEvent[] {
    return this.#events;
  }

  onEvent(listener: (event: CatalogEvent) => void): void {
    this.#listeners.push(listener);
  }

  onGap(listener: (message: string) => void): void {
    this.#gapListeners.push(listener);
  }

  /** Keeps the event (the oldest go when full) and makes it the head; the listeners are told by `publish`. */
  add(event: CatalogEvent): void {
    this.#events.push(event);
    this.#bytes += event.changedBytes;
    this.#head = event.seq;
    this.#lastEvent = event.seq;
    this.#trim();
  }

  /** An event known without being given (read with the catalog: its record names it), newer than any given so far. */
  knownEvent(seq: number): void {
    if (seq > this.#lastEvent) this.#lastEvent = seq;
  }

  /** The oldest go while there are more than `capacity`, or more than `maxBytes` (the newest always stays). */
  #trim(): void {
    while (this.#events.length > this.capacity || (this.#bytes > this.maxBytes && this.#events.length > 1)) {
      const oldest = this.#events.shift() as CatalogEvent;
      this.#bytes -= oldest.changedBytes;
      this.#after = oldest.seq;
    }
  }

  /** Tells the listeners; one that throws does not keep the others from it (the event is durable). */
  publish(event: CatalogEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  /** Every seq up to `seq` has been delivered, none of them an event (etcd: other keys' revisions). */
  advance(seq: number): void {
    if (seq > this.#head) this.#head = seq;
  }

  /** Events up to `seq` were lost to this ring: it restarts empty there, and the listeners of gaps are told why. */
  restart(seq: number, message: string): void {
    this.#events = [];
    this.#bytes = 0;
    this.#head = Math.max(this.#head, seq);
    this.#after = this.#head;
    for (const listener of this.#gapListeners) listener(message);
  }

  window(): RetainedWindow {
    const oldest = this.#events[0];
    const newest = this.#events[this.#events.length - 1];
    return {
      events: this.#events.length,
      capacity: this.capacity,
      oldest_seq: oldest?.seq ?? null,
      newest_seq: newest?.seq ?? null,
      oldest_ms: oldest?.timestamp_ms ?? null,
      newest_ms: newest?.timestamp_ms ?? null,
      window_ms: oldest && newest ? newest.timestamp_ms - oldest.timestamp_ms : 0,
    };
  }
}
