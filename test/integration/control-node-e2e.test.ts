// SPEC §6 end to end: a real node mount joined to a real control server. The node joins once with a
// join token and keeps its credentials in its state file; manifest edits and runtime controls on the
// node reach the server's catalog; a kill -9 of the server loses nothing and the node reconnects by
// itself; a stopped node turns offline with its services kept, and comes back online on restart
// without a new join token. §7: /metrics and /metrics.json see it.
import t from 'tap';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient } from '../../src/protocol/control-client.js';
import type { NodeControlState, ServiceDescriptor } from '../../src/protocol/types.gen.js';
import { acheron, joinArgs, joinToken, listTokens, metricValue, scrape, startControl, type RunningControl } from '../helpers/control.js';
import { manifest, readJson, startNode, tempDir, type RunningNode } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

interface NodeDoc {
  node_id: string;
  node_name: string;
  state: 'online' | 'offline';
  labels: Record<string, string>;
  platform: Record<string, string>;
  lease_expires_at_ms: number;
  last_seen_ms: number;
  joined_at_ms: number;
  updated_ms: number;
  services: Array<ServiceDescriptor & { runtime: { supervision_status?: { enabled: boolean; state: string; manifest_error?: string } } }>;
}
interface Credentials {
  node_id: string;
  node_secret: string;
  control_url: string;
}

const NODE_ID = 'test-node';
// A restarted server gives the node this long to come back before it turns offline: the catalog read
// right after a restart must come first, also on a busy machine (1 s once lost that race at load 9).
let control: RunningControl = await startControl(t, { args: ['--offline-grace-ms', '5000'] });
const tokenFile = join(await tempDir(t), 'join-token');
await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
const nodeArgs = [...joinArgs(control.url, tokenFile), '--label', 'rack=r7'];
let node: RunningNode = await startNode(t, { manifests: [manifest('echo', 'echo')], args: nodeArgs });
const stateFile = join(node.dir, 'node-state.json');

/** The node as the server has it now (a fresh admin connection each time: the server restarts). */
async function catalog(): Promise<NodeDoc> {
  const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 5_000 });
  try {
    return await client.request<NodeDoc>('control.node_get', { node_id: NODE_ID });
  } finally {
    client.terminate();
  }
}

/** Waits until the server's catalog satisfies `check`. */
function catalogWhere(check: (doc: NodeDoc) => boolean, what: string): Promise<NodeDoc> {
  return waitFor(
    async () => {
      const doc = await catalog();
      return check(doc) ? doc : undefined;
    },
    { what, timeoutMs: 20_000, intervalMs: 150 },
  );
}

const service = (doc: NodeDoc, id: string): NodeDoc['services'][number] | undefined => doc.services.find((s) => s.service_id === id);
const controlDoc = async (): Promise<NodeControlState> => (await readJson<{ control: NodeControlState }>(join(node.mount, 'NODE.json'))).control;
const credentials = async (): Promise<Credentials> => await readJson<Credentials>(stateFile);
const admin = (args: string[]): ReturnType<typeof acheron> => acheron([...args, '--control-url', control.url, '--token', control.adminToken, '--json']);
const writeManifest = (m: Record<string, unknown>): Promise<void> =>
  writeFile(join(node.servicesDir, `${String(m.service_id)}.json`), JSON.stringify(m, null, 2));

await t.test('the node joins with its join token and keeps its credentials in its state file', async (tt) => {
  const connected = await waitFor(
    async () => {
      const doc = await controlDoc();
      return doc.state === 'connected' ? doc : undefined;
    },
    { what: 'NODE.json control.state connected', timeoutMs: 20_000 },
  );
  tt.equal(connected.url, control.url);
  tt.equal(connected.last_error, null);
  const saved = await credentials();
  tt.equal(saved.node_id, NODE_ID);
  tt.match(saved.node_secret, /^[A-Za-z0-9_-]{20,}$/);
  tt.equal((await stat(stateFile)).mode & 0o777, 0o600, 'the state file is private (0600)');
  const tokens = await listTokens(control.dataDir);
  tt.ok(
    tokens.tokens.some((e) => e.role === 'join' && typeof e.used_ms === 'number'),
    'the join token is spent',
  );
});

