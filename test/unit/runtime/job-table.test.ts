// JobTable (src/runtime/job-table.ts): a job refused when its turn comes never ran; it ends
// `cancelled`, saying why, and stays in jobs/ like a finished one. Pruning to jobs_keep drops those
// that never ran first (not the one just ended), so a deep queue refused after a failure does not
// push that failure's run out of jobs/.
import t from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import { Job } from '../../../src/runtime/job.js';
import { JobTable } from '../../../src/runtime/job-table.js';
import { outputlessRun } from '../../../src/runtime/run-result.js';

const KEEP = 2;
const SETTINGS = { jobsKeep: KEEP, limits: { maxConcurrency: 1, maxQueue: 8, maxInputBytes: 1024, timeoutMs: 1000, killGraceMs: 0 } };

t.test('refused at their turn: kept, ended cancelled saying why; pruning takes the older refused ones before a run', async (t) => {
  const table = new JobTable(1, async () => undefined);
  const ran = new Job('0001', Buffer.from('{}'));
  await table.schedule(
    ran,
    async () => {
      ran.start(0);
      const run = outputlessRun({ state: 'error', shortMessage: 'it failed' });
      ran.finish({ state: 'error', run, result: null, error: 'it failed', finishedMs: Date.now() });
      await Promise.all(table.ended(ran, KEEP));
    },
    SETTINGS,
    {},
  );
  const refused = ['0002', '0003', '0004'].map((id) => new Job(id, Buffer.from('{}')));
  for (const job of refused) {
    const outcome = await table
      .schedule(
        job,
        async () => {
          throw new FsError('EPERM', 'service s is disabled');
        },
        SETTINGS,
        {},
      )
      .catch((error: unknown) => error);
    t.equal(outcome instanceof FsError && outcome.errno, 'EPERM', `${job.invocationId}: the writer gets the refusal`);
    t.match(table.get(job.invocationId)?.progress, {
      state: 'cancelled',
      startedMs: null,
      error: `invocation ${job.invocationId} never ran: refused when its turn came (EPERM: service s is disabled)`,
    });
  }
  t.same(
    table.list().map((job) => job.invocationId),
    ['0001', '0004'],
    'the run that failed stays; of the refused ones, the last',
  );
});
