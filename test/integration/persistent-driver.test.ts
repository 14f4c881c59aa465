// SPEC §4 runtime.mode "persistent" through a real mount: one long-lived driver serves many
// invocations, requests overlap up to max_concurrency, and a failure answer, a timeout, a crash, a
// hung request, control/restart and a changed manifest each end the way the ABI says; no driver
// outlives the node.
import t, { type Test } from 'tap';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readJson, readText, REPO, startNode } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult, alive } from '../helpers/process.js';
import type { JobStatus, ServiceMetrics, ServiceStatus } from '../../src/protocol/types.gen.js';

const REFERENCE = join(REPO, 'bin', 'acheron-echo-persistent-driver.js');

interface EchoResult {
  ok: boolean;
  service_id: string;
  pid: number;
  served: number;
  echo: Record<string, unknown>;
}

/** What an O_RDWR transaction reads back on failure. */
interface FailedOutcome {
  error: string;
  status: ServiceStatus;
}

const persistent = (id: string, driver: string, runtime: Record<string, unknown> = {}): Record<string, unknown> =>
  manifest(id, driver, { runtime: { mode: 'persistent', ...runtime } });

const node = await startNode(t, {
  args: ['--manifest-reload-interval-ms', '300'],
  manifests: [
    persistent('echo-p', REFERENCE, { max_concurrency: 8, timeout_ms: 10_000 }),
    persistent('crash', 'persistent-crash'),
    persistent('close-stdout', 'persistent-close-stdout', { timeout_ms: 30_000, kill_grace_ms: 200 }),
    persistent('hang', 'persistent-hang', { max_concurrency: 4, timeout_ms: 4_000, kill_grace_ms: 200 }),
    persistent('reload', REFERENCE, { max_concurrency: 2 }),
    persistent('edit', REFERENCE, { max_concurrency: 2, timeout_ms: 10_000 }),
    persistent('cancel', REFERENCE, { max_concurrency: 4, timeout_ms: 10_000 }),
    // Spawn mode, for what differs: the writer's bytes go to its stdin as they are.
    manifest('echo-spawn', 'echo'),
  ],
});

