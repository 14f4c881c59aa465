import { withServiceDefaults } from '../protocol/service-defaults.js';
import type { Manifest, ServiceDescriptor } from '../protocol/types.gen.js';

export { MANIFEST_DEFAULTS, RUNTIME_DEFAULTS, WASM_DEFAULTS, WASM_PREOPEN_DEFAULTS } from '../protocol/service-defaults.js';

/**
 * The normalized service of a valid manifest: defaults applied, paths templated, editor-only keys
 * dropped. The rules are shared with the control server, which applies them to upserted
 * descriptors (src/protocol/service-defaults.ts).
 */
export function applyDefaults(manifest: Manifest, nodeId: string): ServiceDescriptor {
  // `$schema` serves editors and `enabled` the loader; neither belongs in the published descriptor.
  const { $schema: _editorSchema, enabled: _enabled, ...fields } = manifest;
  // A valid manifest with its defaults is a valid descriptor (test/unit/manifest/defaults.test.ts checks it against the schema).
  return withServiceDefaults(fields, nodeId) as ServiceDescriptor;
}
