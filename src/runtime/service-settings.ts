import { FsError } from '../errors/errno.js';
import { parseJsonDocument } from '../errors/json-document.js';
import { INVOKE_FILE } from '../protocol/service-files.js';
import type { QueuingRunner } from './driver-runner.js';
import type { DriverSpec, RunResult, RunState } from './run-result.js';
import type { RuntimeConfig } from './supervision.js';

/** How one kind of service turns a payload into a driver run and the run into a result. */
export interface DriverAdapter {
  /** `raw` is exactly the bytes written; throws FsError('EINVAL') when `value` does not fit. */
  spec(raw: Buffer, value: Record<string, unknown>, invocationId: string): DriverSpec;
  interpret(run: RunResult, invocationId: string): { state: RunState; result?: Buffer; error?: string };
  /** Runs this adapter's specs instead of the service's runner (wasm: the daemon's worker pool). */
  runner?: QueuingRunner;
}

export interface ServiceLimits {
  maxConcurrency: number;
  maxQueue: number;
  maxInputBytes: number;
  /** The manifest's runtime.timeout_ms and kill_grace_ms (config.json may override them). */
  timeoutMs: number;
  killGraceMs: number;
}

/** Everything a reload may change; the service's state survives it (SPEC §5). */
export interface ServiceSettings {
  adapter: DriverAdapter;
  limits: ServiceLimits;
  /** Validates a payload against `schema.input`: a message naming the field, or undefined. */
  checkInput?: (payload: unknown) => string | undefined;
  /** How many finished invocations jobs/ keeps (runtime.jobs_keep). */
  jobsKeep: number;
}

/** The payload as an object that fits `schema.input`; FsError('EINVAL') naming what does not. */
export function parsePayload(payload: Buffer, settings: ServiceSettings): Record<string, unknown> {
  const value = parseJsonDocument(payload.toString('utf8'), INVOKE_FILE);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FsError(
      'EINVAL',
      `${INVOKE_FILE}: payload must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
    );
  }
  const problem = settings.checkInput?.(value);
  if (problem) throw new FsError('EINVAL', `${INVOKE_FILE}: ${problem}`);
  return value as Record<string, unknown>;
}

/** How long one run may take before it is killed, and the kill's grace. */
export type RunTimes = Pick<DriverSpec, 'timeoutMs' | 'killGraceMs'>;

/** config.json's timeout_ms and kill_grace_ms over `base`'s (the manifest's). */
export function runTimes(base: RunTimes, config: RuntimeConfig): RunTimes {
  return { timeoutMs: config.timeout_ms ?? base.timeoutMs, killGraceMs: config.kill_grace_ms ?? base.killGraceMs };
}

/** config.json overrides the manifest's runtime values for the next runs. */
export function withConfig(spec: DriverSpec, config: RuntimeConfig): DriverSpec {
  return { ...spec, ...runTimes(spec, config), maxOutputBytes: config.max_output_bytes ?? spec.maxOutputBytes };
}
