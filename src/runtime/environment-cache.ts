/** How many service environments the spawner keeps; past it, the least recently used is dropped. */
export const ENVIRONMENT_CACHE_SIZE = 256;

/**
 * The environments the spawner holds, by id, at most `capacity`, least recently used dropped first.
 * An environment travels to the spawner once and is then named by id; the daemon keeps a mirror of
 * this cache (the same calls in the same order: IPC messages arrive in order), so it knows when one
 * was dropped and must travel again. A reload makes new environments and the old ones age out.
 */
export class EnvironmentCache<T> {
  readonly capacity: number;
  #entries = new Map<number, T>();

  constructor(capacity = ENVIRONMENT_CACHE_SIZE) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: number): T | undefined {
    return this.#entries.get(id);
  }

  /** Called for every spec that names `id`: it becomes the most recently used. */
  hold(id: number, value: T): void {
    this.#entries.delete(id);
    this.#entries.set(id, value);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as number);
  }
}
