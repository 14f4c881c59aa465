// Issue 11: the control plane on etcd against the embedded file store, same run, same load: one
// server on files, then 1, 2 and 3 servers on a 3-member etcd (loopback, one prefix each). Per
// setup: registration of 1000 simulated nodes × 20 services spread over the servers
// (bench/load-nodes.mjs), sustained upserts (each a real change) through all of them, and event
// latency at 200 events/s to a watcher on the last server (bench/watchers.mjs). Then failover with
// two servers: the real node sessions (NodeControlSession) and WorldFS catalog (WorldCatalog) of
// dist/, given both URLs, on the server that is killed (kill -9): time until each node's tunnel is
// up on the other server and the WorldFS watch has resumed there.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { NodeControlSession } from '../dist/node/control-session.js';
import { loadSchemas } from '../dist/protocol/schemas.js';
import { WorldCatalog } from '../dist/world/world-catalog.js';
import { digestHex } from '../dist/control/token-store.js';
import { nodeCatalog, SERVICES_PER_NODE } from './descriptors.mjs';
import { REPO, cpuUsOf, ctx, forkWorker, freePort, log, sleep, startDaemon, waitFor } from './harness.mjs';
import { checkCatalogShape, loggedProblems, metric, mintJoinTokens, startControl, summarizeRegistration } from './control.mjs';
import { summarize } from './stats.mjs';
import { rate, time, verdict, verdictMin } from './format.mjs';

const LOAD_NODES = join(REPO, 'bench', 'load-nodes.mjs');
const WATCHERS = join(REPO, 'bench', 'watchers.mjs');
export const HA_TARGET = { registrationSeconds: 15, upsertsPerSecond: 1500, latencyP99Ms: 100, eventsPerSecond: 200, failoverMedianMs: 3000 };

function haConfig() {
  const quick = ctx.quick;
  return {
    nodes: 1000,
    registerConcurrency: 100,
    sustainSeconds: quick ? 3 : 8,
    inflight: 64,
    latencySeconds: quick ? 3 : 6,
    setups: [
      { store: 'file', servers: 1 },
      { store: 'etcd', servers: 1 },
      { store: 'etcd', servers: 2 },
      { store: 'etcd', servers: 3 },
    ],
    failoverNodes: quick ? 10 : 20,
    failoverRounds: quick ? 2 : 4,
  };
}

/** Three etcd members on loopback (Debian etcd-server), each a daemon of the harness. */
async function startEtcdCluster() {
  const dir = join(ctx.work, 'etcd');
  const ports = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const cluster = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const endpoints = ports.map((p) => `http://127.0.0.1:${p.client}`);
  // One token for the whole cluster: a token per member gives "cluster ID mismatch" and no quorum.
  const token = `bench-${randomBytes(3).toString('hex')}`;
  const members = ports.map((p, i) =>
    startDaemon(
      'etcd',
      [
        '--name',
        `m${i + 1}`,
        '--data-dir',
        join(dir, `m${i + 1}`),
        '--listen-client-urls',
        endpoints[i],
        '--advertise-client-urls',
        endpoints[i],
        '--listen-peer-urls',
        `http://127.0.0.1:${p.peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${p.peer}`,
        '--initial-cluster',
        cluster,
        '--initial-cluster-token',
        token,
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
      ],
      { name: `etcd m${i + 1}` },
    ),
  );
  await waitFor(
    'etcd healthy',
    async () =>
      (
        await Promise.all(
          endpoints.map((e) =>
            fetch(`${e}/health`).then(
              async (r) => (await r.json()).health === 'true',
              () => false,
            ),
          ),
        )
      ).every(Boolean),
    60_000,
  );
  return { endpoints, memberPids: members.map((m) => m.pid) };
}

/**
 * An admin token and `count` join tokens written straight into a fresh prefix, as
 * EtcdTokenStore keeps them (`tokens/<sha256>`, `token-ids/<id>`): minting them one `acheron
 * token join` at a time would measure process start-ups, not the server.
 */
