// What a run's end says (driver ABI v1, docs/driver-abi.md "Outcomes"): the result on exit 0, else
// stderr or what is known, and never more than ERROR_STDERR_MAX_BYTES of stderr in the error text
// (every copy of it is journaled), cut between characters, saying how much more there is.
import t from 'tap';
import { ERROR_STDERR_MAX_BYTES, interpretRun } from '../../../src/runtime/native-proc-adapter.js';
import { outputlessRun, type RunResult } from '../../../src/runtime/run-result.js';

const ID = '01J00000000000000000000000';
const failed = (stderr: Buffer, extra: Partial<RunResult> = {}): RunResult => ({
  ...outputlessRun({ state: 'error', shortMessage: 'driver exited with code 1' }),
  exitCode: 1,
  stderr,
  ...extra,
});

t.test('exit 0: the result; a plain failure: its stderr; none: what is known', async (t) => {
  t.same(interpretRun({ ...outputlessRun({ state: 'ok', shortMessage: '' }), stdout: Buffer.from('{"a":1}') }, ID), {
    state: 'ok',
    result: Buffer.from('{"a":1}'),
  });
  t.same(interpretRun(failed(Buffer.from('it broke\n')), ID), { state: 'error', error: 'it broke\n' });
  t.same(interpretRun(failed(Buffer.alloc(0)), ID), { state: 'error', error: 'driver exited with code 1' });
});

t.test('a stderr past the bound: its first 64 KiB, whole characters, and how much more', async (t) => {
  const big = Buffer.concat([Buffer.alloc(ERROR_STDERR_MAX_BYTES - 1, 'a'), Buffer.from('é'), Buffer.alloc(1 << 20, 0)]);
  const { error } = interpretRun(failed(big, { outputCapped: true, shortMessage: 'driver exceeded max_output_bytes (1048576) on stderr and was stopped' }), ID);
  t.ok(error !== undefined && Buffer.byteLength(error) < ERROR_STDERR_MAX_BYTES + 300, `bounded (${Buffer.byteLength(error ?? '')} bytes)`);
  t.match(error, /^driver exceeded max_output_bytes \(1048576\) on stderr and was stopped\naaa/, 'the message first');
  t.notMatch(error, /\uFFFD/, 'not cut inside a character');
  t.match(
    error,
    new RegExp(
      `\\n… ${big.length - (ERROR_STDERR_MAX_BYTES - 1)} more bytes of stderr: the whole of it is in jobs/${ID}/stderr.txt while the job is kept \\(runtime.jobs_keep\\)\\n$`,
    ),
    'says how much more and where',
  );
});

t.test('stderr that is not UTF-8 is cut at the bound too, not emptied', async (t) => {
  const { error } = interpretRun(failed(Buffer.alloc(ERROR_STDERR_MAX_BYTES * 2, 0x80)), ID);
  t.ok(error !== undefined && Buffer.byteLength(error) > ERROR_STDERR_MAX_BYTES, `the first 64 KiB are kept (${Buffer.byteLength(error ?? '')} bytes of text)`);
  t.match(error, new RegExp(`… ${ERROR_STDERR_MAX_BYTES + 3} more bytes of stderr`), 'at most three bytes given back to a character');
});

t.test('a wasm trap, or an exit at its memory cap, says so before the stderr the module wrote (it was stderr alone)', async (t) => {
  const trapped = failed(Buffer.from('about to trap\n'), { exitCode: null, shortMessage: '/m/trap.wasm trapped: RuntimeError: unreachable' });
  t.same(interpretRun(trapped, ID), { state: 'error', error: '/m/trap.wasm trapped: RuntimeError: unreachable\nabout to trap\n' });
  const capped = failed(Buffer.from('grow failed\n'), {
    exitCode: 3,
    shortMessage:
      "/m/mem.wasm exited with code 3 (its memory had reached the maximum of 1048576 bytes: runtime.wasm.max_memory_bytes or the module's own limit)",
  });
  t.match(interpretRun(capped, ID).error, /^\/m\/mem\.wasm exited with code 3 \(its memory had reached the maximum of 1048576 bytes.*\)\ngrow failed\n$/);
});
