// Issue 3: spawn-per-call against runtime.mode "persistent" for the same echo logic
// (bench/drivers/echo.py), one node per state-sync mode, all mounted at once: latency of single
// invocations from one client, throughput from parallel client processes.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { summarize } from './stats.mjs';
import { REPO, ctx, log, python, runRounds, samplesOf, writeManifest } from './harness.mjs';
import { startModeNodes, throughputOf, throughputThenStop } from './throughput.mjs';
import { rate, ratio, time, verdict, verdictMin } from './format.mjs';

const ECHO = join(REPO, 'bench', 'drivers', 'echo.py');
const EXECA_CLIENT = join(REPO, 'bench', 'execa-client.mjs');
const PAYLOAD = '{"msg":"hi"}\n';
const STATE_SYNC_MODES = ['always', 'batch'];
/** Parallel client processes in the throughput runs; each service admits as many at once. */
const CLIENTS = 4;
const TARGET = { throughputRatio: 10, batchMedianUs: 1000 };
const DRIVERS = [
  { id: 'echo-spawn', kind: 'spawn', args: ['-S', ECHO], runtime: {} },
  { id: 'echo-persistent', kind: 'persistent', args: ['-S', ECHO, '--persistent'], runtime: { mode: 'persistent' } },
];
const CLIENT_LABEL = { rdwr: 'one O_RDWR fd: write, read the outcome', invoke: 'write+close `invoke.json`, read `result.json`' };

function config() {
  const quick = ctx.quick;
  return {
    latency: { rounds: quick ? 2 : 6, perRound: { spawn: 15, persistent: 100 }, warmup: { spawn: 3, persistent: 20 } },
    throughput: { rounds: quick ? 1 : 2, seconds: quick ? 1.5 : 3, clients: CLIENTS, startDelayMs: 700 },
  };
}

export async function benchPersistent() {
  const cfg = config();
  const servicesDir = join(ctx.work, 'persistent-services.d');
  await mkdir(servicesDir, { recursive: true });
  // The interpreter itself with -S (no site import): the cheapest Python start-up, which flatters spawn.
  for (const driver of DRIVERS) {
    await writeManifest(servicesDir, driver.id, ctx.python, {
      runtime: { args: driver.args, max_concurrency: CLIENTS, timeout_ms: 10_000, ...driver.runtime },
    });
  }
  const payloadFile = join(ctx.work, 'persistent-payload.json');
  await writeFile(payloadFile, PAYLOAD);
  const nodes = await startModeNodes('persistent', servicesDir, STATE_SYNC_MODES);
  const files = (node, driver) => ({
    invoke: join(node.service(driver.id), 'control', 'invoke.json'),
    result: join(node.service(driver.id), 'result.json'),
  });
  // The first invocation starts the persistent driver; nothing measured waits for that.
  for (const { node } of nodes) for (const driver of DRIVERS) await python(['rdwr', files(node, driver).invoke, payloadFile, 1, 0]);

  const { latency, throughput } = cfg;
  const latencyVariants = nodes.flatMap(({ mode, node }) =>
    DRIVERS.flatMap((driver) => {
      const { invoke, result } = files(node, driver);
      const n = latency.perRound[driver.kind];
      const w = latency.warmup[driver.kind];
      return [
        { key: `${mode}/${driver.kind}/rdwr`, run: () => python(['rdwr', invoke, payloadFile, n, w]) },
        { key: `${mode}/${driver.kind}/invoke`, run: () => python(['invoke', invoke, result, payloadFile, n, w]) },
      ];
    }),
  );
  // The same drivers without FUSE and the daemon: in the client, and through a forked spawner.
  for (const driver of DRIVERS) {
    const n = latency.perRound[driver.kind];
    const w = latency.warmup[driver.kind];
    const flags = driver.kind === 'persistent' ? ['--persistent'] : [];
    latencyVariants.push(
      {
        key: `direct/${driver.kind}/client`,
        run: () => samplesOf(process.execPath, [EXECA_CLIENT, ...flags, '--args', JSON.stringify(driver.args), ctx.python, payloadFile, n, w]),
      },
      {
        key: `direct/${driver.kind}/spawner`,
        run: () => samplesOf(process.execPath, [EXECA_CLIENT, '--spawner', ...flags, '--args', JSON.stringify(driver.args), ctx.python, payloadFile, n, w]),
      },
    );
  }
  log(`persistent vs spawn, latency: ${latencyVariants.length} variants, ${latency.rounds} rounds`);
  const latencySamples = await runRounds(latencyVariants, latency.rounds);

  // Throughput: CLIENTS processes start together at a wall-clock instant and loop for a fixed time.
  const measured = await throughputThenStop({
    what: 'persistent vs spawn',
    nodes,
    drivers: DRIVERS,
    invokeFile: (node, driver) => files(node, driver).invoke,
    payloadFile,
    throughput,
  });
  return { config: { ...cfg, payload: PAYLOAD, python: ctx.python }, latency: latencySamples, ...measured };
}

