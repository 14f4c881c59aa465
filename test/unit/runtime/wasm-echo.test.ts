// The wasm echo (wasm/echo.ts, built by make build) run by WasmPool in process: byte for byte what
// the native echo answers for the same stdin (wasm-many-runs.test.ts runs it 3000 times).
import t from 'tap';
import fc from 'fast-check';
import { WasmPool } from '../../../src/runtime/wasm-pool.js';
import { BUILT_WASM_WORKER, echoWasm, WASM_TEST_ENV, wasmProgram, wasmSpec } from '../../helpers/wat.js';

const pool = new WasmPool({ size: 2, worker: BUILT_WASM_WORKER });
t.teardown(() => pool.close());

const echo = await wasmProgram(await echoWasm(), { maxPages: 1024 });

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
    code: 0,
    stderr: '',
    stdout:
      JSON.stringify({
        ok: true,
        service_id: WASM_TEST_ENV.ACHERON_SERVICE_ID,
        node_id: WASM_TEST_ENV.ACHERON_NODE_ID,
        invocation_id: invocationId,
        bytes: Buffer.byteLength(raw),
        echo: payload,
      }) + '\n',
  };
}

async function sameAsNative(input: Buffer): Promise<boolean> {
  const run = await pool.run(echo, wasmSpec(input));
  const want = nativeEcho(input, '1796000000000-0001');
  if (run.exitCode !== want.code) return false;
  if (want.code === 2) return run.stderr.toString().startsWith('echo driver: stdin is not JSON: ');
  // As the native driver's process.stdout/stderr would encode them (a lone surrogate becomes U+FFFD).
  return run.stdout.equals(Buffer.from(want.stdout)) && run.stderr.equals(Buffer.from(want.stderr));
}

t.test('the wasm echo answers byte for byte what the native echo answers', async (t) => {
  const payloads = [
    '{"msg":"hi"}\n',
    '{}',
    ' {\n  "a" : [ 1, 2.50, -0, 1e3, 1E-7, 0.000001, 1e21, 123456789012345678901234567890 ] }\n',
    '{"b":1,"a":2,"b":3,"10":4,"2":5,"01":6,"4294967294":7,"4294967295":8}',
    '{"s":"\\u0041\\/\\ud83d\\ude00\\ud800x\\udc00\\u001f\\u007f\u00e9 \\" \\\\ \\b\\f\\n\\r\\t"}',
    '{"n":[0.1,0.30000000000000004,9007199254740993,5e-324,2.2250738585072014e-308,1.7976931348623157e308,1e400]}',
    '{"fail":"boom"}',
    '{"fail":"not this","fail":1}',
    '{"fail":"\\ud800 alone"}',
    '{"__proto__":{"x":1}}',
    'not json',
    '{"a":1',
  ];
  for (const payload of payloads) t.ok(await sameAsNative(Buffer.from(payload)), JSON.stringify(payload));
  t.ok(
    await sameAsNative(Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0xe0, 0x80, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x22, 0x7d])),
    'invalid UTF-8 inside a string',
  );
  await fc.assert(
    fc.asyncProperty(fc.jsonValue(), fc.boolean(), (value, pretty) => sameAsNative(Buffer.from(JSON.stringify({ value }, null, pretty ? 2 : 0)))),
    { numRuns: 80 },
  );
  await fc.assert(
    fc.asyncProperty(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => sameAsNative(Buffer.from(`{"d":${JSON.stringify(d)}}`))),
    { numRuns: 80 },
  );
  await fc.assert(
    fc.asyncProperty(fc.stringMatching(/^-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,22})?([eE][+-]?[0-9]{1,3})?$/), (n) => sameAsNative(Buffer.from(`{"n":${n}}`))),
    { numRuns: 80 },
  );
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: 'binary' }), (s) => sameAsNative(Buffer.from(JSON.stringify({ s })))),
    { numRuns: 60 },
  );
});
