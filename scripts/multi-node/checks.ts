// The harness's checks (docs/MULTI_NODE_RUNTIME_HARNESS.md): each resolves to one line of detail,
// throws Skip when it cannot run against this kind of fleet, or throws an Error saying what failed.
// The mounts are touched only by child processes (test/fixtures/probe.py, cat).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkReference, validateWatcher } from '../../test/helpers/history-validator.js';
import { probe, shown, type Outcome } from '../../test/helpers/probe.js';
import { waitFor } from '../../test/helpers/process.js';
import { OwnFleet, type Fleet } from './fleet.js';
import { allEvents } from './watcher.js';

export interface CheckOptions {
  /** Run id: part of every marker, so markers of other runs never match. */
  runId: string;
  expectedServices: string[];
  /** The service invoked on every node; its result must name the node (`node_id`). */
  invokeService: string;
  /** The bound of every wait. */
  timeoutMs: number;
  /** The node partitioned, flapped and cut mid-invoke (own fleet); the node restarted by its operator (a running fleet). */
  reconnectNodeId: string | undefined;
  /** How long a running fleet's operator has to restart RECONNECT_NODE_ID. */
  reconnectTimeoutMs: number;
  persistenceNodeId: string | undefined;
  persistenceServiceId: string;
  flap: { count: number; downMs: number; upMs: number };
  /** partition-timing: rounds, and where its samples go (JSON). */
  timing: { rounds: number; resultFile: string | undefined };
}

/** The check does not apply to this fleet; the reason is printed. */
export class Skip extends Error {}

export type Check = (fleet: Fleet, options: CheckOptions) => Promise<string>;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function own(fleet: Fleet): OwnFleet {
  if (!(fleet instanceof OwnFleet))
    throw new Skip("needs the harness's own fleet (its links are cut with ip link; a running fleet's are not the harness's to cut)");
  return fleet;
}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** The outcome's value, or an Error naming the operation and its errno. */
function value(outcome: Outcome | undefined, what: string): unknown {
  expect(outcome && outcome.errno === undefined, `${what}: ${outcome?.errno ?? 'no outcome'}`);
  return outcome.value;
}

interface NodeDoc {
  node_id: string;
  state: string;
  services: Array<{ service_id: string; state: string }>;
}

const getNode = (fleet: Fleet, nodeId: string): Promise<NodeDoc> => fleet.admin.request<NodeDoc>('control.node_get', { node_id: nodeId });

/** Waits until the catalog has the node online with each expected service. */
async function nodeOnline(fleet: Fleet, options: CheckOptions, nodeId: string): Promise<NodeDoc> {
  return waitFor(
    async () => {
      const doc = await getNode(fleet, nodeId);
      return doc.state === 'online' && options.expectedServices.every((id) => doc.services.some((s) => s.service_id === id)) ? doc : undefined;
    },
    { what: `node ${nodeId} online with ${options.expectedServices.join(', ')} in the catalog`, timeoutMs: options.timeoutMs, intervalMs: 100 },
  );
}

/** An O_RDWR transaction on a service's invoke.json through WorldFS: its own outcome, parsed. */
async function invokeThroughWorld(fleet: Fleet, nodeId: string, serviceId: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
  const [outcome] = await probe([
    { op: 'transact', path: join(fleet.worldNode(nodeId), 'services', serviceId, 'control', 'invoke.json'), data: JSON.stringify(payload) },
  ]);
  return JSON.parse(String(value(outcome, `invoke ${serviceId} on ${nodeId} through WorldFS`))) as Record<string, unknown>;
}

async function readJson<T>(path: string): Promise<T> {
  const [outcome] = await probe([{ op: 'read', path }]);
  return JSON.parse(String(value(outcome, `read ${path}`))) as T;
}

/** The jobs/ of a service on the node's own mount whose request carries `marker`, with their status. */
async function jobsWith(fleet: OwnFleet, nodeId: string, serviceId: string, marker: string): Promise<Array<{ id: string; state: string; result: string }>> {
  const jobs = join(fleet.nodeMount(nodeId), 'services', serviceId, 'jobs');
  const ids = value((await probe([{ op: 'ls', path: jobs }]))[0], `ls ${jobs}`) as string[];
  const files = await probe(
    ids.flatMap((id) => ['request.json', 'status.json', 'result.json'].map((name) => ({ op: 'read' as const, path: join(jobs, id, name) }))),
  );
  return ids.flatMap((id, i) => {
    const [request, status, result] = files.slice(i * 3, i * 3 + 3);
    if (!String(request?.value ?? '').includes(marker)) return [];
    return [{ id, state: String((JSON.parse(String(status?.value ?? '{}')) as { state?: string }).state), result: String(result?.value ?? result?.errno) }];
  });
}

