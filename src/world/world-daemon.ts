/**
 * src/world: WorldFS. Owns the mount's view of the fleet: `WorldCatalog` (its watch of delta events
 * and reads of each node, reconnects, relays), the catalog projected onto the VFS per session
 * (`world-tree.ts`, `derived-roots.ts`), a service's live files read and committed whole
 * (`live-files.ts`; a commit is `relayInvoke`, which `acheron invoke --node` also sends without a
 * mount: `relay-invoke.ts`) and `RemoteNode` (every operation of an `fs/` export relayed to its node).
 * `WorldDaemon` only starts and stops them around a `ServedMount`.
 *
 * Must not import: node/, control/ or cli/ (WorldFS reaches nodes only through the control server).
 */
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import { mountPointPath } from '../fuse/mount-table.js';
import { ServedMount } from '../fuse/served-mount.js';
import type { MountAccess } from '../fuse/mount.js';
import type { ControlClient } from '../protocol/control-client.js';
import { loadSchemas } from '../protocol/schemas.js';
import type { SessionAttachReply } from '../protocol/types.gen.js';
import { WorldCatalog } from './world-catalog.js';
import { worldSource } from './mount-source.js';
import { buildWorldTree } from './world-tree.js';

export interface WorldDaemonOptions {
  /** The control servers, tried in turn (servers of one store). */
  controlUrls: readonly string[];
  /** The bearer token, or the file that holds it. */
  token: string | TokenFile;
  mount: string;
  subtree?: 'nodes';
  /** The FUSE loop's polling window after a reply (µs; 0 = off); see BusyPoll. */
  busyPollUs?: number;
  /** Who besides the daemon's user may use the mount (SPEC §9: one mount per principal, shared through these). */
  access?: MountAccess;
  /** A user token's project session (SPEC §8). */
  project?: { projectId: string; projectToken?: TokenFile };
}

/**
 * A token kept in a file: read again at every connection (the bearer token) or attach (the project
 * token), and a change of the file is used at once (#watchTokenFile), so a rotated token written into
 * the file reaches a running mount.
 */
export interface TokenFile {
  path: string;
  read(): Promise<string>;
}

/** How often a token file is checked for a change (stat). */
const TOKEN_FILE_POLL_MS = 1000;

/** A token file whose `read` (for a connection) remembers the token; `peek` reads without. */
interface ReadingTokenFile extends TokenFile {
  lastRead: string | undefined;
  peek(): Promise<string>;
}

function remembering(file: TokenFile): ReadingTokenFile {
  const reading: ReadingTokenFile = {
    path: file.path,
    lastRead: undefined,
    read: async () => (reading.lastRead = await file.read()),
    peek: () => file.read(),
  };
  return reading;
}

/**
 * `acheron world`: one WorldFS mount per principal (SPEC §9). It follows the control server's
 * catalog and serves it through the same VFS and FUSE adapter as the node tree.
 */
export class WorldDaemon {
  readonly done: Promise<void>;
  #catalog: WorldCatalog;
  #served: ServedMount;
  #log: Logger;
  #stopping: Promise<void> | undefined;
  #resolveDone!: () => void;
  #unwatch: Array<() => void> = [];

  private constructor(catalog: WorldCatalog, served: ServedMount, log: Logger) {
    this.#catalog = catalog;
    this.#served = served;
    this.#log = log;
    this.done = new Promise((resolveDone) => (this.#resolveDone = resolveDone));
  }

  /**
   * A new token in the file (written, or renamed into place) is used at once: the bearer token by a
   * new connection (it is presented at the upgrade), the project token by attaching the session again
   * on the live one (files open through the mount stay valid). Only a token other than the one last
   * used: a rewrite of the same one, or a file missing or empty for a moment, leaves a working connection alone.
   */
  #watchTokenFile(file: ReadingTokenFile, use: (reason: string) => void): void {
    const changed = (): void => {
      file.peek().then(
        (token) => token !== file.lastRead && use(`a new token in ${file.path}`),
        () => undefined,
      );
    };
    watchFile(file.path, { interval: TOKEN_FILE_POLL_MS, persistent: false }, changed);
    this.#unwatch.push(() => unwatchFile(file.path, changed));
  }

  static async start(options: WorldDaemonOptions, log: Logger): Promise<WorldDaemon> {
    const mount = await mountPointPath(options.mount);
    const { project } = options;
    const projectToken = project?.projectToken && remembering(project.projectToken);
    // An admin token sees every node and service (SPEC §8: admins pass all): a project changes nothing for it.
    const attach = project
      ? async (client: ControlClient, withProjectToken = true) =>
          client.principal === 'admin'
            ? undefined
            : client.request<SessionAttachReply>('control.session_attach', {
                project_id: project.projectId,
                ...(projectToken === undefined || !withProjectToken ? {} : { project_token: await projectToken.read() }),
              })
      : undefined;
    const token = typeof options.token === 'string' ? options.token : remembering(options.token);
    const catalog = new WorldCatalog({
      urls: options.controlUrls,
      token: typeof token === 'string' ? token : () => token.read(),
      schemas: await loadSchemas(),
      log: log.child({ component: 'catalog' }),
      ...(attach ? { attach } : {}),
    });
    const served = await ServedMount.claim(mount, log);
    try {
      // A bad token or project fails here, before anything is mounted.
      await catalog.start();
      const daemon = new WorldDaemon(catalog, served, log);
      const tree = buildWorldTree({ catalog, ...(options.subtree ? { subtree: options.subtree } : {}) });
      await served.mount(
        tree,
        { fsname: worldSource(options.subtree), busyPollUs: options.busyPollUs, ...options.access },
        () => void daemon.stop('the mount was unmounted from outside'),
      );
      // Unless a stop came while mounting: it has unwatched already.
      if (!daemon.#stopping) {
        if (typeof token !== 'string') daemon.#watchTokenFile(token, (reason) => catalog.reconnect(reason));
        if (projectToken) daemon.#watchTokenFile(projectToken, (reason) => catalog.reattach(reason));
      }
      log.info({ mount, control_urls: options.controlUrls, connected: catalog.connected }, 'world tree is live');
      return daemon;
    } catch (error) {
      await catalog.stop();
      await served.release();
      throw error;
    }
  }

  /** Unmounts and disconnects. Idempotent. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      for (const unwatch of this.#unwatch) unwatch();
      await this.#catalog.stop();
      await this.#served.unmount();
      await this.#served.release();
      this.#log.info('stopped');
      this.#resolveDone();
    })();
    return this.#stopping;
  }
}
