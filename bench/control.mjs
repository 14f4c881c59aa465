// Issues 4 and 5: one `acheron control` server (a child process) with simulated nodes over real
// WebSockets on loopback. The nodes live in bench/load-nodes.mjs, the watchers in
// bench/watchers.mjs, the fan-out baseline in bench/broadcast-server.mjs: each a process of its own.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileTokenStore } from '../dist/control/file-token-store.js';
import { readTokens, TOKENS_FILE } from '../dist/control/token-file.js';
import { loadSchemas } from '../dist/protocol/schemas.js';
import { nodeCatalog, SERVICE_DESCRIPTOR_SCHEMA, SERVICES_PER_NODE } from './descriptors.mjs';
import { ACHERON, REPO, cpuProfileArgs, cpuUsOf, ctx, forkWorker, freePort, log, memoryOf, rotate, sleep, startDaemon, waitFor } from './harness.mjs';
import { summarize } from './stats.mjs';
import { mib, rate, ratio, time, verdict, verdictMin } from './format.mjs';

const LOAD_NODES = join(REPO, 'bench', 'load-nodes.mjs');
const WATCHERS = join(REPO, 'bench', 'watchers.mjs');
const BROADCAST = join(REPO, 'bench', 'broadcast-server.mjs');
const UPSERT_SCHEMA = 'https://acheron.dev/schemas/control-protocol.schema.json#/definitions/node_service_upsert';
/** Long enough that no lease lapses during a run: the nodes here upsert but never refresh. */
const LEASE_TTL_MS = 600_000;
/** Join tokens minted one createJoin() each (timed); the rest written into the file in one go. */
const TIMED_CREATE_JOINS = 50;
/** bench/load-nodes.mjs: a failed registration is tried again, as a node reconnects. */
const RETRY_NOTE = '1 s (3 attempts at most)';

export const CONTROL_TARGET = { registrationSeconds: 10, upsertsPerSecond: 2000, rssMiB: 150 };
/** Issue 12: one server with 10,000 nodes. */
export const LARGE_TARGET = { nodes: 10_000, registrationSeconds: 60, rssMiB: 1024 };
export const FANOUT_TARGET = { broadcastShare: 0.5, p99Ms: 50, eventsPerSecond: 1000 };

function controlConfig() {
  const quick = ctx.quick;
  // The 10,000-node run takes minutes: part of a full run, skipped by --quick unless asked for.
  const large = process.env.ACHERON_BENCH_LARGE_NODES;
  return {
    nodes: 1000,
    registerConcurrency: 100,
    sustainSeconds: quick ? 3 : 10,
    inflight: 64,
    largeNodes: large === undefined ? (quick ? 0 : LARGE_TARGET.nodes) : Number(large),
  };
}

function fanoutConfig() {
  const quick = ctx.quick;
  return {
    nodes: 100,
    watchers: 100,
    rounds: quick ? 1 : 2,
    seconds: quick ? 2 : 4,
    inflight: 32,
    pacedRate: FANOUT_TARGET.eventsPerSecond,
    lightRate: 50,
    pacedCap: 2000,
    maxBufferedBytes: 1 << 20,
  };
}

/** Checks the simulated catalog against the schemas the server validates it with. */
export async function checkCatalogShape() {
  const schemas = await loadSchemas();
  const services = nodeCatalog('bench-node-check');
  for (const service of services) {
    const [problem] = schemas.problems(SERVICE_DESCRIPTOR_SCHEMA, service, service.service_id);
    if (problem) throw new Error(`simulated descriptor invalid: ${problem.message}`);
  }
  const [problem] = schemas.problems(UPSERT_SCHEMA, { node_id: 'bench-node-check', services }, 'upsert');
  if (problem) throw new Error(`simulated upsert invalid: ${problem.message}`);
  return { services: services.length, catalogBytes: Buffer.byteLength(JSON.stringify(services)) };
}

/**
 * Mints `count` single-use join tokens in a fresh data dir before the server starts: the first
 * TIMED_CREATE_JOINS through createJoin() (a locked read-modify-write of auth_tokens.json with two
 * fsyncs each, timed), the rest, entries of the same shape, added to the file in one write (no server
 * has the file open yet).
 */
export async function mintJoinTokens(dataDir, count) {
  const store = await FileTokenStore.open(dataDir);
  const tokens = [];
  const started = performance.now();
  for (let i = 0; i < Math.min(count, TIMED_CREATE_JOINS); i++) tokens.push((await store.createJoin(3_600_000)).token);
  const createJoinMs = (performance.now() - started) / tokens.length;
  const now = Date.now();
  const rest = Array.from({ length: count - tokens.length }, () => ({
    id: `join-${randomBytes(4).toString('hex')}`,
    token: `ach_join_${randomBytes(24).toString('base64url')}`,
    created_ms: now,
    expires_ms: now + 3_600_000,
    used_ms: null,
  }));
  await store.close();
  const path = join(dataDir, TOKENS_FILE);
  const data = await readTokens(path);
  data.join.push(...rest);
  await writeFile(`${path}.bench`, JSON.stringify(data), { mode: 0o600 });
  await rename(`${path}.bench`, path);
  tokens.push(...rest.map((e) => e.token));
  return { tokens, adminToken: data.admin[0].token, createJoinMs };
}

