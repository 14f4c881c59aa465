// The fleet the harness checks: its own (a control server and node daemons in the network
// namespaces the shell script made) or a running one (a control server's URL and an admin token).
// Either way the harness mounts WorldFS with the admin token and keeps a watcher of its own.
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { ACHERON, isMounted, REPO } from '../../test/helpers/node.js';
import { q, sh, waitFor } from '../../test/helpers/process.js';
import { Daemon } from './daemon.js';
import { CatalogWatcher } from './watcher.js';

const run = promisify(execFile);

/** One node of the harness's own fleet, as the shell script set up its network. */
export interface FleetNode {
  node_id: string;
  /** Its network namespace (/run/netns/<netns>). */
  netns: string;
  /** The control side of its veth pair: down = a silent link. */
  link: string;
  control_address: string;
  node_address: string;
}

export interface Timing {
  pingIntervalMs: number;
  offlineGraceMs: number;
  leaseTtlMs: number;
}

/** What the checks need of either kind of fleet. */
export interface Fleet {
  readonly nodeIds: string[];
  readonly worldMount: string;
  readonly admin: ControlClient;
  readonly watcher: CatalogWatcher;
  /** `nodes/<id>` in the WorldFS mount. */
  worldNode(nodeId: string): string;
}

/** What to undo at the end, newest first (the harness runs it also on failure and on Ctrl-C). */
export type Cleanups = Array<() => Promise<unknown>>;

const CONTROL_PORT = 18790;
const HTTP_PORT = 18791;
const WHERE_DRIVER = join(REPO, 'scripts', 'multi-node', 'where-driver.sh');

/** The harness's services beside the reference echo: `where` answers at once, `slow` after 2 s. */
function harnessManifests(): Array<Record<string, unknown>> {
  const service = (serviceId: string, env: Record<string, string>, help: string): Record<string, unknown> => ({
    service_id: serviceId,
    kind: 'harness',
    runtime: { type: 'native_proc', executable_path: WHERE_DRIVER, timeout_ms: 10_000, env },
    permissions: { allow_roles: ['admin', 'user'], default: 'deny-by-default' },
    schema: { input: { type: 'object' } },
    help_md: help,
  });
  return [
    service('where', {}, '# where\n\nAnswers the node that ran it and its network namespace, with the payload.\n'),
    service('slow', { SLEEP_SECONDS: '2' }, '# slow\n\n`where`, after 2 s: for invocations cut by a partition.\n'),
  ];
}

/** Mounts WorldFS with the admin token (in the current network namespace) and waits until it is live. */
async function startWorld(runDir: string, url: string, tokenFile: string, cleanups: Cleanups): Promise<string> {
  const mount = join(runDir, 'world');
  await mkdir(mount, { recursive: true });
  const daemon = await Daemon.start(
    'acheron world',
    [process.execPath, ACHERON, 'world', '--control-url', url, '--token-file', tokenFile, '--mount', mount, '--log-file', join(runDir, 'world.log')],
    runDir,
  );
  cleanups.push(() => daemon.stop());
  await waitFor(async () => daemon.gone || (await isMounted(mount)), { what: `the WorldFS mount at ${mount}`, timeoutMs: 60_000, intervalMs: 100 });
  if (daemon.gone) throw new Error(`acheron world exited before mounting: ${daemon.stderr}`);
  return mount;
}

/** A fleet that runs elsewhere: ACHERON_CONTROL_URL and an admin token. */
export class ExistingFleet implements Fleet {
  readonly nodeIds: string[];
  readonly worldMount: string;
  readonly admin: ControlClient;
  readonly watcher: CatalogWatcher;

  private constructor(nodeIds: string[], worldMount: string, admin: ControlClient, watcher: CatalogWatcher) {
    this.nodeIds = nodeIds;
    this.worldMount = worldMount;
    this.admin = admin;
    this.watcher = watcher;
  }

  /** `expected`: the nodes to check; empty: every node the catalog has online. */
  static async connect(runDir: string, url: string, token: string, expected: string[], cleanups: Cleanups): Promise<ExistingFleet> {
    const admin = await ControlClient.connect({ url, token, requestTimeoutMs: 30_000 });
    cleanups.push(async () => admin.terminate());
    const { nodes } = await admin.request<{ nodes: Array<{ node_id: string; state: string }> }>('control.node_list');
    const nodeIds = expected.length > 0 ? expected : nodes.filter((n) => n.state === 'online').map((n) => n.node_id);
    const tokenFile = join(runDir, 'token');
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    const watcher = await CatalogWatcher.start(url, token);
    cleanups.push(async () => watcher.close());
    const world = await startWorld(runDir, url, tokenFile, cleanups);
    return new ExistingFleet(nodeIds, world, admin, watcher);
  }

