import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { tempDir } from '../../helpers/node.js';
import { reapedPid } from '../../helpers/process.js';
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

t.test("opening removes the temp files of writers that died (a kill -9 during a compaction), never a live writer's", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'state.json');
  const dead = await reapedPid();
  const live = spawn('sleep', ['60']);
  t.teardown(() => void live.kill('SIGKILL'));
  await once(live, 'spawn');
  const now = Date.now();
  const leftovers = {
    dead: `state.json.tmp-${dead}-${now}`,
    live: `state.json.tmp-${live.pid}-${now}`,
    // This process's own pid, from before it started: a daemon that got the same pid again (pid 1 in a container).
    ownOld: `state.json.tmp-${process.pid}-1`,
    ownNow: `state.json.tmp-${process.pid}-${now}`,
    // Not a temp file of this journal: another file's, and a name of another shape.
    other: `state.json.other.tmp-${dead}-${now}`,
    odd: `state.json.tmp-${dead}`,
  };
  for (const name of Object.values(leftovers)) await writeFile(join(dir, name), 'half a snapshot');
  const lines: string[] = [];
  const logged = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const { journal } = await StateJournal.open(path, { sync: 'always', log: logged });
  await journal.close();
  const names = await readdir(dir);
  t.notOk(names.includes(leftovers.dead), "a dead writer's temp file is removed");
  t.notOk(names.includes(leftovers.ownOld), 'so is one named after this pid but older than this process');
  for (const kept of ['live', 'ownNow', 'other', 'odd'] as const) t.ok(names.includes(leftovers[kept]), `${kept}: kept`);
  const info = lines.map((line) => JSON.parse(line) as { level: number; removed?: string[] }).find((line) => line.removed);
  t.equal(info?.level, 30, 'logged at info');
  t.same(info?.removed?.sort(), [leftovers.dead, leftovers.ownOld].sort(), 'naming what was removed');
});
