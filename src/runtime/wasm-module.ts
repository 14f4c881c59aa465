/**
 * Reading a WASI command module's binary before it is compiled (SPEC §4 `runtime.type: "wasm"`):
 * what it imports and exports, and its memory, which becomes an import here so that the host gives
 * every instance its memory, capped by the import's maximum (worker `resourceLimits` cover only the
 * JavaScript heap, never wasm memory).
 */

export const WASM_PAGE_BYTES = 65536;

/** The functions of WASI preview1 (`wasi_snapshot_preview1`), all of which node:wasi provides. */
export const WASI_PREVIEW1_FUNCTIONS: ReadonlySet<string> = new Set([
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
]);
export const WASI_MODULE = 'wasi_snapshot_preview1';

/** A module this host cannot run; `message` says why in terms of the module. */
export class WasmModuleError extends Error {
  static {
    Object.defineProperty(this.prototype, 'name', { value: 'WasmModuleError', enumerable: false, writable: true, configurable: true });
  }
}

const SECTION = { custom: 0, type: 1, import: 2, memory: 5, export: 7 } as const;
const KIND = { func: 0, table: 1, memory: 2, global: 3, tag: 4 } as const;
const KIND_NAMES = ['function', 'table', 'memory', 'global', 'tag'];

/** A memory's limits in pages: flags bit 0 says whether `max` is there. */
interface Limits {
  flags: number;
  min: number;
  max: number | undefined;
}

/** A little-endian LEB128 reader over the module bytes that names the offset when they end early. */
class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
  ) {
    this.pos = pos;
  }

  byte(): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw new WasmModuleError(`truncated at byte ${this.pos}`);
    this.pos++;
    return b;
  }

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new WasmModuleError(`bad LEB128 number before byte ${this.pos}`);
  }

  name(): string {
    const length = this.u32();
    const end = this.pos + length;
    if (end > this.bytes.length) throw new WasmModuleError(`truncated name at byte ${this.pos}`);
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, length).toString('utf8');
    this.pos = end;
    return text;
  }

  /** limits: flags, min[, max]; shared (0x02) and 64-bit (0x04) memories are refused by the caller. */
  limits(): Limits {
    const flags = this.byte();
    const min = this.u32();
    return { flags, min, max: flags & 1 ? this.u32() : undefined };
  }
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** What a module needs, read from its import, memory and export sections. */
export interface WasmModuleInfo {
  /** `limits`: an imported memory's, in pages. */
  imports: Array<{ module: string; name: string; kind: string; limits?: Limits }>;
  exports: Map<string, string>;
  /** Each defined memory's declared limits, in pages. */
  memories: Limits[];
}

/** Reads the sections that matter here; throws WasmModuleError when the bytes are not a wasm binary. */
export function readWasmModule(bytes: Uint8Array): WasmModuleInfo {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmModuleError('not a WebAssembly module (the file does not start with "\\0asm")');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new WasmModuleError(
      `unsupported WebAssembly binary version ${Buffer.from(bytes.subarray(4, 8)).readUInt32LE(0)} (expected 1; a component is not a module)`,
    );
  }
  const info: WasmModuleInfo = { imports: [], exports: new Map(), memories: [] };
  const r = new Reader(bytes, 8);
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > bytes.length) throw new WasmModuleError(`section ${id} runs past the end of the file`);
    const section = new Reader(bytes.subarray(0, end), r.pos);
    if (id === SECTION.import) {
      for (let n = section.u32(); n > 0; n--) {
        const module = section.name();
        const name = section.name();
        const kind = section.byte();
        let limits: Limits | undefined;
        if (kind === KIND.func) section.u32();
        else if (kind === KIND.table) {
          section.byte();
          section.limits();
        } else if (kind === KIND.memory) limits = section.limits();
        else if (kind === KIND.global) {
          section.byte();
          section.byte();
        } else if (kind === KIND.tag) {
          section.byte();
          section.u32();
        } else throw new WasmModuleError(`unknown import kind ${kind} for ${module}.${name}`);
        info.imports.push({ module, name, kind: KIND_NAMES[kind] ?? String(kind), ...(limits && { limits }) });
      }
    } else if (id === SECTION.memory) {
      for (let n = section.u32(); n > 0; n--) info.memories.push(section.limits());
    } else if (id === SECTION.export) {
      for (let n = section.u32(); n > 0; n--) {
        const name = section.name();
        const kind = section.byte();
        section.u32();
        info.exports.set(name, KIND_NAMES[kind] ?? String(kind));
      }
    }
    r.pos = end;
  }
  return info;
}

