// SPEC §1 `acheron invoke` and the CLI conventions: exit 0 on success, 1 on failure, 2 on bad usage,
// errors one line on stderr naming what was wrong.
import t from 'tap';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, DRIVERS, manifest, readJson, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult } from '../helpers/process.js';
import type { InvokeFailure, JobStatus } from '../../src/protocol/types.gen.js';

/** The file whose creation ends a `sleeper` run (test/fixtures/drivers/slow). */
const release = join(await tempDir(t), 'release');
const node = await startNode(t, {
  manifests: [
    manifest('echo', 'echo'),
    manifest('fail', 'fail'),
    manifest('gated', 'echo'),
    manifest('cooler', 'hang', { runtime: { timeout_ms: 300, kill_grace_ms: 100 } }),
    manifest('failer', 'fail'),
    manifest('sleeper', 'slow', { runtime: { env: { SLOW_UNTIL: release } } }),
    // One stderr line of 20000 characters, then exit 3.
    manifest('long-line', '/bin/sh', { runtime: { args: ['-c', 'cat >/dev/null; head -c 20000 /dev/zero | tr "\\0" x >&2; echo >&2; exit 3'] } }),
  ],
});

/** Runs `acheron <args>` (already quoted) in a child process. */
const acheron = (args: string, input?: string): Promise<ShResult> => sh(`exec node ${q(ACHERON)} ${args}`, input === undefined ? {} : { input });
const mount = `--mount ${q(node.mount)}`;
const lines = (text: string): string[] => text.split('\n').filter(Boolean);

await t.test('a successful invoke prints the result and exits 0', async (tt) => {
  const r = await acheron(`invoke echo '{"msg":"hi"}' ${mount}`);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stderr, '');
  const result = JSON.parse(r.stdout) as { service_id: string; echo: unknown };
  tt.same(result.echo, { msg: 'hi' });
  tt.equal(result.service_id, 'echo');
  tt.same(await readJson(join(node.service('echo'), 'result.json')), result, 'the same as result.json');
});

await t.test('the payload from stdin with -', async (tt) => {
  const r = await acheron(`invoke echo - ${mount}`, '{"from":"stdin"}\n');
  tt.equal(r.code, 0, r.stderr);
  tt.same((JSON.parse(r.stdout) as { echo: unknown }).echo, { from: 'stdin' });
});

await t.test('a long outcome is printed whole into a pipe', async (tt) => {
  // Above a pipe's buffer: the exit must wait for the rest.
  const big = 'x'.repeat(300 * 1024);
  const r = await acheron(`invoke echo - ${mount}`, JSON.stringify({ big }));
  tt.equal(r.code, 0, r.stderr);
  tt.equal((JSON.parse(r.stdout) as { echo: { big: string } }).echo.big, big);
});

await t.test('no payload means {}', async (tt) => {
  const r = await acheron(`invoke echo ${mount}`);
  tt.equal(r.code, 0, r.stderr);
  tt.same((JSON.parse(r.stdout) as { echo: unknown }).echo, {});
});

