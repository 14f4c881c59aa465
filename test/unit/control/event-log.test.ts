// SPEC §6: seqs are never reused and never skipped. A failed append (a full disk, a failed sync)
// gives no seq away and leaves nothing in the file for a later start to apply; a torn last line
// found at start-up spends its seq (a watcher may have seen it) and the history restarts after it.
// Write failures are injected by patching FileHandle (test/helpers/file-faults.ts) for the span of one case.
import t, { type Test } from 'tap';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { patchFileHandle, partialWrite } from '../../helpers/file-faults.js';
import { tempDir } from '../../helpers/node.js';
import { EVENT_LOG_FILE, EventLog, type CatalogEvent } from '../../../src/control/event-log.js';
import { ProtocolError } from '../../../src/protocol/errors.js';

/** A logger that keeps the messages it was given (the log's problems at start-up go there). */
function recordingLog(): { log: Logger; messages: string[] } {
  const messages: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
  return { log, messages };
}

/** Event `n` of node `n`, told apart by its node_name (`e<n>`). */
const event = (n: number): Parameters<EventLog['append']>[0] => ({
  kind: 'upsert',
  timestamp_ms: 1_700_000_000_000 + n,
  node: { node_id: 'n', node_name: `e${n}`, platform: {}, labels: {}, state: 'online', services: [] },
  delta: { changed: true, timestamp_ms: 1_700_000_000_000 + n, added: [], updated: [], removed: [] },
});

/** A closed log of `count` events: its dir, its file and the file's text. */
async function logWith(t: Test, count: number): Promise<{ dir: string; path: string; whole: string }> {
  const dir = await tempDir(t);
  const events = await EventLog.open({ dir, log: recordingLog().log });
  for (let n = 1; n <= count; n++) await events.append(event(n));
  await events.close();
  const path = join(dir, EVENT_LOG_FILE);
  return { dir, path, whole: await readFile(path, 'utf8') };
}

async function seqsOnDisk(dir: string): Promise<{ seqs: number[]; problems: string[]; head: number }> {
  const { log, messages } = recordingLog();
  const events = await EventLog.open({ dir, log });
  const seqs = events.takeUnarchived().map((e) => e.seq);
  const head = events.headSeq;
  await events.close();
  return { seqs, problems: messages, head };
}

t.test('a write that fails half-way: cut back, no seq given away, nothing for the next start to apply', async (t) => {
  const dir = await tempDir(t);
  const { log } = recordingLog();
  const events = await EventLog.open({ dir, log });
  const seen: number[] = [];
  events.onEvent((e) => seen.push(e.seq));
  await events.append(event(1));
  await events.append(event(2));
  const before = await readFile(join(dir, EVENT_LOG_FILE));
  // Part of the batch reaches the file, then the disk is full.
  const restore = await patchFileHandle(t, 'writev', partialWrite(20));
  const failed = await Promise.allSettled([events.append(event(3)), events.append(event(4))]);
  t.match(
    await events.durabilityProblem(),
    /^the event log \S+node-service-events\.ndjson could not make a change durable: ENOSPC/,
    'a problem all the same (/readyz), while a write of that size still fails',
  );
  restore();
  for (const outcome of failed) {
    t.equal(outcome.status, 'rejected', 'the writer is told it failed');
    const reason = (outcome as PromiseRejectedResult).reason as ProtocolError;
    t.ok(reason instanceof ProtocolError && reason.code === 'unavailable', `unavailable: ${String(reason)}`);
    t.match(reason.message, /ENOSPC.*nothing changed/, 'says why and that nothing changed');
  }
  t.same(await readFile(join(dir, EVENT_LOG_FILE)), before, 'the partial line was cut off');
  t.equal(events.headSeq, 2, 'head unchanged');
  t.equal(events.damage, undefined, 'not damaged: the cut worked');
  const next = await events.append(event(5));
  t.equal(next.seq, 3, 'the next event takes the next seq: no gap');
  t.equal(await events.durabilityProblem(), undefined, 'no problem once an append succeeds');
  t.same(seen, [1, 2, 3], 'listeners saw only durable events');
  t.same(
    events.retained().map((e) => e.seq),
    [1, 2, 3],
  );
  await events.close();
  const disk = await seqsOnDisk(dir);
  t.same(disk.seqs, [1, 2, 3], 'a restart applies only what was acknowledged');
  t.same(
    disk.problems.filter((m) => /torn|not JSON|lost/.test(m)),
    [],
    'and finds nothing torn',
  );
  t.same(
    JSON.parse((await readFile(join(dir, EVENT_LOG_FILE), 'utf8')).trim().split('\n').at(-1) as string).node_name,
    'e5',
    'the last line is the event acknowledged last',
  );
});

