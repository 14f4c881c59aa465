/**
 * src/node: the node daemon. Owns what makes one machine's services a tree: the services and their
 * manifests (`node-services.ts`, `reload-plan.ts`, `service-builder.ts`), the tree and its documents
 * (`node-tree.ts`, `render.ts`), the runtime journal, the control session to the control server and the
 * relay executor WorldFS reaches through it, the `fs` exports and the wasm services. `NodeDaemon`
 * itself only starts and stops them, in order.
 *
 * Must not import: cli/, control/ or world/ (the node speaks to them only over the control protocol).
 */
import type { Logger } from 'pino';
import { json } from '../errors/json-document.js';
import { mountPointPath } from '../fuse/mount-table.js';
import { ServedMount } from '../fuse/served-mount.js';
import type { MountAccess } from '../fuse/mount.js';
import { loadSchemas, type Schemas } from '../protocol/schemas.js';
import { readTokenFile } from '../protocol/token-text.js';
import { killOwnedProcesses, ownerOnMount } from '../runtime/driver-owner.js';
import { DriverSpawner } from '../runtime/driver-spawner.js';
import { InvocationIds } from '../runtime/invocation-id.js';
import type { StateSync } from '../store/state-journal.js';
import { Dispatcher } from '../vfs/dispatch.js';
import type { VNode } from '../vfs/node.js';
import { NodeControlSession } from './control-session.js';
import { buildExportsDirectory } from './fs-provider.js';
import { checkExports } from './export-spec.js';
import { checkDriverUser } from './driver-users.js';
import { loadNodeManifests, ManifestLoadError, type ManifestOptions } from './node-manifests.js';
import { NodeServices } from './node-services.js';
import { buildNodeTree } from './node-tree.js';
import { RelayServer } from './relay-server.js';
import { nodeDocument, nodeIdentity, publishedCatalog, servicesDocument, type NodeFacts } from './render.js';
import { RuntimeJournal } from './runtime-journal.js';
import { ServiceBuilder } from './service-builder.js';
import { configParser, configRefusalLog } from './service-config.js';
import { WasmServices } from './wasm-services.js';

export interface NodeDaemonOptions extends ManifestOptions {
  labels: Record<string, string>;
  shutdownGraceMs: number;
  /** Runtime state is journaled to `<stateFile>.runtime-services.json`; one daemon per state file (a pid lock). */
  stateFile: string;
  stateSync: StateSync;
  /** The FUSE loop's polling window after a reply (µs; 0 = off); see BusyPoll. */
  busyPollUs?: number;
  /** Who besides the daemon's user may use the tree (SPEC §9: other users need both, and modes that fit). */
  access?: MountAccess;
  /** 0: reload on SIGHUP only. */
  manifestReloadIntervalMs: number;
  /** The control servers, tried in turn (servers of one store); none: standalone. */
  controlUrls?: readonly string[];
  /** Read when the node must join: the token itself or a file holding it. */
  joinToken?: string;
  joinTokenFile?: string;
  reconnectBackoffMs: number;
  reconnectBackoffMaxMs: number;
}

/** What a running daemon holds, each made by `start` in this order and closed by `stop` in reverse. */
interface Parts {
  served: ServedMount;
  journal: RuntimeJournal;
  wasm: WasmServices;
  spawner: DriverSpawner;
  services: NodeServices;
  /** Also what the control session checks the server's frames against. */
  schemas: Schemas;
}

/**
 * The node daemon: loads services, restores their journaled state, forks the driver spawner
 * (before mounting, SPEC §12), mounts the node tree, reloads manifests while running and stops
 * cleanly on request or when someone unmounts it from outside.
 */
export class NodeDaemon {
  readonly options: NodeDaemonOptions;
  readonly done: Promise<void>;
  #log: Logger;
  #parts: Parts;
  #startedMs = Date.now();
  #stopping: Promise<void> | undefined;
  /** Aborted by forceStop: the shutdown grace ends there. */
  #graceCut = new AbortController();
  /** The stop has drained the runtimes: a later signal cuts nothing short. */
  #graceOver = false;
  #resolveDone!: () => void;
  /** The stop could not save the state (a full disk): what was acknowledged since is lost, so the exit is 1. */
  unclean = false;
  #reloadTimer: NodeJS.Timeout | undefined;
  #control: NodeControlSession | undefined;
  #relay: RelayServer | undefined;