function expectNodes(fleet: Fleet): void {
  expect(fleet.nodeIds.length > 0, 'no nodes to check: the catalog has no online node (give EXPECTED_NODES)');
}

/** Every expected node and service in the catalog and in the WorldFS mount, its live files relayed. */
export const catalog: Check = async (fleet, options) => {
  expectNodes(fleet);
  for (const nodeId of fleet.nodeIds) await nodeOnline(fleet, options, nodeId);
  const services = options.expectedServices;
  await waitFor(
    async () => {
      const out = await probe([
        { op: 'ls', path: join(fleet.worldMount, 'nodes') },
        ...fleet.nodeIds.map((id) => ({ op: 'ls' as const, path: join(fleet.worldNode(id), 'services') })),
      ]);
      const [listed, ...perNode] = out;
      const missing = fleet.nodeIds.filter((id) => !(shown(listed) as string[] | undefined)?.includes?.(id));
      expect(missing.length === 0, `WorldFS lists no ${missing.join(', ')}`);
      perNode.forEach((o, i) => {
        const absent = services.filter((s) => !(o.value as string[] | undefined)?.includes(s));
        expect(absent.length === 0, `WorldFS nodes/${fleet.nodeIds[i]}/services/ lacks ${absent.join(', ')} (${shown(o)})`);
      });
      return true;
    },
    { what: 'every node and service in the WorldFS mount', timeoutMs: options.timeoutMs, intervalMs: 200 },
  );
  const live = await probe(
    fleet.nodeIds.flatMap((id) => services.map((s) => ({ op: 'read' as const, path: join(fleet.worldNode(id), 'services', s, 'status.json') }))),
  );
  live.forEach((o, i) =>
    value(o, `read nodes/${fleet.nodeIds[Math.floor(i / services.length)]}/services/${services[i % services.length]}/status.json through WorldFS`),
  );
  return `${fleet.nodeIds.length} node(s) online (${fleet.nodeIds.join(', ')}), each with ${services.join(', ')}, in the catalog and in WorldFS; status.json of each read through the relay`;
};

/** An invoke through WorldFS on each node runs on that node: its result names it (and, own fleet, its network namespace). */
export const invoke: Check = async (fleet, options) => {
  expectNodes(fleet);
  const service = options.invokeService;
  const owned = fleet instanceof OwnFleet ? fleet : undefined;
  for (const nodeId of fleet.nodeIds) {
    const marker = `${options.runId}-invoke-${nodeId}`;
    const result = await invokeThroughWorld(fleet, nodeId, service, { harness: marker });
    expect(
      result.node_id === nodeId,
      `invoke ${service} on ${nodeId}: the result names node ${String(result.node_id)}: ${JSON.stringify(result).slice(0, 300)}`,
    );
    if (owned) {
      const netns = await owned.netnsId(nodeId);
      expect(
        result.net_ns === undefined || result.net_ns === netns,
        `invoke ${service} on ${nodeId}: the driver ran in ${String(result.net_ns)}, not in the node's namespace ${netns}`,
      );
    }
    // The node's own result.json: read on its mount (own fleet), else relayed from it.
    const resultFile = join(owned ? owned.nodeMount(nodeId) : fleet.worldNode(nodeId), 'services', service, 'result.json');
    const stored = JSON.stringify(await readJson(resultFile));
    expect(stored.includes(marker), `${resultFile} does not hold the invocation ${marker}: ${stored.slice(0, 300)}`);
  }
  return `an invoke of ${service} through WorldFS ran on each of ${fleet.nodeIds.length} node(s): its result and the node's own result.json name the node${owned ? ", the driver ran in the node's network namespace" : ''}`;
};

