// What sections 5 (persistent) and 9 (wasm) share: one node per state-sync mode, throughput runs of
// parallel O_RDWR clients with the daemon's and the spawner's CPU counted, and the counters read back.
import { join } from 'node:path';
import { CLIENT, childrenOf, cpuUsOf, ctx, log, mustExec, runRounds, startNode } from './harness.mjs';

/** One node per state-sync mode on `servicesDir`, each with its spawner's pid. */
export async function startModeNodes(name, servicesDir, modes) {
  const nodes = [];
  for (const mode of modes) {
    const node = await startNode(`${name}-${mode}`, { servicesDir, args: ['--state-sync', mode] });
    const [spawner] = await childrenOf(node.pid);
    if (spawner === undefined) throw new Error(`${node.name}: no driver spawner process found`);
    nodes.push({ mode, node, spawner });
  }
  return nodes;
}

/**
 * A throughput variant: `throughput.clients` processes start together at a wall-clock instant and
 * loop O_RDWR transactions on `invokeFile` for `throughput.seconds`; the daemon's and the spawner's
 * CPU over the run go to `cpu[key]`. `clientArgs` are appended to client.py's arguments.
 */
function throughputVariant({ key, node, spawner, invokeFile, payloadFile, throughput, cpu, clientArgs = [] }) {
  return {
    key,
    run: async () => {
      const startAt = (Date.now() + throughput.startDelayMs) / 1000;
      const before = [await cpuUsOf(node.pid), await cpuUsOf(spawner)];
      const outputs = await Promise.all(
        Array.from({ length: throughput.clients }, () =>
          mustExec(ctx.python, [CLIENT, 'rdwr-until', invokeFile, payloadFile, String(startAt), String(throughput.seconds), ...clientArgs]),
        ),
      );
      const after = [await cpuUsOf(node.pid), await cpuUsOf(spawner)];
      const printed = outputs.map((text) => JSON.parse(text));
      const count = printed.reduce((sum, p) => sum + p.count, 0);
      const entry = (cpu[key] ??= { daemonUs: 0, spawnerUs: 0, invocations: 0 });
      // The CPU window is a little wider than the measured one (start-up, the last transaction).
      entry.daemonUs += after[0] - before[0];
      entry.spawnerUs += after[1] - before[1];
      entry.invocations += count;
      return [{ count, perSecond: count / throughput.seconds, samples: printed.flatMap((p) => p.samples) }];
    },
  };
}

/** Microseconds of daemon and spawner CPU per finished transaction, per variant. */
function cpuPerInvocationOf(cpu) {
  return Object.fromEntries(Object.entries(cpu).map(([key, c]) => [key, { daemonUs: c.daemonUs / c.invocations, spawnerUs: c.spawnerUs / c.invocations }]));
}

/** Invocations per second over every round of a variant. */
export function throughputOf(result, key) {
  const runs = result.throughput[key];
  const count = runs.reduce((sum, r) => sum + r.count, 0);
  return { perSecond: count / (runs.length * result.config.throughput.seconds), runs };
}

/** Stops the nodes after reading each service's invocation and failure counters: `services` maps a kind to its service id. */
async function stopWithCounters(nodes, services) {
  const modes = [];
  for (const { mode, node } of nodes) {
    const metrics = {};
    for (const [kind, id] of Object.entries(services)) metrics[kind] = JSON.parse(await mustExec('cat', [join(node.service(id), 'metrics.json')]));
    await node.stop();
    modes.push({
      mode,
      invokesTotal: Object.fromEntries(Object.entries(metrics).map(([k, m]) => [k, m.invokes_total])),
      failuresTotal: Object.fromEntries(Object.entries(metrics).map(([k, m]) => [k, m.failures_total])),
    });
  }
  return modes;
}

/**
 * The throughput rounds of every driver on every node (variant keys `<mode>/<driver.kind>`), then the
 * nodes stopped with their counters. `invokeFile(node, driver)` names the file the clients use,
 * `clientArgs(driver)` what client.py gets after its arguments.
 */
export async function throughputThenStop({ what, nodes, drivers, invokeFile, clientArgs = (/** @type {unknown} */ _driver) => [], payloadFile, throughput }) {
  const cpu = {};
  const variants = nodes.flatMap(({ mode, node, spawner }) =>
    drivers.map((driver) =>
      throughputVariant({
        key: `${mode}/${driver.kind}`,
        node,
        spawner,
        invokeFile: invokeFile(node, driver),
        payloadFile,
        throughput,
        cpu,
        clientArgs: clientArgs(driver),
      }),
    ),
  );
  log(`${what}, throughput: ${variants.length} variants x ${throughput.clients} clients x ${throughput.seconds} s, ${throughput.rounds} rounds`);
  const runs = await runRounds(variants, throughput.rounds);
  const modes = await stopWithCounters(nodes, Object.fromEntries(drivers.map((driver) => [driver.kind, driver.id])));
  return { throughput: runs, cpuPerInvocation: cpuPerInvocationOf(cpu), modes };
}
