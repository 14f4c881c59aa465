// One control server per file-store data dir (docs/control-protocol.md "Storage": one server): a
// second `acheron control` on a data dir a live server uses, under any spelling of it, exits 1
// naming the first and leaves the store alone; once the first has stopped, the next start works.
// Two servers on one data dir each kept their own catalog and seq counter over the same journals.
// A SIGHUP does not end a server (it has nothing to reload): one used to die of it, its lock left.
import t from 'tap';
import { access, readFile, realpath, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startControl } from '../helpers/control.js';
import { ACHERON, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { pidLockPath } from '../../src/store/pid-lock.js';

const control = await startControl(t);
const link = join(await tempDir(t), 'data-link');
await symlink(control.dataDir, link);
const events = join(control.dataDir, 'node-service-events.ndjson');

t.test('a second server on the data dir, through a symlink: exit 1 naming the live one, the store untouched', async (t) => {
  const before = await readFile(events, 'utf8').catch(() => '');
  const listen = ['--listen', `127.0.0.1:${await freePort()}`, '--http-listen', `127.0.0.1:${await freePort()}`];
  // Bounded: a second server that starts serves until killed.
  const second = await sh(`exec node ${q(ACHERON)} control --data-dir ${q(link)} ${listen.map(q).join(' ')}`, { timeoutMs: 30_000 });
  t.equal(second.code, 1, `it did not start (${second.stderr.trim()})`);
  t.match(
    second.stderr,
    new RegExp(
      `^acheron: \\S*${control.dataDir.split('/').at(-1)} is used by a live acheron daemon \\(pid ${control.child.pid}, lock /\\S+\\); stop it first or pick another --data-dir\\n$`,
    ),
  );
  t.equal(await readFile(events, 'utf8').catch(() => ''), before, 'the event log as it was');
});

t.test('once the first has stopped, a server starts on the data dir', async (t) => {
  t.match(await control.stop(), { code: 0 });
  const next = await startControl(t, { dataDir: link, tokens: { admin: control.adminToken, user: control.userToken } });
  t.equal((await fetch(`${next.httpUrl}/readyz`)).status, 200, 'ready');
  t.match(await next.stop(), { code: 0 });
});

t.test('SIGHUP: logged, and the server runs on; its stop after it is the clean one (its log line, no lock left)', async (t) => {
  const server = await startControl(t);
  const lock = pidLockPath('control', await realpath(server.dataDir));
  await access(lock);
  process.kill(server.child.pid as number, 'SIGHUP');
  await waitFor(async () => (await readFile(server.logFile, 'utf8')).includes('SIGHUP: nothing to reload'), { what: 'the SIGHUP log line', timeoutMs: 10_000 });
  t.equal((await fetch(`${server.httpUrl}/readyz`)).status, 200, 'still serving');
  t.match(await server.stop(), { code: 0, signal: null }, 'SIGTERM then: exit 0 (SIGHUP used to end it, 129)');
  t.match(await readFile(server.logFile, 'utf8'), /"msg":"control server stopped"/);
  await t.rejects(access(lock), { code: 'ENOENT' }, 'its pid lock removed');
});
