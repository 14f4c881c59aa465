/** Messages between WasmPool (the daemon's thread) and wasm-worker.ts (one call at a time per worker). */

/** A host directory the guest sees under `guest` (WASI preopen); read-only unless `readOnly` is false. */
export interface WasmPreopen {
  guest: string;
  host: string;
  readOnly: boolean;
}

export interface WasmCallMessage {
  type: 'call';
  module: WebAssembly.Module;
  /** The memory the instance is given (the module imports it as HOST_MEMORY), in pages. */
  initialPages: number;
  maxPages: number;
  /** The WASI functions the module imports: only those are wrapped. */
  wasiImports: string[];
  args: string[];
  env: Record<string, string>;
  preopens: WasmPreopen[];
  input: Uint8Array;
  maxOutputBytes: number;
}

export interface WasmCallReply {
  type: 'done';
  /** The module's exit code: `_start` returned (0) or `proc_exit(n)`; null when it trapped or never started. */
  exitCode: number | null;
  /** Why it stopped when it did not exit: a trap (`RuntimeError: unreachable`) or a host refusal. */
  failure: string | null;
  /** The WASI instance could not be set up (a preopen that does not exist): nothing of the module ran. */
  notStarted: boolean;
  /** Which stream went past maxOutputBytes (the run was stopped there). */
  outputCapped: 'stdout' | 'stderr' | null;
  /** The memory had grown to its maximum when the run ended. */
  atMemoryCap: boolean;
  /** Fresh buffers of their own, so they can be transferred rather than copied. */
  stdout: Uint8Array<ArrayBuffer>;
  stderr: Uint8Array<ArrayBuffer>;
}

export interface WasmReadyMessage {
  type: 'ready';
}

export type WasmWorkerMessage = WasmCallReply | WasmReadyMessage;
