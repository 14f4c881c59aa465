import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { EtcdConnection } from '../../src/control/etcd/connection.js';
import { ETCD_DEFAULTS, type EtcdOptions } from '../../src/control/etcd/options.js';
import { acheron, freePort, type TestStore } from './control.js';
import type { Exit, Teardown } from './node.js';
import { waitFor, watchdog } from './process.js';

/** One etcd member (Debian etcd-server) on loopback ports, in its own process group. */
export interface EtcdMember {
  name: string;
  /** http://127.0.0.1:<client port> */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logFile: string;
  readonly isRunning: boolean;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<Exit>;
  /** SIGTERM (a leader hands leadership over first), then waits for the exit. */
  stop(): Promise<Exit>;
  /** Starts it again on the same ports and data dir (no-op when it runs); does not wait for health. */
  start(): void;
  /** SIGSTOP / SIGCONT: a member that hangs with its sockets open. */
  pause(): void;
  resume(): void;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Every member's client URL, for `--etcd-endpoints` (comma-joined) or an etcd3 client. */
  endpoints: string[];
  /** Waits until every running member answers /health with a leader. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** The member the running members agree is the leader (waits for one). */
  leader(timeoutMs?: number): Promise<EtcdMember>;
  /** Kills every member (SIGKILL); teardown does it too. */
  stopAll(): Promise<void>;
}

interface MemberStatus {
  header: { member_id: string };
  leader: string;
}

/** What the member's HTTP gateway says about itself (ids as exact decimal strings), or undefined. */
async function status(member: EtcdMember): Promise<MemberStatus | undefined> {
  if (!member.isRunning) return undefined;
  try {
    const response = await fetch(`${member.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2_000) });
    return response.ok ? ((await response.json()) as MemberStatus) : undefined;
  } catch {
    return undefined;
  }
}

async function healthy(member: EtcdMember): Promise<boolean> {
  try {
    const response = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(2_000) });
    return response.ok && ((await response.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * Starts `members` etcd members (1 or 3) on free loopback ports, each in a temp dir, with one
 * shared cluster token, and waits until all are healthy. Teardown, registered before the first
 * start, SIGKILLs every member and removes the dirs, also when the test failed.
 */
export async function startEtcd(t: Teardown, options: { members?: number } = {}): Promise<EtcdCluster> {
  const count = options.members ?? 1;
  const dir = await mkdtemp(join(tmpdir(), 'acheron-etcd-'));
  const members: EtcdMember[] = [];
  t.teardown(async () => {
    await Promise.all(members.map((m) => m.kill9()));
    await rm(dir, { recursive: true, force: true });
  });
  // Distinct: a port released by freePort can come back at once ("initial cluster … has duplicate url").
  const taken = new Set<number>();
  const distinctPort = async (): Promise<number> => {
    let port = await freePort();
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    return port;
  };
  const ports = [];
  for (let i = 0; i < count; i++) ports.push({ client: await distinctPort(), peer: await distinctPort() });
  const initialCluster = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  // One token for the whole cluster: a token per member gives "cluster ID mismatch" and no quorum.
  const clusterToken = `acheron-test-${randomBytes(4).toString('hex')}`;
  for (const [i, p] of ports.entries()) {
    const name = `m${i + 1}`;
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const dataDir = join(dir, name);
    const args = [
      '--name',
      name,
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-token',
      clusterToken,
      '--initial-cluster-state',
      'new',
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
    ];
    members.push(member(name, clientUrl, peerUrl, dataDir, join(dir, `${name}.log`), args));
  }
  for (const m of members) m.start();
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    waitHealthy: async (timeoutMs = 30_000) => {
      await waitFor(
        async () => {
          if (spawnError) throw new Error(`etcd did not start (is etcd-server installed? make system-deps): ${spawnError.message}`);
          const running = members.filter((m) => m.isRunning);
          return running.length > 0 && (await Promise.all(running.map(healthy))).every(Boolean);
        },
        { what: 'every running etcd member healthy', timeoutMs, intervalMs: 50 },
      );
    },
    // 60 s: on a loaded 2-core machine an election after a SIGKILL has taken over 30 s.
    leader: (timeoutMs = 60_000) =>
      waitFor(
        async () => {
          const running = members.filter((m) => m.isRunning);
          const seen = await Promise.all(running.map(status));
          const at = seen.findIndex((s) => s !== undefined && s.header.member_id === s.leader);
          if (at >= 0 && seen.every((s) => s?.leader === seen[at]?.leader)) return running[at] as EtcdMember;
          // Thrown, not returned: waitFor's timeout error then says what the members last answered.
          throw new Error(`members answered: ${running.map((m, i) => `${m.name} → leader ${seen[i]?.leader ?? 'no answer'}`).join(', ')}`);
        },
        { what: 'an etcd leader all running members agree on', timeoutMs, intervalMs: 50 },
      ),
    stopAll: async () => void (await Promise.all(members.map((m) => m.kill9()))),
  };
  try {
    await cluster.waitHealthy();
  } catch (error) {
    // Cleaned up here as well: a test's top-level await that throws never reaches its teardowns.
    const logs = await Promise.all(members.map(async (m) => `${m.name}: ${(await readFile(m.logFile, 'utf8').catch(() => '')).slice(-600)}`));
    await Promise.all(members.map((m) => m.kill9()));
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\nmember logs (last lines):\n${logs.join('\n')}`);
  }
  return cluster;
}