/** A config.json marker written through WorldFS survives the node's restart. */
export const restart: Check = async (fleet, options) => {
  const nodeId = options.persistenceNodeId;
  if (nodeId === undefined) throw new Skip('PERSISTENCE_NODE_ID is not set');
  const owned = fleet instanceof OwnFleet ? fleet : undefined;
  if (!owned && options.reconnectNodeId !== nodeId)
    throw new Skip(`on a running fleet the restart is the operator's: set RECONNECT_NODE_ID=${nodeId} and restart that node while the harness waits`);
  const service = options.persistenceServiceId;
  const config = join(fleet.worldNode(nodeId), 'services', service, 'config.json');
  const original = await readJson<Record<string, unknown>>(config);
  const marker = `${options.runId}-config-${Date.now()}`;
  const write = async (doc: Record<string, unknown>): Promise<void> =>
    void value((await probe([{ op: 'write', path: config, data: JSON.stringify(doc) }]))[0], `write ${config}`);
  await write({ ...original, 'x-harness-marker': marker });
  try {
    expect((await readJson<Record<string, unknown>>(config))['x-harness-marker'] === marker, `${config}: the marker did not read back`);
    let how: string;
    if (owned) {
      await owned.restart(nodeId);
      how = 'a restart of its daemon (SIGTERM, started again)';
    } else {
      const from = fleet.watcher.headSeq;
      console.log(`# waiting up to ${seconds(options.reconnectTimeoutMs)} for node ${nodeId} to go offline and come back: restart it now`);
      const offline = await fleet.watcher.waitForEvent(
        `node ${nodeId} offline`,
        from,
        (e) => e.node_id === nodeId && e.kind === 'offline',
        options.reconnectTimeoutMs,
      );
      await fleet.watcher.waitForEvent(
        `node ${nodeId} online again`,
        offline.seq,
        (e) => e.node_id === nodeId && e.kind === 'online',
        options.reconnectTimeoutMs,
      );
      how = 'its restart (offline, then online)';
    }
    await nodeOnline(fleet, options, nodeId);
    const after = await waitFor(async () => readJson<Record<string, unknown>>(config), {
      what: `${config} readable after the restart`,
      timeoutMs: options.timeoutMs,
      intervalMs: 200,
    });
    expect(after['x-harness-marker'] === marker, `${config} after ${how}: ${JSON.stringify(after)}, the marker ${marker} is gone`);
    if (owned) {
      const onNode = await readJson<Record<string, unknown>>(join(owned.nodeMount(nodeId), 'services', service, 'config.json'));
      expect(onNode['x-harness-marker'] === marker, `the node's own config.json after the restart lacks the marker: ${JSON.stringify(onNode)}`);
    }
    return `a marker written to services/${service}/config.json on ${nodeId} through WorldFS survived ${how}`;
  } finally {
    await write(original).catch(() => undefined);
  }
};

/** The catalog's node tunnels back to one per node (none leaked), bounded. */
async function tunnelsSettle(fleet: OwnFleet, options: CheckOptions): Promise<void> {
  await waitFor(async () => (await fleet.nodeTunnels()) === fleet.nodeIds.length, {
    what: `${fleet.nodeIds.length} node tunnels on the server (acheron_connections{role="node"})`,
    timeoutMs: options.timeoutMs,
    intervalMs: 200,
  });
}

function partitioned(options: CheckOptions, fleet: OwnFleet): string {
  const nodeId = options.reconnectNodeId ?? fleet.nodeIds[1] ?? fleet.nodeIds[0];
  expect(nodeId !== undefined && fleet.nodeIds.includes(nodeId), `RECONNECT_NODE_ID=${String(nodeId)} is not in the fleet (${fleet.nodeIds.join(', ')})`);
  return nodeId;
}

