// Shared by bench/run.mjs and the benchmark modules it calls: child processes, cleanup, /proc
// readings and interleaved rounds. The mounts are only ever touched by child processes, never by
// fs calls from the benchmark process (SPEC §12).
import { fork, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { time } from './format.mjs';
import { summarize } from './stats.mjs';

export const REPO = fileURLToPath(new URL('../', import.meta.url));
export const ACHERON = join(REPO, 'bin', 'acheron.js');
export const CLIENT = join(REPO, 'bench', 'client.py');

/** Set by run.mjs before any benchmark runs: the temp dir, the real Python interpreter, CLK_TCK. */
export const ctx = { work: '', python: 'python3', clkTck: 100, quick: false };

// ---------------------------------------------------------------------------------------------
// Cleanup

const cleanups = [];
export const defer = (fn) => cleanups.push(fn);
let cleaning;
/** Runs the cleanups once, newest first; a signal and `finally` may both ask and both wait. */
export function cleanupAll() {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()();
      } catch (error) {
        console.error(`bench: cleanup: ${error.message}`);
      }
    }
  })();
  return cleaning;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const t0 = performance.now();
export const log = (text) => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s] ${text}`);
export const elapsedSeconds = () => Math.round((performance.now() - t0) / 1000);

// ---------------------------------------------------------------------------------------------
// Child processes

/** Runs a program to completion in a child process; never through a shell unless asked. */
export function exec(file, args, { cwd = '/', timeoutMs = 180_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (chunk) => out.push(chunk));
    child.stderr.on('data', (chunk) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

export async function mustExec(file, args, options) {
  const result = await exec(file, args, options);
  if (result.code !== 0)
    throw new Error(`${[file, ...args].join(' ').slice(0, 200)}: exit ${result.code ?? result.signal}: ${result.stderr.trim().slice(-600)}`);
  return result.stdout;
}

/**
 * A client loop prints its per-iteration microseconds as a JSON array, or as `samples` of an
 * object that also has `cpu_us` (the client's CPU per iteration), which goes to `cpu` if given.
 */
export async function samplesOf(file, args, options = {}) {
  const printed = JSON.parse(await mustExec(file, args, options));
  if (Array.isArray(printed)) return printed;
  options.cpu?.push(printed.cpu_us);
  return printed.samples;
}

/** bench/client.py with the interpreter itself, not a version-manager shim that would probe the cwd. */
export const python = (args, options) => samplesOf(ctx.python, [CLIENT, ...args], options);

export async function mounted(mountPoint) {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[4] === mountPoint);
}

export async function waitFor(what, condition, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * A long-running child in its own process group, stopped by `stop()` (idempotent): SIGTERM, then
 * SIGKILL to the group after 10 s, then the mount (if any) is cleared.
 */
/** @param {string} file @param {string[]} args @param {{ name: string, mountPoint?: string }} options */
export function startDaemon(file, args, { mountPoint, name }) {
  const child = spawn(file, args, { cwd: '/', stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  let gone = false;
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      gone = true;
      resolve({ code, signal });
    }),
  );
  child.once('error', () => (gone = true));
  let stopping;
  const daemon = {
    pid: child.pid,
    name,
    mountPoint,
    exited,
    get gone() {
      return gone;
    },
    get stderr() {
      return stderr;
    },
    async ready() {
      await waitFor(`${name} to mount ${mountPoint}`, async () => gone || (await mounted(mountPoint)), 120_000);
      if (gone) throw new Error(`${name} exited before mounting: ${stderr.trim().slice(-600)}`);
    },
    stop() {
      stopping ??= (async () => {
        if (!gone) {
          process.kill(child.pid, 'SIGTERM');
          await Promise.race([exited, sleep(10_000)]);
        }
        if (!gone) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // the group is already gone
          }
          await exited;
        }
        if (mountPoint && (await mounted(mountPoint))) await exec('fusermount', ['-uz', mountPoint]);
        if (mountPoint && (await mounted(mountPoint))) await exec('umount', ['-l', mountPoint]);
      })();
      return stopping;
    },
  };
  defer(() => daemon.stop());
  return daemon;
}

/**
 * ACHERON_BENCH_CPU_PROF=<dir>: the daemons and control servers run with `node --cpu-prof` into
 * that directory (the driver spawner, forked with the same options, too), for finding out what
 * dominates a cost; not for the numbers, which profiling skews.
 */
export function cpuProfileArgs() {
  const dir = process.env.ACHERON_BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/** `acheron node` on `<work>/<name>/mnt` with the services of `servicesDir`. */
export async function startNode(name, { servicesDir, logLevel = 'warn', args = [] }) {
  const dir = join(ctx.work, name);
  const mountPoint = join(dir, 'mnt');
  await mkdir(mountPoint, { recursive: true });
  const stateFile = join(dir, 'state', 'bench.json');
  const logFile = join(dir, 'node.log');
  const started = performance.now();
  const daemon = startDaemon(
    process.execPath,
    [
      ...cpuProfileArgs(),
      ACHERON,
      'node',
      '--node-id',
      'bench',
      '--mount',
      mountPoint,
      '--services-dir',
      servicesDir,
      '--state-file',
      stateFile,
      '--log-level',
      logLevel,
      '--log-file',
      logFile,
      ...args,
    ],
    { mountPoint, name: `acheron node (${name})` },
  );
  await daemon.ready();
  return Object.assign(daemon, { startMs: performance.now() - started, dir, stateFile, logFile, service: (id) => join(mountPoint, 'services', id) });
}

/**
 * A Node worker (bench/*.mjs) forked with an IPC channel: `call(cmd, args)` sends `{id, cmd,
 * ...args}` and resolves with the worker's `{id, result}` (rejects on `{id, error}`). Killed (its
 * group) at cleanup.
 */
export function forkWorker(file, name, { execArgv = [] } = {}) {
  const child = fork(file, [], { cwd: '/', stdio: ['ignore', 'inherit', 'pipe', 'ipc'], detached: true, execArgv });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const pending = new Map();
  let nextId = 1;
  let gone = false;
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      gone = true;
      for (const { reject } of pending.values()) reject(new Error(`${name} exited (${code ?? signal}) during a call: ${stderr.trim().slice(-600)}`));
      pending.clear();
      resolve({ code, signal });
    }),
  );
  child.on('message', (/** @type {any} */ message) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`${name}: ${message.error}`));
    else waiter.resolve(message.result);
  });
  let stopping;
  const worker = {
    pid: child.pid,
    name,
    call(cmd, args = {}) {
      if (gone) return Promise.reject(new Error(`${name} is not running: ${stderr.trim().slice(-600)}`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, ...args });
      });
    },
    stop() {
      stopping ??= (async () => {
        if (!gone) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // the group is already gone
          }
          await exited;
        }
      })();
      return stopping;
    },
  };
  defer(() => worker.stop());
  return worker;
}

/** Serves a worker's commands: `handlers[cmd](message)` answers each IPC request. */
export function serveCommands(handlers) {
  process.on('message', async (/** @type {any} */ message) => {
    try {
      const handler = handlers[message.cmd];
      if (!handler) throw new Error(`unknown command ${message.cmd}`);
      process.send({ id: message.id, result: await handler(message) });
    } catch (error) {
      process.send({ id: message.id, error: error.stack ?? String(error) });
    }
  });
  // The parent's death ends the worker too (the IPC channel closes).
  process.on('disconnect', () => process.exit(0));
}

/** A port nobody listens on right now (bound to port 0, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// /proc

/** VmRSS and VmHWM of a process, in KiB. */
export async function memoryOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** CPU time (user + system, all threads) of a process so far, in microseconds. */
export async function cpuUsOf(pid) {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / ctx.clkTck) * 1e6;
}

/** Child processes of `pid` (the driver spawner is a node daemon's only forked child). */
export async function childrenOf(pid) {
  const found = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = await readFile(`/proc/${entry}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Rounds

