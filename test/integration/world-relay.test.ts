// SPEC §9 WorldFS relay, the semantic operations: a real control server, a real node joined to it
// (through a TCP proxy that can cut its tunnel and slow its handshake), and a real `acheron world`
// mount read and written by child processes. A live document is one relayed read_file, an invoke
// one relayed invoke (plus stage chunks above 256 KiB), at most once; a service removed under its
// writer is ENOENT on both mounts (the rest of the commit rule, on both mounts, is the service-files
// conformance suite's: test/integration/suites/service-files.ts); the server's policy decision
// follows catalog changes; and no relayed wait is left without an answer, not even one sent while
// the node reconnects.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../src/protocol/control-client.js';
import { adminRequest, joinArgs, joinToken, metricValue, scrape, startControl, waitForService } from '../helpers/control.js';
import { manifest, startNode, tempDir, type Teardown } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';
import { settledWithin } from '../helpers/settle.js';

const NODE_ID = 'test-node';

/**
 * A TCP proxy in front of the control server, for the node: `cut()` drops the node's connections
 * (it reconnects), and `holdMs` holds back what a new connection sends after its upgrade request
 * (a node whose version handshake is slow), while the server already has the connection.
 */
async function startProxy(tt: Teardown, port: number): Promise<{ url: string; holdMs: number; cut(): void; nextUpgrade(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const upgraded: Array<() => void> = [];
  const proxy = {
    url: '',
    holdMs: 0,
    cut: () => sockets.forEach((s) => s.destroy()),
    nextUpgrade: () => new Promise<void>((resolve) => upgraded.push(resolve)),
  };
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    const releaseAt = Date.now() + proxy.holdMs;
    let upgradeSent = false;
    let held: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      const wait = releaseAt - Date.now();
      if (!upgradeSent || (wait <= 0 && !held)) {
        upgradeSent = true;
        upstream.write(chunk);
        return;
      }
      if (!held) {
        held = [];
        setTimeout(() => {
          for (const c of held ?? []) upstream.write(c);
          held = undefined;
        }, wait);
      }
      held.push(chunk);
    });
    let answered = false;
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      if (!answered) {
        answered = true;
        upgraded.shift()?.();
      }
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) s.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tt.teardown(() => {
    proxy.cut();
    server.close();
  });
  proxy.url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}

const control = await startControl(t);
const proxy = await startProxy(t, Number(new URL(control.url).port));
const dir = await tempDir(t);
const tokenFile = join(dir, 'join-token');
await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
const users = { permissions: { default: 'deny-by-default', allow_roles: ['admin', 'user'] } };
const node = await startNode(t, {
  manifests: [
    manifest('echo', 'echo', { ...users, schema: { input: { type: 'object', properties: { n: { type: 'integer' } } } } }),
    manifest('cat', 'cat', users),
    manifest('bytes', 'count-bytes', users),
    manifest('gone-node', 'echo', users),
    manifest('gone-world', 'echo', users),
    manifest('hang', 'hang', { ...users, runtime: { timeout_ms: 60_000 } }),
    manifest('perm', 'echo', users),
  ],
  args: joinArgs(proxy.url, tokenFile),
});

const admin = <T>(type: string, payload: Record<string, unknown> = {}): Promise<T> => adminRequest<T>(control, type, payload);
await waitForService(control, NODE_ID, 'perm');
const world = await startWorld(t, { url: control.url, token: control.adminToken });
const onWorld = (service: string): string => join(world.node(NODE_ID), 'services', service);

/** Reads a file from a child process (the mounts are never touched from this process). */
async function read(path: string): Promise<string> {
  const r = await sh(`cat ${q(path)}`);
  if (r.code !== 0) throw new Error(`cat ${path}: ${r.stderr.trim()}`);
  return r.stdout;
}
const readJson = async <T = Record<string, unknown>>(path: string): Promise<T> => JSON.parse(await read(path)) as T;
const invokes = async (service: string): Promise<number> =>
  (await readJson<{ invokes_total: number }>(join(node.service(service), 'metrics.json'))).invokes_total;

/** Relayed operations the server counted so far, by op. */
async function relayOps(): Promise<Record<string, number>> {
  const metrics = await admin<Record<string, Array<{ labels: { op: string }; value: number }>>>('control.metrics');
  const byOp: Record<string, number> = {};
  for (const { labels, value } of metrics.acheron_relay_operations_total ?? []) byOp[labels.op] = (byOp[labels.op] ?? 0) + value;
  return byOp;
}

