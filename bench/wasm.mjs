// Issue 14: the echo driver as a wasm module (runtime.type "wasm", wasm/echo.ts) against the same
// echo as a native spawn-per-call driver (bin/acheron-echo-driver.js: the same answer bytes) and as
// a persistent driver (bin/acheron-echo-persistent-driver.js), one node per state-sync mode, all
// mounted at once: latency of single invocations, throughput from parallel client processes, and the
// daemon's CPU per wasm invocation. The cheapest native spawn there is (bench/drivers/echo.py under
// python3 -S) runs beside them for scale.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { summarize } from './stats.mjs';
import { COLD_FIRST, REPO, ctx, log, python, renderWarmUp, runRounds, samplesOf, warmUp } from './harness.mjs';
import { startModeNodes, throughputOf, throughputThenStop } from './throughput.mjs';
import { rate, ratio, time, verdict, verdictMin } from './format.mjs';

const PAYLOAD = '{"msg":"hi"}\n';
const STATE_SYNC_MODES = ['always', 'batch'];
const CLIENTS = 4;
const TARGET = { batchMedianUs: 1000, throughputRatio: 5 };
const ECHO_WASM = join(REPO, 'wasm', 'build', 'echo.wasm');
const DRIVERS = [
  { id: 'echo-wasm', kind: 'wasm', echo: true, runtime: { type: 'wasm', module_path: ECHO_WASM } },
  { id: 'echo-spawn', kind: 'spawn', echo: true, runtime: { executable_path: join(REPO, 'bin', 'acheron-echo-driver.js') } },
  {
    id: 'echo-persistent',
    kind: 'persistent',
    echo: true,
    runtime: { executable_path: join(REPO, 'bin', 'acheron-echo-persistent-driver.js'), mode: 'persistent' },
  },
  { id: 'echo-py', kind: 'python-spawn', echo: false, runtime: { executable_path: 'PYTHON', args: ['-S', join(REPO, 'bench', 'drivers', 'echo.py')] } },
];
const KIND_LABEL = {
  wasm: 'wasm (`wasm/echo.ts`)',
  spawn: 'native spawn (`bin/acheron-echo-driver.js`)',
  persistent: 'native persistent (`bin/acheron-echo-persistent-driver.js`)',
  'python-spawn': 'native spawn, `python3 -S bench/drivers/echo.py`',
};
const CLIENT_LABEL = { rdwr: 'one O_RDWR fd: write, read the outcome', invoke: 'write+close `invoke.json`, read `result.json`' };

function config() {
  const quick = ctx.quick;
  return {
    latency: {
      rounds: quick ? 2 : 6,
      perRound: { wasm: 100, persistent: 100, spawn: 8, 'python-spawn': 15 },
      warmup: { wasm: 20, persistent: 20, spawn: 2, 'python-spawn': 3 },
    },
    direct: { n: quick ? 500 : 2000, warmup: 100 },
    // A fresh daemon runs its JavaScript unoptimised: V8 tiers it up over the first few thousand
    // invocations (medians fell from about 1.3 ms to 550 µs over 3000 on this machine).
    warmUp: quick ? 500 : 3000,
    // The clients are Python processes: on a loaded machine they need a while to start.
    throughput: { rounds: quick ? 1 : 2, seconds: quick ? 2 : 3, clients: CLIENTS, startDelayMs: 2500 },
  };
}