/** Where a prepared module takes its memory from: the worker passes one in with every instance. */
export const HOST_MEMORY = { module: 'acheron', name: 'memory' } as const;

/** A module ready to compile, and the memory each of its instances is given (pages). */
export interface PreparedWasmModule {
  bytes: Uint8Array;
  /** The module's declared initial memory. */
  initialPages: number;
  /** The lower of the cap and the module's own maximum. */
  maxPages: number;
  /** The WASI functions it imports: the only ones the worker wraps for an instance. */
  wasiImports: string[];
}

/**
 * Checks that a module is a WASI preview1 command this host can run under a memory cap of `maxPages`,
 * and returns its bytes with its memory turned into an import (HOST_MEMORY) of the same initial size
 * whose maximum is the cap (or the module's own maximum when lower), so `memory.grow` past the cap
 * fails inside the module. The host then gives each instance its memory: fresh, or one of a finished
 * run zeroed (wasm-worker.ts), which costs far less than a new one. Throws WasmModuleError naming the
 * reason.
 */
export function prepareWasmModule(bytes: Uint8Array, maxPages: number): PreparedWasmModule {
  const info = readWasmModule(bytes);
  for (const imp of info.imports) {
    if (imp.module !== WASI_MODULE || imp.kind !== 'function' || !WASI_PREVIEW1_FUNCTIONS.has(imp.name)) {
      throw new WasmModuleError(`imports ${imp.kind} ${imp.module}.${imp.name}, which WASI preview1 does not provide (only ${WASI_MODULE} functions are)`);
    }
  }
  if (info.exports.get('_start') !== 'function')
    throw new WasmModuleError('exports no _start function (a WASI command module needs one; a reactor or library module cannot be run)');
  if (info.exports.get('memory') !== 'memory') throw new WasmModuleError('exports no memory named "memory" (WASI needs it)');
  const [memory, ...more] = info.memories;
  if (!memory) throw new WasmModuleError('defines no memory of its own');
  if (more.length > 0) throw new WasmModuleError(`defines ${info.memories.length} memories (this host runs modules with one)`);
  if (memory.flags & ~1) throw new WasmModuleError(`declares a ${memory.flags & 2 ? 'shared' : '64-bit'} memory, which this host does not run`);
  if (memory.min > maxPages) {
    throw new WasmModuleError(
      `declares an initial memory of ${memory.min * WASM_PAGE_BYTES} bytes, above runtime.wasm.max_memory_bytes (${maxPages * WASM_PAGE_BYTES})`,
    );
  }
  const effective = Math.min(maxPages, memory.max ?? maxPages);
  return {
    bytes: importMemory(bytes, memory.min, effective),
    initialPages: memory.min,
    maxPages: effective,
    wasiImports: info.imports.map((imp) => imp.name),
  };
}

/**
 * The same bytes with the memory section gone and a memory import (HOST_MEMORY, limits
 * `min`..`max`) added after the other imports: memory index 0 is then the import, so the code, the
 * data segments and the "memory" export refer to it unchanged, and function indices do not move.
 */
function importMemory(bytes: Uint8Array, min: number, max: number): Uint8Array {
  const entry = [...nameBytes(HOST_MEMORY.module), ...nameBytes(HOST_MEMORY.name), KIND.memory, 1, ...uleb(min), ...uleb(max)];
  const section = (count: number, entries: ArrayLike<number>): Uint8Array => {
    const body = [...uleb(count), ...Array.from(entries)];
    return Uint8Array.of(SECTION.import, ...uleb(body.length), ...body);
  };
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  let imported = false;
  const r = new Reader(bytes, 8);
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    r.pos = end;
    if (id === SECTION.import) {
      const body = new Reader(bytes.subarray(0, end), end - size);
      const count = body.u32();
      parts.push(section(count + 1, [...bytes.subarray(body.pos, end), ...entry]));
      imported = true;
      continue;
    }
    // A module without imports gets an import section where one goes: after the type section.
    if (!imported && id !== SECTION.custom && id !== SECTION.type) {
      parts.push(section(1, entry));
      imported = true;
    }
    if (id !== SECTION.memory) parts.push(bytes.subarray(start, end));
  }
  return Buffer.concat(parts);
}

function nameBytes(name: string): number[] {
  const utf8 = Buffer.from(name, 'utf8');
  return [...uleb(utf8.length), ...utf8];
}
