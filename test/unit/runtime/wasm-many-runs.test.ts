// Many wasm invocations in a row in one process: plain node:wasi crashed Node 20 (SIGSEGV) after
// 1000-3000 runs; the worker wraps every WASI import in JavaScript and WasmPool turns V8's fast API
// calls off, and every answer must still be right.
import t from 'tap';
import { WasmPool } from '../../../src/runtime/wasm-pool.js';
import { BUILT_WASM_WORKER, echoWasm, wasmProgram, wasmSpec } from '../../helpers/wat.js';

const pool = new WasmPool({ size: 2, worker: BUILT_WASM_WORKER });
t.teardown(() => pool.close());

const echo = await wasmProgram(await echoWasm(), { maxPages: 1024 });

t.test('3000 invocations in a row: no crash, every answer right', async (t) => {
  let wrong = 0;
  for (let i = 0; i < 3000; i++) {
    const run = await pool.run(echo, wasmSpec(`{"i":${i}}`));
    if (run.state !== 'ok' || !run.stdout.toString().includes(`"echo":{"i":${i}}`)) wrong++;
  }
  t.equal(wrong, 0);
});
