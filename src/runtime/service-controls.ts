import { FsError } from '../errors/errno.js';
import { configFileOf } from '../protocol/service-files.js';
import type { JobTable } from './job-table.js';
import type { ServiceLimits } from './service-settings.js';
import type { ServiceState } from './service-state.js';
import type { Supervisor } from './supervisor.js';

/** The controls without an argument (control/<op>); control/cancel is `cancel()`. */
export type ControlOp = 'reset' | 'enable' | 'disable' | 'restart';

/** What admission looks at besides the state record. */
export interface AdmissionContext {
  serviceId: string;
  isRemoved: boolean;
  isClosing: boolean;
  supervisor: Supervisor;
  jobs: JobTable;
  limits: ServiceLimits;
}

/** Why an invoke would be refused now: ENOENT (removed), EAGAIN (shutting down, cooldown, queue full), EPERM (disabled); undefined: admitted. */
export function refusalOf(state: ServiceState, context: AdmissionContext): FsError | undefined {
  const id = context.serviceId;
  if (context.isRemoved) return new FsError('ENOENT', `service ${id} has been removed`);
  if (context.isClosing) return new FsError('EAGAIN', `service ${id}: the node is shutting down`);
  const refusal = serviceRefusalOf(state, id, context.supervisor);
  if (refusal) return refusal;
  const { maxConcurrency, maxQueue } = context.limits;
  if (context.jobs.running >= maxConcurrency && context.jobs.queued >= maxQueue)
    return new FsError('EAGAIN', `service ${id}: queue full (max_queue ${maxQueue})`);
  return undefined;
}

/**
 * What the service's own state refuses: EPERM (disabled), EAGAIN (cooldown). Asked at admission and
 * again when a queued invoke's turn comes, since a disable or a failure ahead of it may have come since.
 */
export function serviceRefusalOf(state: ServiceState, serviceId: string, supervisor: Supervisor): FsError | undefined {
  const { enabled, disabledReason } = state;
  if (!enabled) return new FsError('EPERM', `service ${serviceId} is disabled${disabledReason ? ` (${disabledReason})` : ''}`);
  const cooling = supervisor.cooldownRemainingMs();
  if (cooling > 0) return new FsError('EAGAIN', `service ${serviceId} is cooling down after a failure: retry in ${cooling} ms`);
  return undefined;
}

/** An invoke refused before any driver ran: what last_error.txt and status.json say about it. */
export function recordRefusal(state: ServiceState, error: FsError, now: number): void {
  state.counters.rejectedTotal++;
  state.rejection = { errno: error.errno, message: error.message, ms: now };
  state.lastError = refusalText(state.rejection);
  state.lastErrorMs = now;
}

/**
 * What a control does to the state record:
 * control/reset: result and status back to idle, last error empty, consecutive counters zeroed.
 * control/enable: back to `idle` with a fresh start (consecutive counters, cooldown and the latest refusal cleared).
 * control/disable: invokes get EPERM until enabled.
 * control/restart: counts a restart, clears the error (and the cooldown); the caller restarts a persistent driver.
 */
export function applyControl(state: ServiceState, op: ControlOp, now: number): void {
  const fresh = (): void => {
    state.rejection = null;
    state.counters.consecutiveFailures = 0;
    state.counters.consecutiveTimeouts = 0;
    state.cooldownUntilMs = null;
  };
  if (op === 'reset') {
    fresh();
    Object.assign(state, { last: null, resultBase64: null, resultMs: now, lastError: '', lastErrorMs: now });
  } else if (op === 'enable' && !state.enabled) {
    clearRefusal(state, now);
    fresh();
    Object.assign(state, { enabled: true, disabledReason: null, idleSinceMs: now });
  } else if (op === 'disable') Object.assign(state, { enabled: false, disabledReason: 'disabled by control/disable' });
  else if (op === 'restart') {
    state.counters.restartsTotal++;
    Object.assign(state, { lastError: '', lastErrorMs: now, rejection: null, cooldownUntilMs: null });
  }
}

/** A config.json accepted: a refusal of an earlier config.json, if it is the latest refusal, is no longer news. */
export function configAccepted(state: ServiceState, serviceId: string, now: number): void {
  if (state.rejection?.message.startsWith(`${configFileOf(serviceId)}: `)) clearRefusal(state, now);
}

/** status.json no longer names the latest refusal, so last_error.txt (and health.json) must not either; a driver's failure stays. */
function clearRefusal(state: ServiceState, now: number): void {
  if (state.rejection && state.lastError === refusalText(state.rejection)) Object.assign(state, { lastError: '', lastErrorMs: now });
  state.rejection = null;
}

/** last_error.txt for a refusal: the text status.json's `error` gives, after its errno. */
function refusalText(refusal: { errno: string; message: string }): string {
  return `${refusal.errno}: ${refusal.message}\n`;
}
