import type { JobRecord } from '../runtime/job.js';
import type { PersistedRuntime } from '../runtime/service-runtime.js';

/**
 * Keys and shape checks for the runtime journal (`<state-file>.runtime-services.json`). The file is
 * ours, but a crash or a hand edit can damage it: a value that does not fit is reported and
 * skipped, never trusted.
 */
export const serviceKey = (serviceId: string): string => `service/${serviceId}`;
export const jobKey = (serviceId: string, invocationId: string): string => `job/${serviceId}/${invocationId}`;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isNumOrNull = (v: unknown): boolean => v === null || isNum(v);
const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';

export function asPersistedRuntime(value: unknown): PersistedRuntime | undefined {
  if (!isObject(value)) return undefined;
  const v = value;
  const ok = typeof v.enabled === 'boolean' && isStrOrNull(v.disabledReason) && isObject(v.config) && isObject(v.counters)
    && Object.values(v.counters).every(isNumOrNull) && (v.last === null || isObject(v.last)) && (v.rejection === null || isObject(v.rejection))
    && isStrOrNull(v.resultBase64) && isNum(v.resultMs) && typeof v.lastError === 'string' && isNum(v.lastErrorMs)
    && isNumOrNull(v.cooldownUntilMs) && isStrOrNull(v.lastControlOp) && isNumOrNull(v.lastControlMs) && isNum(v.lastTransitionMs)
    && isNumOrNull(v.lastHealthyMs) && (v.idleSinceMs === undefined || isNumOrNull(v.idleSinceMs))
    && (v.latencyMs === undefined || (Array.isArray(v.latencyMs) && v.latencyMs.every(isNum)))
    && (v.runningInvocationIds === undefined || (Array.isArray(v.runningInvocationIds) && v.runningInvocationIds.every((id) => typeof id === 'string')));
  return ok ? (value as unknown as PersistedRuntime) : undefined;
}

export function asJobRecord(value: unknown): JobRecord | undefined {
  if (!isObject(value)) return undefined;
  const v = value;
  const ok = typeof v.invocationId === 'string' && typeof v.state === 'string' && typeof v.requestBase64 === 'string' && isNum(v.queuedMs)
    && isNumOrNull(v.startedMs) && isNumOrNull(v.finishedMs) && isNumOrNull(v.durationMs) && isNumOrNull(v.exitCode)
    && isStrOrNull(v.signal) && isStrOrNull(v.resultBase64) && typeof v.error === 'string' && typeof v.stderrBase64 === 'string';
  return ok ? (value as unknown as JobRecord) : undefined;
}

/** Groups restored journal entries by service; entries that do not fit are named in `problems`. */
export function groupRestored(values: Map<string, unknown>): { services: Map<string, { state?: PersistedRuntime; jobs: JobRecord[] }>; problems: string[] } {
  const services = new Map<string, { state?: PersistedRuntime; jobs: JobRecord[] }>();
  const problems: string[] = [];
  const entry = (id: string) => {
    let e = services.get(id);
    if (!e) services.set(id, (e = { jobs: [] }));
    return e;
  };
  for (const [key, value] of values) {
    const [kind, serviceId, invocationId] = key.split('/');
    if (kind === 'service' && serviceId) {
      const state = asPersistedRuntime(value);
      if (state) entry(serviceId).state = state;
      else problems.push(`${key}: not a service state; skipped`);
    } else if (kind === 'job' && serviceId && invocationId) {
      const job = asJobRecord(value);
      if (job) entry(serviceId).jobs.push(job);
      else problems.push(`${key}: not a job record; skipped`);
    } else problems.push(`${key}: unknown key; skipped`);
  }
  return { services, problems };
}
