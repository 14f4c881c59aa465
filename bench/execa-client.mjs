// Direct baselines for the invoke round trip: run the driver N times with execa and print
// {"samples": per-iteration microseconds, "cpu_us": this process's CPU per iteration (all threads,
// the driver processes not included)}. No FUSE, no daemon.
//   node bench/execa-client.mjs [--spawner] [--persistent] [--args JSON] <executable> <payload-file> <n> <warmup>
// Default: runDriver() in this process (the spawner's execa call with its options: no shell, own
// process group, stdin = payload). --spawner: the same through DriverSpawner, i.e. a forked
// spawner process and its IPC, as the daemon does it, which splits the cost of that hop from FUSE's.
// --persistent: runtime.mode "persistent", one long-lived driver answering JSON lines
// (PersistentDriver in this process with the driver as its child, or with --spawner the driver
// started by the spawner and answering over its socket to this process, as in the daemon). --args: the driver's argv
// after the executable, as a JSON array.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { DriverSpawner } from '../dist/runtime/driver-spawner.js';
import { PersistentDriver } from '../dist/runtime/persistent-driver.js';
import { runDriver } from '../dist/runtime/run-driver.js';

const args = process.argv.slice(2);
const flags = new Set();
let driverArgs = [];
while (args[0]?.startsWith('--')) {
  const flag = args.shift();
  if (flag === '--args') driverArgs = JSON.parse(args.shift());
  else flags.add(flag);
}
const viaSpawner = flags.has('--spawner');
const persistent = flags.has('--persistent');
const [file, payloadFile, n, warmup] = args;
const payload = await readFile(payloadFile);
const spec = {
  file,
  args: driverArgs,
  cwd: tmpdir(),
  env: { ...process.env },
  invocationId: 'bench',
  // Persistent: the payload as one line of compact JSON, as the node's adapter gives it to PersistentDriver.
  input: persistent ? Buffer.from(JSON.stringify(JSON.parse(payload.toString('utf8')))) : payload,
  timeoutMs: 30_000,
  killGraceMs: 2_000,
  maxOutputBytes: 1 << 20,
  ...(persistent ? { persistentKey: 'bench' } : {}),
};
const spawner = viaSpawner ? await DriverSpawner.start(pino({ level: 'silent' }), `bench-${process.pid}`) : undefined;
const local = persistent && !spawner ? new PersistentDriver(spec) : undefined;
const run = spawner ? () => spawner.run(spec) : local ? () => local.run(spec) : () => runDriver(spec);
const samples = [];
const cpuStart = process.cpuUsage();
try {
  for (let i = 0; i < Number(warmup) + Number(n); i++) {
    const start = process.hrtime.bigint();
    const result = await run();
    const elapsed = Number(process.hrtime.bigint() - start) / 1000;
    if (result.state !== 'ok' || !result.stdout.equals(payload)) {
      process.stderr.write(`${file}: ${result.shortMessage}; stdout ${JSON.stringify(result.stdout.toString().slice(0, 80))}\n`);
      process.exitCode = 1;
      break;
    }
    if (i >= Number(warmup)) samples.push(elapsed);
  }
} finally {
  await local?.stop('benchmark done');
  await spawner?.close();
}
const cpu = process.cpuUsage(cpuStart);
const iterations = Number(warmup) + Number(n);
if (process.exitCode !== 1) process.stdout.write(JSON.stringify({ samples, cpu_us: (cpu.user + cpu.system) / iterations }));