async function mintEtcdTokens(endpoints, prefix, count) {
  const client = new Etcd3({ hosts: endpoints });
  try {
    const now = Date.now();
    const entries = [{ id: 'admin', token: `ach_admin_${randomBytes(24).toString('base64url')}`, role: 'admin' }];
    for (let i = 0; i < count; i++)
      entries.push({
        id: `join-${randomBytes(4).toString('hex')}`,
        token: `ach_join_${randomBytes(24).toString('base64url')}`,
        role: 'join',
        expires_ms: now + 3_600_000,
        used_ms: null,
      });
    for (let i = 0; i < entries.length; i += 50) {
      await Promise.all(
        entries.slice(i, i + 50).flatMap(({ token, ...entry }) => [
          client
            .put(`${prefix}tokens/${digestHex(token)}`)
            .value(JSON.stringify({ ...entry, created_ms: now, op_id: 'bench' }))
            .exec(),
          client
            .put(`${prefix}token-ids/${entry.id}`)
            .value(JSON.stringify({ token_sha256: digestHex(token), op_id: 'bench' }))
            .exec(),
        ]),
      );
    }
    return { adminToken: entries[0].token, tokens: entries.slice(1).map((e) => e.token) };
  } finally {
    client.close();
  }
}

/** The servers of one setup: on files (one), or on etcd under a prefix of their own. */
async function startSetup(setup, endpoints, count) {
  const name = `ha-${setup.store}-${setup.servers}`;
  if (setup.store === 'file') {
    const dataDir = join(ctx.work, name, 'data');
    const minted = await mintJoinTokens(dataDir, count);
    return { servers: [await startControl(name, dataDir)], store: undefined, prefix: undefined, ...minted };
  }
  const prefix = `/bench-${setup.servers}-${randomBytes(3).toString('hex')}/`;
  const minted = await mintEtcdTokens(endpoints, prefix, count);
  const store = ['--store', 'etcd', '--etcd-endpoints', endpoints.join(','), '--etcd-prefix', prefix];
  const servers = await Promise.all(
    Array.from({ length: setup.servers }, (_, i) =>
      startControl(`${name}-s${i + 1}`, join(ctx.work, name, `data-${i + 1}`), [...store, '--server-id', `${name}-s${i + 1}`]),
    ),
  );
  return { servers, store, prefix, ...minted };
}

/** CPU time (µs, all threads) of each group of processes so far. */
async function cpuOfGroups(groups) {
  const entries = await Promise.all(
    Object.entries(groups).map(async ([name, pids]) => [name, (await Promise.all(pids.map(cpuUsOf))).reduce((a, b) => a + b, 0)]),
  );
  return Object.fromEntries(entries);
}

