// SPEC §1 mount helper and fstab: `mount <dir>` from an fstab line, `mount -t fuse.acheron`, and
// `acheron node --daemon` return only once the tree is live, or fail with the reason and leave
// nothing mounted. fstab lines are tried in a private mount namespace with a bind-mounted copy of
// /etc/fstab (never the host's, SPEC §12).
import t, { type Test } from 'tap';
import { readFile, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, DRIVERS, readJson, tempDir } from '../helpers/node.js';
import { daemonsUsing, killDaemonsUsing, q, sh, waitFor, type ShResult, alive } from '../helpers/process.js';
import { startControl } from '../helpers/control.js';
import { NOBODY as NOBODY_ID } from '../helpers/probe.js';

const LAUNCHER = '/usr/local/bin/acheron';

// What `make install` writes: mount(8) runs helpers with a minimal PATH, so absolute paths.
const launcher = `#!/bin/sh\nexec ${process.execPath} ${ACHERON} "$@"\n`;
const previous = await readFile(LAUNCHER, 'utf8').catch(() => undefined);
if (previous !== launcher) {
  await writeFile(LAUNCHER, launcher);
  await chmod(LAUNCHER, 0o755);
  t.teardown(() => (previous === undefined ? rm(LAUNCHER, { force: true }) : writeFile(LAUNCHER, previous)));
}

async function isMounted(mount: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[4] === mount);
}

interface Setup {
  dir: string;
  mount: string;
  servicesDir: string;
  fstab: string;
  logFile: string;
  stateFile: string;
}

/**
 * A temp dir with an echo service and a copy of /etc/fstab. Teardown kills every daemon started for
 * it (a namespace's mounts vanish with it, but the daemon would keep the namespace alive) and
 * lazily unmounts the host-namespace mount point.
 */
