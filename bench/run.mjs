#!/usr/bin/env node
// `make bench`: measures the invoke round trip, stat + cat against tmpfs and the C libfuse `hello`
// example, the daemon's memory with 1000 services, persistent against spawn-per-call drivers, one
// control server with 1000 nodes, the watch fan-out against a plain ws broadcast, and WorldFS (a
// relayed invoke against the node's own mount; catalog changes reaching the mount), and partition
// detection and recovery on the multi-node harness's fleet; writes the
// results section of docs/BENCHMARKS.md and the raw samples to bench/results/latest.json.
//
//   node bench/run.mjs [--quick] [--no-write] [--only NAME[,NAME...]]
//
// NAME: invoke, statcat, memory, trace, persistent, control, fanout, world, wasm, partition, ha. With --only, just those
// sections of docs/BENCHMARKS.md and their summary rows are replaced (each says when it ran); the others stay as written.
// The mounts are only ever touched by child processes (bench/client.py, bench/execa-client.mjs,
// cat): never by fs calls from this process (SPEC §12). Every mount and process is cleaned up in
// `finally`, also on error and on SIGINT/SIGTERM.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, summarize } from './stats.mjs';
import { renderResults, writeResultsSection } from './report.mjs';
import {
  REPO,
  childrenOf,
  cleanupAll,
  cpuUsOf,
  ctx,
  defer,
  elapsedSeconds,
  exec,
  exists,
  log,
  memoryOf,
  mustExec,
  python,
  runRounds,
  samplesOf,
  sleep,
  startDaemon,
  startNode,
  writeManifest,
} from './harness.mjs';
import { benchPersistent } from './persistent.mjs';
import { benchControl, benchFanout } from './control.mjs';
import { benchWorld } from './world.mjs';
import { benchWasm } from './wasm.mjs';
import { benchPartition } from './partition.mjs';
import { benchHa } from './ha.mjs';

const EXECA_CLIENT = join(REPO, 'bench', 'execa-client.mjs');
const FIXTURE_CAT = join(REPO, 'test', 'fixtures', 'drivers', 'cat');
const HELLO_SRC = '/usr/share/doc/libfuse-dev/examples/hello.c';
const DOC = join(REPO, 'docs', 'BENCHMARKS.md');
const RAW = join(REPO, 'bench', 'results', 'latest.json');
// 13 bytes, the size of hello's "Hello World!\n": the stat + cat comparison reads equal files.
const PAYLOAD = '{"msg":"hi"}\n';
const HELLO_OPTIONS = 'attr_timeout=0,entry_timeout=1,direct_io';

const BENCHMARKS = ['invoke', 'statcat', 'memory', 'trace', 'persistent', 'control', 'fanout', 'world', 'wasm', 'partition', 'ha'];
const flags = new Set();
const onlyNames = [];
for (const args = process.argv.slice(2); args.length > 0;) {
  const arg = args.shift();
  if (arg === '--only') onlyNames.push(...(args.shift() ?? '').split(','));
  else if (arg.startsWith('--only=')) onlyNames.push(...arg.slice(7).split(','));
  else if (['--quick', '--no-write'].includes(arg)) flags.add(arg);
  else {
    console.error(`bench: unknown argument ${arg} (node bench/run.mjs [--quick] [--no-write] [--only NAME[,NAME...]])`);
    process.exit(2);
  }
}
for (const name of onlyNames) {
  if (!BENCHMARKS.includes(name)) {
    console.error(`bench: --only ${JSON.stringify(name)}: expected one of ${BENCHMARKS.join(', ')}`);
    process.exit(2);
  }
}
const only = onlyNames.length > 0 ? new Set(onlyNames) : undefined;
const selected = (name) => !only || only.has(name);
const quick = flags.has('--quick');
ctx.quick = quick;
const scale = (n) => (quick ? Math.max(2, Math.ceil(n / 4)) : n);
// Rounds interleave the variants (rotating their order) so drift in machine load hits all alike.
const INVOKE = { rounds: scale(10), perRound: 20, warmup: 3 };
const STATCAT = { rounds: scale(10), perRound: 500, warmup: 100 };
const TRACE = { invokes: 40, statcats: 200 };
const MEMORY_SERVICES = 1000;
const INVOKE_DRIVERS = [
  { id: 'bin-cat', path: '/bin/cat' },
  { id: 'fixture-cat', path: FIXTURE_CAT },
];
const STATE_SYNC_MODES = ['always', 'batch'];