/** `acheron control` as a child process; `extra`: more options (a store, a server id), `ports` to start one again where it was. */
export async function startControl(name, dataDir, extra = [], ports = undefined) {
  const dir = join(ctx.work, name);
  await mkdir(dir, { recursive: true });
  ports ??= { ws: await freePort(), http: await freePort() };
  const daemon = startDaemon(
    process.execPath,
    [
      ...cpuProfileArgs(),
      ACHERON,
      'control',
      '--data-dir',
      dataDir,
      '--listen',
      `127.0.0.1:${ports.ws}`,
      '--http-listen',
      `127.0.0.1:${ports.http}`,
      '--lease-ttl-ms',
      String(LEASE_TTL_MS),
      '--log-level',
      'warn',
      '--log-file',
      join(dir, 'control.log'),
      ...extra,
    ],
    { name: `acheron control (${name})` },
  );
  const httpUrl = `http://127.0.0.1:${ports.http}`;
  await waitFor(
    `${daemon.name} on ${httpUrl}`,
    async () =>
      daemon.gone ||
      (await fetch(`${httpUrl}/livez`).then(
        (r) => r.ok,
        () => false,
      )),
    60_000,
  );
  if (daemon.gone) throw new Error(`${daemon.name} exited before listening: ${daemon.stderr.trim().slice(-600)}`);
  const metrics = async () => (await fetch(`${httpUrl}/metrics.json`)).json();
  return Object.assign(daemon, { url: `ws://127.0.0.1:${ports.ws}`, httpUrl, metrics, logFile: join(dir, 'control.log'), ports });
}

/** Warnings and errors the server logged (pino levels 40+), counted by message, for the results. */
export async function loggedProblems(logFile) {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const counts = {};
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const entry = JSON.parse(line);
      if (entry.level < 40) continue;
      const key = `${entry.level >= 50 ? 'error' : 'warn'}: ${String(entry.msg).slice(0, 100)}${entry.err?.message ? ` (${String(entry.err.message).slice(0, 160)})` : ''}`;
      counts[key] = (counts[key] ?? 0) + 1;
    } catch {
      counts['unparsed log line'] = (counts['unparsed log line'] ?? 0) + 1;
    }
  }
  return counts;
}

/** Where the server's memory is, from its /metrics.json (prom-client's process and Node.js metrics), in KiB. */
function heapOf(json) {
  const kib = (name) => metric(json, name) / 1024;
  return {
    heapUsedKiB: kib('nodejs_heap_size_used_bytes'),
    heapTotalKiB: kib('nodejs_heap_size_total_bytes'),
    externalKiB: kib('nodejs_external_memory_bytes'),
  };
}

/** `heap used 61.2 MiB of 80.0 MiB, external 24.1 MiB`. */
const heapText = (heap) =>
  `V8 heap used ${mib(heap.heapUsedKiB)} of ${mib(heap.heapTotalKiB)}, external (Buffers: descriptors, socket data) ${mib(heap.externalKiB)}`;