export async function benchWasm() {
  const cfg = config();
  const servicesDir = join(ctx.work, 'wasm-services.d');
  await mkdir(servicesDir, { recursive: true });
  for (const driver of DRIVERS) {
    const runtime = { ...driver.runtime, max_concurrency: CLIENTS, timeout_ms: 20_000 };
    if (runtime.executable_path === 'PYTHON') runtime.executable_path = ctx.python;
    await writeFile(join(servicesDir, `${driver.id}.json`), JSON.stringify({ service_id: driver.id, kind: 'bench', runtime }) + '\n');
  }
  const payloadFile = join(ctx.work, 'wasm-payload.json');
  await writeFile(payloadFile, PAYLOAD);
  const nodes = await startModeNodes('wasm', servicesDir, STATE_SYNC_MODES);
  const invokeFile = (node, driver) => join(node.service(driver.id), 'control', 'invoke.json');
  const check = (driver) => (driver.echo ? ['--echo'] : []);
  // The first invocation starts the persistent driver and the wasm workers; nothing measured waits for that.
  for (const { node } of nodes) for (const driver of DRIVERS) await python(['rdwr', invokeFile(node, driver), payloadFile, 1, 0, ...check(driver)]);

  const { latency, throughput, direct } = cfg;
  const cold = await warmUp(
    nodes.flatMap(({ mode, node }) =>
      DRIVERS.filter((d) => d.kind === 'wasm' || d.kind === 'persistent').map((driver) => ({
        key: `${mode}/${driver.kind}`,
        args: ['rdwr', invokeFile(node, driver), payloadFile],
        clientArgs: check(driver),
      })),
    ),
    cfg.warmUp,
  );
  const latencyVariants = nodes.flatMap(({ mode, node }) =>
    DRIVERS.flatMap((driver) => {
      const n = latency.perRound[driver.kind];
      const w = latency.warmup[driver.kind];
      const result = join(node.service(driver.id), 'result.json');
      return [
        { key: `${mode}/${driver.kind}/rdwr`, run: () => python(['rdwr', invokeFile(node, driver), payloadFile, n, w, ...check(driver)]) },
        { key: `${mode}/${driver.kind}/invoke`, run: () => python(['invoke', invokeFile(node, driver), result, payloadFile, n, w, ...check(driver)]) },
      ];
    }),
  );
  latencyVariants.push({
    key: 'direct/wasm',
    run: () => samplesOf(process.execPath, [join(REPO, 'bench', 'wasm-client.mjs'), ECHO_WASM, payloadFile, direct.n, direct.warmup]),
  });
  log(`wasm drivers, latency: ${latencyVariants.length} variants, ${latency.rounds} rounds`);
  const latencySamples = await runRounds(latencyVariants, latency.rounds);

  const measured = await throughputThenStop({ what: 'wasm drivers', nodes, drivers: DRIVERS, invokeFile, clientArgs: check, payloadFile, throughput });
  return { config: { ...cfg, payload: PAYLOAD, python: ctx.python }, cold, latency: latencySamples, ...measured };
}

export function summaryWasm(result) {
  const rows = [];
  for (const mode of STATE_SYNC_MODES) {
    const s = summarize(result.latency[`${mode}/wasm/rdwr`]);
    const targeted = mode === 'batch';
    rows.push({
      label: `wasm invocation latency, median, one O_RDWR transaction, \`--state-sync ${mode}\``,
      measured: `${time(s.median)} (p99 ${time(s.p99)})`,
      target: targeted ? `< ${time(TARGET.batchMedianUs)}` : '— (reported)',
      result: targeted ? verdict(s.median < TARGET.batchMedianUs, s.median, TARGET.batchMedianUs) : '—',
    });
  }
  const cold = summarize(result.cold?.['batch/wasm']?.slice(0, COLD_FIRST) ?? []);
  rows.push({
    label: `the same, the daemon's first ${COLD_FIRST} wasm invocations after its start`,
    measured: `${time(cold.median)} (p99 ${time(cold.p99)})`,
    target: '— (reported)',
    result: '—',
  });
  for (const mode of STATE_SYNC_MODES) {
    const wasm = throughputOf(result, `${mode}/wasm`).perSecond;
    const spawn = throughputOf(result, `${mode}/spawn`).perSecond;
    const r = wasm / spawn;
    rows.push({
      label: `wasm ÷ native spawn throughput (same echo), ${CLIENTS} parallel clients, \`--state-sync ${mode}\``,
      measured: `${ratio(r)} (${rate(wasm)} vs ${rate(spawn)})`,
      target: `≥ ${TARGET.throughputRatio}×`,
      result: verdictMin(r >= TARGET.throughputRatio, r, TARGET.throughputRatio),
    });
  }
  const c = result.cpuPerInvocation['batch/wasm'];
  rows.push({
    label: 'daemon CPU per wasm invocation (all threads, throughput runs, `--state-sync batch`)',
    measured: time(c.daemonUs),
    target: '— (reported)',
    result: '—',
  });
  return rows;
}