/** Link down and back up, timed at the watcher: link down → offline event, link up → online event. */
async function cutAndHeal(
  fleet: OwnFleet,
  options: CheckOptions,
  nodeId: string,
  whileDown?: () => Promise<void>,
): Promise<{ detectionMs: number; recoveryMs: number }> {
  const from = fleet.watcher.headSeq;
  const downAt = Date.now();
  await fleet.link(nodeId, 'down');
  let upAt: number | undefined;
  try {
    const offline = await fleet.watcher.waitForEvent(
      `node ${nodeId} offline after its link went down`,
      from,
      (e) => e.node_id === nodeId && e.kind === 'offline',
      options.timeoutMs,
    );
    await whileDown?.();
    upAt = Date.now();
    await fleet.link(nodeId, 'up');
    const online = await fleet.watcher.waitForEvent(
      `node ${nodeId} online after its link came back`,
      offline.seq,
      (e) => e.node_id === nodeId && e.kind === 'online',
      options.timeoutMs,
    );
    return { detectionMs: offline.receivedMs - downAt, recoveryMs: online.receivedMs - upAt };
  } finally {
    if (upAt === undefined) await fleet.link(nodeId, 'up');
  }
}

const timingText = (fleet: OwnFleet): string => `ping ${fleet.timing.pingIntervalMs} ms, grace ${fleet.timing.offlineGraceMs} ms`;

/** Link down: offline after the grace period with an event; EHOSTUNREACH at once; its own mount serves; link up: online, nothing ran twice. */
export const partition: Check = async (fleet, options) => {
  const o = own(fleet);
  const nodeId = partitioned(options, o);
  const marker = (when: string): string => `${options.runId}-partition-${when}`;
  await invokeThroughWorld(o, nodeId, 'where', { harness: marker('before') });
  const others = o.nodeIds.filter((id) => id !== nodeId);
  let refused: Outcome | undefined;
  let local: Outcome | undefined;
  const { detectionMs, recoveryMs } = await cutAndHeal(o, options, nodeId, async () => {
    const status = await readJson<{ state: string }>(join(o.worldNode(nodeId), 'STATUS.json'));
    expect(status.state === 'offline', `WorldFS STATUS.json of ${nodeId} says ${status.state} after the offline event`);
    [refused, local] = await probe([
      { op: 'write', path: join(o.worldNode(nodeId), 'services', 'where', 'control', 'invoke.json'), data: JSON.stringify({ harness: marker('refused') }) },
      { op: 'transact', path: join(o.nodeMount(nodeId), 'services', 'where', 'control', 'invoke.json'), data: JSON.stringify({ harness: marker('local') }) },
    ]);
    const othersNow = await Promise.all(others.map((id) => getNode(o, id)));
    expect(
      othersNow.every((n) => n.state === 'online'),
      `other nodes went offline too: ${othersNow
        .filter((n) => n.state !== 'online')
        .map((n) => n.node_id)
        .join(', ')}`,
    );
  });
  // The node refreshes its lease every third of the TTL: before the lease could lapse, only missed pongs explain the offline.
  const leaseLapseMs = o.timing.leaseTtlMs - Math.max(1000, Math.floor(o.timing.leaseTtlMs / 3));
  expect(
    detectionMs < leaseLapseMs,
    `${nodeId} went offline ${detectionMs} ms after its link went down, not before its lease could lapse (${leaseLapseMs} ms): the missed pongs (ping ${o.timing.pingIntervalMs} ms) did not drop the tunnel first`,
  );
  expect(refused?.errno === 'EHOSTUNREACH', `an invoke through WorldFS on the offline node got ${String(shown(refused))}, not EHOSTUNREACH`);
  expect((refused?.ms ?? Infinity) < 3000, `EHOSTUNREACH took ${refused?.ms} ms: not at once`);
  expect(String(local?.value ?? '').includes(marker('local')), `the node's own mount did not serve an invoke during the partition: ${String(shown(local))}`);
  await nodeOnline(o, options, nodeId);
  await invokeThroughWorld(o, nodeId, 'where', { harness: marker('after') });
  for (const when of ['before', 'local', 'after']) {
    const jobs = await jobsWith(o, nodeId, 'where', marker(when));
    expect(jobs.length === 1 && jobs[0]?.state === 'ok', `the ${when} invocation ran ${jobs.length} time(s) on ${nodeId}: ${JSON.stringify(jobs)}`);
  }
  expect((await jobsWith(o, nodeId, 'where', marker('refused'))).length === 0, 'the refused invoke ran after all');
  return `${nodeId}'s link down: offline event after ${seconds(detectionMs)} (${timingText(o)}: missed pongs, before the lease could lapse); invoke through WorldFS EHOSTUNREACH in ${refused?.ms} ms; its own mount served an invoke; link up: online event after ${seconds(recoveryMs)}; each invocation ran once, the refused one never`;
};