t.test('a sync that fails after whole lines were written: they are cut off too', async (t) => {
  const dir = await tempDir(t);
  const events = await EventLog.open({ dir, log: recordingLog().log });
  await events.append(event(1));
  // The first sync fails; the cut-back's own sync goes through.
  let calls = 0;
  const restore = await patchFileHandle(t, 'datasync', async (original, self) => {
    if (calls++ === 0) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    return original.call(self);
  });
  await t.rejects(events.append(event(2)), { code: 'unavailable' }, 'the writer is told it failed');
  restore();
  t.equal((await events.append(event(3))).seq, 2, 'no gap');
  await events.close();
  const disk = await seqsOnDisk(dir);
  t.same(disk.seqs, [1, 2], 'the unsynced line is not in the log');
  t.same(
    JSON.parse((await readFile(join(dir, EVENT_LOG_FILE), 'utf8')).trim().split('\n').at(-1) as string).node_name,
    'e3',
    'seq 2 is the acknowledged event',
  );
});

t.test('a failed append that cannot be cut back: damaged, nothing appended until the cut works', async (t) => {
  const dir = await tempDir(t);
  const events = await EventLog.open({ dir, log: recordingLog().log });
  await events.append(event(1));
  const restoreWrite = await patchFileHandle(t, 'writev', partialWrite(7));
  const restoreTruncate = await patchFileHandle(t, 'truncate', async () => {
    throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
  });
  await t.rejects(events.append(event(2)), { code: 'unavailable' });
  restoreWrite();
  t.match(events.damage?.message, /could not be cut off \S+node-service-events\.ndjson at byte \d+: EIO/, 'damage names the offset and the cause');
  t.match(await events.durabilityProblem(), /could not make a change durable: a failed append could not be cut off/, 'the damage is the problem');
  await t.rejects(events.append(event(3)), { code: 'unavailable', message: /could not be cut off/ }, 'appends fail while the partial line is in the file');
  restoreTruncate();
  t.equal((await events.append(event(4))).seq, 2, 'once the cut works: the next seq, no gap');
  t.equal(events.damage, undefined, 'no longer damaged');
  t.equal(await events.durabilityProblem(), undefined, 'no problem');
  await events.close();
  t.same((await seqsOnDisk(dir)).seqs, [1, 2], 'nothing of the failed appends survives a restart');
});

t.test('a torn last line: its seq (and one more) is never used again, the history restarts after it, durably', async (t) => {
  const { dir, path, whole } = await logWith(t, 3);
  // The last event, seen by watchers, lost its end: storage kept only part of it.
  const torn = whole.slice(0, whole.lastIndexOf('{"seq":3') + 20);
  await writeFile(path, torn);

  const { log, messages } = recordingLog();
  const second = await EventLog.open({ dir, log });
  t.ok(
    messages.some((m) => /the last line \(20 bytes\) was torn by a crash; skipped/.test(m)),
    'the torn line is reported',
  );
  t.ok(
    messages.some((m) => /seqs 3\.\.4 are never used again/.test(m)),
    'and which seqs are spent',
  );
  t.equal(second.headSeq, 4, 'head is past the torn seq: a watcher that saw seq 3 cannot resume as if nothing was lost');
  t.same(second.retained(), [], 'nothing before the loss is replayed (resumes from before it must list again)');
  t.same(
    second.takeUnarchived().map((e) => e.seq),
    [1, 2],
    'the whole events are still applied to the catalog',
  );
  const text = await readFile(path, 'utf8');
  t.equal(
    text,
    whole.slice(0, whole.lastIndexOf('{"seq":3')) + '{"type":"lost","after":2,"seq":4}\n',
    'the torn bytes were replaced by a lost line, nothing else touched',
  );
  const next: CatalogEvent = await second.append(event(4));
  t.equal(next.seq, 5, 'the next event gets a fresh seq');
  await second.close();

  const { log: log3, messages: messages3 } = recordingLog();
  const third = await EventLog.open({ dir, log: log3 });
  t.same(
    messages3.filter((m) => /torn|lost|not JSON/.test(m)),
    [],
    'a clean start afterwards',
  );
  t.equal(third.headSeq, 5);
  t.same(
    third.retained().map((e) => e.seq),
    [5],
    'the history after the loss survives the restart; before it, still nothing',
  );
  await third.close();
});