  private constructor(options: NodeDaemonOptions, log: Logger, parts: Parts) {
    this.options = options;
    this.#log = log;
    this.#parts = parts;
    this.done = new Promise((resolveDone) => (this.#resolveDone = resolveDone));
  }

  static async start(given: NodeDaemonOptions, log: Logger): Promise<NodeDaemon> {
    const options = { ...given, mount: await mountPointPath(given.mount) };
    const { mount } = options;
    const exports = options.fsService ? await checkExports(options.exports, mount) : [];
    await checkDriverUser(options.driverUser);
    const schemas = await loadSchemas();
    const wasm = new WasmServices(log.child({ component: 'wasm' }));
    const load = (incumbents?: ReadonlyMap<string, string>) => loadNodeManifests(options, schemas, wasm, incumbents);
    const first = await load();
    if (first.problems.length > 0) throw new ManifestLoadError(first.problems);

    const served = await ServedMount.claim(mount, log);
    let journal: RuntimeJournal;
    try {
      // Drivers of a daemon that died here together with its spawner are still running: we hold the
      // mount's lock, so whatever carries this mount's mark is theirs. Killed first, also when the
      // journal then cannot be opened (a full or read-only disk).
      const orphans = await killOwnedProcesses((owner) => ownerOnMount(owner, mount));
      if (orphans > 0) log.warn({ killed: orphans }, 'killed the driver processes a dead daemon on this mount left behind');
      journal = await RuntimeJournal.open(options.stateFile, options.stateSync, log);
    } catch (error) {
      await served.release();
      throw error;
    }
    let spawner: DriverSpawner | undefined;
    let daemon: NodeDaemon;
    try {
      // Forked before the mount exists, so no driver can inherit /dev/fuse.
      spawner = await DriverSpawner.start(log, mount);
      const builder = new ServiceBuilder({ options, schemas, wasm, runner: spawner, ids: new InvocationIds(), journal });
      const services = new NodeServices({ builder, journal, wasm, load, spawner, log }, first);
      await journal.forgetUnclaimed();
      await services.probe();
      // A lost spawner cannot be forked again: every service that needs it shows that at once, not at its next failure.
      void spawner.lost.then(() => services.probe().catch((error: unknown) => log.error({ err: error }, 'probe failed')));
      daemon = new NodeDaemon(options, log, { served, journal, wasm, spawner, services, schemas });
      const tree = daemon.#tree(options.fsService ? buildExportsDirectory(exports) : undefined, configParser(schemas), configRefusalLog(log));
      await served.mount(tree, { busyPollUs: options.busyPollUs, ...options.access }, () => void daemon.stop('the mount was unmounted from outside'));
      // WorldFS operations run against the same tree, without FUSE (SPEC §9 Relay).
      daemon.#relay = new RelayServer(new Dispatcher(tree), log.child({ component: 'relay' }));
    } catch (error) {
      await wasm.close();
      await spawner?.close();
      await journal.close();
      await served.release();
      throw error;
    }
    daemon.#startReloadTimer();
    daemon.#startControlSession();
    log.info({ node_id: options.nodeId, mount, services: daemon.#parts.services.registry.executableIds().length }, 'node tree is live');
    return daemon;
  }

  /** See NodeServices.reload: on the timer and on SIGHUP. */
  reload(reason: string): Promise<void> {
    return this.#parts.services.reload(reason);
  }

  /**
   * Stops taking invocations, waits up to the grace period, kills the rest, unmounts, and only then
   * closes the journal: a write that reaches the tree until the unmount is still journaled. Idempotent.
   */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      const { served, journal, wasm, spawner, services } = this.#parts;
      this.#log.info({ reason }, 'stopping');
      clearInterval(this.#reloadTimer);
      await services.close();
      const drained = services
        .runtimes()
        .map(async (rt) => ({ service: rt.view.serviceId, invocations: await rt.drain(this.options.shutdownGraceMs, this.#graceCut.signal) }));
      for (const { service, invocations } of await Promise.all(drained)) {
        if (invocations.length > 0) {
          this.#log.error(
            { service, invocations },
            'invocations the kill did not end were abandoned; one still unfinished at the exit shows as interrupted at the next start',
          );
        }
      }
      this.#graceOver = true;
      await wasm.close();
      await spawner.close();
      await this.#control?.stop();
      await this.#relay?.close();
      await served.unmount();
      this.unclean = !(await journal.close());
      await served.release();
      this.#log.info({ ...(this.#graceCut.signal.aborted ? { forced: true } : {}), ...(this.unclean ? { state_lost: true } : {}) }, 'stopped');
      this.#resolveDone();
    })();
    return this.#stopping;
  }

  /**
   * `stop` without the rest of the grace (a second SIGINT or SIGTERM): running and queued invocations
   * are cancelled now, as at the grace's end, and the stop goes on (state saved, unmounted). False,
   * and nothing logged, when the stop is past the grace already: nothing was cut short.
   */
  forceStop(reason: string): boolean {
    const cut = !this.#graceOver && !this.#graceCut.signal.aborted;
    if (cut) {
      this.#log.warn({ reason }, 'forced stop: the shutdown grace is cut short');
      this.#graceCut.abort();
    }
    void this.stop(reason); // started here if no first signal started it
    return cut;
  }

  #tree(exports: VNode | undefined, parseConfig: ReturnType<typeof configParser>, configRefused: ReturnType<typeof configRefusalLog>): VNode {
    const { registry } = this.#parts.services;
    return buildNodeTree({
      mountPoint: this.options.mount,
      registry,
      nodeDocument: () => ({ data: json(nodeDocument(this.#facts())), mtimeMs: this.#startedMs }),
      servicesDocument: () => ({ data: json(servicesDocument(registry.list())), mtimeMs: registry.changedMs }),
      errorsDocument: () => ({ data: json(this.#parts.services.problems), mtimeMs: registry.changedMs }),
      parseConfig,
      configRefused,
      ...(exports ? { exports } : {}),
    });
  }

  #facts(): NodeFacts {
    const { options } = this;
    const { services } = this.#parts;
    return {
      nodeId: options.nodeId,
      labels: options.labels,
      mount: options.mount,
      startedMs: this.#startedMs,
      controlUrls: options.controlUrls ?? [],
      control: this.#control,
      driverSpawnerExit: this.#parts.spawner.exit,
      services: services.registry.list(),
      manifestErrors: services.problems.length,
    };
  }

  #startReloadTimer(): void {
    if (this.options.manifestReloadIntervalMs <= 0) return;
    this.#reloadTimer = setInterval(() => {
      void this.reload('interval').catch((error: unknown) => this.#log.error({ err: error }, 'manifest reload failed'));
    }, this.options.manifestReloadIntervalMs);
  }

  #startControlSession(): void {
    const { options } = this;
    if (!options.controlUrls?.length) return;
    this.#control = new NodeControlSession({
      urls: options.controlUrls,
      nodeId: options.nodeId,
      stateFile: options.stateFile,
      joinToken: async () => options.joinToken ?? (options.joinTokenFile ? await readJoinTokenFile(options.joinTokenFile) : undefined),
      catalog: () => publishedCatalog(this.#parts.services.registry.list(), this.#parts.services.problems),
      node: nodeIdentity(options.labels),
      backoffMs: options.reconnectBackoffMs,
      backoffMaxMs: options.reconnectBackoffMaxMs,
      log: this.#log.child({ component: 'control' }),
      schemas: this.#parts.schemas,
      ...(this.#relay ? { relay: this.#relay } : {}),
    });
    this.#control.start();
  }
}

/** The join token in `file`, read at each join attempt (a new token written there is used); none when empty, an unusable one says why. */
async function readJoinTokenFile(file: string): Promise<string | undefined> {
  const content = await readTokenFile(file);
  if (content.isUsable) return content.token;
  if (content.isEmpty) return undefined;
  throw new Error(`--join-token-file ${file}: the file ${content.problem}`);
}
