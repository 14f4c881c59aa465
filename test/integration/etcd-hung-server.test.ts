// A control server that hangs (SIGSTOP: its sockets stay open, nothing answers) with its defaults
// (--server-ttl-ms 5000, --offline-grace-ms 15000): the other server takes its nodes for gone 20 s
// after the stop. The node's own pings notice the silence first (9–12 s) and it moves to the other
// server in time: no `offline` event, and its log says why it left.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ResumingWatcher } from '../helpers/catalog-sim.js';
import { joinToken, QUICK_NODE_ARGS, startControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { manifest, readJson, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

const cluster = await startEtcd(t);
const store = await etcdStore(cluster);
const [a, b] = await Promise.all([startControl(t, { store }), startControl(t, { store })]);
const watcher = new ResumingWatcher('watcher on A', store.adminToken, { replay_limit: 1024 });
t.teardown(() => watcher.close());
await watcher.connect(a.url);

const tokenFile = join(await tempDir(t, 'acheron-hung-'), 'join');
await writeFile(tokenFile, `${await joinToken(store)}\n`, { mode: 0o600 });
// B first: the node starts on the server that will hang.
const node = await startNode(t, {
  nodeId: 'hung1',
  manifests: [manifest('echo', 'echo')],
  args: ['--control-url', `${b.url},${a.url}`, '--join-token-file', tokenFile, ...QUICK_NODE_ARGS],
});
const control = async (): Promise<{ url: string; state: string }> =>
  (await readJson<{ control: { url: string; state: string } }>(join(node.mount, 'NODE.json'))).control;
await waitFor(async () => (await control()).state === 'connected' && watcher.events.some((e) => e.node_id === 'hung1'), {
  what: 'the node connected to B and seen on A',
  timeoutMs: 30_000,
});

await t.test('the server the node uses hangs: the node is on the other one before it would turn offline', async (tt) => {
  tt.equal((await control()).url, b.url, 'the node started on B');
  const pid = b.child.pid as number;
  process.kill(pid, 'SIGSTOP');
  tt.teardown(() => void process.kill(pid, 'SIGCONT'));
  const stoppedAt = Date.now();
  await waitFor(
    async () => {
      const now = await control();
      return now.url === a.url && now.state === 'connected';
    },
    { what: 'the node connected to A', timeoutMs: 40_000 },
  );
  tt.pass(`the node moved to A ${Date.now() - stoppedAt} ms after B stopped`);
  // B's registration lapses after 5 s, its nodes' grace periods end 15 s later: wait past that.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + 25_000 - Date.now())));
  const offline = watcher.events.filter((e) => e.node_id === 'hung1' && e.kind === 'offline');
  tt.same(offline, [], `no offline event ${Date.now() - stoppedAt} ms after B stopped`);
  const lost = await sh(`grep -a 'control session lost' ${q(node.logFile)}`);
  const why = 'connection closed (1006 no answer from the control server for 9000 ms)';
  tt.ok(lost.stdout.includes(why) && lost.stdout.includes(`control session lost: ${b.url}: `), `the node logged why it left B: ${lost.stdout.trim()}`);
});
