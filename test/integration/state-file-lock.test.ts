// One node daemon per state file (src/node/runtime-journal.ts, the state file's PidLock): a second
// daemon with the same --state-file on another mount is refused naming the first, and a lock left by
// a daemon killed with SIGKILL does not block the next start.
import t from 'tap';
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { lockPathOf } from '../../src/fuse/mount-lock.js';
import { pidLockPath } from '../../src/store/pid-lock.js';
import { ACHERON, isMounted, manifest, readJson, spawnMounter, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

t.test('a second daemon with the same state file is refused; after kill -9 of the first, a new one starts', async (t) => {
  const first = await startNode(t, { manifests: [manifest('echo', 'echo')], args: ['--no-fs-service'] });
  const stateFile = join(await realpath(first.dir), 'node-state.json');
  const lock = pidLockPath('state', stateFile);
  const invoke = await sh(`/bin/echo '{"n":1}' > ${q(join(first.service('echo'), 'control', 'invoke.json'))}`);
  t.equal(invoke.code, 0, `the first daemon invokes (${invoke.stderr.trim()})`);

  const other = await tempDir(t);
  const mount = join(other, 'mnt');
  /** How a daemon on `mount` ends up: serving it, or exited (without the lock, the second one would serve). */
  const outcome = (daemon: ReturnType<typeof spawnMounter>) =>
    waitFor(async () => (daemon.gone() ? 'exited' : (await readJson(join(mount, 'NODE.json')).catch(() => undefined))?.pid === daemon.child.pid && 'serving'), {
      what: `the daemon on ${mount} to serve or exit`,
      timeoutMs: 30_000,
    });
  // The first daemon's services, node id and state file; only the mount is its own.
  const sharing = () =>
    spawnMounter(
      t,
      [
        ACHERON,
        'node',
        '--node-id',
        'test-node',
        '--mount',
        mount,
        '--no-fs-service',
        '--services-dir',
        first.servicesDir,
        '--state-file',
        stateFile,
        '--log-file',
        join(other, 'node.log'),
      ],
      mount,
    );
  const second = sharing();
  const refused = await outcome(second);
  t.equal(refused, 'exited', 'the second daemon does not serve');
  if (refused !== 'exited') return;
  t.same(await second.exited, { code: 1, signal: null }, 'it exits 1');
  t.equal(
    second.stderr().trim(),
    `acheron: ${stateFile} is used by a live acheron daemon (pid ${first.child.pid}, lock ${lock}); stop it first or pick another state file (--state-file)`,
    'naming the state file and the pid of the daemon that holds it, in one line',
  );
  t.notOk(await isMounted(mount), 'it mounted nothing');
  await t.rejects(readFile(lockPathOf(mount)), { code: 'ENOENT' }, 'and gave its mount up again');
  t.equal((await readJson(join(first.mount, 'NODE.json'))).pid, first.child.pid, 'the first daemon still serves');

  process.kill(first.child.pid as number, 'SIGKILL');
  t.equal((await first.exited).signal, 'SIGKILL', 'the first daemon is killed');
  t.equal((await readFile(lock, 'utf8')).split('\n')[0], String(first.child.pid), 'its lock stays behind');

  const third = sharing();
  t.equal(await outcome(third), 'serving', `a new daemon with the same state file starts (${third.stderr().trim()})`);
  t.equal((await readFile(lock, 'utf8')).split('\n')[0], String(third.child.pid), "it took the dead daemon's lock over");
  t.same((await readJson(join(mount, 'services', 'echo', 'result.json'))).echo, { n: 1 }, "and restored the first daemon's journal");
  process.kill(third.child.pid as number, 'SIGTERM');
  t.same(await third.exited, { code: 0, signal: null }, 'it stops cleanly');
  await t.rejects(readFile(lock), { code: 'ENOENT' }, 'and gives the state file up');
});