const file = (id: string, name: string): string => join(node.service(id), name);
const status = (id: string): Promise<ServiceStatus> => readJson<ServiceStatus>(file(id, 'status.json'));
const metrics = (id: string): Promise<ServiceMetrics> => readJson<ServiceMetrics>(file(id, 'metrics.json'));
/** /bin/echo reports a failed open and a failed close() (bash's builtin echo hides the latter). */
const invoke = (id: string, payload: string): Promise<ShResult> => sh(`/bin/echo ${q(payload)} > ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 30_000 });

function succeeded(tt: Test, run: ShResult, what: string): void {
  tt.equal(run.code, 0, `${what} (${run.stderr.trim()})`);
}

/** Invokes and returns result.json, which the invocation must have written. */
async function call<T = EchoResult>(tt: Test, id: string, payload: string): Promise<T> {
  succeeded(tt, await invoke(id, payload), `invoke ${id} ${payload}`);
  tt.equal((await status(id)).state, 'ok', `${id} ${payload}: state ok`);
  return readJson<T>(file(id, 'result.json'));
}

/** The finished jobs of a service whose request.json contains `marker`, with their status. */
async function jobsWith(id: string, marker: string): Promise<JobStatus[]> {
  const run = await sh(`cd ${q(file(id, 'jobs'))} && for j in *; do if grep -q ${q(marker)} "$j/request.json"; then cat "$j/status.json"; echo; fi; done`);
  if (run.code !== 0) throw new Error(`jobs of ${id}: ${run.stderr.trim()}`);
  return run.stdout
    .split('\n\n')
    .filter((s) => s.trim() !== '')
    .map((s) => JSON.parse(s) as JobStatus);
}

/** Replaces a manifest as a deploy does: written beside it under a dot name (the loader skips it), then renamed. */
async function rewrite(m: Record<string, unknown>): Promise<void> {
  const temp = join(node.servicesDir, `.${String(m.service_id)}.json.tmp`);
  await writeFile(temp, JSON.stringify(m));
  await rename(temp, join(node.servicesDir, `${String(m.service_id)}.json`));
}

// Opens one O_RDWR descriptor per payload and writes each, then reads them all back in parallel
// threads: each read commits its own invocation and returns its own outcome.
const TRANSACTIONS = `
import json, os, sys, threading, time
path, payloads = sys.argv[1], json.loads(sys.argv[2])
fds = [os.open(path, os.O_RDWR) for _ in payloads]
for fd, payload in zip(fds, payloads):
    os.write(fd, payload.encode())
outcomes = [None] * len(fds)
def transact(i):
    data = b''
    while True:
        chunk = os.read(fds[i], 65536)
        if not chunk:
            break
        data += chunk
    os.close(fds[i])
    outcomes[i] = json.loads(data)
start = time.monotonic()
threads = [threading.Thread(target=transact, args=(i,)) for i in range(len(fds))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"elapsed_ms": (time.monotonic() - start) * 1000, "outcomes": outcomes}))
`;

/** One O_RDWR transaction: what it reads back, its own outcome. */
async function transact(id: string, payload: string): Promise<EchoResult | FailedOutcome> {
  const run = await sh(`python3 -c ${q(TRANSACTIONS)} ${q(file(id, 'control/invoke.json'))} ${q(JSON.stringify([payload]))}`, { timeoutMs: 30_000 });
  if (run.code !== 0) throw new Error(`transaction ${payload}: ${run.stderr.trim()}`);
  return (JSON.parse(run.stdout) as { outcomes: [EchoResult | FailedOutcome] }).outcomes[0];
}

/**
 * Starts a transaction that takes a while and resolves once the service runs it; `outcome` is
 * wrapped, so that awaiting this does not wait for the outcome too.
 */
async function inFlight(id: string, payload: string): Promise<{ outcome: Promise<EchoResult | FailedOutcome> }> {
  const running = (await status(id)).running;
  const outcome = transact(id, payload);
  outcome.catch(() => undefined);
  await waitFor(async () => (await status(id)).running > running, { what: `${payload} to run` });
  return { outcome };
}

await t.test('one process serves many invocations: the same pid, served grows', async (tt) => {
  const results: EchoResult[] = [];
  for (let n = 0; n < 5; n++) results.push(await call(tt, 'echo-p', `{"n":${n}}`));
  tt.equal(new Set(results.map((r) => r.pid)).size, 1, `one pid for five invocations (${results.map((r) => r.pid).join(', ')})`);
  results.forEach((r, n) => {
    tt.same(r.echo, { n }, `invocation ${n} got its own payload`);
    if (n > 0) tt.equal(r.served, (results[n - 1] as EchoResult).served + 1, `served grows by one (${r.served})`);
  });
  tt.equal((await status('echo-p')).runtime.mode, 'persistent', 'status.json names the mode');
  tt.equal((await metrics('echo-p')).invokes_total, 5, 'every request counts as an invocation');
});

await t.test("the driver is the spawner's child, holds no /dev/fuse, and talks to the daemon over two sockets", async (tt) => {
  const { pid } = await call(tt, 'echo-p', '{"where":1}');
  const run = await sh(`ls -l /proc/${pid}/fd/ | sed 's/.*-> //'; echo "ppid $(awk '{print $4}' /proc/${pid}/stat)"`);
  tt.equal(run.code, 0, run.stderr.trim());
  tt.notMatch(run.stdout, /\/dev\/fuse/, 'no /dev/fuse among its descriptors');
  const fds = await sh(`readlink /proc/${pid}/fd/0 /proc/${pid}/fd/1`);
  const [stdin, stdout] = fds.stdout.trim().split('\n');
  tt.match(stdin, /^socket:\[\d+\]$/, `stdin is a socket (${stdin})`);
  tt.match(stdout, /^socket:\[\d+\]$/, `stdout is a socket (${stdout})`);
  // Its own, so that a driver closing its stdout is EOF to the daemon.
  tt.not(stdout, stdin, 'stdout is another socket than stdin');
  const ppid = Number(/ppid (\d+)/.exec(run.stdout)?.[1]);
  tt.not(ppid, node.child.pid, 'started by the spawner, not by the daemon');
  const spawner = await sh(`cat /proc/${ppid}/cmdline | tr '\\0' ' '`);
  tt.match(spawner.stdout, /spawner-main\.js/, 'its parent is the spawner');
});

await t.test('8 concurrent O_RDWR transactions overlap in one process and each reads its own payload', async (tt) => {
  const payloads = Array.from({ length: 8 }, (_, n) => JSON.stringify({ sleep_ms: 500, n }));
  const run = await sh(`python3 -c ${q(TRANSACTIONS)} ${q(file('echo-p', 'control/invoke.json'))} ${q(JSON.stringify(payloads))}`, { timeoutMs: 30_000 });
  tt.equal(run.code, 0, run.stderr.trim());
  const { elapsed_ms: elapsedMs, outcomes } = JSON.parse(run.stdout) as { elapsed_ms: number; outcomes: EchoResult[] };
  outcomes.forEach((o, n) => tt.same(o.echo, { sleep_ms: 500, n }, `transaction ${n} read its own result`));
  tt.equal(new Set(outcomes.map((o) => o.pid)).size, 1, 'all served by one process');
  // The driver reports at answer time how many requests it has received: answers that report the
  // same count were in flight together.
  tt.ok(new Set(outcomes.map((o) => o.served)).size < outcomes.length, `requests overlapped (served: ${outcomes.map((o) => o.served).join(', ')})`);
  tt.ok(elapsedMs < 8 * 500, `faster than one after another (${Math.round(elapsedMs)} ms < 4000 ms)`);
});

await t.test('{"fail":"why"}: state error, last_error.txt is the driver\'s error, the process lives on', async (tt) => {
  const before = await call(tt, 'echo-p', '{}');
  succeeded(tt, await invoke('echo-p', '{"fail":"why"}'), 'a failure answer is not a filesystem error');
  tt.equal((await status('echo-p')).state, 'error');
  tt.equal(await readText(file('echo-p', 'last_error.txt')), 'why\n');
  const after = await call(tt, 'echo-p', '{}');
  tt.equal(after.pid, before.pid, 'an ok:false answer does not restart the driver');
  tt.equal(await readText(file('echo-p', 'last_error.txt')), '', 'a success empties last_error.txt');
});

await t.test('a payload nested too deeply for the request line: EINVAL at close(), a refusal and no failure; the same driver serves on', async (tt) => {
  const before = await call(tt, 'echo-p', '{}');
  const counters = await metrics('echo-p');
  // Valid JSON (JSON.parse takes any depth), but 200000 levels are too deep to be serialized again as a request line.
  const deep = `python3 -c 'n = 200000; print("{\\"a\\":" + "[" * n + "]" * n + "}")'`;
  const write = (id: string): Promise<ShResult> => sh(`${deep} | cat > ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 30_000 });
  const run = await write('echo-p');
  tt.not(run.code, 0, 'the writer is refused');
  tt.match(run.stderr, /Invalid argument/, `at close(), EINVAL: ${run.stderr.trim()}`);
  tt.match(
    await readText(file('echo-p', 'last_error.txt')),
    /^EINVAL: control\/invoke\.json: nested too deeply for a persistent driver's request line\n$/,
    'last_error.txt says why',
  );
  tt.match(
    await metrics('echo-p'),
    {
      rejected_total: counters.rejected_total + 1,
      failures_total: counters.failures_total,
      consecutive_failures: 0,
      invokes_total: counters.invokes_total,
    },
    'counted as a refused payload, not a run nor a failure',
  );
  const after = await call(tt, 'echo-p', '{"after":"deep"}');
  tt.equal(after.pid, before.pid, `the driver was not involved: the same process serves the next invocation (${before.pid})`);
  succeeded(tt, await write('echo-spawn'), 'spawn mode takes the same payload');
  tt.equal((await status('echo-spawn')).state, 'ok', 'and runs it');
});

