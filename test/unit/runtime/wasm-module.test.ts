// The module checks of runtime.type "wasm" (what the node refuses at load, and why) and the memory
// turned into an import capped at max_memory_bytes before the module is compiled.
import t from 'tap';
import { HOST_MEMORY, prepareWasmModule, readWasmModule } from '../../../src/runtime/wasm-module.js';
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

t.test('the memory becomes an import with the cap as its maximum (lowered or added); the module still compiles', async (t) => {
  const FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))';
  for (const [imports, memory, wantMax] of [
    ['', '1', 16],
    ['', '2 4', 4],
    [FD_WRITE, '1 65536', 16],
  ] as const) {
    const prepared = prepareWasmModule(await command(`${imports} (memory (export "memory") ${memory}) ${START}`), 16);
    const info = readWasmModule(prepared.bytes);
    const min = Number(memory.split(' ')[0]);
    t.same(info.memories, [], `(memory ${memory}) is no longer defined`);
    t.same(
      info.imports.at(-1),
      { ...HOST_MEMORY, kind: 'memory', limits: { flags: 1, min, max: wantMax } },
      `(memory ${memory}) is imported, after ${imports ? 'the other imports' : 'nothing'}`,
    );
    t.equal(info.imports.length, imports ? 2 : 1);
    t.same([prepared.initialPages, prepared.maxPages], [min, wantMax]);
    t.same(prepared.wasiImports, imports ? ['fd_write'] : [], 'the WASI functions it imports, for the worker to wrap');
    t.ok(await WebAssembly.compile(prepared.bytes));
  }
});