  worldNode(nodeId: string): string {
    return join(this.worldMount, 'nodes', nodeId);
  }
}

interface RunningNode {
  spec: FleetNode;
  daemon: Daemon;
  argv: string[];
}

interface OwnFleetParts {
  runDir: string;
  controlNetns: string;
  timing: Timing;
  url: string;
  adminToken: string;
  worldMount: string;
  nodes: Map<string, RunningNode>;
  admin: ControlClient;
  watcher: CatalogWatcher;
}

/**
 * The harness's own fleet: the control server in the control namespace (this process runs there
 * too), each node daemon entered into its own namespace with `nsenter --net`, so every FUSE mount
 * stays visible to the host. Links go down and up with `ip -n <control ns> link set`.
 */
export class OwnFleet implements Fleet {
  readonly nodeIds: string[];
  readonly worldMount: string;
  readonly admin: ControlClient;
  readonly watcher: CatalogWatcher;
  readonly timing: Timing;
  readonly controlNetns: string;
  readonly runDir: string;
  readonly url: string;
  readonly adminToken: string;
  #nodes: Map<string, RunningNode>;

  private constructor(init: OwnFleetParts) {
    this.runDir = init.runDir;
    this.controlNetns = init.controlNetns;
    this.timing = init.timing;
    this.url = init.url;
    this.adminToken = init.adminToken;
    this.worldMount = init.worldMount;
    this.#nodes = init.nodes;
    this.nodeIds = [...init.nodes.keys()];
    this.admin = init.admin;
    this.watcher = init.watcher;
  }

