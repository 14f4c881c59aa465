// SPEC §4, §5, §11 under repeated crashes: kill -9 of the node daemon, of its driver spawner, or of
// both at once, at random moments while slow drivers (which fork a child) are being started, run,
// timed out and restarted, spawn-mode and persistent. After each kill no process of any driver may
// remain (found by a marker in their environment), and after each restart every invocation whose
// writer's close() returned is in jobs/ (--state-sync always).
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, REPO, startNode, type RunningNode } from '../helpers/node.js';
import { alive, q, sh, waitFor, watchdog } from '../helpers/process.js';
import { prng, reliabilityScale, testSeed } from '../helpers/random.js';

/** New cycles start only within this budget; a cycle takes 5–20 s on a busy machine. */
const BUDGET_MS = 35_000 * reliabilityScale();
/** How long the drivers of a killed node may take to die (the spawner's grace, a restart's sweep). */
const CLEANUP_BOUND_MS = 15_000;

// Deterministic per run, different per run: the seed is printed so a failure can be replayed.
const seed = testSeed();
const random = prng(seed);
const between = (min: number, max: number): number => Math.round(min + random() * (max - min));

const mark = `reliability-kill-${process.pid}-${seed}`;
const env = { RELIABILITY_MARK: mark };
const PERSISTENT = join(REPO, 'test', 'fixtures', 'drivers', 'persistent-hang');
const manifests = [
  // Forks a child and runs far past its timeout: each run is started, timed out and killed.
  manifest('slow', '/bin/sh', {
    runtime: { args: ['-c', 'sleep 30 & cat > /dev/null; wait'], env, timeout_ms: 700, kill_grace_ms: 200, max_concurrency: 4, max_queue: 64 },
  }),
  // One long-lived driver with a forked child; a request that hangs restarts it (a new launch).
  manifest('steady', '/bin/sh', {
    runtime: { args: ['-c', `sleep 30 & exec python3 ${q(PERSISTENT)}`], env, mode: 'persistent', timeout_ms: 700, kill_grace_ms: 200, max_concurrency: 4 },
  }),
  // Fast: these are the acknowledged invocations that must survive every kill.
  manifest('quick', 'echo', { runtime: { env, jobs_keep: 10_000 } }),
];

/** Processes whose environment carries the marker (drivers and their children), alive ones only. */
async function markedProcesses(): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(`RELIABILITY_MARK=${mark}`) && (await alive(Number(entry)))) found.push(Number(entry));
  }
  return found;
}