// ---------------------------------------------------------------------------------------------
// Benchmarks

/**
 * Invoke round trip through the files vs the same driver run directly. One daemon per state-sync
 * mode, all mounted at once, so every variant runs interleaved in the same rounds.
 */
async function benchInvoke(payloadFile) {
  const servicesDir = join(ctx.work, 'invoke-services.d');
  await mkdir(servicesDir, { recursive: true });
  for (const driver of INVOKE_DRIVERS) await writeManifest(servicesDir, driver.id, driver.path);
  const { perRound: n, warmup: w } = INVOKE;
  const nodes = [];
  for (const mode of STATE_SYNC_MODES) nodes.push({ mode, node: await startNode(`invoke-${mode}`, { servicesDir, args: ['--state-sync', mode] }) });
  // CPU per invocation: the clients report their own; the daemons' and spawners' are read from /proc
  // around each FUSE variant (a spawner does the same execa work as the direct client).
  const cpu = {};
  const cpuOf = (key) => (cpu[key] ??= { direct: [], daemonUs: 0, spawnerUs: 0, invocations: 0 });
  const spawners = new Map();
  for (const { node } of nodes) {
    const [spawner] = await childrenOf(node.pid);
    if (spawner === undefined) throw new Error(`${node.name}: no driver spawner process found`);
    spawners.set(node, spawner);
  }
  const measured = (key, node, run) => async () => {
    const spawner = spawners.get(node);
    const before = [await cpuUsOf(node.pid), await cpuUsOf(spawner)];
    const samples = await run();
    const entry = cpuOf(key);
    entry.daemonUs += (await cpuUsOf(node.pid)) - before[0];
    entry.spawnerUs += (await cpuUsOf(spawner)) - before[1];
    entry.invocations += n + w;
    return samples;
  };
  const variants = INVOKE_DRIVERS.flatMap((driver) => [
    {
      key: `${driver.id}/execa`,
      run: () => samplesOf(process.execPath, [EXECA_CLIENT, driver.path, payloadFile, n, w], { cpu: cpuOf(`${driver.id}/execa`).direct }),
    },
    { key: `${driver.id}/spawner`, run: () => samplesOf(process.execPath, [EXECA_CLIENT, '--spawner', driver.path, payloadFile, n, w]) },
    { key: `${driver.id}/subprocess`, run: () => python(['direct', driver.path, payloadFile, n, w]) },
    ...nodes.flatMap(({ mode, node }) => {
      const invoke = join(node.service(driver.id), 'control', 'invoke.json');
      const result = join(node.service(driver.id), 'result.json');
      const key = `${mode}/${driver.id}/fuse`;
      return [
        { key, run: measured(key, node, () => python(['invoke', invoke, result, payloadFile, n, w])) },
        ...(driver.id === 'bin-cat' ? [{ key: `${mode}/${driver.id}/rdwr`, run: () => python(['rdwr', invoke, payloadFile, n, w]) }] : []),
      ];
    }),
  ]);
  log(`invoke round trip: ${variants.length} variants, ${INVOKE.rounds} rounds x ${n}`);
  const samples = await runRounds(variants, INVOKE.rounds);
  const modes = [];
  for (const { mode, node } of nodes) {
    const spawnerLatency = {};
    for (const driver of INVOKE_DRIVERS) {
      spawnerLatency[driver.id] = JSON.parse(await mustExec('cat', [join(node.service(driver.id), 'metrics.json')])).latency_ms;
    }
    const memory = await memoryOf(node.pid);
    await node.stop();
    const journal = `${node.stateFile}.runtime-services.json`;
    modes.push({ mode, spawnerLatency, memory, journalWritten: await exists(journal), journal });
  }
  const cpuPerInvocation = Object.fromEntries(
    Object.entries(cpu).map(([key, c]) => [
      key,
      c.direct.length > 0
        ? { clientUs: c.direct.reduce((a, b) => a + b, 0) / c.direct.length }
        : { daemonUs: c.daemonUs / c.invocations, spawnerUs: c.spawnerUs / c.invocations },
    ]),
  );
  return { config: { INVOKE, payload: PAYLOAD }, samples, modes, cpuPerInvocation };
}

