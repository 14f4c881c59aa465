// A runtime journal written by main at b4df604 (three services: ok runs with a rejection and pruned
// jobs, failures after control/enable with a supervision config, a run a kill -9 interrupted),
// restored and rendered: every document a user reads must come out as main rendered it then.
import t from 'tap';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { REPO, manifest, tempDir } from '../../helpers/node.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { Manifest } from '../../../src/protocol/types.gen.js';
import { InvocationIds } from '../../../src/runtime/invocation-id.js';
import { LiveService } from '../../../src/runtime/live-service.js';
import { RuntimeJournal } from '../../../src/node/runtime-journal.js';
import { renderConfig, renderHealth, renderJobStatus, renderMetrics, renderResult, renderStatus } from '../../../src/node/render.js';

const FIXTURES = join(REPO, 'test', 'fixtures', 'journal');
// The moment main restored and rendered it (the interrupted run ends then).
const NOW = 1796374158696;

t.test('a journal written by main b4df604 restores to the documents main rendered', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'node.json.runtime-services.json');
  await copyFile(join(FIXTURES, 'runtime-services-main-b4df604.json'), path);
  const expected = JSON.parse(await readFile(join(FIXTURES, 'runtime-services-main-b4df604.expected.json'), 'utf8')) as Record<string, unknown>;
  const logged: string[] = [];
  const journal = await RuntimeJournal.open(join(dir, 'node.json'), 'batch', pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) }));
  t.teardown(() => journal.close());
  t.same(logged, [], 'every entry fits');
  const rendered: Record<string, unknown> = {};
  for (const serviceId of Object.keys(expected)) {
    const entry = journal.takeRestored(serviceId);
    t.ok(entry, `${serviceId}: found in the journal`);
    const descriptor = applyDefaults(manifest(serviceId, serviceId) as unknown as Manifest, 'n');
    const rt = new LiveService({
      serviceId,
      runner: { run: () => Promise.reject(new Error('nothing runs here')) },
      ids: new InvocationIds(),
      settings: {
        limits: { maxConcurrency: 1, maxQueue: 64, maxInputBytes: 1 << 20, timeoutMs: 1000, killGraceMs: 0 },
        jobsKeep: 32,
        adapter: {
          spec: () => {
            throw new Error('nothing runs here');
          },
          interpret: () => ({ state: 'ok' }),
        },
      },
      restored: { ...(entry?.state ? { state: entry.state } : {}), jobs: entry?.jobs ?? [], now: NOW },
    });
    const { view } = rt;
    rendered[serviceId] = {
      'status.json': JSON.parse(renderStatus(view, descriptor, NOW)),
      'metrics.json': JSON.parse(renderMetrics(view)),
      'health.json': JSON.parse(renderHealth(view, NOW)),
      'config.json': JSON.parse(renderConfig(view).toString()),
      'result.json': renderResult(view).toString(),
      'last_error.txt': view.state.lastError,
      jobs: Object.fromEntries(
        view.jobs.list().map((job) => [
          job.invocationId,
          {
            'status.json': JSON.parse(renderJobStatus(view, job)),
            'request.json': job.request.toString(),
            'result.json': job.progress.result?.toString() ?? '',
            'stderr.txt': job.progress.stderr.toString(),
          },
        ]),
      ),
    };
  }
  for (const serviceId of Object.keys(expected)) t.same(rendered[serviceId], expected[serviceId], `${serviceId}: every document as main rendered it`);
});
