// The multi-node runtime harness (scripts/acheron-multi-node-runtime.sh, issue 13) as a suite: a
// control server and three real node daemons, each in its own network namespace, every check of
// docs/MULTI_NODE_RUNTIME_HARNESS.md; it must pass and leave nothing behind (namespaces, veth pairs,
// mounts, processes, its directory). Its failure paths are in multi-node-harness-faults.test.ts.
import t from 'tap';
import { checkLine, harness, HARNESS_SCRIPT, leftovers, runInfo } from '../helpers/harness.js';
import { sh } from '../helpers/process.js';

// About a minute on an idle 2-core machine; the margin is for machines busy with other work.
t.setTimeout(180_000);

t.test('three nodes in their own network namespaces: every check passes, and nothing is left', async (t) => {
  const run = harness(t, {});
  const code = await run.exited;
  const stdout = run.stdout();
  t.equal(code, 0, `exit 0 (${run.stderr().trim().split('\n').slice(-3).join(' | ')})`);
  for (const check of ['catalog', 'invoke', 'restart', 'partition', 'flap', 'mid-invoke']) {
    const line = checkLine(stdout, check);
    t.match(line, new RegExp(`^ok ${check} \\(`), line ?? `no line for ${check}`);
  }
  t.match(checkLine(stdout, 'partition'), /offline event after .* EHOSTUNREACH in .* online event after .* each invocation ran once/);
  t.match(checkLine(stdout, 'flap'), /10 flaps .* without gap or duplicate; 3 node tunnels/);
  t.equal(stdout.trim().split('\n').at(-1), 'multi-node runtime harness passed');
  t.same(await leftovers(runInfo(stdout)), [], 'no namespace, veth, mount, process or directory of the run is left');
});

t.test('without the privileges for network namespaces it says so and exits non-zero', async (t) => {
  // A user namespace without a uid mapping: uid 65534, no CAP_SYS_ADMIN where /run/netns lives.
  const r = await sh(`unshare --user bash ${HARNESS_SCRIPT}`, { timeoutMs: 60_000 });
  t.equal(r.code, 1);
  t.match(r.stderr, /this machine cannot run the harness's own fleet: it needs root \(uid 65534\)/);
  t.notMatch(r.stdout, /passed/, 'never a silent pass');
});
