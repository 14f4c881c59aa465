// The multi-node runtime harness when things go wrong: a failing check (exit 1, the FAIL line,
// nothing left) and Ctrl-C in the middle of link flaps (exit 130, nothing left).
import t from 'tap';
import { checkLine, harness, leftovers, runInfo } from '../helpers/harness.js';
import { waitFor } from '../helpers/process.js';

// Well under a minute on an idle 2-core machine; the margin is for machines busy with other work.
t.setTimeout(180_000);

// The two own-fleet runs go side by side: each is one node.
await Promise.all([
  t.test('a failing check: its FAIL line, the failure at the end, exit 1, and nothing left', async (tt) => {
    const run = harness(tt, { HARNESS_NODES: '1', HARNESS_CHECKS: 'catalog,invoke', EXPECTED_SERVICES: 'echo,no-such-service', HARNESS_TIMEOUT_SEC: '3' });
    tt.equal(await run.exited, 1, run.stderr().trim());
    const lines = run.stdout().trim().split('\n');
    tt.match(
      checkLine(run.stdout(), 'catalog'),
      /^FAIL catalog \([\d.]+ s\): timed out waiting for node node-1 online with echo, no-such-service in the catalog/,
    );
    tt.match(checkLine(run.stdout(), 'invoke'), /^ok invoke /, 'the other checks still run');
    tt.match(lines.at(-1), /^multi-node runtime harness failed: 1 check\(s\) failed/);
    tt.same(await leftovers(runInfo(run.stdout())), []);
  }),
  t.test('Ctrl-C while the link flaps: the harness stops, exit 130, and nothing is left', async (tt) => {
    const run = harness(tt, { HARNESS_NODES: '1', HARNESS_CHECKS: 'flap', FLAP_COUNT: '1000', FLAP_DOWN_MS: '200', FLAP_UP_MS: '200' });
    await waitFor(() => run.stdout().includes('# own fleet'), { what: 'the fleet up', timeoutMs: 90_000, intervalMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    run.interrupt();
    tt.equal(await run.exited, 130, run.stderr().trim());
    tt.notMatch(run.stdout(), /harness passed/);
    tt.same(await leftovers(runInfo(run.stdout())), []);
  }),
]);