t.test('a torn tail that names no seq spends the next one; a crash inside the repair loses no whole line', async (t) => {
  const { dir, path, whole } = await logWith(t, 2);
  await appendFile(path, '{"se');
  const second = await EventLog.open({ dir, log: recordingLog().log });
  t.equal(second.headSeq, 4, 'seq 3 (the torn one) and 4 are spent');
  await second.close();
  t.equal(await readFile(path, 'utf8'), whole + '{"type":"lost","after":2,"seq":4}\n');

  // A crash after the lost line went in but before the cut: the rest of the torn bytes follow it.
  await writeFile(path, whole + '{"type":"lost","after":2,"seq":4}\n' + 'nd":"upsert","timestamp_ms":17');
  const third = await EventLog.open({ dir, log: recordingLog().log });
  t.ok(third.headSeq >= 5, `never back: head ${third.headSeq}`);
  t.same(
    third.takeUnarchived().map((e) => e.seq),
    [1, 2],
    'every whole event is kept',
  );
  await third.close();
});

/** Holds each datasync until `release` lets the oldest held one go; `log` gets `write:<node names>` at each writev. */
async function heldSyncs(t: Test, log: string[]): Promise<{ release: () => void; held: () => number }> {
  const waiting: Array<() => void> = [];
  await patchFileHandle(t, 'writev', (original, self, args) => {
    const lines = Buffer.concat(args[0] as Buffer[])
      .toString()
      .trim()
      .split('\n');
    log.push(`write:${lines.map((line) => (JSON.parse(line) as { node_name?: string }).node_name ?? 'head').join(',')}`);
    return original.call(self, ...(args as never[]));
  });
  await patchFileHandle(t, 'datasync', async (original, self) => {
    await new Promise<void>((resolve) => waiting.push(resolve));
    return original.call(self);
  });
  return { release: () => waiting.shift()?.(), held: () => waiting.length };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

t.test('the next batch goes to the disk before the one just made durable is fanned out; seqs and order as ever', async (t) => {
  const dir = await tempDir(t);
  const events = await EventLog.open({ dir, log: recordingLog().log });
  const order: string[] = [];
  events.onEvent((e) => order.push(`event:${e.seq}:${e.node.node_name}`));
  const disk = await heldSyncs(t, order);
  const first = events.append(event(1));
  await until(() => disk.held() === 1);
  const queued = [events.append(event(2)), events.append(event(3))];
  disk.release();
  await first;
  await until(() => disk.held() === 1);
  disk.release();
  t.same(
    (await Promise.all(queued)).map((e) => e.seq),
    [2, 3],
  );
  t.same(order, ['write:e1', 'write:e2,e3', 'event:1:e1', 'event:2:e2', 'event:3:e3'], "the second batch's write came before the first batch's fan-out");
  await events.close();
  t.same((await seqsOnDisk(dir)).seqs, [1, 2, 3]);
});

t.test('a batch started during the fan-out before it that fails: its seqs are handed out again, nothing of it on disk', async (t) => {
  const dir = await tempDir(t);
  const events = await EventLog.open({ dir, log: recordingLog().log });
  const seen: number[] = [];
  events.onEvent((e) => seen.push(e.seq));
  // The first batch's sync waits for the test; the second batch's fails; the cut-back's goes through.
  let release!: () => void;
  let syncs = 0;
  await patchFileHandle(t, 'datasync', async (original, self) => {
    const call = ++syncs;
    if (call === 1) await new Promise<void>((resolve) => (release = resolve));
    if (call === 2) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    return original.call(self);
  });
  const first = events.append(event(1));
  await until(() => syncs === 1);
  const failed = Promise.allSettled([events.append(event(2)), events.append(event(3))]);
  release();
  t.equal((await first).seq, 1);
  t.same(
    (await failed).map((outcome) => outcome.status),
    ['rejected', 'rejected'],
    'its writers are told it failed',
  );
  t.equal((await events.append(event(4))).seq, 2, 'the next event gets the first seq the failed batch had');
  t.same(seen, [1, 2]);
  await events.close();
  t.same((await seqsOnDisk(dir)).seqs, [1, 2]);
});