/** A metric's value from /metrics.json, optionally by one label. */
export function metric(json, name, labels = {}) {
  const values = json[name] ?? [];
  const match = values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return match?.value ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Issue 4: registration, sustained upserts, RSS

export async function benchControl() {
  const cfg = controlConfig();
  const shape = await checkCatalogShape();
  const dataDir = join(ctx.work, 'control', 'data');
  log(`control: minting ${cfg.nodes} join tokens`);
  const minted = await mintJoinTokens(dataDir, cfg.nodes);
  const server = await startControl('control', dataDir);
  const baseline = await memoryOf(server.pid);
  const load = forkWorker(LOAD_NODES, 'load generator');
  log(`control: registering ${cfg.nodes} nodes (${cfg.registerConcurrency} at a time)`);
  const cpu0 = [await cpuUsOf(server.pid), await cpuUsOf(load.pid)];
  const registration = await load.call('register', { url: server.url, tokens: minted.tokens, prefix: 'bench-node', concurrency: cfg.registerConcurrency });
  const cpu1 = [await cpuUsOf(server.pid), await cpuUsOf(load.pid)];
  const afterRegistration = await memoryOf(server.pid);
  const registeredMetrics = await server.metrics();
  log(
    `control: registered ${registration.registered}/${registration.attempted} in ${registration.seconds.toFixed(1)} s; sustained upserts for ${cfg.sustainSeconds} s`,
  );
  const sustained = await load.call('upserts', { seconds: cfg.sustainSeconds, inflight: cfg.inflight });
  const cpu2 = [await cpuUsOf(server.pid), await cpuUsOf(load.pid)];
  const afterSustain = await memoryOf(server.pid);
  const endMetrics = await server.metrics();
  await load.call('close');
  await load.stop();
  await server.stop();
  const serverLog = await loggedProblems(server.logFile);
  const { latencies, acks: _acks, ...sustainedRest } = sustained;
  const large = cfg.largeNodes > 0 ? await benchLarge(cfg) : null;
  return {
    config: cfg,
    shape,
    createJoinMs: minted.createJoinMs,
    large,
    registration: summarizeRegistration(registration),
    catalog: {
      nodesOnline: metric(registeredMetrics, 'acheron_nodes', { state: 'online' }),
      services: metric(registeredMetrics, 'acheron_services', { state: 'online' }),
    },
    sustained: { ...sustainedRest, latency: summarize(latencies) },
    upsertsChanged: metric(endMetrics, 'acheron_upserts_total', { changed: 'true' }),
    eventSeq: metric(endMetrics, 'acheron_event_seq'),
    memory: { baseline, afterRegistration, afterSustain },
    heap: { afterRegistration: heapOf(registeredMetrics), afterSustain: heapOf(endMetrics) },
    serverLog,
    // CPU (all threads) per registered node and per acknowledged upsert (the drain after the window included).
    cpu: {
      registration: {
        serverUsPerNode: (cpu1[0] - cpu0[0]) / registration.registered,
        loadUsPerNode: (cpu1[1] - cpu0[1]) / registration.registered,
        serverSeconds: (cpu1[0] - cpu0[0]) / 1e6,
      },
      sustained: { serverUsPerUpsert: (cpu2[0] - cpu1[0]) / sustained.acked, loadUsPerUpsert: (cpu2[1] - cpu1[1]) / sustained.acked },
    },
  };
}

/** Issue 12: a fresh server registers `cfg.largeNodes` nodes (connect, join, first upsert of 20 services). */
async function benchLarge(cfg) {
  const dataDir = join(ctx.work, 'control-large', 'data');
  log(`control: minting ${cfg.largeNodes} join tokens for the large run`);
  const minted = await mintJoinTokens(dataDir, cfg.largeNodes);
  const server = await startControl('control-large', dataDir);
  const baseline = await memoryOf(server.pid);
  const load = forkWorker(LOAD_NODES, 'load generator (large)');
  log(`control: registering ${cfg.largeNodes} nodes (${cfg.registerConcurrency} at a time)`);
  const cpu0 = await cpuUsOf(server.pid);
  const registration = await load.call('register', { url: server.url, tokens: minted.tokens, prefix: 'large-node', concurrency: cfg.registerConcurrency });
  const serverSeconds = ((await cpuUsOf(server.pid)) - cpu0) / 1e6;
  const afterRegistration = await memoryOf(server.pid);
  const metrics = await server.metrics();
  log(`control: registered ${registration.registered}/${registration.attempted} in ${registration.seconds.toFixed(1)} s`);
  await load.call('close');
  await load.stop();
  await server.stop();
  return {
    nodes: cfg.largeNodes,
    registration: summarizeRegistration(registration),
    serverSeconds,
    memory: { baseline, afterRegistration },
    heap: heapOf(metrics),
    catalog: { nodesOnline: metric(metrics, 'acheron_nodes', { state: 'online' }), services: metric(metrics, 'acheron_services', { state: 'online' }) },
    serverLog: await loggedProblems(server.logFile),
  };
}

function largeRows(result) {
  const large = result.large;
  if (!large) return [];
  const reg = large.registration;
  const regOk = reg.registered === reg.attempted && reg.seconds < LARGE_TARGET.registrationSeconds;
  const rssMiB = large.memory.afterRegistration.rssKiB / 1024;
  return [
    {
      label: `control server: registration of ${reg.attempted} nodes × ${SERVICES_PER_NODE} services, ${result.config.registerConcurrency} at a time`,
      measured: `${reg.seconds.toFixed(1)} s (${reg.registered} registered)`,
      target: `< ${LARGE_TARGET.registrationSeconds} s`,
      result: regOk ? 'PASS' : reg.registered !== reg.attempted ? 'FAIL (not all registered)' : verdict(false, reg.seconds, LARGE_TARGET.registrationSeconds),
    },
    {
      label: `control server: RSS with ${reg.registered} nodes × ${SERVICES_PER_NODE} services (VmRSS after registration)`,
      measured: mib(large.memory.afterRegistration.rssKiB),
      target: `< ${LARGE_TARGET.rssMiB} MiB`,
      result: rssMiB < LARGE_TARGET.rssMiB ? 'PASS' : verdict(false, rssMiB, LARGE_TARGET.rssMiB),
    },
  ];
}

export function summarizeRegistration(registration) {
  const pick = (key) => summarize(registration.perNode.map((n) => n[key]));
  const done = registration.perNode.map((n) => n.doneUs).sort((a, b) => a - b);
  // When half and nine tenths of the nodes had their first upsert acknowledged.
  const reached = (share) => (done.length === 0 ? NaN : done[Math.min(done.length - 1, Math.ceil(share * registration.attempted) - 1)] / 1e6);
  return {
    ...registration,
    perNode: undefined,
    latency: { total: pick('totalUs'), connect: pick('connectUs'), join: pick('joinUs'), upsert: pick('upsertUs') },
    reachedSeconds: { half: reached(0.5), ninety: reached(0.9) },
  };
}

export function summaryControl(result) {
  const reg = result.registration;
  const regOk = reg.registered === reg.attempted && reg.seconds < CONTROL_TARGET.registrationSeconds;
  const ups = result.sustained.perSecond;
  const rssMiB = result.memory.afterSustain.rssKiB / 1024;
  return [
    {
      label: `control server: registration of ${reg.attempted} nodes × ${SERVICES_PER_NODE} services (connect, join, first upsert), ${result.config.registerConcurrency} at a time`,
      measured: `${reg.seconds.toFixed(1)} s (${reg.registered} registered)`,
      target: `< ${CONTROL_TARGET.registrationSeconds} s`,
      result: regOk ? 'PASS' : reg.registered !== reg.attempted ? 'FAIL (not all registered)' : verdict(false, reg.seconds, CONTROL_TARGET.registrationSeconds),
    },
    {
      label: `control server: sustained upserts/s, each a real change, ${result.config.inflight} in flight over ${reg.registered} connections`,
      measured: rate(ups),
      target: `≥ ${rate(CONTROL_TARGET.upsertsPerSecond)}`,
      result: ups >= CONTROL_TARGET.upsertsPerSecond ? 'PASS' : verdictMin(false, ups, CONTROL_TARGET.upsertsPerSecond),
    },
    {
      label: 'control server: RSS at the end (VmRSS)',
      measured: mib(result.memory.afterSustain.rssKiB),
      target: `< ${CONTROL_TARGET.rssMiB} MiB`,
      result: rssMiB < CONTROL_TARGET.rssMiB ? 'PASS' : verdict(false, rssMiB, CONTROL_TARGET.rssMiB),
    },
    ...largeRows(result),
  ];
}

export function renderControl(result, line) {
  const { config: cfg, registration: reg, sustained: s } = result;
  line(
    `${cfg.nodes} simulated nodes in one load-generator process (\`bench/load-nodes.mjs\`), one WebSocket each, ${SERVICES_PER_NODE} services per node ` +
      `(${(result.shape.catalogBytes / 1024).toFixed(1)} KiB of descriptors as JSON, checked against \`service-descriptor.schema.json\`). ` +
      `Join tokens were minted before the server started: ${TIMED_CREATE_JOINS} through \`FileTokenStore.createJoin\` (${result.createJoinMs.toFixed(1)} ms each), the rest in one \`update\`. ` +
      `Server \`--lease-ttl-ms ${LEASE_TTL_MS}\` (the simulated nodes never refresh their leases).`,
  );
  line();
  line('| phase | measured | median | p90 | p99 | target | result |');
  line('|---|---|---|---|---|---|---|');
  const regOk = reg.registered === reg.attempted && reg.seconds < CONTROL_TARGET.registrationSeconds;
  line(
    `| registration of all nodes (${cfg.registerConcurrency} at a time), until the last first upsert was acknowledged | ${reg.seconds.toFixed(1)} s, ${reg.registered}/${reg.attempted} nodes | — | — | — | < ${CONTROL_TARGET.registrationSeconds} s | ${regOk ? 'PASS' : reg.registered !== reg.attempted ? 'FAIL (not all registered)' : verdict(false, reg.seconds, CONTROL_TARGET.registrationSeconds)} |`,
  );
  line(
    `| half / nine tenths of the nodes registered after | ${reg.reachedSeconds.half.toFixed(1)} s / ${reg.reachedSeconds.ninety.toFixed(1)} s | — | — | — | — | — |`,
  );
  for (const [key, label] of [
    ['total', 'one node: connect → first upsert acknowledged (retries included)'],
    ['connect', 'one node: WebSocket upgrade (Bearer join token)'],
    ['join', 'one node: control.version + control.node_join'],
    ['upsert', `one node: first control.node_service_upsert (${SERVICES_PER_NODE} services)`],
  ]) {
    const l = reg.latency[key];
    line(`| ${label} | — | ${time(l.median)} | ${time(l.p90)} | ${time(l.p99)} | — | — |`);
  }
  const ok = s.perSecond >= CONTROL_TARGET.upsertsPerSecond;
  line(
    `| sustained upserts for ${s.seconds} s, ${s.inflight} in flight, one service's version changed each (ack latency in the columns) | ${rate(s.perSecond)} (${s.ackedInWindow} acknowledged) | ${time(s.latency.median)} | ${time(s.latency.p90)} | ${time(s.latency.p99)} | ≥ ${rate(CONTROL_TARGET.upsertsPerSecond)} | ${ok ? 'PASS' : verdictMin(false, s.perSecond, CONTROL_TARGET.upsertsPerSecond)} |`,
  );
  for (const [label, m] of [
    ['server RSS before any node', result.memory.baseline],
    ['server RSS after registration', result.memory.afterRegistration],
    ['server RSS at the end (after the sustained upserts)', result.memory.afterSustain],
  ]) {
    const target = label.includes('end');
    line(
      `| ${label} | ${mib(m.rssKiB)} (peak VmHWM ${mib(m.hwmKiB)}) | — | — | — | ${target ? `< ${CONTROL_TARGET.rssMiB} MiB` : '—'} | ${target ? (m.rssKiB / 1024 < CONTROL_TARGET.rssMiB ? 'PASS' : verdict(false, m.rssKiB / 1024, CONTROL_TARGET.rssMiB)) : '—'} |`,
    );
  }
  line();
  line(
    `CPU (all threads, from \`/proc\`): registration took ${result.cpu.registration.serverSeconds.toFixed(1)} s of server CPU, ${time(result.cpu.registration.serverUsPerNode)} per node ` +
      `(the load generator ${time(result.cpu.registration.loadUsPerNode)}); the sustained upserts ${time(result.cpu.sustained.serverUsPerUpsert)} of server CPU per upsert ` +
      `(the load generator ${time(result.cpu.sustained.loadUsPerUpsert)}).`,
  );
  line();
  if (result.heap) {
    line(
      `Memory (the server's \`/metrics.json\`): after registration ${heapText(result.heap.afterRegistration)}; at the end ${heapText(result.heap.afterSustain)}.`,
    );
    line();
  }
  const errors = (e) =>
    Object.keys(e).length === 0
      ? 'none'
      : Object.entries(e)
          .map(([k, n]) => `${n} × ${k}`)
          .join(', ');
  line(
    `Server catalog after registration (its \`/metrics.json\`): ${result.catalog.nodesOnline} nodes online, ${result.catalog.services} services. ` +
      `Registration attempts that failed and were tried again after ${RETRY_NOTE}: ${errors(reg.retries ?? {})}; nodes that failed all attempts: ${errors(reg.errors)}. Upsert errors: ${errors(s.errors)}. Changed upserts counted by the server: ${result.upsertsChanged}; event seq at the end: ${result.eventSeq}. ` +
      `Server log warnings and errors: ${errors(result.serverLog)}.`,
  );
  line();
  const large = result.large;
  if (!large) {
    line(`The ${LARGE_TARGET.nodes.toLocaleString('en')}-node run was skipped (\`--quick\`; \`ACHERON_BENCH_LARGE_NODES=${LARGE_TARGET.nodes}\` runs it).`);
    return;
  }
  const lreg = large.registration;
  line(`**${large.nodes.toLocaleString('en')} nodes** (a fresh server, the same load generator, ${cfg.registerConcurrency} at a time; no sustained phase):`);
  line();
  line('| phase | measured | median | p90 | p99 | target | result |');
  line('|---|---|---|---|---|---|---|');
  for (const row of largeRows(result)) line(`| ${row.label.replace(/^control server: /, '')} | ${row.measured} | — | — | — | ${row.target} | ${row.result} |`);
  line(
    `| one node: connect → first upsert acknowledged | — | ${time(lreg.latency.total.median)} | ${time(lreg.latency.total.p90)} | ${time(lreg.latency.total.p99)} | — | — |`,
  );
  line(`| server RSS before any node | ${mib(large.memory.baseline.rssKiB)} | — | — | — | — | — |`);
  line();
  line(
    `Server CPU for the registration: ${large.serverSeconds.toFixed(1)} s; catalog after it: ${large.catalog.nodesOnline} nodes online, ${large.catalog.services} services; peak VmHWM ${mib(large.memory.afterRegistration.hwmKiB)}${large.heap ? `; ${heapText(large.heap)}` : ''}. ` +
      `Attempts tried again: ${errors(lreg.retries ?? {})}; nodes that failed all attempts: ${errors(lreg.errors)}. Server log warnings and errors: ${errors(large.serverLog)}.`,
  );
}

// ---------------------------------------------------------------------------------------------
// Issue 5: fan-out to 100 watchers against a plain ws broadcast

/** Waits until the watchers have received everything in flight (the count stops moving). */
async function drained(watchers) {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const { received } = await watchers.call('count');
    if (received === last) return;
    last = received;
    await sleep(200);
  }
}

