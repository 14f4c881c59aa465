import { hasLiveFiles, helpReadme } from '../protocol/service-files.js';
import type { PublicNode, ServiceDescriptor, SessionAttachReply } from '../protocol/types.gen.js';
import { seesService, type Sight, type UserSight } from '../protocol/visibility.js';
import { directory, tableDirectory } from '../vfs/directory.js';
import { FsError } from '../errors/errno.js';
import { snapshotFile, type Rendered } from '../vfs/files.js';
import { json } from '../errors/json-document.js';
import type { VNode } from '../vfs/node.js';
import { DocumentCache, LIVE_FILE_PATHS, liveServiceFiles } from './live-files.js';
import { derivedRoots, withDerivedRoots } from './derived-roots.js';
import { RemoteNode, type Relay } from './remote-node.js';
import type { RelayOperation } from './relay-call.js';
import { NodeSilence } from './node-silence.js';
import { OPERATION_TIMEOUT_MS } from '../fuse/operations.js';
import type { WorldCatalog } from './world-catalog.js';

export interface WorldTreeOptions {
  catalog: WorldCatalog;
  /** `nodes`: the mount root is `nodes/` itself (mounted on /nodes, `ls /nodes/*\/services` works). */
  subtree?: 'nodes';
}

/**
 * The WorldFS tree (SPEC §9): the same VFS as the node tree, projected from the control server's
 * catalog instead of a node's runtime. Every file renders from the catalog when it is opened, so a
 * catalog change shows at the next read; a node or service that went away answers ENOENT, and
 * everything below the root answers ENOTCONN while the control server is out of reach.
 */
export function buildWorldTree(options: WorldTreeOptions): VNode {
  const { catalog } = options;
  const { relayTo } = nodeRelays(catalog);
  const documents = new DocumentCache();
  // Every path is resolved from the root on every operation: a node's directory is built once per
  // catalog entry (entries are replaced, never changed, when the node changes) and session grant.
  const built = new WeakMap<PublicNode, { grant: SessionAttachReply | undefined; directory: VNode }>();
  const nodeDirectoryOf = (nodeId: string): VNode | undefined => {
    const node = connected(catalog).node(nodeId);
    if (!node) return undefined;
    const cached = built.get(node);
    if (cached && cached.grant === catalog.grant) return cached.directory;
    const fresh = { grant: catalog.grant, directory: nodeDirectory(catalog, nodeId, relayTo(nodeId), documents) };
    built.set(node, fresh);
    return fresh.directory;
  };
  const nodes = directory({
    list: () => connected(catalog).nodeIds(),
    get: nodeDirectoryOf,
    mtimeMs: () => catalog.changedMs,
  });
  return options.subtree === 'nodes' ? nodes : tableDirectory([['nodes', nodes]], () => catalog.changedMs);
}

/**
 * One relay per node, so a rename can tell whether both ends are on the same node, and the node's
 * silence is known across its operations (NodeSilence). Only nodes still
 * in the catalog keep theirs: making a new one drops those of nodes that left, so the map never
 * holds more than the catalog (plus the node asked for).
 */
export function nodeRelays(catalog: Pick<WorldCatalog, 'node' | 'relay' | 'link'>): { relayTo(nodeId: string): Relay; readonly size: number } {
  const relays = new Map<string, Relay>();
  return {
    relayTo: (nodeId) => {
      let relay = relays.get(nodeId);
      if (relay) return relay;
      for (const known of relays.keys()) if (!catalog.node(known)) relays.delete(known);
      const silence = new NodeSilence(nodeId, OPERATION_TIMEOUT_MS);
      const send = (operation: RelayOperation) => catalog.relay(nodeId, operation);
      // An offline node answers EHOSTUNREACH at once (catalog.relay), which also ends its silence.
      const relayed = (operation: RelayOperation) =>
        catalog.node(nodeId)?.state === 'offline' ? silence.send(operation, send) : silence.relay(operation, send);
      relays.set(nodeId, (relay = Object.assign(relayed, { link: catalog.link })));
      return relay;
    },
    get size() {
      return relays.size;
    },
  };
}

function connected(catalog: WorldCatalog): WorldCatalog {
  if (!catalog.connected) throw new FsError('ENOTCONN', `the control server is out of reach: ${catalog.lastError}`);
  return catalog;
}

/** A file rendered from the node's current catalog entry; ENOENT once the node is gone. */
function nodeFile(catalog: WorldCatalog, nodeId: string, render: (node: PublicNode) => string): VNode {
  return snapshotFile((): Rendered => {
    const node = connected(catalog).node(nodeId);
    if (!node) throw new FsError('ENOENT', `node ${nodeId} is no longer in the catalog`);
    return { data: render(node), mtimeMs: node.updated_ms };
  });
}