/** What running `command` relayed, by op (nothing else relays meanwhile: the tests run one at a time). */
async function relayedBy(command: string): Promise<{ ops: Record<string, number>; code: number | null; stderr: string }> {
  const before = await relayOps();
  const r = await sh(command, { timeoutMs: 120_000 });
  const after = await relayOps();
  const ops = Object.fromEntries(
    Object.entries(after)
      .map(([op, n]) => [op, n - (before[op] ?? 0)])
      .filter(([, n]) => n !== 0),
  );
  return { ops, code: r.code, stderr: r.stderr };
}

// One write (or O_RDWR transaction) on an invoke.json, reporting the errno of the step that failed.
const WRITER = join(dir, 'writer.py');
await writeFile(
  WRITER,
  `
import errno, json, os, sys, time
path, payload_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]
wait_gone = sys.argv[4] if len(sys.argv) > 4 else None
payload = open(payload_file, 'rb').read()
step = 'open'
try:
    fd = os.open(path, os.O_RDWR if mode == 'rdwr' else os.O_WRONLY | os.O_TRUNC)
    step = 'write'
    if wait_gone:
        os.write(fd, payload[:1])
        while os.path.exists(wait_gone):
            time.sleep(0.05)
        payload = payload[1:]
    os.write(fd, payload)
    out = b''
    if mode == 'rdwr':
        step = 'read'
        while True:
            chunk = os.read(fd, 100000)
            if not chunk:
                break
            out += chunk
    step = 'close'
    os.close(fd)
    print(json.dumps({"errno": None, "out_md5": __import__('hashlib').md5(out).hexdigest(), "out": out[:2000].decode(errors='replace')}))
except OSError as e:
    print(json.dumps({"errno": errno.errorcode[e.errno], "step": step}))
`,
);
interface Written {
  errno: string | null;
  step?: string;
  out?: string;
  out_md5?: string;
}
let payloads = 0;
async function write(serviceDir: string, payload: string | Buffer, mode: 'w' | 'rdwr' = 'w', waitGone?: string): Promise<Written> {
  const file = join(dir, `payload-${payloads++}`);
  await writeFile(file, payload);
  const r = await sh(`python3 ${q(WRITER)} ${q(join(serviceDir, 'control', 'invoke.json'))} ${q(file)} ${mode}${waitGone ? ` ${q(waitGone)}` : ''}`, {
    timeoutMs: 120_000,
  });
  await rm(file);
  if (r.code !== 0) throw new Error(`writer.py: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Written;
}
const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

await t.test('cat status.json through WorldFS is one relayed read_file, with the bytes and size the node has', async (tt) => {
  // The open reuses the lookup's snapshot within OPEN_REUSE_MS: a daemon held off the CPU that long
  // (a loaded CI machine) fetches again, so the cat is tried up to three times.
  let ops: Record<string, number> = {};
  for (let attempt = 0; attempt < 3 && ops.read_file !== 1; attempt++) {
    const cat = await relayedBy(`cat ${q(join(onWorld('echo'), 'status.json'))} > /dev/null`);
    tt.equal(cat.code, 0);
    ops = cat.ops;
  }
  tt.same(ops, { read_file: 1 }, 'stat, open, fstat and reads: one round trip');
  const stat = await relayedBy(`stat -c %s ${q(join(onWorld('echo'), 'health.json'))}`);
  tt.same(stat.ops, { read_file: 1 }, 'a stat alone (lookup, then getattr): one round trip too');
  const sized = await sh(`f=${q(join(onWorld('echo'), 'result.json'))}; [ "$(stat -c %s "$f")" = "$(wc -c < "$f")" ] && echo same`);
  tt.equal(sized.stdout.trim(), 'same', 'the size stat shows is what cat reads');
  tt.equal(await read(join(onWorld('echo'), 'last_error.txt')), await read(join(node.service('echo'), 'last_error.txt')), "the node's bytes");
  tt.same(await readJson(join(onWorld('echo'), 'config.json')), await readJson(join(node.service('echo'), 'config.json')), 'config.json reads the same too');
});

await t.test("cat after an earlier ls -l shows the node's bytes as they are now, not what the ls fetched", async (tt) => {
  for (const n of [1, 2]) {
    const marker = `after-ls-${n}`;
    // The stat of an earlier command (a new snapshot: the last one is older than DOCUMENT_REUSE_MS), a
    // change made on the node's own mount, then cat through WorldFS.
    const r = await sh(
      `sleep 1.1 && ls -l ${q(onWorld('echo'))} > /dev/null && sleep 0.2 && /bin/echo '{"marker":"${marker}"}' > ${q(join(node.service('echo'), 'control', 'invoke.json'))}`,
    );
    tt.equal(r.code, 0, r.stderr);
    tt.match(await read(join(onWorld('echo'), 'result.json')), marker, `round ${n}: the result the node has now`);
  }
});

await t.test('a catalog-only service (no executable) has its metadata in WorldFS and no live files', async (tt) => {
  const file = join(node.servicesDir, 'catonly.json');
  await writeFile(file, JSON.stringify({ service_id: 'catonly', kind: 'meta', ...users }));
  tt.teardown(() => rm(file, { force: true }));
  const serviceDir = onWorld('catonly');
  await waitFor(async () => (await sh(`test -d ${q(serviceDir)}`)).code === 0, { what: 'catonly in WorldFS', timeoutMs: 30_000 });
  const listed = await sh(`ls ${q(serviceDir)}`);
  tt.equal(listed.code, 0, `ls lists it without errors (${listed.stderr.trim()})`);
  tt.same(listed.stdout.trim().split('\n'), [
    'CAPS.json',
    'MOUNTS.json',
    'OPS.json',
    'PERMISSIONS.json',
    'README.md',
    'RUNTIME.json',
    'SCHEMA.json',
    'STATUS.json',
  ]);
  const invoke = await sh(`/bin/echo '{}' > ${q(join(serviceDir, 'control', 'invoke.json'))}`);
  tt.match(invoke.stderr, /No such file or directory/, 'nothing to invoke: ENOENT at the open, not an invoke that seems to work');
  const find = await sh(`find ${q(serviceDir)} -type f -exec cat {} + > /dev/null`);
  tt.equal(find.code, 0, `every file listed can be read (${find.stderr.trim()})`);
});

await t.test('echo > invoke.json through WorldFS is one relayed invoke, and runs once', async (tt) => {
  const before = await invokes('echo');
  const { ops, code, stderr } = await relayedBy(`echo '{"n":1}' > ${q(join(onWorld('echo'), 'control', 'invoke.json'))}`);
  tt.equal(code, 0, stderr.trim());
  tt.same(ops, { invoke: 1 }, 'lookup, open, flushes, write, release: one round trip');
  tt.equal(await invokes('echo'), before + 1, 'one invocation on the node');
  const file = join(dir, 'after-invoke.json');
  // The answer's result.json serves an open within OPEN_REUSE_MS (50 ms) of it: a `cat` that a loaded
  // host starts later reads afresh, as it should. One of three tries must show the reuse.
  let then = { ops: {} as Record<string, number> };
  for (let attempt = 1; attempt <= 3 && JSON.stringify(then.ops) !== JSON.stringify({ invoke: 1 }); attempt++)
    then = await relayedBy(
      `echo '{"n":2}' > ${q(join(onWorld('echo'), 'control', 'invoke.json'))} && cat ${q(join(onWorld('echo'), 'result.json'))} > ${q(file)}`,
    );
  tt.same(then.ops, { invoke: 1 }, "echo > invoke.json; cat result.json: the invoke's answer brought result.json along");
  tt.match(JSON.parse(await read(file)), { echo: { n: 2 } }, 'and it shows this invocation');
  tt.same(await readJson(join(onWorld('echo'), 'result.json')), await readJson(join(node.service('echo'), 'result.json')), "the node's bytes");
});

await t.test('payloads above one 256 KiB chunk, up to several MiB, travel staged and commit once', async (tt) => {
  for (const size of [300 * 1024, 5 << 20]) {
    const body = JSON.stringify({ fill: 'x'.repeat(size) });
    const file = join(dir, `big-${size}.json`);
    await writeFile(file, body);
    const before = await invokes('bytes');
    const { ops, code, stderr } = await relayedBy(`cat ${q(file)} > ${q(join(onWorld('bytes'), 'control', 'invoke.json'))}`);
    tt.equal(code, 0, stderr.trim());
    tt.same(ops, { stage: Math.ceil(body.length / (256 * 1024)) - 1, invoke: 1 }, `${body.length} bytes: the chunks staged, one invoke`);
    tt.equal(await invokes('bytes'), before + 1, `${body.length} bytes: one invocation`);
    tt.same(await readJson(join(onWorld('bytes'), 'result.json')), { bytes: body.length, md5: md5(body) }, `${body.length} bytes: exactly these bytes`);
    await rm(file);
  }
  // An O_RDWR transaction whose outcome (the cat driver's result: the payload) is longer than a chunk too.
  const body = JSON.stringify({ fill: 'y'.repeat(700 * 1024) });
  const done = await write(onWorld('cat'), body, 'rdwr');
  tt.equal(done.errno, null);
  tt.equal(done.out_md5, md5(body), 'the whole outcome comes back on the same descriptor');
  tt.equal(md5(await read(join(onWorld('cat'), 'result.json'))), md5(body), 'and a result.json longer than a chunk reads whole');
});

await t.test('at most once: a repeated request id answers the first outcome and the driver ran once', async (tt) => {
  const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 30_000 });
  tt.teardown(() => client.terminate());
  const data = Buffer.from('{"n":42}').toString('base64');
  const before = await invokes('echo');
  const operation = { node_id: NODE_ID, request_id: 'once-1', op: 'invoke', path: '/services/echo/control/invoke.json', data, size: 8, outcome: true };
  const [first, second] = await Promise.all([client.request('control.relay', operation), client.request('control.relay', operation)]);
  const third = await client.request('control.relay', operation);
  tt.match(first, { ok: true, result: { data: String } });
  tt.same(second, first, 'sent while the first ran: the same outcome');
  tt.same(third, first, 'sent after: the same outcome');
  tt.match(JSON.parse(Buffer.from(String((first as { result: { data: string } }).result.data), 'base64').toString()), { echo: { n: 42 } });
  tt.equal(await invokes('echo'), before + 1, 'the driver ran once');
});

await t.test("a write WorldFS refuses (a hole) is in the node's last_error.txt by the time its errno is back", async (tt) => {
  // The writer reads last_error.txt with the refused open still open: the record must not lag behind.
  const r = await sh(
    `python3 -c ${q(`import os, sys
for offset in range(11, 16):
    fd = os.open(sys.argv[1] + "/control/invoke.json", os.O_WRONLY)
    try:
        os.pwrite(fd, b"{}", offset)
    except OSError as e:
        print(e.errno, "offset %d " % offset in open(sys.argv[1] + "/last_error.txt").read())
    try:
        os.close(fd)  # a refused open fails its close too
    except OSError:
        pass`)} ${q(onWorld('echo'))}`,
  );
  tt.equal(r.stdout, '22 True\n'.repeat(5), `EINVAL, and last_error.txt names that write's offset each time (${r.stderr.trim()})`);
});

