// SPEC §3 concurrency through a real mount: services run in parallel, one service serializes up to
// max_concurrency, O_RDWR transactions each read their own outcome (concurrent ones on one service:
// the service-files conformance suite, test/integration/suites/service-files.ts), nothing else waits
// for a running driver, and a full queue answers EAGAIN at open.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode, TRANSACTION } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult } from '../helpers/process.js';
import type { ServiceStatus } from '../../src/protocol/types.gen.js';

const slow = (id: string, seconds: number, runtime: Record<string, unknown> = {}): Record<string, unknown> =>
  manifest(id, 'slow', { runtime: { env: { SLOW_SECONDS: String(seconds) }, ...runtime } });

// 'long' and 'no-queue' run until the test creates their release file: "still running" is then a
// fact, not a race against a sleep on a loaded machine.
const releases = await mkdtemp(join(tmpdir(), 'acheron-releases-'));
t.teardown(() => rm(releases, { recursive: true, force: true }));
const releaseFile = (id: string): string => join(releases, id);
const release = (id: string): Promise<void> => writeFile(releaseFile(id), '');
const heldUntilReleased = (id: string, runtime: Record<string, unknown> = {}): Record<string, unknown> =>
  manifest(id, 'slow', { runtime: { env: { SLOW_UNTIL: releaseFile(id) }, ...runtime } });

const parallel = ['p1', 'p2', 'p3', 'p4'];
const node = await startNode(t, {
  manifests: [...parallel.map((id) => slow(id, 1)), heldUntilReleased('long'), slow('other', 1), heldUntilReleased('no-queue', { max_queue: 0 })],
});

const file = (id: string, name: string): string => join(node.service(id), name);
const status = (id: string): Promise<ServiceStatus> => readJson<ServiceStatus>(file(id, 'status.json'));

function transaction(id: string, payload: Record<string, unknown>): Promise<ShResult> {
  return sh(`python3 ${q(TRANSACTION)} ${q(file(id, 'control/invoke.json'))} ${q(JSON.stringify(payload))}`, { timeoutMs: 45_000 });
}

