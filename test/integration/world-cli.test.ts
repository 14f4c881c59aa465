// SPEC §1: `acheron world` accepts `--foreground` as `acheron node` does (the foreground is the
// default; the flag changes nothing): a world mount started with it goes live, and a bad token
// with it is refused by the server, not by the option parser. A SIGHUP (a closed terminal, a
// reload meant for the node) is logged and the mount stays, in the foreground and with --daemon: it
// used to kill the process at once, without its unmount. It reopens --log-file first (log rotation). `ps` shows which mount a detached daemon
// serves and its control server (not the token).
import t from 'tap';
import { readFile, realpath, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { acheron, startControl } from '../helpers/control.js';
import { ACHERON, isMounted, tempDir } from '../helpers/node.js';
import { sh, q, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';
import { pidLockPath } from '../../src/store/pid-lock.js';

const control = await startControl(t);

t.test('--foreground: the mount goes live in the foreground', async (t) => {
  const world = await startWorld(t, { url: control.url, token: control.adminToken, args: ['--foreground'] });
  const listed = await sh(`ls ${q(join(world.mount, 'nodes'))}`);
  t.equal(listed.code, 0, `nodes/ lists: ${listed.stderr}`);
  t.equal(world.child.exitCode, null, 'still running: it did not detach');
});

t.test('--foreground with a bad token: the server refuses it (exit 1), the parser does not (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const r = await acheron(['world', '--foreground', '--control-url', control.url, '--token', 'not-a-token', '--mount', join(dir, 'mnt')]);
  t.equal(r.code, 1, `exit 1: ${r.stderr}`);
  t.notMatch(r.stderr, /Unknown argument/, 'the option is known');
  t.match(r.stderr, /401/, 'the token was refused');
});

t.test('SIGHUP in the foreground: logged, the mount stays; a SIGTERM after it stops it cleanly', async (t) => {
  const world = await startWorld(t, { url: control.url, token: control.adminToken });
  process.kill(world.child.pid as number, 'SIGHUP');
  // Either line: the mount can be live a moment before the daemon counts itself started (CI).
  await waitFor(async () => /SIGHUP(?: while starting)?: nothing to reload/.test(await readFile(world.logFile, 'utf8')), {
    what: 'the SIGHUP log line',
    timeoutMs: 10_000,
  });
  const listed = await sh(`ls ${q(join(world.mount, 'nodes'))}`);
  t.equal(listed.code, 0, `still serving: nodes/ lists (${listed.stderr})`);
  t.equal(world.child.exitCode, null, 'still running (SIGHUP used to end it, unmount left undone)');
  process.kill(world.child.pid as number, 'SIGTERM');
  t.same(await world.exited, { code: 0, signal: null }, 'then SIGTERM: exit 0');
  t.notOk(await isMounted(world.mount), 'unmounted');
});

t.test('--daemon from a terminal that then goes away, and a SIGHUP: the daemon keeps serving', async (t) => {
  const dir = await tempDir(t, 'acheron-fixcli-hup-');
  const mount = join(dir, 'mnt');
  const logFile = join(dir, 'world.log');
  let pid: number | undefined;
  t.teardown(async () => {
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await waitFor(async () => !(await isMounted(mount)), { what: 'the daemon unmounting', timeoutMs: 15_000 }).catch(() => undefined);
    }
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  const command = ['node', ACHERON, 'world', '--daemon', '--control-url', control.url, '--token', control.adminToken, '--mount', mount, '--log-file', logFile];
  // script(1) gives the command a terminal of its own, which closes when the command (the waiting parent) has exited.
  const started = await sh(`script -qec ${q(command.map(q).join(' '))} /dev/null`, { timeoutMs: 60_000 });
  t.equal(started.code, 0, `the parent reported the daemon live (${started.stdout.trim()} ${started.stderr.trim()})`);
  pid = Number((await readFile(pidLockPath('mount', join(await realpath(dir), 'mnt')), 'utf8')).split('\n')[0]);
  t.ok(pid > 0, `the daemon's pid from its mount lock (${pid})`);
  // An operator finds a mount's daemon in ps: it used to show only `node .../acheron.js world`.
  const shown = (await sh(`ps -o args= -p ${pid}`)).stdout.trim();
  t.ok(shown.includes(`--mount ${resolve(mount)}`), `ps names the mount: ${shown}`);
  t.ok(shown.includes(`--control-url ${control.url}`), 'and the control server');
  t.notOk(shown.includes(control.adminToken), 'never the token');
  // Rotated first, as logrotate does: the SIGHUP line goes to the log file made again at its path.
  await rename(logFile, `${logFile}.1`);
  process.kill(pid, 'SIGHUP');
  await waitFor(async () => (await readFile(logFile, 'utf8')).includes('SIGHUP: nothing to reload'), {
    what: 'the SIGHUP log line in the reopened log file',
    timeoutMs: 10_000,
  });
  const listed = await sh(`ls ${q(join(mount, 'nodes'))}`);
  t.equal(listed.code, 0, `its terminal gone and after a SIGHUP, it still serves (${listed.stderr})`);
  t.doesNotThrow(() => process.kill(pid as number, 0), 'the daemon is still running');
});
