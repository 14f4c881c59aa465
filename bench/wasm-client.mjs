// The wasm echo without FUSE or the daemon: WasmPool from dist/ in this process, one call after the
// other, as the daemon runs them (worker threads, a fresh instance per call). Prints the per-call
// microseconds as a JSON array.
//
//   node bench/wasm-client.mjs <module.wasm> <payload-file> <n> <warmup>
import { readFile } from 'node:fs/promises';
import { prepareWasmModule } from '../dist/runtime/wasm-module.js';
import { WasmPool } from '../dist/runtime/wasm-pool.js';

const [modulePath, payloadFile, n, warmup] = process.argv.slice(2);
const prepared = prepareWasmModule(await readFile(modulePath), 1024);
const program = {
  module: await WebAssembly.compile(/** @type {Uint8Array<ArrayBuffer>} */ (prepared.bytes)),
  initialPages: prepared.initialPages,
  maxPages: prepared.maxPages,
  wasiImports: prepared.wasiImports,
  preopens: [],
};
const input = await readFile(payloadFile);
const pool = new WasmPool();
const env = { ACHERON_NODE_ID: 'bench', ACHERON_SERVICE_ID: 'echo-wasm' };
const samples = [];
for (let i = 0; i < Number(warmup) + Number(n); i++) {
  const started = performance.now();
  const run = await pool.run(program, {
    file: modulePath,
    args: [],
    cwd: '/',
    env,
    invocationId: `0-${i}`,
    input,
    timeoutMs: 10_000,
    killGraceMs: 0,
    maxOutputBytes: 1 << 20,
  });
  const us = (performance.now() - started) * 1000;
  if (run.state !== 'ok' || !run.stdout.toString().endsWith(`"echo":${JSON.stringify(JSON.parse(input.toString()))}}\n`)) {
    console.error(`wasm-client: call ${i}: ${run.shortMessage}`);
    process.exit(1);
  }
  if (i >= Number(warmup)) samples.push(us);
}
await pool.close();
console.log(JSON.stringify(samples));
