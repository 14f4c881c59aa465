// The fuse-native op table against fuse-native itself, without mounting: each op is driven through
// fuse-native's own `Fuse.prototype._op_<name>` (index.js) with the arguments fuse-native.c passes,
// so an argument order that differs from ours fails here (issue 10: fsync got its handle from the
// datasync slot and answered EBADF on every file). Then: every handler answers exactly once, whatever
// throws (SPEC §3 "nothing hangs"; go-fuse's panic handler).
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import Fuse from 'fuse-native';
import { fuseOperations } from '../../../src/fuse/operations.js';
import { tableDirectory } from '../../../src/vfs/directory.js';
import { S_IFDIR, S_IFREG, type Attr, type Handle, type VNode } from '../../../src/vfs/node.js';

type Fn = (...args: any[]) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
const fuseNative = Fuse.prototype as unknown as Record<string, Fn>;
const FUSE_DIR = dirname(createRequire(import.meta.url).resolve('fuse-native'));
const { EPERM, EINVAL, EIO, ENOENT } = constants.errno;

/** How many arguments fuse-native.c hands to each op's JavaScript handler (FUSE_METHOD's second argument). */
const nativeArity = new Map(
  [...(await readFile(join(FUSE_DIR, 'fuse-native.c'), 'utf8')).matchAll(/FUSE_METHOD(?:_VOID)?\((\w+), (\d+),/g)].map((m) => [m[1] as string, Number(m[2])]),
);

/** Who the mount shows as every file's owner (the daemon), and chown(2)'s -1 as fuse-native.c passes it (uint32). */
const OWN_UID = process.getuid!();
const OWN_GID = process.getgid!();
const UNCHANGED_ID = 0xffffffff;

/** 64 TiB in 4 KiB blocks and 2^40 inodes: more than fuse-native's 32-bit statfs fields hold. */
const BIG_FILE_SYSTEM = { bsize: 4096, frsize: 4096, blocks: 2 ** 34, bfree: 2 ** 33 + 5, bavail: 2 ** 33, files: 2 ** 40, ffree: 2 ** 40 - 1 };

/** A tree that records what reaches it: `/file`, `/link` and `/dir` (whose child `x` is `/file`). */
function recordingTree() {
  const calls: unknown[][] = [];
  const record = (...call: unknown[]) => void calls.push(call);
  const attr = (mode: number): Attr => ({ mode, size: 3, mtimeMs: 1000, ctimeMs: 1000 });
  const handle = (): Handle => ({
    read: async (offset, length) => (record('read', offset, length), Buffer.from('abc')),
    write: async (offset, data) => (record('write', offset, data.toString()), data.length),
    flush: async () => record('flush'),
    fsync: async (datasync) => record('fsync', datasync),
    truncate: async (size) => record('handle.truncate', size),
    release: async () => record('release'),
  });
  const file: VNode = {
    getattr: async () => attr(S_IFREG | 0o644),
    open: async (flags) => (record('open', flags), handle()),
    truncate: async (size) => record('truncate', size),
    utimens: async (atimeMs, mtimeMs) => record('utimens', atimeMs, mtimeMs),
    chmod: async (mode) => record('chmod', mode),
  };
  const link: VNode = { getattr: async () => attr(0o120777), readlink: async () => 'file' };
  const dir: VNode = {
    getattr: async () => attr(S_IFDIR | 0o755),
    lookup: async (name) => (name === 'x' ? file : undefined),
    readdir: async () => ['x'],
    fsync: async (datasync) => record('fsyncdir', datasync),
    statfs: async () => (record('statfs'), BIG_FILE_SYSTEM),
    chown: async () => record('chown'),
    mknod: async (name, mode) => record('mknod', name, mode),
    mkdir: async (name, mode) => record('mkdir', name, mode),
    unlink: async (name) => record('unlink', name),
    rmdir: async (name) => record('rmdir', name),
    symlink: async (name, target) => record('symlink', name, target),
    rename: async (name, newParent, newName) => record('rename', name, newParent === dir, newName),
  };
  return {
    root: tableDirectory([
      ['file', file],
      ['link', link],
      ['dir', dir],
    ]),
    calls,
  };
}

/** Calls fuse-native's `_op_<name>` as its native side would, with our op table; resolves with what it signals. */
function drive(ops: Record<string, Fn>, name: string, ...nativeArgs: unknown[]): Promise<unknown[]> {
  return new Promise((resolve) => {
    fuseNative[`_op_${name}`]!.call({ ops }, (...signalled: unknown[]) => resolve(signalled), ...nativeArgs);
  });
}

const silent = pino({ level: 'silent' });
const after = () => new Promise((resolve) => setImmediate(resolve));

t.test('statfs: a node on a file system answers its numbers, in 32-bit fields that keep the size; a synthetic one zeros', async (t) => {
  const { root } = recordingTree();
  const { ops } = fuseOperations(root, { log: silent, busyPollUs: 0 });
  // getStatfsArray's order: bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax.
  const [, big] = (await drive(ops, 'statfs', '/dir')) as [number, Uint32Array];
  const [bsize, frsize, blocks, bfree, bavail, files, ffree, favail] = [...big];
  t.equal(bsize, 4096, 'bsize as the file system says');
  t.equal(frsize! * blocks!, 4096 * 2 ** 34, `the size stays 64 TiB (${blocks} blocks of ${frsize} bytes), not wrapped to 0`);
  t.ok(blocks! <= 0xffffffff && frsize! * bfree! <= 4096 * (2 ** 33 + 5) && frsize! * bavail! === 4096 * 2 ** 33, 'free and available scaled alike');
  t.same([files, ffree, favail], [0xffffffff, 0xffffffff, 0xffffffff], 'inode counts capped, not wrapped');
  const [, none] = (await drive(ops, 'statfs', '/file')) as [number, Uint32Array];
  t.same([...none].slice(2, 8), [0, 0, 0, 0, 0, 0], 'a synthetic file: no blocks, no inodes');
});

t.test("every op is driven through fuse-native's _op_* with fuse-native.c's arguments, and reaches the tree as meant", async (t) => {
  const { root, calls } = recordingTree();
  const { ops } = fuseOperations(root, { log: silent, busyPollUs: 0 });
  const buf = Buffer.alloc(8);
  // Handle numbers above 1, so a handle passed in the datasync slot (0 or 1) cannot pass for one.
  const spare = await drive(ops, 'open', '/file', 0);
  const [, fh] = await drive(ops, 'open', '/file', 2);
  t.same(spare[0], 0);
  t.ok(typeof fh === 'number' && fh > 1, `open gives a handle (${String(fh)})`);

  // [op, arguments as fuse-native.c passes them, what fuse-native signals (prefix), what reaches the tree]
  const cases: Array<[string, unknown[], unknown[], unknown[][]]> = [
    ['getattr', ['/file'], [0], []],
    ['readdir', ['/dir'], [0, ['.', '..', 'x'], []], []],
    ['open', ['/file', 1], [0], [['open', 1]]],
    ['read', ['/file', fh, buf, 8, 5, 1], [3, 0], [['read', 5 + 2 ** 32, 8]]],
    ['write', ['/file', fh, Buffer.from('xyz'), 3, 7, 0], [3, 0], [['write', 7, 'xyz']]],
    ['flush', ['/file', fh], [0], [['flush']]],
    ['fsync', ['/file', 0, fh], [0], [['fsync', false]]],
    ['fsync', ['/file', 1, fh], [0], [['fsync', true]]],
    ['fsyncdir', ['/dir', 1, 0], [0], [['fsyncdir', true]]],
    ['truncate', ['/file', 9, 0], [0], [['truncate', 9]]],
    ['ftruncate', ['/file', fh, 0, 0], [0], [['handle.truncate', 0]]],
    ['utimens', ['/file', 1500, 0, 2500, 0], [0], [['utimens', 1500, 2500]]],
    ['chmod', ['/file', 0o600], [0], [['chmod', 0o600]]],
    ['chown', ['/file', 1, 2], [-EPERM], []],
    ['chown', ['/dir', OWN_UID, OWN_GID], [0], [['chown']]],
    ['chown', ['/dir', UNCHANGED_ID, UNCHANGED_ID], [0], [['chown']]],
    // Another owner: the tree is asked first (a read-only export answers EROFS), then refused.
    ['chown', ['/dir', UNCHANGED_ID, OWN_GID + 1], [-EPERM], [['chown']]],
    ['chown', ['/dir', OWN_UID + 1, UNCHANGED_ID], [-EPERM], [['chown']]],
    ['readlink', ['/link'], [0, 'file'], []],
    ['readlink', ['/file'], [-EINVAL], []],
    ['mkdir', ['/dir/sub', 0o755], [0], [['mkdir', 'sub', 0o755]]],
    ['unlink', ['/dir/x'], [0], [['unlink', 'x']]],
    ['rmdir', ['/dir/x'], [0], [['rmdir', 'x']]],
    ['rename', ['/dir/x', '/dir/y'], [0], [['rename', 'x', true, 'y']]],
    ['symlink', ['x', '/dir/ln'], [0], [['symlink', 'ln', 'x']]],
    ['link', ['/dir/x', '/dir/hard'], [-EPERM], []],
    ['mknod', ['/dir/new', S_IFREG | 0o644, 0], [0], [['mknod', 'new', S_IFREG | 0o644]]],
    // Its type bits reach the directory, which decides (an export refuses a FIFO after its own EROFS).
    ['mknod', ['/dir/fifo', 0o010644, 0], [0], [['mknod', 'fifo', 0o010644]]],
    ['statfs', ['/'], [0], []],
    ['statfs', ['/dir/x'], [0], []],
    ['statfs', ['/dir'], [0], [['statfs']]],
    ['release', ['/file', fh], [0], [['release']]],
    ['releasedir', ['/dir', 0], [0], []],
  ];
  t.same([...new Set(cases.map(([name]) => name))].sort(), Object.keys(ops).sort(), 'every op of the table is pinned here, and only those');
  for (const [name, args, signalled, reached] of cases) {
    t.type(fuseNative[`_op_${name}`], 'function', `${name}: fuse-native routes it`);
    t.equal(args.length, nativeArity.get(name), `${name}: as many arguments as fuse-native.c passes`);
    calls.length = 0;
    const got = await drive(ops, name, ...args);
    await after(); // release finishes after its answer
    t.same(got.slice(0, signalled.length), signalled, `${name}(${args.map(String).join(', ')}): signals ${JSON.stringify(signalled)}`);
    t.same(calls, reached, `${name}: reaches the tree as ${JSON.stringify(reached)}`);
  }
});

t.test('fuse-native answers fgetattr with ops.getattr, so the table needs no fgetattr', async (t) => {
  const { root } = recordingTree();
  const { ops } = fuseOperations(root, { log: silent, busyPollUs: 0 });
  t.notOk('fgetattr' in ops);
  const [errno, stat] = await drive({ ...ops, fgetattr: () => t.fail('fgetattr is never called') }, 'fgetattr', '/file', 5);
  t.equal(errno, 0);
  t.equal((stat as Uint32Array)[0], S_IFREG | 0o644, 'the getattr of the path');
});

/** A logger whose lines are kept, and a count of unhandled rejections while `fn` runs. */
async function watched(fn: (log: Logger) => Promise<void>): Promise<{ lines: Array<Record<string, any>>; unhandled: number }> {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  const lines: Array<Record<string, any>> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  let unhandled = 0;
  const count = () => void unhandled++;
  process.on('unhandledRejection', count);
  try {
    await fn(log);
    for (let i = 0; i < 5; i++) await after();
  } finally {
    process.off('unhandledRejection', count);
  }
  return { lines, unhandled };
}

t.test('every handler answers exactly once, whatever throws', async (t) => {
  const throwingAttr = {
    get mode(): number {
      throw new TypeError('attr exploded');
    },
    size: 0,
    mtimeMs: 0,
    ctimeMs: 0,
  };
  const root = tableDirectory([
    ['bad-attr', { getattr: async () => throwingAttr as Attr }],
    [
      'bad-list',
      {
        getattr: async () => ({ mode: S_IFDIR | 0o755, size: 0, mtimeMs: 0, ctimeMs: 0 }),
        lookup: async () => undefined,
        readdir: async () =>
          ({
            [Symbol.iterator]: () => {
              throw new TypeError('list exploded');
            },
          }) as unknown as string[],
      },
    ],
    [
      'ok',
      {
        getattr: async () => ({ mode: S_IFREG | 0o444, size: 0, mtimeMs: 0, ctimeMs: 0 }),
        open: async () => ({
          release: () => {
            throw new TypeError('release exploded');
          },
        }),
      },
    ],
  ]);
  // [what, op, arguments before the callback, whether the callback itself throws, the answer]
  const cases: Array<[string, string, unknown[], boolean, number]> = [
    ['a throw while shaping a stat reply', 'getattr', ['/bad-attr'], false, -EIO],
    ['a throw while shaping a listing', 'readdir', ['/bad-list'], false, -EIO],
    ["fuse-native's callback throwing on success", 'getattr', ['/ok'], true, 0],
    ["fuse-native's callback throwing on an error", 'getattr', ['/missing'], true, -ENOENT],
    ["fuse-native's callback throwing on a synchronous reply", 'releasedir', ['/ok', 0], true, 0],
  ];
  for (const [what, name, args, cbThrows, answer] of cases) {
    const answers: unknown[] = [];
    const { lines, unhandled } = await watched(async (log) => {
      const { ops } = fuseOperations(root, { log, busyPollUs: 0 });
      ops[name]!(...args, (...reply: unknown[]) => {
        answers.push(reply[0]);
        if (cbThrows) throw new Error('callback exploded');
      });
    });
    t.same(answers, [answer], `${what}: answered once, ${answer}`);
    t.equal(unhandled, 0, `${what}: no unhandled rejection`);
    t.equal(lines.length, 1, `${what}: logged once at error`);
    t.match(lines[0]?.err?.stack, /exploded/, `${what}: with its stack`);
  }

  const released: unknown[] = [];
  const { lines, unhandled } = await watched(async (log) => {
    const { ops } = fuseOperations(root, { log, busyPollUs: 0 });
    const fh = await new Promise<number>((resolve) => ops.open!('/ok', 0, (_: number, n: number) => resolve(n)));
    ops.release!('/ok', fh, (...reply: unknown[]) => released.push(reply[0]));
  });
  t.same(released, [0], 'a release whose handle throws at once: answered once, 0');
  t.equal(unhandled, 0, 'release: no unhandled rejection');
  t.match(lines[0]?.err?.stack, /release exploded/, 'release: the throw is logged with its stack');
});
