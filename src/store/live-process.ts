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
 * True while `pid` runs node or acheron: what a lock file names is only its holder while the pid
 * was not recycled for something else (a lock left by a daemon killed with SIGKILL names a pid the
 * kernel hands out again). Node counts too: tests and embedders take the locks from node processes
 * whose command line need not name acheron.
 */
export async function isLiveAcheron(pid: number): Promise<boolean> {
  if (!(await isRunning(pid))) return false;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  return basename(argv[0] ?? '').startsWith('node') || argv.some((arg) => arg.includes('acheron'));
}
