import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * True while `pid` runs: /proc/<pid>/stat is there and not a zombie's (one only waits to be reaped).
 * Read from /proc rather than kill(pid, 0), which also answers yes for a zombie.
 */
export async function isRunning(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
  // The state follows the command name, which may itself hold spaces and parentheses.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== '' && state !== 'Z' && state !== 'X';
}

/**
 * True while `pid` runs acheron: what a daemon's pid lock names is only its holder while the pid was
 * not recycled for something else (a lock left by a daemon killed with SIGKILL names a pid the kernel
 * hands out again). Strict: a busy host runs many node programs.
 */
export async function isLiveAcheron(pid: number): Promise<boolean> {
  return (await isRunning(pid)) && (await commandLine(pid)).some((arg) => arg.includes('acheron'));
}

/**
 * True while `pid` runs acheron or any node program: the join token lock is held for one
 * read-modify-write by whatever opens the file token store (the server, `acheron token`, a benchmark,
 * a test), whose command line need not name acheron.
 */
export async function isLiveNodeProgram(pid: number): Promise<boolean> {
  if (!(await isRunning(pid))) return false;
  const argv = await commandLine(pid);
  return basename(argv[0] ?? '').startsWith('node') || argv.some((arg) => arg.includes('acheron'));
}

async function commandLine(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
}
