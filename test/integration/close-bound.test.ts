// SPEC §3: a writer's close() waits at most queue time + timeout_ms + kill grace, and queue time is
// bounded by the runs ahead, each stopped at its timeout_ms. A driver spawner that does not answer
// (stopped, hung) would carry out no kill: the node ends such a run itself, kills and replaces the
// spawner, and the queue moves on. The test stops the real spawner (SIGSTOP) with one run going and
// one queued behind it.
import t from 'tap';
import { readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readJson, startNode } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

const TIMEOUT_MS = 1000;
const KILL_GRACE_MS = 500;
const node = await startNode(t, {
  manifests: [
    manifest('stuck', 'slow', { runtime: { timeout_ms: TIMEOUT_MS, kill_grace_ms: KILL_GRACE_MS, env: { SLOW_SECONDS: '30' } } }),
    manifest('quick', 'echo'),
  ],
});
const invoke = join(node.service('stuck'), 'control', 'invoke.json');

// Writes its payload, then commits it (close) once the file GATE exists: both writers are started
// before the spawner is stopped, and the second commits at once after the first is running (its run
// ends about 2.5 s later, so a writer starting python only then could miss the queue).
const WRITER = `
import errno, json, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, sys.argv[2].encode())
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
start = time.monotonic()
try:
    os.close(fd)
    code = 'none'
except OSError as e:
    code = errno.errorcode[e.errno]
print(json.dumps({"close": code, "waited_ms": (time.monotonic() - start) * 1000}))
`;

interface Status {
  state: string;
  running: number;
  queued: number;
}
interface JobStatus {
  state: string;
  error: string;
  started_ms: number;
  finished_ms: number;
}

/** The daemon's driver spawner: its child running spawner-main. */
async function spawnerPid(): Promise<number> {
  return Number((await sh(`pgrep -P ${node.child.pid} -f spawner-main`)).stdout.trim().split('\n')[0]);
}

/** A writer's outcome, or `hung` once `boundMs` passed (its close() still blocked in the FUSE request). */
async function within(writer: ReturnType<typeof sh>, boundMs: number): Promise<{ close: string; waited_ms: number } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), boundMs)));
  const outcome = await Promise.race([writer.then((r) => JSON.parse(r.stdout) as { close: string; waited_ms: number }), hung]);
  clearTimeout(timer);
  return outcome;
}

await t.test('a stopped spawner: the run past its kill ends as timeout, the queued writer is answered, a new spawner serves later invokes', async (tt) => {
  // One run first: a spawner that has answered has loaded (one still loading gets longer to answer).
  const quick = join(node.service('quick'), 'control', 'invoke.json');
  tt.equal((await sh(`echo '{"before":1}' > ${q(quick)}`)).code, 0);
  const stopped = await spawnerPid();
  tt.ok(stopped > 0, `found the spawner (${stopped})`);
  process.kill(stopped, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(stopped, 'SIGCONT');
    } catch {
      // killed and replaced, or gone with the node
    }
  });
  const jobsDir = join(node.service('stuck'), 'jobs');
  const jobIds = async (): Promise<string[]> => (await sh(`ls ${q(jobsDir)}`)).stdout.split('\n').filter(Boolean).sort();
  const gate = (n: number): string => join(node.dir, `commit-${n}`);
  const first = sh(`python3 -c ${q(WRITER)} ${q(invoke)} '{"n":1}' ${q(gate(1))}`, { timeoutMs: 120_000 });
  const second = sh(`python3 -c ${q(WRITER)} ${q(invoke)} '{"n":2}' ${q(gate(2))}`, { timeoutMs: 120_000 });
  // Job listings, not status.json's transient counts: a loaded host may poll past a state.
  await writeFile(gate(1), '');
  await waitFor(async () => (await jobIds()).length === 1, { what: 'the first invocation committed', intervalMs: 10, timeoutMs: 60_000 });
  await writeFile(gate(2), '');
  await waitFor(async () => (await jobIds()).length === 2, { what: 'the second invocation committed', intervalMs: 10, timeoutMs: 60_000 });

  // Generous: the first run ends about timeout_ms + kill grace + 1 s after it started, the second
  // then runs its timeout_ms on a new spawner.
  const [one, two] = await Promise.all([within(first, 20_000), within(second, 20_000)]);
  tt.not(one, 'hung', 'the first writer was answered');
  tt.not(two, 'hung', 'the queued writer was answered');
  if (one === 'hung' || two === 'hung') return;
  // Its outcome, normally; ETIMEDOUT only if the host was too slow for the writer's 2 s of slack.
  tt.match(one.close, /^(none|ETIMEDOUT)$/, `first close(): ${one.close} after ${Math.round(one.waited_ms)} ms`);
  tt.equal(two.close, 'none', `queued close(): its outcome after ${Math.round(two.waited_ms)} ms`);

  const [firstId, secondId] = await jobIds();
  const firstJob = await readJson<JobStatus>(join(jobsDir, firstId as string, 'status.json'));
  tt.equal(firstJob.state, 'timeout', 'the run the spawner did not kill ended as timeout');
  tt.match(
    firstJob.error,
    new RegExp(
      `timed out after 1000 ms: the driver spawner \\(pid ${stopped}\\) did not answer within 1000 ms, so it was killed and replaced; the process may still run`,
    ),
    firstJob.error.trim(),
  );
  const secondJob = await readJson<JobStatus>(join(jobsDir, secondId as string, 'status.json'));
  tt.ok(secondJob.started_ms >= firstJob.finished_ms, 'the second waited for the first: queued behind it');
  tt.match(secondJob, { state: 'timeout' }, 'the queued run ran and was killed at its timeout');
  tt.match(await readJson<Status>(join(node.service('stuck'), 'status.json')), { running: 0, queued: 0 }, 'no place is held');

  await waitFor(async () => (await sh(`test -e /proc/${stopped}`)).code !== 0, { what: 'the stopped spawner killed' });
  const replacement = await spawnerPid();
  tt.ok(replacement > 0 && replacement !== stopped, `a new spawner runs (${replacement})`);
  const fds = await readdir(`/proc/${replacement}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${replacement}/fd/${fd}`).catch(() => '')));
  tt.notOk(targets.includes('/dev/fuse'), 'forked after the mount, it does not hold /dev/fuse');

  const after = await sh(`echo '{"after":1}' > ${q(quick)} && cat ${q(join(node.service('quick'), 'result.json'))}`);
  tt.equal(after.code, 0, after.stderr.trim());
  tt.match(after.stdout, /"after":1/, 'a later invoke runs on the new spawner');
});
