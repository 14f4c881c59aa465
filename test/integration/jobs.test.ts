// SPEC §3 jobs/<invocation_id>/ through a real mount: one directory per invocation in sortable
// order, with the exact request bytes, its own status, result and stderr; runtime.jobs_keep prunes;
// a job's own cancel file reaches only that job.
import t from 'tap';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult } from '../helpers/process.js';
import type { JobStatus } from '../../src/protocol/types.gen.js';

const node = await startNode(t, {
  manifests: [
    manifest('cat', 'cat'),
    manifest('bad', 'fail'),
    manifest('kept', 'cat', { runtime: { jobs_keep: 2 } }),
    manifest('hang', 'hang', { runtime: { max_concurrency: 2, timeout_ms: 25_000, kill_grace_ms: 200 } }),
  ],
});

const file = (id: string, name: string): string => join(node.service(id), name);
const job = (id: string, invocationId: string, name: string): string => join(node.service(id), 'jobs', invocationId, name);
const jobStatus = (id: string, invocationId: string): Promise<JobStatus> => readJson<JobStatus>(job(id, invocationId, 'status.json'));
/** The directory order the filesystem gives (ls -f does not sort). */
async function jobIds(id: string): Promise<string[]> {
  const run = await sh(`ls -f ${q(file(id, 'jobs'))}`);
  if (run.code !== 0) throw new Error(run.stderr);
  return run.stdout.split('\n').filter((name) => name !== '' && name !== '.' && name !== '..');
}
/** Writes `payload` with printf (no added newline); the invocation id comes from status.json. */
async function invoke(id: string, payload: string): Promise<{ run: ShResult; invocationId: string }> {
  const run = await sh(`printf '%s' "$P" > ${q(file(id, 'control/invoke.json'))}`, { env: { ...process.env, P: payload } });
  const status = await readJson<{ invocation_id: string }>(file(id, 'status.json'));
  return { run, invocationId: status.invocation_id };
}

await t.test('three invocations: three job directories in order, each with its exact request and outcome', async (tt) => {
  const payloads = ['{"n":1}', '{\n  "n": 2,\n  "text": "héllo wörld"\n}\n', '  {"n":3, "pad":"   "}  '];
  const ids: string[] = [];
  for (const payload of payloads) {
    const { run, invocationId } = await invoke('cat', payload);
    tt.equal(run.code, 0, run.stderr);
    ids.push(invocationId);
  }
  tt.match(ids, [/^\d+-\d{4}$/, /^\d+-\d{4}$/, /^\d+-\d{4}$/], 'ids have the <ms>-<n> form');
  tt.same([...ids].sort(), ids, 'ids sort in invocation order');
  tt.equal(new Set(ids).size, 3, 'ids are distinct');
  tt.same(await jobIds('cat'), ids, 'jobs/ lists them in invocation order');
  const ls = await sh(`ls ${q(file('cat', 'jobs'))}/${ids[0]}`);
  tt.same(ls.stdout.trim().split('\n').sort(), ['cancel', 'request.json', 'result.json', 'status.json', 'stderr.txt'], 'the files of a job');

  for (const [i, invocationId] of ids.entries()) {
    const payload = payloads[i] as string;
    tt.equal(await readText(job('cat', invocationId, 'request.json')), payload, `${invocationId}: request.json is the exact bytes written`);
    tt.equal(await readText(job('cat', invocationId, 'result.json')), payload, `${invocationId}: result.json is this invocation's result`);
    tt.equal(await readText(job('cat', invocationId, 'stderr.txt')), '', `${invocationId}: nothing on stderr`);
    const status = await jobStatus('cat', invocationId);
    tt.match(status, { invocation_id: invocationId, service_id: 'cat', state: 'ok', exit_code: 0, request_bytes: Buffer.byteLength(payload), error: '' });
    tt.ok(status.finished_ms !== null && status.started_ms !== null && status.finished_ms >= status.started_ms, 'times are set');
  }
  const sizes = await sh(`stat -c %s ${q(job('cat', ids[1] as string, 'request.json'))}`);
  tt.equal(Number(sizes.stdout.trim()), Buffer.byteLength(payloads[1] as string), 'stat size is the request size');
});

