// WasmPool and its worker in process (no FUSE, no daemon): the WASI driver ABI (env and
// args), the limits that must hold (timeout_ms inside an infinite loop and inside a blocking sleep,
// cancel, max_output_bytes, the memory cap), file access only through preopens (read-only unless rw),
// no descriptor leaks, the wait for a worker (services taking turns, the start when a worker takes
// a call), concurrency. wasm-echo.test.ts has the echo itself.
import t from 'tap';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmPool } from '../../../src/runtime/wasm-pool.js';
import { BUILT_WASM_WORKER, echoWasm, wasmProgram, wasmSpec, watFixture } from '../../helpers/wat.js';
import { settledWithin } from '../../helpers/settle.js';

const pool = new WasmPool({ size: 2, worker: BUILT_WASM_WORKER });
t.teardown(() => pool.close());

const echo = await wasmProgram(await echoWasm(), { maxPages: 1024 });

t.test('args and environment reach the module; ACHERON_INVOCATION_ID is per invocation', async (t) => {
  const run = await pool.run(echo, wasmSpec('{}', { invocationId: '1796000000000-0042' }));
  t.match(JSON.parse(run.stdout.toString()), { service_id: 'echo-wasm', node_id: 'node-1', invocation_id: '1796000000000-0042' });
});

t.test('a payload that is a view into a larger buffer: the module reads just the payload, and the buffer of the caller stays whole', async (t) => {
  const slab = Buffer.from('garbage-before{"msg":"inside"}garbage-after');
  const payload = slab.subarray(14, 30);
  const run = await pool.run(echo, wasmSpec(payload));
  t.match(JSON.parse(run.stdout.toString()), { ok: true, echo: { msg: 'inside' } });
  t.equal(payload.toString(), '{"msg":"inside"}', 'the payload is not detached (a copy was transferred)');
  t.equal(slab.toString(), 'garbage-before{"msg":"inside"}garbage-after', "the caller's buffer is whole");
});

t.test('every invocation gets a fresh instance: nothing stays in memory from the last one', async (t) => {
  const counter = await wasmProgram(await watFixture('counter'));
  const outputs = [];
  for (let i = 0; i < 4; i++) outputs.push((await pool.run(counter, wasmSpec(''))).stdout.toString());
  t.same(outputs, ['1', '1', '1', '1']);
});

t.test('a memory is reused only zeroed, and only when it did not grow (one worker, so every run could get the last one)', async (t) => {
  const single = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
  t.teardown(() => single.close());
  const counter = await wasmProgram(await watFixture('counter'));
  const growOnce = await wasmProgram(await watFixture('grow-once'));
  const outputs: string[] = [];
  for (const program of [counter, counter, growOnce, growOnce, counter, growOnce, counter])
    outputs.push((await single.run(program, wasmSpec(''))).stdout.toString());
  t.same(outputs, ['1', '1', '1', '1', '1', '1', '1']);
});

