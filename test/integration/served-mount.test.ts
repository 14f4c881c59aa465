// The served-mount lifecycle (src/fuse/served-mount.ts) as a daemon lives it: two daemons racing
// for one mount with a stale lock, and writes that arrive while a daemon stops.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { lockPathOf } from '../../src/fuse/mount-lock.js';
import { ACHERON, manifest, readJson, spawnMounter, startNode, tempDir } from '../helpers/node.js';
import { acheron } from '../helpers/control.js';
import { q, sh, waitFor } from '../helpers/process.js';

t.test('two daemons started at the same moment on a mount with a stale lock: one serves, the other fails naming it', async (t) => {
  const dir = await tempDir(t);
  const mount = join(dir, 'mnt');
  const servicesDir = join(dir, 'services.d');
  await sh(`mkdir -p ${q(servicesDir)}`);
  await writeFile(join(servicesDir, 'echo.json'), JSON.stringify(manifest('echo', 'echo')));
  // A lock left by a daemon that is gone (a pid that just ran and exited).
  const gone = spawn('true');
  await new Promise((resolve) => gone.once('exit', resolve));
  const lock = lockPathOf(mount);
  await writeFile(lock, `${gone.pid}\n${mount}\n`);
  t.teardown(() => sh(`rm -f ${q(lock)}`));

  const daemon = (name: string) =>
    spawnMounter(
      t,
      [
        ACHERON,
        'node',
        '--node-id',
        name,
        '--mount',
        mount,
        '--no-fs-service',
        '--services-dir',
        servicesDir,
        '--state-file',
        join(dir, `${name}.json`),
        '--log-file',
        join(dir, `${name}.log`),
      ],
      mount,
    );
  const daemons = [daemon('first'), daemon('second')];
  const [loser, winner] = await waitFor(
    () => {
      const exited = daemons.filter((d) => d.gone());
      return exited.length === 1 ? [exited[0], daemons.find((d) => !d.gone())] : exited.length === 2 ? [undefined, undefined] : undefined;
    },
    { what: 'one of the two daemons to give up', timeoutMs: 60_000 },
  );
  t.ok(loser && winner, 'exactly one daemon gave up');
  if (!loser || !winner) return;
  t.same(await loser.exited, { code: 1, signal: null }, 'the loser exits 1');
  t.match(
    loser.stderr().trim(),
    new RegExp(`is served by a live acheron daemon \\(pid ${winner.child.pid}, lock `),
    `the loser names the winner: ${loser.stderr().trim()}`,
  );
  const node = await waitFor(
    async () => {
      const doc = await readJson(join(mount, 'NODE.json'));
      return doc.pid === winner.child.pid && doc;
    },
    { what: 'the winner to serve the mount', timeoutMs: 30_000 },
  );
  t.equal(node.pid, winner.child.pid, 'the winner serves the mount');
  const run = await sh(`/bin/echo '{"n":1}' > ${q(join(mount, 'services/echo/control/invoke.json'))}`);
  t.equal(run.code, 0, `and invokes (${run.stderr.trim()})`);
  t.equal((await readFile(lock, 'utf8')).split('\n')[0], String(winner.child.pid), 'the lock names the winner');
});

t.test('writes that arrive while the daemon stops are journaled, never answered EIO', async (t) => {
  const node = await startNode(t, { manifests: [manifest('echo', 'echo')] });
  const reset = join(node.service('echo'), 'control', 'reset');
  const errors = join(node.dir, 'writer-errors');
  // Control writes journal the service state (and wait for it): they go on until the tree is gone.
  const writers = [1, 2, 3].map(() =>
    sh(`while [ -e "$M/NODE.json" ]; do /bin/echo 1 > "$F" 2>>"$ERR"; done; true`, {
      env: { ...process.env, M: node.mount, F: reset, ERR: errors },
      timeoutMs: 60_000,
    }),
  );
  await waitFor(async () => (await readJson(join(node.service('echo'), 'health.json'))).last_control_op === 'reset', { what: 'the writers to run' });
  process.kill(node.child.pid as number, 'SIGTERM');
  t.same(await node.exited, { code: 0, signal: null }, 'the daemon stops and exits 0');
  await Promise.all(writers);
  const failed = (await readFile(errors, 'utf8').catch(() => '')).split('\n').filter((line) => line.includes('Input/output error'));
  t.same(failed, [], 'no write got EIO');
  const logged = (await readFile(node.logFile, 'utf8')).split('\n').filter((line) => line.includes('"level":50'));
  t.same(logged, [], 'nothing was logged as an error');
});

t.test('a mount point reached through a symlink: the daemon serves it, and an external umount still stops it', async (t) => {
  const dir = await tempDir(t);
  const real = join(dir, 'real-mnt');
  const link = join(dir, 'link-mnt');
  await sh(`mkdir -p ${q(real)} && ln -s real-mnt ${q(link)}`);
  await writeFile(join(dir, 'echo.json'), JSON.stringify(manifest('echo', 'echo')));
  const daemon = spawnMounter(
    t,
    [
      ACHERON,
      'node',
      '--node-id',
      'linked',
      '--mount',
      link,
      '--no-fs-service',
      '--service-manifest',
      join(dir, 'echo.json'),
      '--state-file',
      join(dir, 'linked.json'),
    ],
    real,
  );
  await waitFor(async () => daemon.gone() || (await readJson(join(link, 'NODE.json')).catch(() => undefined))?.pid === daemon.child.pid, {
    what: 'the node to serve the mount through the link',
    timeoutMs: 30_000,
  });
  // The daemon polls the mount table every second for an external umount: before, it looked for the
  // link's path there, found none, and stopped, leaving a dead mount.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.notOk(daemon.gone(), `the daemon still serves after 2.5 s (${daemon.stderr().trim()})`);
  const run = await sh(`/bin/echo '{"n":1}' > ${q(join(link, 'services/echo/control/invoke.json'))} && cat ${q(join(real, 'services/echo/result.json'))}`);
  t.equal(run.code, 0, `an invoke through the link answers (${run.stderr.trim()})`);
  t.match(run.stdout, /"n":1/, 'and its result shows at the real path');
  await sh(`fusermount -u ${q(real)}`);
  t.same(await daemon.exited, { code: 0, signal: null }, 'an external umount of the real path stops the daemon cleanly');
});

t.test("a mount point inside a live node's tree, or over it, is refused: a second mount there would hide the first one's files", async (t) => {
  const outer = await startNode(t, { manifests: [manifest('echo', 'echo')] });
  const dir = await tempDir(t);
  const inner = join(outer.mount, 'services');
  const run = await acheron(['node', '--node-id', 'inner', '--mount', inner, '--no-fs-service', '--state-file', join(dir, 'inner.json')], {
    timeoutMs: 30_000,
  });
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, `${inner} lies inside the acheron mount ${outer.mount}`, `says where (${run.stderr.trim()})`);
  // Over it: a mount on a directory that holds it would hide it just the same.
  const over = await acheron(['node', '--node-id', 'over', '--mount', outer.dir, '--no-fs-service', '--state-file', join(dir, 'over.json')], {
    timeoutMs: 30_000,
  });
  t.equal(over.code, 1, 'over it: exit 1');
  t.match(over.stderr, `${outer.dir} holds the live acheron mount ${outer.mount}`, `says which (${over.stderr.trim()})`);
  const listed = await sh(`ls ${q(inner)}`);
  t.equal(listed.stdout.trim(), 'echo', "the outer node's services still show");
});