await t.test('a failed job keeps its stderr, exit code and error; its result is empty', async (tt) => {
  const { run, invocationId } = await invoke('bad', '{"x":1}');
  tt.equal(run.code, 0, 'a driver failure is not a filesystem error');
  tt.equal(await readText(job('bad', invocationId, 'stderr.txt')), 'fail driver: something went wrong\n');
  tt.match(await jobStatus('bad', invocationId), { state: 'error', exit_code: 3, error: /something went wrong/ });
  tt.equal(await readText(job('bad', invocationId, 'result.json')), '');
  tt.equal(await readText(job('bad', invocationId, 'request.json')), '{"x":1}');
});

await t.test('runtime.jobs_keep: 2 keeps only the last two; a pruned job is ENOENT', async (tt) => {
  const ids: string[] = [];
  for (let n = 1; n <= 4; n++) {
    const { run, invocationId } = await invoke('kept', `{"n":${n}}`);
    tt.equal(run.code, 0, run.stderr);
    ids.push(invocationId);
  }
  tt.same(await jobIds('kept'), ids.slice(2), 'only the last two remain');
  tt.equal(await readText(job('kept', ids[3] as string, 'request.json')), '{"n":4}');
  for (const pruned of ids.slice(0, 2)) {
    const cat = await sh(`cat ${q(job('kept', pruned, 'status.json'))}`);
    tt.not(cat.code, 0, `${pruned}: cat fails`);
    tt.match(cat.stderr, /No such file or directory/, `${pruned}: ENOENT`);
    const cancel = await sh(`echo 1 > ${q(job('kept', pruned, 'cancel'))}`);
    tt.match(cancel.stderr, /No such file or directory/, `${pruned}: its cancel file is gone too`);
    const stat = await sh(`stat ${q(join(file('kept', 'jobs'), pruned))}`);
    tt.match(stat.stderr, /No such file or directory/, `${pruned}: the directory is gone`);
  }
});

await t.test('jobs/<id>/cancel kills only that job', async (tt) => {
  const writers = [1, 2].map((n) => sh(`/bin/echo '{"w":${n}}' > ${q(file('hang', 'control/invoke.json'))}`, { timeoutMs: 40_000 }));
  const ids = await waitFor(
    async () => {
      const listed = await jobIds('hang');
      return listed.length === 2 && listed;
    },
    { what: 'two hang jobs' },
  );
  await waitFor(
    async () => (await jobStatus('hang', ids[0] as string)).state === 'running' && (await jobStatus('hang', ids[1] as string)).state === 'running',
    { what: 'both jobs to run' },
  );
  tt.equal((await readJson<{ running: number }>(file('hang', 'status.json'))).running, 2);

  const [first, second] = ids as [string, string];
  const cancel = await sh(`echo 1 > ${q(job('hang', first, 'cancel'))}`);
  tt.equal(cancel.code, 0, cancel.stderr);
  await waitFor(async () => (await jobStatus('hang', first)).state === 'cancelled', { what: 'the first job to be cancelled' });
  tt.equal((await jobStatus('hang', second)).state, 'running', 'the other job still runs');
  tt.match(await readJson(file('hang', 'metrics.json')), { cancelled_total: 1 });

  tt.equal((await sh(`echo 1 > ${q(job('hang', second, 'cancel'))}`)).code, 0);
  const runs = await Promise.all(writers);
  for (const run of runs) tt.equal(run.code, 0, `the writer's close() returned (${run.stderr.trim()})`);
  tt.equal((await jobStatus('hang', second)).state, 'cancelled');
  tt.match(await readJson(file('hang', 'metrics.json')), { cancelled_total: 2, invokes_total: 2 });

  const again = await sh(`echo 1 > ${q(job('hang', first, 'cancel'))}`);
  tt.equal(again.code, 0, 'cancelling a finished job is harmless');
  tt.equal((await jobStatus('hang', first)).state, 'cancelled');
});
