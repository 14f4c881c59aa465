import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeDeadLocksUnder, removeLocksOf } from './locks.js';
import { q, sh, waitFor, watchdog } from './process.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const ACHERON = join(REPO, 'bin', 'acheron.js');
export const FIXTURES = join(REPO, 'test', 'fixtures');
export const DRIVERS = join(FIXTURES, 'drivers');
/** `transaction.py PATH PAYLOAD [CHUNK]`: one O_RDWR write-then-read on control/invoke.json. */
export const TRANSACTION = join(FIXTURES, 'transaction.py');
/** `probe.py` < [{op, path, ...}]: file operations from one child process, each outcome or errno name (see the file). */
export const PROBE = join(FIXTURES, 'probe.py');

/** What a helper needs of a tap test: somewhere to register its cleanup. */
export interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export interface RunningNode {
  dir: string;
  mount: string;
  servicesDir: string;
  logFile: string;
  child: ChildProcess;
  exited: Promise<Exit>;
  /** `<mount>/services/<id>` */
  service(id: string): string;
  /** Starts the daemon again on the same mount, dirs and options. */
  restart(): Promise<RunningNode>;
}

export async function tempDir(t: Teardown, prefix = 'acheron-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(async () => {
    await rm(dir, { recursive: true, force: true });
    await removeDeadLocksUnder(dir);
  });
  return dir;
}

export async function isMounted(mount: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[4] === mount);
}

async function servedBy(mount: string, pid: number | undefined): Promise<boolean> {
  const { code, stdout } = await sh(`cat ${q(join(mount, 'NODE.json'))}`, { timeoutMs: 5_000 });
  return code === 0 && (JSON.parse(stdout) as { pid?: number }).pid === pid;
}

/** A manifest for a fixture driver (test/fixtures/drivers/<driver>). */
export function manifest(
  serviceId: string,
  driver: string,
  extra: { runtime?: Record<string, unknown>; [key: string]: unknown } = {},
): Record<string, unknown> {
  const { runtime, ...rest } = extra;
  return {
    service_id: serviceId,
    kind: 'test',
    runtime: { type: 'native_proc', executable_path: driver.startsWith('/') ? driver : join(DRIVERS, driver), ...runtime },
    ...rest,
  };
}

/**
 * Runs `node <args>` (an acheron daemon serving `mount`) in its own process group. Teardown kills the
 * group and lazily unmounts, also when the test failed.
 */
export function spawnMounter(
  t: Teardown,
  args: string[],
  mount: string,
  env?: NodeJS.ProcessEnv,
): { child: ChildProcess; exited: Promise<Exit>; gone(): boolean; stderr(): string } {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env }, detached: true });
  watchdog(child.pid as number, `fusermount -uz ${q(mount)} 2>/dev/null`);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  t.teardown(async () => {
    if (!gone) {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
    // Dead: locks naming it are stale.
    const stateFile = args.includes('--state-file') ? args[args.indexOf('--state-file') + 1] : undefined;
    await removeLocksOf(child.pid, { mount, ...(stateFile === undefined ? {} : { stateFile }) });
  });
  return { child, exited, gone: () => gone, stderr: () => stderr };
}

/**
 * Starts `acheron node` as a child process on a fresh mount and waits until the tree is live.
 * Teardown kills it and lazily unmounts, also when the test failed.
 */
export async function startNode(
  t: Teardown,
  options: { manifests?: Array<Record<string, unknown>>; args?: string[]; dir?: string; env?: NodeJS.ProcessEnv; nodeId?: string } = {},
): Promise<RunningNode> {
  const dir = options.dir ?? (await tempDir(t));
  const mount = join(dir, 'mnt');
  const servicesDir = join(dir, 'services.d');
  await mkdir(servicesDir, { recursive: true });
  for (const m of options.manifests ?? []) await writeFile(join(servicesDir, `${String(m.service_id)}.json`), JSON.stringify(m, null, 2));
  const logFile = join(dir, 'node.log');
  // Each test has its own state file: the journal restores runtime state across restarts.
  const stateFile = join(dir, 'node-state.json');
  const args = [
    ACHERON,
    'node',
    '--node-id',
    options.nodeId ?? 'test-node',
    '--mount',
    mount,
    '--services-dir',
    servicesDir,
    '--state-file',
    stateFile,
    '--log-file',
    logFile,
    '--log-level',
    'debug',
    ...(options.args ?? []),
  ];
  const { child, exited, gone, stderr } = spawnMounter(t, args, mount, options.env);
  // A stale entry of a killed daemon stays in mountinfo: wait until NODE.json names this daemon.
  await waitFor(async () => gone() || ((await isMounted(mount)) && (await servedBy(mount, child.pid))), { what: `node mount at ${mount}`, timeoutMs: 30_000 });
  if (gone()) throw new Error(`acheron node exited before mounting: ${stderr().trim()}`);
  const node: RunningNode = {
    dir,
    mount,
    servicesDir,
    logFile,
    child,
    exited,
    service: (id) => join(mount, 'services', id),
    restart: () => startNode(t, { ...options, dir, manifests: [] }),
  };
  return node;
}

/** Parses a JSON file read through the mount by `cat` in a child process. */
export async function readJson<T = Record<string, unknown>>(path: string): Promise<T> {
  const { code, stdout, stderr } = await sh(`cat ${q(path)}`);
  if (code !== 0) throw new Error(`cat ${path}: ${stderr.trim()}`);
  return JSON.parse(stdout) as T;
}

export async function readText(path: string): Promise<string> {
  const { code, stdout, stderr } = await sh(`cat ${q(path)}`);
  if (code !== 0) throw new Error(`cat ${path}: ${stderr.trim()}`);
  return stdout;
}

/** Reads each path (a file: its text; a directory: its entries, sorted) and prints them as one JSON array. */
const READ_ALL = `import json, os, sys
out = []
for path in json.load(sys.stdin):
    try:
        if os.path.isdir(path):
            out.append(sorted(os.listdir(path)))
        else:
            with open(path, encoding="utf-8") as f:
                out.append(f.read())
    except OSError as error:
        sys.exit(f"{path}: {error.strerror}")
print(json.dumps(out))`;

/**
 * Many files and directories of a mount read by one child process (python3), in order: a file's text,
 * a directory's sorted entries. One process start instead of one per file; fails naming the first
 * path that could not be read.
 */
export async function readAll(paths: readonly string[]): Promise<Array<string | string[]>> {
  const { code, stdout, stderr } = await sh(`python3 -c ${q(READ_ALL)}`, { input: JSON.stringify(paths) });
  if (code !== 0) throw new Error(`reading ${paths.length} paths: ${stderr.trim()}`);
  return JSON.parse(stdout) as Array<string | string[]>;
}