await t.test('a request past timeout_ms: state timeout, the next invocation is served by a new process', async (tt) => {
  const before = await call(tt, 'echo-p', '{}');
  succeeded(tt, await sh(`/bin/echo '{"timeout_ms":300}' > ${q(file('echo-p', 'config.json'))}`), 'config.json timeout_ms 300');
  const timeoutsBefore = (await metrics('echo-p')).timeouts_total ?? 0;
  succeeded(tt, await invoke('echo-p', '{"sleep_ms":2000}'), "the writer's close() returns");
  tt.equal((await status('echo-p')).state, 'timeout');
  tt.match(await readText(file('echo-p', 'last_error.txt')), /did not answer request \d+ within 300 ms; the driver was restarted/);
  tt.equal((await metrics('echo-p')).timeouts_total, timeoutsBefore + 1, 'counted as a timeout');
  await waitFor(async () => !(await alive(before.pid)), { what: `the timed-out driver ${before.pid} to be gone` });
  succeeded(tt, await sh(`/bin/echo '{}' > ${q(file('echo-p', 'config.json'))}`), 'config.json back to {}');
  const after = await call(tt, 'echo-p', '{"after":"timeout"}');
  tt.not(after.pid, before.pid, `a new process (${before.pid} → ${after.pid})`);
  tt.equal(after.served, 1, 'that starts counting afresh');
});