await t.test('a failing driver: exit 1, one stderr line naming the service and the failure', async (tt) => {
  const r = await acheron(`invoke fail '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(r.stdout, '', 'nothing on stdout');
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /^acheron invoke: fail: error: fail driver: something went wrong\n$/);

  const json = await acheron(`invoke fail '{}' --json ${mount}`);
  tt.equal(json.code, 1);
  const doc = JSON.parse(json.stdout) as InvokeFailure;
  tt.match(
    doc,
    { error: 'fail driver: something went wrong', state: 'error', invocation_id: String, status: { state: 'error', exit_code: 3 } },
    '--json prints the outcome document',
  );
});

await t.test('a failure whose first line is very long: the line is cut at 1000 characters, saying how much and where the whole is', async (tt) => {
  const r = await acheron(`invoke long-line '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(r.stdout, '');
  const lastError = join(node.service('long-line'), 'last_error.txt');
  tt.equal(r.stderr, `acheron invoke: long-line: error: ${'x'.repeat(1000)}… (19000 more characters; the whole error: --json or ${lastError})\n`);

  const json = await acheron(`invoke long-line '{}' --json ${mount}`);
  tt.equal(json.code, 1);
  tt.equal((JSON.parse(json.stdout) as InvokeFailure).error.trim(), 'x'.repeat(20000), '--json has it whole');
  tt.equal(json.stderr, r.stderr);
});

/** Writes `text` to a service's `name` (config.json, control/*, jobs/<id>/cancel) from a child process. */
async function put(service: string, name: string, text: string): Promise<void> {
  const r = await sh(`printf '%s' ${q(text)} > ${q(join(node.service(service), name))}`);
  if (r.code !== 0) throw new Error(`${service}/${name}: ${r.stderr.trim()}`);
}
const statusState = async (service: string): Promise<string> => (await readJson<{ state: string }>(join(node.service(service), 'status.json'))).state;

await t.test("a timeout that starts a cooldown: the line names this invocation's timeout, not the service's backoff", async (tt) => {
  await put('cooler', 'config.json', '{"supervision":{"cooldown_ms":600000}}');
  const r = await acheron(`invoke cooler '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(r.stdout, '');
  tt.equal(r.stderr, `acheron invoke: cooler: timeout: ${join(DRIVERS, 'hang')} timed out after 300 ms and was killed\n`);
  tt.equal(await statusState('cooler'), 'backoff', 'the service cools down meanwhile');
});

await t.test("a failure that reaches the supervision threshold: error, not the service's offline; --json has both", async (tt) => {
  await put('failer', 'config.json', '{"supervision":{"max_consecutive_failures":1}}');
  const r = await acheron(`invoke failer '{}' --json ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(r.stderr, 'acheron invoke: failer: error: fail driver: something went wrong\n');
  const doc = JSON.parse(r.stdout) as InvokeFailure;
  tt.match(doc, { state: 'error', status: { state: 'offline', reason: /^auto-disabled: / } });
  const job = await readJson<JobStatus>(join(node.service('failer'), 'jobs', doc.invocation_id, 'status.json'));
  tt.match(job, { state: 'error', error: 'fail driver: something went wrong' }, 'invocation_id names its job');
});

await t.test('a queued invocation cancelled with jobs/<id>/cancel: cancelled, not the ok the run before it left', async (tt) => {
  const jobs = join(node.service('sleeper'), 'jobs');
  const first = acheron(`invoke sleeper '{"n":1}' ${mount}`);
  await waitFor(async () => (await statusState('sleeper')) === 'running', { what: 'the first sleeper run' });
  const second = acheron(`invoke sleeper '{"n":2}' ${mount}`);
  const queued = await waitFor(
    async () => {
      const ids = (await sh(`ls ${q(jobs)}`)).stdout.split('\n').filter(Boolean);
      return ids.length === 2 && (await readJson<JobStatus>(join(jobs, ids[1] as string, 'status.json'))).state === 'queued' && (ids[1] as string);
    },
    { what: 'the second sleeper invocation to queue' },
  );
  await put('sleeper', `jobs/${queued}/cancel`, '1');
  // A queued job ends when its turn comes: once the first has finished.
  await writeFile(release, '');
  const ran = await first;
  tt.equal(ran.code, 0, ran.stderr);
  tt.same(JSON.parse(ran.stdout), { slept: true, echo: { n: 1 } });
  const cancelled = await second;
  tt.equal(cancelled.code, 1);
  tt.equal(cancelled.stdout, '');
  tt.equal(cancelled.stderr, `acheron invoke: sleeper: cancelled: invocation ${queued} was cancelled before it started\n`);
  tt.equal(await statusState('sleeper'), 'ok', "status.json still shows the first run's outcome");
});

await t.test('a queued invocation refused at its turn (the service disabled meanwhile): EPERM, and its job stays, saying why', async (tt) => {
  const jobs = join(node.service('sleeper'), 'jobs');
  await rm(release, { force: true });
  const before = (await sh(`ls ${q(jobs)}`)).stdout.split('\n').filter(Boolean);
  const first = acheron(`invoke sleeper '{"n":3}' ${mount}`);
  await waitFor(async () => (await statusState('sleeper')) === 'running', { what: 'the sleeper run' });
  const second = acheron(`invoke sleeper '{"n":4}' ${mount}`);
  const queued = await waitFor(
    async () => {
      const ids = (await sh(`ls ${q(jobs)}`)).stdout.split('\n').filter((id) => id !== '' && !before.includes(id));
      return ids.length === 2 && (await readJson<JobStatus>(join(jobs, ids[1] as string, 'status.json'))).state === 'queued' && (ids[1] as string);
    },
    { what: 'the second sleeper invocation to queue' },
  );
  await put('sleeper', 'control/disable', '1');
  await writeFile(release, '');
  tt.equal((await first).code, 0, 'the running call finishes');
  const refused = await second;
  tt.equal(refused.code, 1);
  tt.match(refused.stderr, /^acheron invoke: sleeper: EPERM: service sleeper is disabled/);
  const job = await readJson<JobStatus>(join(jobs, queued, 'status.json'));
  tt.match(job, {
    state: 'cancelled',
    started_ms: null,
    error: new RegExp(`^invocation ${queued} never ran: refused when its turn came \\(EPERM: service sleeper is disabled`),
  });
  await put('sleeper', 'control/enable', '1');
});

await t.test('a payload the service refuses (not an object): exit 1 naming EINVAL', async (tt) => {
  const r = await acheron(`invoke echo '[1,2]' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /^acheron invoke: echo: EINVAL: .*must be a JSON object/);
});

await t.test('invalid JSON argument: exit 2', async (tt) => {
  const before = (await readJson<{ invokes_total: number }>(join(node.service('echo'), 'metrics.json'))).invokes_total;
  const r = await acheron(`invoke echo '{"msg": oops}' ${mount}`);
  tt.equal(r.code, 2);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /payload is not valid JSON/);
  tt.equal((await readJson<{ invokes_total: number }>(join(node.service('echo'), 'metrics.json'))).invokes_total, before, 'nothing ran');
  // Node reads a directory on stdin as nothing: this said "the document is empty".
  const directory = await acheron(`invoke echo - ${mount} < /`);
  tt.equal(directory.code, 2);
  tt.equal(directory.stderr, 'acheron: payload: standard input is a directory; give a file (< file.json) or a pipe\n');
});

await t.test('--mount naming a regular file: exit 1 saying so', async (tt) => {
  const file = join(node.mount, 'NODE.json');
  const r = await acheron(`invoke echo '{}' --mount ${q(file)}`);
  tt.equal(r.code, 1);
  // It was "ENOTDIR: not a directory", naming neither the path nor the flag.
  tt.equal(r.stderr, `acheron invoke: echo: ENOTDIR: ${file} is not a directory: --mount names where the node tree is mounted\n`);
});

await t.test('unknown service: exit 1, "no service"', async (tt) => {
  const r = await acheron(`invoke nosuch '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, `acheron invoke: nosuch: ENOENT: no service nosuch under ${node.mount}`);
  const json = await acheron(`invoke nosuch '{}' --json ${mount}`);
  tt.equal(json.code, 1);
  tt.same(JSON.parse(json.stdout), { errno: 'ENOENT', error: `no service nosuch under ${node.mount}` });
});

await t.test('a service id with a path trick is bad usage', async (tt) => {
  const r = await acheron(`invoke ../echo '{}' ${mount}`);
  tt.equal(r.code, 2);
  tt.match(r.stderr, /service "\.\.\/echo": must be/);
});

await t.test('disabled service: exit 1 naming EPERM', async (tt) => {
  const off = await sh(`echo 1 > ${q(join(node.service('gated'), 'control', 'disable'))}`);
  tt.equal(off.code, 0, off.stderr);
  const r = await acheron(`invoke gated '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /^acheron invoke: gated: EPERM: service gated is disabled/);
  tt.notMatch(r.stderr, /EPERM: EPERM/, 'the errno is named once');
  const json = await acheron(`invoke gated '{}' --json ${mount}`);
  tt.equal(json.code, 1);
  tt.same(
    JSON.parse(json.stdout),
    { errno: 'EPERM', error: r.stderr.trim().replace('acheron invoke: gated: EPERM: ', '') },
    '--json: the errno and why, as status.json names them',
  );
  tt.equal(json.stderr, r.stderr, 'the same line on stderr');
  const on = await sh(`echo 1 > ${q(join(node.service('gated'), 'control', 'enable'))}`);
  tt.equal(on.code, 0, on.stderr);
  tt.equal((await acheron(`invoke gated '{}' ${mount}`)).code, 0, 'enabled again, it works');
});

await t.test('--version, --help, node --help, invoke --help exit 0', async (tt) => {
  const version = await acheron('--version');
  tt.equal(version.code, 0);
  tt.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const help = await acheron('--help');
  tt.equal(help.code, 0);
  tt.match(help.stdout, /acheron node/);
  tt.match(help.stdout, /acheron invoke/);
  const nodeHelp = await acheron('node --help');
  tt.equal(nodeHelp.code, 0);
  for (const flag of [
    '--node-id',
    '--mount',
    '--services-dir',
    '--export',
    '--no-fs-service',
    '--terminal-id',
    '--shutdown-grace-ms',
    '--config',
    '--daemon',
  ]) {
    tt.match(nodeHelp.stdout, flag, `node --help lists ${flag}`);
  }
  const invokeHelp = await acheron('invoke --help');
  tt.equal(invokeHelp.code, 0);
  tt.match(invokeHelp.stdout, /--mount/);
  tt.match(invokeHelp.stdout, /--control-url/);
});

await t.test('bad usage: exit 2 with one line on stderr', async (tt) => {
  const cases: Array<[string, RegExp]> = [
    [`invoke echo '{}' --bogus ${mount}`, /Unknown argument: bogus/],
    ['node --bogus-flag', /bogus-flag/],
    ['frobnicate', /frobnicate/],
    ['', /name a command/],
    ['--bogus node list', /unknown option --bogus before the command/],
    ['node --state-sync sometimes', /state-sync.*sometimes/],
  ];
  for (const [args, names] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `acheron ${args}: exit 2`);
    tt.equal(lines(r.stderr).length, 1, `acheron ${args}: one line (${r.stderr.trim()})`);
    tt.match(r.stderr, /^acheron: /);
    tt.match(r.stderr, names, 'names what was wrong');
  }
});

await t.test('the node daemon killed during an invocation: the line says it stopped, that the run may have happened, and where to look', async (tt) => {
  // It was the bare `ECONNABORTED: software caused connection abort`.
  const gate = join(await tempDir(tt), 'never');
  const own = await startNode(tt, { manifests: [manifest('sleeper', 'slow', { runtime: { env: { SLOW_UNTIL: gate } } })] });
  const running = acheron(`invoke sleeper '{}' --mount ${q(own.mount)}`);
  await waitFor(async () => (await readJson<{ state: string }>(join(own.service('sleeper'), 'status.json'))).state === 'running', { what: 'the run' });
  process.kill(own.child.pid as number, 'SIGKILL');
  const cut = await running;
  tt.equal(cut.code, 1);
  tt.equal(
    cut.stderr,
    `acheron invoke: sleeper: ECONNABORTED: the node daemon serving ${own.mount} stopped during this invocation (killed, or its mount forced off); the invocation may have run: once it serves again, see ${own.service('sleeper')}/jobs/ (a run the node did not finish shows as interrupted) before invoking again\n`,
  );
});

await t.test('a service removed by a reload during its invocation: the line says so, not "no service"', async (tt) => {
  const gate = join(await tempDir(tt), 'never');
  const own = await startNode(tt, {
    manifests: [manifest('sleeper', 'slow', { runtime: { env: { SLOW_UNTIL: gate } } })],
    args: ['--manifest-reload-interval-ms', '0'],
  });
  const running = acheron(`invoke sleeper '{}' --mount ${q(own.mount)}`);
  await waitFor(async () => (await readJson<{ state: string }>(join(own.service('sleeper'), 'status.json'))).state === 'running', { what: 'the run' });
  await rm(join(own.servicesDir, 'sleeper.json'));
  process.kill(own.child.pid as number, 'SIGHUP');
  const cut = await running;
  tt.equal(cut.code, 1);
  tt.equal(
    cut.stderr,
    'acheron invoke: sleeper: ENOENT: service sleeper was removed (a manifest reload) while this invocation ran or waited: it was cancelled\n',
  );
});