await t.test('acheron node list / get show the node and its services', async (tt) => {
  const doc = await catalogWhere((d) => service(d, 'echo') !== undefined, 'echo in the catalog');
  tt.equal(doc.state, 'online');
  const list = await admin(['node', 'list']);
  tt.equal(list.code, 0, list.stderr);
  const nodes = JSON.parse(list.stdout) as Array<{ node_id: string; state: string; service_count: number }>;
  tt.match(nodes, [{ node_id: NODE_ID, state: 'online', service_count: doc.services.length }]);
  const get = await admin(['node', 'get', NODE_ID]);
  tt.equal(get.code, 0, get.stderr);
  const got = JSON.parse(get.stdout) as NodeDoc;
  tt.same(got.services.map((s) => s.service_id).sort(), ['echo', 'fs'], 'the manifest service and the built-in fs provider');
  tt.match(service(got, 'echo'), {
    kind: 'test',
    version: '1',
    state: 'online',
    endpoints: [`/nodes/${NODE_ID}/services/echo`],
    runtime: { supervision_status: { enabled: true } },
  });
  tt.same(got.labels, { rack: 'r7' }, 'labels travel with the upsert');
  tt.match(got.platform, { os: 'linux', runtime_kind: 'node' });
  const user = await acheron(['node', 'list', '--control-url', control.url, '--token', control.userToken, '--json']);
  tt.equal(user.code, 1, 'a user without a project session may not list nodes');
  tt.match(user.stderr, /^acheron: forbidden: .*project session/);
});

await t.test('manifest edits on the node change the catalog on the server', async (tt) => {
  await writeManifest(manifest('cat', 'cat'));
  const added = await catalogWhere((d) => service(d, 'cat') !== undefined, 'an added manifest in the catalog');
  tt.equal(service(added, 'cat')?.kind, 'test');
  await writeManifest(manifest('echo', 'echo', { version: '2', capabilities: { edited: true } }));
  const edited = await catalogWhere((d) => service(d, 'echo')?.version === '2', 'the edited manifest in the catalog');
  tt.same(service(edited, 'echo')?.capabilities, { edited: true });
  await rm(join(node.servicesDir, 'cat.json'));
  const removed = await catalogWhere((d) => service(d, 'cat') === undefined, 'a removed manifest gone from the catalog');
  tt.same(removed.services.map((s) => s.service_id).sort(), ['echo', 'fs']);
});

await t.test('an invalid manifest edit: the catalog keeps the previous good version and says why, in an event; the fix clears it', async (tt) => {
  const before = await catalog();
  const eventSeq = async (): Promise<number> => metricValue(await scrape(control), 'acheron_event_seq') ?? 0;
  const seqBefore = await eventSeq();
  const echoFile = join(node.servicesDir, 'echo.json');
  await writeFile(echoFile, '{"service_id": "echo", "kind": ');
  const broken = await catalogWhere((d) => service(d, 'echo')?.runtime.supervision_status?.manifest_error !== undefined, 'the manifest problem in the catalog');
  const echo = service(broken, 'echo');
  tt.equal(echo?.version, service(before, 'echo')?.version, 'the previous good version stays');
  tt.match(echo?.runtime.supervision_status?.manifest_error, new RegExp(`^${echoFile}: .*invalid JSON`), 'naming the file and the problem');
  tt.ok((await eventSeq()) > seqBefore, 'a catalog event brought it');
  await writeManifest(manifest('echo', 'echo', { version: '2', capabilities: { edited: true } }));
  const fixed = await catalogWhere((d) => service(d, 'echo')?.runtime.supervision_status?.manifest_error === undefined, 'the problem gone from the catalog');
  tt.equal(service(fixed, 'echo')?.version, '2');
});