await t.test("the service removed while its writer has it open: ENOENT, on the node's mount and through WorldFS", async (tt) => {
  for (const [which, service, serviceDir] of [
    ['node', 'gone-node', node.service('gone-node')],
    ['WorldFS', 'gone-world', onWorld('gone-world')],
  ] as const) {
    const writer = write(serviceDir, '{"n":1}', 'w', node.service(service));
    await waitFor(async () => (await sh(`pgrep -f ${q(`writer.py ${join(serviceDir, 'control', 'invoke.json')}`)}`)).code === 0, { what: 'the writer' });
    await rm(join(node.servicesDir, `${service}.json`));
    // The node finds it at the commit, WorldFS maybe at the write already (its catalog may know first).
    tt.equal((await writer).errno, 'ENOENT', `${which}: ENOENT`);
  }
});

await t.test('a wait the node does not answer is bounded: the server answers ETIMEDOUT, and observes its latency', async (tt) => {
  const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 60_000 });
  tt.teardown(() => client.terminate());
  const data = Buffer.from('{}').toString('base64');
  const timedOut = async (part: 'count' | 'sum'): Promise<number> =>
    metricValue(await scrape(control), `acheron_relay_latency_seconds_${part}`, 'op="invoke",outcome="ETIMEDOUT"') ?? 0;
  const [count, sum] = [await timedOut('count'), await timedOut('sum')];
  const outcome = await client.request('control.relay', {
    node_id: NODE_ID,
    request_id: 'hang-1',
    op: 'invoke',
    path: '/services/hang/control/invoke.json',
    data,
    timeout_ms: 1500,
  });
  tt.match(outcome, { ok: false, errno: 'ETIMEDOUT', message: /did not answer invoke .* within 1500 ms/ });
  tt.equal(await timedOut('count'), count + 1, 'acheron_relay_latency_seconds{op="invoke",outcome="ETIMEDOUT"} observed it');
  // A timer's 1.5 s count from libuv's loop clock, which can lag the performance.now() the latency
  // is measured from (a CI run failed a bound of exactly 1.5 s): what is checked is that the wait shows.
  tt.ok((await timedOut('sum')) - sum >= 1.45, 'with the 1.5 s it waited');
  await sh(`echo 1 > ${q(join(node.service('hang'), 'control', 'cancel'))}`);
});