function nodeDirectory(catalog: WorldCatalog, nodeId: string, relay: Relay, documents: DocumentCache): VNode {
  const file = (render: (node: PublicNode) => string): VNode => nodeFile(catalog, nodeId, render);
  // Built once each while this node directory lives: their files check the catalog as they are read.
  const serviceDirectories = new Map<string, VNode>();
  const serviceDirectoryOf = (serviceId: string): VNode => {
    let built = serviceDirectories.get(serviceId);
    if (!built) serviceDirectories.set(serviceId, (built = serviceDirectory(catalog, nodeId, serviceId, relay, documents)));
    return built;
  };
  const entries: Array<[string, VNode]> = [
    ['NODE.json', file((n) => json({ node_id: n.node_id, node_name: n.node_name, platform: n.platform, labels: n.labels, joined_at_ms: n.joined_at_ms }))],
    [
      'STATUS.json',
      file((n) =>
        json({ node_id: n.node_id, state: n.state, lease_expires_at_ms: n.lease_expires_at_ms, last_seen_ms: n.last_seen_ms, updated_ms: n.updated_ms }),
      ),
    ],
    ['CAPS.json', file((n) => json(nodeCaps(n, catalog.grant)))],
    ['README.md', file((n) => nodeReadme(n, catalog.grant))],
    ['services', servicesDirectory(catalog, nodeId, serviceDirectoryOf)],
  ];
  // The node's exports, relayed, when it publishes its fs service (SPEC §9 nodes/<id>/fs/<export>/).
  const fs = catalog.node(nodeId)?.services.find((s) => s.service_id === FS_SERVICE_ID);
  if (fs && exportsVisible(nodeId, fs, catalog.grant)) entries.push(['fs', new RemoteNode(relay, '/fs')]);
  // Services that declare mount paths outside services/ show there too (SPEC §2; §8: `mount`).
  return withDerivedRoots(entries, {
    roots: () =>
      derivedRoots(
        nodeId,
        mountRootsVisible(catalog.grant) ? (connected(catalog).node(nodeId)?.services ?? []).filter((s) => visible(nodeId, s, catalog.grant)) : [],
      ),
    serviceDirectory: serviceDirectoryOf,
    mtimeMs: () => catalog.node(nodeId)?.updated_ms ?? catalog.changedMs,
  });
}

function servicesDirectory(catalog: WorldCatalog, nodeId: string, serviceDirectoryOf: (serviceId: string) => VNode): VNode {
  const services = (): ServiceDescriptor[] => {
    const node = connected(catalog).node(nodeId);
    if (!node) throw new FsError('ENOENT', `node ${nodeId} is no longer in the catalog`);
    return node.services.filter((s) => visible(nodeId, s, catalog.grant)).sort((a, b) => (a.service_id < b.service_id ? -1 : 1));
  };
  const servicesJson = nodeFile(catalog, nodeId, () =>
    json(services().map((s) => ({ service_id: s.service_id, kind: s.kind, version: s.version, state: s.state }))),
  );
  return directory({
    list: () => ['SERVICES.json', ...services().map((s) => s.service_id)],
    get: (name) => {
      if (name === 'SERVICES.json') return servicesJson;
      const service = connected(catalog)
        .node(nodeId)
        ?.services.find((s) => s.service_id === name);
      return service && visible(nodeId, service, catalog.grant) ? serviceDirectoryOf(name) : undefined;
    },
    mtimeMs: () => catalog.node(nodeId)?.updated_ms ?? catalog.changedMs,
  });
}

/** The built-in fs provider's service id (reserved: no manifest can take it). */
const FS_SERVICE_ID = 'fs';

