// The runtime journal holds its state file's pid lock from open to close, and gives it up when it
// cannot be opened (the daemon's start-up then fails: the lock must not outlive it).
import t from 'tap';
import { mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { tempDir } from '../../helpers/node.js';
import { reapedPid } from '../../helpers/process.js';
import { RuntimeJournal } from '../../../src/node/runtime-journal.js';
import { pidLockPath } from '../../../src/store/pid-lock.js';

const quiet = pino({ level: 'silent' });

t.test('the state file is locked from open to close', async (t) => {
  const stateFile = join(await realpath(await tempDir(t)), 'node.json');
  const lock = pidLockPath('state', stateFile);
  const journal = await RuntimeJournal.open(stateFile, 'always', quiet);
  t.same((await readFile(lock, 'utf8')).split('\n'), [String(process.pid), stateFile, ''], 'the lock names this process and the state file');
  await journal.close();
  await t.rejects(readFile(lock), { code: 'ENOENT' }, 'close gives it up');
});

t.test('a journal that cannot be opened leaves no lock behind', async (t) => {
  const dir = await realpath(await tempDir(t));
  const stateFile = join(dir, 'state', 'node.json');
  // Its journal's path is a directory: reading it fails.
  await mkdir(`${stateFile}.runtime-services.json`, { recursive: true });
  await t.rejects(RuntimeJournal.open(join(dir, 'state', '..', 'state', 'node.json'), 'always', quiet), { code: 'EISDIR' }, 'open fails');
  await t.rejects(readFile(pidLockPath('state', stateFile)), { code: 'ENOENT' }, 'and the lock is gone');
});

t.test('opening removes what writers that died left of the state file (its credentials) and of its journal', async (t) => {
  const dir = await realpath(await tempDir(t));
  const stateFile = join(dir, 'node.json');
  const pid = await reapedPid();
  const leftovers = [`node.json.tmp-${pid}-${Date.now()}`, `node.json.runtime-services.json.tmp-${pid}-${Date.now()}`];
  for (const name of leftovers) await writeFile(join(dir, name), '{');
  const journal = await RuntimeJournal.open(stateFile, 'always', quiet);
  await journal.close();
  t.same(
    (await readdir(dir)).filter((name) => name.includes('.tmp-')),
    [],
    'both removed',
  );
});