  /** Starts everything from `<runDir>/fleet.json` (written by the shell script); each start registers its stop in `cleanups`. */
  static async start(runDir: string, timing: Timing, cleanups: Cleanups): Promise<OwnFleet> {
    const fleet = JSON.parse(await readFile(join(runDir, 'fleet.json'), 'utf8')) as { control_netns: string; nodes: FleetNode[] };
    const dataDir = join(runDir, 'control');
    const control = await Daemon.start(
      'acheron control',
      [
        process.execPath,
        ACHERON,
        'control',
        '--data-dir',
        dataDir,
        // Every address of the control namespace: its loopback and the control end of each veth pair.
        '--listen',
        `0.0.0.0:${CONTROL_PORT}`,
        '--http-listen',
        `127.0.0.1:${HTTP_PORT}`,
        '--ping-interval-ms',
        String(timing.pingIntervalMs),
        '--offline-grace-ms',
        String(timing.offlineGraceMs),
        '--lease-ttl-ms',
        String(timing.leaseTtlMs),
        '--log-file',
        join(runDir, 'control.log'),
      ],
      runDir,
    );
    cleanups.push(() => control.stop());
    const url = `ws://127.0.0.1:${CONTROL_PORT}`;
    await waitFor(async () => control.gone || (await fetch(`http://127.0.0.1:${HTTP_PORT}/livez`)).ok, {
      what: 'the control server',
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    if (control.gone) throw new Error(`acheron control exited: ${control.stderr}`);
    // Tokens the way `acheron token` makes them (file lock, atomic rename; the server notices).
    const tokens = await FileTokenStore.open(dataDir);
    const adminToken = tokens.data.admin[0]?.token as string;
    const tokenFile = join(runDir, 'admin-token');
    await writeFile(tokenFile, `${adminToken}\n`, { mode: 0o600 });

    const servicesDir = join(runDir, 'services.d');
    await mkdir(servicesDir, { recursive: true });
    for (const manifest of harnessManifests()) await writeFile(join(servicesDir, `${String(manifest.service_id)}.json`), JSON.stringify(manifest, null, 2));
    const nodes = new Map<string, RunningNode>();
    // All at once, each the daemon of the moment (a restart replaces it); also those up when another failed to start.
    cleanups.push(() => Promise.all([...nodes.values()].map((node) => node.daemon.stop())));
    await Promise.all(
      fleet.nodes.map(async (spec) => {
        const dir = join(runDir, spec.node_id);
        await mkdir(join(dir, 'export'), { recursive: true });
        await writeFile(join(dir, 'export', 'hello.txt'), `hello from ${spec.node_id}\n`);
        await writeFile(join(dir, 'join-token'), `${(await tokens.createJoin(600_000)).token}\n`, { mode: 0o600 });
        const argv = [
          'nsenter',
          `--net=/run/netns/${spec.netns}`,
          process.execPath,
          ACHERON,
          'node',
          '--node-id',
          spec.node_id,
          '--mount',
          join(dir, 'mnt'),
          '--service-manifest',
          join(REPO, 'manifests.d', 'echo.json'),
          '--services-dir',
          servicesDir,
          '--export',
          `data=${join(dir, 'export')}:rw`,
          '--state-file',
          join(dir, 'state.json'),
          '--control-url',
          `ws://${spec.control_address}:${CONTROL_PORT}`,
          '--join-token-file',
          join(dir, 'join-token'),
          '--reconnect-backoff-ms',
          '200',
          '--reconnect-backoff-max-ms',
          '2000',
          '--log-file',
          join(dir, 'node.log'),
        ];
        nodes.set(spec.node_id, { spec, argv, daemon: await startNode(runDir, spec.node_id, argv) });
      }),
    );

    const admin = await ControlClient.connect({ url, token: adminToken, requestTimeoutMs: 30_000 });
    cleanups.push(async () => admin.terminate());
    const watcher = await CatalogWatcher.start(url, adminToken);
    cleanups.push(async () => watcher.close());
    const worldMount = await startWorld(runDir, url, tokenFile, cleanups);
    // Nodes in fleet order (they started in parallel).
    const ordered = new Map(fleet.nodes.map((spec) => [spec.node_id, nodes.get(spec.node_id) as RunningNode]));
    return new OwnFleet({ runDir, controlNetns: fleet.control_netns, timing, url, adminToken, worldMount, nodes: ordered, admin, watcher });
  }

  worldNode(nodeId: string): string {
    return join(this.worldMount, 'nodes', nodeId);
  }

  /** The node's own mount (a host path: nsenter --net keeps the mount namespace). */
  nodeMount(nodeId: string): string {
    return join(this.runDir, nodeId, 'mnt');
  }

  #node(nodeId: string): RunningNode {
    const node = this.#nodes.get(nodeId);
    if (!node) throw new Error(`node ${nodeId} is not in this fleet (${this.nodeIds.join(', ')})`);
    return node;
  }

  /** The node's network namespace as a driver sees it in /proc/self/ns/net: `net:[<inode>]`. */
  async netnsId(nodeId: string): Promise<string> {
    return `net:[${(await stat(`/run/netns/${this.#node(nodeId).spec.netns}`)).ino}]`;
  }

  /** The node's veth pair down (a silent link: no FIN, no RST reaches either side) or up again. */
  async link(nodeId: string, state: 'up' | 'down'): Promise<void> {
    await run('ip', ['-n', this.controlNetns, 'link', 'set', this.#node(nodeId).spec.link, state]);
  }

  /** SIGTERM (a clean stop: state saved, unmounted), then the same daemon again in the same namespace. */
  async restart(nodeId: string): Promise<void> {
    const node = this.#node(nodeId);
    const exit = await node.daemon.stop('SIGTERM', 20_000);
    if (exit.code !== 0) throw new Error(`node ${nodeId} did not stop cleanly: ${JSON.stringify(exit)}`);
    node.daemon = await startNode(this.runDir, nodeId, node.argv);
  }

  /** Resident memory of the node daemon (KiB). */
  async rssKiB(nodeId: string): Promise<number> {
    const status = await readFile(`/proc/${this.#node(nodeId).daemon.pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  }

  /** Node tunnels the server holds now (`acheron_connections{role="node"}`). */
  async nodeTunnels(): Promise<number> {
    const metrics = await this.admin.request<Record<string, Array<{ labels: Record<string, string>; value: number }>>>('control.metrics');
    return metrics.acheron_connections?.find((m) => m.labels.role === 'node')?.value ?? 0;
  }
}

/** Starts a node daemon and waits until its own mount is live and served by it. */
async function startNode(runDir: string, nodeId: string, argv: string[]): Promise<Daemon> {
  const daemon = await Daemon.start(`acheron node ${nodeId}`, argv, runDir);
  // One that never mounts is stopped here; a started one by the caller.
  const mount = join(runDir, nodeId, 'mnt');
  try {
    // A mount of the daemon stopped before it may still be listed: NODE.json must name this one.
    await waitFor(
      async () => {
        if (daemon.gone) return true;
        const read = await sh(`cat ${q(join(mount, 'NODE.json'))}`, { timeoutMs: 10_000 });
        return read.code === 0 && (JSON.parse(read.stdout) as { pid?: number }).pid === daemon.pid;
      },
      { what: `node ${nodeId}'s mount`, timeoutMs: 60_000, intervalMs: 100 },
    );
    if (daemon.gone) throw new Error(`acheron node ${nodeId} exited before mounting: ${daemon.stderr}`);
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return daemon;
}
