// A LiveService of one fixture driver, as the runtime's unit tests build it.
import { join } from 'node:path';
import type { DriverRunner } from '../../src/runtime/driver-runner.js';
import { InvocationIds } from '../../src/runtime/invocation-id.js';
import type { JobRecord } from '../../src/runtime/job.js';
import type { RuntimeChange } from '../../src/runtime/job-table.js';
import { LiveService } from '../../src/runtime/live-service.js';
import { nativeProcAdapter } from '../../src/runtime/native-proc-adapter.js';
import { runDriver } from '../../src/runtime/run-driver.js';
import type { StoredServiceState } from '../../src/runtime/service-state.js';
import { DRIVERS } from './node.js';

/** Service `s` on node `n` running test/fixtures/drivers/<driver> (`SLOW_SECONDS` 0.3 for `slow`). */
export function liveService(
  driver: string,
  options: {
    maxConcurrency?: number;
    maxQueue?: number;
    timeoutMs?: number;
    checkInput?: (p: unknown) => string | undefined;
    persist?: (c: RuntimeChange) => Promise<void>;
    runner?: DriverRunner;
    restored?: { state?: StoredServiceState; jobs: JobRecord[] };
  } = {},
): LiveService {
  return new LiveService({
    serviceId: 's',
    runner: options.runner ?? { run: runDriver },
    ids: new InvocationIds(),
    ...(options.persist ? { persist: options.persist } : {}),
    ...(options.restored ? { restored: options.restored } : {}),
    settings: {
      limits: {
        maxConcurrency: options.maxConcurrency ?? 1,
        maxQueue: options.maxQueue ?? 64,
        maxInputBytes: 1 << 20,
        timeoutMs: options.timeoutMs ?? 10_000,
        killGraceMs: 200,
      },
      jobsKeep: 4,
      ...(options.checkInput ? { checkInput: options.checkInput } : {}),
      adapter: nativeProcAdapter({
        nodeId: 'n',
        serviceId: 's',
        executablePath: join(DRIVERS, driver),
        args: [],
        cwd: '/tmp',
        env: { SLOW_SECONDS: '0.3' },
        envPassthrough: [],
        timeoutMs: options.timeoutMs ?? 10_000,
        killGraceMs: 200,
        maxOutputBytes: 1 << 20,
      }),
    },
  });
}
