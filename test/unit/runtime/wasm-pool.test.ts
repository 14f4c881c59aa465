// WasmPool and its worker in process (no FUSE, no daemon): the WASI driver ABI (stdin, stdout,
// stderr, exit code, env and args), the limits that must hold (timeout_ms inside an infinite loop and
// inside a blocking sleep, max_output_bytes, the memory cap), file access only through preopens
// (read-only unless rw), no descriptor leaks, concurrency, and many runs in a row (Node 20 crashed
// after 1000-3000 plain node:wasi runs).
import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverSpec } from '../../../src/runtime/run-result.js';
import { prepareWasmModule } from '../../../src/runtime/wasm-module.js';
import { WasmPool, type WasmProgram } from '../../../src/runtime/wasm-pool.js';
import type { WasmPreopen } from '../../../src/runtime/wasm-protocol.js';
import { ECHO_WASM, watFixture } from '../../helpers/wat.js';

const pool = new WasmPool({ size: 2 });
t.teardown(() => pool.close());

async function program(bytes: Uint8Array, options: { maxPages?: number; preopens?: WasmPreopen[] } = {}): Promise<WasmProgram> {
  const prepared = prepareWasmModule(bytes, options.maxPages ?? 256);
  return { module: await WebAssembly.compile(prepared.bytes), maxPages: prepared.maxPages, preopens: options.preopens ?? [] };
}

const ENV = { ACHERON_NODE_ID: 'node-1', ACHERON_SERVICE_ID: 'echo-wasm' };
const spec = (input: string | Buffer, over: Partial<DriverSpec> = {}): DriverSpec => ({
  file: 'fixture.wasm', args: [], cwd: '/', env: ENV, invocationId: '1796000000000-0001', input: Buffer.from(input),
  timeoutMs: 30_000, killGraceMs: 0, maxOutputBytes: 1 << 20, ...over,
});

const echo = await program(await readFile(ECHO_WASM).catch(() => {
  throw new Error(`${ECHO_WASM} is missing: run make build`);
}));

/** What bin/acheron-echo-driver.js prints for these stdin bytes (the integration test runs the driver itself). */
function nativeEcho(input: Buffer, invocationId: string): { code: number; stdout: string; stderr: string } {
  const raw = input.toString('utf8');
  let payload: unknown;
  try {
    payload = JSON.parse(raw);
  } catch {
    return { code: 2, stdout: '', stderr: '' };
  }
  const fail = (payload as { fail?: unknown } | null)?.fail;
  if (typeof fail === 'string') return { code: 1, stdout: '', stderr: `${fail}\n` };
  return {
    code: 0, stderr: '',
    stdout: JSON.stringify({ ok: true, service_id: ENV.ACHERON_SERVICE_ID, node_id: ENV.ACHERON_NODE_ID, invocation_id: invocationId, bytes: Buffer.byteLength(raw), echo: payload }) + '\n',
  };
}

async function sameAsNative(input: Buffer): Promise<boolean> {
  const run = await pool.run(echo, spec(input));
  const want = nativeEcho(input, '1796000000000-0001');
  if (run.exitCode !== want.code) return false;
  if (want.code === 2) return run.stderr.toString().startsWith('echo driver: stdin is not JSON: ');
  // As the native driver's process.stdout/stderr would encode them (a lone surrogate becomes U+FFFD).
  return run.stdout.equals(Buffer.from(want.stdout)) && run.stderr.equals(Buffer.from(want.stderr));
}

