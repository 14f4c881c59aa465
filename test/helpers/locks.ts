import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pidLockPath } from '../../src/store/pid-lock.js';
import { alive } from './process.js';

/**
 * The pid lock files a daemon the test killed (SIGKILL) left behind, removed: harmless to the next
 * start (a dead holder's lock is taken over), but each test's temp paths made a new one under
 * /run/acheron, thousands per suite run. Only those naming `pid`: another daemon's (a live one a
 * refused start met) stay. `paths`: what the daemon locked, by kind, as it keyed them (real paths:
 * the temp dirs tests make have no links in them).
 */
export async function removeLocksOf(pid: number | undefined, paths: { mount?: string; stateFile?: string; dataDir?: string }): Promise<void> {
  const locks = [
    paths.mount === undefined ? undefined : pidLockPath('mount', paths.mount),
    paths.stateFile === undefined ? undefined : pidLockPath('state', paths.stateFile),
    paths.dataDir === undefined ? undefined : pidLockPath('control', paths.dataDir),
  ];
  await Promise.all(
    locks.map(async (path) => {
      if (path === undefined || pid === undefined) return;
      const holder = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).split('\n')[0] ?? '', 10);
      if (holder === pid) await rm(path, { force: true });
    }),
  );
}

/**
 * Every lock of a path inside `dir` (a test's temp dir) whose holder is dead, removed, whichever test
 * killed the holder: a safety net under removeLocksOf for the ways a test can lose a daemon (a kill in
 * the test's own steps, a crash). Runs when the temp dir goes, after the test's daemons were stopped.
 */
export async function removeDeadLocksUnder(dir: string): Promise<void> {
  const lockDir = dirname(pidLockPath('mount', dir));
  const names = await readdir(lockDir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => name.endsWith('.pid'))
      .map(async (name) => {
        const path = join(lockDir, name);
        const [holder = '', key = ''] = (await readFile(path, 'utf8').catch(() => '')).split('\n');
        const pid = Number.parseInt(holder, 10);
        if (!(key === dir || key.startsWith(`${dir}/`)) || (Number.isInteger(pid) && (await alive(pid)))) return;
        await rm(path, { force: true });
      }),
  );
}
