// Partition detection and recovery (issue 13): the multi-node runtime harness's own fleet, a control
// server and one node in network namespaces of their own joined by a veth pair; the node's link goes
// down (a silent link: `ip link set down`, no FIN, no RST) and up again, round after round. Detection:
// link down → the `offline` event at a watcher; recovery: link up → the `online` event. Timed by the
// harness's `partition-timing` check (scripts/multi-node/checks.ts), which writes its samples here.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { summarize } from './stats.mjs';
import { REPO, ctx, exec, log } from './harness.mjs';

/** The server's settings for the run: the harness's defaults (SPEC's are 10 s pings and 15 s grace). */
export const PARTITION = { pingIntervalMs: 500, offlineGraceMs: 1500, leaseTtlMs: 9000 };
/** The server's lease check runs once a second (src/control/control-server.ts). */
const HOUSEKEEPING_MS = 1000;

/**
 * Where detection must land: the tunnel is dropped at the third ping tick after the link went down
 * (two missed pongs), i.e. 2–3 ping intervals; the node turns offline at the first lease check once
 * the grace period is over. (Its lease, refreshed every third of the TTL, could lapse only later.)
 */
export function detectionWindowMs({ pingIntervalMs, offlineGraceMs }) {
  return { min: 2 * pingIntervalMs + offlineGraceMs, max: 3 * pingIntervalMs + offlineGraceMs + HOUSEKEEPING_MS };
}

export async function benchPartition() {
  const rounds = ctx.quick ? 4 : 10;
  const resultFile = join(ctx.work, 'partition.json');
  log(`partition: ${rounds} rounds of link down / up (ping ${PARTITION.pingIntervalMs} ms, grace ${PARTITION.offlineGraceMs} ms)`);
  const env = [
    'HARNESS_NODES=1',
    'HARNESS_CHECKS=partition-timing',
    `HARNESS_TIMING_ROUNDS=${rounds}`,
    `HARNESS_RESULT_FILE=${resultFile}`,
    `HARNESS_PING_INTERVAL_MS=${PARTITION.pingIntervalMs}`,
    `HARNESS_OFFLINE_GRACE_MS=${PARTITION.offlineGraceMs}`,
    `HARNESS_LEASE_TTL_MS=${PARTITION.leaseTtlMs}`,
  ];
  const r = await exec('env', [...env, 'bash', join(REPO, 'scripts', 'acheron-multi-node-runtime.sh')], { timeoutMs: 600_000 });
  if (r.code !== 0) {
    // A machine without root or network namespaces cannot run it: said in the results, not a failed bench.
    const reason = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => /cannot run|FAIL/.test(l)) ?? `exit ${r.code ?? r.signal}`;
    log(`partition: not measured: ${reason}`);
    return { skipped: reason.trim() };
  }
  const samples = JSON.parse(await readFile(resultFile, 'utf8'));
  return {
    rounds,
    settings: PARTITION,
    detectionMs: samples.detection_ms,
    recoveryMs: samples.recovery_ms,
    line: r.stdout.split('\n').find((l) => l.startsWith('ok partition-timing')),
  };
}

const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

function summaries(result) {
  return { detection: summarize(result.detectionMs), recovery: summarize(result.recoveryMs), window: detectionWindowMs(result.settings) };
}

export function summaryPartition(result) {
  if (result.skipped)
    return [{ label: 'Partition: link down → `offline` event', measured: '—', target: '— (reported)', result: `not measured: ${result.skipped}` }];
  const { detection, recovery, window } = summaries(result);
  const inside = detection.median >= window.min && detection.median <= window.max;
  const { pingIntervalMs: ping, offlineGraceMs: grace } = result.settings;
  return [
    {
      label: `Partition: link down → \`offline\` event at a watcher, median of ${detection.n} (ping ${ping} ms, grace ${grace} ms)`,
      measured: seconds(detection.median),
      target: `— (reported; the model: ${seconds(window.min)}–${seconds(window.max)})`,
      result: inside ? 'within the model' : 'outside the model',
    },
    { label: `Partition: link up → \`online\` event, median of ${recovery.n}`, measured: seconds(recovery.median), target: '— (reported)', result: '—' },
  ];
}

export function renderPartition(result, line) {
  if (result.skipped) {
    line(`Not measured: ${result.skipped}. It needs root, iproute2 and network namespaces (docs/MULTI_NODE_RUNTIME_HARNESS.md).`);
    return;
  }
  const { detection, recovery, window } = summaries(result);
  const { pingIntervalMs: ping, offlineGraceMs: grace, leaseTtlMs: lease } = result.settings;
  const max = (xs) => Math.max(...xs);
  line(
    `The harness's own fleet (\`scripts/acheron-multi-node-runtime.sh\`, check \`partition-timing\`): a control server and one node, each in a network namespace of its own, joined by a veth pair; ` +
      `the server runs with \`--ping-interval-ms ${ping} --offline-grace-ms ${grace} --lease-ttl-ms ${lease}\`, the node with \`--reconnect-backoff-ms 200\`. ` +
      `${result.rounds} rounds: the node's link goes down (\`ip link set down\`: a silent link), the watcher's \`offline\` event is awaited, the link comes back up, the \`online\` event is awaited.`,
  );
  line();
  line('| phase | n | median | p90 | max | what bounds it |');
  line('|---|---|---|---|---|---|');
  line(
    `| link down → \`offline\` event | ${detection.n} | ${seconds(detection.median)} | ${seconds(detection.p90)} | ${seconds(max(result.detectionMs))} | 2–3 ping intervals (two missed pongs) + the grace period + up to 1 s to the next lease check: ${seconds(window.min)}–${seconds(window.max)} |`,
  );
  line(
    `| link up → \`online\` event | ${recovery.n} | ${seconds(recovery.median)} | ${seconds(recovery.p90)} | ${seconds(max(result.recoveryMs))} | the node's next TCP retransmission on its dead connection (the server's RST ends it), then its reconnect (100–300 ms backoff), handshake and upsert |`,
  );
  line();
  line(
    `With the server's defaults (pings every 10 s, grace 15 s) the same model gives ${seconds(detectionWindowMs({ pingIntervalMs: 10_000, offlineGraceMs: 15_000 }).min)}–${seconds(detectionWindowMs({ pingIntervalMs: 10_000, offlineGraceMs: 15_000 }).max)} from link down to \`offline\` (computed, not measured); recovery does not depend on them.`,
  );
  line();
}
