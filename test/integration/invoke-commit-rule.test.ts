// SPEC §3 commit rule through a real mount, what the service-files conformance suite
// (test/integration/suites/service-files.ts: every common tool, large payloads, transactions, the
// refusals, on both mounts) leaves to the node's own mount: opens that write nothing, what /bin/echo
// reports of a refused close(), ftruncate to a size, and a payload over max_input_bytes written in
// the ways tools split it.
import t from 'tap';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';

const LIMIT = 200_000;
const node = await startNode(t, { manifests: [manifest('cat', 'cat'), manifest('limited', 'cat', { runtime: { max_input_bytes: LIMIT } })] });
const catDir = node.service('cat');
const invoke = join(catDir, 'control', 'invoke.json');

async function invokes(dir = catDir): Promise<number> {
  return (await readJson<{ invokes_total: number }>(join(dir, 'metrics.json'))).invokes_total;
}

await t.test('an open without a write invokes nothing', async (tt) => {
  const before = await invokes();
  for (const command of [`touch "$F"`, `: > "$F"`, `true >> "$F"`, `truncate -s 0 "$F"`]) {
    const run = await sh(command, { env: { ...process.env, F: invoke } });
    tt.equal(run.code, 0, `${command}: ${run.stderr.trim()}`);
  }
  tt.equal(await invokes(), before, 'no invocation');
});

await t.test('invalid JSON: EINVAL from close(), nothing runs, last_error.txt explains', async (tt) => {
  const before = await invokes();
  const run = await sh(`/bin/echo '{"msg": oops}' > "$F"`, { env: { ...process.env, F: invoke } });
  tt.not(run.code, 0, '/bin/echo reports the close() error');
  tt.match(run.stderr, /Invalid argument/);
  tt.equal(await invokes(), before, 'the driver never ran');
  tt.match(await readText(join(catDir, 'last_error.txt')), /^EINVAL: control\/invoke\.json: invalid JSON/);
  const status = await readJson(join(catDir, 'status.json'));
  tt.equal(status.state, 'error');
  tt.equal(status.errno, 'EINVAL');
});

await t.test('truncate to a non-zero size is EINVAL', async (tt) => {
  const run = await sh(`truncate -s 10 "$F"`, { env: { ...process.env, F: invoke } });
  tt.not(run.code, 0);
  tt.match(run.stderr, /Invalid argument/);
});

/**
 * `over-limit.py PATH SIZE...`: os.write calls of SIZE bytes each (a JSON string filler), then
 * close; prints one line per call: the byte count written, or the errno name.
 */
const OVER_LIMIT = `
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
def attempt(what, call):
    try:
        n = call()
        print(what, "ok" if n is None else n)
    except OSError as e:
        print(what, errno.errorcode[e.errno])
for size in map(int, sys.argv[2:]):
    attempt("write", lambda: os.write(fd, b"x" * size))
attempt("close", lambda: os.close(fd))
`;

await t.test('SPEC §3: a payload over max_input_bytes gets EFBIG on the write that crosses it and on close()', async (tt) => {
  const limited = node.service('limited');
  const invokeLimited = join(limited, 'control', 'invoke.json');
  const before = await invokes(limited);
  // Two writes below the limit, then one that crosses it, one more, and close().
  const steps = await sh(`python3 -c ${q(OVER_LIMIT)} ${q(invokeLimited)} 100000 90000 20000 10`);
  tt.same(steps.stdout.trim().split('\n'), ['write 100000', 'write 90000', 'write EFBIG', 'write EFBIG', 'close EFBIG'], steps.stderr.trim());
  tt.match(
    await readText(join(limited, 'last_error.txt')),
    /^EFBIG: control\/invoke\.json: payload of 210000 bytes or more exceeds runtime\.max_input_bytes \(200000 bytes\)\n$/,
  );
  tt.match(await readJson(join(limited, 'status.json')), { state: 'error', errno: 'EFBIG', error: /max_input_bytes/ });

  // One write(2) larger than a FUSE write (128 KiB): the kernel splits it, the part below the limit
  // is taken (a short write, as for RLIMIT_FSIZE), the next write and close() are EFBIG.
  const split = await sh(`python3 -c ${q(OVER_LIMIT)} ${q(invokeLimited)} 300000 10`);
  const [first, ...rest] = split.stdout.trim().split('\n');
  const taken = Number(first?.split(' ')[1]);
  tt.ok(first === 'write EFBIG' || (taken > 0 && taken < LIMIT), `the crossing write is short or EFBIG (${first})`);
  tt.same(rest, ['write EFBIG', 'close EFBIG'], 'then EFBIG, also from close()');
  // A writer that ignores short writes (dd without conv) still fails.
  const dd = await sh(`head -c 300000 /dev/zero | dd of=${q(invokeLimited)} bs=300000 status=none`);
  tt.not(dd.code, 0, 'dd fails');
  tt.match(dd.stderr, /File too large/, dd.stderr.trim());
  tt.equal(await invokes(limited), before, 'nothing ran');
});
