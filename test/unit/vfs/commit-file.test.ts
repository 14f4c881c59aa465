// The commit rule driven in process through the VFS (our `inject`): write splits, flush timing,
// the O_RDWR transaction and the errors, without FUSE.
import t from 'tap';
import { rejectsErrno } from '../../helpers/errno.js';
import fc from 'fast-check';
import { commitFile, commitWhole, type CommitTarget } from '../../../src/vfs/commit-file.js';
import { FsError } from '../../../src/errors/errno.js';
import type { Handle } from '../../../src/vfs/node.js';

const O_WRONLY = 1;
const O_RDWR = 2;

function target(overrides: Partial<CommitTarget> = {}) {
  const commits: string[] = [];
  const recorded: string[] = [];
  const t: CommitTarget = {
    file: 'control/invoke.json',
    maxBytes: 1024,
    limitName: 'runtime.max_input_bytes',
    admit() {},
    async commit(payload) {
      const text = payload.toString();
      JSON.parse(text); // an invalid payload throws here like the runtime's EINVAL
      commits.push(text);
      return Buffer.from(`result of ${text}`);
    },
    record(error) {
      recorded.push(error.errno);
    },
    changedMs: () => 0,
    ...overrides,
  };
  return { target: t, commits, recorded };
}

async function openHandle(tg: CommitTarget, flags = O_WRONLY): Promise<Required<Handle>> {
  return (await commitFile(tg).open!(flags)) as Required<Handle>;
}

t.test('shell redirection: flush before data, write, flush, release → one commit', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg);
  await h.flush();
  await h.write(0, Buffer.from('{"a":1}\n'));
  await h.flush();
  await h.release();
  t.same(commits, ['{"a":1}\n']);
});

t.test('(cat a; cat b) > f: an unfinished prefix waits for the next flush', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg);
  await h.write(0, Buffer.from('{"a":'));
  await h.flush();
  t.same(commits, [], 'nothing yet');
  await h.write(5, Buffer.from('2}'));
  await h.flush();
  await h.release();
  t.same(commits, ['{"a":2}']);
});

t.test('any split of a payload into writes commits exactly those bytes once', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.json({ maxDepth: 3 }).filter((s) => s.startsWith('{')),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.boolean(),
      async (text, cuts, flushBetween) => {
        const { target: tg, commits } = target({ maxBytes: 1 << 20 });
        const h = await openHandle(tg);
        const data = Buffer.from(text);
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        let at = 0;
        for (const point of [...points, data.length]) {
          if (point > at) await h.write(at, data.subarray(at, point));
          at = Math.max(at, point);
          if (flushBetween) await h.flush();
        }
        await h.flush();
        await h.release();
        return commits.length === 1 && commits[0] === text;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('property held');
});

t.test('whitespace only is discarded; no write commits nothing', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg);
  await h.write(0, Buffer.from('  \n'));
  await h.flush();
  await h.release();
  const h2 = await openHandle(tg);
  await h2.flush();
  await h2.release();
  t.same(commits, []);
});

t.test('a syntax error fails the flush at once (the target rejects it)', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg);
  await h.write(0, Buffer.from('bad{'));
  await t.rejects(h.flush());
  t.same(commits, []);
});

t.test('release commits a pending payload; a prefix left at release still reaches the target', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg);
  await h.write(0, Buffer.from('{"r":1}'));
  await h.release();
  t.same(commits, ['{"r":1}']);
});

t.test('a hole is EINVAL, a payload past maxBytes is EFBIG; both recorded, nothing committed', async (t) => {
  const { target: tg, commits, recorded } = target({ maxBytes: 8 });
  const h = await openHandle(tg);
  await rejectsErrno(t, h.write(4, Buffer.from('{}')), 'EINVAL');
  await rejectsErrno(t, h.flush(), 'EINVAL', 'the close() of a poisoned open fails too');
  const h2 = await openHandle(tg);
  await rejectsErrno(t, h2.write(0, Buffer.from('{"toolong":1}')), 'EFBIG');
  await h2.release();
  t.same(commits, []);
  t.same(recorded, ['EINVAL', 'EFBIG']);
});