/** The two event shapes a watch may ask for (SPEC §6): the whole catalog, or `include: "delta"`. */
const SHAPES = ['full', 'delta'];

export async function benchFanout() {
  const cfg = fanoutConfig();
  await checkCatalogShape();
  const dataDir = join(ctx.work, 'fanout', 'data');
  const minted = await mintJoinTokens(dataDir, cfg.nodes);
  const server = await startControl('fanout', dataDir);
  const load = forkWorker(LOAD_NODES, 'load generator');
  const registration = await load.call('register', { url: server.url, tokens: minted.tokens, prefix: 'fan-node', concurrency: 50 });
  if (registration.registered !== cfg.nodes)
    throw new Error(`fan-out: registered ${registration.registered} of ${cfg.nodes} nodes: ${JSON.stringify(registration.errors)}`);
  // One group of watchers per shape; only the group being measured watches (the other has unwatched).
  const watchers = {};
  for (const shape of SHAPES) {
    watchers[shape] = forkWorker(WATCHERS, `acheron watchers (${shape})`);
    await watchers[shape].call('connect', {
      url: server.url,
      count: cfg.watchers,
      token: minted.adminToken,
      ...(shape === 'delta' ? { include: 'delta' } : {}),
    });
  }
  // Each group watches once connected: all but the first stop, so one group loads the server at a time.
  let active = SHAPES[0];
  for (const shape of SHAPES.slice(1)) await watchers[shape].call('pause');
  const activate = async (shape) => {
    if (active === shape) return;
    await watchers[active].call('pause');
    await watchers[shape].call('resume');
    active = shape;
  };
  const broadcast = forkWorker(BROADCAST, 'plain ws broadcast server');
  const { port } = await broadcast.call('listen');
  const plainWatchers = forkWorker(WATCHERS, 'plain watchers');
  await plainWatchers.call('connect', { url: `ws://127.0.0.1:${port}`, count: cfg.watchers });
  log(`fan-out: ${cfg.nodes} nodes, ${cfg.watchers} Acheron watchers per event shape, ${cfg.watchers} plain clients connected`);

  // Warm-up, and a real event frame of each shape for the baseline to send.
  const template = {};
  for (const shape of SHAPES) {
    await activate(shape);
    await load.call('upserts', { seconds: 1, inflight: cfg.inflight });
    await drained(watchers[shape]);
    template[shape] = await broadcast.call('template', { name: shape, ...(await watchers[shape].call('sample')) });
  }

  // Sender CPU per event delivered to every watcher (the drain included), from /proc.
  const acheron = (shape, rateArg) => async () => {
    await activate(shape);
    const group = watchers[shape];
    await group.call('start');
    const cpu = await cpuUsOf(server.pid);
    const sent = await load.call('upserts', {
      seconds: cfg.seconds,
      inflight: rateArg ? cfg.pacedCap : cfg.inflight,
      rate: rateArg,
      recordAcks: Boolean(rateArg),
    });
    await drained(group);
    const senderUs = (await cpuUsOf(server.pid)) - cpu;
    const got = await group.call('stop', { fromUs: sent.startUs, toUs: sent.endUs });
    return [
      {
        ...summarizeSender(sent),
        ...got,
        eventsPerSecond: got.inWindow / cfg.watchers / cfg.seconds,
        senderUsPerEvent: senderUs / (got.received / cfg.watchers),
        ackToLast: rateArg ? ackToLast(sent.acks, got.events, cfg.watchers) : null,
        events: undefined,
      },
    ];
  };
  const plain = (shape, rateArg) => async () => {
    await plainWatchers.call('start');
    const cpu = await cpuUsOf(broadcast.pid);
    const sent = await broadcast.call('broadcast', { name: shape, seconds: cfg.seconds, rate: rateArg, maxBufferedBytes: cfg.maxBufferedBytes });
    await drained(plainWatchers);
    const senderUs = (await cpuUsOf(broadcast.pid)) - cpu;
    const got = await plainWatchers.call('stop', { fromUs: sent.startUs, toUs: sent.endUs });
    return [
      {
        sent: sent.sent,
        waits: sent.waits,
        ...got,
        eventsPerSecond: got.inWindow / cfg.watchers / cfg.seconds,
        senderUsPerEvent: senderUs / (got.received / cfg.watchers),
        events: undefined,
      },
    ];
  };
  const runVariants = async (rateArg) => {
    const variants = SHAPES.flatMap((shape) => [
      { key: shape, run: acheron(shape, rateArg) },
      { key: `plain-${shape}`, run: plain(shape, rateArg) },
    ]);
    const out = Object.fromEntries(variants.map((v) => [v.key, []]));
    for (let round = 0; round < cfg.rounds; round++) {
      for (const variant of rotate(variants, round)) {
        out[variant.key].push(...(await variant.run()));
        log(`fan-out: ${variant.key} round ${round + 1}: ${Math.round(out[variant.key].at(-1).perSecond)} deliveries/s`);
      }
    }
    return out;
  };
  log(`fan-out: as fast as it goes, ${cfg.rounds} rounds x ${cfg.seconds} s per variant`);
  const max = await runVariants(null);
  log(`fan-out: paced at ${cfg.pacedRate} events/s, ${cfg.rounds} rounds x ${cfg.seconds} s`);
  const paced = await runVariants(cfg.pacedRate);
  // A rate the server keeps up with: the pipeline's own latency, without queueing.
  log(`fan-out: paced at ${cfg.lightRate} events/s, ${cfg.rounds} rounds x ${cfg.seconds} s`);
  const light = await runVariants(cfg.lightRate);
  const serverMetrics = await server.metrics();
  const memory = await memoryOf(server.pid);
  for (const worker of [plainWatchers, ...Object.values(watchers), broadcast, load]) {
    await worker.call('close').catch(() => undefined);
    await worker.stop();
  }
  await server.stop();
  return {
    config: cfg,
    template,
    max,
    paced,
    light,
    memory,
    serverLog: await loggedProblems(server.logFile),
    server: {
      fanoutSent: metric(serverMetrics, 'acheron_watch_fanout_sent_total'),
      fanoutDropped: metric(serverMetrics, 'acheron_watch_fanout_dropped_total'),
      watchesEnded: metric(serverMetrics, 'acheron_watch_ended_total', { reason: 'resync_required' }),
      events: metric(serverMetrics, 'acheron_event_seq'),
    },
  };
}

