import type { JobsView } from './job-table.js';
import type { LatencyPercentiles, ServiceStatusState } from '../protocol/types.gen.js';
import type { ServiceStateView } from './service-state.js';
import type { SupervisorView } from './supervisor.js';

/** A service as its readers see it: the tree's renderers, the probe, the journal. Changes nothing but health notes. */
export interface ServiceView {
  readonly serviceId: string;
  /** The durable record, live: what the journal writes. */
  readonly state: ServiceStateView;
  readonly supervisor: SupervisorView;
  readonly jobs: JobsView;
  /** When anything it shows changed: the mtime of its files. */
  readonly changedMs: number;
  readonly isRemoved: boolean;
  readonly maxInputBytes: number;
  /** The last successful result (result.json), null before any and after control/reset. */
  readonly result: Buffer | null;
  /** status.json's `state` (service-state.ts `statusOf`). */
  statusState(now?: number): ServiceStatusState;
  latency(): LatencyPercentiles;
}

/** result.json's bytes, decoded from the state record's base64 once per result (a run hands its own over). */
export class DecodedResult {
  #base64: string | null = null;
  #data: Buffer | null = null;

  of(base64: string | null): Buffer | null {
    if (base64 !== this.#base64) this.set(base64, base64 === null ? null : Buffer.from(base64, 'base64'));
    return this.#data;
  }

  set(base64: string | null, data: Buffer | null): void {
    this.#base64 = base64;
    this.#data = data;
  }
}
