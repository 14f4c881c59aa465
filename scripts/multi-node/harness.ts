// The checks of the multi-node runtime harness, run by scripts/acheron-multi-node-runtime.sh (never
// directly: the script makes the network namespaces, runs this inside the control server's, and
// removes everything afterwards). Options come from the environment (docs/MULTI_NODE_RUNTIME_HARNESS.md).
// Prints one line per check (`ok`, `skip` or `FAIL`, its name, what it saw), then
// `multi-node runtime harness passed`, or the failures and exit code 1.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CHECKS, DEFAULT_CHECKS, Skip, type CheckOptions } from './checks.js';
import { ExistingFleet, OwnFleet, type Cleanups, type Fleet } from './fleet.js';

const env = process.env;
const list = (text: string | undefined): string[] => (text ?? '').split(/[\s,]+/).filter(Boolean);

/** A positive integer from the environment, or exit 2 naming the variable. */
function integer(name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) usage(`${name}=${raw}: expected an integer of at least ${min}`);
  return n;
}

function usage(message: string): never {
  console.error(`multi-node runtime harness: ${message}`);
  process.exit(2);
}

const runDir = env.HARNESS_RUN_DIR ?? usage('HARNESS_RUN_DIR is not set: run scripts/acheron-multi-node-runtime.sh, not this file');
const isOwn = env.HARNESS_MODE === 'own';
const checkNames = list(env.HARNESS_CHECKS).length > 0 ? list(env.HARNESS_CHECKS) : DEFAULT_CHECKS;
for (const name of checkNames) if (!(name in CHECKS)) usage(`HARNESS_CHECKS: no check ${name} (${Object.keys(CHECKS).join(', ')})`);
const timeoutMs = integer('HARNESS_TIMEOUT_SEC', 60) * 1000;
const expectedServices = list(env.EXPECTED_SERVICES).length > 0 ? list(env.EXPECTED_SERVICES) : isOwn ? ['echo', 'where', 'slow'] : ['echo'];
const options: CheckOptions = {
  runId: basename(runDir),
  expectedServices,
  invokeService: env.INVOKE_SERVICE_ID || (isOwn ? 'where' : (expectedServices[0] as string)),
  timeoutMs,
  reconnectNodeId: env.RECONNECT_NODE_ID || undefined,
  reconnectTimeoutMs: integer('RECONNECT_TIMEOUT_SEC', 120) * 1000,
  persistenceNodeId: env.PERSISTENCE_NODE_ID || undefined,
  persistenceServiceId: env.PERSISTENCE_SERVICE_ID || (expectedServices[0] as string),
  flap: { count: integer('FLAP_COUNT', 10), downMs: integer('FLAP_DOWN_MS', 1000), upMs: integer('FLAP_UP_MS', 300) },
  timing: { rounds: integer('HARNESS_TIMING_ROUNDS', 10), resultFile: env.HARNESS_RESULT_FILE || undefined },
};
const timing = {
  pingIntervalMs: integer('HARNESS_PING_INTERVAL_MS', 500, 50),
  offlineGraceMs: integer('HARNESS_OFFLINE_GRACE_MS', 1500),
  leaseTtlMs: integer('HARNESS_LEASE_TTL_MS', 9000, 3000),
};

const cleanups: Cleanups = [];
let cleaning: Promise<void> | undefined;
/** Stops what started, newest first; a signal and the normal end may both ask. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) await (cleanups.pop() as () => Promise<unknown>)().catch((error: Error) => console.error(`# cleanup: ${error.message}`));
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`# ${signal}: stopping the fleet`);
    void cleanup().then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

async function startFleet(): Promise<Fleet> {
  const startedMs = Date.now();
  if (isOwn) {
    const fleet = await OwnFleet.start(runDir, timing, cleanups);
    // Defaults that need the fleet: the first node is restarted, another one partitioned.
    options.persistenceNodeId ??= fleet.nodeIds[0];
    console.log(
      `# own fleet (up in ${((Date.now() - startedMs) / 1000).toFixed(1)} s): control server and ${fleet.nodeIds.length} node(s) (${fleet.nodeIds.join(', ')}) in network namespaces; ping ${timing.pingIntervalMs} ms, offline grace ${timing.offlineGraceMs} ms, lease ${timing.leaseTtlMs} ms`,
    );
    return fleet;
  }
  const url = env.ACHERON_CONTROL_URL as string;
  const token = env.ACHERON_TOKEN || (await readFile(env.ACHERON_TOKEN_FILE as string, 'utf8')).trim();
  const fleet = await ExistingFleet.connect(runDir, url, token, list(env.EXPECTED_NODES), cleanups);
  console.log(`# running fleet at ${url}: ${fleet.nodeIds.length} node(s) (${fleet.nodeIds.join(', ') || 'none online'})`);
  return fleet;
}

let failed = 0;
try {
  const fleet = await startFleet();
  for (const name of checkNames) {
    const check = CHECKS[name] as (typeof CHECKS)[string];
    const started = Date.now();
    const took = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    try {
      const detail = await check(fleet, options);
      console.log(`ok ${name} (${took()}): ${detail}`);
    } catch (error) {
      if (error instanceof Skip) console.log(`skip ${name}: ${error.message}`);
      else {
        failed++;
        console.log(`FAIL ${name} (${took()}): ${(error as Error).message}`);
      }
    }
  }
} catch (error) {
  failed++;
  console.log(`FAIL fleet: ${(error as Error).message}`);
} finally {
  await cleanup();
}
const logs = env.HARNESS_KEEP ? `the logs are in ${runDir}` : 'HARNESS_KEEP=1 keeps the logs';
console.log(failed === 0 ? 'multi-node runtime harness passed' : `multi-node runtime harness failed: ${failed} check(s) failed (${logs})`);
process.exit(failed === 0 ? 0 : 1);