function summarizeSender(sent) {
  return { sent: sent.sent, acked: sent.acked, skipped: sent.skipped, errors: sent.errors, ackLatency: summarize(sent.latencies) };
}

/** Per event: from the upsert's ack (at the node) until its last watcher had it; can be negative. */
function ackToLast(acks, events, watchers) {
  const ackBySent = new Map(acks);
  const deltas = [];
  let complete = 0;
  for (const [sent, last, copies] of events) {
    if (copies === watchers) complete++;
    const ack = ackBySent.get(sent);
    if (ack !== undefined) deltas.push(last - ack);
  }
  return { ...summarize(deltas), complete, events: events.length };
}

function combine(runs) {
  const sum = (key) => runs.reduce((total, r) => total + r[key], 0);
  const lat = (pick) => {
    // Percentiles do not add up across runs: the table shows the worst run's.
    const worst = runs.reduce((a, b) => (pick(b).p99 > pick(a).p99 ? b : a));
    return pick(worst);
  };
  return {
    perSecond: sum('perSecond') / runs.length,
    eventsPerSecond: sum('eventsPerSecond') / runs.length,
    senderUsPerEvent: sum('senderUsPerEvent') / runs.length,
    resyncs: sum('resyncs'),
    latency: lat((r) => r.latency),
    runs,
  };
}