/** Starts a writer in the background and tracks when its close() has returned. */
function backgroundWriter(id: string, payload: Record<string, unknown>): { done: Promise<ShResult>; finished: () => boolean } {
  let finished = false;
  const done = sh(`/bin/echo ${q(JSON.stringify(payload))} > ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 45_000 }).then((run) => {
    finished = true;
    return run;
  });
  return { done, finished: () => finished };
}

await t.test('20 transactions over 4 services: each reads its own result; services run in parallel', async (tt) => {
  const jobs = Array.from({ length: 20 }, (_, i) => ({
    id: parallel[i % parallel.length] as string,
    payload: { job: i, service: parallel[i % parallel.length] },
  }));
  const started = Date.now();
  const runs = await Promise.all(jobs.map((job) => transaction(job.id, job.payload)));
  const wallMs = Date.now() - started;
  runs.forEach((run, i) => {
    tt.equal(run.code, 0, `job ${i}: ${run.stderr.trim()}`);
    tt.same(JSON.parse(run.stdout), { slept: true, echo: jobs[i]?.payload }, `job ${i} read back its own result`);
  });
  // When each job ran, from its own status.json (wall time on a busy machine says little).
  const runsOf = new Map<string, Array<[number, number]>>();
  for (const id of parallel) {
    const listing = await sh(`ls ${q(file(id, 'jobs'))}`);
    const ids = listing.stdout.split('\n').filter((name) => /^\d+-\d+$/.test(name));
    const statuses = await Promise.all(ids.map((job) => readJson<{ started_ms: number; finished_ms: number }>(file(id, `jobs/${job}/status.json`))));
    runsOf.set(
      id,
      statuses.map((s): [number, number] => [s.started_ms, s.finished_ms]).sort((a, b) => a[0] - b[0]),
    );
  }
  for (const [id, runs] of runsOf) {
    tt.equal(runs.length, 5, `${id}: 5 jobs recorded`);
    // max_concurrency 1: each service ran its jobs one after another.
    tt.ok(
      runs.every(([start], i) => i === 0 || start >= (runs[i - 1] as [number, number])[1]),
      `${id}: its runs never overlap`,
    );
  }
  const edges = [...runsOf.values()]
    .flat()
    .flatMap(
      ([start, end]) =>
        [
          [start, 1],
          [end, -1],
        ] as const,
    )
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let most = 0;
  for (const [, step] of edges) most = Math.max(most, (running += step));
  tt.ok(most >= 2, `services ran in parallel: up to ${most} runs at once (wall time ${wallMs} ms)`);
  for (const id of parallel) {
    tt.match(await readJson(file(id, 'metrics.json')), { invokes_total: 5, failures_total: 0 }, `${id}: 5 invocations`);
    tt.equal((await status(id)).state, 'ok');
  }
});

await t.test('a running driver blocks no other file or service', async (tt) => {
  const first = backgroundWriter('long', { n: 1 });
  // Two bash processes started together may arrive in either order: start the second once the first runs.
  await waitFor(async () => (await status('long')).running === 1, { what: 'the first invocation running' });
  const second = backgroundWriter('long', { n: 2 });
  const s = await waitFor(
    async () => {
      const current = await status('long');
      return current.running === 1 && current.queued === 1 && current;
    },
    { what: 'one invocation running and one queued' },
  );
  tt.equal(s.state, 'running');
  // Each of these completes while the first invocation is still running.
  for (const path of [
    file('long', 'status.json'),
    file('long', 'metrics.json'),
    file('long', 'result.json'),
    file('long', 'last_error.txt'),
    file('other', 'status.json'),
    join(node.mount, 'NODE.json'),
  ]) {
    const run = await sh(`cat ${q(path)} > /dev/null`);
    tt.equal(run.code, 0, `cat ${path}`);
  }
  const ls = await sh(`ls ${q(node.service('long'))} ${q(node.service('other'))} > /dev/null`);
  tt.equal(ls.code, 0, 'ls');
  // Another service runs a whole invocation meanwhile.
  const other = await transaction('other', { beside: 'long' });
  tt.same(JSON.parse(other.stdout), { slept: true, echo: { beside: 'long' } }, 'another service ran meanwhile');
  tt.notOk(first.finished(), 'the first invocation of the busy service is still running');
  tt.notOk(second.finished(), 'the queued one has not run yet');
  await release('long');
  tt.equal((await first.done).code, 0);
  tt.equal((await second.done).code, 0);
  tt.same(await readJson(file('long', 'result.json')), { slept: true, echo: { n: 2 } }, 'queued in arrival order: the second finished last');
  tt.match(await readJson(file('long', 'metrics.json')), { invokes_total: 2 });
});

await t.test('max_queue 0: a second writer while one runs gets EAGAIN at open', async (tt) => {
  const first = backgroundWriter('no-queue', { first: true });
  await waitFor(async () => (await status('no-queue')).running === 1, { what: 'the first invocation to run' });
  const run = await sh(`echo '{"second":true}' > ${q(file('no-queue', 'control/invoke.json'))}`);
  tt.equal(run.code, 1, 'bash reports the failed open');
  tt.match(run.stderr, /Resource temporarily unavailable/);
  tt.notOk(first.finished(), 'refused while the first still ran');
  tt.match(await readText(file('no-queue', 'last_error.txt')), /^EAGAIN: .*queue full/);
  const s = await status('no-queue');
  tt.equal(s.state, 'running', 'the first invocation still runs');
  tt.equal(s.errno, 'EAGAIN');
  tt.match(await readJson(file('no-queue', 'metrics.json')), { rejected_total: 1 });
  await release('no-queue');
  tt.equal((await first.done).code, 0);
  tt.same(await readJson(file('no-queue', 'result.json')), { slept: true, echo: { first: true } });
  tt.match(await readJson(file('no-queue', 'metrics.json')), { invokes_total: 1, rejected_total: 1 });
});
