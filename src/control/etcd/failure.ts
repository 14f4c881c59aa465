import { ProtocolError } from '../../protocol/errors.js';

/** etcd's default --max-request-bytes: one transaction (a node's record with its whole catalog) must fit. */
export const ETCD_REQUEST_MAX_BYTES = 1_572_864;

/**
 * An etcd failure as the wire code `unavailable` (SPEC §6): a request the store could not serve is
 * refused, never acknowledged. For a write the outcome is unknown (etcd may still apply a request
 * that timed out), so the message says to read before trying again.
 */
export function storeUnavailable(error: unknown, what: string, write: boolean): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (isRequestTooLarge(error)) {
    return new ProtocolError(
      'payload_too_large',
      `control store (etcd): ${what} failed: ${describe(error)} (etcd takes at most --max-request-bytes, ${ETCD_REQUEST_MAX_BYTES} bytes by default, per request); nothing was written`,
      { cause: error },
    );
  }
  return new ProtocolError(
    'unavailable',
    `control store (etcd): ${what} failed: ${describe(error)}${write ? '; it may or may not have been applied, read before retrying' : ''}`,
    { cause: error },
  );
}

/** etcd's --max-request-bytes (1.5 MiB by default; its gRPC server refuses beyond that + 512 KiB): refused whole, nothing written. */
export function isRequestTooLarge(error: unknown): boolean {
  return /request is too large|received message larger than max/.test(describe(error));
}

/**
 * The first line of an error's message (gRPC details can span lines), without grpc-js's empty
 * "Resolution note:"; a refused or failed connection is the socket's error alone (`connect
 * ECONNREFUSED 127.0.0.1:2379`, not `14 UNAVAILABLE: No connection established. Last error: Error: …`).
 */
export function describe(error: unknown): string {
  const line = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  const trimmed = line.replace(/\s*Resolution note:\s*$/, '').trim();
  return /^14 UNAVAILABLE: No connection established\. Last error: (?:Error: )?(.+?)\.?$/.exec(trimmed)?.[1] ?? trimmed;
}