/** stat + read of a 13-byte file: tmpfs, the C hello example, and result.json of a node. */
async function benchStatCat(payloadFile) {
  log('stat + cat: building the C hello example');
  const helloDir = join(ctx.work, 'hello');
  await mkdir(join(helloDir, 'mnt'), { recursive: true });
  const helloBin = join(helloDir, 'hello');
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  await mustExec('bash', ['-c', `gcc -Wall ${q(HELLO_SRC)} $(pkg-config fuse --cflags --libs) -o ${q(helloBin)}`]);
  const helloMount = join(helloDir, 'mnt');
  const hello = startDaemon(helloBin, ['-f', '-o', HELLO_OPTIONS, helloMount], { mountPoint: helloMount, name: 'hello' });
  await hello.ready();

  const shm = await mkdtemp(join((await exists('/dev/shm')) ? '/dev/shm' : tmpdir(), 'acheron-bench-'));
  defer(() => rm(shm, { recursive: true, force: true }));
  await writeFile(join(shm, 'result.json'), PAYLOAD);
  // The file system type of the deepest mount holding the directory (tmpfs for /dev/shm).
  const holder = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields.length > 4 && `${shm}/`.startsWith(fields[4] === '/' ? '/' : `${fields[4]}/`))
    .sort((a, b) => b[4].length - a[4].length)[0];
  const shmFs = holder ? holder[holder.indexOf('-') + 1] : 'unknown';

  const servicesDir = join(ctx.work, 'statcat-services.d');
  await mkdir(servicesDir, { recursive: true });
  await writeManifest(servicesDir, 'bin-cat', '/bin/cat');
  const node = await startNode('statcat', { servicesDir });
  const serviceDir = node.service('bin-cat');
  await python(['invoke', join(serviceDir, 'control', 'invoke.json'), join(serviceDir, 'result.json'), payloadFile, 1, 0]);
  // The same with the loop sleeping between operations: what the busy-poll window buys.
  const sleeper = await startNode('statcat-nopoll', { servicesDir, args: ['--busy-poll-us', '0'] });
  const sleeperDir = sleeper.service('bin-cat');
  await python(['invoke', join(sleeperDir, 'control', 'invoke.json'), join(sleeperDir, 'result.json'), payloadFile, 1, 0]);

  const targets = [
    { key: 'tmpfs', cwd: shm, path: 'result.json' },
    { key: 'hello', cwd: helloMount, path: 'hello' },
    { key: 'acheron', cwd: serviceDir, path: 'result.json' },
    { key: 'acheron-abs', cwd: '/', path: join(serviceDir, 'result.json') },
    { key: 'acheron-nopoll', cwd: sleeperDir, path: 'result.json' },
  ];
  for (const target of targets) {
    const content = await mustExec('cat', [target.path], { cwd: target.cwd });
    if (content.length !== 13) throw new Error(`${target.key}: expected 13 bytes, read ${JSON.stringify(content)}`);
  }
  log(`stat + cat: ${STATCAT.rounds} rounds x ${STATCAT.perRound}`);
  const samples = await runRounds(
    targets.map((target) => ({
      key: target.key,
      run: () => python(['statcat', target.path, STATCAT.perRound, STATCAT.warmup], { cwd: target.cwd }),
    })),
    STATCAT.rounds,
  );
  await node.stop();
  await sleeper.stop();
  await hello.stop();
  return { config: { STATCAT }, samples, shmFs, helloOptions: HELLO_OPTIONS };
}