// ---------------------------------------------------------------------------------------------
// Results

export function summaryPersistent(result) {
  const rows = [];
  for (const mode of STATE_SYNC_MODES) {
    const spawn = throughputOf(result, `${mode}/spawn`).perSecond;
    const persistent = throughputOf(result, `${mode}/persistent`).perSecond;
    const r = persistent / spawn;
    rows.push({
      label: `persistent ÷ spawn-per-call throughput, ${CLIENTS} parallel clients, \`--state-sync ${mode}\``,
      measured: `${ratio(r)} (${rate(persistent)} vs ${rate(spawn)})`,
      target: `≥ ${TARGET.throughputRatio}×`,
      result: r >= TARGET.throughputRatio ? 'PASS' : verdictMin(false, r, TARGET.throughputRatio),
    });
  }
  for (const mode of STATE_SYNC_MODES) {
    const s = summarize(result.latency[`${mode}/persistent/rdwr`]);
    const targeted = mode === 'batch';
    rows.push({
      label: `persistent invocation latency, median, one O_RDWR transaction, \`--state-sync ${mode}\``,
      measured: `${time(s.median)} (p99 ${time(s.p99)})`,
      target: targeted ? `< ${time(TARGET.batchMedianUs)}` : '— (reported)',
      result: targeted ? (s.median < TARGET.batchMedianUs ? 'PASS' : verdict(false, s.median, TARGET.batchMedianUs)) : '—',
    });
  }
  return rows;
}

