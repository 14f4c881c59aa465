// SPEC §3 commit rule through a real mount: every common way of writing a file causes exactly one
// invocation with exactly the bytes written.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode, TRANSACTION } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';

const LIMIT = 200_000;
const node = await startNode(t, { manifests: [manifest('cat', 'cat'), manifest('bytes', 'count-bytes'), manifest('limited', 'cat', { runtime: { max_input_bytes: LIMIT } })] });
const catDir = node.service('cat');
const invoke = join(catDir, 'control', 'invoke.json');
const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

async function invokes(dir = catDir): Promise<number> {
  return (await readJson<{ invokes_total: number }>(join(dir, 'metrics.json'))).invokes_total;
}

/** Runs `command` (with $F = invoke.json) and checks: one more invocation, result = expected bytes. */
async function oneInvocation(tt: Test, command: string, expected: string): Promise<void> {
  const before = await invokes();
  const run = await sh(command, { env: { ...process.env, F: invoke } });
  tt.equal(run.code, 0, `exit 0 (${run.stderr.trim()})`);
  tt.equal(await invokes(), before + 1, 'exactly one invocation');
  tt.equal(await readText(join(catDir, 'result.json')), expected, 'the driver got exactly the bytes written');
}

const payload = '{"msg":"hi"}\n';
const cases: Array<[string, string, string]> = [
  ['echo >', `echo '{"msg":"hi"}' > "$F"`, payload],
  ['printf >', `printf '%s' '{"msg":"hi"}' > "$F"`, '{"msg":"hi"}'],
  ['echo >> (O_APPEND)', `echo '{"msg":"hi"}' >> "$F"`, payload],
  ['cat file >', `printf '{"a":[1,2,3]}\\n' > /tmp/acheron-commit-$$.json; cat /tmp/acheron-commit-$$.json > "$F"; rm /tmp/acheron-commit-$$.json`, '{"a":[1,2,3]}\n'],
  ['(cat a; cat b) >', `(echo '{"first":'; sleep 0.2; echo '"second"}') > "$F"`, '{"first":\n"second"}\n'],
  ['cp', `printf '{"cp":true}' > /tmp/acheron-cp-$$.json; cp /tmp/acheron-cp-$$.json "$F"; rc=$?; rm /tmp/acheron-cp-$$.json; exit $rc`, '{"cp":true}'],
  ['tee', `printf '{"tee":1}' | tee "$F" > /dev/null`, '{"tee":1}'],
  ['dd', `printf '{"dd":1}' | dd of="$F" status=none`, '{"dd":1}'],
  ['dd conv=notrunc bs=3', `printf '{"dd":"small blocks"}' | dd of="$F" bs=3 conv=notrunc status=none`, '{"dd":"small blocks"}'],
  ['python open(w).write', `python3 -c 'import os; open(os.environ["F"], "w").write("{\\"py\\": 1}")'`, '{"py": 1}'],
  ['bash exec fd', `exec 3>"$F"; printf '{"fd":3}' >&3; exec 3>&-`, '{"fd":3}'],
];
for (const [name, command, expected] of cases) {
  await t.test(name, (tt) => oneInvocation(tt, command, expected));
}

await t.test('1 MiB and 5 MiB payloads arrive whole, in one invocation', async (tt) => {
  for (const size of [1 << 20, 5 << 20]) {
    const file = join(node.dir, `big-${size}.json`);
    const body = JSON.stringify({ fill: 'x'.repeat(size) });
    await writeFile(file, body);
    const bytesDir = node.service('bytes');
    const before = await invokes(bytesDir);
    const run = await sh(`cat ${q(file)} > ${q(join(bytesDir, 'control', 'invoke.json'))}`);
    tt.equal(run.code, 0, run.stderr);
    tt.equal(await invokes(bytesDir), before + 1, `${size}: one invocation`);
    tt.same(await readJson(join(bytesDir, 'result.json')), { bytes: body.length, md5: md5(body) }, `${size}: exact bytes`);
  }
});

await t.test('an open without a write invokes nothing', async (tt) => {
  const before = await invokes();
  for (const command of [`touch "$F"`, `: > "$F"`, `true >> "$F"`, `truncate -s 0 "$F"`]) {
    const run = await sh(command, { env: { ...process.env, F: invoke } });
    tt.equal(run.code, 0, `${command}: ${run.stderr.trim()}`);
  }
  tt.equal(await invokes(), before, 'no invocation');
});

await t.test('only whitespace is discarded', async (tt) => {
  const before = await invokes();
  const run = await sh(`printf '  \\n\\t' > "$F"`, { env: { ...process.env, F: invoke } });
  tt.equal(run.code, 0);
  tt.equal(await invokes(), before, 'no invocation');
});

await t.test('invalid JSON: EINVAL from close(), nothing runs, last_error.txt explains', async (tt) => {
  const before = await invokes();
  const run = await sh(`/bin/echo '{"msg": oops}' > "$F"`, { env: { ...process.env, F: invoke } });
  tt.not(run.code, 0, '/bin/echo reports the close() error');
  tt.match(run.stderr, /Invalid argument/);
  tt.equal(await invokes(), before, 'the driver never ran');
  tt.match(await readText(join(catDir, 'last_error.txt')), /^EINVAL: invoke\.json: invalid JSON/);
  const status = await readJson(join(catDir, 'status.json'));
  tt.equal(status.state, 'error');
  tt.equal(status.errno, 'EINVAL');
});

await t.test('not a JSON object: EINVAL', async (tt) => {
  const run = await sh(`python3 -c 'import os; f=open(os.environ["F"], "w"); f.write("[1,2]"); f.close()'`, { env: { ...process.env, F: invoke } });
  tt.not(run.code, 0);
  tt.match(run.stderr, /Errno 22|Invalid argument/);
  tt.match(await readText(join(catDir, 'last_error.txt')), /must be a JSON object/);
});

await t.test('truncate to a non-zero size is EINVAL', async (tt) => {
  const run = await sh(`truncate -s 10 "$F"`, { env: { ...process.env, F: invoke } });
  tt.not(run.code, 0);
  tt.match(run.stderr, /Invalid argument/);
});

await t.test('a fresh read of invoke.json is empty', async (tt) => {
  tt.equal(await readText(invoke), '');
});

await t.test('O_RDWR transaction: write, read back this invocation\'s own result', async (tt) => {
  // Read back 7 bytes at a time: the outcome is served from its start whatever the file offset.
  const run = await sh(`python3 ${q(TRANSACTION)} ${q(invoke)} '{"txn": 1}' 7`);
  tt.equal(run.code, 0, run.stderr);
  tt.equal(run.stdout, '{"txn": 1}');
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
  tt.match(await readText(join(limited, 'last_error.txt')), /^EFBIG: control\/invoke\.json: payload of 210000 bytes or more exceeds runtime\.max_input_bytes \(200000 bytes\)\n$/);
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
