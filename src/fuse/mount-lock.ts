import { PidLock, pidLockPath } from '../store/pid-lock.js';

/** The lock file of a mount point (keyed by its path). */
export function lockPathOf(mountPoint: string): string {
  return pidLockPath('mount', mountPoint);
}

/** One daemon per mount point (SPEC §1): fuse-native would otherwise mount over a live mount. */
export function lockMount(mountPoint: string): Promise<PidLock> {
  return PidLock.acquire(lockPathOf(mountPoint), { name: mountPoint, heldAs: 'served', otherwise: 'pick another directory' });
}