/** RSS of the daemon (and of its driver spawner) with 1000 services loaded. */
async function benchMemory(payloadFile) {
  log(`memory: ${MEMORY_SERVICES} services`);
  const servicesDir = join(ctx.work, 'memory-services.d');
  await mkdir(servicesDir, { recursive: true });
  for (let i = 0; i < MEMORY_SERVICES; i++) await writeManifest(servicesDir, `svc-${String(i).padStart(4, '0')}`, FIXTURE_CAT);
  const node = await startNode('memory', { servicesDir });
  const services = JSON.parse(await mustExec('cat', [join(node.mountPoint, 'SERVICES.json')]));
  const loaded = services.filter((s) => String(s.service_id).startsWith('svc-')).length;
  if (loaded !== MEMORY_SERVICES) throw new Error(`SERVICES.json lists ${loaded} of ${MEMORY_SERVICES} services`);
  const [spawner] = await childrenOf(node.pid);
  await sleep(1000);
  const idle = { daemon: await memoryOf(node.pid), spawner: spawner ? await memoryOf(spawner) : null };
  log(`memory: one invocation of each of the ${MEMORY_SERVICES} services`);
  const invokeSamples = await python(['invoke-each', join(node.mountPoint, 'services'), payloadFile, 'svc-']);
  if (invokeSamples.length !== MEMORY_SERVICES) throw new Error(`invoked ${invokeSamples.length} of ${MEMORY_SERVICES} services`);
  await sleep(1000);
  const afterInvoke = { daemon: await memoryOf(node.pid), spawner: spawner ? await memoryOf(spawner) : null };
  await node.stop();
  return { services: MEMORY_SERVICES, startMs: node.startMs, idle, afterInvoke, invokeEach: summarize(invokeSamples) };
}

/** With --log-level trace, counts the FUSE operations per iteration and their time in the handlers. */
async function benchTrace(payloadFile) {
  log('breakdown: trace pass');
  const servicesDir = join(ctx.work, 'trace-services.d');
  await mkdir(servicesDir, { recursive: true });
  await writeManifest(servicesDir, 'bin-cat', '/bin/cat');
  const node = await startNode('trace', { servicesDir, logLevel: 'trace' });
  const serviceDir = node.service('bin-cat');
  const invoke = join(serviceDir, 'control', 'invoke.json');
  const result = join(serviceDir, 'result.json');
  await python(['invoke', invoke, result, payloadFile, 3, 0]);

  const phase = async (iterations, run) => {
    const from = (await stat(node.logFile)).size;
    const samples = await run();
    const text = (await readFile(node.logFile)).subarray(from).toString();
    const ops = new Map();
    for (const line of text.split('\n')) {
      if (!line.includes('"op":')) continue;
      const entry = JSON.parse(line);
      if (typeof entry.us !== 'number') continue;
      const key = `${entry.op} ${entry.path}`;
      if (!ops.has(key)) ops.set(key, []);
      ops.get(key).push(entry.us);
    }
    return {
      client: summarize(samples),
      ops: [...ops]
        .map(([op, us]) => ({ op, perIteration: us.length / iterations, medianUs: percentile(us, 0.5) }))
        .sort((a, b) => b.perIteration * b.medianUs - a.perIteration * a.medianUs),
    };
  };
  const invokePhase = await phase(TRACE.invokes, () => python(['invoke', invoke, result, payloadFile, TRACE.invokes, 0]));
  const statcatPhase = await phase(TRACE.statcats, () => python(['statcat', 'result.json', TRACE.statcats, 0], { cwd: serviceDir }));
  await node.stop();
  return { config: { TRACE }, invoke: invokePhase, statcat: statcatPhase };
}

// ---------------------------------------------------------------------------------------------