t.test('one worker, two modules taking turns, with pauses: each call runs its own module on fresh memory', async (t) => {
  const single = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
  t.teardown(() => single.close());
  const counter = await wasmProgram(await watFixture('counter'));
  const outputs: string[] = [];
  for (const program of [counter, counter, echo, echo, counter, echo, counter]) {
    const run = await single.run(program, wasmSpec('{"turn":1}'));
    outputs.push(program === echo ? JSON.stringify(JSON.parse(run.stdout.toString()).echo) : run.stdout.toString());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.same(outputs, ['1', '1', '{"turn":1}', '{"turn":1}', '1', '{"turn":1}', '1']);
});

t.test('an infinite loop is stopped at timeout_ms and the pool goes on', async (t) => {
  const loop = await wasmProgram(await watFixture('loop'));
  const run = await pool.run(loop, wasmSpec('', { file: 'loop.wasm', timeoutMs: 300 }));
  t.equal(run.state, 'timeout');
  t.equal(run.shortMessage, 'loop.wasm timed out after 300 ms and was stopped');
  // Both workers stuck at once: each is terminated and replaced.
  const both = await Promise.all([1, 2].map(() => pool.run(loop, wasmSpec('', { timeoutMs: 200 }))));
  t.same(
    both.map((r) => r.state),
    ['timeout', 'timeout'],
  );
  const after = await pool.run(echo, wasmSpec('{"after":"loop"}'));
  t.equal(after.state, 'ok', after.shortMessage);
  t.match(JSON.parse(after.stdout.toString()), { echo: { after: 'loop' } });
});

t.test('a module sleeping in poll_oneoff is stopped at timeout_ms too', async (t) => {
  const sleeper = await wasmProgram(await watFixture('sleep'));
  const started = Date.now();
  const run = await pool.run(sleeper, wasmSpec('', { timeoutMs: 300 }));
  t.equal(run.state, 'timeout');
  t.ok(Date.now() - started < 30_000, 'well before the 60 s sleep ends');
  t.equal((await pool.run(echo, wasmSpec('{}'))).state, 'ok', 'the pool goes on');
});

t.test('a cancelled run ends as cancelled', async (t) => {
  const loop = await wasmProgram(await watFixture('loop'));
  const controller = new AbortController();
  const running = pool.run(loop, wasmSpec('', { timeoutMs: 60_000 }), { signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const run = await running;
  t.equal(run.state, 'cancelled');
  t.equal(run.shortMessage, 'fixture.wasm was cancelled');
});

t.test('a run cancelled while its worker is starting ends as cancelled, without running', async (t) => {
  const fresh = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
  t.teardown(() => fresh.close());
  const loop = await wasmProgram(await watFixture('loop'));
  const controller = new AbortController();
  let started = false;
  const running = fresh.run(loop, wasmSpec('', { timeoutMs: 60_000 }), { signal: controller.signal, started: () => (started = true) });
  controller.abort();
  const run = await settledWithin(running, 20_000, undefined);
  t.equal(run?.state, 'cancelled');
  t.notOk(started);
  t.equal((await fresh.run(echo, wasmSpec('{}'))).state, 'ok', 'its worker serves the next call');
});

t.test(
  'a caller that refuses the run when its worker comes (`started` throws): the error reaches it, nothing runs, the worker serves the next call',
  async (t) => {
    const single = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
    t.teardown(() => single.close());
    const refusal = new Error('service disabled meanwhile');
    await t.rejects(
      single.run(echo, wasmSpec('{}'), {
        started: () => {
          throw refusal;
        },
      }),
      refusal,
    );
    const next = await settledWithin(single.run(echo, wasmSpec('{"n":2}')), 20_000, undefined);
    t.equal(next?.state, 'ok', 'the only worker was given back');
  },
);

t.test('calls beyond the pool wait their turn; one cancelled while waiting holds nobody up', async (t) => {
  const single = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
  t.teardown(() => single.close());
  const loop = await wasmProgram(await watFixture('loop'));
  const busy = single.run(loop, wasmSpec('', { timeoutMs: 1500 }));
  const controller = new AbortController();
  const cancelled = single.run(echo, wasmSpec('{"n":"cancelled"}'), { signal: controller.signal });
  const next = single.run(echo, wasmSpec('{"n":"next"}'));
  controller.abort();
  t.equal((await cancelled).state, 'cancelled', 'cancelled while it waited');
  t.equal((await busy).state, 'timeout');
  const run = await settledWithin(next, 60_000, undefined);
  t.equal(run?.state, 'ok', 'the next call got the replacement worker');
});

t.test('services waiting for a worker take turns: one with many calls queued holds another up for one call only', async (t) => {
  const single = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
  t.teardown(() => single.close());
  const loop = await wasmProgram(await watFixture('loop'));
  const busy = single.run(loop, wasmSpec('', { timeoutMs: 300 }), { service: 'spin' });
  const order: string[] = [];
  const call = (service: string, n: number): Promise<unknown> =>
    single.run(echo, wasmSpec(`{"n":${n}}`), { service }).then((run) => order.push(`${service}:${JSON.parse(run.stdout.toString()).echo.n}`));
  const calls = [call('many', 1), call('many', 2), call('many', 3), call('other', 1)];
  await Promise.all([busy, ...calls]);
  t.same(order, ['many:1', 'other:1', 'many:2', 'many:3']);
});

t.test('a call that waited for a worker starts then: `started` is called when a worker takes it, and its timeout_ms counts from there', async (t) => {
  const single = new WasmPool({ size: 1, worker: BUILT_WASM_WORKER });
  t.teardown(() => single.close());
  const loop = await wasmProgram(await watFixture('loop'));
  const t0 = Date.now();
  const startedAt: number[] = [];
  const busy = single.run(loop, wasmSpec('', { timeoutMs: 600 }), { started: () => startedAt.push(Date.now() - t0) });
  const waiting = single.run(loop, wasmSpec('', { file: 'waiting.wasm', timeoutMs: 300 }), { started: () => startedAt.push(Date.now() - t0) });
  const controller = new AbortController();
  let cancelledStarted = false;
  const cancelled = single.run(echo, wasmSpec('{}'), { signal: controller.signal, started: () => (cancelledStarted = true) });
  controller.abort();
  t.equal((await cancelled).state, 'cancelled');
  t.notOk(cancelledStarted, 'a call cancelled while it waited never started');
  const [first, second] = await Promise.all([busy, waiting]);
  t.equal(first.state, 'timeout');
  t.match(second, { state: 'timeout', shortMessage: 'waiting.wasm timed out after 300 ms and was stopped' });
  t.equal(startedAt.length, 2);
  t.ok((startedAt[1] ?? 0) >= 600, `the waiting call started when the worker was free (at ${startedAt[1]} ms)`);
  // 290: its timer and its duration are read on two clocks (a CI run measured 299 ms); from the queueing it would be 600 or more.
  t.ok(second.durationMs >= 290 && second.durationMs < 550, `its duration counts from its start (${second.durationMs} ms)`);
});

t.test('memory cannot grow past the cap; the failure says so', async (t) => {
  const grow = await wasmProgram(await watFixture('grow'), { maxPages: 16 });
  const run = await pool.run(grow, wasmSpec(''));
  t.equal(run.state, 'error');
  t.equal(
    run.shortMessage,
    "fixture.wasm trapped: RuntimeError: unreachable (its memory had reached the maximum of 1048576 bytes: runtime.wasm.max_memory_bytes or the module's own limit)",
  );
});

t.test('output past max_output_bytes stops the run', async (t) => {
  const flood = await wasmProgram(await watFixture('flood'));
  const run = await pool.run(flood, wasmSpec('', { maxOutputBytes: 100_000 }));
  t.match(run, { state: 'error', outputCapped: true, shortMessage: 'fixture.wasm exceeded max_output_bytes (100000) on stdout and was stopped' });
});

t.test('a run stopped by the output cap says so alone, even with its memory at the maximum (it blamed the memory cap too)', async (t) => {
  const growFlood = await wasmProgram(await watFixture('grow-flood'), { maxPages: 16 });
  const run = await pool.run(growFlood, wasmSpec('', { maxOutputBytes: 100 }));
  t.match(run, { state: 'error', outputCapped: true });
  t.equal(run.shortMessage, 'fixture.wasm exceeded max_output_bytes (100) on stdout and was stopped');
});

t.test('a preopen whose directory is gone since the load: the failure names it (uvwasi says only UVWASI_ENOENT)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-wasm-gone-'));
  const program = await wasmProgram(await echoWasm(), { preopens: [{ guest: '/data', host: join(dir, 'gone'), readOnly: true }] });
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = await pool.run(program, wasmSpec('{}'));
  t.equal(run.spawnFailed, true);
  t.match(run.shortMessage, `could not be started: WASI set-up failed: the preopen /data (host directory ${join(dir, 'gone')}) is not a directory there: `);
});

