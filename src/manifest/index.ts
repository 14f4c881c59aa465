/**
 * Service manifests (SPEC §2): list them in load order, validate them against
 * docs/schemas/manifest.schema.json, apply defaults and templates, resolve executables and wasm module
 * paths, check which runtime keys fit the runtime type, and diff two loads for hot reload.
 *
 * Must not: spawn anything. Must not import: node/, control/, world/, runtime/, fuse/, vfs/ or cli/ (a
 * JSON syntax error is told by position, never by quoting the file: errors/json-document.ts).
 * Traps: never a *Sync fs call (it deadlocks when a path is on our own mount); a bad file is a Problem,
 * never a throw, so one broken manifest cannot hide the others and the caller decides what it means;
 * a FIFO named *.json must not be opened for reading (it would block every reload).
 */
export { loadServices, MANIFEST_SCHEMA_ID, type LoadedService, type LoadServicesOptions } from './load.js';
export { listManifestFiles, problemOfSource } from './order.js';
export { applyDefaults, MANIFEST_DEFAULTS, RUNTIME_DEFAULTS, WASM_DEFAULTS, WASM_PREOPEN_DEFAULTS } from './defaults.js';
export { fillTemplate, type TemplateValues } from '../protocol/service-defaults.js';
export { manifestExecutablePath, resolveExecutable, resolveModule } from './resolve-executable.js';
export { diffServices, type ServicesDiff } from './diff.js';
