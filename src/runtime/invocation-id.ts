/** Invocation ids `<ms>-<n>`: sortable as strings within one daemon (n is zero-padded). */
export class InvocationIds {
  #last = 0;
  #n = 0;

  next(nowMs = Date.now()): string {
    // A clock step back keeps counting on the last millisecond, so ids never repeat or go back.
    const ms = Math.max(this.#last, nowMs);
    this.#n = ms === this.#last ? this.#n + 1 : 0;
    this.#last = ms;
    return `${this.#last}-${String(this.#n).padStart(4, '0')}`;
  }
}
