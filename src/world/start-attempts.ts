import { ONE_SHOT_ROUNDS, QUICK_HANDSHAKE_MS } from '../protocol/connect-any.js';
import { ProtocolError } from '../protocol/errors.js';
import { SchemaError } from '../protocol/schemas.js';
import { ServerFailures } from '../protocol/server-failures.js';

/** A failure another attempt or server may not repeat: the network's, or a server's `unavailable` (no store) or bad frame. */
const worthRetrying = (error: unknown): boolean => (error instanceof ProtocolError && error.code === 'unavailable') || error instanceof SchemaError;

/**
 * The connection attempts of a WorldFS start, before its first full read (the mount goes live only
 * then, SPEC §1), given up as the one-shot commands give up (connectAny): at once on what a server
 * answered (a bad token, a project refused: every server of the store says the same); after
 * ONE_SHOT_ROUNDS rounds over the list while none is in reach, each round but the last with the
 * quick handshake, in one line naming each server and why. A mount started at boot beside its
 * control server so waits a few seconds for it instead of failing at once.
 */
export class StartAttempts {
  readonly #failures = new ServerFailures();
  readonly #urlCount: number;
  #roundsFailed = 0;

  constructor(urlCount: number) {
    this.#urlCount = urlCount;
  }

  /** How long a server may take to answer this attempt's connection: undefined for the client's own default. */
  get handshakeTimeoutMs(): number | undefined {
    return this.#roundsFailed < ONE_SHOT_ROUNDS - 1 ? QUICK_HANDSHAKE_MS : undefined;
  }

  /** An attempt failed; throws what ends the start (all but a server out of reach). */
  failed(url: string, error: unknown): void {
    this.#failures.note(url, error);
    if (!worthRetrying(error)) throw error;
  }

  /** Every server failed in turn once more; throws `unavailable` after the last round. */
  roundFailed(): void {
    if (++this.#roundsFailed >= ONE_SHOT_ROUNDS) throw new ProtocolError('unavailable', this.#failures.text(this.#roundsFailed, this.#urlCount));
  }
}
