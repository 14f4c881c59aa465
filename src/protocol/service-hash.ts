import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import type { ServiceDescriptor } from './types.gen.js';

/**
 * `"0x"` + 16 hex digits: the first 8 bytes of SHA-256 over the RFC 8785 canonical JSON of a
 * descriptor as the server stores it (SPEC §6), so key order does not matter. The server hashes
 * for `service_delta`; a client holding descriptors can check a delta against them.
 */
export function serviceHash(service: ServiceDescriptor): string {
  return '0x' + createHash('sha256').update(canonicalJson(service)).digest('hex').slice(0, 16);
}