export async function writeManifest(dir, id, executablePath, extra = {}) {
  const manifest = { service_id: id, kind: 'bench', ...extra, runtime: { type: 'native_proc', executable_path: executablePath, ...extra.runtime } };
  await writeFile(join(dir, `${id}.json`), JSON.stringify(manifest) + '\n');
}

export const exists = (path) =>
  stat(path).then(
    () => true,
    () => false,
  );
export const rotate = (list, by) => list.map((_, i) => list[(i + by) % list.length]);

/** Rounds interleave the variants (rotating their order) so drift in machine load hits all alike. */
export async function runRounds(variants, rounds) {
  const samples = Object.fromEntries(variants.map((v) => [v.key, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of rotate(variants, round)) samples[variant.key].push(...(await variant.run()));
  }
  return samples;
}

/** How many of a fresh daemon's first invocations the cold figures summarize. */
export const COLD_FIRST = 300;

/**
 * A fresh daemon runs its JavaScript unoptimised; V8 tiers it up over its first few thousand
 * invocations. Runs `n` transactions of each target (bench/client.py: `args` before the count,
 * `clientArgs` after it), one target after the other, and returns their samples by key: the rounds
 * that follow measure warm daemons, as they run in production, and these samples are reported as the
 * cold figures (`renderWarmUp`).
 */
export async function warmUp(targets, n) {
  const samples = {};
  for (const { key, args, clientArgs = [] } of targets) {
    log(`warm-up: ${n} transactions of ${key}`);
    samples[key] = await python([...args, n, 0, ...clientArgs]);
  }
  return samples;
}

/** The table of a warm-up: the first COLD_FIRST transactions of each daemon against its last ones. */
export function renderWarmUp(line, samples, n, labelOf) {
  line(
    `Before those rounds each daemon ran ${n} transactions of each kind below, one kind after the other, from its start: a fresh ` +
      "daemon's JavaScript is not optimised yet (V8 tiers it up as it runs), so its first invocations are slower. The rounds measure warm daemons.",
  );
  line();
  line(`| warm-up | first ${COLD_FIRST}: median | p99 | last ${COLD_FIRST}: median | p99 |`);
  line('|---|---|---|---|---|');
  for (const [key, all] of Object.entries(samples)) {
    const first = summarize(all.slice(0, COLD_FIRST));
    const last = summarize(all.slice(-COLD_FIRST));
    line(`| ${labelOf(key)} | ${time(first.median)} | ${time(first.p99)} | ${time(last.median)} | ${time(last.p99)} |`);
  }
}
