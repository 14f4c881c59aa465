import { PidLock, pidLockPath } from '../store/pid-lock.js';
import { findMount } from './mount-table.js';

/** The lock file of a mount point (keyed by its path). */
export function lockPathOf(mountPoint: string): string {
  return pidLockPath('mount', mountPoint);
}

/**
 * One daemon per mount point (SPEC §1): fuse-native would otherwise mount over a live mount. A holder
 * with nothing mounted there any more was unmounted from outside and is stopping: waited for.
 */
export function lockMount(mountPoint: string): Promise<PidLock> {
  const stopping = async (): Promise<boolean> => (await findMount(mountPoint)) === undefined;
  return PidLock.acquire(lockPathOf(mountPoint), { name: mountPoint, heldAs: 'served', otherwise: 'pick another directory' }, stopping);
}
