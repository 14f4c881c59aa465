// The project compiles without the DOM library, which is where TypeScript declares WebAssembly; this
// declares the part the wasm runtime uses (src/runtime/wasm-*.ts), as V8 in Node 20 provides it.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Memory {
    /** In pages of 64 KiB. */
    constructor(descriptor: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
  }
  type ImportValue = ((...args: never[]) => unknown) | Memory;
  class Instance {
    constructor(module: Module, imports: Record<string, Record<string, ImportValue>>);
    readonly exports: Record<string, unknown>;
  }
  class CompileError extends Error {}
  class RuntimeError extends Error {}
  function compile(bytes: Uint8Array): Promise<Module>;
}
