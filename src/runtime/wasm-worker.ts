/**
 * A worker thread of WasmPool: runs one WASI command at a time with node:wasi, in a fresh instance
 * (fresh memory) per call. The module imports its memory (wasm-module.ts, HOST_MEMORY): a run's memory
 * is zeroed after its reply has gone and given to the next run of the same size, which then sees what
 * a new one holds (zeros, then its data segments) without the cost of a new one (on this VM the page
 * faults and unmapping of a new memory were most of an instance's cost). stdin is the payload and
 * stdout/stderr are collected by JavaScript shims over fd_read/fd_write, so no file or pipe is
 * involved. Measured traps (docs/driver-abi.md, "wasm"):
 * - Node 20's fast API calls crash V8 after 1000-3000 WASI runs when the guest calls node:wasi's
 *   functions directly: every WASI import is wrapped in a JavaScript function (WasmPool also turns the fast
 *   calls off).
 * - node:wasi never closes the host descriptors of preopens or of files the guest opened: closed here
 *   after each run.
 * - The guest may close or renumber fds 0-2, which would close this process's own descriptors: those
 *   calls are answered here and never reach node:wasi, whose stdio is /dev/null anyway.
 * - A host call that blocks (a clock sleep in poll_oneoff) would hold off terminate(): clock-only
 *   polls sleep in Atomics.wait, which terminate() interrupts.
 */
import { open, stat } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import type { WasmCallMessage, WasmCallReply } from './wasm-protocol.js';
import { HOST_MEMORY, WASI_MODULE, WASM_PAGE_BYTES } from './wasm-module.js';

type HostFunction = (...args: unknown[]) => unknown;

// node:wasi warns once per thread that it is experimental; this host knows, and that one message is
// dropped before the module loads (a static import would load it before this line runs).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(typeof warning === 'string' ? warning : warning.message).startsWith('WASI is an experimental')) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
const { WASI } = await import('node:wasi');

/** Where node:wasi's own stdio points: the shims below serve fds 0-2, so nothing reaches it. */
const devNull = await open('/dev/null', 'r+');

// WASI errno values (preview1).
const E_SUCCESS = 0;
const E_NOTSUP = 58;
/** Rights of a read-only preopen: path_open, fd_readdir, path_readlink, path_filestat_get, fd_filestat_get... */
const READ_ONLY_BASE = 0x24e000n;
/** ... and of what is opened below it: the same plus fd_read, fd_seek, fd_tell (no write, create, delete, link). */
const READ_ONLY_INHERITING = 0x24e026n;
const SUBSCRIPTION_BYTES = 48;
const EVENT_BYTES = 32;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Zeroed memories of finished runs, by size (`initial:maximum` pages), for the next run of that size.
 * Zeroing writes the whole memory while a new one costs only the pages a run touches: past
 * SPARE_MAX_BYTES a new one is cheaper. A memory that grew is never kept (a new one starts smaller).
 */
const spareMemories = new Map<string, WebAssembly.Memory>();
const SPARE_MAX_BYTES = 2 * 1024 * 1024;
const SPARE_MAX_SIZES = 4;

function takeMemory(initial: number, maximum: number): WebAssembly.Memory {
  const key = `${initial}:${maximum}`;
  const spare = spareMemories.get(key);
  if (!spare) return new WebAssembly.Memory({ initial, maximum });
  spareMemories.delete(key);
  return spare;
}

/** Zeroes a finished run's memory and keeps it for the next run of its size (or lets it go). */
function keepMemory(memory: WebAssembly.Memory, initial: number, maximum: number): void {
  const bytes = memory.buffer.byteLength;
  if (bytes !== initial * WASM_PAGE_BYTES || bytes > SPARE_MAX_BYTES) return;
  new Uint8Array(memory.buffer).fill(0);
  spareMemories.set(`${initial}:${maximum}`, memory);
  const oldest = spareMemories.keys().next().value;
  if (spareMemories.size > SPARE_MAX_SIZES && oldest !== undefined) spareMemories.delete(oldest);
}

/** The run stopped because a stream passed max_output_bytes. */
class OutputCapped extends Error {
  constructor(readonly stream: 'stdout' | 'stderr') {
    super(`${stream} passed max_output_bytes`);
  }
}

/** Collected output of one stream, up to a cap. */
class Collected {
  chunks: Uint8Array[] = [];
  bytes = 0;
  constructor(
    readonly stream: 'stdout' | 'stderr',
    readonly cap: number,
  ) {}