/** The latency target holds only if the watchers also got (95 % of) the rate it is stated at. */
function pacedVerdict(paced, cfg) {
  const p99Ms = paced.latency.p99 / 1000;
  const reasons = [];
  if (p99Ms >= FANOUT_TARGET.p99Ms) reasons.push(`p99 ${Math.round((p99Ms / FANOUT_TARGET.p99Ms - 1) * 100)} % over`);
  if (paced.eventsPerSecond < 0.95 * cfg.pacedRate) reasons.push(`${Math.round((100 * paced.eventsPerSecond) / cfg.pacedRate)} % of the rate delivered`);
  return reasons.length === 0 ? 'PASS' : `FAIL (${reasons.join('; ')})`;
}

const SHAPE_LABEL = { full: 'full events (the whole catalog)', delta: 'delta events (`include: "delta"`)' };

export function summaryFanout(result) {
  // Results of runs before the delta shape have only the full one, under other keys.
  if (!result.max.full) return [];
  const rows = [];
  for (const shape of SHAPES) {
    const a = combine(result.max[shape]);
    const p = combine(result.max[`plain-${shape}`]);
    const share = a.perSecond / p.perSecond;
    const paced = combine(result.paced[shape]);
    rows.push(
      {
        label: `watch fan-out of ${SHAPE_LABEL[shape]} to ${result.config.watchers} watchers, as fast as it goes: Acheron ÷ plain \`ws\` broadcast of the same frames, deliveries/s`,
        measured: `${ratio(share)} (${rate(a.perSecond)} vs ${rate(p.perSecond)})`,
        target: `≥ ${FANOUT_TARGET.broadcastShare.toFixed(2)}×`,
        result: share >= FANOUT_TARGET.broadcastShare ? 'PASS' : verdictMin(false, share, FANOUT_TARGET.broadcastShare),
      },
      {
        // The label names what is measured, never a measured value: `--only` finds the row again by it.
        label: `watch fan-out of ${SHAPE_LABEL[shape]}: event latency p99 (upsert sent → watcher received) with upserts offered at ${rate(result.config.pacedRate)}`,
        measured: `${time(paced.latency.p99)} (median ${time(paced.latency.median)}; delivered ${rate(paced.eventsPerSecond)} per watcher)`,
        target: shape === 'delta' ? `< ${FANOUT_TARGET.p99Ms} ms at ${rate(result.config.pacedRate)}` : '— (for comparison)',
        result: shape === 'delta' ? pacedVerdict(paced, result.config) : '—',
      },
    );
  }
  return rows;
}