t.test('SPEC §3: EFBIG on the write that crosses the limit, on every later write, and on every close()', async (t) => {
  const { target: tg, commits, recorded } = target({ maxBytes: 10 });
  const h = await openHandle(tg, O_RDWR);
  await h.flush(); // bash's first flush, before any data
  t.equal(await h.write(0, Buffer.from('{"a":')), 5, 'writes below the limit are taken');
  const crossing = await h.write(5, Buffer.from('"0123456789"}')).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.ok(crossing instanceof FsError && crossing.errno === 'EFBIG', 'the crossing write is EFBIG');
  t.equal(
    (crossing as Error).message,
    'control/invoke.json: payload of 18 bytes or more exceeds runtime.max_input_bytes (10 bytes)',
    'the message names the file and the limit',
  );
  await rejectsErrno(t, h.write(18, Buffer.from('\n')), 'EFBIG', 'a later write');
  await rejectsErrno(t, h.flush(), 'EFBIG', 'close()');
  await rejectsErrno(t, h.flush(), 'EFBIG', 'a second close() of a dup');
  await rejectsErrno(t, h.read(0, 100), 'EFBIG', 'the committing read of a transaction');
  await h.release();
  t.same(commits, [], 'nothing committed');
  t.same(recorded, ['EFBIG'], 'recorded once');
});

t.test('the errno of a refused write comes back after the error is recorded (a relayed record takes a while)', async (t) => {
  let recordedAt = 0;
  const { target: tg } = target({
    maxBytes: 4,
    record: () => new Promise<void>((resolve) => setTimeout(() => ((recordedAt = Date.now()), resolve()), 20)),
  });
  const hole = await openHandle(tg);
  await rejectsErrno(t, hole.write(2, Buffer.from('{}')), 'EINVAL', 'a hole');
  t.ok(recordedAt > 0, 'recorded before the hole answered');
  recordedAt = 0;
  await rejectsErrno(t, (await openHandle(tg)).write(0, Buffer.from('{"big":1}')), 'EFBIG', 'past the limit');
  t.ok(recordedAt > 0, 'recorded before EFBIG answered');
  recordedAt = 0;
  await rejectsErrno(t, commitWhole(tg, Buffer.from([0x22, 0xff, 0x22]), false), 'EINVAL', 'not UTF-8');
  t.ok(recordedAt > 0, 'recorded before EINVAL answered');
});

t.test('messages name the file and the limit they are about', async (t) => {
  const messages: string[] = [];
  const { target: tg } = target({ file: 'config.json', maxBytes: 4, limitName: 'the config.json limit', record: (error) => void messages.push(error.message) });
  await (await openHandle(tg)).write(0, Buffer.from('{"big":1}')).catch(() => undefined);
  await (await openHandle(tg)).write(3, Buffer.from('{}')).catch(() => undefined);
  const truncated = await commitFile(tg).truncate!(5).then(
    () => '',
    (error: Error) => error.message,
  );
  t.same(messages, [
    'config.json: payload of 9 bytes or more exceeds the config.json limit (4 bytes)',
    'config.json: write at offset 3 leaves a hole or rewrites a committed payload (the next byte goes at 0)',
    'config.json: can be truncated only to 0, not 5 (it takes whole documents)',
  ]);
  t.equal(truncated, messages[2], 'the truncate gets the error it recorded');
});

t.test('bytes that are not UTF-8 are EINVAL, recorded, and never reach the target', async (t) => {
  const { target: tg, commits, recorded } = target();
  const h = await openHandle(tg);
  await h.write(0, Buffer.from('{"u":"\xff\xfe"}', 'latin1'));
  await rejectsErrno(t, h.flush(), 'EINVAL');
  await h.release();
  t.same(commits, []);
  t.same(recorded, ['EINVAL']);
});

t.test('O_APPEND: writes follow on whatever offset the kernel gives (its stale idea of the size)', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg, O_WRONLY | 0o2000);
  await h.write(42, Buffer.from('{"ap":'));
  await h.write(7, Buffer.from('"pend"}'));
  await h.flush();
  await h.release();
  t.same(commits, ['{"ap":"pend"}']);
});

t.test('O_RDWR: the first read after a write commits and returns this outcome from its start', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg, O_RDWR);
  await h.write(0, Buffer.from('{"x":1}'));
  const first = await h.read(7, 4);
  const rest = await h.read(11, 100);
  const end = await h.read(100, 100);
  t.equal(first.toString() + rest.toString(), 'result of {"x":1}');
  t.equal(end.length, 0, 'then end of file');
  await h.flush();
  await h.release();
  t.same(commits, ['{"x":1}'], 'flush and release after the read commit nothing more');
});

