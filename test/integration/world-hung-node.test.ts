// docs/worldfs.md "Bounds": a stat, ls or other metadata operation on a node that does not answer
// ends ETIMEDOUT after the mount's 15 s, once: a stat of a name looked up before (the kernel's
// revalidation, then its lookup again) used to wait twice, 30 s, and an `ls -l` 15 s per live file.
// A node that has let an operation outlive that bound, with no answer since, gets ETIMEDOUT at once
// for new metadata operations, until it answers anything. A real control server (pinging too rarely
// to drop the stopped node's tunnel first), a real node stopped with SIGSTOP, a real WorldFS mount,
// every file operation from a child process.
import t from 'tap';
import { join } from 'node:path';
import { startControl, startJoinedNode } from '../helpers/control.js';
import { readJson, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const NODE_ID = 'n1';
const control = await startControl(t, { args: ['--ping-interval-ms', '60000'] });
const dir = await tempDir(t);
const node = await startJoinedNode(t, control, NODE_ID, dir);
const world = await startWorld(t, { url: control.url, token: control.adminToken });
const service = join(world.node(NODE_ID), 'services', 'echo');

/** stat(2) of each path in turn from a child process: each errno name (or "ok") and how long it took. */
const STAT = `
import errno, json, os, sys, time
out = []
for path in sys.argv[1:]:
    start = time.monotonic()
    try:
        os.stat(path)
        code = 'ok'
    except OSError as e:
        code = errno.errorcode[e.errno]
    out.append({"code": code, "ms": (time.monotonic() - start) * 1000})
print(json.dumps(out))
`;
type Stat = { code: string; ms: number };
async function stats(...paths: string[]): Promise<Stat[]> {
  const r = await sh(`python3 -c ${q(STAT)} ${paths.map(q).join(' ')}`, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Stat[];
}

t.test('a stopped node: one stat waits the 15 s bound once, then metadata answers at once; all works again once it answers', async (t) => {
  await readJson(join(service, 'status.json'));
  // Past the kernel's 1 s name cache: the next stat revalidates the name, then looks it up again.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const pid = node.child.pid as number;
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone already
    }
  });
  const [looked, fresh, other] = (await stats(join(service, 'status.json'), join(service, 'metrics.json'), join(service, 'health.json'))) as [Stat, Stat, Stat];
  t.equal(looked.code, 'ETIMEDOUT', 'a stat of a name looked up before: ETIMEDOUT');
  t.ok(looked.ms >= 13_000 && looked.ms < 22_000, `after the 15 s bound, once, not twice (${Math.round(looked.ms)} ms)`);
  t.equal(fresh.code, 'ETIMEDOUT', 'the next stat on that node: ETIMEDOUT');
  t.ok(fresh.ms < 3000, `at once (${Math.round(fresh.ms)} ms)`);
  t.equal(other.code, 'ETIMEDOUT');
  t.ok(other.ms < 3000, `and the next (${Math.round(other.ms)} ms)`);

  process.kill(pid, 'SIGCONT');
  const started = Date.now();
  await waitFor(async () => (await stats(join(service, 'status.json')))[0]?.code === 'ok', {
    what: 'a stat to work again',
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  t.ok(Date.now() - started < 5000, `once the node answers, operations work again promptly (${Date.now() - started} ms)`);
  t.type((await readJson(join(service, 'status.json'))).state, 'string', 'and a read gives the document');
});