/** A service: its catalog metadata (read-only, from the catalog) and its live files (relayed, SPEC §9). */
function serviceDirectory(catalog: WorldCatalog, nodeId: string, serviceId: string, relay: Relay, documents: DocumentCache): VNode {
  const current = (node: PublicNode | undefined): ServiceDescriptor => {
    const service = node?.services.find((s) => s.service_id === serviceId);
    if (!service || !visible(nodeId, service, catalog.grant)) throw new FsError('ENOENT', `service ${serviceId} is no longer on node ${nodeId}`);
    return service;
  };
  const file = (render: (service: ServiceDescriptor) => string): VNode => nodeFile(catalog, nodeId, (node) => render(current(node)));
  const metadata = new Map<string, VNode>([
    [
      'README.md',
      file((s) =>
        s.help_md === undefined ? `# ${s.service_id}\n\nA \`${s.kind}\` service, version ${s.version}, on node ${nodeId}.\n` : helpReadme(s.help_md),
      ),
    ],
    ['SCHEMA.json', file((s) => json(s.schema))],
    [
      'STATUS.json',
      file((s) => json({ service_id: s.service_id, version: s.version, state: s.state, supervision_status: s.runtime.supervision_status ?? null })),
    ],
    ['CAPS.json', file((s) => json(s.capabilities))],
    ['MOUNTS.json', file((s) => json(s.mounts))],
    ['OPS.json', file((s) => json(s.ops))],
    ['RUNTIME.json', file((s) => json(s.runtime))],
    ['PERMISSIONS.json', file((s) => json(s.permissions))],
  ]);
  const changedMs = (): number => catalog.node(nodeId)?.updated_ms ?? catalog.changedMs;
  // Built anew with each catalog entry of the node, so the files opened through this directory are
  // of the service's incarnation now. The catalog as last heard: a snapshot read while the control
  // server is out of reach is still served.
  const incarnation = catalog.incarnation(nodeId, serviceId);
  const alive = (): void => {
    current(catalog.node(nodeId));
    if (catalog.incarnation(nodeId, serviceId) !== incarnation)
      throw new FsError('ENOENT', `service ${serviceId} on node ${nodeId}: the runtime this file was opened on has been removed`);
  };
  // The fs service has no files of its own on the node: its exports are nodes/<id>/fs/.
  const live = new Map(
    serviceId === FS_SERVICE_ID
      ? []
      : liveServiceFiles(relay, documents, { serviceId, descriptor: () => current(connected(catalog).node(nodeId)), alive, changedMs }),
  );
  const withLive = [...metadata.keys(), ...live.keys()].sort();
  const metadataOnly = [...metadata.keys()].sort();
  // Asked at each use: a reload may give a catalog-only service an executable, or take it away.
  const runs = (): boolean => hasLiveFiles(current(catalog.node(nodeId)));
  return directory({
    list: () => (runs() ? withLive : metadataOnly),
    get: (name) => metadata.get(name) ?? (live.has(name) && runs() ? live.get(name) : undefined),
    mtimeMs: changedMs,
  });
}

/** One Sight per grant: every listing and lookup asks, once per service. */
const sights = new WeakMap<SessionAttachReply, UserSight>();

/**
 * The mount's session as SPEC §8's rule sees it (src/protocol/visibility.ts): admins (no grant)
 * see all; a user session has the actions its grant says. Which nodes it sees is the server's
 * part: the catalog this mount mirrors holds only the nodes the project mounts, read live there.
 */
function sightOf(grant: SessionAttachReply | undefined): Sight {
  if (!grant) return undefined;
  let sight = sights.get(grant);
  if (!sight) {
    sight = {
      hasProjectToken: grant.has_project_token,
      mounts: () => true,
      refusal: (action) => (grant.actions[action] === 'allowed' ? undefined : grant.actions[action]),
    };
    sights.set(grant, sight);
  }
  return sight;
}

/** Whether this session may see a service: live service files need `invoke`. Hidden means absent from listings and ENOENT. */
export function visible(nodeId: string, service: ServiceDescriptor, grant: SessionAttachReply | undefined): boolean {
  return seesService(sightOf(grant), nodeId, service.permissions, 'invoke');
}

/** SPEC §8: `mount` guards derived mount roots (each also needs its service to be visible). */
function mountRootsVisible(grant: SessionAttachReply | undefined): boolean {
  return !grant || grant.actions.mount === 'allowed';
}

/** SPEC §8: `read` guards fs/ reads in WorldFS (not `invoke`), and the fs service must admit the session. */
function exportsVisible(nodeId: string, fs: ServiceDescriptor, grant: SessionAttachReply | undefined): boolean {
  return seesService(sightOf(grant), nodeId, fs.permissions, 'read');
}

function nodeCaps(node: PublicNode, grant: SessionAttachReply | undefined): Record<string, unknown> {
  const services = node.services.filter((s) => visible(node.node_id, s, grant));
  return { platform: node.platform, labels: node.labels, services: services.length, kinds: [...new Set(services.map((s) => s.kind))].sort() };
}

function nodeReadme(node: PublicNode, grant: SessionAttachReply | undefined): string {
  const services = node.services.filter((s) => visible(node.node_id, s, grant)).map((s) => `- \`${s.service_id}\` (${s.kind} ${s.version}, ${s.state})`);
  return (
    `# ${node.node_name} (\`${node.node_id}\`)\n\nState: ${node.state}. ${services.length} service(s) visible to this mount:\n\n${services.join('\n')}${services.length ? '\n' : ''}\n` +
    `Each \`services/<id>/\` holds the service's catalog metadata (README.md, SCHEMA.json, STATUS.json, CAPS.json,\nMOUNTS.json, OPS.json, RUNTIME.json, PERMISSIONS.json) ` +
    `and its live files, each read or write relayed to this node:\n${LIVE_FILE_PATHS.map((path) => `\`${path}\``).join(', ')}.\n` +
    `Write a JSON request into \`control/invoke.json\` to invoke; the fs service's files are its exports, under \`fs/\`.\n`
  );
}