async function machine() {
  const version = async (file, argv) => (await exec(file, argv).catch(() => ({ stdout: '' }))).stdout.trim() || 'unknown';
  const fuseNative = JSON.parse(await readFile(join(REPO, 'node_modules', 'fuse-native', 'package.json'), 'utf8')).version;
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: release(),
    python: (await version('python3', ['--version'])).replace(/^Python /, ''),
    libfuse: await version('pkg-config', ['--modversion', 'fuse']),
    fuseNative,
    loadStart: loadavg()[0],
  };
}

async function main() {
  const needsFuse = ['invoke', 'statcat', 'memory', 'trace', 'persistent', 'world', 'wasm'].some(selected);
  for (const [what, path] of [
    ['the build (make build)', join(REPO, 'dist', 'cli', 'main.js')],
    ...(selected('statcat') ? [['libfuse-dev', HELLO_SRC]] : []),
    ...(selected('wasm') ? [['the wasm echo (make build)', join(REPO, 'wasm', 'build', 'echo.wasm')]] : []),
  ]) {
    if (!(await exists(path))) throw new Error(`${what} is missing: ${path} not found`);
  }
  ctx.work = await mkdtemp(join(tmpdir(), 'acheron-bench-'));
  // Registered first, so it runs last: after every mount under it is gone (never rm into a mount).
  defer(async () => {
    const table = await readFile('/proc/self/mountinfo', 'utf8');
    if (table.split('\n').some((line) => (line.split(' ')[4] ?? '').startsWith(ctx.work))) {
      console.error(`bench: leaving ${ctx.work}: something is still mounted under it`);
      return;
    }
    await rm(ctx.work, { recursive: true, force: true });
  });
  ctx.python = (await mustExec('python3', ['-c', 'import sys; print(sys.executable)'])).trim();
  ctx.clkTck = Number((await mustExec('getconf', ['CLK_TCK'])).trim()) || 100;
  if (needsFuse && !(await exists('/dev/fuse'))) throw new Error('/dev/fuse is missing: the FUSE benchmarks need it');
  const payloadFile = join(ctx.work, 'payload.json');
  await writeFile(payloadFile, PAYLOAD);

  const env = await machine();
  const results = {};
  const parts = {
    invoke: () => benchInvoke(payloadFile),
    statcat: () => benchStatCat(payloadFile),
    memory: () => benchMemory(payloadFile),
    trace: () => benchTrace(payloadFile),
    persistent: () => benchPersistent(),
    control: () => benchControl(),
    fanout: () => benchFanout(),
    world: () => benchWorld(),
    wasm: () => benchWasm(),
    partition: () => benchPartition(),
    ha: () => benchHa(),
  };
  for (const name of BENCHMARKS.filter(selected)) {
    const started = { date: new Date().toISOString(), loadStart: loadavg()[0], at: performance.now() };
    const part = await parts[name]();
    part.ran = { date: started.date, quick, loadStart: started.loadStart, loadEnd: loadavg()[0], seconds: Math.round((performance.now() - started.at) / 1000) };
    results[name] = part;
  }
  env.loadEnd = loadavg()[0];
  env.seconds = elapsedSeconds();
  env.only = only ? [...only] : null;
  results.env = env;
  results.quick = quick;

  const markdown = renderResults(results);
  await mkdir(join(REPO, 'bench', 'results'), { recursive: true });
  await writeFile(RAW, JSON.stringify(results, null, 1) + '\n');
  if (flags.has('--no-write')) console.log(markdown);
  else await writeResultsSection(DOC, markdown, only ? [...only] : undefined);
  log(`done: ${flags.has('--no-write') ? 'not written (--no-write)' : `wrote ${DOC}`}; raw samples in ${RAW}`);
  console.log(
    markdown
      .split('\n')
      .filter((line) => line.startsWith('| ') && /PASS|FAIL/.test(line))
      .join('\n'),
  );
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`bench: ${signal}: cleaning up`);
    void cleanupAll().then(() => process.exit(130));
  });
}

let code = 0;
try {
  await main();
} catch (error) {
  console.error(`bench: ${error.stack ?? error.message}`);
  code = 1;
} finally {
  await cleanupAll();
}
process.exit(code);
