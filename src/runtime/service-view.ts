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
