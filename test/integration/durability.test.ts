// SPEC §5 durability through a real mount: runtime state (counters, config, results, enabled,
// jobs) survives kill -9 of the whole daemon exactly, with --state-sync always and batch; a run
// interrupted by the kill is recorded as such; a damaged journal is set aside and reported, never fatal.
import t, { type Test } from 'tap';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readAll, readJson, readText, startNode, type RunningNode } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult } from '../helpers/process.js';

// Echoes its payload; sleeps first when the payload asks to be slow.
const sleepy = manifest('sleepy', '/bin/sh', {
  runtime: { args: ['-c', 'p=$(cat); case "$p" in *slow*) sleep 30;; esac; printf "%s" "$p"'], timeout_ms: 60_000 },
});
const manifests = [manifest('echo', 'echo'), manifest('bad', 'fail'), manifest('gate', 'echo'), manifest('cycled', 'echo'), sleepy];

const file = (node: RunningNode, id: string, name: string): string => join(node.service(id), name);
const invoke = (node: RunningNode, id: string, payload: string): Promise<ShResult> =>
  sh(`/bin/echo ${q(payload)} > ${q(file(node, id, 'control/invoke.json'))}`, { timeoutMs: 40_000 });
const control = (node: RunningNode, id: string, verb: string): Promise<ShResult> => sh(`echo 1 > ${q(file(node, id, `control/${verb}`))}`);
const journalPath = (node: RunningNode): string => join(node.dir, 'node-state.json.runtime-services.json');

function succeeded(tt: Test, run: ShResult, what: string): void {
  tt.equal(run.code, 0, `${what} (${run.stderr.trim()})`);
}

/** Processes of one invocation, found by the ACHERON_INVOCATION_ID in their environment. */
async function driverPids(invocationId: string): Promise<string[]> {
  const run = await sh(`grep -las ${q(`ACHERON_INVOCATION_ID=${invocationId}`)} /proc/[0-9]*/environ || true`);
  return run.stdout.split('\n').filter(Boolean);
}

/** kill -9 of the daemon's process group, then a start on the same dir (startNode waits until it serves). */
async function crashAndRestart(node: RunningNode): Promise<RunningNode> {
  process.kill(-(node.child.pid as number), 'SIGKILL');
  await node.exited;
  return node.restart();
}

/** Without the latency window (not journaled: it describes recent runs of this daemon). */
function counters(text: string): Record<string, unknown> {
  const { latency_ms: _latency, ...rest } = JSON.parse(text) as Record<string, unknown>;
  return rest;
}

const SNAPSHOT_SERVICES = ['echo', 'bad', 'gate', 'cycled'];
const SNAPSHOT_FILES = ['config.json', 'result.json', 'last_error.txt', 'metrics.json', 'status.json', 'health.json'];
const JOB_FILES = ['request.json', 'result.json', 'status.json', 'stderr.txt'];

/** Everything an operator could compare across the restart, as the files show it (read by two child processes). */
async function snapshot(node: RunningNode): Promise<Record<string, unknown>> {
  const jobLists = (await readAll(SNAPSHOT_SERVICES.map((id) => file(node, id, 'jobs')))) as string[][];
  const names = SNAPSHOT_SERVICES.flatMap((id, index) => [
    ...SNAPSHOT_FILES.map((name) => `${id}/${name}`),
    ...(jobLists[index] as string[]).flatMap((jobId) => JOB_FILES.map((name) => `${id}/jobs/${jobId}/${name}`)),
  ]);
  const texts = (await readAll(names.map((name) => join(node.service(''), name)))) as string[];
  const view: Record<string, unknown> = Object.fromEntries(names.map((name, index) => [name, texts[index]]));
  for (const [index, id] of SNAPSHOT_SERVICES.entries()) {
    view[`${id}/jobs`] = jobLists[index];
    view[`${id}/metrics.json`] = counters(view[`${id}/metrics.json`] as string);
    view[`${id}/status.json`] = counters(view[`${id}/status.json`] as string);
    const h = JSON.parse(view[`${id}/health.json`] as string) as Record<string, unknown>;
    view[`${id}/health.json`] = {
      enabled: h.enabled,
      reason: h.reason,
      restarts_total: h.restarts_total,
      last_control_op: h.last_control_op,
      last_control_ms: h.last_control_ms,
      supervision: h.supervision,
      last_error: h.last_error,
      state: h.state,
    };
  }
  return view;
}

