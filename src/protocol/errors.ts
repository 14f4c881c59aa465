/**
 * Wire error codes of the control protocol (SPEC §6): one registry; docs/errors.md has the table
 * and a unit test keeps the two in step.
 */
export const WIRE_ERROR_CODES = [
  'protocol_mismatch',
  'invalid_envelope',
  'invalid_payload',
  'unknown_op',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'resync_required',
  'payload_too_large',
  'unavailable',
] as const;

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/** A refusal that travels to the peer as `{code, message, field?}`. */
export class ProtocolError extends Error {
  readonly code: WireErrorCode;
  readonly field: string | undefined;

  constructor(code: WireErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options?.field;
  }

  toWire(): { code: WireErrorCode; message: string; field?: string } {
    return { code: this.code, message: this.message, ...(this.field === undefined ? {} : { field: this.field }) };
  }
}
Object.defineProperty(ProtocolError.prototype, 'name', { value: 'ProtocolError', enumerable: false, configurable: true, writable: true });

export function isWireErrorCode(code: unknown): code is WireErrorCode {
  return typeof code === 'string' && (WIRE_ERROR_CODES as readonly string[]).includes(code);
}