export function renderWasm(result, line) {
  const { config: cfg } = result;
  line(
    `The echo driver as a wasm module (\`wasm/echo.ts\`, built by \`make build\`) against the same echo as a native spawn-per-call driver ` +
      '(`bin/acheron-echo-driver.js`, Node: the same answer bytes) and as a persistent driver (`bin/acheron-echo-persistent-driver.js`), ' +
      `with \`python3 -S bench/drivers/echo.py\` spawned per call for scale (the cheapest native start-up; it answers the payload itself). ` +
      `Payload \`${cfg.payload.trim()}\`; every transaction checked its answer. All services have \`max_concurrency: ${CLIENTS}\`. ` +
      `Latency: one Python client, ${cfg.latency.rounds} rounds, variants interleaved (per round: wasm and persistent ${cfg.latency.perRound.wasm}, ` +
      `Node spawn ${cfg.latency.perRound.spawn}, Python spawn ${cfg.latency.perRound['python-spawn']} iterations after a few warm-up ones). ` +
      `Throughput: ${cfg.throughput.clients} client processes started together, each looping O_RDWR transactions for ${cfg.throughput.seconds} s, ` +
      `${cfg.throughput.rounds} round(s) per variant.`,
  );
  line();
  line('| state sync | driver | client | n | median | p90 | p99 | ÷ wasm (median) |');
  line('|---|---|---|---|---|---|---|---|');
  for (const mode of STATE_SYNC_MODES) {
    for (const client of ['rdwr', 'invoke']) {
      const wasm = summarize(result.latency[`${mode}/wasm/${client}`]);
      for (const kind of ['wasm', 'persistent', 'spawn', 'python-spawn']) {
        const s = summarize(result.latency[`${mode}/${kind}/${client}`]);
        line(
          `| \`${mode}\` | ${KIND_LABEL[kind]} | ${CLIENT_LABEL[client]} | ${s.n} | ${time(s.median)} | ${time(s.p90)} | ${time(s.p99)} | ${kind === 'wasm' ? '1' : ratio(s.median / wasm.median)} |`,
        );
      }
    }
  }
  const direct = summarize(result.latency['direct/wasm']);
  line(
    `| — | wasm, no FUSE: \`WasmPool\` in a Node client (worker threads, a fresh instance per call) | — | ${direct.n} | ${time(direct.median)} | ${time(direct.p90)} | ${time(direct.p99)} | — |`,
  );
  line();
  if (result.cold)
    renderWarmUp(line, result.cold, cfg.warmUp, (key) => {
      const [mode, kind] = key.split('/');
      return `\`${mode}\`: ${KIND_LABEL[kind]}, ${CLIENT_LABEL.rdwr}`;
    });
  line();
  line(
    `| state sync | driver | invocations/s (${cfg.throughput.clients} clients) | per round | transaction median | p99 | CPU per invocation: daemon | spawner | ÷ native spawn |`,
  );
  line('|---|---|---|---|---|---|---|---|---|');
  for (const mode of STATE_SYNC_MODES) {
    const spawn = throughputOf(result, `${mode}/spawn`).perSecond;
    for (const kind of ['wasm', 'persistent', 'spawn', 'python-spawn']) {
      const { perSecond, runs } = throughputOf(result, `${mode}/${kind}`);
      const s = summarize(runs.flatMap((x) => x.samples));
      const c = result.cpuPerInvocation[`${mode}/${kind}`];
      line(
        `| \`${mode}\` | ${KIND_LABEL[kind]} | ${rate(perSecond)} | ${runs.map((x) => Math.round(x.perSecond)).join(', ')} | ${time(s.median)} | ${time(s.p99)} | ${time(c.daemonUs)} | ${time(c.spawnerUs)} | ${ratio(perSecond / spawn)} |`,
      );
    }
  }
  line();
  line(
    "CPU per invocation is the daemon's (all its threads, so the wasm workers too) and the spawner's over the throughput runs, divided by the " +
      "transactions finished; native drivers' own CPU is not counted, a wasm module's is (it runs in the daemon). The daemons' `metrics.json` counted " +
      `${result.modes
        .map(
          (m) =>
            `\`${m.mode}\`: ${Object.keys(m.invokesTotal)
              .map((k) => `${k} ${m.invokesTotal[k]} invocations, ${m.failuresTotal[k]} failed`)
              .join('; ')}`,
        )
        .join('; ')}.`,
  );
}