/** Invocations, a failure, a config, a disabled service and an enable after a disable. */
async function makeHistory(tt: Test, node: RunningNode): Promise<void> {
  for (const n of [1, 2, 3]) succeeded(tt, await invoke(node, 'echo', `{"n":${n}}`), `echo ${n}`);
  succeeded(tt, await invoke(node, 'bad', '{"x":1}'), 'a failing invocation');
  succeeded(
    tt,
    await sh(`echo '{"supervision":{"max_consecutive_failures":4},"timeout_ms":7000}' > ${q(file(node, 'echo', 'config.json'))}`),
    'write config.json',
  );
  succeeded(tt, await invoke(node, 'gate', '{"before":"disable"}'), 'gate once');
  succeeded(tt, await control(node, 'gate', 'disable'), 'disable gate');
  succeeded(tt, await invoke(node, 'cycled', '{"c":1}'), 'cycled once');
  succeeded(tt, await control(node, 'cycled', 'disable'), 'disable cycled');
  succeeded(tt, await control(node, 'cycled', 'enable'), 'enable cycled');
  succeeded(tt, await control(node, 'echo', 'restart'), 'restart echo');
}

async function survivesKill(tt: Test, args: string[], settleMs: number): Promise<void> {
  const node = await startNode(tt, { manifests, args });
  await makeHistory(tt, node);
  const before = await snapshot(node);
  tt.match(
    before,
    {
      'echo/config.json': /max_consecutive_failures/,
      'gate/status.json': { state: 'offline' },
      'cycled/status.json': { state: 'idle' },
      'echo/metrics.json': { invokes_total: 3 },
      'bad/status.json': { state: 'error', exit_code: 3 },
    },
    'the history is what it should be',
  );
  tt.equal((before['echo/jobs'] as string[]).length, 3);
  // batch: fdatasync within 100 ms of a change; `always` needs no wait at all.
  if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
  const after = await crashAndRestart(node);
  tt.same(await snapshot(after), before, 'every file reads exactly as before the kill');
  const refused = await sh(`echo '{}' > ${q(file(after, 'gate', 'control/invoke.json'))}`);
  tt.match(refused.stderr, /Operation not permitted/, 'gate is still disabled');
  succeeded(tt, await invoke(after, 'echo', '{"n":4}'), 'invocations work after the restart');
  tt.match(await readJson(file(after, 'echo', 'metrics.json')), { invokes_total: 4 });
  const ids = (await sh(`ls ${q(file(after, 'echo', 'jobs'))}`)).stdout.split('\n').filter(Boolean);
  tt.equal(ids.length, 4);
  tt.same([...ids].sort(), ids, 'a new id sorts after the restored ones');
}

await t.test('--state-sync always: kill -9 and restart, everything acknowledged is there exactly', (tt) => survivesKill(tt, [], 0));

await t.test('--state-sync batch: after 300 ms, kill -9 and restart, everything is there', (tt) => survivesKill(tt, ['--state-sync', 'batch'], 300));

await t.test('kill -9 during a running invocation: the job shows interrupted, no mount left, invokes work', async (tt) => {
  const node = await startNode(tt, { manifests });
  succeeded(tt, await invoke(node, 'sleepy', '{"quick":1}'), 'a quick invocation');
  const writer = invoke(node, 'sleepy', '{"do":"slow"}');
  await waitFor(async () => (await readJson(file(node, 'sleepy', 'status.json'))).state === 'running', { what: 'the slow run' });
  const ids = (await sh(`ls ${q(file(node, 'sleepy', 'jobs'))}`)).stdout.split('\n').filter(Boolean);
  tt.equal(ids.length, 2);
  const interrupted = ids[1] as string;
  tt.ok((await driverPids(interrupted)).length > 0, 'the slow driver runs');
  // Let the start of the run reach the journal.
  await new Promise((resolve) => setTimeout(resolve, 200));

  const after = await crashAndRestart(node);
  await waitFor(async () => (await driverPids(interrupted)).length === 0, { what: 'the orphaned driver to be killed', timeoutMs: 20_000 });
  tt.pass('the driver of the interrupted run did not outlive the daemon');
  const run = await writer;
  tt.not(run.code, 0, 'the writer of the interrupted run got an error, not a hang');
  const status = await readJson(file(after, 'sleepy', 'status.json'));
  tt.not(status.state, 'running', `status is ${status.state}, not running`);
  tt.match(status, { running: 0, queued: 0 });
  tt.match(status, { state: 'error', invocation_id: interrupted, duration_ms: null }, 'status.json names the interrupted run as the last one');
  tt.match(
    await readJson(file(after, 'sleepy', 'metrics.json')),
    { invokes_total: 2, failures_total: 1, consecutive_failures: 1 },
    'the interrupted run is counted, as a failure',
  );
  tt.match(await readText(file(after, 'sleepy', 'last_error.txt')), /^interrupted: /, 'last_error.txt says why');
  tt.same((await sh(`ls ${q(file(after, 'sleepy', 'jobs'))}`)).stdout.split('\n').filter(Boolean), ids, 'both jobs are listed');
  const job = await readJson(join(file(after, 'sleepy', 'jobs'), interrupted, 'status.json'));
  tt.match(job, { state: 'error', error: /interrupted/ }, 'the interrupted job says so');
  tt.equal(await readText(join(file(after, 'sleepy', 'jobs'), interrupted, 'request.json')), '{"do":"slow"}\n', 'with its request');
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((line) => line.split(' ')[4] === after.mount);
  tt.equal(mounts.length, 1, 'one live mount, the stale one was cleared');
  succeeded(tt, await invoke(after, 'sleepy', '{"again":1}'), 'invocations work');
  tt.equal(await readText(file(after, 'sleepy', 'result.json')), '{"again":1}', "the new run's result");
});

