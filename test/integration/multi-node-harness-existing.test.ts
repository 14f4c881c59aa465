// The multi-node runtime harness against a fleet it did not start (ACHERON_CONTROL_URL and an admin
// token), as the seed's harness: catalog and invoke checks, the config.json marker across a restart
// the operator makes while the harness waits (RECONNECT_NODE_ID), the link checks skipped.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../src/protocol/control-client.js';
import { joinToken, startControl } from '../helpers/control.js';
import { checkLine, harness, leftovers, runInfo } from '../helpers/harness.js';
import { REPO, startNode, tempDir } from '../helpers/node.js';
import { waitFor } from '../helpers/process.js';

// Well under a minute on an idle 2-core machine; the margin is for machines busy with other work.
t.setTimeout(180_000);

await t.test(
  'a running fleet (ACHERON_CONTROL_URL): catalog, invoke, the config marker across the restart the operator makes; the rest skipped',
  async (tt) => {
    const control = await startControl(tt, { args: ['--offline-grace-ms', '1000'] });
    const tokenFile = join(await tempDir(tt), 'join-token');
    await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
    const options = {
      nodeId: 'edge-1',
      args: [
        '--service-manifest',
        join(REPO, 'manifests.d', 'echo.json'),
        '--control-url',
        control.url,
        '--join-token-file',
        tokenFile,
        '--reconnect-backoff-ms',
        '200',
      ],
    };
    const node = await startNode(tt, options);
    const run = harness(tt, {
      ACHERON_CONTROL_URL: control.url,
      ACHERON_TOKEN: control.adminToken,
      EXPECTED_NODES: 'edge-1',
      PERSISTENCE_NODE_ID: 'edge-1',
      RECONNECT_NODE_ID: 'edge-1',
      HARNESS_TIMEOUT_SEC: '60',
    });
    await waitFor(() => run.stdout().includes('# waiting up to'), { what: 'the harness waiting for the restart', timeoutMs: 90_000, intervalMs: 100 });
    // The operator's restart: stopped until the server says offline, then started again.
    node.child.kill('SIGTERM');
    await node.exited;
    const admin = await ControlClient.connect({ url: control.url, token: control.adminToken });
    tt.teardown(() => admin.terminate());
    await waitFor(async () => (await admin.request<{ state: string }>('control.node_get', { node_id: 'edge-1' })).state === 'offline', {
      what: 'edge-1 offline',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await node.restart();
    tt.equal(await run.exited, 0, run.stderr().trim());
    const lines = run.stdout().trim().split('\n');
    tt.match(checkLine(run.stdout(), 'catalog'), /^ok catalog .*1 node\(s\) online \(edge-1\), each with echo/);
    tt.match(checkLine(run.stdout(), 'invoke'), /^ok invoke .*an invoke of echo through WorldFS ran on each of 1 node/);
    tt.match(checkLine(run.stdout(), 'restart'), /^ok restart .*survived its restart \(offline, then online\)/);
    for (const check of ['partition', 'flap', 'mid-invoke'])
      tt.match(checkLine(run.stdout(), check), new RegExp(`^skip ${check}: needs the harness's own fleet`));
    tt.equal(lines.at(-1), 'multi-node runtime harness passed');
    tt.same(await leftovers(runInfo(run.stdout())), [], 'its WorldFS mount and directory are gone');
  },
);