  add(data: Uint8Array): void {
    this.bytes += data.length;
    if (this.bytes > this.cap) throw new OutputCapped(this.stream);
    this.chunks.push(data.slice());
  }

  /** One fresh buffer (never a slice of Node's shared pool), so it can be transferred. */
  join(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

/** How a failure of node:wasi's set-up begins; the handler adds which preopen is gone, when one is. */
const WASI_SET_UP_FAILED = 'WASI set-up failed: ';

/** uvwasi says only `UVWASI_ENOENT, uvwasi_init`: which preopen's directory is gone (moved or removed since the load), if one is. */
async function missingPreopen(preopens: WasmCallMessage['preopens']): Promise<string> {
  const isDirectory = await Promise.all(
    preopens.map((p) =>
      stat(p.host).then(
        (s) => s.isDirectory(),
        () => false,
      ),
    ),
  );
  const gone = preopens[isDirectory.indexOf(false)];
  return gone === undefined ? '' : `the preopen ${gone.guest} (host directory ${gone.host}) is not a directory there: `;
}

/** One call; `memory` is the instance's, for keepMemory once the reply is on its way. */
function run(call: WasmCallMessage): { reply: WasmCallReply; memory?: WebAssembly.Memory } {
  const stdout = new Collected('stdout', call.maxOutputBytes);
  const stderr = new Collected('stderr', call.maxOutputBytes);
  const reply = (fields: Partial<WasmCallReply>): WasmCallReply => ({
    type: 'done',
    exitCode: null,
    failure: null,
    notStarted: false,
    outputCapped: null,
    atMemoryCap: false,
    stdout: stdout.join(),
    stderr: stderr.join(),
    ...fields,
  });
  let wasi: InstanceType<typeof WASI>;
  try {
    wasi = new WASI({
      version: 'preview1',
      args: call.args,
      env: call.env,
      returnOnExit: true,
      preopens: Object.fromEntries(call.preopens.map((p) => [p.guest, p.host])),
      stdin: devNull.fd,
      stdout: devNull.fd,
      stderr: devNull.fd,
    });
  } catch (error) {
    return { reply: reply({ notStarted: true, failure: WASI_SET_UP_FAILED + (error as Error).message }) };
  }
  // node:wasi's own functions; their typings stop at `getImportObject(): object`.
  const host = (wasi as unknown as { wasiImport: Record<string, HostFunction> }).wasiImport;
  const memory = takeMemory(call.initialPages, call.maxPages);
  const view = (): DataView => new DataView(memory.buffer); // fresh: memory.grow detaches old buffers
  const bytes = (ptr: number, length: number): Uint8Array => new Uint8Array(memory.buffer, ptr, length);
  /** Walks an iovec array, `move` transferring each buffer; writes the total to `resultPtr`. */
  const iovecs = (iovs: number, count: number, resultPtr: number, move: (buffer: Uint8Array) => number): number => {
    let total = 0;
    for (let i = 0; i < count; i++) {
      const dv = view();
      const buffer = bytes(dv.getUint32(iovs + 8 * i, true), dv.getUint32(iovs + 8 * i + 4, true));
      const moved = move(buffer);
      total += moved;
      if (moved < buffer.length) break;
    }
    view().setUint32(resultPtr, total, true);
    return E_SUCCESS;
  };

  const input = call.input;
  let inputPos = 0;
  // The guest may open files (and renumber them) below its preopens: every fd up to the highest one
  // seen is closed after the run.
  let highestFd = 2 + call.preopens.length;
  const seen = (fd: number): void => void (highestFd = Math.max(highestFd, fd));
  const imports: Record<string, HostFunction> = {};
  for (const name of call.wasiImports) {
    const fn = host[name];
    if (fn) imports[name] = (...args: unknown[]) => fn(...args);
  }
  Object.assign(imports, {
    fd_read: (fd: number, iovs: number, count: number, resultPtr: number) =>
      fd !== 0
        ? host.fd_read?.(fd, iovs, count, resultPtr)
        : iovecs(iovs, count, resultPtr, (buffer) => {
            const n = Math.min(buffer.length, input.length - inputPos);
            buffer.set(input.subarray(inputPos, inputPos + n));
            inputPos += n;
            return n;
          }),
    fd_write: (fd: number, iovs: number, count: number, resultPtr: number) => {
      const sink = fd === 1 ? stdout : fd === 2 ? stderr : undefined;
      if (!sink) return host.fd_write?.(fd, iovs, count, resultPtr);
      return iovecs(iovs, count, resultPtr, (buffer) => {
        sink.add(buffer);
        return buffer.length;
      });
    },
    fd_close: (fd: number) => (fd <= 2 ? E_SUCCESS : host.fd_close?.(fd)),
    fd_renumber: (from: number, to: number) => {
      if (from <= 2 || to <= 2) return E_NOTSUP;
      seen(to);
      return host.fd_renumber?.(from, to);
    },
    path_open: (...args: unknown[]) => {
      const errno = host.path_open?.(...args);
      if (errno === E_SUCCESS) seen(view().getUint32(args[8] as number, true));
      return errno;
    },
    poll_oneoff: (subscriptions: number, events: number, count: number, eventCountPtr: number) =>
      sleepOnClocks(view(), subscriptions, events, count, eventCountPtr) ?? host.poll_oneoff?.(subscriptions, events, count, eventCountPtr),
  });

  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(call.module, {
      [WASI_MODULE]: imports as Record<string, WebAssembly.ImportValue>,
      [HOST_MEMORY.module]: { [HOST_MEMORY.name]: memory },
    });
  } catch (error) {
    return { reply: reply({ notStarted: true, failure: `instantiation failed: ${(error as Error).message}` }), memory };
  }
  const initialBytes = memory.buffer.byteLength;
  const guestStart = instance.exports._start as () => void;
  // start() binds the memory, then calls this _start: read-only rights go on before any guest code runs.
  const facade = {
    exports: {
      memory,
      _start: () => {
        call.preopens.forEach((p, i) => p.readOnly && host.fd_fdstat_set_rights?.(3 + i, READ_ONLY_BASE, READ_ONLY_INHERITING));
        guestStart();
      },
    },
  };
  let exitCode: number | null = null;
  let failure: string | null = null;
  let outputCapped: 'stdout' | 'stderr' | null = null;
  try {
    exitCode = wasi.start(facade);
  } catch (error) {
    if (error instanceof OutputCapped) outputCapped = error.stream;
    else failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    for (let fd = 3; fd <= highestFd; fd++) host.fd_close?.(fd);
  }
  // Grown up to its maximum: a failure is then most likely a failed memory.grow.
  const atMemoryCap = memory.buffer.byteLength > initialBytes && memory.buffer.byteLength >= call.maxPages * WASM_PAGE_BYTES;
  return { reply: reply({ exitCode, failure, outputCapped, atMemoryCap }), memory };
}

/**
 * poll_oneoff when every subscription is a clock (a sleep): waits in Atomics.wait, which terminate()
 * interrupts, then reports the clocks that are due. undefined: not only clocks, node:wasi answers.
 */
function sleepOnClocks(dv: DataView, subscriptions: number, events: number, count: number, eventCountPtr: number): number | undefined {
  if (count === 0) return undefined;
  const due: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const at = subscriptions + i * SUBSCRIPTION_BYTES;
    if (dv.getUint8(at + 8) !== 0) return undefined;
    const clock = dv.getUint32(at + 16, true);
    const timeout = dv.getBigUint64(at + 24, true);
    const absolute = (dv.getUint16(at + 40, true) & 1) === 1;
    const now = clock === 0 ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
    due.push(absolute ? timeout - now : timeout);
  }
  const soonest = due.reduce((a, b) => (b < a ? b : a));
  if (soonest > 0n) Atomics.wait(sleeper, 0, 0, Number(soonest) / 1e6);
  let fired = 0;
  due.forEach((ns, i) => {
    if (ns > soonest) return;
    const event = events + fired * EVENT_BYTES;
    dv.setBigUint64(event, dv.getBigUint64(subscriptions + i * SUBSCRIPTION_BYTES, true), true);
    dv.setUint16(event + 8, E_SUCCESS, true);
    dv.setUint8(event + 10, 0);
    fired++;
  });
  dv.setUint32(eventCountPtr, fired, true);
  return E_SUCCESS;
}

const port = parentPort;
if (!port) throw new Error('wasm-worker.js runs as a worker thread of WasmPool');
port.on('message', async (call: WasmCallMessage) => {
  const { reply, memory } = run(call);
  if (reply.notStarted && reply.failure?.startsWith(WASI_SET_UP_FAILED))
    reply.failure = WASI_SET_UP_FAILED + (await missingPreopen(call.preopens)) + reply.failure.slice(WASI_SET_UP_FAILED.length);
  port.postMessage(reply, [reply.stdout.buffer, reply.stderr.buffer]);
  if (memory) keepMemory(memory, call.initialPages, call.maxPages);
});
port.postMessage({ type: 'ready' });
