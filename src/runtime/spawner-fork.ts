import { fork, type ChildProcess, type IOType } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { DRIVER_OWNER_VAR } from './driver-owner.js';

/** The close-on-exec bit of `flags` in /proc/self/fdinfo/<fd> (octal there). */
const O_CLOEXEC = 0o2000000;

/**
 * Forks spawner-main with `owner` as its drivers' mark. The first one is forked before the mount;
 * a replacement (driver-spawner.ts) after it would inherit /dev/fuse, which libfuse 2 opens without
 * close-on-exec (SPEC §12), and hand it to every driver. So each descriptor of ours that would pass
 * on gets, in the child, a copy of stderr laid over it (libuv leaves an unnamed slot past the stdio
 * ones as it is, but dup2s a named descriptor onto it).
 */
export async function forkSpawner(owner: string, environmentCacheSize: number): Promise<ChildProcess> {
  const stdio: Array<IOType | 'ipc' | number> = ['ignore', 'inherit', 'inherit', 'ipc'];
  for (const fd of await inheritedDescriptors()) {
    if (fd < stdio.length) continue;
    while (stdio.length < fd) stdio.push('ignore');
    stdio.push(2);
  }
  const child = fork(new URL('./spawner-main.js', import.meta.url), [String(environmentCacheSize)], {
    // Its own process group: a kill -9 of the daemon's group leaves it alive just long enough to
    // see the link drop and kill its driver groups, which would otherwise run on as orphans.
    detached: true,
    serialization: 'json',
    stdio,
    env: { ...process.env, [DRIVER_OWNER_VAR]: owner },
    execArgv: process.execArgv.filter((arg) => !arg.startsWith('--inspect')),
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child;
}

/** This process's descriptors without close-on-exec, in ascending order. */
async function inheritedDescriptors(): Promise<number[]> {
  const fds = (await readdir('/proc/self/fd')).map(Number).sort((a, b) => a - b);
  const inherited: number[] = [];
  for (const fd of fds) {
    // Gone meanwhile (readdir's own descriptor among them): nothing to pass on.
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    const flags = /^flags:\s*([0-7]+)$/m.exec(info)?.[1];
    if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) inherited.push(fd);
  }
  return inherited;
}
