// One errno mapping (issue 10, item 12): the node's FUSE mount and its relay server (what WorldFS
// mounts see) answer the same failure with the same errno name, and log a bug, with its stack, alike.
import t from 'tap';
import { constants } from 'node:os';
import { pino } from 'pino';
import { fuseOperations } from '../../../src/fuse/operations.js';
import { RelayServer } from '../../../src/node/relay-server.js';
import type { RelayRequest } from '../../../src/protocol/types.gen.js';
import { Dispatcher } from '../../../src/vfs/dispatch.js';
import { tableDirectory } from '../../../src/vfs/directory.js';
import { answerErrno, errnoLabel, errnoNameOf, FsError } from '../../../src/errors/errno.js';
import { S_IFREG, type VNode } from '../../../src/vfs/node.js';

const nameOf = new Map(Object.entries(constants.errno).map(([name, number]) => [number, name]));
/** A system error as Node's fs gives it (an export's file system). */
const systemError = (code: string) =>
  Object.assign(new Error(`${code}: from the file system, open '/x'`), { code, errno: -(constants.errno as Record<string, number>)[code]!, syscall: 'open' });

// [what, thrown by open, the errno name both must answer, whether it is a bug (logged)]
const failures: Array<[string, () => unknown, string, boolean]> = [
  ['a known condition', () => new FsError('EFBIG', 'too big'), 'EFBIG', false],
  ['a file system errno outside our registry', () => systemError('ETXTBSY'), 'ETXTBSY', false],
  ['another one', () => systemError('EMFILE'), 'EMFILE', false],
  ['a programming error', () => new TypeError('cannot read properties of undefined'), 'EIO', true],
  ['a Node error with a non-errno code', () => Object.assign(new Error('bad argument'), { code: 'ERR_INVALID_ARG_TYPE' }), 'EIO', true],
  ['a thrown non-error', () => 'a string', 'EIO', true],
];
const failing = (make: () => unknown): VNode => ({
  getattr: async () => ({ mode: S_IFREG | 0o644, size: 0, mtimeMs: 0, ctimeMs: 0 }),
  open: async () => {
    throw make();
  },
});
const root = tableDirectory(failures.map(([, make], i) => [`f${i}`, failing(make)] as const));

function capture() {
  const lines: Array<{ err?: { stack?: string } }> = [];
  return { lines, log: pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
}

t.test('the node mount and the relay answer every failure with the same errno name', async (t) => {
  const mount = capture();
  const relayed = capture();
  const { ops } = fuseOperations(root, { log: mount.log, busyPollUs: 0 });
  const relay = new RelayServer(new Dispatcher(root), relayed.log);
  t.teardown(() => relay.close());
  for (const [i, [what, , expected, isBug]] of failures.entries()) {
    const before = [mount.lines.length, relayed.lines.length];
    const viaMount = await new Promise<number>((resolve) => ops.open!(`/f${i}`, 1, (errno: number) => resolve(errno)));
    const viaRelay = await relay.execute({ relay_id: 'r', session: 's', request_id: `q${i}`, op: 'open', path: `/f${i}`, flags: 1 } as RelayRequest);
    t.equal(nameOf.get(-viaMount), expected, `${what}: the mount answers ${expected}`);
    t.equal(viaRelay.errno, expected, `${what}: the relay answers ${expected}`);
    const logged = [mount.lines.length - (before[0] ?? 0), relayed.lines.length - (before[1] ?? 0)];
    t.same(logged, isBug ? [1, 1] : [0, 0], `${what}: ${isBug ? 'logged as a bug by both' : 'not logged as a bug'}`);
  }
  t.ok(
    [...mount.lines, ...relayed.lines].every((line) => line.err !== undefined),
    'each bug is logged with the error (and its stack)',
  );
  t.match(relayed.lines[0]?.err?.stack, /TypeError: cannot read properties/, 'the relay logs the stack');
});

t.test('errnoNameOf and answerErrno', async (t) => {
  t.equal(errnoNameOf(new FsError('ENOENT', 'x')), 'ENOENT');
  t.equal(errnoNameOf(systemError('ENOTEMPTY')), 'ENOTEMPTY');
  t.equal(errnoNameOf(Object.assign(new Error('x'), { code: 'ENOTANERRNO' })), undefined, 'a code that is no errno of this OS');
  t.equal(errnoNameOf(null), undefined);
  const { lines, log } = capture();
  t.equal(answerErrno(new RangeError('boom'), log, { op: 'read' }), 'EIO');
  t.match(lines, [{ op: 'read', err: { stack: /RangeError: boom/ } }]);
});

t.test('a duplicate name in a table directory is a programming error, not EEXIST', async (t) => {
  const file = failing(() => 'unused');
  const thrown = (() => {
    try {
      tableDirectory([
        ['a', file],
        ['a', file],
      ]);
    } catch (error) {
      return error;
    }
    return undefined;
  })();
  t.type(thrown, TypeError);
  t.equal(errnoNameOf(thrown), undefined, 'so the mount answers it EIO and logs it');
});

t.test('errnoLabel: an errno of the OS is its own label; any other name is "other"', async (t) => {
  t.equal(errnoLabel('ETIMEDOUT'), 'ETIMEDOUT');
  t.equal(errnoLabel('ETXTBSY'), 'ETXTBSY', 'one the node may pass on from a file system');
  t.equal(errnoLabel('EQQQQ00'), 'other', 'a name a node made up adds no series');
  t.equal(errnoLabel(undefined), 'other');
});