async function setup(tt: Test, manifestText?: string): Promise<Setup> {
  const dir = await tempDir(tt, 'acheron-helper-');
  const mount = join(dir, 'mnt');
  const servicesDir = join(dir, 'services.d');
  await mkdir(mount);
  await mkdir(servicesDir);
  await writeFile(
    join(servicesDir, 'echo.json'),
    manifestText ?? JSON.stringify({ service_id: 'echo', kind: 'test', runtime: { type: 'native_proc', executable_path: join(DRIVERS, 'echo') } }),
  );
  if (manifestText === undefined)
    await writeFile(
      join(servicesDir, 'whoami.json'),
      JSON.stringify({ service_id: 'whoami', kind: 'test', runtime: { type: 'native_proc', executable_path: '/usr/bin/id' } }),
    );
  const fstab = join(dir, 'fstab');
  await writeFile(fstab, await readFile('/etc/fstab', 'utf8').catch(() => ''));
  tt.teardown(async () => {
    await killDaemonsUsing(dir); // their locks: removed with the temp dir
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  return { dir, mount, servicesDir, fstab, logFile: join(dir, 'helper.log'), stateFile: join(dir, 'state.json') };
}

/** Runs `script` in a private mount namespace where /etc/fstab is `fstab`. */
function inNamespace(fstab: string, script: string): Promise<ShResult> {
  return sh(`exec unshare -m --propagation private bash -c ${q(`mount --bind ${q(fstab)} /etc/fstab || exit 99\n${script}`)}`, { timeoutMs: 60_000 });
}

await t.test('an fstab line: mount <dir>, use the tree, umount stops the daemon', async (tt) => {
  const s = await setup(tt);
  await writeFile(
    s.fstab,
    `node ${s.mount} fuse.acheron services_dir=${s.servicesDir},node_id=fstab-node,log_file=${s.logFile},state_file=${s.stateFile},noauto 0 0\n`,
    { flag: 'a' },
  );
  const m = q(s.mount);
  const run = await inNamespace(
    s.fstab,
    `
    mount ${m} || exit 10
    cat ${m}/NODE.json > ${q(join(s.dir, 'node.json'))} || exit 11
    ps -o args= -p "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' ${m}/NODE.json)" > ${q(join(s.dir, 'ps.txt'))} || exit 19
    /bin/echo '{"msg":"fstab"}' > ${m}/services/echo/control/invoke.json || exit 12
    cat ${m}/services/echo/result.json > ${q(join(s.dir, 'result.json'))} || exit 13
    /bin/echo '{}' > ${m}/services/whoami/control/invoke.json || exit 17
    cat ${m}/services/whoami/result.json > ${q(join(s.dir, 'whoami.txt'))} || exit 18
    grep -q " ${s.mount} " /proc/self/mountinfo || exit 14
    umount ${m} || exit 15
    grep -q " ${s.mount} " /proc/self/mountinfo && exit 16
    exit 0`,
  );
  tt.equal(run.code, 0, `every step worked (${run.stderr.trim()})`);
  const nodeDoc = JSON.parse(await readFile(join(s.dir, 'node.json'), 'utf8')) as { node_id: string; pid: number; mount: string };
  tt.equal(nodeDoc.node_id, 'fstab-node', 'NODE.json shows the node_id from fstab');
  tt.equal(nodeDoc.mount, s.mount);
  // An operator finds a mount's daemon in ps: it used to show only `node .../acheron.js node`.
  tt.match(await readFile(join(s.dir, 'ps.txt'), 'utf8'), `node --node-id fstab-node --mount ${s.mount}`, 'ps names the node and its mount');
  tt.same(
    (JSON.parse(await readFile(join(s.dir, 'result.json'), 'utf8')) as { echo: unknown }).echo,
    { msg: 'fstab' },
    'an invoke through the fstab mount works',
  );
  tt.match(await readFile(join(s.dir, 'whoami.txt'), 'utf8'), /^uid=65534\(nobody\)/, 'drivers of an fstab mount run as nobody by default (SPEC §4)');
  await waitFor(async () => !(await alive(nodeDoc.pid)), { what: `daemon ${nodeDoc.pid} to exit after umount` });
  tt.pass('the daemon exited after umount');
  await waitFor(async () => (await daemonsUsing(s.dir)).length === 0, { what: 'the spawner to exit' });
  tt.notOk(await isMounted(s.mount), 'never visible in the host namespace');
  tt.match(await readFile(s.logFile, 'utf8'), /unmounted from outside/, 'daemon logs go to log_file');
});

await t.test('mount -t fuse.acheron node <dir> -o ...', async (tt) => {
  const s = await setup(tt);
  const m = q(s.mount);
  const run = await inNamespace(
    s.fstab,
    `
    mount -t fuse.acheron node ${m} -o services_dir=${s.servicesDir},node_id=x,log_file=${s.logFile},state_file=${s.stateFile},frobnicate=1 || exit 10
    cat ${m}/NODE.json > ${q(join(s.dir, 'node.json'))} || exit 11
    cat ${m}/SERVICES.json > ${q(join(s.dir, 'services.json'))} || exit 12
    umount ${m} || exit 13`,
  );
  tt.equal(run.code, 0, `mount, read, umount (${run.stderr.trim()})`);
  tt.match(run.stderr, /unknown mount option frobnicate=1/, 'an unknown option gets a warning');
  const nodeDoc = JSON.parse(await readFile(join(s.dir, 'node.json'), 'utf8')) as { node_id: string; pid: number };
  tt.equal(nodeDoc.node_id, 'x');
  const services = JSON.parse(await readFile(join(s.dir, 'services.json'), 'utf8')) as Array<{ service_id: string }>;
  tt.ok(
    services.some((x) => x.service_id === 'echo'),
    'services_dir was loaded',
  );
  await waitFor(async () => !(await alive(nodeDoc.pid)), { what: `daemon ${nodeDoc.pid} to exit after umount` });
  tt.pass('the daemon exited after umount');
});

const NOBODY = `setpriv --reuid=${NOBODY_ID} --regid=${NOBODY_ID} --clear-groups`;

await t.test('mount -o allow_other,default_permissions: other users read the tree as its modes allow', async (tt) => {
  const s = await setup(tt);
  await chmod(s.dir, 0o755);
  const m = q(s.mount);
  const run = await inNamespace(
    s.fstab,
    `
    mount -t fuse.acheron node ${m} -o services_dir=${s.servicesDir},node_id=shared,log_file=${s.logFile},state_file=${s.stateFile},allow_other,default_permissions || exit 10
    grep " ${s.mount} " /proc/self/mountinfo > ${q(join(s.dir, 'mountinfo'))}
    ${NOBODY} cat ${m}/NODE.json > ${q(join(s.dir, 'node.json'))} || exit 11
    ${NOBODY} sh -c "echo {} > ${m}/services/echo/control/invoke.json" && exit 12
    umount ${m} || exit 13`,
  );
  tt.equal(run.code, 0, `mount, nobody reads, nobody cannot invoke, umount (${run.stderr.trim()})`);
  tt.notMatch(run.stderr, /unknown mount option/, 'both options are known');
  tt.match(await readFile(join(s.dir, 'mountinfo'), 'utf8'), /\bdefault_permissions,allow_other\b/, 'the kernel has both');
  tt.equal((JSON.parse(await readFile(join(s.dir, 'node.json'), 'utf8')) as { node_id: string }).node_id, 'shared', 'nobody read NODE.json');
  tt.match(run.stderr, /Permission denied/, 'invoke.json (0644, owned by root) refused nobody');
});

await t.test('mount -t fuse.acheron world:<url> -o token_file=...,allow_other,default_permissions', async (tt) => {
  const control = await startControl(tt);
  const s = await setup(tt);
  await chmod(s.dir, 0o755);
  const tokenFile = join(s.dir, 'token');
  await writeFile(tokenFile, `${control.adminToken}\n`, { mode: 0o600 });
  const m = q(s.mount);
  const run = await inNamespace(
    s.fstab,
    `
    mount -t fuse.acheron world:${control.url} ${m} -o token_file=${tokenFile},log_file=${s.logFile},allow_other,default_permissions || exit 10
    ${NOBODY} ls ${m} > ${q(join(s.dir, 'ls'))} || exit 11
    umount ${m} || exit 12`,
  );
  tt.equal(run.code, 0, `mount, nobody lists, umount (${run.stderr.trim()})`);
  tt.notMatch(run.stderr, /unknown mount option/, 'both options are known');
  tt.equal(await readFile(join(s.dir, 'ls'), 'utf8'), 'nodes\n', 'nobody listed the WorldFS root');
});

await t.test('mount with an invalid manifest fails with the reason and mounts nothing', async (tt) => {
  const s = await setup(tt, JSON.stringify({ service_id: 'echo', kind: 'test', bogus_key: 1 }));
  await writeFile(
    s.fstab,
    `node ${s.mount} fuse.acheron services_dir=${s.servicesDir},node_id=bad,log_file=${s.logFile},state_file=${s.stateFile},noauto 0 0\n`,
    { flag: 'a' },
  );
  const run = await inNamespace(
    s.fstab,
    `
    mount ${q(s.mount)}; rc=$?
    grep -q " ${s.mount} " /proc/self/mountinfo && echo STILL-MOUNTED
    exit $rc`,
  );
  tt.not(run.code, 0, 'mount exits non-zero');
  tt.match(run.stderr, join(s.servicesDir, 'echo.json'), `names the file: ${run.stderr.trim()}`);
  tt.match(run.stderr, /\/bogus_key: unknown key/, 'and the problem');
  tt.notMatch(run.stdout, /STILL-MOUNTED/, 'nothing is left mounted');
  tt.same(await daemonsUsing(s.dir), [], 'no daemon left running');
});

await t.test('acheron node --daemon returns once the tree is live', async (tt) => {
  const s = await setup(tt);
  const run = await sh(
    `${q(process.execPath)} ${q(ACHERON)} node --daemon --node-id daemonized --mount ${q(s.mount)} --services-dir ${q(s.servicesDir)} --log-file ${q(s.logFile)} --state-file ${q(s.stateFile)} && cat ${q(join(s.mount, 'NODE.json'))}`,
    { timeoutMs: 30_000 },
  );
  tt.equal(run.code, 0, `exit 0 and the tree is readable right after (${run.stderr.trim()})`);
  const nodeDoc = JSON.parse(run.stdout) as { node_id: string; pid: number };
  tt.equal(nodeDoc.node_id, 'daemonized');
  tt.same(await readJson(join(s.mount, 'services', 'echo', 'TEMPLATE.json')), {}, 'the services are there');
  tt.ok(await alive(nodeDoc.pid), 'the daemon keeps running after the command returned');
  process.kill(nodeDoc.pid, 'SIGTERM');
  await waitFor(async () => !(await alive(nodeDoc.pid)), { what: 'the daemon to stop on SIGTERM' });
  tt.notOk(await isMounted(s.mount), 'SIGTERM unmounted it');
});

await t.test('acheron node --daemon with a bad manifest exits non-zero with the reason', async (tt) => {
  const s = await setup(tt, '{"service_id": "echo", "kind": "test", "runtime": {"type": "native_proc", "timout_ms": 5}}');
  const run = await sh(
    `${q(process.execPath)} ${q(ACHERON)} node --daemon --node-id bad --mount ${q(s.mount)} --services-dir ${q(s.servicesDir)} --log-file ${q(s.logFile)} --state-file ${q(s.stateFile)}`,
    { timeoutMs: 30_000 },
  );
  tt.equal(run.code, 1, 'exit 1');
  tt.match(run.stderr, `${join(s.servicesDir, 'echo.json')}: /runtime/timout_ms: unknown key`, `names file, path and rule: ${run.stderr.trim()}`);
  tt.notOk(await isMounted(s.mount), 'nothing mounted');
  tt.same(await daemonsUsing(s.dir), [], 'no daemon left running');
});