await t.test('the policy decision cached for a session follows a permissions change in the catalog', async (tt) => {
  const project = 'relay-p';
  await admin('control.project_upsert', {
    project_id: project,
    mounts: [{ mount_path: '/p', node_id: NODE_ID, export_name: 'main' }],
    access_policy: { actions: { read: 'open', observe: 'open', invoke: 'open' } },
  });
  const client = await ControlClient.connect({ url: control.url, token: control.userToken, requestTimeoutMs: 30_000 });
  tt.teardown(() => client.terminate());
  await client.request('control.session_attach', { project_id: project });
  let n = 0;
  const status = (): Promise<{ ok: boolean; errno?: string }> =>
    client.request('control.relay', { node_id: NODE_ID, request_id: `perm-${n++}`, op: 'read_file', path: '/services/perm/status.json' });
  tt.match(await status(), { ok: true }, 'admitted: allow_roles has user');
  tt.match(await status(), { ok: true }, 'again, from the cached decision');
  await writeFile(
    join(node.servicesDir, 'perm.json'),
    JSON.stringify(manifest('perm', 'echo', { permissions: { default: 'deny-by-default', allow_roles: ['admin'] } })),
  );
  await waitFor(
    async () => {
      const doc = await admin<{ services: Array<{ service_id: string; permissions: { allow_roles?: string[] } }> }>('control.node_get', { node_id: NODE_ID });
      return doc.services.find((s) => s.service_id === 'perm')?.permissions.allow_roles?.includes('user') === false;
    },
    { what: 'the new permissions in the catalog', timeoutMs: 30_000 },
  );
  tt.match(await status(), { ok: false, errno: 'ENOENT' }, 'the same session: hidden now');
});

