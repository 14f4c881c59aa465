// WAT → wasm for test fixtures, with the pinned npm `wabt` (an Emscripten build; no native tools).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import wabtInit from 'wabt';
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
