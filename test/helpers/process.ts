import { readdir, readFile } from 'node:fs/promises';
import { execFileSync, spawn } from 'node:child_process';
import { isRunning as alive } from '../../src/store/live-process.js';

export interface ShResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a bash command in a child process: the only way tests touch a mount (a synchronous call
 * from the test process on a mount it serves, or many async ones, would deadlock; SPEC §12).
 */
export function sh(command: string, options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { env: options.env ?? process.env, cwd: options.cwd ?? '/', stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  });
}

/** Polls `condition` until it holds or `timeoutMs` passes; never a timed assertion. */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'a condition'}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

/** Single-quotes a string for bash. */
export const q = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * A sentinel for a detached child (its own process group, `pid`): when this test process dies
 * without its teardowns (tap's file timeout kills it; a top-level await that throws skips them),
 * the pipe on the sentinel's stdin closes, and it kills the child's group and runs `cleanup` (a
 * shell command, e.g. unmounting its mount), so nothing is left running into the next test file.
 * The sentinel is no child of the child's: their process trees stay as they are. `signal`: TERM for
 * a child whose own traps clean up (the harness script), KILL otherwise.
 */
export function watchdog(pid: number, cleanup = 'true', signal: 'KILL' | 'TERM' = 'KILL'): void {
  // Only the child's group: by the time this test process ends, a child that exited long before may
  // have left its pid to another test's process (pids wrap at 32768 in a busy run), and killing that
  // group ended another file's control server. A process with the pid and another start time (stat
  // field 22) is that; none at all leaves the group to the child's own (its members, if any).
  const started = `sed 's/.*) //' /proc/${pid}/stat 2>/dev/null | cut -d' ' -f20`;
  const startedNow = execFileSync('sh', ['-c', started], { encoding: 'utf8' }).trim();
  const same = `now=$(${started}); [ -z "$now" ] || [ "$now" = '${startedNow}' ]`;
  const sentinel = spawn('sh', ['-c', `cat > /dev/null; ${same} && kill -${signal} -${pid} 2>/dev/null; ${cleanup}`], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  sentinel.unref();
  sentinel.stdin?.on('error', () => undefined);
  (sentinel.stdin as unknown as { unref?: () => void } | null)?.unref?.();
}

/** The pid of a process that has exited and been reaped: what a writer killed with SIGKILL leaves named in its files. */
export async function reapedPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid as number;
}

/** True while `pid` runs (a zombie counts as gone: it only waits to be reaped): the check src/ makes of lock holders. */
export { alive };

/** Detached daemons (`--daemon`, the mount helper) whose resolved options name `text` (a temp dir). */
export async function daemonsUsing(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    const options = environ.split('\0').find((v) => v.startsWith('ACHERON_DAEMON_OPTIONS='));
    if (options?.includes(text) && (await alive(Number(entry)))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * SIGKILLs the detached daemons using `text` (a temp dir) and waits until they are gone, so that the
 * temp dir's teardown, which runs after (tap runs teardowns last-registered first), finds their pid
 * locks stale and removes them. Returns their pids.
 */
export async function killDaemonsUsing(text: string): Promise<number[]> {
  const pids = await daemonsUsing(text);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const running = async (): Promise<boolean> => (await Promise.all(pids.map(alive))).some(Boolean);
  await waitFor(async () => !(await running()), { what: `the daemons using ${text} to exit`, timeoutMs: 10_000 });
  return pids;
}

/** Runs `fn` with extra environment variables (the server child inherits them at spawn). */
export async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
