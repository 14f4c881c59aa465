// WAT → wasm for test fixtures, with the pinned npm `wabt` (an Emscripten build; no native tools).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import wabtInit from 'wabt';
import type { DriverSpec } from '../../src/runtime/run-result.js';
import { prepareWasmModule } from '../../src/runtime/wasm-module.js';
import type { WasmProgram } from '../../src/runtime/wasm-pool.js';
import type { WasmPreopen } from '../../src/runtime/wasm-protocol.js';
import { FIXTURES, REPO } from './node.js';

let wabt: ReturnType<typeof wabtInit> | undefined;

/** The binary of a module written in the WebAssembly text format. */
export async function wat(source: string, name = 'fixture.wat'): Promise<Uint8Array> {
  wabt ??= wabtInit();
  const parsed = (await wabt).parseWat(name, source);
  try {
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

/** test/fixtures/wasm/<name>.wat, compiled. */
export async function watFixture(name: string): Promise<Uint8Array> {
  const file = join(FIXTURES, 'wasm', `${name}.wat`);
  return wat(await readFile(file, 'utf8'), file);
}

/** The echo driver `make build` compiles (wasm/build/echo.wasm), which tests of it need. */
export const ECHO_WASM = join(REPO, 'wasm', 'build', 'echo.wasm');

/** The bytes of ECHO_WASM, or an error saying how to build it. */
export function echoWasm(): Promise<Buffer> {
  return readFile(ECHO_WASM).catch(() => {
    throw new Error(`${ECHO_WASM} is missing: run make build`);
  });
}

/**
 * The built wasm worker (dist/, from make build), started without the test's TypeScript loader: a
 * worker started from the sources compiles them first, which takes seconds on a loaded machine, and
 * tests of timeouts start many.
 */
export const BUILT_WASM_WORKER = { url: pathToFileURL(join(REPO, 'dist', 'runtime', 'wasm-worker.js')), execArgv: [] };

/** A module compiled as the node compiles it: memory capped at `maxPages` (default 16 MiB). */
export async function wasmProgram(bytes: Uint8Array, options: { maxPages?: number; preopens?: WasmPreopen[] } = {}): Promise<WasmProgram> {
  const prepared = prepareWasmModule(bytes, options.maxPages ?? 256);
  return {
    module: await WebAssembly.compile(prepared.bytes),
    initialPages: prepared.initialPages,
    maxPages: prepared.maxPages,
    wasiImports: prepared.wasiImports,
    preopens: options.preopens ?? [],
  };
}

/** The environment the wasm tests give their runs (a service's ids). */
export const WASM_TEST_ENV = { ACHERON_NODE_ID: 'node-1', ACHERON_SERVICE_ID: 'echo-wasm' };

/** A DriverSpec of a wasm run: `input` on stdin, generous limits unless `over` says otherwise. */
export function wasmSpec(input: string | Buffer, over: Partial<DriverSpec> = {}): DriverSpec {
  return {
    file: 'fixture.wasm',
    args: [],
    cwd: '/',
    env: WASM_TEST_ENV,
    invocationId: '1796000000000-0001',
    input: Buffer.from(input),
    timeoutMs: 30_000,
    killGraceMs: 0,
    maxOutputBytes: 1 << 20,
    ...over,
  };
}
