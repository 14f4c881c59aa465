// SPEC §3 with wasm services (docs/driver-abi.md): every worker of the node's pool is held by a
// spinning module, with as many of its calls waiting; invocations of other wasm services wait for a
// worker as queued jobs. Their writers' close() bound covers that wait (no ETIMEDOUT for it), their
// timeout_ms counts from when a worker takes them, and they get one of the first freed workers
// instead of waiting behind every spinning call (the waiting services take turns).
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, readJson, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { ECHO_WASM, watFixture } from '../helpers/wat.js';

/**
 * Each spinning run ends at this timeout_ms: above the other services' old close() bound (timeout_ms
 * + 2 s), and long enough that quick's `acheron invoke` (a node process starting, seconds on a loaded
 * machine) is queued before the first spinning runs free their workers (5 s was not, once, in CI).
 */
const SPIN_MS = 8000;
const SHORT_MS = 300;

const work = await tempDir(t, 'acheron-wasm-wait-');
const modules = join(work, 'modules');
await mkdir(modules);
await writeFile(join(modules, 'loop.wasm'), await watFixture('loop'));
const node = await startNode(t, {
  manifests: [
    { service_id: 'spin', kind: 'test', runtime: { type: 'wasm', module_path: join(modules, 'loop.wasm'), timeout_ms: SPIN_MS, max_concurrency: 8 } },
    { service_id: 'quick', kind: 'echo', runtime: { type: 'wasm', module_path: ECHO_WASM, timeout_ms: SHORT_MS } },
    { service_id: 'short-loop', kind: 'test', runtime: { type: 'wasm', module_path: join(modules, 'loop.wasm'), timeout_ms: SHORT_MS } },
  ],
});
const file = (id: string, name: string): string => join(node.service(id), name);

interface JobStatus {
  invocation_id: string;
  state: string;
  queued_ms: number;
  started_ms: number | null;
  finished_ms: number | null;
  duration_ms: number | null;
}
const jobs = async (id: string): Promise<JobStatus[]> => {
  const listed = (await sh(`ls ${q(file(id, 'jobs'))}`)).stdout.split('\n').filter(Boolean);
  return Promise.all(listed.map((invocationId) => readJson<JobStatus>(file(id, `jobs/${invocationId}/status.json`))));
};

/** Writes a payload and closes explicitly: the errno close() got ("none" when it returned 0). */
const WRITER = `
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b'{}')
try:
    os.close(fd)
    print('none')
except OSError as e:
    print(errno.errorcode[e.errno])
`;
const write = (id: string) => sh(`python3 -c ${q(WRITER)} ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 60_000 });

t.test('a wasm invocation waiting for a worker: no ETIMEDOUT for the wait, timeout_ms from its start, one of the first freed workers', async (t) => {
  const { wasm } = await readJson<{ wasm: { workers: number } }>(file('spin', 'HOST.json'));
  // Every worker spins, and as many more spinning calls wait for one before the other services do.
  const spinning = Array.from({ length: 2 * wasm.workers }, () => write('spin'));
  await waitFor(async () => (await jobs('spin')).filter((job) => job.state === 'running').length >= wasm.workers, {
    what: `${wasm.workers} spinning runs`,
    intervalMs: 20,
  });
  // Those waiting hold places of spin's max_concurrency, but run nowhere: status.json counts them queued.
  const spinStatus = await waitFor(
    async () => {
      const status = await readJson<{ running: number; queued: number; state: string }>(file('spin', 'status.json'));
      return status.queued === wasm.workers && status;
    },
    { what: 'the other spinning calls waiting', intervalMs: 20 },
  );
  t.match(spinStatus, { running: wasm.workers, queued: wasm.workers, state: 'running' }, 'status.json: as many running as workers, the rest queued');
  const quick = sh(`exec node ${q(ACHERON)} invoke quick '{"msg":"hi"}' --mount ${q(node.mount)}`, { timeoutMs: 60_000 });
  const shortLoop = write('short-loop');
  const waiting = await waitFor(async () => (await jobs('quick'))[0], { what: 'the quick job listed', intervalMs: 20 });
  t.match(waiting, { state: 'queued', started_ms: null }, 'queued while it waits for a worker');
  t.match(await readJson(file('quick', 'status.json')), { running: 0, queued: 1 }, "and so in its service's status.json");

  const invoked = await quick;
  t.equal(invoked.code, 0, `acheron invoke succeeded (${invoked.stderr.trim()})`);
  t.match(JSON.parse(invoked.stdout), { echo: { msg: 'hi' } });
  const shortClose = await shortLoop;
  t.equal(shortClose.stdout.trim(), 'none', "short-loop's close() returned 0 after the wait and the run");
  const spun = await Promise.all(spinning);
  t.same(
    spun.map((r) => r.stdout.trim()),
    spun.map(() => 'none'),
    'the spinning writers got their close() too',
  );

  const spinJobs = (await jobs('spin')).sort((a, b) => (a.started_ms ?? 0) - (b.started_ms ?? 0));
  t.same(
    spinJobs.map((job) => job.state),
    spun.map(() => 'timeout'),
  );
  // The first round of spinning runs held every worker; the second took the workers they freed.
  const firstFreed = Math.min(...spinJobs.slice(0, wasm.workers).map((job) => job.finished_ms ?? Infinity));
  // Taking turns, the first freed worker goes to a waiting spin call and the next to quick; in one
  // queue in arrival order every waiting spin call would have started before quick.
  const secondWaitingSpinStarted = spinJobs[wasm.workers + 1]?.started_ms ?? Infinity;
  const [quickJob] = await jobs('quick');
  const [shortJob] = await jobs('short-loop');
  t.equal(quickJob?.state, 'ok');
  const quickStarted = quickJob?.started_ms ?? 0;
  t.ok(quickStarted >= firstFreed - 50, `it started once a spinning run had freed a worker (${quickStarted - firstFreed} ms after)`);
  t.ok(
    quickStarted <= secondWaitingSpinStarted,
    `with the first freed workers, not behind every spinning call (${secondWaitingSpinStarted - quickStarted} ms before the second waiting spin call; queued ${firstFreed - (quickJob?.queued_ms ?? 0)} ms before the first was freed)`,
  );
  t.equal(shortJob?.state, 'timeout');
  t.ok((shortJob?.started_ms ?? 0) >= firstFreed - 50, 'short-loop started once a spinning run had freed a worker');
  const duration = shortJob?.duration_ms ?? 0;
  t.ok(duration >= SHORT_MS && duration < SHORT_MS + 1000, `its timeout_ms counted from its start (${duration} ms)`);
});
