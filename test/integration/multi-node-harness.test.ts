// The multi-node runtime harness (scripts/acheron-multi-node-runtime.sh, issue 13) as a suite: a
// control server and three real node daemons, each in its own network namespace, every check of
// docs/MULTI_NODE_RUNTIME_HARNESS.md; it must pass and leave nothing behind (namespaces, veth pairs,
// mounts, processes, its directory). Its failure paths are in multi-node-harness-faults.test.ts.
import t from 'tap';
import { REPO } from '../helpers/node.js';
import { sh } from '../helpers/process.js';
import { checkLine, leftovers, runInfo } from '../helpers/harness.js';

const SCRIPT = `${REPO}/scripts/acheron-multi-node-runtime.sh`;

t.test('three nodes in their own network namespaces: every check passes, and nothing is left', async (t) => {
  const r = await sh(`bash ${SCRIPT}`, { timeoutMs: 110_000 });
  const lines = r.stdout.trim().split('\n');
  t.equal(r.code, 0, `exit 0 (${r.stderr.trim().split('\n').slice(-3).join(' | ')})`);
  for (const check of ['catalog', 'invoke', 'restart', 'partition', 'flap', 'mid-invoke']) {
    const line = checkLine(r.stdout, check);
    t.match(line, new RegExp(`^ok ${check} \\(`), line ?? `no line for ${check}`);
  }
  t.match(checkLine(r.stdout, 'partition'), /offline event after .* EHOSTUNREACH in .* online event after .* each invocation ran once/);
  t.match(checkLine(r.stdout, 'flap'), /10 flaps .* without gap or duplicate; 3 node tunnels/);
  t.equal(lines.at(-1), 'multi-node runtime harness passed');
  t.same(await leftovers(runInfo(r.stdout)), [], 'no namespace, veth, mount, process or directory of the run is left');
});

t.test('without the privileges for network namespaces it says so and exits non-zero', async (t) => {
  // A user namespace without a uid mapping: uid 65534, no CAP_SYS_ADMIN where /run/netns lives.
  const r = await sh(`unshare --user bash ${SCRIPT}`, { timeoutMs: 60_000 });
  t.equal(r.code, 1);
  t.match(r.stderr, /this machine cannot run the harness's own fleet: it needs root \(uid 65534\)/);
  t.notMatch(r.stdout, /passed/, 'never a silent pass');
});
