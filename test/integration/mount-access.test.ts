// SPEC §9: "on multi-user hosts mount with `allow_other` + `default_permissions` and modes that fit".
// A node tree and a WorldFS mount made by root with --allow-other --default-permissions can be used
// by another user (nobody) as far as the modes shown allow (owner: the daemon's uid/gid); without
// them only the mounting user gets in. A user other than root gets allow_other only when
// /etc/fuse.conf has user_allow_other, and is told so when it has not: tried in a private mount
// namespace with a copy of fuse.conf bound over it (never the host's file).
import t from 'tap';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { joinArgs, joinToken, startControl, waitForService } from '../helpers/control.js';
import { ACHERON, manifest, startNode, tempDir } from '../helpers/node.js';
import { NOBODY, probe, probeAs, shown } from '../helpers/probe.js';
import { daemonsUsing, killDaemonsUsing, q, sh } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const ACCESS = ['--allow-other', '--default-permissions'];

/** A temp dir other users may walk through (mkdtemp makes it 0700), with an export of one public and one private file. */
async function sharedDir(tt: Parameters<typeof tempDir>[0]): Promise<{ dir: string; exported: string }> {
  const dir = await tempDir(tt, 'acheron-access-');
  await chmod(dir, 0o755);
  const exported = join(dir, 'exported');
  await mkdir(exported);
  await writeFile(join(exported, 'public.txt'), 'public\n', { mode: 0o644 });
  await writeFile(join(exported, 'private.txt'), 'private\n', { mode: 0o600 });
  return { dir, exported };
}

t.test('a node tree with --allow-other --default-permissions: other users read what the modes let them, and write nothing', async (tt) => {
  const { dir, exported } = await sharedDir(tt);
  const node = await startNode(tt, { dir, manifests: [manifest('echo', 'echo')], args: [...ACCESS, '--export', `data=${exported}:rw`] });
  const echo = node.service('echo');
  const [root, nodeDoc, readme, invoke, reset, publicFile, privateFile, created] = await probeAs(NOBODY, [
    { op: 'ls', path: node.mount },
    { op: 'read', path: join(node.mount, 'NODE.json') },
    { op: 'read', path: join(echo, 'README.md') },
    { op: 'write', path: join(echo, 'control', 'invoke.json'), data: '{"from":"nobody"}' },
    { op: 'write', path: join(echo, 'control', 'reset'), data: '1' },
    { op: 'read', path: join(node.mount, 'fs', 'data', 'public.txt') },
    { op: 'read', path: join(node.mount, 'fs', 'data', 'private.txt') },
    { op: 'write', path: join(node.mount, 'fs', 'data', 'new.txt'), data: 'x', create: true },
  ]);
  tt.same(shown(root), ['ERRORS.json', 'NODE.json', 'SERVICES.json', 'fs', 'services'], 'nobody lists the tree');
  tt.equal((JSON.parse(shown(nodeDoc) as string) as { node_id: string }).node_id, 'test-node', 'and reads NODE.json (0444)');
  tt.match(shown(readme), /echo/, "and a service's README.md");
  tt.equal(shown(invoke), 'EACCES', 'control/invoke.json is 0644, owned by the daemon: nobody cannot invoke');
  tt.equal(shown(reset), 'EACCES', 'nor write control/ files (0200)');
  tt.equal(shown(publicFile), 'public\n', 'an exported 0644 file is readable');
  tt.equal(shown(privateFile), 'EACCES', "an exported 0600 file is not (the daemon's uid is shown as its owner)");
  tt.equal(shown(created), 'EACCES', 'nor can nobody create files in an export');
  const [rootInvoke] = await probe([{ op: 'transact', path: join(echo, 'control', 'invoke.json'), data: '{"from":"root"}' }]);
  tt.match(shown(rootInvoke), /"from":"root"/, 'the mounting user (root) still invokes');
});

t.test('a node tree without the flags: only the mounting user gets in', async (tt) => {
  const { dir } = await sharedDir(tt);
  const node = await startNode(tt, { dir });
  const outcomes = await probeAs(NOBODY, [
    { op: 'ls', path: node.mount },
    { op: 'read', path: join(node.mount, 'NODE.json') },
  ]);
  tt.same(outcomes.map(shown), ['EACCES', 'EACCES'], 'nobody can neither list nor read');
});

t.test('--allow-other alone: every user acts as the daemon, and the daemon warns about it', async (tt) => {
  const { dir, exported } = await sharedDir(tt);
  const node = await startNode(tt, { dir, args: ['--allow-other', '--export', `data=${exported}:ro`] });
  const [privateFile] = await probeAs(NOBODY, [{ op: 'read', path: join(node.mount, 'fs', 'data', 'private.txt') }]);
  tt.equal(shown(privateFile), 'private\n', 'no kernel check: nobody reads what root may read');
  tt.match(await readFile(node.logFile, 'utf8'), /allow_other without default_permissions/, 'logged at start');
});

