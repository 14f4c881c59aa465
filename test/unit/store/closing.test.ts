// Closing what was opened, also when something fails: every part is closed, the first failure is
// the one reported, and a file's descriptor goes even when its last write does not.
import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { AppendLog } from '../../../src/store/append-log.js';
import { closeAll, closeAndThrow, OpenedParts } from '../../../src/store/closing.js';
import { StateJournal } from '../../../src/store/state-journal.js';
import { patchFileHandle } from '../../helpers/file-faults.js';
import { tempDir } from '../../helpers/node.js';
import { openFilesUnder } from '../../helpers/open-files.js';

const part = (name: string, closed: string[], fails = false) => ({
  close: async () => {
    closed.push(name);
    if (fails) throw new Error(`${name} failed`);
  },
});

t.test('closeAll: every part in order, also after a failure; the first failure is thrown', async (t) => {
  const closed: string[] = [];
  await t.rejects(closeAll([part('a', closed), part('b', closed, true), part('c', closed, true), part('d', closed)]), { message: 'b failed' });
  t.same(closed, ['a', 'b', 'c', 'd']);
  const none: string[] = [];
  await closeAll([part('x', none)]);
  t.same(none, ['x'], 'resolves when all close');
});

t.test('OpenedParts: the last opened is closed first; closeAndThrow keeps the set-up error', async (t) => {
  const closed: string[] = [];
  const opened = new OpenedParts();
  t.equal(opened.keep(part('first', closed)).close instanceof Function, true, 'keep returns the part');
  opened.keep(part('second', closed, true));
  const setUp = new Error('the set-up failed');
  await t.rejects(closeAndThrow(opened, setUp), setUp, 'the set-up error, not the close failure');
  t.same(closed, ['second', 'first']);
});

t.test('AppendLog.close: the file is closed even when its last batch fails', async (t) => {
  const dir = await tempDir(t);
  const log = await AppendLog.open<string>(join(dir, 'log'), async () => {
    throw new Error('the last batch failed');
  });
  t.equal((await openFilesUnder(dir)).length, 1, 'open: one descriptor');
  log.queue('x');
  await t.rejects(log.close(), { message: 'the last batch failed' });
  t.same(await openFilesUnder(dir), [], 'closed anyway');
});

t.test('StateJournal.close: the file is closed even when the last sync fails', async (t) => {
  const dir = await tempDir(t);
  const { journal } = await StateJournal.open(join(dir, 'state.json'), { sync: 'batch', log: pino({ level: 'silent' }) });
  await journal.set('k', 1);
  const restore = await patchFileHandle(t, 'datasync', async () => {
    throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  });
  await t.rejects(journal.close(), { code: 'EIO' });
  restore();
  t.same(await openFilesUnder(dir), [], 'closed anyway');
  await t.rejects(journal.set('k', 2), /is closed/, 'and refuses writes after');
});
