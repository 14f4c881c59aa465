// SPEC §3: a writer's close() waits at most queue time + timeout_ms + kill grace; past that it gets
// ETIMEDOUT while the run goes on and is recorded. A run cannot outlive timeout_ms + kill grace on
// its own, so the test stops the driver spawner (SIGSTOP) while the invocation runs, then lets it go.
import t from 'tap';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readJson, startNode } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

const node = await startNode(t, {
  manifests: [manifest('stuck', 'slow', { runtime: { timeout_ms: 1000, kill_grace_ms: 200, env: { SLOW_SECONDS: '0.3' } } })],
});
const invoke = join(node.service('stuck'), 'control', 'invoke.json');

const WRITER = `
import errno, json, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b'{"late": true}')
start = time.monotonic()
try:
    os.close(fd)
    code = 'none'
except OSError as e:
    code = errno.errorcode[e.errno]
print(json.dumps({"close": code, "waited_ms": (time.monotonic() - start) * 1000}))
`;

await t.test(
  'a stuck run: close() gets ETIMEDOUT after timeout_ms + kill grace + slack, and so does a writer queued behind it; both runs are recorded when they end',
  async (tt) => {
    const spawner = Number((await sh(`pgrep -P ${node.child.pid} -f spawner-main`)).stdout.trim().split('\n')[0]);
    tt.ok(spawner > 0, `found the spawner (${spawner})`);
    const writer = sh(`python3 -c ${q(WRITER)} ${q(invoke)}`, { timeoutMs: 30_000 });
    await waitFor(async () => (await readJson<{ state: string }>(join(node.service('stuck'), 'status.json'))).state === 'running', {
      what: 'the invocation running',
      intervalMs: 20,
    });
    process.kill(spawner, 'SIGSTOP');
    t.teardown(() => {
      try {
        process.kill(spawner, 'SIGCONT');
      } catch {
        // gone with the node
      }
    });
    // Queued behind the stuck run (max_concurrency 1): one round of the run ahead's bound from its commit.
    const queuedWriter = await sh(`python3 -c ${q(WRITER)} ${q(invoke)}`, { timeoutMs: 30_000 });
    const run = await writer;
    for (const [who, result] of [
      ['the running invocation', run],
      ['the queued one', queuedWriter],
    ] as const) {
      tt.equal(result.code, 0, result.stderr.trim());
      const { close, waited_ms: waitedMs } = JSON.parse(result.stdout) as { close: string; waited_ms: number };
      tt.equal(close, 'ETIMEDOUT', `${who}: close() failed with ETIMEDOUT`);
      // 1000 ms timeout_ms + 200 ms kill grace + 2000 ms slack.
      tt.ok(waitedMs >= 3000, `${who}: after the bound, not before (${Math.round(waitedMs)} ms)`);
    }
    const queuedJob = (await readdir(join(node.service('stuck'), 'jobs'))).sort().at(-1) as string;
    tt.match(await readJson(join(node.service('stuck'), 'jobs', queuedJob, 'status.json')), { state: 'queued' }, 'the queued job stays queued');
    tt.match(await readJson(join(node.service('stuck'), 'status.json')), { state: 'running' }, 'the run goes on');
    process.kill(spawner, 'SIGCONT');
    const status = await waitFor(
      async () => {
        const doc = await readJson<{ state: string; invocation_id: string }>(join(node.service('stuck'), 'status.json'));
        return doc.state !== 'running' ? doc : undefined;
      },
      { what: 'the run to end', timeoutMs: 20_000 },
    );
    // ok, or timeout when the spawner's own timer fires first on waking (it was stopped past timeout_ms).
    tt.match(status.state, /^(ok|timeout)$/, `and is recorded when it ends (${status.state})`);
    tt.match(await readJson(join(node.service('stuck'), 'jobs', status.invocation_id, 'status.json')), { state: status.state }, 'its job says the same');
    const queuedEnd = await waitFor(
      async () => {
        const doc = await readJson<{ state: string }>(join(node.service('stuck'), 'jobs', queuedJob, 'status.json'));
        return doc.state !== 'queued' && doc.state !== 'running' ? doc : undefined;
      },
      { what: 'the queued run to end', timeoutMs: 20_000 },
    );
    tt.equal(queuedEnd.state, 'ok', 'the queued invocation ran once the spawner went on');
  },
);
