// Direct baselines for the invoke round trip: run the driver N times with execa and print
// {"samples": per-iteration microseconds, "cpu_us": this process's CPU per iteration (all threads,
// the driver processes not included)}. No FUSE, no daemon.
//   node bench/execa-client.mjs [--spawner] <executable> <payload-file> <n> <warmup>
// Default: runDriver() in this process (the spawner's execa call with its options: no shell, own
// process group, stdin = payload). --spawner: the same through DriverSpawner, i.e. a forked
// spawner process and its IPC, as the daemon does it, which splits the cost of that hop from FUSE's.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { DriverSpawner } from '../dist/runtime/driver-spawner.js';
import { runDriver } from '../dist/runtime/run-driver.js';

const args = process.argv.slice(2);
const viaSpawner = args[0] === '--spawner';
const [file, payloadFile, n, warmup] = viaSpawner ? args.slice(1) : args;
const input = await readFile(payloadFile);
const spec = {
  file, args: [], cwd: tmpdir(), env: process.env, input,
  timeoutMs: 30_000, killGraceMs: 2_000, maxOutputBytes: 1 << 20,
};
const spawner = viaSpawner ? await DriverSpawner.start(pino({ level: 'silent' })) : undefined;
const run = spawner ? () => spawner.run(spec) : () => runDriver(spec);
const samples = [];
const cpuStart = process.cpuUsage();
try {
  for (let i = 0; i < Number(warmup) + Number(n); i++) {
    const start = process.hrtime.bigint();
    const result = await run();
    const elapsed = Number(process.hrtime.bigint() - start) / 1000;
    if (result.state !== 'ok' || !result.stdout.equals(input)) {
      process.stderr.write(`${file}: ${result.shortMessage}; stdout ${JSON.stringify(result.stdout.toString().slice(0, 80))}\n`);
      process.exitCode = 1;
      break;
    }
    if (i >= Number(warmup)) samples.push(elapsed);
  }
} finally {
  await spawner?.close();
}
const cpu = process.cpuUsage(cpuStart);
const iterations = Number(warmup) + Number(n);
if (process.exitCode !== 1) process.stdout.write(JSON.stringify({ samples, cpu_us: (cpu.user + cpu.system) / iterations }));