await t.test('control/disable shows as offline in the catalog; control/enable brings it back', async (tt) => {
  const controlDir = join(node.service('echo'), 'control');
  const disabled = await sh(`echo 1 > ${q(join(controlDir, 'disable'))}`);
  tt.equal(disabled.code, 0, disabled.stderr);
  const off = await catalogWhere((d) => service(d, 'echo')?.state === 'offline', 'echo offline in the catalog');
  tt.equal(service(off, 'echo')?.runtime.supervision_status?.enabled, false);
  tt.equal(off.state, 'online', 'the node itself stays online');
  const enabled = await sh(`echo 1 > ${q(join(controlDir, 'enable'))}`);
  tt.equal(enabled.code, 0, enabled.stderr);
  const on = await catalogWhere((d) => service(d, 'echo')?.runtime.supervision_status?.enabled === true, 'echo enabled again in the catalog');
  tt.not(service(on, 'echo')?.state, 'offline');
});

await t.test('kill -9 of the server: restarted on its data dir, the catalog is intact and the node reconnects by itself', async (tt) => {
  const before = await catalog();
  const { node_secret: secret } = await credentials();
  const killedMs = Date.now();
  await control.kill9();
  await waitFor(async () => (await controlDoc()).state !== 'connected', { what: 'the node to notice the server is gone' });
  control = await control.restart();
  const after = await catalog();
  tt.same(after.services, before.services, 'every service, exactly');
  tt.equal(after.updated_ms, before.updated_ms, 'the catalog was not rewritten');
  tt.equal(after.joined_at_ms, before.joined_at_ms);
  const reconnected = await waitFor(
    async () => {
      const doc = await controlDoc();
      return doc.state === 'connected' && (doc.connected_ms ?? 0) > killedMs ? doc : undefined;
    },
    { what: 'the node to reconnect', timeoutMs: 20_000 },
  );
  tt.ok(reconnected, 'the node reconnected without help');
  tt.equal((await credentials()).node_secret, secret, 'with the credentials it had (no new join)');
  const online = await catalogWhere((d) => d.state === 'online' && d.last_seen_ms > killedMs, 'the node seen after the restart');
  tt.same(online.services, before.services, 'its upsert after the reconnect changed nothing');
  // Unchanged, unless the node came back after the restarted server's grace (5 s here; a busy machine):
  // then it is when the server marked the node offline, before the reconnect, never the upsert's time.
  const connectedMs = reconnected.connected_ms ?? 0;
  tt.ok(
    online.updated_ms === before.updated_ms || online.updated_ms < connectedMs,
    `updated_ms ${online.updated_ms}: ${before.updated_ms} as before, or earlier than the reconnect at ${connectedMs}`,
  );
});