t.test('files: nothing without a preopen, read-only unless rw, no way out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-wasm-preopen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'data.txt'), 'inside\n');
  const bytes = await watFixture('files');
  const none = await wasmProgram(bytes);
  const readOnly = await wasmProgram(bytes, { preopens: [{ guest: '/data', host: dir, readOnly: true }] });
  const readWrite = await wasmProgram(bytes, { preopens: [{ guest: '/data', host: dir, readOnly: false }] });
  const EBADF = 'errno 08\n';
  const ENOTCAPABLE = 'errno 76\n';

  const passwd = await pool.run(none, wasmSpec('{"r":"/etc/passwd"}'));
  t.match(passwd, { state: 'error', exitCode: 1 }, 'no preopen: /etc/passwd cannot be opened');
  t.equal(passwd.stderr.toString(), EBADF);
  t.equal(passwd.stdout.length, 0);
  t.equal((await pool.run(readOnly, wasmSpec('{"r":"../../../../etc/passwd"}'))).stderr.toString(), ENOTCAPABLE, 'not out of a preopen with ..');
  t.equal((await pool.run(readOnly, wasmSpec('{"r":"/etc/passwd"}'))).stderr.toString(), ENOTCAPABLE, 'not with an absolute path');
  const inside = await pool.run(readOnly, wasmSpec('{"r":"data.txt"}'));
  t.equal(inside.stdout.toString(), 'inside\n', 'a read-only preopen can be read');

  const refused = await pool.run(readOnly, wasmSpec('{"w":"out.txt"}'));
  t.match(refused, { state: 'error', exitCode: 1 });
  t.equal(refused.stderr.toString(), ENOTCAPABLE, 'a read-only preopen cannot be written');
  t.same(await readdir(dir), ['data.txt'], 'nothing was created');
  t.equal((await pool.run(readOnly, wasmSpec('{"w":"data.txt"}'))).stderr.toString(), ENOTCAPABLE, 'nor an existing file truncated');
  t.equal(await readFile(join(dir, 'data.txt'), 'utf8'), 'inside\n');

  const written = await pool.run(readWrite, wasmSpec('{"w":"out.txt"}'));
  t.equal(written.stdout.toString(), 'ok\n', 'an rw preopen can be written');
  t.equal(await readFile(join(dir, 'out.txt'), 'utf8'), 'written\n');

  const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
  const before = await fds();
  for (let i = 0; i < 200; i++) await pool.run(readOnly, wasmSpec('{"r":"data.txt"}'));
  t.ok((await fds()) - before < 10, 'preopens and opened files are closed after each run');
});

t.test('a missing preopen directory fails the run as not started', async (t) => {
  const gone = await wasmProgram(await watFixture('files'), { preopens: [{ guest: '/data', host: '/nonexistent/acheron-wasm', readOnly: true }] });
  const run = await pool.run(gone, wasmSpec('{"r":"data.txt"}'));
  t.match(run, { state: 'error', spawnFailed: true });
  t.match(run.shortMessage, /^fixture\.wasm could not be started: WASI set-up failed: /);
});

t.test('8 concurrent invocations give 8 correct results', async (t) => {
  const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run(echo, wasmSpec(`{"i":${i}}`, { invocationId: `1796000000000-000${i}` }))));
  runs.forEach((run, i) => t.match(JSON.parse(run.stdout.toString()), { echo: { i }, invocation_id: `1796000000000-000${i}` }));
});
