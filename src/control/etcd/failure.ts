import { isBrokenCircuitError } from 'cockatiel';
import { ProtocolError } from '../../protocol/errors.js';

/**
 * An etcd failure as the wire code `unavailable` (SPEC §6): a request the store could not serve is
 * refused, never acknowledged. For a write the outcome is unknown (etcd may still apply a request
 * that timed out), so the message says to read before trying again.
 */
export function storeUnavailable(error: unknown, what: string, write: boolean): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const reason = isBrokenCircuitError(error) ? 'no etcd member answered recently' : describe(error);
  return new ProtocolError('unavailable', `control store (etcd): ${what} failed: ${reason}${write ? '; it may or may not have been applied, read before retrying' : ''}`, { cause: error });
}

/** The first line of an error's message (gRPC details can span lines), without grpc-js's empty "Resolution note:". */
export function describe(error: unknown): string {
  const line = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  return line.replace(/\s*Resolution note:\s*$/, '').trim();
}
