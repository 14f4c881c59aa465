import { ControlClient, type ControlClientOptions } from './control-client.js';
import { Failover } from './control-urls.js';
import { ProtocolError } from './errors.js';
import { SchemaError } from './schemas.js';
import { ServerFailures } from './server-failures.js';

/** Refusals every server of one store gives alike: trying another one would not help. */
const FINAL_CODES = new Set(['unauthorized', 'forbidden', 'protocol_mismatch']);

/** A refusal no retry and no other server of the store would turn round (a bad token, a protocol mismatch). */
export const isFinalRefusal = (error: unknown): error is ProtocolError => error instanceof ProtocolError && FINAL_CODES.has(error.code);

/**
 * How long a client that gives up after a few rounds (the one-shot commands, a WorldFS start) lets a
 * server take to answer its connection in every round but the last: a server that accepts TCP and
 * never answers (hung, SIGSTOPped) held each attempt for ws's 10 s. A live server answers within
 * milliseconds; the last round waits the 10 s, so a server whose store lost quorum, which takes
 * seconds to refuse (its token check retries), is heard with its reason.
 */
export const QUICK_HANDSHAKE_MS = 2_000;

/** Rounds over the server list such a client tries before it gives up. */
export const ONE_SHOT_ROUNDS = 3;

/**
 * Connects to the first server of the list that answers, moving along it with Failover's pauses, at
 * most `rounds` times around; then gives up with `unavailable` naming every URL and why it failed.
 * A refusal every server would give (a bad token), or a request that could not be made, ends it at once.
 */
export async function connectAny(
  urls: readonly string[],
  options: Omit<ControlClientOptions, 'url'>,
  retry: { rounds?: number; firstMs?: number; maxMs?: number; quickHandshakeMs?: number } = {},
): Promise<ControlClient> {
  const failover = new Failover(urls, { firstMs: retry.firstMs ?? 500, maxMs: retry.maxMs ?? 4000 });
  const rounds = retry.rounds ?? ONE_SHOT_ROUNDS;
  const failures = new ServerFailures();
  for (let attempt = 0; attempt < rounds * urls.length; attempt++) {
    const url = failover.current;
    // `quickHandshakeMs` in every round but the last: a hung server is left quickly, and the last round
    // still hears a slow refusal (a 503 from a server whose store lost quorum takes seconds) and its reason.
    const lastRound = attempt >= (rounds - 1) * urls.length;
    const handshake = retry.quickHandshakeMs !== undefined && !lastRound ? { handshakeTimeoutMs: retry.quickHandshakeMs } : {};
    try {
      return await ControlClient.connect({ ...options, ...handshake, url });
    } catch (error) {
      // Neither a server's answer nor the network's (ws refused to build the request: a token that is
      // no valid header value): this side's mistake, which no retry or other server would change.
      if (isFinalRefusal(error) || !(error instanceof ProtocolError || error instanceof SchemaError)) throw error;
      failures.note(url, error);
    }
    const pause = failover.failed();
    if (attempt + 1 < rounds * urls.length) await new Promise((resolve) => setTimeout(resolve, pause));
  }
  throw new ProtocolError('unavailable', failures.text(rounds, urls.length));
}