/** Set when `etcd` could not be started at all (not installed: `make system-deps`). */
let spawnError: Error | undefined;

function member(name: string, clientUrl: string, peerUrl: string, dataDir: string, logFile: string, args: string[]): EtcdMember {
  let child: ChildProcess | undefined;
  let exited: Promise<Exit> = Promise.resolve({ code: null, signal: null });
  let gone = true;
  const signal = async (which: NodeJS.Signals): Promise<Exit> => {
    if (child && !gone) {
      try {
        process.kill(-(child.pid as number), which);
      } catch {
        // already gone
      }
    }
    return exited;
  };
  return {
    name,
    clientUrl,
    peerUrl,
    dataDir,
    logFile,
    get isRunning() {
      return !gone;
    },
    kill9: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
    pause: () => void signal('SIGSTOP'),
    resume: () => void signal('SIGCONT'),
    start() {
      if (this.isRunning) return;
      // Appended across restarts; a synchronous open so the member exists when start() returns.
      const log = openSync(logFile, 'a');
      const proc = spawn('etcd', args, { stdio: ['ignore', 'ignore', log], detached: true });
      watchdog(proc.pid as number);
      closeSync(log);
      child = proc;
      gone = false;
      exited = new Promise<Exit>((resolve) => {
        proc.once('exit', (code, sig) => {
          gone = true;
          resolve({ code, signal: sig });
        });
        proc.once('error', (error) => {
          gone = true;
          spawnError = error;
          resolve({ code: null, signal: null });
        });
      });
    },
  };
}

/** A member's Prometheus gauge (e.g. etcd_debugging_mvcc_watch_stream_total), or undefined when it does not answer. */
export async function memberGauge(member: EtcdMember, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${member.clientUrl}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  } catch {
    return undefined;
  }
}

/** An EtcdConnection with Acheron's settings (overridable) and a silent logger, closed at teardown. */
export async function openEtcd(t: Teardown, endpoints: readonly string[], overrides: Partial<EtcdOptions> = {}): Promise<EtcdConnection> {
  const connection = await EtcdConnection.open(
    { endpoints: [...endpoints], prefix: '/acheron-test/', callTimeoutMs: ETCD_DEFAULTS.callTimeoutMs, startTimeoutMs: 10_000, ...overrides },
    pino({ level: 'silent' }),
  );
  t.teardown(() => connection.close());
  return connection;
}

/**
 * The etcd store of a cluster for `acheron control`/`acheron token` (its own key prefix), with a
 * first admin and user token made by `acheron token rotate` (etcd keeps no secrets to list).
 */
export async function etcdStore(cluster: EtcdCluster, prefix = `/acheron-${randomBytes(3).toString('hex')}/`): Promise<TestStore> {
  const args = ['--store', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', prefix];
  const secret = async (which: string): Promise<string> => {
    const r = await acheron(['token', 'rotate', which, ...args, '--json']);
    if (r.code !== 0) throw new Error(`acheron token rotate ${which}: ${r.stderr.trim()}`);
    return (JSON.parse(r.stdout) as { token: string }).token;
  };
  const [adminToken, userToken] = await Promise.all([secret('admin'), secret('user')]);
  return { args, adminToken, userToken };
}
