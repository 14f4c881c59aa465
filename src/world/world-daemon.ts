import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { MountLock } from '../fuse/mount-lock.js';
import { clearStaleMount, findMount, watchForUnmount } from '../fuse/mount-table.js';
import { mountTree, type MountedTree } from '../fuse/mount.js';
import type { ControlClient } from '../protocol/control-client.js';
import { WorldCatalog, type SessionGrant } from './world-catalog.js';
import { buildWorldTree } from './world-tree.js';

export interface WorldDaemonOptions {
  /** The control servers, tried in turn (servers of one store). */
  controlUrls: readonly string[];
  token: string;
  mount: string;
  subtree?: 'nodes';
  /** The FUSE loop's polling window after a reply (µs; 0 = off); see BusyPoll. */
  busyPollUs?: number;
  /** A user token's project session (SPEC §8). */
  project?: { projectId: string; projectToken?: string };
}

/**
 * `acheron world`: one WorldFS mount per principal (SPEC §9). It follows the control server's
 * catalog and serves it through the same VFS and FUSE adapter as the node tree.
 */
export class WorldDaemon {
  readonly done: Promise<void>;
  #catalog: WorldCatalog;
  #mounted: MountedTree;
  #lock: MountLock;
  #mount: string;
  #log: Logger;
  #stopWatchingMount: () => void;
  #stopping: Promise<void> | undefined;
  #resolveDone!: () => void;

  private constructor(catalog: WorldCatalog, mounted: MountedTree, lock: MountLock, mount: string, log: Logger) {
    this.#catalog = catalog;
    this.#mounted = mounted;
    this.#lock = lock;
    this.#mount = mount;
    this.#log = log;
    this.done = new Promise((resolveDone) => (this.#resolveDone = resolveDone));
    this.#stopWatchingMount = watchForUnmount(mount, () => void this.stop('the mount was unmounted from outside'));
  }

  static async start(options: WorldDaemonOptions, log: Logger): Promise<WorldDaemon> {
    const mount = resolve(options.mount);
    const { project } = options;
    const attach = project
      ? (client: ControlClient) => client.request<SessionGrant>('control.session_attach', { project_id: project.projectId, ...(project.projectToken === undefined ? {} : { project_token: project.projectToken }) })
      : undefined;
    const catalog = new WorldCatalog({ urls: options.controlUrls, token: options.token, log: log.child({ component: 'catalog' }), ...(attach ? { attach } : {}) });
    const lock = await MountLock.acquire(mount);
    try {
      // A bad token or project fails here, before anything is mounted.
      await catalog.start();
      if ((await clearStaleMount(mount)) === 'cleared') log.warn({ mount }, 'cleared a stale mount left by a dead daemon');
      await mkdir(mount, { recursive: true });
      const tree = buildWorldTree({ catalog, ...(options.subtree ? { subtree: options.subtree } : {}) });
      const mounted = await mountTree(tree, { mountPoint: mount, fsname: 'acheron-world', busyPollUs: options.busyPollUs, log: log.child({ component: 'fuse' }) });
      log.info({ mount, control_urls: options.controlUrls, connected: catalog.connected }, 'world tree is live');
      return new WorldDaemon(catalog, mounted, lock, mount, log);
    } catch (error) {
      await catalog.stop();
      await lock.release();
      throw error;
    }
  }

  /** Unmounts and disconnects. Idempotent. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      this.#stopWatchingMount();
      await this.#catalog.stop();
      if (await findMount(this.#mount)) await this.#mounted.unmount();
      await this.#lock.release();
      this.#log.info('stopped');
      this.#resolveDone();
    })();
    return this.#stopping;
  }
}
