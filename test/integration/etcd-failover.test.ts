// Failover between control servers of one etcd store (issue 11): two real nodes (FUSE), a WorldFS
// mount and `acheron node watch`, all given `--control-url A,B`, start on A; a reference watcher
// watches on B. While the nodes upsert (their manifests change every few hundred ms), A is killed
// (kill -9). Each client moves to B by itself: the nodes keep their identity and lease (no offline
// event: they are back well within the grace period), the watch command resumes after the last seq
// it printed with no loss, duplicate or gap, WorldFS resumes its watch with since_seq (no re-read)
// and an invoke through it works. A client whose URLs are all down gives up with a clear error.
import t from 'tap';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ResumingWatcher } from '../helpers/catalog-sim.js';
import { acheron, joinToken, refusingPort, startControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { ACHERON, manifest, readJson, startNode, tempDir, TRANSACTION } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const cluster = await startEtcd(t, { members: 3 });
const store = await etcdStore(cluster);
// Killed, A is noticed after 1 s; a node not back 3 s after that would turn offline.
const serverArgs = ['--offline-grace-ms', '3000', '--server-ttl-ms', '1000'];
const [a, b] = await Promise.all([startControl(t, { store, args: serverArgs }), startControl(t, { store, args: serverArgs })]);
const both = `${a.url},${b.url}`;
const dir = await tempDir(t, 'acheron-failover-');

const reference = new ResumingWatcher('reference on B', store.adminToken, { include: 'delta', replay_limit: 1024 });
t.teardown(() => reference.close());
await reference.connect(b.url);

const nodeIds = ['fo1', 'fo2'];
const nodes = await Promise.all(
  nodeIds.map(async (nodeId) => {
    const tokenFile = join(dir, `${nodeId}.join`);
    await writeFile(tokenFile, `${await joinToken(store)}\n`, { mode: 0o600 });
    return startNode(t, {
      nodeId,
      manifests: [manifest('echo', 'echo', { version: '0' })],
      args: [
        '--control-url',
        both,
        '--join-token-file',
        tokenFile,
        '--manifest-reload-interval-ms',
        '200',
        '--reconnect-backoff-ms',
        '200',
        '--reconnect-backoff-max-ms',
        '1000',
      ],
    });
  }),
);

/** The node's `echo` manifest at `version`, replaced atomically (the node reloads and upserts). */
async function bump(node: (typeof nodes)[number], version: number): Promise<void> {
  const path = join(node.servicesDir, 'echo.json');
  await writeFile(`${path}.tmp`, JSON.stringify(manifest('echo', 'echo', { version: String(version) })));
  await rename(`${path}.tmp`, path);
}

const versionSeen = (nodeId: string, version: number): boolean =>
  reference.events.some(
    (e) =>
      e.node_id === nodeId &&
      (e.changed_services as Array<{ service_id: string; version: string }>).some((s) => s.service_id === 'echo' && s.version === String(version)),
  );
await waitFor(() => nodeIds.every((id) => versionSeen(id, 0)), { what: 'both nodes joined and published', timeoutMs: 30_000 });

const tokenFile = join(dir, 'admin.token');
await writeFile(tokenFile, `${store.adminToken}\n`, { mode: 0o600 });
const watch = spawn(process.execPath, [ACHERON, 'node', 'watch', '--json', '--replay-limit', '0', '--control-url', both, '--token-file', tokenFile], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let watchOut = '';
let watchErr = '';
watch.stdout.on('data', (chunk: Buffer) => (watchOut += chunk.toString()));
watch.stderr.on('data', (chunk: Buffer) => (watchErr += chunk.toString()));
t.teardown(() => void watch.kill('SIGKILL'));
const printed = (): Array<{ seq: number; node_id: string; kind: string }> =>
  watchOut
    .split('\n')
    .slice(0, -1)
    .map((line) => JSON.parse(line) as { seq: number; node_id: string; kind: string });

const world = await startWorld(t, { url: both, token: store.adminToken });
const nodeDoc = (nodeId: string): Promise<{ control: { url: string; state: string } }> =>
  readJson(join(nodes[nodeIds.indexOf(nodeId)]?.mount as string, 'NODE.json'));

await t.test('kill -9 of the server the clients use, while the nodes upsert: everyone moves on, nothing lost', async (tt) => {
  for (const id of nodeIds) tt.equal((await nodeDoc(id)).control.url, a.url, `${id} started on A (first in its list)`);
  let version = 0;
  const upserts = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      version++;
      await Promise.all(nodes.map((node) => bump(node, version)));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  // Until the watch command prints: on a loaded machine its watch may begin after the first upserts (it
  // watches from then on, --replay-limit 0), and then waited for events that had come before it.
  await upserts(4);
  const watchBy = Date.now() + 30_000;
  while (printed().length === 0) {
    if (Date.now() >= watchBy) return void tt.fail(`the watch command printed no event in 30 s of upserts (stderr: ${watchErr})`);
    await upserts(1);
  }
  tt.equal((await a.kill9()).signal, 'SIGKILL', 'A died of SIGKILL');
  const killedAt = Date.now();
  await upserts(6);
  await waitFor(() => nodeIds.every((id) => versionSeen(id, version)), {
    what: `both nodes' version ${version} reaching the reference on B`,
    timeoutMs: 30_000,
  });
  for (const [i, id] of nodeIds.entries()) {
    const doc = await nodeDoc(id);
    tt.same([doc.control.url, doc.control.state], [b.url, 'connected'], `${id} moved its tunnel to B`);
    const lost = await sh(`grep -a 'control session lost' ${q(nodes[i]?.logFile as string)}`);
    tt.match(lost.stdout, `control session lost: ${a.url}: connection closed (1006); trying ${b.url} in `, `${id}'s log says it lost A, and why`);
  }
  const last = reference.events.at(-1)?.seq as number;
  await waitFor(() => printed().some((e) => e.seq >= last), {
    what: `the watch command reaching seq ${last} (stderr: ${watchErr.slice(-300)})`,
    timeoutMs: 20_000,
  });
  const seqs = printed().map((e) => e.seq);
  tt.same(
    seqs,
    [...new Set(seqs)].sort((x, y) => x - y),
    'the watch command printed each seq once, in order',
  );
  const expected = reference.events.map((e) => e.seq as number).filter((s) => s >= (seqs[0] as number) && s <= last);
  tt.same(
    seqs.filter((s) => s <= last),
    expected,
    'and every event from its first to the last, across the failover',
  );
  tt.match(watchErr, `connection to ${a.url} lost (1006`, 'it said how the connection ended');
  tt.match(watchErr, /\); reconnecting and resuming after seq \d+/, 'and that it resumed');
  tt.notOk(
    reference.events.some((e) => e.kind === 'offline'),
    'no node turned offline: each was back within its grace period',
  );
  // Long enough for A's registration to lapse and a grace period to pass, had the nodes not moved.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + 5_000 - Date.now())));
  tt.notOk(
    reference.events.some((e) => e.kind === 'offline'),
    `still none ${Date.now() - killedAt} ms after the kill`,
  );
  const metrics = await (await fetch(`${b.httpUrl}/metrics`)).text();
  tt.match(metrics, /^acheron_connections\{role="node",server_id="[^"]+"\} 2$/m, 'B holds both tunnels');
});

await t.test('WorldFS resumed its watch on B with since_seq, and an invoke through it works', async (tt) => {
  const last = String(
    Math.max(
      ...reference.events.filter((e) => e.node_id === 'fo1').flatMap((e) => (e.changed_services as Array<{ version: string }>).map((s) => Number(s.version))),
    ),
  );
  const listed = async (): Promise<string | undefined> =>
    (await readJson<Array<{ service_id: string; version: string }>>(join(world.node('fo1'), 'services', 'SERVICES.json')).catch(() => [])).find(
      (s) => s.service_id === 'echo',
    )?.version;
  await waitFor(async () => (await listed()) === last, { what: `WorldFS showing fo1's echo at version ${last}`, timeoutMs: 20_000 });
  tt.pass(`WorldFS follows the catalog through B (fo1's echo at version ${last})`);
  const log = await sh(`grep -a 'watch resumed' ${q(world.logFile)}`);
  tt.match(log.stdout, `"url":"${b.url}"`, 'the mount resumed on B (logged)');
  tt.match(log.stdout, /"resumed_after":\d+/, 'after the seq it had');
  const invoke = await sh(`python3 ${q(TRANSACTION)} ${q(join(world.node('fo2'), 'services', 'echo', 'control', 'invoke.json'))} '{"after":"failover"}'`);
  tt.equal(invoke.code, 0, `an invoke through WorldFS on B works: ${invoke.stderr}`);
  tt.match(invoke.stdout, /failover/, 'and answers');
});

await t.test('every URL down: a clear error after the retries, no hang', async (tt) => {
  const first = await refusingPort();
  let second = await refusingPort();
  while (second === first) second = await refusingPort();
  const dead = `ws://127.0.0.1:${first},ws://127.0.0.1:${second}`;
  const started = Date.now();
  const r = await acheron(['node', 'list', '--control-url', dead, '--token', store.adminToken]);
  tt.equal(r.code, 1, 'exit 1');
  tt.match(
    r.stderr,
    /no control server answered \(3 rounds over 2 URLs\): ws:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    `naming each URL and why: ${r.stderr.trim()}`,
  );
  tt.ok(Date.now() - started < 60_000, `gave up after ${Date.now() - started} ms`);
  const onward = await acheron(['node', 'list', '--control-url', `${a.url},${b.url}`, '--token', store.adminToken, '--json']);
  tt.equal(onward.code, 0, `a dead first URL (A): the next one answers: ${onward.stderr}`);
  tt.same(
    (JSON.parse(onward.stdout) as Array<{ node_id: string }>).map((n) => n.node_id),
    nodeIds,
    'the catalog through B',
  );
});
