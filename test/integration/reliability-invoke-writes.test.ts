// Issue 10, "how to tell it worked", invoke writes: many kinds of odd writes to control/invoke.json and
// config.json through a real mount, from a child process (test/fixtures/odd-writes.py), plus payloads
// cut into random chunks from a seeded RNG. For each: the exact errno of every step (or success),
// exactly one invocation per complete payload and none otherwise, a named error in last_error.txt and
// status.json for every refused one, and the daemon alive and serving at the end. Bounded: one
// python process, a few seconds of work. (The plainest cases, on both mounts, are the service-files
// conformance suite's: test/integration/suites/service-files.ts.)
import t from 'tap';
import { join } from 'node:path';
import { manifest, readText, startNode } from '../helpers/node.js';
import { oddWrites, ok, refusedAsTooBig, refusedAtClose, type OddWriteCase } from '../helpers/odd-writes.js';
import { alive } from '../helpers/process.js';
import { prng, reliabilityScale } from '../helpers/random.js';

const TINY_LIMIT = 4096;
const node = await startNode(t, { manifests: [manifest('cat', 'cat'), manifest('tiny', 'cat', { runtime: { max_input_bytes: TINY_LIMIT } })] });

type Case = OddWriteCase<'cat' | 'tiny'>;

const py = String.raw;
const bigObject = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