export function renderPersistent(result, line) {
  const { config: cfg } = result;
  line(
    `Driver \`bench/drivers/echo.py\` run as \`${cfg.python.split('/').pop()} -S\` (no \`site\` import, the cheapest Python start-up): ` +
      'one `echo()` function answering in both modes, so the result bytes are the same (`{"msg":"hi"}\\n`) and only the runtime mode differs. ' +
      `Both services have \`max_concurrency: ${CLIENTS}\`. Latency: one Python client, ${cfg.latency.rounds} rounds of ${cfg.latency.perRound.spawn} (spawn) or ` +
      `${cfg.latency.perRound.persistent} (persistent) iterations after ${cfg.latency.warmup.spawn} / ${cfg.latency.warmup.persistent} warm-up ones, the variants interleaved. ` +
      `Throughput: ${cfg.throughput.clients} client processes started together, each looping O_RDWR transactions for ${cfg.throughput.seconds} s, ${cfg.throughput.rounds} round(s) per variant.`,
  );
  line();
  line('| state sync | mode | client | n | median | p90 | p99 | ÷ spawn (median) | target | result |');
  line('|---|---|---|---|---|---|---|---|---|---|');
  for (const mode of STATE_SYNC_MODES) {
    for (const client of ['rdwr', 'invoke']) {
      const spawn = summarize(result.latency[`${mode}/spawn/${client}`]);
      for (const kind of ['spawn', 'persistent']) {
        const s = kind === 'spawn' ? spawn : summarize(result.latency[`${mode}/persistent/${client}`]);
        const targeted = kind === 'persistent' && mode === 'batch' && client === 'rdwr';
        line(
          `| \`${mode}\` | ${kind} | ${CLIENT_LABEL[client]} | ${s.n} | ${time(s.median)} | ${time(s.p90)} | ${time(s.p99)} | ${kind === 'spawn' ? '1' : ratio(s.median / spawn.median)} | ` +
            `${targeted ? `< ${time(TARGET.batchMedianUs)}` : '—'} | ${targeted ? (s.median < TARGET.batchMedianUs ? 'PASS' : verdict(false, s.median, TARGET.batchMedianUs)) : '—'} |`,
        );
      }
    }
  }
  for (const kind of ['spawn', 'persistent']) {
    for (const [via, label] of [
      ['client', kind === 'spawn' ? 'no FUSE: `runDriver` (execa) in a Node client' : 'no FUSE: `PersistentDriver` in a Node client'],
      [
        'spawner',
        kind === 'spawn'
          ? 'no FUSE: through a forked spawner + IPC (`DriverSpawner`)'
          : 'no FUSE: `DriverSpawner` (started by the spawner, requests over its socket to the client)',
      ],
    ]) {
      const samples = result.latency[`direct/${kind}/${via}`];
      if (!samples) continue;
      const s = summarize(samples);
      line(
        `| — | ${kind} | ${label} | ${s.n} | ${time(s.median)} | ${time(s.p90)} | ${time(s.p99)} | ${ratio(s.median / summarize(result.latency[`direct/spawn/${via}`]).median)} | — | — |`,
      );
    }
  }
  line();
  if (result.latency['direct/persistent/client']) {
    const median = (key) => summarize(result.latency[key]).median;
    const direct = median('direct/persistent/client');
    const spawner = median('direct/persistent/spawner');
    for (const mode of STATE_SYNC_MODES) {
      const fuse = median(`${mode}/persistent/rdwr`);
      line(
        `- Persistent, \`${mode}\`, one O_RDWR transaction (differences of medians): the driver answering a JSON line in the client ${time(direct)}; ` +
          `a driver started by the spawner (requests over its socket, as in the daemon) adds ${time(spawner - direct)}; FUSE and the daemon add ${time(fuse - spawner)}; total ${time(fuse)}.`,
      );
    }
    line();
  }
  line(
    `| state sync | mode | invocations/s (${cfg.throughput.clients} clients) | per round | transaction median | p99 | CPU per invocation: daemon | spawner | ÷ spawn | target | result |`,
  );
  line('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const mode of STATE_SYNC_MODES) {
    const spawn = throughputOf(result, `${mode}/spawn`).perSecond;
    for (const kind of ['spawn', 'persistent']) {
      const { perSecond, runs } = throughputOf(result, `${mode}/${kind}`);
      const latency = summarize(runs.flatMap((x) => x.samples));
      const c = result.cpuPerInvocation[`${mode}/${kind}`];
      const r = perSecond / spawn;
      const targeted = kind === 'persistent';
      line(
        `| \`${mode}\` | ${kind} | ${rate(perSecond)} | ${runs.map((x) => Math.round(x.perSecond)).join(', ')} | ${time(latency.median)} | ${time(latency.p99)} | ${time(c.daemonUs)} | ${time(c.spawnerUs)} | ` +
          `${kind === 'spawn' ? '1' : ratio(r)} | ${targeted ? `≥ ${TARGET.throughputRatio}×` : '—'} | ${targeted ? (r >= TARGET.throughputRatio ? 'PASS' : verdictMin(false, r, TARGET.throughputRatio)) : '—'} |`,
      );
    }
  }
  line();
  line(
    "Transaction latencies in the throughput table are under load (all clients at once). CPU per invocation is the daemon's and the spawner's " +
      '(all threads; the drivers not counted) over the throughput runs, divided by the transactions finished. Every transaction checked its outcome; ' +
      `the daemons' \`metrics.json\` counted ${result.modes.map((m) => `\`${m.mode}\`: ${['spawn', 'persistent'].map((k) => `${k} ${m.invokesTotal[k]} invocations, ${m.failuresTotal[k]} failed`).join('; ')}`).join('; ')}.`,
  );
}