export function renderFanout(result, line) {
  const { config: cfg } = result;
  if (!result.max.full) {
    line('Measured before delta events: run `node bench/run.mjs --only fanout`.');
    return;
  }
  line(
    `${cfg.nodes} nodes (one load-generator process) upsert; ${cfg.watchers} admin watchers (\`control.node_service_watch\`, \`replay_limit: 0\`) in another process receive, ` +
      `one group per event shape: full events (the node's whole catalog, the earlier protocol's shape) and delta events (\`include: "delta"\`); only the group being measured watches, the other has unwatched. ` +
      `Baseline: a plain \`ws\` WebSocketServer (\`bench/broadcast-server.mjs\`, its own process) broadcasting a real event frame of this run of the same shape ` +
      `(full ${(result.template.full.bytes / 1024).toFixed(1)} KiB, delta ${(result.template.delta.bytes / 1024).toFixed(1)} KiB) to ${cfg.watchers} clients in a third process (the same receiving code). Each variant ${cfg.rounds} round(s) of ${cfg.seconds} s, interleaved. ` +
      `Latency is from the send of the upsert (or of the broadcast frame) to the receipt, on CLOCK_MONOTONIC, which all the processes share.`,
  );
  line();
  line(
    '| load | shape | sender | events/s delivered | deliveries/s | ÷ plain | sender CPU per event | delivery latency median | p90 | p99 | resyncs | target | result |',
  );
  line('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const loads = [
    ['max', `as fast as it goes (${cfg.inflight} upserts in flight; the baseline sends while every client has < ${mib(cfg.maxBufferedBytes / 1024)} unsent)`],
    ['paced', `paced at ${rate(cfg.pacedRate)}`],
    ['light', `paced at ${rate(cfg.lightRate)} (for reference)`],
  ];
  for (const [key, label] of loads) {
    for (const shape of SHAPES) {
      const a = combine(result[key][shape]);
      const p = combine(result[key][`plain-${shape}`]);
      const share = a.perSecond / p.perSecond;
      let target = '—';
      let verdictText = '—';
      if (key === 'max') {
        target = `≥ ${FANOUT_TARGET.broadcastShare.toFixed(2)}×`;
        verdictText = share >= FANOUT_TARGET.broadcastShare ? 'PASS' : verdictMin(false, share, FANOUT_TARGET.broadcastShare);
      } else if (key === 'paced' && shape === 'delta') {
        target = `p99 < ${FANOUT_TARGET.p99Ms} ms at ${rate(cfg.pacedRate)}`;
        verdictText = pacedVerdict(a, cfg);
      }
      line(
        `| ${label} | ${shape} | Acheron | ${rate(a.eventsPerSecond)} | ${rate(a.perSecond)} | ${ratio(share)} | ${time(a.senderUsPerEvent)} | ${time(a.latency.median)} | ${time(a.latency.p90)} | ${time(a.latency.p99)} | ${a.resyncs} | ${target} | ${verdictText} |`,
      );
      line(
        `| ${label} | ${shape} | plain \`ws\` | ${rate(p.eventsPerSecond)} | ${rate(p.perSecond)} | 1 | ${time(p.senderUsPerEvent)} | ${time(p.latency.median)} | ${time(p.latency.p90)} | ${time(p.latency.p99)} | — | — | — |`,
      );
    }
  }
  line();
  line(
    "Deliveries/s count the frames received within the sending window, events/s delivered are that divided by the number of watchers; latencies cover every delivery of an event sent within it (the worst round's percentiles when there are several). " +
      '"Resyncs": watches the server ended with `resync_required` because a watcher had more than 8 MiB unsent (the watcher then watched again). ' +
      "Sender CPU per event: the control server's (or the broadcaster's) CPU over the phase, all threads, divided by the events every watcher received; the server's includes taking the upsert.",
  );
  line();
  for (const [key, label] of loads) {
    for (const shape of SHAPES) {
      const r = result[key][shape][0];
      let text =
        `- Acheron, ${shape} events, ${label.replace(/ \(.*\)$/, '')}, first round: upsert ack latency (send → ack at the node) median ${time(r.ackLatency.median)}, p99 ${time(r.ackLatency.p99)}; ` +
        `${r.sent} upserts sent${r.skipped ? `, ${r.skipped} skipped (every node had an upsert in flight)` : ''}.`;
      if (r.ackToLast) {
        text +=
          ` From the ack until the last of the ${cfg.watchers} watchers had the event: median ${time(r.ackToLast.median)}, p99 ${time(r.ackToLast.p99)} ` +
          `(negative: the watchers had it before the node had its ack; ${r.ackToLast.complete} of ${r.ackToLast.events} events reached every watcher).`;
      }
      line(text);
    }
  }
  const logged = Object.entries(result.serverLog);
  line(
    `- Server counters at the end: ${result.server.fanoutSent} deliveries sent, ${result.server.fanoutDropped} refused (slow watcher), ${result.server.watchesEnded} watches ended; RSS ${mib(result.memory.rssKiB)}. ` +
      `Server log warnings and errors: ${logged.length === 0 ? 'none' : logged.map(([k, n]) => `${n} × ${k}`).join(', ')}.`,
  );
}
