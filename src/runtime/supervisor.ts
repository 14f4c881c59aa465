import type { HealthState } from '../protocol/types.gen.js';
import type { ServiceState } from './service-state.js';
import { DEFAULT_SUPERVISION, type Supervision } from './supervision.js';

/** What readers of a service's health get (the probe is the one outside input it takes). */
export type SupervisorView = Pick<Supervisor, 'probeError' | 'policy' | 'cooldownRemainingMs' | 'healthState' | 'noteHealth' | 'noteProbe'>;

/**
 * Supervision of one service (SPEC §5), on its state record: the policy from config.json, the
 * cooldown and the auto-disable after a failure, and the health state with its transition times.
 */
export class Supervisor {
  #state: ServiceState;
  #health: HealthState = 'online';
  #probeError: string | null = null;

  constructor(state: ServiceState) {
    this.#state = state;
  }

  /** Set by the node's probe: why the driver cannot be run now (missing, not executable). */
  get probeError(): string | null {
    return this.#probeError;
  }

  policy(): Supervision {
    return { ...DEFAULT_SUPERVISION, ...this.#state.config.supervision };
  }

  cooldownRemainingMs(now = Date.now()): number {
    const until = this.#state.cooldownUntilMs;
    return until === null ? 0 : Math.max(0, until - now);
  }

  /** offline when disabled; degraded in cooldown, after a failure, or when the probe fails (SPEC §5). */
  healthState(now = Date.now()): HealthState {
    if (!this.#state.enabled) return 'offline';
    if (this.cooldownRemainingMs(now) > 0 || this.#state.counters.consecutiveFailures > 0 || this.#probeError) return 'degraded';
    return 'online';
  }

  /** Records a health transition once; called after every change and when health is read. */
  noteHealth(now = Date.now()): HealthState {
    const state = this.healthState(now);
    if (state !== this.#health) {
      // Entering online: healthy since now; leaving it: healthy until now. Only transitions move it,
      // so the published catalog does not change with every read or invocation (SPEC §5).
      if (state === 'online' || this.#health === 'online') this.#state.lastHealthyMs = now;
      this.#health = state;
      this.#state.lastTransitionMs = now;
    }
    return state;
  }

  /** The probe's finding; true when it changed (the caller logs it). */
  noteProbe(error: string | null): boolean {
    if (error === this.#probeError) return false;
    this.#probeError = error;
    this.noteHealth();
    return true;
  }

  /** After a failure: cooldown, and a threshold reached auto-disables (SPEC §5). */
  afterFailure(now: number): void {
    const policy = this.policy();
    const state = this.#state;
    const { consecutiveFailures, consecutiveTimeouts } = state.counters;
    if (policy.cooldown_ms > 0) state.cooldownUntilMs = now + policy.cooldown_ms;
    const reached =
      policy.max_consecutive_failures > 0 && consecutiveFailures >= policy.max_consecutive_failures
        ? `${consecutiveFailures} consecutive failures reached max_consecutive_failures (${policy.max_consecutive_failures})`
        : policy.max_consecutive_timeouts > 0 && consecutiveTimeouts >= policy.max_consecutive_timeouts
          ? `${consecutiveTimeouts} consecutive timeouts reached max_consecutive_timeouts (${policy.max_consecutive_timeouts})`
          : undefined;
    if (reached && policy.auto_disable_on_threshold && state.enabled) {
      state.enabled = false;
      state.disabledReason = `auto-disabled: ${reached}`;
    }
  }

  /**
   * Start-up: the health the restored record shows, then what `account` (the runs a crash
   * interrupted) made of it, noted once; a service online then has been healthy since its last
   * transition at least.
   */
  restored(now: number, account: () => void): void {
    this.#health = this.healthState(now);
    account();
    this.noteHealth(now);
    if (this.#health === 'online') this.#state.lastHealthyMs ??= this.#state.lastTransitionMs;
  }
}