/** The link down and up `count` times: the catalog ends consistent, the watcher's history has no gap or duplicate, no tunnel leaked, RSS stable. */
export const flap: Check = async (fleet, options) => {
  const o = own(fleet);
  const nodeId = partitioned(options, o);
  const { count, downMs, upMs } = options.flap;
  const rssBefore = await o.rssKiB(nodeId);
  const from = o.watcher.headSeq;
  for (let i = 0; i < count; i++) {
    await o.link(nodeId, 'down');
    await sleep(downMs);
    await o.link(nodeId, 'up');
    await sleep(upMs);
  }
  const doc = await nodeOnline(o, options, nodeId);
  await tunnelsSettle(o, options);
  // The node's own catalog, the server's and the WorldFS mount's agree.
  const onNode = (await readJson<Array<{ service_id: string }>>(join(o.nodeMount(nodeId), 'SERVICES.json')))
    .map((s) => s.service_id)
    .filter((id) => id !== 'fs')
    .sort();
  const server = doc.services
    .map((s) => s.service_id)
    .filter((id) => id !== 'fs')
    .sort();
  expect(JSON.stringify(onNode) === JSON.stringify(server), `the server's catalog of ${nodeId} (${server.join(',')}) is not the node's (${onNode.join(',')})`);
  const world = await waitFor(
    async () => {
      const listed = value((await probe([{ op: 'ls', path: join(o.worldNode(nodeId), 'services') }]))[0], 'ls services/ in WorldFS') as string[];
      return JSON.stringify(listed.filter((n) => n !== 'SERVICES.json' && n !== 'fs')) === JSON.stringify(onNode) ? listed : undefined;
    },
    { what: `WorldFS services/ of ${nodeId} equal to the node's`, timeoutMs: options.timeoutMs, intervalMs: 200 },
  );
  const flapped = o.watcher.events.filter((e) => e.seq > from);
  const strangers = flapped.filter((e) => e.node_id !== nodeId);
  expect(strangers.length === 0, `events of other nodes during the flaps: ${strangers.map((e) => `${e.seq} ${e.node_id} ${e.kind}`).join('; ')}`);
  const last = flapped.at(-1);
  expect(last === undefined || last.kind !== 'offline', `the last event of ${nodeId} says offline (seq ${last?.seq}), but the catalog says online`);
  const reference = await allEvents(o.url, o.adminToken);
  const problems = [...checkReference(reference), ...validateWatcher([o.watcher.session], reference).problems];
  expect(problems.length === 0, `the watcher's history: ${problems.slice(0, 5).join('; ')}`);
  const rssAfter = await o.rssKiB(nodeId);
  // Stable: a leak per reconnect would show; what a busy Node process grows by anyway would not.
  expect(rssAfter < rssBefore * 1.5 + 16 * 1024, `${nodeId}'s RSS grew from ${rssBefore} KiB to ${rssAfter} KiB`);
  const kinds = (kind: string): number => flapped.filter((e) => e.kind === kind).length;
  return `${count} flaps of ${nodeId}'s link (${downMs} ms down, ${upMs} ms up): ${kinds('offline')} offline / ${kinds('online')} online event(s); catalog, node and WorldFS agree (${world.length - 1} services); watcher history of ${reference.length} events without gap or duplicate; ${o.nodeIds.length} node tunnels; RSS ${Math.round(rssBefore / 1024)} → ${Math.round(rssAfter / 1024)} MiB`;
};

