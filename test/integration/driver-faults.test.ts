// SPEC §4 and §11 through a real mount: drivers that hang, fail, flood, skip stdin, are missing or
// not executable, or leave grandchildren each end in a clear outcome, and the writer's close() returns.
import t, { type Test } from 'tap';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode, tempDir } from '../helpers/node.js';
import { q, sh, type ShResult } from '../helpers/process.js';
import type { ServiceMetrics, ServiceStatus } from '../../src/protocol/types.gen.js';

const idleResult = (serviceId: string): Record<string, unknown> => ({ service_id: serviceId, state: 'idle' });

const scratch = await tempDir(t);
const notExecutable = join(scratch, 'not-executable');
await writeFile(notExecutable, '#!/bin/sh\necho "{}"\n');
await chmod(notExecutable, 0o644);
const missing = join(scratch, 'no-such-driver');

// The daemon's own environment: secrets and ACHERON_* stay out of drivers unless passed through.
const daemonEnv = {
  FOO_TOKEN: 'foo-token-value',
  MY_SECRET: 'my-secret-value',
  ACHERON_X: 'acheron-x-value',
  PASSED_TOKEN: 'passed-value',
  PLAIN_VAR: 'plain-value',
};

const node = await startNode(t, {
  env: daemonEnv,
  manifests: [
    manifest('hang', 'hang', { runtime: { timeout_ms: 500, kill_grace_ms: 200 } }),
    manifest('hang-term', 'hang-ignore-term', { runtime: { timeout_ms: 500, kill_grace_ms: 300 } }),
    manifest('fail', 'fail'),
    manifest('flood', 'flood', { runtime: { max_output_bytes: 65536 } }),
    manifest('no-stdin', 'no-stdin'),
    manifest('missing', missing),
    manifest('not-exec', notExecutable),
    manifest('orphan', 'setsid-orphan'),
    manifest('env', 'env', { runtime: { env: { ADDED_VAR: 'added-value' }, env_passthrough: ['PASSED_TOKEN'] } }),
    // Succeeds unless the payload mentions "fail": shows a failure leaves the last good result alone.
    manifest('flaky', '/bin/sh', {
      runtime: { args: ['-c', 'p=$(cat); case "$p" in *fail*) echo "flaky: asked to fail" >&2; exit 3;; esac; printf "%s" "$p"'] },
    }),
    // Bytes that are not UTF-8, and a NUL: the spawner link carries output as bytes, not text.
    manifest('binary', '/bin/sh', { runtime: { args: ['-c', 'cat >/dev/null; printf "\\377\\000\\200 not utf-8\\n"; printf "\\376 on stderr\\n" >&2'] } }),
    manifest('strict', 'echo', { schema: { input: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }),
  ],
});

const invokePath = (id: string): string => join(node.service(id), 'control', 'invoke.json');
const status = (id: string): Promise<ServiceStatus> => readJson<ServiceStatus>(join(node.service(id), 'status.json'));
const metrics = (id: string): Promise<ServiceMetrics> => readJson<ServiceMetrics>(join(node.service(id), 'metrics.json'));
const lastError = (id: string): Promise<string> => readText(join(node.service(id), 'last_error.txt'));
const result = (id: string): Promise<Record<string, unknown>> => readJson(join(node.service(id), 'result.json'));

/**
 * Invokes with /bin/echo, which reports a failed close(): exit 0 means close() returned without an
 * error. The bound is generous; a writer stuck in close() would be killed and show up as a signal.
 */
function invoke(id: string, payload = '{}'): Promise<ShResult> {
  return sh(`/bin/echo ${q(payload)} > ${q(invokePath(id))}`, { timeoutMs: 20_000 });
}

/** A driver that ran and failed is not a filesystem error: close() returns 0. */
function closedCleanly(tt: Test, run: ShResult): void {
  tt.equal(run.signal, null, 'the writer was not killed waiting for close()');
  tt.equal(run.code, 0, `close() returned without an error (${run.stderr.trim()})`);
}

await t.test('a hanging driver is timed out', async (tt) => {
  closedCleanly(tt, await invoke('hang'));
  const s = await status('hang');
  tt.equal(s.state, 'timeout');
  tt.equal(s.running, 0);
  tt.equal(s.exit_code, null, 'killed, so no exit code');
  tt.match(await lastError('hang'), /timed out after 500 ms/);
  tt.same(await result('hang'), idleResult('hang'), 'result.json unchanged');
  tt.match(await metrics('hang'), { invokes_total: 1, failures_total: 1, consecutive_failures: 1, timeouts_total: 1, consecutive_timeouts: 1 });
  // A second timeout counts on.
  closedCleanly(tt, await invoke('hang'));
  tt.match(await metrics('hang'), { invokes_total: 2, timeouts_total: 2, consecutive_timeouts: 2, consecutive_failures: 2 });
});

await t.test('a driver that ignores SIGTERM is killed after the grace period', async (tt) => {
  closedCleanly(tt, await invoke('hang-term'));
  const s = await status('hang-term');
  tt.equal(s.state, 'timeout');
  tt.equal(s.signal, 'SIGKILL', 'only SIGKILL ended it');
  tt.match(await lastError('hang-term'), /timed out after 500 ms/);
  tt.match(await metrics('hang-term'), { invokes_total: 1, timeouts_total: 1, consecutive_timeouts: 1 });
});

await t.test('a failing driver: error, its exit code and its stderr', async (tt) => {
  const before = await result('fail');
  closedCleanly(tt, await invoke('fail'));
  const s = await status('fail');
  tt.equal(s.state, 'error');
  tt.equal(s.exit_code, 3);
  tt.equal(await lastError('fail'), 'fail driver: something went wrong\n');
  tt.same(await result('fail'), before, 'result.json unchanged');
  tt.match(await metrics('fail'), { invokes_total: 1, failures_total: 1, consecutive_failures: 1, timeouts_total: 0, consecutive_timeouts: 0 });
  closedCleanly(tt, await invoke('fail'));
  tt.match(await metrics('fail'), { invokes_total: 2, failures_total: 2, consecutive_failures: 2 });
});

await t.test('a failure keeps the last good result; a success clears the error', async (tt) => {
  closedCleanly(tt, await invoke('flaky', '{"n":1}'));
  tt.same(await result('flaky'), { n: 1 });
  tt.equal(await lastError('flaky'), '');
  closedCleanly(tt, await invoke('flaky', '{"please":"fail"}'));
  tt.equal((await status('flaky')).state, 'error');
  tt.same(await result('flaky'), { n: 1 }, 'result.json still holds the last success');
  tt.equal(await lastError('flaky'), 'flaky: asked to fail\n');
  tt.match(await metrics('flaky'), { invokes_total: 2, failures_total: 1, consecutive_failures: 1 });
  closedCleanly(tt, await invoke('flaky', '{"n":2}'));
  tt.same(await result('flaky'), { n: 2 });
  tt.equal(await lastError('flaky'), '', 'emptied by the success');
  tt.match(await metrics('flaky'), { invokes_total: 3, failures_total: 1, consecutive_failures: 0 });
});

await t.test('output that is not UTF-8 reaches result.json byte for byte', async (tt) => {
  closedCleanly(tt, await invoke('binary'));
  tt.equal((await status('binary')).state, 'ok');
  const bytes = await sh(`od -An -tx1 ${q(join(node.service('binary'), 'result.json'))}`);
  tt.equal(bytes.stdout.replace(/\s+/g, ' ').trim(), 'ff 00 80 20 6e 6f 74 20 75 74 66 2d 38 0a');
});

await t.test('a driver flooding stdout is killed at max_output_bytes', async (tt) => {
  closedCleanly(tt, await invoke('flood'));
  const s = await status('flood');
  tt.equal(s.state, 'error');
  tt.equal(s.running, 0);
  tt.match(await lastError('flood'), /max_output_bytes \(65536\) on stdout and was killed/, 'naming the stream');
  tt.same(await result('flood'), idleResult('flood'), 'result.json unchanged');
  tt.match(await metrics('flood'), { invokes_total: 1, failures_total: 1, timeouts_total: 0 });
});

await t.test('a driver that exits without reading a 2 MiB payload is fine', async (tt) => {
  const file = join(node.dir, 'big.json');
  await writeFile(file, JSON.stringify({ fill: 'x'.repeat(2 << 20) }));
  const run = await sh(`cat ${q(file)} > ${q(invokePath('no-stdin'))}`, { timeoutMs: 20_000 });
  closedCleanly(tt, run);
  const s = await status('no-stdin');
  tt.equal(s.state, 'ok');
  tt.equal(s.exit_code, 0);
  tt.same(await result('no-stdin'), { read: false });
  tt.equal(await lastError('no-stdin'), '');
  tt.match(await metrics('no-stdin'), { invokes_total: 1, failures_total: 0 });
});

await t.test('a missing driver: error with a clear message, never stuck running', async (tt) => {
  closedCleanly(tt, await invoke('missing'));
  const s = await status('missing');
  tt.equal(s.state, 'error');
  tt.equal(s.running, 0);
  tt.equal(s.exit_code, null);
  const text = await lastError('missing');
  tt.match(text, /could not be started/);
  tt.match(text, /no-such-driver/, 'names the program');
  tt.match(text, /ENOENT/, 'says why');
  tt.match(await metrics('missing'), { invokes_total: 1, failures_total: 1 });
  // The next invocation is admitted and fails the same way: nothing was left running.
  closedCleanly(tt, await invoke('missing'));
  tt.match(await metrics('missing'), { invokes_total: 2, failures_total: 2, consecutive_failures: 2 });
  tt.equal((await status('missing')).running, 0);
});

await t.test('a driver without the x bit: error with a clear message', async (tt) => {
  closedCleanly(tt, await invoke('not-exec'));
  const s = await status('not-exec');
  tt.equal(s.state, 'error');
  tt.equal(s.running, 0);
  const text = await lastError('not-exec');
  tt.match(text, /could not be started/);
  tt.match(text, /EACCES/);
  tt.same(await result('not-exec'), idleResult('not-exec'));
});

await t.test('a setsid grandchild holding stdout does not keep the invocation open', async (tt) => {
  // The grandchild sleeps 30 s; the writer's bound (20 s) would kill a close() that waited for it.
  closedCleanly(tt, await invoke('orphan'));
  const s = await status('orphan');
  tt.equal(s.state, 'ok');
  tt.equal(s.running, 0);
  tt.same(await result('orphan'), { orphan: true });
});

await t.test('driver environment and working directory', async (tt) => {
  closedCleanly(tt, await invoke('env'));
  tt.equal((await status('env')).state, 'ok');
  // Read as text: the environment may hold characters the fixture does not escape for JSON.
  const text = await readText(join(node.service('env'), 'result.json'));
  const has = (name: string, value?: string): boolean => new RegExp(`[" ]${name}=${value ?? ''}`).test(text);
  const { invocation_id: invocationId } = await status('env');
  tt.ok(has('ACHERON_NODE_ID', 'test-node '), 'ACHERON_NODE_ID');
  tt.ok(has('ACHERON_SERVICE_ID', 'env '), 'ACHERON_SERVICE_ID');
  tt.ok(invocationId && has('ACHERON_INVOCATION_ID', `${invocationId} `), 'ACHERON_INVOCATION_ID is this invocation');
  tt.notOk(has('FOO_TOKEN'), 'a *TOKEN* variable is withheld');
  tt.notOk(has('MY_SECRET'), 'a *SECRET* variable is withheld');
  tt.notOk(has('ACHERON_X'), 'an ACHERON_* variable is withheld');
  tt.ok(has('PASSED_TOKEN', 'passed-value'), 'env_passthrough lets a listed one through');
  tt.ok(has('PLAIN_VAR', 'plain-value'), 'ordinary variables are inherited');
  tt.ok(has('ADDED_VAR', 'added-value'), 'runtime.env is added');
  const cwd = /"cwd":"([^"]*)"/.exec(text)?.[1];
  tt.ok(cwd, 'the driver reported its cwd');
  tt.not(cwd, node.mount);
  tt.notOk(cwd?.startsWith(`${node.mount}/`), `cwd ${cwd} lies outside the mount`);
});

await t.test('a schema.input violation: EINVAL from close(), the field named, no driver run', async (tt) => {
  const run = await invoke('strict', '{"other":1}');
  tt.not(run.code, 0, '/bin/echo reports the close() error');
  tt.match(run.stderr, /Invalid argument/);
  const text = await lastError('strict');
  tt.match(text, /^EINVAL: /);
  tt.match(text, /name/, 'names the missing field');
  const s = await status('strict');
  tt.equal(s.state, 'error');
  tt.equal(s.errno, 'EINVAL');
  tt.match(await metrics('strict'), { invokes_total: 0, rejected_total: 1 });
  tt.same(await result('strict'), idleResult('strict'));
  // A valid payload runs.
  closedCleanly(tt, await invoke('strict', '{"name":"x"}'));
  tt.match(await result('strict'), { service_id: 'strict', echo: { name: 'x' } });
  tt.match(await metrics('strict'), { invokes_total: 1 });
});
