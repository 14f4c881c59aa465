// LiveService in process, with the real runDriver (no spawner, no FUSE).
import t from 'tap';
import { join } from 'node:path';
import { rejectsErrno } from '../../helpers/errno.js';
import { FsError } from '../../../src/errors/errno.js';
import { DRIVERS } from '../../helpers/node.js';
import { InvocationIds } from '../../../src/runtime/invocation-id.js';
import { nativeProcAdapter } from '../../../src/runtime/native-proc-adapter.js';
import { runDriver } from '../../../src/runtime/run-driver.js';
import type { DriverRunner, QueuingRunner } from '../../../src/runtime/driver-runner.js';
import { outputlessRun, type RunResult } from '../../../src/runtime/run-result.js';
import { INTERRUPTED_ERROR, type JobRecord } from '../../../src/runtime/job.js';
import { LiveService } from '../../../src/runtime/live-service.js';
import { liveService as service } from '../../helpers/live-service.js';
import { WAIT_SLACK_MS } from '../../../src/runtime/wait-bound.js';
import type { RuntimeChange } from '../../../src/runtime/job-table.js';
import type { StoredServiceState } from '../../../src/runtime/service-state.js';
import { settledWithin } from '../../helpers/settle.js';

t.test('ok: result is stdout, counters move, last error empty', async (t) => {
  const rt = service('cat');
  const outcome = await rt.invoke(Buffer.from('{"a":1}'));
  t.equal(outcome.state, 'ok');
  t.equal(rt.view.result?.toString(), '{"a":1}');
  t.equal(rt.view.state.counters.invokesTotal, 1);
  t.equal(rt.view.state.lastError, '');
  t.match(outcome.invocationId, /^\d+-\d{4}$/);
});

t.test('failure: last error is stderr, result kept, consecutive counters', async (t) => {
  const rt = service('fail');
  const outcome = await rt.invoke(Buffer.from('{}'));
  t.equal(outcome.state, 'error');
  t.match(rt.view.state.lastError, /something went wrong/);
  t.equal(rt.view.result, null, 'no result replaced');
  t.equal(rt.view.state.counters.failuresTotal, 1);
  t.equal(rt.view.state.counters.consecutiveFailures, 1);
  t.equal(rt.view.state.last?.exitCode, 3);
  rt.control('reset');
  t.equal(rt.view.state.counters.consecutiveFailures, 0);
  t.equal(rt.view.state.lastError, '');
  t.equal(rt.view.state.counters.failuresTotal, 1, 'totals survive a reset');
});

t.test('rejections: bad JSON, not an object, schema check; recorded, nothing runs', async (t) => {
  const rt = service('cat', { checkInput: (p) => ((p as { msg?: unknown }).msg === undefined ? "/msg: must have required property 'msg'" : undefined) });
  await rejectsErrno(t, rt.invoke(Buffer.from('{bad')), 'EINVAL');
  await rejectsErrno(t, rt.invoke(Buffer.from('[]')), 'EINVAL');
  await rejectsErrno(t, rt.invoke(Buffer.from('{}')), 'EINVAL');
  t.match(rt.view.state.lastError, /msg/);
  t.equal(rt.view.state.counters.invokesTotal, 0);
  t.equal(rt.view.state.counters.rejectedTotal, 3);
  t.equal(rt.view.statusState(), 'error');
  t.equal(rt.view.state.rejection?.errno, 'EINVAL');
  t.equal(rt.view.state.last, null, 'no invocation ran');
});

t.test('disabled → EPERM; enabled again → runs', async (t) => {
  const rt = service('cat');
  rt.control('disable');
  await rejectsErrno(t, rt.invoke(Buffer.from('{}')), 'EPERM');
  rt.control('enable');
  t.equal((await rt.invoke(Buffer.from('{}'))).state, 'ok');
});