t.test('O_RDWR: whitespace only is discarded at the read too, which then reads as without a write', async (t) => {
  const { target: tg, commits, recorded } = target();
  const h = await openHandle(tg, O_RDWR);
  await h.write(0, Buffer.from(' \n\t'));
  t.equal((await h.read(3, 100)).length, 0, 'end of file, no EINVAL');
  await h.write(3, Buffer.from('{"x":2}'));
  t.equal((await h.read(10, 100)).toString(), 'result of {"x":2}', 'the next payload starts after the whitespace');
  await h.release();
  t.same(commits, ['{"x":2}'], 'only the payload committed');
  t.same(recorded, [], 'nothing recorded as an error');
});

t.test('a fresh read returns end of file and commits nothing', async (t) => {
  const { target: tg, commits } = target();
  const h = await openHandle(tg, 0);
  t.equal((await h.read(0, 100)).length, 0);
  t.same(commits, []);
});

t.test('open for writing asks admit(); a read-only open does not', async (t) => {
  const { target: tg } = target({
    admit: () => {
      throw new FsError('EPERM', 'disabled');
    },
  });
  await rejectsErrno(t, commitFile(tg).open!(O_WRONLY), 'EPERM');
  t.ok(await commitFile(tg).open!(0));
});

/** A target whose file can be removed (a reload took its service): then alive, admit and commit say ENOENT. */
function removable() {
  let gone = false;
  const enoent = (): void => {
    if (gone) throw new FsError('ENOENT', 'service s has been removed');
  };
  const base = target();
  const commit = base.target.commit.bind(base.target);
  const tg: CommitTarget = {
    ...base.target,
    admit: enoent,
    alive: enoent,
    commit: async (payload, wantsOutcome) => {
      enoent();
      return commit(payload, wantsOutcome);
    },
  };
  const remove = (): void => {
    gone = true;
  };
  return { ...base, target: tg, remove };
}

t.test('SPEC §5: every later use of a handle opened before its service was removed is ENOENT', async (t) => {
  const { target: tg, commits, remove } = removable();
  const writer = await openHandle(tg);
  await writer.write(0, Buffer.from('{"n":'));
  const transaction = await openHandle(tg, O_RDWR);
  const reader = await openHandle(tg, 0);
  remove();
  await rejectsErrno(t, writer.write(5, Buffer.from('1}')), 'ENOENT', 'write');
  await rejectsErrno(t, writer.truncate(0), 'ENOENT', 'ftruncate');
  await rejectsErrno(t, writer.fsync(false), 'ENOENT', 'fsync');
  await rejectsErrno(t, writer.flush(), 'ENOENT', 'flush (close)');
  await rejectsErrno(t, transaction.write(0, Buffer.from('{}')), 'ENOENT', 'write of an O_RDWR open');
  await rejectsErrno(t, transaction.read(0, 100), 'ENOENT', 'read of an O_RDWR open');
  await rejectsErrno(t, reader.read(0, 100), 'ENOENT', 'read of a read-only open');
  await rejectsErrno(t, writer.flush(), 'ENOENT', 'a second close() of a dup');
  for (const h of [writer, transaction, reader]) await h.release();
  t.same(commits, [], 'nothing committed');
});

t.test('a flush waiting behind a committing read sees a removal that came meanwhile', async (t) => {
  const { target: tg, remove } = removable();
  let finish = (): void => undefined;
  const slow: CommitTarget = { ...tg, commit: () => new Promise((resolve) => (finish = () => resolve(Buffer.from('{}')))) };
  const h = await openHandle(slow, O_RDWR);
  await h.write(0, Buffer.from('{"r":1}'));
  const reading = h.read(0, 100);
  const flushing = h.flush();
  await new Promise((resolve) => setImmediate(resolve));
  remove();
  finish();
  t.equal((await reading).toString(), '{}', 'the read that committed before the removal gets its outcome');
  await rejectsErrno(t, flushing, 'ENOENT', 'the flush queued behind it');
});

t.test('truncate(0) is a no-op, truncate(n>0) is EINVAL, recorded as a refused write is (path and open)', async (t) => {
  const { target: tg, recorded } = target();
  const node = commitFile(tg);
  await node.truncate!(0);
  const h = await openHandle(tg);
  await h.truncate(0);
  t.same(recorded, [], 'truncate(0) records nothing');
  await rejectsErrno(t, node.truncate!(5), 'EINVAL');
  await rejectsErrno(t, h.truncate(5), 'EINVAL', 'ftruncate');
  t.same(recorded, ['EINVAL', 'EINVAL'], 'each refusal recorded');
});
