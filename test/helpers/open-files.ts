// What this process holds open under a directory (Linux: /proc/self/fd), for tests that a failure
// or a close lets every file go.
import { readdir, readlink } from 'node:fs/promises';

/** The paths under `dir` that this process has a descriptor for. */
export async function openFilesUnder(dir: string): Promise<string[]> {
  const targets = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(`${dir}/`)).sort();
}
