// The module checks of runtime.type "wasm" (what the node refuses at load, and why) and the memory
// cap written into the module's memory section before it is compiled.
import t from 'tap';
import { prepareWasmModule, readWasmModule } from '../../../src/runtime/wasm-module.js';
import { wat } from '../../helpers/wat.js';

const START = '(func (export "_start"))';
const command = (body: string): Promise<Uint8Array> => wat(`(module ${body})`);

t.test('a module the host cannot run is refused with the reason', async (t) => {
  const refused = async (bytes: Uint8Array | Promise<Uint8Array>, reason: string | RegExp): Promise<void> => {
    const binary = await bytes;
    t.throws(() => prepareWasmModule(binary, 16), { name: 'WasmModuleError', message: reason });
  };
  await refused(Buffer.from('#!/bin/sh\necho not wasm\n'), 'not a WebAssembly module (the file does not start with "\\0asm")');
  await refused(Buffer.from('0061736d0d000100', 'hex'), 'unsupported WebAssembly binary version 65549 (expected 1; a component is not a module)');
  await refused(
    command('(memory (export "memory") 1)'),
    'exports no _start function (a WASI command module needs one; a reactor or library module cannot be run)',
  );
  await refused(command(`(memory 1) ${START}`), 'exports no memory named "memory" (WASI needs it)');
  await refused(
    command(`(import "env" "now" (func)) (memory (export "memory") 1) ${START}`),
    'imports function env.now, which WASI preview1 does not provide (only wasi_snapshot_preview1 functions are)',
  );
  await refused(
    command(`(import "wasi_snapshot_preview1" "sock_open" (func)) (memory (export "memory") 1) ${START}`),
    /imports function wasi_snapshot_preview1\.sock_open, which WASI preview1 does not provide/,
  );
  await refused(command(`(import "env" "memory" (memory 1)) (export "memory" (memory 0)) ${START}`), /imports memory env\.memory/);
  await refused(
    command(`(memory (export "memory") 17) ${START}`),
    'declares an initial memory of 1114112 bytes, above runtime.wasm.max_memory_bytes (1048576)',
  );
  await refused(Buffer.from('0061736d01000000050301', 'hex'), 'section 5 runs past the end of the file');
});

t.test('the cap lowers or adds the memory maximum; the module still compiles', async (t) => {
  for (const [memory, wantMax, effective] of [
    ['1', 16, 16],
    ['2 4', 4, 4],
    ['1 65536', 16, 16],
  ] as const) {
    const prepared = prepareWasmModule(await command(`(memory (export "memory") ${memory}) ${START}`), 16);
    t.same(readWasmModule(prepared.bytes).memories, [{ flags: 1, min: Number(memory.split(' ')[0]), max: wantMax }], `(memory ${memory})`);
    t.equal(prepared.maxPages, effective);
    t.ok(await WebAssembly.compile(prepared.bytes));
  }
});
