import type { CatalogEvent } from '../catalog-event.js';
import type { EventStream } from '../catalog-store.js';
import type { RetainedWindow } from '../event-ring.js';
import type { CatalogFeed } from './catalog-feed.js';
import { revisionOfSeq } from './catalog-layout.js';

/**
 * The event stream of an etcd store, as this server delivers it: the replay ring `CatalogFeed`
 * fills from its one watch of the prefix (so every server delivers the same events in the same
 * order, whichever server wrote them). An event's seq is its write's revision × 1000 + its index in
 * the transaction (`catalog-layout.ts`).
 */
export class EtcdEventStream implements EventStream {
  readonly ringCapacity: number;
  readonly #feed: CatalogFeed;
  readonly #waitMs: number;

  /** `waitMs`: how long `reach` waits for this server's watch to show a seq another server delivered. */
  constructor(feed: CatalogFeed, ringCapacity: number, waitMs: number) {
    this.#feed = feed;
    this.ringCapacity = ringCapacity;
    this.#waitMs = waitMs;
  }

  get headSeq(): number {
    return this.#feed.ring.head;
  }

  get lastEventSeq(): number {
    return this.#feed.ring.lastEventSeq;
  }

  get retainedAfter(): number {
    return this.#feed.ring.retainedAfter;
  }

  retained(): readonly CatalogEvent[] {
    return this.#feed.ring.retained();
  }

  window(): RetainedWindow {
    return this.#feed.ring.window();
  }

  onEvent(listener: (event: CatalogEvent) => void): void {
    this.#feed.ring.onEvent(listener);
  }

  onGap(listener: (message: string) => void): void {
    this.#feed.ring.onGap(listener);
  }

  /** A seq another server delivered (its revision's) reaches this server's watch within milliseconds; one beyond etcd's head never does. */
  async reach(seq: number): Promise<void> {
    if (this.#feed.ring.head < seq) await this.#feed.waitFor(revisionOfSeq(seq), this.#waitMs);
  }
}