t.test('max_concurrency 1 serializes in arrival order; max_queue bounds the wait (EAGAIN)', async (t) => {
  const rt = service('slow', { maxQueue: 1 });
  const first = rt.invoke(Buffer.from('{"n":1}'));
  const second = rt.invoke(Buffer.from('{"n":2}'));
  t.equal(rt.view.jobs.running, 1);
  t.equal(rt.view.jobs.queued, 1);
  await rejectsErrno(t, rt.invoke(Buffer.from('{"n":3}')), 'EAGAIN');
  const [a, b] = await Promise.all([first, second]);
  t.ok((a.result?.toString() ?? '').includes('"n":1'));
  t.ok((b.result?.toString() ?? '').includes('"n":2'));
  t.ok(Number(a.invocationId.split('-')[0]) <= Number(b.invocationId.split('-')[0]));
});

t.test('timeout and cancel', async (t) => {
  const rt = service('hang', { timeoutMs: 300 });
  t.equal((await rt.invoke(Buffer.from('{}'))).state, 'timeout');
  t.equal(rt.view.state.counters.timeoutsTotal, 1);
  const rt2 = service('hang');
  const running = rt2.invoke(Buffer.from('{}'));
  while (rt2.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(rt2.cancel(), 1);
  t.equal((await running).state, 'cancelled');
  t.equal(rt2.view.state.counters.failuresTotal, 0, 'a cancel is not a failure');
});

t.test('a queued call cancelled before it started: its writer is told, the service documents stay as they were', async (t) => {
  const rt = service('slow');
  const first = rt.invoke(Buffer.from('{"n":1}'));
  const second = rt.invoke(Buffer.from('{"n":2}'));
  const [queued] = rt.view.jobs.list().filter((job) => job.progress.startedMs === null);
  t.ok(queued, 'one job waits');
  t.equal(rt.cancel(queued?.invocationId), 1);
  t.equal((await second).state, 'cancelled', "the queued call's writer gets the cancellation");
  t.equal((await first).state, 'ok');
  t.equal(rt.view.state.lastError, '', 'last_error.txt: empty after the success status.json shows');
  t.equal(rt.view.state.last?.state, 'ok');
  t.equal(rt.view.state.counters.cancelledTotal, 1, 'counted as cancelled');
});

t.test('a node shutting down refuses new calls (EAGAIN) without making it the service status', async (t) => {
  const rt = service('cat');
  t.equal((await rt.invoke(Buffer.from('{}'))).state, 'ok');
  await rt.drain(1000);
  await rejectsErrno(t, rt.invoke(Buffer.from('{}')), 'EAGAIN');
  t.equal(rt.view.state.rejection, null, 'no rejection recorded: after a restart status.json shows the last run');
  t.equal(rt.view.state.lastError, '');
});

t.test('a drain cut short (a forced stop) cancels the running call without waiting out the grace', async (t) => {
  const rt = service('hang', { timeoutMs: 600_000 });
  const running = rt.invoke(Buffer.from('{}'));
  while (rt.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  const cut = new AbortController();
  const drained = rt.drain(600_000, cut.signal);
  cut.abort();
  await drained;
  t.equal((await running).state, 'cancelled', 'the writer gets the cancellation');
  t.equal(rt.view.jobs.running, 0, 'nothing runs after the drain');
});

t.test('a drain gives up on a run its cancel does not end (a stopped spawner) once the kill may take, and names it', async (t) => {
  const never: DriverRunner = { run: () => new Promise<RunResult>(() => undefined) };
  const rt = service('cat', { runner: never, timeoutMs: 100 });
  const running = rt.invoke(Buffer.from('{}')).catch((error: unknown) => error);
  while (rt.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  const begun = Date.now();
  const drained = await settledWithin(rt.drain(0), 5_000, 'still draining');
  t.same(drained, [rt.view.jobs.list()[0]?.invocationId], 'the unfinished invocation is named');
  t.ok(Date.now() - begun >= 200 + WAIT_SLACK_MS - 50, 'after its kill grace and the slack');
  t.match(await running, { errno: 'ETIMEDOUT' }, 'its writer got the usual bound');
});

t.test('supervision: cooldown gives EAGAIN and backoff; a threshold auto-disables naming it', async (t) => {
  const rt = service('fail');
  await rt.setConfig({ supervision: { cooldown_ms: 60_000 } });
  await rt.invoke(Buffer.from('{}'));
  t.equal(rt.view.statusState(), 'backoff');
  t.ok(rt.view.supervisor.cooldownRemainingMs() > 50_000);
  await rejectsErrno(t, rt.invoke(Buffer.from('{}')), 'EAGAIN');
  t.equal(rt.view.supervisor.healthState(), 'degraded');
  await rt.control('restart');
  t.equal(rt.view.supervisor.cooldownRemainingMs(), 0, 'restart clears the cooldown');

  const rt2 = service('fail');
  await rt2.setConfig({ supervision: { max_consecutive_failures: 2 } });
  await rt2.invoke(Buffer.from('{}'));
  t.equal(rt2.view.state.enabled, true);
  await rt2.invoke(Buffer.from('{}'));
  t.equal(rt2.view.state.enabled, false);
  t.match(rt2.view.state.disabledReason, /2 consecutive failures reached max_consecutive_failures \(2\)/);
  t.equal(rt2.view.statusState(), 'offline');
  await rejectsErrno(t, rt2.invoke(Buffer.from('{}')), 'EPERM');
  await rt2.control('enable');
  t.equal(rt2.view.statusState(), 'idle');
  t.equal(rt2.view.state.counters.consecutiveFailures, 0);

  const rt3 = service('hang', { timeoutMs: 100 });
  await rt3.setConfig({ supervision: { max_consecutive_timeouts: 1, auto_disable_on_threshold: false } });
  await rt3.invoke(Buffer.from('{}'));
  t.equal(rt3.view.state.enabled, true, 'no auto-disable when the policy says so');
});

/** A runner that fails the payloads asking it to and echoes the others, each when `release` lets it end; `ran` lists what ran. */
function gatedRunner(): { runner: DriverRunner; ran: string[]; release: () => void } {
  const ran: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const runner: DriverRunner = {
    run: async (spec) => {
      const payload = spec.input.toString();
      ran.push(payload);
      await gate;
      return payload.includes('fail')
        ? outputlessRun({ state: 'error', shortMessage: 'asked to fail' })
        : { ...outputlessRun({ state: 'ok', shortMessage: 'done' }), stdout: spec.input };
    },
  };
  return { runner, ran, release: () => open() };
}

t.test('SPEC §3, §5: calls queued behind the failure that auto-disables are refused EPERM at their turn, as at commit; none runs', async (t) => {
  const { runner, ran, release } = gatedRunner();
  const rt = service('cat', { runner });
  await rt.setConfig({ supervision: { max_consecutive_failures: 1 } });
  const a = rt.invoke(Buffer.from('{"do":"fail"}'));
  const b = rt.invoke(Buffer.from('{"n":2}'));
  const c = rt.invoke(Buffer.from('{"n":3}'));
  t.equal(rt.view.jobs.queued, 2, 'two calls wait behind the first');
  release();
  t.equal((await a).state, 'error', 'the first ran and failed');
  await rejectsErrno(t, b, 'EPERM', 'the second: EPERM to its writer');
  await rejectsErrno(t, c, 'EPERM', 'the third too');
  t.same(ran, ['{"do":"fail"}'], 'only the first driver ran');
  t.equal(rt.view.statusState(), 'offline');
  t.match(rt.view.state.counters, { invokesTotal: 1, rejectedTotal: 2, failuresTotal: 1, consecutiveFailures: 1 });
  t.equal(rt.view.result, null, 'result.json: no success');
  t.match(rt.view.state.rejection, { errno: 'EPERM', message: /disabled \(auto-disabled: 1 consecutive failures/ });
  t.match(rt.view.state.lastError, /^EPERM: service s is disabled \(auto-disabled/, 'last_error.txt names the refusal');
  // Listed while they were queued: they stay, ended, so a script polling their ids learns why (not ENOENT, which says pruned).
  t.same(
    rt.view.jobs.list().map((job) => job.progress.state),
    ['error', 'cancelled', 'cancelled'],
    'the refused calls stay in jobs/, ended cancelled',
  );
  t.match(rt.view.jobs.list()[1]?.progress, {
    error: /^invocation \S+ never ran: refused when its turn came \(EPERM: service s is disabled \(auto-disabled/,
    startedMs: null,
    result: null,
  });
  const { running, queued, started, waiting } = rt.view.jobs;
  t.same({ running, queued, started, waiting }, { running: 0, queued: 0, started: 0, waiting: 0 }, 'nothing left running or queued');
});

t.test('SPEC §5: a call queued behind a failure that starts a cooldown is refused EAGAIN at its turn (backoff)', async (t) => {
  const { runner, ran, release } = gatedRunner();
  const rt = service('cat', { runner });
  await rt.setConfig({ supervision: { cooldown_ms: 60_000 } });
  const a = rt.invoke(Buffer.from('{"do":"fail"}'));
  const b = rt.invoke(Buffer.from('{"n":2}'));
  release();
  t.equal((await a).state, 'error');
  await rejectsErrno(t, b, 'EAGAIN');
  t.same(ran, ['{"do":"fail"}'], 'no driver started in the cooldown');
  t.equal(rt.view.statusState(), 'backoff');
  t.match(rt.view.state.counters, { invokesTotal: 1, rejectedTotal: 1 });
  t.match(rt.view.state.lastError, /^EAGAIN: service s is cooling down after a failure/);
  t.match(rt.view.jobs.list()[1]?.progress, { state: 'cancelled', error: /never ran: refused when its turn came \(EAGAIN: service s is cooling down/ });
  t.equal(rt.view.state.counters.cancelledTotal, 0, 'counted once, as a refusal (rejected_total), not also as a cancel');
});

t.test('SPEC §5: control/disable lets the running call finish and refuses the queued one EPERM', async (t) => {
  const { runner, ran, release } = gatedRunner();
  const rt = service('cat', { runner });
  const a = rt.invoke(Buffer.from('{"n":1}'));
  const b = rt.invoke(Buffer.from('{"n":2}'));
  await rt.control('disable');
  release();
  t.equal((await a).state, 'ok', 'the running call finishes');
  await rejectsErrno(t, b, 'EPERM');
  t.same(ran, ['{"n":1}']);
  t.equal(rt.view.result?.toString(), '{"n":1}', "result.json is the running call's");
  t.equal(rt.view.statusState(), 'offline');
  t.match(rt.view.state, { disabledReason: 'disabled by control/disable', counters: { invokesTotal: 1, rejectedTotal: 1 } });
});

t.test('control/enable clears the refusal it ends from last_error.txt as from status.json; a driver failure stays', async (t) => {
  const rt = service('cat');
  await rt.control('disable');
  await rejectsErrno(t, rt.invoke(Buffer.from('{}')), 'EPERM');
  t.match(rt.view.state.lastError, /^EPERM: service s is disabled \(disabled by control\/disable\)/);
  await rt.control('enable');
  t.equal(rt.view.statusState(), 'idle');
  t.equal(rt.view.state.rejection, null, 'status.json: no errno, no error');
  t.equal(rt.view.state.lastError, '', 'last_error.txt (and health.json last_error) agree');

  const failing = service('fail');
  await failing.setConfig({ supervision: { max_consecutive_failures: 1 } });
  t.equal((await failing.invoke(Buffer.from('{}'))).state, 'error');
  await failing.control('enable');
  t.equal(failing.view.statusState(), 'idle');
  t.match(failing.view.state.lastError, /something went wrong/, 'the failure that disabled it is still the last failure');
});

t.test('a config.json accepted clears the refusal of the one before it, and no other refusal', async (t) => {
  const rt = service('echo');
  rt.recordRejection(new FsError('EINVAL', 'services/s/config.json: /timeot_ms: unknown key'));
  t.equal(rt.view.state.rejection?.errno, 'EINVAL');
  await rt.setConfig({ timeout_ms: 5_000 });
  t.equal(rt.view.state.rejection, null, 'status.json: no errno, no error');
  t.equal(rt.view.state.lastError, '', 'last_error.txt no longer says it');
  t.equal(rt.view.state.counters.rejectedTotal, 1, 'still counted');

  rt.recordRejection(new FsError('EINVAL', 'services/s/config.json: /timeot_ms: unknown key'));
  rt.recordRejection(new FsError('EINVAL', 'control/invoke.json: invalid JSON at line 1, column 1 (byte 0)'));
  await rt.setConfig({});
  t.match(rt.view.state.rejection, { errno: 'EINVAL', message: /^control\/invoke\.json/ }, "an invoke's refusal after it stays the latest refusal");
  t.match(rt.view.state.lastError, /control\/invoke\.json/, 'and last_error.txt says it');

  rt.recordRejection(new FsError('EINVAL', 'services/other/config.json: /x: unknown key'));
  await rt.setConfig({});
  t.ok(rt.view.state.rejection, "another service's config.json is not this one's");
});

t.test('config.json overrides the timeout', async (t) => {
  const rt = service('hang', { timeoutMs: 60_000 });
  await rt.setConfig({ timeout_ms: 150 });
  t.equal((await rt.invoke(Buffer.from('{}'))).state, 'timeout');
});

t.test('a removed service journals nothing more: its cancelled run ends after the journal forgot it', async (t) => {
  const changes: RuntimeChange[] = [];
  const rt = service('hang', { persist: async (c) => void changes.push(c) });
  const running = rt.invoke(Buffer.from('{}'));
  while (rt.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  const before = changes.length;
  t.ok(before > 0, 'the start was journaled');
  rt.remove();
  await rejectsErrno(t, running, 'ENOENT', 'its writer hears the removal');
  t.same(changes.slice(before), [], 'no state or job written back after remove()');
  t.equal(rt.view.state.counters.invokesTotal, 1, 'the live record still tells what happened');
});

t.test('SPEC §5: writers still waiting when their service is removed get ENOENT, running or queued', async (t) => {
  const rt = service('hang', { maxConcurrency: 1 });
  const running = rt.invoke(Buffer.from('{"i":1}'));
  const queued = rt.invoke(Buffer.from('{"i":2}'));
  while (rt.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  rt.remove();
  await rejectsErrno(t, running, 'ENOENT', 'the running one');
  await rejectsErrno(t, queued, 'ENOENT', 'the queued one');
  t.equal(rt.view.state.counters.invokesTotal, 1, 'the queued one never ran');
});

t.test('a removed service: ENOENT even when the cancelled run ends otherwise', async (t) => {
  // A run that ends otherwise than cancelled once aborted (an answer that raced the cancel).
  const restarted: DriverRunner = {
    run: (_spec, signal) =>
      new Promise((resolve) => {
        signal?.addEventListener('abort', () =>
          resolve(outputlessRun({ state: 'error', shortMessage: 'the persistent driver was restarted: request 1 was cancelled' })),
        );
      }),
  };
  const rt = service('cat', { runner: restarted });
  const running = rt.invoke(Buffer.from('{}'));
  while (rt.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  rt.remove();
  await rejectsErrno(t, running, 'ENOENT');
});

t.test('jobs: kept up to jobs_keep, each with its own request, result and stderr; persisted', async (t) => {
  const changes: RuntimeChange[] = [];
  const rt = service('cat', { persist: async (c) => void changes.push(c) });
  for (let i = 0; i < 6; i++) await rt.invoke(Buffer.from(`{"i":${i}}`));
  const jobs = rt.view.jobs.list();
  t.equal(jobs.length, 4, 'jobs_keep 4');
  t.same(
    jobs.map((j) => j.request.toString()),
    ['{"i":2}', '{"i":3}', '{"i":4}', '{"i":5}'],
  );
  t.equal(jobs[3]?.progress.result?.toString(), '{"i":5}');
  t.equal(jobs[3]?.progress.state, 'ok');
  t.ok(
    changes.some((c) => c.kind === 'job-removed'),
    'pruned jobs leave the journal',
  );
  t.ok(changes.some((c) => c.kind === 'job'));
});

t.test('the state record, journaled and read back, is the same state', async (t) => {
  const rt = service('cat');
  await rt.invoke(Buffer.from('{"keep":1}'));
  await rt.control('disable');
  await rt.setConfig({ supervision: { cooldown_ms: 5 } });
  const copy = service('cat', {
    restored: { state: JSON.parse(JSON.stringify(rt.view.state)) as StoredServiceState, jobs: rt.view.jobs.list().map((j) => j.record()) },
  });
  t.same(copy.view.state, rt.view.state);
  t.equal(copy.view.result?.toString(), '{"keep":1}');
  t.equal(copy.view.state.enabled, false);
  t.equal(copy.view.jobs.list().length, 1);
});

/**
 * What the journal holds after a kill -9 during a run: the job journaled at its start, and the last
 * service state written, taken before the run started or while it ran.
 */
async function crashedDuringRun(stateWhile: 'before' | 'running'): Promise<{ state: StoredServiceState; jobs: JobRecord[] }> {
  const journal = new Map<string, unknown>();
  const persist = async (change: RuntimeChange): Promise<void> => {
    if (change.kind === 'state') journal.set('state', JSON.parse(JSON.stringify(change.state)));
    if (change.kind === 'job') journal.set(change.job.invocationId, change.job);
  };
  const rt = service('cat', { persist, runner: { run: () => new Promise<RunResult>(() => undefined) } });
  await rt.control('disable');
  await rt.control('enable');
  void rt.invoke(Buffer.from('{"slow":1}')).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 20));
  if (stateWhile === 'running') await persist({ kind: 'state', state: rt.view.state });
  const { state, ...jobs } = Object.fromEntries(journal) as { state: StoredServiceState } & Record<string, JobRecord>;
  return { state, jobs: Object.values(jobs) };
}

t.test('restore: a run the kill interrupted counts as a start and a failure, once, and says so', async (t) => {
  for (const stateWhile of ['before', 'running'] as const) {
    const { state, jobs } = await crashedDuringRun(stateWhile);
    t.equal(state.counters.invokesTotal, stateWhile === 'running' ? 1 : 0, `${stateWhile}: what the state counted`);
    t.match(jobs, [{ state: 'running' }]);
    const changes: RuntimeChange[] = [];
    const persisted: { state?: StoredServiceState; jobs: JobRecord[] } = { jobs: [] };
    const { view: restored } = service('cat', {
      persist: async (change) => {
        changes.push(change);
        if (change.kind === 'state') persisted.state = JSON.parse(JSON.stringify(change.state)) as StoredServiceState;
        if (change.kind === 'job') persisted.jobs.push(change.job);
      },
      restored: { state, jobs },
    });
    t.match(restored.state.counters, { invokesTotal: 1, failuresTotal: 1, consecutiveFailures: 1 }, `${stateWhile}: counted once`);
    const [job] = restored.jobs.list();
    t.match(job?.progress, { state: 'error', error: INTERRUPTED_ERROR, finishedMs: null });
    t.match(restored.state.last, { invocationId: job?.invocationId, state: 'error', durationMs: null });
    t.equal(restored.state.lastError, INTERRUPTED_ERROR);
    t.equal(restored.statusState(), 'error');
    t.equal(restored.supervisor.healthState(), 'degraded');
    t.same(
      changes.map((c) => c.kind),
      ['job', 'state'],
      'journaled at once, the job first',
    );
    // Restarting again from what that restore journaled counts nothing twice.
    const again = service('cat', { restored: { ...(persisted.state ? { state: persisted.state } : {}), jobs: persisted.jobs } });
    t.same(again.view.state.counters, restored.state.counters, `${stateWhile}: a second restart counts nothing more`);
  }
});

t.test('restore: jobs journaled before any service state still come back', async (t) => {
  const { jobs } = await crashedDuringRun('before');
  const rt = service('cat', { restored: { jobs } });
  t.equal(rt.view.jobs.list().length, 1);
  t.match(rt.view.state.counters, { invokesTotal: 1, failuresTotal: 1 });
});

t.test('a writer waits at most timeout_ms + kill grace + slack: then ETIMEDOUT, and the run is still recorded', async (t) => {
  // A run that outlives every bound (a stuck spawner, say): it ends only when the test says so.
  let finish!: (result: RunResult) => void;
  const rt = service('cat', { timeoutMs: 100, runner: { run: () => new Promise<RunResult>((resolve) => (finish = resolve)) } });
  const started = Date.now();
  await rejectsErrno(t, rt.invoke(Buffer.from('{"late":1}')), 'ETIMEDOUT');
  const waited = Date.now() - started;
  // kill_grace_ms is 200 in these services.
  t.ok(waited >= 100 + 200 + WAIT_SLACK_MS - 50, `waited for the bound (${waited} ms)`);
  t.equal(rt.view.statusState(), 'running', 'the run goes on');
  finish({ ...outputlessRun({ state: 'ok', shortMessage: 'done' }), stdout: Buffer.from('{"late":1}') });
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(rt.view.result?.toString(), '{"late":1}', 'and is recorded when it ends');
  t.equal(rt.view.jobs.list().at(-1)?.progress.state, 'ok');
});

t.test('a writer queued behind a run that never ends (a stopped spawner) gets ETIMEDOUT too, after the queue bound; its job stays queued', async (t) => {
  let finish!: (result: RunResult) => void;
  const rt = service('cat', { timeoutMs: 100, runner: { run: () => new Promise<RunResult>((resolve) => (finish = resolve)) } });
  const ahead = rt.invoke(Buffer.from('{"n":1}')).catch((error: unknown) => error);
  while (rt.view.jobs.running === 0) await new Promise((r) => setTimeout(r, 10));
  const started = Date.now();
  const queued = await rt.invoke(Buffer.from('{"n":2}')).catch((error: unknown) => error);
  const waited = Date.now() - started;
  t.match(queued, { errno: 'ETIMEDOUT' });
  const [, job] = rt.view.jobs.list();
  t.equal(
    (queued as Error).message,
    `invocation ${job?.invocationId} is still queued ${100 + 200 + WAIT_SLACK_MS} ms after its commit, behind runs that should have ended by then (each within timeout_ms + kill_grace_ms + ${WAIT_SLACK_MS} ms): something below the drivers is stuck (a stopped spawner, a hung disk); it goes on, and jobs/${job?.invocationId}/status.json will show how it ended`,
  );
  // One run ahead: its timeout_ms (100) + kill grace (200) + the slack.
  t.ok(waited >= 100 + 200 + WAIT_SLACK_MS - 50, `waited for the bound (${waited} ms)`);
  t.equal(job?.progress.state, 'queued', 'the job stays queued');
  t.match(await ahead, { errno: 'ETIMEDOUT' }, 'the writer of the run ahead got its own bound');
  finish({ ...outputlessRun({ state: 'ok', shortMessage: 'done' }), stdout: Buffer.from('{"n":1}') });
  while (job?.progress.state === 'queued') await new Promise((r) => setTimeout(r, 10));
  t.not(job?.progress.state, 'queued', 'and runs once the run ahead ends');
});

/** A service of cat (timeout 100 ms, no kill grace) run by `runner`, which has a queue of its own as the wasm pool has. */
function queuedService(runner: QueuingRunner): LiveService {
  const base = nativeProcAdapter({
    nodeId: 'n',
    serviceId: 's',
    executablePath: join(DRIVERS, 'cat'),
    args: [],
    cwd: '/tmp',
    env: {},
    envPassthrough: [],
    timeoutMs: 100,
    killGraceMs: 0,
    maxOutputBytes: 1 << 20,
  });
  return new LiveService({
    serviceId: 's',
    runner: { run: runDriver },
    ids: new InvocationIds(),
    settings: { limits: { maxConcurrency: 1, maxQueue: 4, maxInputBytes: 1024, timeoutMs: 100, killGraceMs: 0 }, jobsKeep: 4, adapter: { ...base, runner } },
  });
}

t.test('a runner with a queue of its own (wasm workers): the job is queued and the bound not started until the driver starts', async (t) => {
  // Waits longer than timeout_ms + kill grace + slack for a worker, then runs at once.
  const waitMs = 100 + WAIT_SLACK_MS + 500;
  const runner: QueuingRunner = {
    run: async (spec, _signal, started) => {
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      started();
      return { ...outputlessRun({ state: 'ok', shortMessage: 'done' }), stdout: spec.input };
    },
  };
  const rt = queuedService(runner);
  const begun = Date.now();
  const outcome = rt.invoke(Buffer.from('{"waited":1}'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const job = rt.view.jobs.list().at(-1);
  t.match(job?.progress, { state: 'queued', startedMs: null }, 'queued while it waits for a worker');
  t.same(rt.view.state.runningInvocationIds, [], 'not counted as started');
  t.match(await outcome, { state: 'ok', result: Buffer.from('{"waited":1}') }, 'no ETIMEDOUT for the wait');
  t.ok(Date.now() - begun >= waitMs, 'the writer waited for the worker');
  t.ok((job?.progress.startedMs ?? 0) - begun >= waitMs - 50, 'the job started when the driver did');
  t.equal(rt.view.state.counters.invokesTotal, 1);
});

t.test('a runner with a queue of its own: a disable while the job waits for a worker refuses it EPERM when the worker comes; no driver runs', async (t) => {
  let worker!: () => void;
  const workerFree = new Promise<void>((resolve) => (worker = resolve));
  let ran = false;
  const runner: QueuingRunner = {
    run: async (spec, _signal, started) => {
      await workerFree;
      started();
      ran = true;
      return { ...outputlessRun({ state: 'ok', shortMessage: 'done' }), stdout: spec.input };
    },
  };
  const rt = queuedService(runner);
  const outcome = rt.invoke(Buffer.from('{"n":1}'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await rt.control('disable');
  worker();
  await rejectsErrno(t, outcome, 'EPERM');
  t.notOk(ran, 'the runner was told not to start it');
  t.match(rt.view.state, { counters: { invokesTotal: 0, rejectedTotal: 1 }, runningInvocationIds: [] });
  t.match(rt.view.state.lastError, /^EPERM: service s is disabled/);
});

t.test('a payload the adapter refuses: EINVAL recorded, and the job ends cancelled, saying why', async (t) => {
  const rt = new LiveService({
    serviceId: 's',
    runner: { run: runDriver },
    ids: new InvocationIds(),
    settings: {
      limits: { maxConcurrency: 1, maxQueue: 4, maxInputBytes: 1024, timeoutMs: 100, killGraceMs: 0 },
      jobsKeep: 4,
      adapter: {
        spec: () => {
          throw new FsError('EINVAL', 'no argv');
        },
        interpret: () => ({ state: 'ok' }),
      },
    },
  });
  await rejectsErrno(t, rt.invoke(Buffer.from('{}')), 'EINVAL');
  t.match(
    rt.view.jobs.list().map((job) => job.progress),
    [{ state: 'cancelled', error: /never ran: refused when its turn came \(EINVAL: no argv\)$/ }],
    'its job stays listed, ended',
  );
  t.match(rt.view.state.rejection, { errno: 'EINVAL', message: 'no argv' });
  t.equal(rt.view.state.counters.invokesTotal, 0, 'nothing ran');
});

t.test('a runner that fails after the run started: the job ends as an error, nothing stays running', async (t) => {
  const rt = service('cat', { runner: { run: () => Promise.reject(new Error('worker unreachable')) } });
  const outcome = await rt.invoke(Buffer.from('{}'));
  t.equal(outcome.state, 'error');
  const [job] = rt.view.jobs.list();
  t.match(job?.progress, { state: 'error', error: /the run failed: worker unreachable/ });
  t.equal(rt.view.jobs.started, 0, 'status.json running: 0');
  t.equal(rt.view.jobs.waiting, 0, 'status.json queued: 0');
  t.not(rt.view.statusState(), 'running');
});