t.test('a WorldFS mount with --allow-other --default-permissions: other users read the catalog; without, they get nothing', async (tt) => {
  const control = await startControl(tt);
  const { dir } = await sharedDir(tt);
  const tokenFile = join(dir, 'join-token');
  await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
  await startNode(tt, { dir, manifests: [manifest('echo', 'echo', { permissions: { allow_roles: ['admin'] } })], args: joinArgs(control.url, tokenFile) });
  await waitForService(control, 'test-node', 'echo');
  const shared = await startWorld(tt, { url: control.url, token: control.adminToken, args: ACCESS });
  const closed = await startWorld(tt, { url: control.url, token: control.adminToken });
  for (const world of [shared, closed]) await chmod(dirname(world.mount), 0o755);
  const echo = join(shared.node('test-node'), 'services', 'echo');
  const [nodes, nodeDoc, readme, invoke, closedNodes] = await probeAs(NOBODY, [
    { op: 'ls', path: join(shared.mount, 'nodes') },
    { op: 'read', path: join(shared.node('test-node'), 'NODE.json') },
    { op: 'read', path: join(echo, 'README.md') },
    { op: 'write', path: join(echo, 'control', 'invoke.json'), data: '{}' },
    { op: 'ls', path: join(closed.mount, 'nodes') },
  ]);
  tt.same(shown(nodes), ['test-node'], 'nobody lists nodes/');
  tt.equal((JSON.parse(shown(nodeDoc) as string) as { node_id: string }).node_id, 'test-node', "and reads a node's NODE.json");
  tt.match(shown(readme), /echo/, "and a service's README.md (relayed to the node)");
  tt.equal(shown(invoke), 'EACCES', 'but cannot invoke (invoke.json is 0644, owned by the daemon)');
  tt.equal(shown(closedNodes), 'EACCES', 'a mount without the flags refuses nobody');
});

/**
 * `acheron node --daemon --allow-other --default-permissions` run by nobody in a private mount
 * namespace where /etc/fuse.conf is `conf`; then the script `after(mount)` in the same namespace.
 */
async function mountAsNobody(
  tt: Parameters<typeof tempDir>[0],
  conf: string,
  after: (mount: string) => string = () => '',
): Promise<{ code: number | null; stderr: string; dir: string; mount: string }> {
  const dir = await tempDir(tt, 'acheron-user-mount-');
  await chmod(dir, 0o755);
  await chown(dir, NOBODY, NOBODY);
  tt.teardown(async () => {
    await killDaemonsUsing(dir);
  });
  const mount = join(dir, 'mnt');
  const fuseConf = join(dir, 'fuse.conf');
  await writeFile(fuseConf, conf, { mode: 0o644 });
  const node = [process.execPath, ACHERON, 'node', '--daemon', '--node-id', 'u', '--no-fs-service', ...ACCESS]
    .concat(['--mount', mount, '--state-file', join(dir, 'state.json'), '--log-file', join(dir, 'node.log')])
    .map(q)
    .join(' ');
  // The pid lock of a daemon the teardown kills stays in its lock directory: the test's own
  // (XDG_RUNTIME_DIR), not /tmp/acheron.
  const script = `mount --bind ${q(fuseConf)} /etc/fuse.conf || exit 99
XDG_RUNTIME_DIR=${q(dir)} setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${node} || exit $?
${after(mount)}`;
  const run = await sh(`exec unshare -m --propagation private bash -c ${q(script)}`, { timeoutMs: 60_000 });
  return { code: run.code, stderr: run.stderr, dir, mount };
}

t.test('not root, no user_allow_other in /etc/fuse.conf: --allow-other fails and says why', async (tt) => {
  const run = await mountAsNobody(tt, '# user_allow_other\nmount_max = 1000\n');
  tt.equal(run.code, 1, 'exit 1');
  tt.match(run.stderr, /allow_other is refused: .*\/etc\/fuse\.conf has a user_allow_other line/, `the reason: ${run.stderr.trim()}`);
  tt.same(await daemonsUsing(run.dir), [], 'no daemon left running');
});

t.test('not root, user_allow_other in /etc/fuse.conf: another user reads the tree', async (tt) => {
  const out = join(await tempDir(tt), 'node.json');
  // uid 4242: neither the user that mounted (nobody) nor root.
  const run = await mountAsNobody(
    tt,
    '  user_allow_other  \n',
    (mount) => `setpriv --reuid=4242 --regid=4242 --clear-groups cat ${q(join(mount, 'NODE.json'))} > ${q(out)} || exit 20
fusermount -u ${q(mount)} || exit 21`,
  );
  tt.equal(run.code, 0, `mounted by nobody, read by uid 4242, unmounted (${run.stderr.trim()})`);
  tt.equal((JSON.parse(await readFile(out, 'utf8')) as { mount: string }).mount, run.mount, 'uid 4242 read the tree nobody mounted');
});
