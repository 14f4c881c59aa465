import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { resolveModule, type LoadedService } from '../manifest/index.js';
import { problemAt, type Problem } from '../protocol/schemas.js';
import type { WasmHost } from '../protocol/types.gen.js';
import type { DriverAdapter } from '../runtime/service-settings.js';
import { wasmAdapter } from '../runtime/wasm-adapter.js';
import { prepareWasmModule, WASM_PAGE_BYTES, WasmModuleError } from '../runtime/wasm-module.js';
import { WASM_POOL_DEFAULT_SIZE, WasmPool, type WasmProgram } from '../runtime/wasm-pool.js';
import { isInside } from './paths.js';

interface Compiled {
  module: WebAssembly.Module;
  initialPages: number;
  maxPages: number;
  wasiImports: string[];
  sha256: string;
  bytes: number;
}

/** A wasm service that passed the load checks: its module compiled, its preopens resolved. */
interface Checked {
  program: WasmProgram;
  modulePath: string;
  compiled: Compiled;
}

/**
 * The node's wasm services (SPEC §4 `runtime.type: "wasm"`): checks and compiles their modules at
 * load and at every reload (a module that is not wasm, has no `_start`, imports what WASI does not
 * provide or starts above the memory cap is a manifest problem naming the file and the reason), keeps
 * compiled modules by content hash and memory cap (a changed file is compiled again, an unchanged one
 * never), and owns the worker pool that runs them, started with the first wasm service.
 */
export class WasmServices {
  #log: Logger;
  #pool: WasmPool | undefined;
  /** By `<sha256>:<max pages>`; only the modules of loaded services are kept. */
  #compiled = new Map<string, Promise<Compiled>>();
  /** Per loaded service (the same object is kept when a reload keeps the previous good version). */
  #checked = new WeakMap<LoadedService, Checked>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Splits `services` into those that can run and problems; non-wasm services pass untouched. */
  async check(services: LoadedService[], mount: string): Promise<{ ok: LoadedService[]; problems: Problem[] }> {
    const results = await Promise.all(
      services.map((service) => (service.descriptor.runtime.type === 'wasm' && service.modulePath !== undefined ? this.#check(service, mount) : { service })),
    );
    const ok: LoadedService[] = [];
    const problems: Problem[] = [];
    for (const result of results) {
      if ('problems' in result) problems.push(...result.problems);
      else ok.push(result.service);
    }
    return { ok, problems };
  }

  /** Forgets compiled modules no service in `services` uses. */
  retain(services: readonly LoadedService[]): void {
    const used = new Set(
      services.flatMap((s) => {
        const checked = this.#checked.get(s);
        return checked ? [cacheKey(checked.compiled.sha256, checked.compiled.maxPages)] : [];
      }),
    );
    for (const key of this.#compiled.keys()) if (!used.has(key)) this.#compiled.delete(key);
  }

  /** The adapter of a checked wasm service; the pool starts with the first one. */
  adapter(service: LoadedService, nodeId: string): DriverAdapter {
    const checked = this.#checked.get(service);
    if (!checked) throw new Error(`${service.source}: wasm service used before its module was checked`);
    const { runtime } = service.descriptor;
    this.#pool ??= new WasmPool({ log: this.#log });
    return wasmAdapter({
      nodeId,
      serviceId: service.descriptor.service_id,
      modulePath: checked.modulePath,
      program: checked.program,
      pool: this.#pool,
      args: runtime.args ?? [],
      env: runtime.env ?? {},
      envPassthrough: runtime.env_passthrough ?? [],
      timeoutMs: runtime.timeout_ms,
      maxOutputBytes: runtime.max_output_bytes,
    });
  }

  /** HOST.json's `wasm` object: engine, WASI version, the module, the limits, the preopens. */
  hostInfo(service: LoadedService): WasmHost | undefined {
    const checked = this.#checked.get(service);
    if (!checked) return undefined;
    const { runtime } = service.descriptor;
    return {
      engine: 'node:wasi',
      wasi_version: 'preview1',
      node_version: process.version,
      module: { path: checked.modulePath, sha256: checked.compiled.sha256, bytes: checked.compiled.bytes },
      instance: 'fresh per invocation (fresh memory), in a pool of worker threads',
      workers: WASM_POOL_DEFAULT_SIZE,
      limits: {
        max_memory_bytes: checked.compiled.maxPages * WASM_PAGE_BYTES,
        timeout_ms: runtime.timeout_ms,
        max_output_bytes: runtime.max_output_bytes,
        max_input_bytes: runtime.max_input_bytes,
        network: false,
      },
      preopens: checked.program.preopens.map((p) => ({ guest_path: p.guest, host_path: p.host, mode: p.readOnly ? 'ro' : 'rw' })),
    };
  }

  async close(): Promise<void> {
    await this.#pool?.close();
  }

  async #check(service: LoadedService, mount: string): Promise<{ service: LoadedService } | { problems: Problem[] }> {
    const file = service.source;
    const modulePath = service.modulePath as string;
    const problem = (jsonPath: string, description: string): { problems: Problem[] } => ({ problems: [problemAt(file, jsonPath, 'wasm', description)] });
    const found = await resolveModule(modulePath, process.env.PATH);
    if ('error' in found) return problem('/runtime/module_path', found.error);
    const wasm = service.descriptor.runtime.wasm ?? {};
    const preopens: WasmProgram['preopens'] = [];
    for (const [i, preopen] of (wasm.preopens ?? []).entries()) {
      const host = resolve(dirname(file), preopen.host_path);
      const refusal = isInside(mount, host) || isInside(host, mount) ? `overlaps the node's mount ${mount}` : await notADirectory(host);
      if (refusal) return problem(`/runtime/wasm/preopens/${i}/host_path`, `${host}: ${refusal}`);
      preopens.push({ guest: preopen.guest_path, host, readOnly: preopen.mode !== 'rw' });
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(found.path);
    } catch (error) {
      return problem('/runtime/module_path', `${found.path}: cannot read: ${(error as Error).message}`);
    }
    const maxPages = Math.floor((wasm.max_memory_bytes ?? 0) / WASM_PAGE_BYTES);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const key = cacheKey(sha256, maxPages);
    let compiling = this.#compiled.get(key);
    if (!compiling) this.#compiled.set(key, (compiling = compile(bytes, maxPages, sha256)));
    let compiled: Compiled;
    try {
      compiled = await compiling;
    } catch (error) {
      this.#compiled.delete(key);
      return problem('/runtime/module_path', `${found.path}: ${(error as Error).message}`);
    }
    const checked: LoadedService = { ...service, moduleHash: sha256 };
    this.#checked.set(checked, {
      modulePath: found.path,
      compiled,
      program: { module: compiled.module, initialPages: compiled.initialPages, maxPages: compiled.maxPages, wasiImports: compiled.wasiImports, preopens },
    });
    return { service: checked };
  }
}

async function compile(bytes: Buffer, maxPages: number, sha256: string): Promise<Compiled> {
  const prepared = prepareWasmModule(bytes, maxPages);
  try {
    const { bytes: preparedBytes, ...memoryAndImports } = prepared;
    return { module: await WebAssembly.compile(preparedBytes), ...memoryAndImports, sha256, bytes: bytes.length };
  } catch (error) {
    throw new WasmModuleError(`not a valid WebAssembly module: ${(error as Error).message}`);
  }
}

function cacheKey(sha256: string, maxPages: number): string {
  return `${sha256}:${maxPages}`;
}

async function notADirectory(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).isDirectory() ? undefined : 'not a directory';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (error as Error).message;
  }
}