await t.test('config.json max_output_bytes reaches the running driver: a longer answer restarts it', async (tt) => {
  const before = await call(tt, 'echo-p', '{}');
  succeeded(tt, await sh(`/bin/echo '{"max_output_bytes":64}' > ${q(file('echo-p', 'config.json'))}`), 'config.json max_output_bytes 64');
  succeeded(tt, await invoke('echo-p', JSON.stringify({ msg: 'x'.repeat(100) })), "the writer's close() returns");
  tt.equal((await status('echo-p')).state, 'error');
  tt.match(await readText(file('echo-p', 'last_error.txt')), /the persistent driver was restarted: an answer exceeded max_output_bytes \(64\)/);
  succeeded(tt, await sh(`/bin/echo '{}' > ${q(file('echo-p', 'config.json'))}`), 'config.json back to {}');
  const after = await call(tt, 'echo-p', JSON.stringify({ msg: 'x'.repeat(100) }));
  tt.not(after.pid, before.pid, `a new process (${before.pid} → ${after.pid})`);
});

await t.test('a driver that crashes: the invocation fails naming the exit, the next one gets a new process', async (tt) => {
  const first = await call<{ pid: number; invocation_id: string; env_invocation_id: string | null }>(tt, 'crash', '{}');
  tt.equal(first.invocation_id, (await status('crash')).invocation_id, 'the request line carries the invocation id');
  tt.equal(first.env_invocation_id, null, 'ACHERON_INVOCATION_ID is not in the process environment');

  succeeded(tt, await invoke('crash', '{"crash":true}'), "the writer's close() returns");
  tt.equal((await status('crash')).state, 'error');
  const error = await readText(file('crash', 'last_error.txt'));
  tt.match(
    error,
    new RegExp(`persistent-crash \\(persistent\\) exited with code 3: persistent-crash ${first.pid}: asked to crash`),
    `names the exit and the driver's stderr: ${error.trim()}`,
  );

  const second = await call<{ pid: number }>(tt, 'crash', '{}');
  tt.not(second.pid, first.pid, `a new process (${first.pid} → ${second.pid})`);

  // It died young, so the restart after this crash waits (backoff), then serves again.
  succeeded(tt, await invoke('crash', '{"crash":true}'), 'a second crash');
  const again = await readText(file('crash', 'last_error.txt'));
  tt.match(again, new RegExp(`persistent-crash ${second.pid}: asked to crash`), 'names the stderr of the process that crashed');
  tt.notMatch(again, new RegExp(`persistent-crash ${first.pid}:`), 'and not what an earlier process wrote');
  const third = await call<{ pid: number }>(tt, 'crash', '{}');
  tt.not(third.pid, second.pid, 'served again by a new process');
  tt.match(await metrics('crash'), { failures_total: 2, timeouts_total: 0 });
});

await t.test('a driver that closes its stdout but keeps running: the request fails at once, not at timeout_ms; a new process serves', async (tt) => {
  const first = await call<{ pid: number }>(tt, 'close-stdout', '{}');
  const started = Date.now();
  succeeded(tt, await invoke('close-stdout', '{"close_stdout":true}'), "the writer's close() returns");
  const tookMs = Date.now() - started;
  // timeout_ms is 30 s: only noticing the closed stdout ends it this soon (generous for a loaded host).
  tt.ok(tookMs < 10_000, `failed within 10 s, not at timeout_ms (${tookMs} ms)`);
  tt.equal((await status('close-stdout')).state, 'error');
  const error = await readText(file('close-stdout', 'last_error.txt'));
  tt.match(error, /persistent-close-stdout \(persistent\) closed its stdout/, `last_error.txt names the cause: ${error.trim()}`);
  await waitFor(async () => !(await alive(first.pid)), { what: `driver ${first.pid}, which closed its stdout, to be stopped` });
  const second = await call<{ pid: number }>(tt, 'close-stdout', '{}');
  tt.not(second.pid, first.pid, `a new process (${first.pid} → ${second.pid})`);
});