/** What a leftover process is, for the failure message. */
async function describe(pids: number[]): Promise<string> {
  const lines = await Promise.all(
    pids.map(async (pid) => {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim();
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      const owner = (await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')).split('\0').find((v) => v.startsWith('ACHERON_DRIVER_OWNER='));
      return `${pid} [${stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .slice(0, 5)
        .join(' ')}] ${cmdline} ${owner ?? 'no owner'}`;
    }),
  );
  return lines.join('; ');
}

/** The daemon's spawner: its child running spawner-main.js. */
async function spawnerOf(node: RunningNode): Promise<number> {
  return waitFor(
    async () => {
      for (const entry of await readdir('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== node.child.pid) continue;
        const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes('spawner-main.js')) return Number(entry);
      }
      return undefined;
    },
    { what: 'the driver spawner' },
  );
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writers that never stop: each loops over invocations of one service, through whichever daemon
 * serves the mount now. A quick invocation whose /bin/echo exited 0 (its close() returned) is
 * acknowledged: its nonce is appended to `acked`.
 */
function startWriters(dir: string, mount: string): () => void {
  const acked = join(dir, 'acked');
  const invoke = (id: string): string => q(join(mount, 'services', id, 'control/invoke.json'));
  const loops = [
    `while :; do /bin/echo '{"x":1}' > ${invoke('slow')} 2>/dev/null || sleep 0.1; done`,
    `while :; do /bin/echo '{"x":1}' > ${invoke('slow')} 2>/dev/null || sleep 0.1; done`,
    `while :; do /bin/echo '{"sleep_ms":50}' > ${invoke('steady')} 2>/dev/null || sleep 0.1; done`,
    `while :; do /bin/echo '{"hang":true}' > ${invoke('steady')} 2>/dev/null || sleep 0.1; done`,
    ...['a', 'b'].map(
      (w) =>
        `i=0; while :; do i=$((i+1)); if /bin/echo "{\\"n\\":\\"${w}-$i\\"}" > ${invoke('quick')} 2>/dev/null; then echo ${w}-$i >> ${q(acked)}; sleep 0.05; else sleep 0.1; fi; done`,
    ),
  ];
  const children = loops.map((loop) => spawn('bash', ['-c', loop], { stdio: 'ignore', detached: true, cwd: '/' }));
  // The loops never end by themselves: killed with this test process too, also when it is killed.
  for (const child of children) watchdog(child.pid as number);
  return () => {
    for (const child of children) {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
}

async function ackedCount(node: RunningNode): Promise<number> {
  return (await readFile(join(node.dir, 'acked'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

/** Nonces acknowledged so far that the jobs/ of `node` does not have. */
async function lostAcknowledged(node: RunningNode): Promise<string[]> {
  const acked = (await readFile(join(node.dir, 'acked'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const jobs = await sh(`cat ${q(join(node.service('quick'), 'jobs'))}/*/request.json`, { timeoutMs: 30_000 });
  const seen = new Set([...jobs.stdout.matchAll(/"n":"([^"]+)"/g)].map((m) => m[1]));
  return acked.filter((n) => !seen.has(n));
}

t.test('kill -9 of the daemon and of its spawner at random moments: no driver survives, nothing acknowledged is lost', async (tt) => {
  tt.comment(`seed ${seed} (ACHERON_TEST_SEED=${seed} replays the same moments)`);
  let node = await startNode(tt, { manifests, args: ['--state-sync', 'always'] });
  const stopWriters = startWriters(node.dir, node.mount);
  tt.teardown(stopWriters);
  tt.teardown(async () => {
    for (const pid of await markedProcesses()) process.kill(pid, 'SIGKILL');
  });
  const started = Date.now();
  let daemonKills = 0;
  let spawnerKills = 0;
  let leftovers = 0;
  let lost = 0;
  let cycles = 0;
  // Each kind in turn, at a random moment; a lone spawner kill leaves the daemon serving.
  const kinds = ['daemon', 'spawner', 'both', 'daemon'] as const;
  while (Date.now() - started < BUDGET_MS) {
    const kind = kinds[cycles % kinds.length] as (typeof kinds)[number];
    cycles++;
    // On a busy machine a start can take seconds: let this daemon serve some invocations first.
    const ackedBefore = await ackedCount(node);
    await waitFor(async () => (await ackedCount(node)) > ackedBefore, { timeoutMs: 10_000, what: 'an invocation on the new daemon' }).catch(() => undefined);
    await sleep(between(0, 1500));
    const daemonPid = node.child.pid as number;
    if (kind === 'daemon') {
      process.kill(daemonPid, 'SIGKILL');
      daemonKills++;
    } else {
      const spawner = await spawnerOf(node);
      process.kill(spawner, 'SIGKILL');
      spawnerKills++;
      if (kind === 'both') {
        await sleep(between(0, 30));
        process.kill(daemonPid, 'SIGKILL');
        daemonKills++;
      }
    }
    // A lone spawner kill leaves the daemon serving: it must kill the drivers itself.
    if (kind !== 'both') {
      const gone = await waitFor(async () => (await markedProcesses()).length === 0, {
        timeoutMs: CLEANUP_BOUND_MS,
        what: `drivers to die after a ${kind} kill`,
      }).catch(() => false);
      if (gone === false) {
        const remaining = await markedProcesses();
        leftovers += remaining.length;
        tt.fail(`cycle ${cycles}: ${remaining.length} driver processes outlived a ${kind} kill: ${await describe(remaining)}`);
        for (const pid of remaining) process.kill(pid, 'SIGKILL');
      }
    }
    if (kind === 'spawner') {
      process.kill(daemonPid, 'SIGKILL');
      daemonKills++;
    }
    await node.exited;
    node = await node.restart();
    // After both died at once, only the next start can clean up.
    if (kind === 'both') {
      const gone = await waitFor(async () => (await markedProcesses()).length === 0, {
        timeoutMs: CLEANUP_BOUND_MS,
        what: 'drivers of the dead node to die',
      }).catch(() => false);
      if (gone === false) {
        const remaining = await markedProcesses();
        leftovers += remaining.length;
        tt.fail(`cycle ${cycles}: ${remaining.length} driver processes outlived a kill of daemon and spawner and the restart: ${await describe(remaining)}`);
        for (const pid of remaining) process.kill(pid, 'SIGKILL');
      }
    }
    const missing = await lostAcknowledged(node);
    lost += missing.length;
    if (missing.length > 0) tt.fail(`cycle ${cycles}: acknowledged invocations missing from jobs/ after a ${kind} kill: ${missing.join(', ')}`);
  }
  stopWriters();
  const acked = await ackedCount(node);
  tt.ok(acked > 0, `${acked} quick invocations were acknowledged`);
  tt.ok(daemonKills > 0 && spawnerKills > 0, 'both kinds of kill happened');
  tt.equal(leftovers, 0, 'no driver process outlived a kill');
  tt.equal(lost, 0, 'no acknowledged invocation was lost');
  tt.comment(
    `node daemon kills: ${daemonKills}, spawner kills: ${spawnerKills}, leftover driver processes: ${leftovers}, acknowledged invocations: ${acked}, lost: ${lost}`,
  );
});
