import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { makeDirectory, namingOption } from '../store/make-directory.js';
import type { PidLock } from '../store/pid-lock.js';
import type { VNode } from '../vfs/node.js';
import { lockMount } from './mount-lock.js';
import { clearStaleMount, findMount, watchForUnmount } from './mount-table.js';
import { mountTree, type MountAccess, type MountedTree, type MountOptions } from './mount.js';

/** How long `unmount` waits for files opened before it to be closed. */
const SETTLE_MS = 2000;
const SETTLE_POLL_MS = 20;

/**
 * The life of one mount point a daemon serves (the node tree, a WorldFS mount), in its order:
 * `claim` takes the pid lock, clears a stale mount left by a dead daemon (a live one is an error)
 * and makes the directory; `mount` mounts the tree and watches for an external `umount` (fuse-native
 * goes on serving after one, SPEC §12); `unmount` stops the watch and unmounts what is still
 * mounted; `release` gives the lock up. Whatever a daemon must close while the tree can still be
 * reached goes before `unmount`, whatever the tree's operations use (the node's journal) after it.
 */
export class ServedMount {
  readonly mountPoint: string;
  #lock: PidLock;
  #log: Logger;
  #mounted: MountedTree | undefined;
  #stopWatching: () => void = () => undefined;

  private constructor(mountPoint: string, lock: PidLock, log: Logger) {
    this.mountPoint = mountPoint;
    this.#lock = lock;
    this.#log = log;
  }

  /** Takes `mountPoint` (an absolute path) for this process; on failure nothing is held. */
  static async claim(mountPoint: string, log: Logger): Promise<ServedMount> {
    const lock = await lockMount(mountPoint);
    try {
      if ((await clearStaleMount(mountPoint)) === 'cleared') log.warn({ mount: mountPoint }, 'cleared a stale mount left by a dead daemon');
      await makeDirectory(mountPoint).catch((error: unknown) => {
        throw namingOption('--mount', mountPoint, error);
      });
    } catch (error) {
      await lock.release();
      throw error;
    }
    return new ServedMount(mountPoint, lock, log);
  }

  /** Mounts `tree`; `onUnmounted` runs when someone unmounts it from outside. */
  async mount(tree: VNode, options: Pick<MountOptions, 'fsname' | 'busyPollUs'> & MountAccess, onUnmounted: () => void): Promise<void> {
    this.#mounted = await mountTree(tree, { ...options, mountPoint: this.mountPoint, log: this.#log.child({ component: 'fuse' }) });
    this.#stopWatching = watchForUnmount(this.mountPoint, onUnmounted);
  }

  /**
   * Unmounts (lazily: `fusermount -uz`), then waits until no handle is open and no operation runs,
   * for at most SETTLE_MS: a process that opened a file before the unmount still reaches the tree
   * through it, and what its operations use must stay open until they are done.
   */
  async unmount(): Promise<void> {
    this.#stopWatching();
    const mounted = this.#mounted;
    if (!mounted) return;
    // After an external umount there is nothing left to unmount (fusermount would fail).
    if (await findMount(this.mountPoint)) await mounted.unmount();
    const deadline = Date.now() + SETTLE_MS;
    while (mounted.busy > 0 && Date.now() < deadline) await sleep(SETTLE_POLL_MS);
    if (mounted.busy > 0)
      this.#log.warn(
        { mount: this.mountPoint, busy: mounted.busy },
        `files opened before the unmount are still open after ${SETTLE_MS} ms; their next operations fail`,
      );
  }

  async release(): Promise<void> {
    await this.#lock.release();
  }
}
