import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * True while `pid` runs: /proc/<pid>/stat is there and not a zombie's (one only waits to be reaped).
 * Read from /proc rather than kill(pid, 0), which also answers yes for a zombie; kill decides only
 * when /proc does not show the process (mounted with hidepid): a process this one may not see runs.
 */
export async function isRunning(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
  if (stat === '') return signalable(pid);
  // The state follows the command name, which may itself hold spaces and parentheses.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True while `pid` runs acheron: what a daemon's pid lock names is only its holder while the pid was
 * not recycled for something else (a lock left by a daemon killed with SIGKILL names a pid the kernel
 * hands out again). Strict: a busy host runs many node programs.
 */
export async function isLiveAcheron(pid: number): Promise<boolean> {
  if (!(await isRunning(pid))) return false;
  const argv = await commandLine(pid);
  return argv === undefined || argv.some((arg) => arg.includes('acheron'));
}

/**
 * True while `pid` runs acheron or any node program: the join token lock is held for one
 * read-modify-write by whatever opens the file token store (the server, `acheron token`, a benchmark,
 * a test), whose command line need not name acheron.
 */
export async function isLiveNodeProgram(pid: number): Promise<boolean> {
  if (!(await isRunning(pid))) return false;
  const argv = await commandLine(pid);
  return argv === undefined || basename(argv[0] ?? '').startsWith('node') || argv.some((arg) => arg.includes('acheron'));
}

/** Its argv; undefined when this process may not read it (hidepid): then it may be the holder. */
async function commandLine(pid: number): Promise<string[] | undefined> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined))?.split('\0');
}
