// A restart counts every job once, whatever subset of its journal lines reached the disk (a full disk
// fails one write and lets a later one through): the job at its start, the service state while it
// ran, the state after its end, the job at its end.
import t from 'tap';
import { INTERRUPTED_ERROR, type JobRecord } from '../../../src/runtime/job.js';
import { LiveService } from '../../../src/runtime/live-service.js';
import { liveService } from '../../helpers/live-service.js';
import type { RuntimeChange } from '../../../src/runtime/job-table.js';
import type { StoredServiceState } from '../../../src/runtime/service-state.js';

interface Journal {
  state?: StoredServiceState;
  jobs: Map<string, JobRecord>;
}

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

function service(driver: string, journal?: Journal, persist?: (c: RuntimeChange) => Promise<void>) {
  return liveService(driver, {
    ...(persist ? { persist } : {}),
    ...(journal ? { restored: { ...(journal.state ? { state: journal.state } : {}), jobs: [...journal.jobs.values()] } } : {}),
  });
}

type Line = { kind: 'state'; state: StoredServiceState } | { kind: 'job'; job: JobRecord };

function apply(journal: Journal, line: Line): void {
  if (line.kind === 'state') journal.state = copy(line.state);
  else journal.jobs.set(line.job.invocationId, copy(line.job));
}

/** One invocation's journal lines in the order they were written, and the state journaled before it. */
async function oneRun(driver: string): Promise<{ before: StoredServiceState; lines: Line[] }> {
  const lines: Line[] = [];
  let rt: LiveService | undefined;
  const persist = async (change: RuntimeChange): Promise<void> => {
    if (change.kind === 'state') lines.push({ kind: 'state', state: copy(change.state) as StoredServiceState });
    if (change.kind !== 'job') return;
    lines.push({ kind: 'job', job: copy(change.job) });
    // A state line written while it runs (a control write, another job's end).
    if (change.job.state === 'running' && rt) lines.push({ kind: 'state', state: copy(rt.view.state) as StoredServiceState });
  };
  rt = service(driver, undefined, persist);
  await rt.control('reset');
  const before = (lines.pop() as { state: StoredServiceState }).state;
  await rt.invoke(Buffer.from('{"a":1}'));
  return { before, lines };
}

for (const [driver, outcome] of [
  ['fail', 'error'],
  ['cat', 'ok'],
] as const) {
  t.test(`${outcome}: a restart counts the job once whichever of its lines reached the disk`, async (t) => {
    const { before, lines } = await oneRun(driver);
    t.same(
      lines.map((l) => (l.kind === 'job' ? `job ${l.job.state}` : 'state')),
      ['job running', 'state', 'state', `job ${outcome}`],
    );
    for (let mask = 0; mask < 1 << lines.length; mask++) {
      const landed = lines.filter((_, i) => mask & (1 << i));
      const name = `landed: ${lines.map((_, i) => (mask & (1 << i) ? 1 : 0)).join('')}`;
      const journal: Journal = { state: copy(before), jobs: new Map() };
      for (const line of landed) apply(journal, line);
      // Its end is known when the state after it or the job's last record landed.
      const endKnown = (mask & 0b1100) !== 0;
      const failures = mask === 0 ? 0 : outcome === 'error' || !endKnown ? 1 : 0;
      const restarted: Line[] = [];
      const rt = service(driver, journal, async (change) => {
        if (change.kind === 'state') restarted.push({ kind: 'state', state: copy(change.state) as StoredServiceState });
        if (change.kind === 'job') restarted.push({ kind: 'job', job: copy(change.job) });
      });
      const counters = rt.view.state.counters;
      t.match(counters, { invokesTotal: mask === 0 ? 0 : 1, failuresTotal: failures, consecutiveFailures: failures }, name);
      t.same(rt.view.state.runningInvocationIds, [], `${name}: nothing running`);
      if (mask === 0b0001) t.equal(rt.view.state.lastError, INTERRUPTED_ERROR, `${name}: shown as interrupted`);
      if (mask === 0b1001 && outcome === 'ok') t.match(rt.view.state.last, { state: 'ok' }, `${name}: the end its record holds`);
      // Whatever of the restore's own lines land, a second restart counts nothing more.
      for (let second = 0; second < 1 << restarted.length; second++) {
        const again: Journal = { ...copy({ state: journal.state }), jobs: new Map(journal.jobs) };
        restarted.filter((_, i) => second & (1 << i)).forEach((line) => apply(again, line));
        const counted = service(driver, again).view.state.counters;
        t.match(counted, { invokesTotal: counters.invokesTotal, failuresTotal: counters.failuresTotal }, `${name}, then ${second}: once`);
      }
    }
  });
}