async function benchSetup(setup, { endpoints, memberPids }, cfg) {
  const { servers, tokens, adminToken } = await startSetup(setup, endpoints, cfg.nodes);
  const urls = servers.map((s) => s.url);
  const load = forkWorker(LOAD_NODES, `load generator (${setup.store}, ${setup.servers})`);
  const watchers = forkWorker(WATCHERS, `watcher (${setup.store}, ${setup.servers})`);
  try {
    log(`ha: ${setup.store} × ${setup.servers}: registering ${cfg.nodes} nodes`);
    const registration = await load.call('register', { urls, tokens, prefix: 'ha-node', concurrency: cfg.registerConcurrency });
    log(`ha: ${setup.store} × ${setup.servers}: ${registration.registered} registered in ${registration.seconds.toFixed(1)} s; sustained upserts`);
    const groups = { etcd: setup.store === 'etcd' ? memberPids : [], servers: servers.map((s) => s.pid), load: [load.pid] };
    const cpuBefore = await cpuOfGroups(groups);
    const sustained = await load.call('upserts', { seconds: cfg.sustainSeconds, inflight: cfg.inflight });
    const cpuAfter = await cpuOfGroups(groups);
    const cpu = Object.fromEntries(Object.keys(groups).map((name) => [name, (cpuAfter[name] - cpuBefore[name]) / Math.max(1, sustained.acked)]));
    await watchers.call('connect', { url: urls.at(-1), count: 1, token: adminToken, include: 'delta' });
    await watchers.call('start');
    const paced = await load.call('upserts', { seconds: cfg.latencySeconds, inflight: cfg.inflight, rate: HA_TARGET.eventsPerSecond });
    await sleep(500);
    const watched = await watchers.call('stop', { fromUs: paced.startUs, toUs: paced.endUs });
    const metrics = await servers.at(-1).metrics();
    const { latencies, acks: _acks, ...sustainedRest } = sustained;
    return {
      setup,
      registration: summarizeRegistration(registration),
      sustained: { ...sustainedRest, latency: summarize(latencies), cpuPerUpsertUs: cpu },
      paced: { sent: paced.sent, acked: paced.acked, skipped: paced.skipped, errors: paced.errors },
      watched,
      catalog: { nodesOnline: metric(metrics, 'acheron_nodes', { state: 'online' }), services: metric(metrics, 'acheron_services', { state: 'online' }) },
      serverLog: Object.assign({}, ...(await Promise.all(servers.map((s) => loggedProblems(s.logFile))))),
    };
  } finally {
    await load.call('close').catch(() => undefined);
    await Promise.all([load.stop(), watchers.stop()]);
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** Two servers; node sessions and a WorldFS catalog start on the first; it is killed each round and started again. */
async function benchFailover(endpoints, cfg) {
  const { servers, tokens, adminToken, store } = await startSetup({ store: 'etcd', servers: 2 }, endpoints, cfg.failoverNodes);
  const urls = servers.map((s) => s.url);
  const quiet = pino({ level: 'silent' });
  // The clients check every frame the servers send, as the node daemon and WorldFS do.
  const schemas = await loadSchemas();
  const dir = join(ctx.work, 'ha-failover');
  await mkdir(dir, { recursive: true });
  const sessions = tokens.map(
    (token, i) =>
      new NodeControlSession({
        urls,
        nodeId: `fo-${i}`,
        stateFile: join(dir, `fo-${i}.json`),
        joinToken: async () => token,
        catalog: () => nodeCatalog(`fo-${i}`, 0),
        node: { node_name: `fo-${i}`, platform: { os: 'linux', arch: 'x64', runtime_kind: 'node' }, labels: {} },
        backoffMs: 200,
        backoffMaxMs: 2000,
        log: quiet,
        schemas,
      }),
  );
  const world = new WorldCatalog({ urls, token: adminToken, log: quiet, backoffMs: 200, backoffMaxMs: 2000, schemas });
  const live = [...servers];
  const rounds = [];
  try {
    sessions.forEach((s) => s.start());
    await world.start();
    await waitFor('failover nodes connected', async () => sessions.every((s) => s.state === 'connected'), 60_000);
    for (let round = 0; round < cfg.failoverRounds; round++) {
      const victim = live.findIndex((s) => s.url === sessions[0].url);
      const survivor = live[1 - victim];
      await sleep(1500); // both registered, tunnels written
      const killedAt = performance.now();
      const killedDate = Date.now();
      process.kill(-live[victim].pid, 'SIGKILL');
      const nodeMs = new Map();
      let worldMs;
      // Polled every 5 ms: the WorldFS catalog says when it last (dis)connected (changedMs), the sessions their server.
      while (nodeMs.size < sessions.length || worldMs === undefined) {
        const now = performance.now() - killedAt;
        if (now > 30_000)
          throw new Error(
            `failover round ${round + 1}: ${nodeMs.size}/${sessions.length} nodes moved, WorldFS ${worldMs === undefined ? 'not ' : ''}resumed after 30 s`,
          );
        sessions.forEach((s, i) => {
          if (!nodeMs.has(i) && s.state === 'connected' && s.url === survivor.url) nodeMs.set(i, now);
        });
        if (worldMs === undefined && world.connected && world.changedMs > killedDate) worldMs = now;
        await sleep(5);
      }
      rounds.push({ nodeMs: [...nodeMs.values()], worldMs });
      log(`ha: failover round ${round + 1}: nodes median ${summarize([...nodeMs.values()]).median.toFixed(0)} ms, WorldFS ${worldMs.toFixed(0)} ms`);
      // The killed server starts again where it was, for the next round.
      const name = `ha-etcd-2-s${victim + 1}`;
      live[victim] = await startControl(name, join(ctx.work, 'ha-etcd-2', `data-${victim + 1}`), [...store, '--server-id', name], live[victim].ports);
    }
  } finally {
    await Promise.all(sessions.map((s) => s.stop()));
    await world.stop();
    await Promise.all(live.map((s) => s.stop()));
  }
  const nodeMs = rounds.flatMap((r) => r.nodeMs);
  return {
    nodes: sessions.length,
    rounds: rounds.length,
    node: summarize(nodeMs),
    nodeMax: Math.max(...nodeMs),
    world: summarize(rounds.map((r) => r.worldMs)),
    worldMax: Math.max(...rounds.map((r) => r.worldMs)),
  };
}

export async function benchHa() {
  const cfg = haConfig();
  const shape = await checkCatalogShape();
  const cluster = await startEtcdCluster();
  const setups = [];
  for (const setup of cfg.setups) setups.push(await benchSetup(setup, cluster, cfg));
  log('ha: failover');
  const failover = await benchFailover(cluster.endpoints, cfg);
  // The cores of the machine measured, kept with the figures: the table may be rendered elsewhere.
  return { config: cfg, shape, setups, failover, cores: availableParallelism() };
}

const label = (setup) => (setup.store === 'file' ? 'files, 1 server' : `etcd (3 members), ${setup.servers} server${setup.servers === 1 ? '' : 's'}`);
const p99Ms = (run) => (run.watched.latency?.p99 ?? NaN) / 1000;

export function summaryHa(result) {
  const rows = [];
  for (const run of result.setups.filter((r) => r.setup.store === 'etcd')) {
    const reg = run.registration;
    if (run.setup.servers === 1)
      rows.push({
        label: `HA: registration of ${reg.attempted} nodes × ${SERVICES_PER_NODE} services, ${label(run.setup)}`,
        measured: `${reg.seconds.toFixed(1)} s (${reg.registered} registered)`,
        target: `< ${HA_TARGET.registrationSeconds} s`,
        result:
          reg.registered === reg.attempted && reg.seconds < HA_TARGET.registrationSeconds ? 'PASS' : verdict(false, reg.seconds, HA_TARGET.registrationSeconds),
      });
    if (run.setup.servers === 2) {
      rows.push({
        label: `HA: sustained upserts/s in total, ${label(run.setup)}`,
        measured: rate(run.sustained.perSecond),
        target: `≥ ${rate(HA_TARGET.upsertsPerSecond)}`,
        result: run.sustained.perSecond >= HA_TARGET.upsertsPerSecond ? 'PASS' : verdictMin(false, run.sustained.perSecond, HA_TARGET.upsertsPerSecond),
      });
      rows.push({
        label: `HA: event latency to a watcher on the other server at ${HA_TARGET.eventsPerSecond} events/s, p99, ${label(run.setup)}`,
        measured: time(run.watched.latency?.p99 ?? NaN),
        target: `< ${HA_TARGET.latencyP99Ms} ms`,
        result: p99Ms(run) < HA_TARGET.latencyP99Ms ? 'PASS' : verdict(false, p99Ms(run), HA_TARGET.latencyP99Ms),
      });
    }
  }
  const f = result.failover;
  rows.push({
    label: `HA: failover, server killed → node tunnel up on the other server, median of ${f.node.n}`,
    measured: `${f.node.median.toFixed(0)} ms`,
    target: `< ${HA_TARGET.failoverMedianMs} ms`,
    result: f.node.median < HA_TARGET.failoverMedianMs ? 'PASS' : verdict(false, f.node.median, HA_TARGET.failoverMedianMs),
  });
  rows.push({
    label: `HA: failover, server killed → WorldFS watch resumed on the other server, median of ${f.world.n}`,
    measured: `${f.world.median.toFixed(0)} ms`,
    target: `< ${HA_TARGET.failoverMedianMs} ms`,
    result: f.world.median < HA_TARGET.failoverMedianMs ? 'PASS' : verdict(false, f.world.median, HA_TARGET.failoverMedianMs),
  });
  return rows;
}

export function renderHa(result, line) {
  const { config: cfg } = result;
  line(
    `${cfg.nodes} simulated nodes (\`bench/load-nodes.mjs\`, ${SERVICES_PER_NODE} services each, ${(result.shape.catalogBytes / 1024).toFixed(1)} KiB of descriptors), node i registering with server i mod n; ` +
      `the same load on each setup: registration (${cfg.registerConcurrency} at a time), ${cfg.sustainSeconds} s of sustained upserts (${cfg.inflight} in flight, each a real change), ` +
      `then ${cfg.latencySeconds} s at ${HA_TARGET.eventsPerSecond} upserts/s with one delta watcher on the last server (on etcd with several servers, most events were made through another one). ` +
      'etcd: 3 members on loopback on the same 2 cores (fsync on), each setup under a prefix of its own.',
  );
  line();
  line(
    '| setup | registration | one node: connect → first upsert, median / p99 | sustained upserts/s | ack latency median / p99 | event latency to the watcher, median / p99 | errors |',
  );
  line('|---|---|---|---|---|---|---|');
  for (const run of result.setups) {
    const reg = run.registration;
    const errors = { ...reg.errors, ...run.sustained.errors, ...run.paced.errors };
    line(
      `| ${label(run.setup)} | ${reg.seconds.toFixed(1)} s (${reg.registered}/${reg.attempted}) | ${time(reg.latency.total.median)} / ${time(reg.latency.total.p99)} | ${rate(run.sustained.perSecond)} | ${time(run.sustained.latency.median)} / ${time(run.sustained.latency.p99)} | ${time(run.watched.latency?.median ?? NaN)} / ${time(run.watched.latency?.p99 ?? NaN)} (${run.watched.received ?? 0} events) | ${
        Object.keys(errors).length === 0
          ? 'none'
          : Object.entries(errors)
              .map(([k, n]) => `${n} × ${k}`)
              .join(', ')
      } |`,
    );
  }
  line();
  const { cores } = result;
  line(
    'Where the cores went in the sustained phase: CPU time (user + system, all threads, from `/proc`) of each group of processes divided by the upserts acknowledged. ' +
      `What ${cores} cores can give is ${cores} s of CPU per second, so the sum bounds the rate: that ÷ the sum.`,
  );
  line();
  line(`| setup | etcd members (3) | control servers | load generator | sum | rate that sum allows on ${cores} cores |`);
  line('|---|---|---|---|---|---|');
  for (const run of result.setups) {
    const cpu = run.sustained.cpuPerUpsertUs;
    if (!cpu) continue;
    const sum = cpu.etcd + cpu.servers + cpu.load;
    line(`| ${label(run.setup)} | ${time(cpu.etcd)} | ${time(cpu.servers)} | ${time(cpu.load)} | ${time(sum)} | ${rate((cores * 1e6) / sum)} |`);
  }
  line();
  const f = result.failover;
  line(
    `**Failover** (etcd, 2 servers, \`--server-ttl-ms\` 5000): ${f.nodes} node sessions (\`NodeControlSession\`, the node daemon's, \`--reconnect-backoff-ms 200\`) and one WorldFS catalog (\`WorldCatalog\`), all given both URLs and on the same server, which is killed (kill -9) and started again, ${f.rounds} rounds. ` +
      `Node tunnel up on the other server after the kill: median ${f.node.median.toFixed(0)} ms, p90 ${f.node.p90.toFixed(0)} ms, max ${f.nodeMax.toFixed(0)} ms (${f.node.n}); ` +
      `WorldFS watch resumed there: median ${f.world.median.toFixed(0)} ms, max ${f.worldMax.toFixed(0)} ms. Targets: median < ${HA_TARGET.failoverMedianMs} ms.`,
  );
  line();
  const logs = result.setups
    .map(
      (run) =>
        `${label(run.setup)}: ${
          Object.keys(run.serverLog).length === 0
            ? 'none'
            : Object.entries(run.serverLog)
                .map(([k, n]) => `${n} × ${k}`)
                .join(', ')
        }`,
    )
    .join('; ');
  line(`Server log warnings and errors: ${logs}.`);
}
