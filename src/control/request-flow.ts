/** Unsent bytes (replies, events) past which the server stops reading a connection until they are written. */
export const PAUSE_UNSENT_BYTES = 1 << 20;
/**
 * How long one connection's frames may keep the loop in one turn: the frames of a read that start
 * cheaply (a burst of upserts) still go out together and into one group commit; a costly one ends the turn.
 */
export const TURN_BUDGET_MS = 1;

/** What the flow needs of a ws socket: reading paused and resumed (TCP backpressure), and how far behind it is. */
export interface FlowSocket {
  pause(): void;
  resume(): void;
  readonly bufferedAmount: number;
}

/** The TCP (or TLS) socket under it: 'drain' says every byte queued has been written; `bytesWritten` how far the peer has read. */
export interface DrainSource {
  once(event: 'drain', listener: () => void): unknown;
  readonly bytesWritten: number;
}

/** Why the server does not serve a connection now: what it was sent is unsent. */
export type Holding = 'unsent' | undefined;

/**
 * One connection's requests, served in order, for at most TURN_BUDGET_MS per turn of the event loop,
 * and only while at most PAUSE_UNSENT_BYTES are unsent; the socket is not read (TCP backpressure)
 * while frames wait for their turn or while that many are unsent. One peer pipelining requests as
 * fast as it can then takes its share of the loop beside the others instead of all of it, and a
 * peer that does not read its replies stops being served. Requests that run long (a relay to a slow
 * node) do not stop the reading: the peer's pings, and its other requests, are still read.
 */
export class RequestFlow {
  readonly #socket: FlowSocket;
  readonly #drains: DrainSource | undefined;
  readonly #serve: (data: Buffer, isBinary: boolean) => Promise<void> | undefined;
  /** Frames read and not served yet (ws hands over what it had read before the pause too). */
  readonly #waiting: Array<{ data: Buffer; isBinary: boolean }> = [];
  /** The ops started and not finished: `settled` waits for them. */
  readonly #running = new Set<Promise<void>>();
  #paused = false;
  /** The socket closed: what it had read is served (a close cancels nothing), unsent bytes no longer hold it. */
  #closed = false;
  /** `settled` callers, called once nothing waits or runs. */
  #idle: Array<() => void> = [];
  #awaitingDrain = false;
  /** When this connection's turn began (performance.now()), or undefined: none this turn; past the budget, the next frame waits for the next turn. */
  #turnStartedMs: number | undefined;
  /** `bytesWritten` of the socket at the last ping. */
  #writtenAtCheck = 0;

  constructor(socket: FlowSocket, drains: DrainSource | undefined, serve: (data: Buffer, isBinary: boolean) => Promise<void> | undefined) {
    this.#socket = socket;
    this.#drains = drains;
    this.#serve = serve;
  }

  receive(data: Buffer, isBinary: boolean): void {
    this.#waiting.push({ data, isBinary });
    this.#pump();
  }

  /** The frames read and not served are not served: the server dropped the peer. */
  discard(): void {
    this.#waiting.length = 0;
  }

  closed(): void {
    this.#closed = true;
    this.#pump();
  }

  /** Resolves when every frame read has been served and every op started has ended. */
  settled(): Promise<void> {
    if (this.#waiting.length === 0 && this.#running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  get holding(): Holding {
    // Without a socket to say when it drained, unsent bytes alone never stop the reading.
    if (!this.#closed && this.#drains && this.#socket.bufferedAmount > PAUSE_UNSENT_BYTES) return 'unsent';
    return undefined;
  }

  /**
   * Called at each ping: whether a pong not seen since the last one counts against the peer. Not
   * while the server holds the socket unread for unsent bytes that the peer is reading (the pong is
   * in it): more of them written since the last ping. Unsent bytes going down would not say it, as
   * the replies of requests still running keep adding to them.
   */
  pongMissable(): boolean {
    const written = this.#drains?.bytesWritten ?? 0;
    const reading = written > this.#writtenAtCheck;
    this.#writtenAtCheck = written;
    if (!this.#paused) return true;
    return this.holding === undefined || !reading;
  }

  #pump(): void {
    while (this.#waiting.length > 0 && this.holding === undefined) {
      if (this.#turnStartedMs === undefined) {
        this.#turnStartedMs = performance.now();
        setImmediate(() => {
          this.#turnStartedMs = undefined;
          this.#pump();
        });
      } else if (performance.now() - this.#turnStartedMs >= TURN_BUDGET_MS) break;
      const { data, isBinary } = this.#waiting.shift() as { data: Buffer; isBinary: boolean };
      const running = this.#serve(data, isBinary);
      if (running) this.#track(running);
    }
    this.#steer();
    if (this.#waiting.length === 0 && this.#running.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  #track(running: Promise<void>): void {
    this.#running.add(running);
    const done = (): void => {
      this.#running.delete(running);
      this.#pump();
    };
    running.then(done, done);
  }

  /** Reads the socket only while nothing waits and nothing holds it. */
  #steer(): void {
    const holding = this.holding;
    const hold = holding !== undefined || this.#waiting.length > 0;
    if (hold && !this.#paused) this.#socket.pause();
    else if (!hold && this.#paused) this.#socket.resume();
    this.#paused = hold;
    if (holding === 'unsent' && !this.#awaitingDrain && this.#drains) {
      this.#awaitingDrain = true;
      this.#drains.once('drain', () => {
        this.#awaitingDrain = false;
        this.#pump();
      });
    }
  }
}
