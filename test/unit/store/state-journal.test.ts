import t from 'tap';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { tempDir } from '../../helpers/node.js';
import { BATCH_SYNC_MS, StateJournal } from '../../../src/store/state-journal.js';

const log = pino({ level: 'silent' });

/** Journals a test left open to act out a crash: closed once it has looked, so no file stays open. */
const closeBoth = (...journals: StateJournal[]): Promise<unknown> => Promise.all(journals.map((j) => j.close()));

t.test('values survive a reopen; last write wins; deletes stick', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'always', log });
  await journal.set('a', { n: 1 });
  await journal.set('b', { n: 2 });
  await journal.set('a', { n: 3 });
  await journal.delete('b');
  // No close: as after kill -9, only what was acknowledged counts.
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(Object.fromEntries(restored.values), { a: { n: 3 } });
  t.same(restored.problems, []);
  await closeBoth(journal, reopened);
});

t.test('concurrent writes share syncs and all become durable', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'always', log });
  await Promise.all(Array.from({ length: 200 }, (_, i) => journal.set(`k${i % 10}`, { i })));
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.equal(restored.values.size, 10);
  t.same(restored.values.get('k9'), { i: 199 });
  await closeBoth(journal, reopened);
});

t.test('batch mode: acknowledged at once, on disk within the batch window', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'batch', log });
  await journal.set('x', 1);
  await journal.flush();
  t.match(await readFile(path, 'utf8'), /"key":"x"/);
  await journal.close();
});

t.test('a torn last line is skipped and reported; the file is rewritten clean', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'state.json');
  await writeFile(path, '{"key":"a","value":1}\n{"key":"b","val');
  const { journal, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(Object.fromEntries(restored.values), { a: 1 });
  t.match(restored.problems[0], /torn/);
  await journal.close();
  t.equal(await readFile(path, 'utf8'), '{"key":"a","value":1}\n');
});

t.test('a corrupt file is set aside (renamed), what parses is kept', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'state.json');
  await writeFile(path, '{"key":"a","value":1}\ngarbage\n{"key":"c","value":3}\n');
  const { journal, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(Object.fromEntries(restored.values), { a: 1, c: 3 });
  t.match(restored.problems.join('\n'), /line 2.*set the damaged file aside/s);
  const aside = (await readdir(dir)).filter((name) => name.includes('.corrupt-'));
  t.equal(aside.length, 1, 'the damaged file is kept for inspection');
  await journal.close();
});

t.test('compaction keeps the latest values and shrinks the file', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'always', log, compactAtBytes: 2000 });
  for (let i = 0; i < 300; i++) await journal.set(`k${i % 3}`, { i, pad: 'x'.repeat(20) });
  await journal.close();
  const text = await readFile(path, 'utf8');
  t.ok(text.length < 6000, `compacted (${text.length} bytes)`);
  await appendFile(path, '');
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(restored.values.get('k2'), { i: 299, pad: 'x'.repeat(20) });
  await reopened.close();
});

t.test('batch mode setLatest: one record per key per batch, the value as it is when written', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'batch', log });
  let state = 0;
  let calls = 0;
  const current = (): unknown => {
    calls++;
    return { state };
  };
  for (state = 1; state <= 100; state++) await journal.setLatest('svc', current);
  state = 100;
  await journal.setLatest('gone', () => ({ never: 'written' }));
  await journal.delete('gone');
  await journal.setLatest('overridden', () => ({ old: true }));
  await journal.set('overridden', { new: true });
  await journal.flush();
  t.equal(calls, 1, 'serialized once');
  const records = (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { key: string; value?: unknown });
  t.same(
    records.filter((r) => r.key === 'svc').map((r) => r.value),
    [{ state: 100 }],
    'one record, the latest state',
  );
  t.notOk(
    records.some((r) => r.key === 'gone'),
    'a delete cancels a deferred value',
  );
  t.same(
    records.filter((r) => r.key === 'overridden').map((r) => r.value),
    [{ new: true }],
    'a later set wins over a deferred one',
  );
  await journal.close();
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'batch', log });
  t.same(restored.values.get('svc'), { state: 100 });
  await reopened.close();
});

t.test('batch mode whenDurable: resolves with the batch that writes what was set, callers of one batch share it', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'batch', log });
  const onDisk = async (): Promise<string[]> => (await readFile(path, 'utf8')).trim().split('\n').filter(Boolean);
  const started = Date.now();
  await journal.setLatest('a', () => 1);
  const first = journal.whenDurable();
  await journal.set('b', 2);
  t.equal(journal.whenDurable(), first, 'a second caller before the batch is taken shares its promise');
  await first;
  t.ok(Date.now() - started >= BATCH_SYNC_MS - 5, 'waited for the batch timer, no sync of its own');
  t.same((await onDisk()).length, 2, 'both lines on disk when it resolves');
  await journal.setLatest('a', () => 3);
  const next = journal.whenDurable();
  t.not(next, first, 'after the batch, the next one is waited for');
  await next;
  t.match((await onDisk()).at(-1), /"key":"a","value":3/, 'the later value on disk');
  await journal.close();
  await t.rejects(journal.whenDurable(), /is closed/, 'closed: refused');
});

t.test('always mode setLatest: written and durable before it resolves', async (t) => {
  const path = join(await tempDir(t), 'state.json');
  const { journal } = await StateJournal.open(path, { sync: 'always', log });
  await journal.setLatest('k', () => ({ now: 1 }));
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(restored.values.get('k'), { now: 1 });
  await closeBoth(journal, reopened);
});