await t.test('a relay sent while the node reconnects gets an answer at once, and the next ones work', async (tt: Test) => {
  const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 120_000 });
  tt.teardown(() => client.terminate());
  let n = 0;
  const status = (): Promise<{ ok: boolean; errno?: string }> =>
    client.request('control.relay', { node_id: NODE_ID, request_id: `race-${n++}`, op: 'read_file', path: '/services/echo/status.json' });
  tt.match(await status(), { ok: true }, 'before');
  // The next connection's version handshake reaches the server 3 s late: the server has the connection, the node is not ready.
  proxy.holdMs = 3000;
  const upgraded = proxy.nextUpgrade();
  proxy.cut();
  await upgraded;
  proxy.holdMs = 0;
  const answer = await settledWithin(status(), 20_000, 'none' as const);
  tt.not(answer, 'none', 'answered, not lost on a connection that could not serve it');
  tt.match(answer, { ok: false, errno: 'EHOSTUNREACH' }, 'the node has no tunnel ready yet: EHOSTUNREACH at once');
  const later = await waitFor(
    async () => {
      const r = await status();
      return r.ok ? r : undefined;
    },
    { what: 'relays through the new tunnel', timeoutMs: 30_000, intervalMs: 200 },
  );
  tt.match(later, { ok: true }, 'once the node is ready, relays reach it');
  const viaMount = await sh(`echo '{"n":3}' > ${q(join(onWorld('echo'), 'control', 'invoke.json'))} && cat ${q(join(onWorld('echo'), 'result.json'))}`);
  tt.equal(viaMount.code, 0, viaMount.stderr.trim());
  tt.match(JSON.parse(viaMount.stdout), { echo: { n: 3 } }, 'and the mount works through it');
});