const fixed: Case[] = [
  { name: 'write, close', service: 'cat', code: py`fd = opened(F); w(fd, b'{"a":1}\n'); close(fd)`, expect: { steps: ok(3), invokes: 1, result: '{"a":1}\n' } },
  {
    name: 'zero-length writes around a payload',
    service: 'cat',
    code: py`fd = opened(F); w(fd, b''); w(fd, b'{"z":0}'); w(fd, b''); close(fd)`,
    expect: { steps: ok(5), invokes: 1, result: '{"z":0}' },
  },
  { name: 'only a zero-length write', service: 'cat', code: py`fd = opened(F); w(fd, b''); close(fd)`, expect: { steps: ok(3), invokes: 0 } },
  {
    name: 'a write at a huge offset (2^40)',
    service: 'cat',
    code: py`fd = opened(F); pw(fd, b'{}', 1 << 40); close(fd)`,
    expect: { steps: ['ok', 'EINVAL', 'EINVAL'], invokes: 0, error: /^EINVAL: control\/invoke\.json: write at offset 1099511627776 leaves a hole/ },
  },
  {
    name: 'a hole in the middle, then more writes',
    service: 'cat',
    code: py`fd = opened(F); w(fd, b'{"a":'); pw(fd, b'1}', 9); w(fd, b'1}'); close(fd)`,
    expect: { steps: ['ok', 'ok', 'EINVAL', 'EINVAL', 'EINVAL'], invokes: 0, error: /^EINVAL: control\/invoke\.json: write at offset 9/ },
  },
  {
    name: 'writes in reverse order',
    service: 'cat',
    code: py`fd = opened(F); pw(fd, b':1}', 4); pw(fd, b'{"a"', 0); close(fd)`,
    expect: { steps: ['ok', 'EINVAL', 'EINVAL', 'EINVAL'], invokes: 0, error: /^EINVAL: control\/invoke\.json: write at offset 4/ },
  },
  {
    name: 'a later write rewrites bytes not yet committed',
    service: 'cat',
    code: py`fd = opened(F); w(fd, b'{"a":1}'); pw(fd, b'{"b"', 0); close(fd)`,
    expect: { steps: ok(4), invokes: 1, result: '{"b":1}' },
  },
  {
    name: 'one byte per write',
    service: 'cat',
    code: py`fd = opened(F)
for b in b'{"one":"byte at a time"}': w(fd, bytes([b]))
close(fd)`,
    expect: { steps: ok(26), invokes: 1, result: '{"one":"byte at a time"}' },
  },
  {
    name: 'writev of pieces',
    service: 'cat',
    code: py`fd = opened(F); step(lambda: os.writev(fd, [b'{"v":', b'[1,', b'2]}']), 11); close(fd)`,
    expect: { steps: ok(3), invokes: 1, result: '{"v":[1,2]}' },
  },
  {
    name: 'sendfile from a regular file',
    service: 'cat',
    code: py`src = os.open('/proc/self/cmdline', os.O_RDONLY)
import tempfile
tmp = tempfile.TemporaryFile(); tmp.write(b'{"sent":"file"}'); tmp.flush()
fd = opened(F); step(lambda: os.sendfile(fd, tmp.fileno(), 0, 15), 15); close(fd); os.close(src)`,
    expect: { steps: ok(3), invokes: 1, result: '{"sent":"file"}' },
  },
  {
    name: 'interleaved writers on two opens',
    service: 'cat',
    code: py`a = opened(F); b = opened(F); w(a, b'{"one":'); w(b, b'{"two":2}'); w(a, b'1}'); close(b); close(a)`,
    expect: { steps: ok(7), invokes: 2, result: '{"one":1}' },
  },
  {
    name: 'O_APPEND',
    service: 'cat',
    code: py`fd = opened(F, os.O_WRONLY | os.O_APPEND); w(fd, b'{"ap":'); w(fd, b'"pend"}'); close(fd)`,
    expect: { steps: ok(4), invokes: 1, result: '{"ap":"pend"}' },
  },
  {
    name: 'O_RDWR: a read before the write is end of file, the read after it the outcome',
    service: 'cat',
    code: py`fd = opened(F, os.O_RDWR)
first = step(lambda: os.read(fd, 100)); expect(first == b'', 'empty first read')
w(fd, b'{"rw":1}')
out = step(lambda: os.read(fd, 4096)); expect(out == b'{"rw":1}', 'the outcome')
close(fd)`,
    expect: { steps: ok(5), invokes: 1, result: '{"rw":1}' },
  },
  {
    name: 'O_RDWR: a write into the committed payload',
    service: 'cat',
    code: py`fd = opened(F, os.O_RDWR); w(fd, b'{"x":1}'); step(lambda: os.read(fd, 100)); pw(fd, b'{}', 3); close(fd)`,
    expect: {
      steps: ['ok', 'ok', 'ok', 'EINVAL', 'EINVAL'],
      invokes: 1,
      error: /^EINVAL: control\/invoke\.json: write at offset 3 leaves a hole or rewrites a committed payload/,
    },
  },
  {
    name: 'O_RDWR: a second transaction on the same open, from offset 0',
    service: 'cat',
    code: py`fd = opened(F, os.O_RDWR)
for n in (1, 2):
    pw(fd, b'{"n":%d}' % n, 0)
    out = step(lambda: os.pread(fd, 100, 0)); expect(out == b'{"n":%d}' % n, 'its own outcome')
close(fd)`,
    expect: { steps: ok(6), invokes: 2, result: '{"n":2}' },
  },
  {
    name: 'ftruncate to more than 0, then a payload',
    service: 'cat',
    code: py`fd = opened(F); step(lambda: os.ftruncate(fd, 5)); w(fd, b'{"t":1}'); close(fd)`,
    expect: { steps: ['ok', 'EINVAL', 'ok', 'ok'], invokes: 1, result: '{"t":1}' },
  },
  {
    name: 'ftruncate(0) in the middle',
    service: 'cat',
    code: py`fd = opened(F); w(fd, b'{"t":'); step(lambda: os.ftruncate(fd, 0)); w(fd, b'0}'); close(fd)`,
    expect: { steps: ok(5), invokes: 1, result: '{"t":0}' },
  },
  {
    name: 'fsync and fdatasync in the middle',
    service: 'cat',
    code: py`fd = opened(F); w(fd, b'{"fs":'); step(lambda: os.fsync(fd)); w(fd, b'1}'); step(lambda: os.fdatasync(fd)); close(fd)`,
    expect: { steps: ok(6), invokes: 1, result: '{"fs":1}' },
  },
  {
    name: 'dup: the first close commits, bytes after it are a second payload',
    service: 'cat',
    code: py`fd = opened(F); w(fd, b'{"d":1}'); d = step(lambda: os.dup(fd)); close(d); w(fd, b'{"d":2}'); close(fd)`,
    expect: { steps: ok(6), invokes: 2, result: '{"d":2}' },
  },
  refusedAtClose('invalid UTF-8 inside a string', 'cat', 'F', py`b'{"u":"\xff\xfe"}'`, /^EINVAL: control\/invoke\.json: not valid UTF-8/),
  refusedAtClose('invalid UTF-8 outside a string', 'cat', 'F', py`b'{\xff:1}'`, /^EINVAL: control\/invoke\.json: not valid UTF-8/),
  {
    name: 'a truncated UTF-8 sequence, refused at release',
    service: 'cat',
    release: true,
    code: py`fd = opened(F); w(fd, b'{"u":"\xe4\xb8'); close(fd)`,
    expect: { steps: ok(3), invokes: 0, error: /^EINVAL: control\/invoke\.json: not valid UTF-8/ },
  },
  refusedAtClose('config.json: invalid UTF-8', 'cat', 'C', py`b'{"x-note":"\xff"}'`, /^EINVAL: services\/cat\/config\.json: not valid UTF-8/),
  refusedAtClose('a NUL byte after a payload', 'cat', 'F', py`b'{"a":1}\x00'`, /^EINVAL: control\/invoke\.json: invalid JSON/),
  refusedAtClose('a lone NUL byte', 'cat', 'F', py`b'\x00'`, /^EINVAL: control\/invoke\.json: invalid JSON/),
  refusedAtClose('two JSON values in one payload', 'cat', 'F', py`b'{"a":1}{"b":2}'`, /^EINVAL: control\/invoke\.json: invalid JSON/),
  {
    name: 'an object nested 10000 deep',
    service: 'cat',
    code: py`fd = opened(F); w(fd, payload); close(fd)`,
    data: Buffer.from(bigObject(10_000)).toString('base64'),
    expect: { steps: ok(3), invokes: 1, result: bigObject(10_000) },
  },
  refusedAtClose('an array nested 100000 deep', 'cat', 'F', py`b'[' * 100000 + b']' * 100000`, /^EINVAL: control\/invoke\.json: /),
  {
    name: 'over max_input_bytes: EFBIG on the crossing write, later writes and close()',
    service: 'tiny',
    code: py`fd = opened(F); w(fd, b'{"a":"' + b'x' * 2994); w(fd, b'x' * 3000); w(fd, b'"}'); close(fd)`,
    expect: {
      steps: ['ok', 'ok', 'EFBIG', 'EFBIG', 'EFBIG'],
      invokes: 0,
      error: /^EFBIG: control\/invoke\.json: payload of 6000 bytes or more exceeds runtime\.max_input_bytes \(4096 bytes\)/,
    },
  },
  refusedAsTooBig(
    'one write(2) far over max_input_bytes',
    'tiny',
    'F',
    py`b' ' * 300000`,
    /^EFBIG: control\/invoke\.json: payload of \d+ bytes or more exceeds runtime\.max_input_bytes/,
  ),
  {
    name: 'exactly max_input_bytes',
    service: 'tiny',
    code: py`fd = opened(F); w(fd, payload); close(fd)`,
    data: Buffer.from(`{"a":"${'x'.repeat(TINY_LIMIT - 9)}"}`).toString('base64'),
    expect: { steps: ok(3), invokes: 1 },
  },
  {
    name: 'concurrent opens from 8 threads',
    service: 'cat',
    code: py`def one(i):
    fd = opened(F); w(fd, b'{"thread":%d}' % i); close(fd)
threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
for th in threads: th.start()
for th in threads: th.join()`,
    expect: { steps: ok(24), invokes: 8 },
  },
  {
    name: 'config.json: a valid document',
    service: 'cat',
    code: py`fd = opened(C); w(fd, b'{"timeout_ms": 5000}'); close(fd)
expect(b'5000' in open(C, 'rb').read(), 'reads back')`,
    expect: { steps: ok(3), invokes: 0 },
  },
  {
    name: 'config.json: an unfinished document, refused at release',
    service: 'cat',
    release: true,
    code: py`fd = opened(C); w(fd, b'[1,2\n'); close(fd)`,
    expect: { steps: ok(3), invokes: 0, error: /^EINVAL: services\/cat\/config\.json: invalid JSON/ },
  },
  refusedAtClose('config.json: not an object', 'cat', 'C', py`b'[1,2]'`, /^EINVAL: services\/cat\/config\.json: /),
  refusedAtClose('config.json: an unknown key', 'cat', 'C', py`b'{"timeot_ms": 1}'`, /^EINVAL: services\/cat\/config\.json: .*timeot_ms/),
  refusedAsTooBig(
    'config.json: over 64 KiB',
    'cat',
    'C',
    py`b' ' * 70000`,
    /^EFBIG: services\/cat\/config\.json: payload of \d+ bytes or more exceeds the config\.json limit \(65536 bytes\)/,
  ),
  {
    name: 'config.json: a hole',
    service: 'cat',
    code: py`fd = opened(C); pw(fd, b'{}', 5); close(fd)`,
    expect: { steps: ['ok', 'EINVAL', 'EINVAL'], invokes: 0, error: /^EINVAL: services\/cat\/config\.json: write at offset 5 leaves a hole/ },
  },
  {
    name: 'config.json: ftruncate to more than 0',
    service: 'cat',
    code: py`fd = opened(C, os.O_WRONLY); step(lambda: os.ftruncate(fd, 5)); close(fd)`,
    expect: { steps: ['ok', 'EINVAL', 'ok'], invokes: 0, error: /^EINVAL: services\/cat\/config\.json: can be truncated only to 0, not 5/ },
  },
  {
    name: 'config.json: back to {}',
    service: 'cat',
    code: py`fd = opened(C); w(fd, b'{}'); close(fd)
expect(open(C, 'rb').read().strip() == b'{}', 'reads back')`,
    expect: { steps: ok(3), invokes: 0 },
  },
];