await t.test('a request that hangs times out; the requests in flight with it fail "restarted"', async (tt) => {
  const before = await call(tt, 'hang', '{"n":"before"}');
  // The hung request starts first, so its timeout comes first; the others must be in flight by then.
  const script = `
import json, os, sys, threading, time
path, status_path = sys.argv[1], sys.argv[2]
payloads = ['{"hang":true}'] + ['{"sleep_ms":60000,"n":%d}' % n for n in range(3)]
outcomes = [None] * len(payloads)
def transact(i):
    fd = os.open(path, os.O_RDWR)
    os.write(fd, payloads[i].encode())
    data = b''
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    outcomes[i] = json.loads(data)
def running():
    with open(status_path) as f:
        return json.load(f)["running"]
threads = [threading.Thread(target=transact, args=(i,)) for i in range(len(payloads))]
threads[0].start()
while running() < 1 and threads[0].is_alive():
    time.sleep(0.02)
for thread in threads[1:]:
    thread.start()
all_in_flight = False
while threads[0].is_alive():
    if running() == len(payloads):
        all_in_flight = True
        break
    time.sleep(0.02)
for thread in threads:
    thread.join()
print(json.dumps({"all_in_flight": all_in_flight, "outcomes": outcomes}))
`;
  const run = await sh(`python3 -c ${q(script)} ${q(file('hang', 'control/invoke.json'))} ${q(file('hang', 'status.json'))}`, { timeoutMs: 40_000 });
  tt.equal(run.code, 0, run.stderr.trim());
  const { all_in_flight: allInFlight, outcomes } = JSON.parse(run.stdout) as { all_in_flight: boolean; outcomes: FailedOutcome[] };
  tt.ok(allInFlight, 'the three other requests were in flight before the hung one timed out');
  const [hung, ...others] = outcomes as [FailedOutcome, ...FailedOutcome[]];
  tt.match(hung.error, /did not answer request \d+ within 4000 ms; the driver was restarted/, `the hung request: ${hung.error}`);
  for (const other of others) tt.match(other.error, /the persistent driver was restarted: request \d+ timed out/, `an in-flight request: ${other.error}`);

  const [hungJob] = await jobsWith('hang', '"hang"');
  tt.equal(hungJob?.state, 'timeout', 'jobs/: the hung request timed out');
  const otherJobs = await jobsWith('hang', '"sleep_ms":60000');
  tt.equal(otherJobs.length, 3, 'jobs/: the three others');
  for (const job of otherJobs) {
    tt.equal(job.state, 'error', `jobs/${job.invocation_id}: error`);
    tt.match(job.error, /restarted/);
  }
  tt.match(await readText(file('hang', 'last_error.txt')), /restarted/);
  tt.match(await metrics('hang'), { timeouts_total: 1, failures_total: 4 });

  const after = await call(tt, 'hang', '{"n":"after"}');
  tt.not(after.pid, before.pid, `the next invocation is served by a new process (${before.pid} → ${after.pid})`);
  tt.notOk(await alive(before.pid), 'the hung process is gone');
});

await t.test('control/cancel ends every request in flight cancelled: no failure, so no auto-disable', async (tt) => {
  const before = await call(tt, 'cancel', '{}');
  succeeded(tt, await sh(`echo '{"supervision":{"max_consecutive_failures":2}}' > ${q(file('cancel', 'config.json'))}`), 'write config.json');
  const writers = [1, 2, 3].map((n) => invoke('cancel', `{"sleep_ms":60000,"n":${n}}`));
  await waitFor(async () => (await status('cancel')).running === 3, { what: 'three requests in flight' });
  succeeded(tt, await sh(`echo > ${q(file('cancel', 'control/cancel'))}`), 'write control/cancel');
  await Promise.all(writers);
  const jobs = await jobsWith('cancel', 'sleep_ms');
  tt.same(
    jobs.map((job) => job.state),
    ['cancelled', 'cancelled', 'cancelled'],
    'each ends cancelled, none "error" by the restart',
  );
  tt.match(await metrics('cancel'), { cancelled_total: 3, failures_total: 0, consecutive_failures: 0 });
  const after = await call(tt, 'cancel', '{}');
  tt.not(after.pid, before.pid, `still enabled, served by a new process (${before.pid} → ${after.pid})`);
});

