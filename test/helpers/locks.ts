import { readFile, rm } from 'node:fs/promises';
import { pidLockPath } from '../../src/store/pid-lock.js';

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