t.test('the wasm echo answers byte for byte what the native echo answers', async (t) => {
  const payloads = [
    '{"msg":"hi"}\n', '{}', ' {\n  "a" : [ 1, 2.50, -0, 1e3, 1E-7, 0.000001, 1e21, 123456789012345678901234567890 ] }\n',
    '{"b":1,"a":2,"b":3,"10":4,"2":5,"01":6,"4294967294":7,"4294967295":8}',
    '{"s":"\\u0041\\/\\ud83d\\ude00\\ud800x\\udc00\\u001f\\u007f\u00e9 \\" \\\\ \\b\\f\\n\\r\\t"}',
    '{"n":[0.1,0.30000000000000004,9007199254740993,5e-324,2.2250738585072014e-308,1.7976931348623157e308,1e400]}',
    '{"fail":"boom"}', '{"fail":"not this","fail":1}', '{"fail":"\\ud800 alone"}', '{"__proto__":{"x":1}}', 'not json', '{"a":1',
  ];
  for (const payload of payloads) t.ok(await sameAsNative(Buffer.from(payload)), JSON.stringify(payload));
  t.ok(await sameAsNative(Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0xe0, 0x80, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x22, 0x7d])), 'invalid UTF-8 inside a string');
  await fc.assert(fc.asyncProperty(fc.jsonValue(), fc.boolean(), (value, pretty) => sameAsNative(Buffer.from(JSON.stringify({ value }, null, pretty ? 2 : 0)))), { numRuns: 300 });
  await fc.assert(fc.asyncProperty(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => sameAsNative(Buffer.from(`{"d":${JSON.stringify(d)}}`))), { numRuns: 300 });
  await fc.assert(fc.asyncProperty(fc.stringMatching(/^-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,22})?([eE][+-]?[0-9]{1,3})?$/), (n) => sameAsNative(Buffer.from(`{"n":${n}}`))), { numRuns: 300 });
  await fc.assert(fc.asyncProperty(fc.string({ unit: 'binary' }), (s) => sameAsNative(Buffer.from(JSON.stringify({ s })))), { numRuns: 200 });
});

t.test('args and environment reach the module; ACHERON_INVOCATION_ID is per invocation', async (t) => {
  const run = await pool.run(echo, spec('{}', { invocationId: '1796000000000-0042' }));
  t.match(JSON.parse(run.stdout.toString()), { service_id: 'echo-wasm', node_id: 'node-1', invocation_id: '1796000000000-0042' });
});

t.test('an infinite loop is stopped at timeout_ms and the pool goes on', async (t) => {
  const loop = await program(await watFixture('loop'));
  const run = await pool.run(loop, spec('', { file: 'loop.wasm', timeoutMs: 300 }));
  t.equal(run.state, 'timeout');
  t.equal(run.shortMessage, 'loop.wasm timed out after 300 ms and was stopped');
  // Both workers stuck at once: each is terminated and replaced.
  const both = await Promise.all([1, 2].map(() => pool.run(loop, spec('', { timeoutMs: 200 }))));
  t.same(both.map((r) => r.state), ['timeout', 'timeout']);
  const after = await pool.run(echo, spec('{"after":"loop"}'));
  t.equal(after.state, 'ok', after.shortMessage);
  t.match(JSON.parse(after.stdout.toString()), { echo: { after: 'loop' } });
});

t.test('a module sleeping in poll_oneoff is stopped at timeout_ms too', async (t) => {
  const sleeper = await program(await watFixture('sleep'));
  const started = Date.now();
  const run = await pool.run(sleeper, spec('', { timeoutMs: 300 }));
  t.equal(run.state, 'timeout');
  t.ok(Date.now() - started < 30_000, 'well before the 60 s sleep ends');
  t.equal((await pool.run(echo, spec('{}'))).state, 'ok', 'the pool goes on');
});

t.test('a cancelled run ends as cancelled', async (t) => {
  const loop = await program(await watFixture('loop'));
  const controller = new AbortController();
  const running = pool.run(loop, spec('', { timeoutMs: 60_000 }), controller.signal);
  setTimeout(() => controller.abort(), 100);
  const run = await running;
  t.equal(run.state, 'cancelled');
  t.equal(run.shortMessage, 'fixture.wasm was cancelled');
});

t.test('calls beyond the pool wait their turn; one cancelled while waiting holds nobody up', async (t) => {
  const single = new WasmPool({ size: 1 });
  t.teardown(() => single.close());
  const loop = await program(await watFixture('loop'));
  const busy = single.run(loop, spec('', { timeoutMs: 1500 }));
  const controller = new AbortController();
  const cancelled = single.run(echo, spec('{"n":"cancelled"}'), controller.signal);
  const next = single.run(echo, spec('{"n":"next"}'));
  controller.abort();
  t.equal((await cancelled).state, 'cancelled', 'cancelled while it waited');
  t.equal((await busy).state, 'timeout');
  const run = await Promise.race([next, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 60_000))]);
  t.equal(run?.state, 'ok', 'the next call got the replacement worker');
});