await t.test('control/restart starts a new process', async (tt) => {
  const before = await call(tt, 'echo-p', '{}');
  const restarts = (await readJson<{ restarts_total: number }>(file('echo-p', 'health.json'))).restarts_total;
  succeeded(tt, await sh(`echo 1 > ${q(file('echo-p', 'control/restart'))}`), 'write control/restart');
  await waitFor(async () => !(await alive(before.pid)), { what: `driver ${before.pid} to be gone` });
  tt.pass('the old process is gone');
  tt.equal((await readJson<{ restarts_total: number }>(file('echo-p', 'health.json'))).restarts_total, restarts + 1, 'restarts_total counts it');
  const after = await call(tt, 'echo-p', '{}');
  tt.not(after.pid, before.pid, `a new process (${before.pid} → ${after.pid})`);
  tt.equal(after.served, 1);
});

await t.test("a reload that changes the driver's environment restarts it, failing the request in flight; one that does not, does not", async (tt) => {
  const before = await call(tt, 'reload', '{}');
  // Several reload intervals pass without a change: the same process keeps serving.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  tt.equal((await call(tt, 'reload', '{}')).pid, before.pid, 'unchanged manifest: same process');
  const long = await inFlight('reload', '{"sleep_ms":60000}');
  // help_md too, only to see when the reload has happened (README.md).
  await rewrite(manifest('reload', REFERENCE, { runtime: { mode: 'persistent', max_concurrency: 2, env: { GENERATION: '2' } }, help_md: '# generation 2\n' }));
  await waitFor(async () => (await readText(file('reload', 'README.md'))) === '# generation 2\n', { what: 'the changed manifest to be loaded' });
  const after = await call(tt, 'reload', '{}');
  tt.not(after.pid, before.pid, `a new process serves after the reload (${before.pid} → ${after.pid})`);
  tt.equal(after.served, 1, 'one that starts counting afresh');
  tt.notOk(await alive(before.pid), 'the old one is gone');
  tt.match(await long.outcome, { error: /the persistent driver was restarted: its settings changed/ }, 'the request in flight on it failed, saying why');
});

await t.test('editing timeout_ms, help_md and version keeps the driver and its requests in flight; the new timeout applies', async (tt) => {
  const before = await call(tt, 'edit', '{}');
  const long = await inFlight('edit', '{"sleep_ms":4000,"n":"long"}');
  await rewrite(manifest('edit', REFERENCE, { runtime: { mode: 'persistent', max_concurrency: 2, timeout_ms: 1500 }, help_md: '# edited\n', version: '2' }));
  await waitFor(async () => (await readText(file('edit', 'README.md'))) === '# edited\n', { what: 'the edited manifest to be loaded' });
  // The first request after the reload is where a restart would happen, while the long one runs.
  const quick = (await transact('edit', '{"n":"during"}')) as EchoResult;
  tt.equal(quick.pid, before.pid, `served by the same process (${before.pid})`);
  const first = (await long.outcome) as EchoResult;
  tt.same(first.echo, { sleep_ms: 4000, n: 'long' }, `the request in flight during the reload was answered (${JSON.stringify(first)})`);
  tt.equal(first.pid, before.pid, 'by the process it was sent to');
  tt.equal((await metrics('edit')).failures_total, 0, 'nothing failed');
  succeeded(tt, await invoke('edit', '{"sleep_ms":3000}'), "the writer's close() returns");
  tt.equal((await status('edit')).state, 'timeout', 'the new timeout_ms applies');
  tt.match(await readText(file('edit', 'last_error.txt')), /did not answer request \d+ within 1500 ms/);
});

await t.test('SIGTERM to the daemon leaves no persistent driver behind, also one that ignores SIGTERM', async (tt) => {
  const own = await startNode(tt, {
    manifests: [persistent('echo-p', REFERENCE), persistent('stubborn', 'persistent-ignore-term', { kill_grace_ms: 300 })],
  });
  const pids: number[] = [];
  for (const id of ['echo-p', 'stubborn']) {
    succeeded(tt, await sh(`/bin/echo '{}' > ${q(join(own.service(id), 'control/invoke.json'))}`), `invoke ${id}`);
    const { pid } = await readJson<{ pid: number }>(join(own.service(id), 'result.json'));
    tt.ok(await alive(pid), `${id}: driver ${pid} runs`);
    pids.push(pid);
  }
  process.kill(own.child.pid as number, 'SIGTERM');
  tt.same(await own.exited, { code: 0, signal: null }, 'the daemon exits 0');
  for (const pid of pids) {
    await waitFor(async () => !(await alive(pid)), { what: `driver ${pid} to be gone`, timeoutMs: 10_000 });
    tt.pass(`driver ${pid} is gone`);
  }
});
