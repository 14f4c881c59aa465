import { canonicalJson } from '../protocol/canonical-json.js';
import { NODE_FRAME_MAX_BYTES } from '../protocol/envelope.js';

/**
 * Room left in the server's node frame cap (docs/control-protocol.md: 16 MiB; a larger frame is
 * closed with 1009) for the envelope around an upsert's payload: channel, type and an id.
 */
const ENVELOPE_BYTES = 1024;

/** What an upsert of the catalog leaves out to fit the frame cap, and why. */
export interface CatalogFit<T> {
  /** The services that fit, in the catalog's order. */
  services: T[];
  /** Those left out, largest first, with their JSON's size; empty when the whole catalog fits. */
  left: Array<{ service_id: string; bytes: number }>;
  /** The size the whole upsert would have had. */
  wholeBytes: number;
  capBytes: number;
}

/**
 * Each service's JSON, as the node already writes it to tell a changed catalog (canonical: sorted
 * members, the same bytes as JSON.stringify in another order), and the catalog's digest made of
 * them: `fitCatalog` sizes the services by these strings instead of writing each one again.
 */
export function catalogJson(services: readonly object[]): { json: string[]; digest: string } {
  const json = services.map((service) => canonicalJson(service));
  return { json, digest: `[${json.join(',')}]` };
}

/**
 * The upsert's services, so that its frame stays under the server's cap: all of them when they fit,
 * else without the largest, one at a time, until the rest fit. Each manifest is at most 1 MiB, so
 * only many large ones together can exceed 16 MiB; leaving those out publishes every other service
 * instead of a frame the server closes the connection on, again at every reconnect. `head`: the
 * upsert's other members (node id, name, labels, …); `json`: each service's JSON (`catalogJson`).
 */
export function fitCatalog<T extends { service_id: string }>(
  head: object,
  services: readonly T[],
  json: readonly string[],
  capBytes = NODE_FRAME_MAX_BYTES,
): CatalogFit<T> {
  const sizes = json.map((text) => Buffer.byteLength(text) + 1); // its comma
  const headBytes = Buffer.byteLength(JSON.stringify({ ...head, services: [] })) + ENVELOPE_BYTES;
  const wholeBytes = sizes.reduce((sum, size) => sum + size, headBytes);
  if (wholeBytes <= capBytes) return { services: [...services], left: [], wholeBytes, capBytes };
  const largestFirst = services.map((_, index) => index).sort((a, b) => (sizes[b] as number) - (sizes[a] as number));
  const out = new Set<number>();
  let bytes = wholeBytes;
  for (const index of largestFirst) {
    if (bytes <= capBytes) break;
    out.add(index);
    bytes -= sizes[index] as number;
  }
  return {
    services: services.filter((_, index) => !out.has(index)),
    left: [...out].map((index) => ({ service_id: (services[index] as T).service_id, bytes: sizes[index] as number })),
    wholeBytes,
    capBytes,
  };
}

/** The operator's line for a catalog that did not fit: sizes, the cap, and what was left out. */
export function describeUnfit(fit: CatalogFit<unknown>): string {
  const left = fit.left.map(({ service_id, bytes }) => `${service_id} (${bytes} bytes)`).join(', ');
  return (
    `catalog too large: its upsert would be ${fit.wholeBytes} bytes, above the control server's frame cap of ${fit.capBytes}; ` +
    `not published, largest first: ${left} (make their manifests smaller, or move services to another node)`
  );
}
