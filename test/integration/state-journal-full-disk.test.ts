// The state journal on a disk that fills up (a real 64 KiB tmpfs): a write the disk has no room for
// fails and leaves nothing behind, so the next acknowledged change is not glued onto half a line (it
// was lost at the next start); a journal with a torn tail opens on a full disk (it refused to start);
// a compaction that fails leaves no temp file and is said once in the log; after a failed write the
// rewrite that makes the file whole again is not tried at every later write.
import t from 'tap';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { sh, q, waitFor } from '../helpers/process.js';
import { tmpfsDir } from '../helpers/tmpfs.js';
import { MISSING_RETRY_MS, StateJournal } from '../../src/store/state-journal.js';
import { RuntimeJournal } from '../../src/node/runtime-journal.js';
import type { ServiceStateView } from '../../src/runtime/service-state.js';

const dir = await tmpfsDir(t, '64k');

const lines: string[] = [];
const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
const filler = join(dir, 'filler');
/** Fills the disk but for about `leave` bytes (tmpfs counts whole 4 KiB pages). */
const fill = (leave: number) => sh(`df -B1 --output=avail ${q(dir)} | tail -1 | xargs -I{} sh -c 'head -c $(( {} - ${leave} )) /dev/zero > ${q(filler)}'`);
const big = (n: number) => ({ pad: 'x'.repeat(n) });

t.test('a write with no room fails; the next one, once there is room, is kept after a crash', async (t) => {
  const path = join(dir, 'a.json');
  const { journal } = await StateJournal.open(path, { sync: 'always', log });
  await journal.set('first', 1);
  await fill(2048);
  await t.rejects(
    journal.set('big', big(8000)),
    { code: 'ENOSPC', message: new RegExp(`^state journal ${path}: ENOSPC`) },
    'refused, naming the journal, ENOSPC kept for the errno',
  );
  t.match(
    await journal.durabilityProblem(),
    new RegExp(`^the state journal ${path} could not make a change durable: ENOSPC`),
    'a problem naming the file (/readyz)',
  );
  await rm(filler);
  // A probe at most once a second (the check above made one).
  await waitFor(async () => (await journal.durabilityProblem()) === undefined, { what: 'room again: a probe clears it before any change is written' });
  await journal.set('disabled', true);
  // No close: as after kill -9, only what was acknowledged counts.
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(restored.problems, [], 'no torn or glued line');
  t.equal(restored.values.get('disabled'), true, 'the change acknowledged after the failure is there');
  t.equal(restored.values.get('first'), 1);
  await Promise.all([journal.close(), reopened.close()]);
  await rm(path);
});