await t.test('a corrupt journal is set aside and reported; the daemon starts with what still parses', async (tt) => {
  const node = await startNode(tt, { manifests });
  for (const n of [1, 2]) succeeded(tt, await invoke(node, 'echo', `{"n":${n}}`), `echo ${n}`);
  const before = counters(await readText(file(node, 'echo', 'metrics.json')));
  process.kill(-(node.child.pid as number), 'SIGKILL');
  await node.exited;
  const lines = (await readFile(journalPath(node), 'utf8')).split('\n');
  await writeFile(journalPath(node), ['garbage, not JSON', ...lines.slice(0, 1), '{"no_key":true}', '\u0000\u0001binary', ...lines.slice(1)].join('\n'));

  const after = await node.restart();
  tt.same(counters(await readText(file(after, 'echo', 'metrics.json'))), before, 'every record that still parses was restored');
  const aside = (await readdir(node.dir)).filter((name) => name.startsWith('node-state.json.runtime-services.json.corrupt-'));
  tt.equal(aside.length, 1, `the damaged file was set aside (${aside.join(', ')})`);
  const kept = await readFile(join(node.dir, aside[0] as string), 'utf8');
  tt.match(kept, /garbage, not JSON/, 'renamed, not rewritten');
  const log = await readFile(node.logFile, 'utf8');
  tt.match(log, /state journal: line \d+ is not a journal record/, 'the log names the bad lines');
  tt.match(log, /set the damaged file aside as .*\.corrupt-/, 'the log says where the file went');
  succeeded(tt, await invoke(after, 'echo', '{"n":3}'), 'invocations work');

  // The fresh journal is clean: another restart restores it without complaint.
  const again = await crashAndRestart(after);
  tt.match(await readJson(file(again, 'echo', 'metrics.json')), { invokes_total: 3 });
  tt.equal((await readdir(node.dir)).filter((name) => name.includes('.corrupt-')).length, 1, 'nothing new set aside');
});

await t.test('a torn last line: start works, the complete lines are restored', async (tt) => {
  const node = await startNode(tt, { manifests });
  for (const n of [1, 2]) succeeded(tt, await invoke(node, 'echo', `{"n":${n}}`), `echo ${n}`);
  succeeded(tt, await sh(`echo '{"timeout_ms":4321}' > ${q(file(node, 'echo', 'config.json'))}`), 'write config.json');
  const before = await snapshot(node);
  process.kill(-(node.child.pid as number), 'SIGKILL');
  await node.exited;
  await appendFile(journalPath(node), '{"key":"service/echo","value":{"enabled":false,"disab');

  const after = await node.restart();
  tt.same(await snapshot(after), before, 'the state of the complete lines, the torn one ignored');
  tt.match(await readFile(after.logFile, 'utf8'), /state journal: the last line \(\d+ bytes\) was torn/, 'the log reports the torn line');
  tt.equal((await readdir(node.dir)).filter((name) => name.includes('.corrupt-')).length, 0, 'a torn tail is not corruption');
  tt.notMatch(await readFile(journalPath(after), 'utf8'), /"disab(?!led)/, 'the torn line is gone from the journal');
  succeeded(tt, await invoke(after, 'echo', '{"n":3}'), 'invocations work');
});