const SEED = 20261204;
const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', 'é', '中', '😀', '\u0000', '{', '}', '[', ']', ':', ','];
const randomString = (max: number): string => Array.from({ length: Math.floor(random() * max) }, () => pick(ALPHABET)).join('');
const randomValue = (depth: number): unknown => {
  const kind = Math.floor(random() * (depth > 2 ? 3 : 5));
  if (kind === 0) return randomString(pick([10, 200, 5000, 60_000]));
  if (kind === 1) return Math.floor(random() * 1e9) / 7;
  if (kind === 2) return pick([true, false, null]);
  if (kind === 3) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, (_, i) => [`k${i}${randomString(3)}`, randomValue(depth + 1)]));
};

const RANDOM_CASES = 30 * reliabilityScale();
const chunked: Case[] = Array.from({ length: RANDOM_CASES }, (_, i) => {
  const payload = Buffer.from(
    JSON.stringify(
      Object.fromEntries([
        ['case', i],
        ['v', randomValue(0)],
      ]),
      null,
      random() < 0.3 ? 1 : undefined,
    ) + (random() < 0.5 ? '\n' : ''),
  );
  const chunks: number[] = [];
  const extras: string[] = [];
  for (let at = 0; at < payload.length;) {
    const size = Math.min(payload.length - at, 1 + Math.floor(random() * pick([8, 700, 9000, 200_000])));
    chunks.push(size);
    extras.push(random() < 0.7 ? '' : pick(['fsync', 'fdatasync', 'empty']));
    at += size;
  }
  const transaction = random() < 0.3;
  return {
    name: `random chunking #${i} (seed ${SEED}): ${payload.length} bytes in ${chunks.length} writes${transaction ? ', O_RDWR transaction' : ''}`,
    service: 'cat',
    data: payload.toString('base64'),
    chunks,
    extras,
    transaction,
    code: py`fd = opened(F, os.O_RDWR if transaction else os.O_WRONLY | os.O_TRUNC)
at = 0
for size, extra in zip(chunks, extras):
    if extra == 'fsync': step(lambda: os.fsync(fd))
    elif extra == 'fdatasync': step(lambda: os.fdatasync(fd))
    elif extra == 'empty': w(fd, b'')
    w(fd, payload[at:at + size]); at += size
if transaction:
    out = b''
    while True:
        got = os.read(fd, 1 << 20)
        if not got: break
        out += got
    expect(out == payload, 'the transaction reads its own result')
close(fd)`,
    expect: { steps: ok(2 + chunks.length + extras.filter(Boolean).length), invokes: 1, result: payload },
  };
});

await t.test('odd writes to control/invoke.json and config.json', async (tt) => {
  const cases = [...fixed, ...chunked];
  const startedMs = Date.now();
  const failures = await oddWrites(tt, join(node.mount, 'services'), cases);
  const tookMs = Date.now() - startedMs;
  tt.equal(node.child.exitCode, null, 'the daemon is still running');
  tt.ok(await alive(node.child.pid as number), 'and alive');
  tt.match(JSON.parse(await readText(join(node.mount, 'NODE.json'))), { node_id: 'test-node' }, 'and serving');
  tt.comment(
    `invoke writes fuzzed: ${cases.length} (${fixed.length} kinds, ${chunked.length} random chunkings, seed ${SEED}), failures: ${failures}, in ${(tookMs / 1000).toFixed(1)} s`,
  );
});