/** A 2 s invoke through WorldFS, the link cut 0.5 s in: the writer gets an error promptly; the driver finishes on the node once. */
export const midInvoke: Check = async (fleet, options) => {
  const o = own(fleet);
  const nodeId = partitioned(options, o);
  const marker = `${options.runId}-mid-invoke`;
  const metrics = join(o.nodeMount(nodeId), 'services', 'slow', 'metrics.json');
  const before = await readJson<{ invokes_total: number; last_started_ms: number | null }>(metrics);
  const writer = probe(
    [{ op: 'write', path: join(o.worldNode(nodeId), 'services', 'slow', 'control', 'invoke.json'), data: JSON.stringify({ harness: marker }) }],
    options.timeoutMs * 2,
  );
  // 0.5 s after the driver started on the node (its own metrics say when).
  const started = await waitFor(
    async () => {
      const now = await readJson<{ invokes_total: number; last_started_ms: number | null }>(metrics);
      return now.invokes_total > before.invokes_total ? (now.last_started_ms ?? Date.now()) : undefined;
    },
    { what: `the slow driver started on ${nodeId}`, timeoutMs: options.timeoutMs, intervalMs: 20 },
  );
  await sleep(Math.max(0, started + 500 - Date.now()));
  const cutAt = Date.now();
  await o.link(nodeId, 'down');
  let healed = false;
  try {
    const [written] = await writer;
    const errorAfterMs = Date.now() - cutAt;
    expect(written?.errno === 'EHOSTUNREACH', `the writer's close() got ${String(shown(written))}, not EHOSTUNREACH`);
    // Prompt: the missed pongs (2-3 ping intervals) and scheduling, not a TCP timeout.
    const bound = 3 * o.timing.pingIntervalMs + 5000;
    expect(errorAfterMs < bound, `the writer's error came ${errorAfterMs} ms after the cut (bound ${bound} ms)`);
    // The driver goes on: its outcome lands on the node while the link is still down.
    const jobs = await waitFor(
      async () => {
        const found = await jobsWith(o, nodeId, 'slow', marker);
        return found.length > 0 && found.every((j) => j.state !== 'running') ? found : undefined;
      },
      { what: `the slow invocation finished on ${nodeId}`, timeoutMs: options.timeoutMs, intervalMs: 100 },
    );
    await o.link(nodeId, 'up');
    healed = true;
    await nodeOnline(o, options, nodeId);
    const after = await readJson<{ invokes_total: number }>(metrics);
    const again = await jobsWith(o, nodeId, 'slow', marker);
    expect(jobs.length === 1 && again.length === 1 && jobs[0]?.state === 'ok', `the cut invocation ran ${again.length} time(s): ${JSON.stringify(again)}`);
    expect(after.invokes_total === before.invokes_total + 1, `slow ran ${after.invokes_total - before.invokes_total} time(s) on ${nodeId}, not once`);
    const result = JSON.stringify(await readJson(join(o.nodeMount(nodeId), 'services', 'slow', 'result.json')));
    expect(result.includes(marker), `the node's result.json does not hold the cut invocation: ${result.slice(0, 300)}`);
    return `link of ${nodeId} cut 0.5 s into a 2 s invoke through WorldFS: the writer got EHOSTUNREACH ${seconds(errorAfterMs)} after the cut; the driver finished once on the node (jobs/${jobs[0]?.id}, state ok, in result.json); nothing ran again after the link came back`;
  } finally {
    if (!healed) await o.link(nodeId, 'up');
  }
};

/** Not in the default set: partition detection and recovery timed `rounds` times (bench/partition.mjs). */
export const partitionTiming: Check = async (fleet, options) => {
  const o = own(fleet);
  const nodeId = partitioned(options, o);
  const detection: number[] = [];
  const recovery: number[] = [];
  for (let round = 0; round < options.timing.rounds; round++) {
    const { detectionMs, recoveryMs } = await cutAndHeal(o, options, nodeId);
    detection.push(detectionMs);
    recovery.push(recoveryMs);
    await tunnelsSettle(o, options);
  }
  if (options.timing.resultFile) {
    await writeFile(
      options.timing.resultFile,
      JSON.stringify({
        node_id: nodeId,
        ping_interval_ms: o.timing.pingIntervalMs,
        offline_grace_ms: o.timing.offlineGraceMs,
        lease_ttl_ms: o.timing.leaseTtlMs,
        detection_ms: detection,
        recovery_ms: recovery,
      }) + '\n',
    );
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
  return `${options.timing.rounds} rounds on ${nodeId} (${timingText(o)}): link down → offline event median ${seconds(median(detection))}, link up → online event median ${seconds(median(recovery))}`;
};

/** Every check by name, in the order they run. */
export const CHECKS: Record<string, Check> = { catalog, invoke, restart, partition, flap, 'mid-invoke': midInvoke, 'partition-timing': partitionTiming };
export const DEFAULT_CHECKS = ['catalog', 'invoke', 'restart', 'partition', 'flap', 'mid-invoke'];