t.test('memory cannot grow past the cap; the failure says so', async (t) => {
  const grow = await program(await watFixture('grow'), { maxPages: 16 });
  const run = await pool.run(grow, spec(''));
  t.equal(run.state, 'error');
  t.equal(run.shortMessage, "fixture.wasm trapped: RuntimeError: unreachable (its memory had reached the maximum of 1048576 bytes: runtime.wasm.max_memory_bytes or the module's own limit)");
});

t.test('output past max_output_bytes stops the run', async (t) => {
  const flood = await program(await watFixture('flood'));
  const run = await pool.run(flood, spec('', { maxOutputBytes: 100_000 }));
  t.match(run, { state: 'error', outputCapped: true, shortMessage: 'fixture.wasm exceeded max_output_bytes (100000) on stdout and was stopped' });
});

t.test('files: nothing without a preopen, read-only unless rw, no way out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-wasm-preopen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'data.txt'), 'inside\n');
  const bytes = await watFixture('files');
  const none = await program(bytes);
  const readOnly = await program(bytes, { preopens: [{ guest: '/data', host: dir, readOnly: true }] });
  const readWrite = await program(bytes, { preopens: [{ guest: '/data', host: dir, readOnly: false }] });
  const EBADF = 'errno 08\n';
  const ENOTCAPABLE = 'errno 76\n';

  const passwd = await pool.run(none, spec('{"r":"/etc/passwd"}'));
  t.match(passwd, { state: 'error', exitCode: 1 }, 'no preopen: /etc/passwd cannot be opened');
  t.equal(passwd.stderr.toString(), EBADF);
  t.equal(passwd.stdout.length, 0);
  t.equal((await pool.run(readOnly, spec('{"r":"../../../../etc/passwd"}'))).stderr.toString(), ENOTCAPABLE, 'not out of a preopen with ..');
  t.equal((await pool.run(readOnly, spec('{"r":"/etc/passwd"}'))).stderr.toString(), ENOTCAPABLE, 'not with an absolute path');
  const inside = await pool.run(readOnly, spec('{"r":"data.txt"}'));
  t.equal(inside.stdout.toString(), 'inside\n', 'a read-only preopen can be read');

  const refused = await pool.run(readOnly, spec('{"w":"out.txt"}'));
  t.match(refused, { state: 'error', exitCode: 1 });
  t.equal(refused.stderr.toString(), ENOTCAPABLE, 'a read-only preopen cannot be written');
  t.same(await readdir(dir), ['data.txt'], 'nothing was created');
  t.equal((await pool.run(readOnly, spec('{"w":"data.txt"}'))).stderr.toString(), ENOTCAPABLE, 'nor an existing file truncated');
  t.equal(await readFile(join(dir, 'data.txt'), 'utf8'), 'inside\n');

  const written = await pool.run(readWrite, spec('{"w":"out.txt"}'));
  t.equal(written.stdout.toString(), 'ok\n', 'an rw preopen can be written');
  t.equal(await readFile(join(dir, 'out.txt'), 'utf8'), 'written\n');

  const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
  const before = await fds();
  for (let i = 0; i < 200; i++) await pool.run(readOnly, spec('{"r":"data.txt"}'));
  t.ok((await fds()) - before < 10, 'preopens and opened files are closed after each run');
});

t.test('a missing preopen directory fails the run as not started', async (t) => {
  const gone = await program(await watFixture('files'), { preopens: [{ guest: '/data', host: '/nonexistent/acheron-wasm', readOnly: true }] });
  const run = await pool.run(gone, spec('{"r":"data.txt"}'));
  t.match(run, { state: 'error', spawnFailed: true });
  t.match(run.shortMessage, /^fixture\.wasm could not be started: WASI set-up failed: /);
});

t.test('8 concurrent invocations give 8 correct results', async (t) => {
  const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run(echo, spec(`{"i":${i}}`, { invocationId: `1796000000000-000${i}` }))));
  runs.forEach((run, i) => t.match(JSON.parse(run.stdout.toString()), { echo: { i }, invocation_id: `1796000000000-000${i}` }));
});

t.test('3000 invocations in a row: no crash, every answer right', async (t) => {
  let wrong = 0;
  for (let i = 0; i < 3000; i++) {
    const run = await pool.run(echo, spec(`{"i":${i}}`));
    if (run.state !== 'ok' || !run.stdout.toString().includes(`"echo":{"i":${i}}`)) wrong++;
  }
  t.equal(wrong, 0);
});