await t.test('a stopped node turns offline with its services kept; restarted, it is online again without a new join token', async (tt) => {
  const before = await catalogWhere((d) => d.state === 'online', 'the node online');
  const { node_secret: secret } = await credentials();
  process.kill(node.child.pid as number, 'SIGTERM');
  tt.same(await node.exited, { code: 0, signal: null }, 'the node exits 0 on SIGTERM');
  const offline = await catalogWhere((d) => d.state === 'offline', 'the node offline after the grace period');
  tt.same(offline.services.map((s) => s.service_id).sort(), before.services.map((s) => s.service_id).sort(), 'its services are kept');
  for (const s of offline.services) {
    tt.equal(s.state, 'offline', `${s.service_id}: state offline`);
    tt.ok(
      s.mounts.every((m) => m.state === 'offline'),
      `${s.service_id}: mounts offline`,
    );
  }
  const metrics = await (await fetch(`${control.httpUrl}/metrics`)).text();
  tt.match(metrics, /^acheron_nodes\{state="offline",server_id="[^"]+"\} 1$/m, 'metrics count it offline');

  node = await node.restart();
  await waitFor(async () => (await controlDoc()).state === 'connected', { what: 'the restarted node connected', timeoutMs: 20_000 });
  const back = await catalogWhere((d) => d.state === 'online', 'the node online again');
  tt.equal(service(back, 'echo')?.state, 'online', 'its services are online again');
  tt.equal((await credentials()).node_secret, secret, 'it reused its state file: same secret, no new join');
  const fleetLines = (await readFile(control.logFile, 'utf8'))
    .split('\n')
    .filter((line) => line.includes(`"node_id":"${NODE_ID}"`) && /"msg":"node \S+ (offline|online)"/.test(line))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  tt.same(fleetLines.slice(-2), [`node ${NODE_ID} offline`, `node ${NODE_ID} online`], 'the server logged it going and coming back');
});

await t.test('HTTP metrics see the node and its services', async (tt) => {
  await catalogWhere((d) => d.state === 'online', 'the node online');
  const text = await (await fetch(`${control.httpUrl}/metrics`)).text();
  tt.match(text, /^acheron_nodes\{state="online",server_id="[^"]+"\} 1$/m);
  tt.match(text, /^acheron_nodes\{state="offline",server_id="[^"]+"\} 0$/m);
  tt.match(text, /^acheron_services\{state="online",server_id="[^"]+"\} 2$/m);
  tt.match(text, /^acheron_connections\{role="node",server_id="[^"]+"\} 1$/m, 'one node tunnel');
  const json = (await (await fetch(`${control.httpUrl}/metrics.json`)).json()) as Record<string, Array<{ labels: Record<string, string>; value: number }>>;
  tt.equal(json.acheron_nodes?.find((v) => v.labels.state === 'online')?.value, 1, '/metrics.json parses and agrees');
});

await t.test('a server down longer than the grace: its node, whose backoff grew past it meanwhile, is not offline after the restart', async (tt) => {
  // The defaults scaled down: a 300 ms grace; the node's pause doubles from 1 s to 3 s (1.5-4.5 s jittered).
  let server = await startControl(tt, { args: ['--offline-grace-ms', '300'] });
  const tokenFile = join(await tempDir(tt), 'join-token');
  await writeFile(tokenFile, `${await joinToken(server.dataDir)}\n`, { mode: 0o600 });
  const backoff = ['--reconnect-backoff-ms', '1000', '--reconnect-backoff-max-ms', '3000'];
  const away = await startNode(tt, { nodeId: 'away', args: ['--control-url', server.url, '--join-token-file', tokenFile, ...backoff] });
  const nodeWhere = (check: (doc: NodeDoc) => boolean, what: string): Promise<NodeDoc> =>
    waitFor(
      async () => {
        const client = await ControlClient.connect({ url: server.url, token: server.adminToken, requestTimeoutMs: 5_000 });
        const doc = await client.request<NodeDoc>('control.node_get', { node_id: 'away' }).finally(() => client.terminate());
        return check(doc) ? doc : undefined;
      },
      { what, timeoutMs: 20_000, intervalMs: 150 },
    );
  const failedAttempts = async (): Promise<number> =>
    (await readFile(away.logFile, 'utf8')).split('\n').filter((line) => line.includes('control session: not connected')).length;
  const before = await nodeWhere((d) => d.state === 'online' && d.services.length > 0, 'the node online with its catalog');
  await server.stop();
  // Down for longer than the node's longest pause (4.5 s) less the grace: its pause is at 3 s by then.
  // Started again right after a failed attempt, so the next one comes 1.5-4.5 s later, past the grace;
  // 7 s down gives the restart's grace (over 7.3 s) a margin over that for a loaded machine (review).
  await sleep(7_000);
  const attempts = await failedAttempts();
  await waitFor(async () => (await failedAttempts()) > attempts, { what: "the node's next attempt", timeoutMs: 10_000, intervalMs: 20 });
  const restartedMs = Date.now();
  server = await server.restart();
  const reconnected = async (): Promise<boolean> => {
    const doc = (await readJson<{ control: NodeControlState }>(join(away.mount, 'NODE.json'))).control;
    return doc.state === 'connected' && (doc.connected_ms ?? 0) > restartedMs;
  };
  await waitFor(reconnected, { what: 'the node to reconnect by itself', timeoutMs: 20_000 });
  const after = await nodeWhere((d) => d.last_seen_ms > restartedMs, 'the node seen after the restart');
  tt.equal(after.state, 'online');
  tt.equal(after.updated_ms, before.updated_ms, 'never offline meanwhile (its offline and online events would have rewritten it)');
  const offline = (await readFile(server.logFile, 'utf8')).split('\n').filter((line) => line.includes('"msg":"node away offline"'));
  tt.same(offline, [], 'the server never marked it offline');
});