t.test('a torn tail on a full disk: cut off, the journal opens', async (t) => {
  const path = join(dir, 'b.json');
  await writeFile(path, '{"key":"a","value":1}\n{"key":"b","value":"half');
  await fill(0);
  const { journal, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(Object.fromEntries(restored.values), { a: 1 });
  t.match(restored.problems[0], /torn by a crash or a failed write; cut off/);
  t.equal(await readFile(path, 'utf8'), '{"key":"a","value":1}\n', 'the tail is gone from the file');
  await journal.close();
  await rm(filler);
  await rm(path);
});

t.test('a compaction with no room: logged once, no temp file left, done later', async (t) => {
  const path = join(dir, 'c.json');
  lines.length = 0;
  const { journal } = await StateJournal.open(path, { sync: 'always', log, compactAtBytes: 4096 });
  t.teardown(() => journal.close());
  for (let i = 0; i < 4; i++) await journal.set('k', big(900));
  // One page left: the append past the file's first page takes it, the compacted copy finds none.
  await fill(4096);
  await journal.set('k', big(900));
  // The write is acknowledged before the compaction after it: wait for that too.
  await journal.flush();
  t.equal(lines.filter((l) => l.includes('compaction failed')).length, 1, 'said once in the log');
  t.equal(await journal.durabilityProblem(), undefined, 'every change is durable: no problem (/readyz)');
  t.same(
    (await readdir(dir)).filter((name) => name.includes('.tmp-')),
    [],
    'no temp file left',
  );
  await rm(filler);
  for (let i = 0; i < 4; i++) await journal.set('k', big(900));
  await journal.flush();
  t.ok((await readFile(path, 'utf8')).length < 4096, 'compacted once there was room');
});

t.test('always: after a failed write, the rewrite is tried once, then at most once a second, not at every write; and at close', async (t) => {
  const path = join(dir, 'd.json');
  lines.length = 0;
  const { journal } = await StateJournal.open(path, { sync: 'always', log });
  await journal.set('first', 1);
  // Full: appends into the file's one page still fit, a whole copy of it does not.
  await fill(0);
  await t.rejects(journal.set('big', big(8000)), { code: 'ENOSPC' }, 'a write with no room fails');
  t.match(await journal.durabilityProblem(), new RegExp(`^the state journal ${path} could not make a change durable: ENOSPC`), 'a problem naming the file');
  const started = Date.now();
  for (let i = 0; i < 20; i++) await journal.set('k', i);
  // A write is acknowledged before the rewrite after it: wait for that too.
  await journal.flush();
  const tookMs = Date.now() - started;
  const tries = lines.filter((l) => l.includes('compaction failed')).length;
  // Each try rewrites the whole file: one per write was 20 here. Allow a second try for a slow host.
  t.ok(tries >= 1 && tries <= 1 + Math.floor(tookMs / 1000), `20 acknowledged writes tried the rewrite ${tries} time(s) in ${tookMs} ms`);
  t.notOk(journal.allDurable, 'what the failed write left out is still missing');
  t.equal(
    await journal.durabilityProblem(),
    undefined,
    "appends work again: no problem for /readyz (the rewrite of what is missing is the log's and allDurable's to say)",
  );
  await new Promise((resolve) => setTimeout(resolve, MISSING_RETRY_MS + 100));
  await journal.set('k', 20);
  await journal.flush();
  t.equal(lines.filter((l) => l.includes('compaction failed')).length, tries + 1, 'a write after the interval tries again');
  await rm(filler);
  await journal.close();
  t.ok(journal.allDurable, 'close tried again, at once, and there was room');
  const { journal: reopened, restored } = await StateJournal.open(path, { sync: 'always', log });
  t.same(restored.problems, []);
  t.equal(restored.values.get('k'), 20, 'every acknowledged write is there');
  t.equal(restored.values.get('first'), 1);
  t.same(restored.values.get('big'), big(8000), 'and the change the node kept in effect after its write failed');
  await reopened.close();
  await rm(path);
});

t.test('a clean stop in batch mode on a full disk: the node journal says what is lost, and that it was not clean', async (t) => {
  const stateFile = join(dir, 'n.json');
  const logged: string[] = [];
  const nodeLog = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const clean = await RuntimeJournal.open(stateFile, 'batch', nodeLog);
  await clean.persistence('s')({ kind: 'job-removed', invocationId: 'none' });
  t.equal(await clean.close(), true, 'room enough: durable');
  const journal = await RuntimeJournal.open(stateFile, 'batch', nodeLog);
  await fill(0);
  // Acknowledged at once (batch): written only within 100 ms, or at the stop.
  await journal.persistence('s')({ kind: 'state', state: { pad: 'x'.repeat(8000) } as unknown as ServiceStateView });
  t.equal(await journal.close(), false, 'not durable: the stop is not clean');
  t.match(
    logged.map((line) => (JSON.parse(line) as { msg: string }).msg),
    [
      /^state journal: final flush failed \(.*ENOSPC.*\); changes acknowledged since its last durable write are lost: invocations that ended meanwhile show as interrupted/,
    ],
  );
  await rm(filler);
});
