// SPEC §9 WorldFS, catalog part: a real control server, a real node joined to it, and real
// `acheron world` mounts read by child processes. The tree shows each node and the metadata of each
// service the mount's token may see (SPEC §8 filtering for user sessions), follows catalog changes,
// answers ENOTCONN while the server is away and recovers when it is back. On the store this file's
// servers use: files (world.test.ts) or etcd (world-etcd.test.ts).
import type { Test } from 'tap';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { acheron, adminRequest, joinArgs, joinToken, sameOnEveryStore, startControl, waitForService, type RunningControl } from '../../helpers/control.js';
import { ACHERON, isMounted, manifest, readJson, readText, startNode, tempDir } from '../../helpers/node.js';
import { alive, daemonsUsing, killDaemonsUsing, q, sh, waitFor } from '../../helpers/process.js';
import { startWorld } from '../../helpers/world.js';
import { checkCreatingOpens } from '../../helpers/creating-open.js';
import { checkStatfs } from '../../helpers/statfs.js';
import { checkBlocks } from '../../helpers/blocks.js';
import { checkLinks } from '../../helpers/links.js';
import { checkChown } from '../../helpers/ownership.js';
export async function worldSuite(t: Test): Promise<void> {
  const NODE_ID = 'test-node';
  let control: RunningControl = await startControl(t, { args: ['--offline-grace-ms', '1000'] });
  const dir = await tempDir(t);
  const exported = join(dir, 'exported');
  await mkdir(exported);
  await writeFile(join(exported, 'hello.txt'), 'hello from the node\n');
  const tokenFile = join(dir, 'join-token');
  await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
  const permissions = (p: Record<string, unknown>): Record<string, unknown> => ({ permissions: { default: 'deny-by-default', ...p } });
  const node = await startNode(t, {
    manifests: [
      manifest('echo', 'echo', {
        ...permissions({ allow_roles: ['admin', 'user'] }),
        schema: { input: { type: 'object' }, example: { msg: 'hi' } },
        help_md: '# echo\n\nsays it back\n',
      }),
      manifest('secret', 'echo', permissions({ allow_roles: ['admin'] })),
      manifest('tokened', 'echo', permissions({ allow_roles: ['user'], require_project_token: true })),
    ],
    args: [...joinArgs(control.url, tokenFile), '--label', 'rack=r7', '--export', `data=${exported}:rw`],
  });

  const admin = <T>(type: string, payload: Record<string, unknown> = {}): Promise<T> => adminRequest<T>(control, type, payload);

  // The node's services are in the catalog before any world mounts.
  await waitForService(control, NODE_ID, 'tokened');

  const world = await startWorld(t, { url: control.url, token: control.adminToken });
  const ls = async (path: string): Promise<string[]> => {
    const r = await sh(`ls -1 ${q(path)}`);
    if (r.code !== 0) throw new Error(`ls ${path}: ${r.stderr.trim()}`);
    return r.stdout.split('\n').filter(Boolean);
  };
  const services = (w: { node(id: string): string }): string => join(w.node(NODE_ID), 'services');

  await t.test("an admin mount shows the node, its status and every service's catalog metadata", async (tt) => {
    tt.same(await ls(join(world.mount, 'nodes')), [NODE_ID]);
    tt.same(await ls(world.node(NODE_ID)), ['CAPS.json', 'NODE.json', 'README.md', 'STATUS.json', 'fs', 'services']);
    const nodeDoc = await readJson<{ node_id: string; labels: Record<string, string> }>(join(world.node(NODE_ID), 'NODE.json'));
    tt.equal(nodeDoc.node_id, NODE_ID);
    tt.same(nodeDoc.labels, { rack: 'r7' });
    const status = await readJson<{ state: string; lease_expires_at_ms: number }>(join(world.node(NODE_ID), 'STATUS.json'));
    tt.equal(status.state, 'online');
    tt.ok(status.lease_expires_at_ms > Date.now() - 60_000, `a real lease time (${status.lease_expires_at_ms})`);
    const listed = await readJson<Array<{ service_id: string; version: string; state: string }>>(join(services(world), 'SERVICES.json'));
    tt.same(
      listed.map((s) => s.service_id),
      ['echo', 'fs', 'secret', 'tokened'],
      'SERVICES.json lists all of them, sorted',
    );
    tt.same(await ls(services(world)), ['SERVICES.json', 'echo', 'fs', 'secret', 'tokened']);
    const echo = join(services(world), 'echo');
    tt.same(
      await ls(echo),
      [
        'CAPS.json',
        'MOUNTS.json',
        'OPS.json',
        'PERMISSIONS.json',
        'README.md',
        'RUNTIME.json',
        'SCHEMA.json',
        'STATUS.json',
        'config.json',
        'control',
        'health.json',
        'jobs',
        'last_error.txt',
        'metrics.json',
        'result.json',
        'status.json',
      ],
      'catalog metadata (upper case) and the live files (relayed)',
    );
    tt.same(
      await ls(join(services(world), 'fs')),
      ['CAPS.json', 'MOUNTS.json', 'OPS.json', 'PERMISSIONS.json', 'README.md', 'RUNTIME.json', 'SCHEMA.json', 'STATUS.json'],
      'fs has metadata only: its files are nodes/<id>/fs/',
    );
    tt.same(await readJson(join(echo, 'SCHEMA.json')), { input: { type: 'object' }, example: { msg: 'hi' } }, 'SCHEMA.json is the manifest schema');
    tt.equal(await readText(join(echo, 'README.md')), '# echo\n\nsays it back\n', 'README.md is help_md');
    tt.match(await readJson(join(echo, 'RUNTIME.json')), { type: 'native_proc' });
    tt.match(await readJson(join(echo, 'PERMISSIONS.json')), { allow_roles: ['admin', 'user'] });
    tt.match(await readJson(join(echo, 'STATUS.json')), { service_id: 'echo', state: 'online' });
    const caps = await readJson<{ services: number; kinds: string[] }>(join(world.node(NODE_ID), 'CAPS.json'));
    tt.equal(caps.services, 4);
    const readme = await readText(join(world.node(NODE_ID), 'README.md'));
    tt.match(readme, /`echo` \(test/);
    // Every name the README gives is there in a service directory (it named only the catalog files).
    const named = [...readme.matchAll(/`([a-z_/]+\.(?:json|txt))`|`(control\/[a-z]+|jobs)`/g)].map((m) => m[1] ?? m[2]);
    tt.ok(named.includes('control/invoke.json') && named.includes('result.json') && named.includes('jobs'), `the live files named: ${named.join(' ')}`);
    for (const name of named) tt.equal((await sh(`test -e ${q(join(echo, name as string))}`)).code, 0, `${name} is in services/echo/`);
  });

  await t.test('the tree is read-only and unknown names are ENOENT', async (tt) => {
    const write = await sh(`echo x > ${q(join(world.node(NODE_ID), 'NODE.json'))}`);
    tt.not(write.code, 0);
    tt.match(write.stderr, /Permission denied/);
    const mkdir = await sh(`mkdir ${q(join(world.mount, 'nodes', 'new'))}`);
    tt.not(mkdir.code, 0);
    const missing = await sh(`cat ${q(join(world.mount, 'nodes', 'no-such-node', 'NODE.json'))}`);
    tt.match(missing.stderr, /No such file or directory/);
  });

  /** What the node's own mount says, to compare with what WorldFS relays. */
  const onNode = (service: string, name: string): Promise<Record<string, unknown>> => readJson(join(node.service(service), name));

  await t.test('relay: an invoke through WorldFS runs once on the node and its files show the outcome', async (tt) => {
    const invoke = join(services(world), 'echo', 'control', 'invoke.json');
    const before = Number((await onNode('echo', 'metrics.json')).invokes_total);
    const r = await sh(`/bin/echo '{"msg":"through the world"}' > ${q(invoke)}`);
    tt.equal(r.code, 0, r.stderr.trim());
    tt.equal(Number((await onNode('echo', 'metrics.json')).invokes_total), before + 1, 'exactly one invocation on the node');
    const result = await readJson<{ echo: unknown }>(join(services(world), 'echo', 'result.json'));
    tt.same(result.echo, { msg: 'through the world' }, 'result.json through WorldFS');
    tt.same(await readJson(join(services(world), 'echo', 'result.json')), await onNode('echo', 'result.json'), 'the same bytes as on the node');
    tt.match(await readJson(join(services(world), 'echo', 'status.json')), { state: 'ok' });
    const jobs = await ls(join(services(world), 'echo', 'jobs'));
    tt.ok(jobs.length >= 1, `jobs/ is listed (${jobs.length})`);
    tt.match(await readText(join(services(world), 'echo', 'jobs', jobs.at(-1) as string, 'request.json')), /through the world/);
    const cli = await acheron(['invoke', 'echo', '{"via":"acheron invoke --node"}', '--mount', world.mount, '--node', NODE_ID]);
    tt.equal(cli.code, 0, `acheron invoke --node through WorldFS (${cli.stderr.trim()})`);
    tt.match(JSON.parse(cli.stdout), { echo: { via: 'acheron invoke --node' } });
  });

  await t.test("relay: fs/ exports read and write the node's directory", async (tt) => {
    const fs = join(world.node(NODE_ID), 'fs');
    tt.same(await ls(fs), ['data']);
    tt.equal(await readText(join(fs, 'data', 'hello.txt')), 'hello from the node\n');
    const big = await sh(
      `head -c 700000 /dev/urandom > ${q(join(dir, 'big.bin'))} && cp ${q(join(dir, 'big.bin'))} ${q(join(fs, 'data', 'big.bin'))} && cmp ${q(join(dir, 'big.bin'))} ${q(join(fs, 'data', 'big.bin'))}`,
      { timeoutMs: 60_000 },
    );
    tt.equal(big.code, 0, `700 kB copied in and read back identical (${big.stderr.trim()})`);
    tt.ok((await readFile(join(exported, 'big.bin'))).equals(await readFile(join(dir, 'big.bin'))), "the bytes are on the node's disk");
    const edit = await sh(
      `mkdir ${q(join(fs, 'data', 'sub'))} && mv ${q(join(fs, 'data', 'big.bin'))} ${q(join(fs, 'data', 'sub', 'moved.bin'))} && rm ${q(join(fs, 'data', 'sub', 'moved.bin'))} && rmdir ${q(join(fs, 'data', 'sub'))}`,
    );
    tt.equal(edit.code, 0, `mkdir, mv, rm, rmdir (${edit.stderr.trim()})`);
    const missing = await sh(`cat ${q(join(fs, 'data', 'nope.txt'))}`);
    tt.match(missing.stderr, /No such file or directory/);
  });

  await t.test('relay: the open that creates a file keeps its own flags (O_APPEND, O_EXCL) and may write a read-only mode', (tt) =>
    checkCreatingOpens(tt, join(world.node(NODE_ID), 'fs', 'data'), exported),
  );

  await t.test("relay: statfs of an export is the node directory's file system (df), of the synthetic tree zeros", (tt) =>
    checkStatfs(tt, join(world.node(NODE_ID), 'fs', 'data'), exported, join(world.node(NODE_ID), 'services')),
  );

  await t.test('relay: st_blocks of an export file holds its size (du, tar -S copy its bytes), of a synthetic file what its size needs', (tt) =>
    checkBlocks(tt, join(world.node(NODE_ID), 'fs', 'data'), exported, join(world.node(NODE_ID), 'NODE.json')),
  );

  await t.test('relay: symlinks are shown as links (readlink relayed), so rm -r removes the link, not what it leads to; ln -s is made on the node', (tt) =>
    checkLinks(tt, join(world.node(NODE_ID), 'fs', 'data'), exported),
  );

  await t.test('relay: chown to the owner shown succeeds in an export (tar x as root), any other is EPERM, synthetic files keep theirs', (tt) =>
    checkChown(tt, join(world.node(NODE_ID), 'fs', 'data'), exported, join(world.node(NODE_ID), 'NODE.json')),
  );

  await t.test("relay: chmod of an export's file is the node's, so sed -i, mv and cp -p keep modes", async (tt) => {
    const data = join(world.node(NODE_ID), 'fs', 'data');
    await writeFile(join(exported, 'modes.txt'), 'a\nb\n', { mode: 0o644 });
    const chmod = await sh(`chmod 600 ${q(join(data, 'modes.txt'))}`);
    tt.equal(chmod.code, 0, `chmod relayed (${chmod.stderr.trim()})`);
    tt.equal((await stat(join(exported, 'modes.txt'))).mode & 0o777, 0o600, "the mode changed on the node's disk");
    await sh(`chmod 644 ${q(join(data, 'modes.txt'))}`);
    const sed = await sh(`sed -i s/b/B/ ${q(join(data, 'modes.txt'))}`);
    tt.equal(sed.code, 0, `sed -i (${sed.stderr.trim()})`);
    tt.equal(sed.stderr, '', 'no "preserving permissions" complaint');
    tt.equal((await stat(join(exported, 'modes.txt'))).mode & 0o777, 0o644, 'sed -i kept the mode (it once became 0600)');
    tt.equal(await readFile(join(exported, 'modes.txt'), 'utf8'), 'a\nB\n');
    await writeFile(join(dir, 'script.sh'), 'echo hi\n', { mode: 0o755 });
    const copy = await sh(`cp -p ${q(join(dir, 'script.sh'))} ${q(join(data, 'script.sh'))}`);
    tt.equal(copy.code, 0, `cp -p (${copy.stderr.trim()})`);
    tt.equal((await stat(join(exported, 'script.sh'))).mode & 0o777, 0o755, 'cp -p kept the mode');
    const synthetic = await sh(`chmod 600 ${q(join(services(world), 'echo', 'result.json'))}`);
    tt.not(synthetic.code, 0, 'a live service file keeps its mode, as on the node');
    tt.match(synthetic.stderr, /Operation not permitted/);
    await rm(join(exported, 'modes.txt'));
    await rm(join(exported, 'script.sh'));
  });

  await t.test('--subtree nodes: the mount root is nodes/, so <mount>/*/services works literally', async (tt) => {
    const sub = await startWorld(tt, { url: control.url, token: control.adminToken, subtree: true });
    const r = await sh(`ls -1 ${q(sub.mount)}/*/services`);
    tt.equal(r.code, 0, r.stderr.trim());
    tt.same(r.stdout.split('\n').filter(Boolean), ['SERVICES.json', 'echo', 'fs', 'secret', 'tokened']);
  });

  await t.test('catalog changes reach the mount: a service added on the node appears, a changed one changes, a removed one goes', async (tt) => {
    const reads = async (): Promise<number> =>
      (await readFile(world.logFile, 'utf8')).split('\n').filter((line) => line.includes('catalog read; following events')).length;
    const readsBefore = await reads();
    await writeFile(join(node.servicesDir, 'added.json'), JSON.stringify(manifest('added', 'echo')));
    await waitFor(async () => (await ls(services(world))).includes('added'), { what: 'added in the world mount', timeoutMs: 15_000, intervalMs: 100 });
    tt.match(await readJson(join(services(world), 'added', 'STATUS.json')), { service_id: 'added', version: '1' });
    await writeFile(join(node.servicesDir, 'added.json'), JSON.stringify({ ...manifest('added', 'echo'), version: '2', capabilities: { grown: true } }));
    await waitFor(async () => (await readJson<{ version: string }>(join(services(world), 'added', 'STATUS.json'))).version === '2', {
      what: 'added at version 2 in the world mount',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    tt.same(await readJson(join(services(world), 'added', 'CAPS.json')), { grown: true }, 'the whole new descriptor, from its delta event');
    tt.match(
      await readJson(join(services(world), 'echo', 'STATUS.json')),
      { service_id: 'echo', version: '1' },
      'the services the delta did not name are kept',
    );
    tt.equal(await reads(), readsBefore, 'no full read of the catalog');
    tt.match(
      await readFile(world.logFile, 'utf8'),
      /"kind":"upsert","changed":1,"removed":0,"msg":"delta event applied"/,
      'the change came as a delta event, applied to what the mount had',
    );
    await rm(join(node.servicesDir, 'added.json'));
    await waitFor(async () => !(await ls(services(world))).includes('added'), { what: 'added gone from the world mount', timeoutMs: 15_000, intervalMs: 100 });
    const gone = await sh(`cat ${q(join(services(world), 'added', 'STATUS.json'))}`);
    tt.match(gone.stderr, /No such file or directory/, 'a removed service is ENOENT');
  });

  await t.test('a user session sees only what its project allows (SPEC §8)', async (tt) => {
    const project = 'world-p';
    // Catalog reads and watches are open; invoke (hence seeing a service) needs the project token.
    await admin('control.project_upsert', {
      project_id: project,
      mounts: [{ mount_path: '/p', node_id: NODE_ID, export_name: 'main' }],
      access_policy: { actions: { read: 'open', observe: 'open' } },
    });
    const { token: projectToken } = await admin<{ token: string }>('control.project_token_rotate', { project_id: project });
    const projectTokenFile = join(dir, 'project-token');
    await writeFile(projectTokenFile, `${projectToken}\n`, { mode: 0o600 });

    const withoutToken = await startWorld(tt, { url: control.url, token: control.userToken, args: ['--project', project] });
    // Without the project token, `invoke` (token mode: the project has a token) is refused: nothing is visible.
    tt.same(await ls(services(withoutToken)), ['SERVICES.json'], 'no service without the project token');
    tt.same(await readJson(join(services(withoutToken), 'SERVICES.json')), []);

    const withToken = await startWorld(tt, {
      url: control.url,
      token: control.userToken,
      args: ['--project', project, '--project-token-file', projectTokenFile],
    });
    // fs (the built-in exports service) admits users too; secret (admins only) stays hidden.
    tt.same(await ls(services(withToken)), ['SERVICES.json', 'echo', 'fs', 'tokened'], 'user-visible services only: allow_roles user, and the token-only one');
    const hidden = await sh(`cat ${q(join(services(withToken), 'secret', 'README.md'))}`);
    tt.match(hidden.stderr, /No such file or directory/, 'a hidden service is ENOENT on direct access');
    const caps = await readJson<{ services: number }>(join(withToken.node(NODE_ID), 'CAPS.json'));
    tt.equal(caps.services, 3, 'CAPS.json counts only visible services');
    const invoked = await sh(`/bin/echo '{"from":"a user"}' > ${q(join(services(withToken), 'echo', 'control', 'invoke.json'))}`);
    tt.equal(invoked.code, 0, `a user with invoke allowed invokes through WorldFS (${invoked.stderr.trim()})`);
    tt.match(await readJson(join(services(withToken), 'echo', 'result.json')), { echo: { from: 'a user' } });

    // The server checks every relayed operation itself: a client that asks for more gets nothing.
    const raw = await ControlClient.connect({ url: control.url, token: control.userToken, requestTimeoutMs: 10_000 });
    try {
      await raw.request('control.session_attach', { project_id: project, project_token: projectToken });
      const relay = (path: string, op = 'stat') =>
        raw.request<{ ok: boolean; errno?: string }>('control.relay', { node_id: NODE_ID, request_id: `t-${path}-${op}`, op, path });
      tt.match(await relay('/services/secret/result.json'), { ok: false, errno: 'ENOENT' }, 'a hidden service is ENOENT on the server too');
      tt.match(await relay('/NODE.json'), { ok: false, errno: 'EACCES' }, 'only services/<id>/ and fs/ are relayed');
      tt.match(await relay('/services/echo/result.json'), { ok: true }, 'a visible service is relayed');
      tt.match(await relay('/fs/data/../../etc/passwd'), { ok: false, errno: 'EINVAL' }, '.. never leaves an export');
    } finally {
      raw.terminate();
    }

    // A rotated project token: the running mount's session loses the token's rights at once; the new
    // token written into the file reaches it (it reattaches), no restart.
    const tokenedStatus = join(services(withToken), 'tokened', 'status.json');
    tt.equal((await sh(`cat ${q(tokenedStatus)}`)).code, 0, 'the token-only service is read with the token');
    const { token: rotated } = await admin<{ token: string }>('control.project_token_rotate', { project_id: project });
    const refused = await waitFor(
      async () => {
        const r = await sh(`cat ${q(tokenedStatus)}`);
        return r.code !== 0 && r;
      },
      { what: 'the old project token refused' },
    );
    tt.match(refused.stderr, /No such file or directory|Permission denied/, `the old token no longer reaches it (${refused.stderr.trim()})`);
    await writeFile(`${projectTokenFile}.new`, `${rotated}\n`, { mode: 0o600 });
    await rename(`${projectTokenFile}.new`, projectTokenFile);
    const again = await waitFor(
      async () => {
        const r = await sh(`cat ${q(tokenedStatus)}`);
        return r.code === 0 && r;
      },
      { what: 'the new project token read from the file', timeoutMs: 15_000 },
    );
    tt.match(JSON.parse(again.stdout), { service_id: 'tokened' }, 'read again with the token from the file, the mount never restarted');
    tt.ok(await alive(withToken.child.pid as number), 'the same world process');
    // A new token alone changes nothing for a session attached without one: the server left that mount's watch running.
    const endedWatch = async (world: { logFile: string }): Promise<boolean> => (await readFile(world.logFile, 'utf8')).includes('the server ended the watch');
    tt.ok(await endedWatch(withToken), 'the mount attached with the token read the catalog again');
    tt.notOk(await endedWatch(withoutToken), 'the mount attached without it read nothing again');

    const outside = 'world-empty';
    await admin('control.project_upsert', { project_id: outside, mounts: [], access_policy: { actions: { read: 'open', observe: 'open' } } });
    const none = await startWorld(tt, { url: control.url, token: control.userToken, args: ['--project', outside] });
    tt.same(await ls(join(none.mount, 'nodes')), [], 'a node outside the project is absent');
  });

  await t.test('a bad token fails the start with the reason, and nothing stays mounted', { skip: sameOnEveryStore() }, async (tt) => {
    const mount = join(await tempDir(tt), 'mnt');
    const r = await acheron(['world', '--control-url', control.url, '--token', 'wrong', '--mount', mount, '--log-level', 'silent']);
    tt.not(r.code, 0);
    tt.match(r.stderr, /unauthorized|401/);
    tt.notOk(await isMounted(mount), 'not mounted');
  });

  await t.test('the mount helper: world:<url> <dir> -o token_file=... returns once live; umount stops it', { skip: sameOnEveryStore() }, async (tt) => {
    const base = await tempDir(tt, 'acheron-world-helper-');
    const mount = join(base, 'mnt');
    const adminTokenFile = join(base, 'token');
    await writeFile(adminTokenFile, `${control.adminToken}\n`, { mode: 0o600 });
    tt.teardown(async () => {
      await killDaemonsUsing(base);
      await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
    });
    // What mount.fuse3 runs for `mount -t fuse.acheron world:<url> <dir> -o ...` (SPEC §12).
    const r = await sh(
      `mkdir -p ${q(mount)} && node ${q(ACHERON)} ${q(`world:${control.url}`)} ${q(mount)} -o ${q(`rw,subtree=nodes,token_file=${adminTokenFile},log_file=${join(base, 'world.log')},frobnicate=1,dev,suid`)} && ls -1 ${q(join(mount, NODE_ID, 'services'))}`,
      { timeoutMs: 60_000 },
    );
    tt.equal(r.code, 0, r.stderr.trim());
    tt.match(r.stdout, /^SERVICES\.json\necho\n/, 'the tree was live when the helper returned');
    tt.match(r.stderr, /unknown mount option frobnicate=1 ignored/);
    const [pid] = await daemonsUsing(base);
    tt.ok(pid !== undefined && (await alive(pid)), 'a detached daemon serves it');
    const u = await sh(`umount ${q(mount)}`);
    tt.equal(u.code, 0, u.stderr.trim());
    await waitFor(async () => !(await alive(pid as number)), { what: 'the world daemon to exit after umount', timeoutMs: 15_000 });
    tt.pass('the daemon exited after umount');
  });

  await t.test('the control server away: ENOTCONN at once; back: the mount recovers by itself', async (tt) => {
    await control.kill9();
    await waitFor(async () => /Transport endpoint is not connected/.test((await sh(`cat ${q(join(world.node(NODE_ID), 'NODE.json'))}`)).stderr), {
      what: 'ENOTCONN from the world mount',
      timeoutMs: 40_000,
      intervalMs: 200,
    });
    const started = Date.now();
    const r = await sh(`ls ${q(join(world.mount, 'nodes'))}`);
    tt.match(r.stderr, /Transport endpoint is not connected/, 'listing fails too');
    tt.ok(Date.now() - started < 5_000, 'at once, not after a hang');
    control = await control.restart();
    const doc = await waitFor(
      async () => {
        const read = await sh(`cat ${q(join(world.node(NODE_ID), 'NODE.json'))}`);
        return read.code === 0 ? (JSON.parse(read.stdout) as { node_id: string }) : undefined;
      },
      { what: 'the world mount back', timeoutMs: 40_000, intervalMs: 250 },
    );
    tt.equal(doc.node_id, NODE_ID);
  });

  await t.test('a node that stops turns offline in the mount; a deleted node disappears', async (tt) => {
    node.child.kill('SIGTERM');
    await node.exited;
    const status = await waitFor(
      async () => {
        const doc = await readJson<{ state: string }>(join(world.node(NODE_ID), 'STATUS.json')).catch(() => undefined);
        return doc?.state === 'offline' ? doc : undefined;
      },
      { what: 'offline in the world mount', timeoutMs: 30_000, intervalMs: 200 },
    );
    tt.equal(status.state, 'offline');
    tt.match(await readJson(join(services(world), 'echo', 'STATUS.json')), { state: 'offline' }, 'its services are offline too');
    const started = Date.now();
    const unreachable = await sh(`cat ${q(join(services(world), 'echo', 'result.json'))}`);
    tt.match(unreachable.stderr, /No route to host/, 'live files of an offline node: EHOSTUNREACH');
    tt.ok(Date.now() - started < 5_000, 'at once');
    // Offline before the invoke: nothing was sent, so no warning that it may have run (it told the user to read jobs/ first).
    const invoke = await acheron(['invoke', 'echo', '{}', '--node', NODE_ID, '--mount', world.mount]);
    tt.equal(invoke.code, 1, 'acheron invoke through the mount: exit 1');
    tt.equal(
      invoke.stderr,
      `acheron invoke: echo: EHOSTUNREACH: node ${NODE_ID} was offline before this invocation (its STATUS.json): the invocation was not sent\n`,
    );
    await admin('control.node_delete', { node_id: NODE_ID });
    await waitFor(async () => (await ls(join(world.mount, 'nodes'))).length === 0, {
      what: 'the node gone from the mount',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    const deleted = await sh(`cat ${q(join(world.node(NODE_ID), 'NODE.json'))}`);
    tt.match(deleted.stderr, /No such file or directory/, 'a deleted node is ENOENT');
  });

  await t.test('SIGTERM unmounts and exits 0', async (tt) => {
    world.child.kill('SIGTERM');
    const exit = await world.exited;
    tt.equal(exit.code, 0);
    tt.notOk(await isMounted(world.mount));
  });
}
