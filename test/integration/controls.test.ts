// SPEC §3 and §5 through a real mount: the control files, and the errno table of the service tree
// (what open, mkdir, rm, mv, chmod, ln, touch and xattr calls get; modes and sizes that tools see).
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult } from '../helpers/process.js';

interface Status {
  service_id: string;
  runtime: Record<string, unknown>;
  state: string;
  reason?: string;
  running: number;
  invocation_id: string | null;
  exit_code: number | null;
  errno?: string;
}

const node = await startNode(t, {
  manifests: [
    // Succeeds unless the payload mentions "fail".
    manifest('flaky', '/bin/sh', { runtime: { args: ['-c', 'p=$(cat); case "$p" in *fail*) echo "flaky: asked to fail" >&2; exit 3;; esac; printf "%s" "$p"'] } }),
    manifest('gate', 'echo'),
    manifest('hang', 'hang', { runtime: { timeout_ms: 25_000, kill_grace_ms: 500 } }),
    manifest('plain', 'echo'),
  ],
});

const file = (id: string, name: string): string => join(node.service(id), name);
const status = (id: string): Promise<Status> => readJson<Status>(file(id, 'status.json'));
const metrics = (id: string): Promise<Record<string, unknown>> => readJson(file(id, 'metrics.json'));
const health = (id: string): Promise<Record<string, unknown>> => readJson(file(id, 'health.json'));
const control = (id: string, verb: string): Promise<ShResult> => sh(`echo 1 > ${q(file(id, `control/${verb}`))}`);
const invoke = (id: string, payload = '{}'): Promise<ShResult> => sh(`/bin/echo ${q(payload)} > ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 30_000 });

function succeeded(tt: Test, run: ShResult, what: string): void {
  tt.equal(run.code, 0, `${what} (${run.stderr.trim()})`);
}

await t.test('control/reset: result, status and last error back to idle; consecutive counters zeroed', async (tt) => {
  succeeded(tt, await invoke('flaky', '{"n":1}'), 'a good invocation');
  succeeded(tt, await invoke('flaky', '{"do":"fail"}'), 'a failing invocation');
  tt.equal((await status('flaky')).state, 'error');
  tt.equal(await readText(file('flaky', 'last_error.txt')), 'flaky: asked to fail\n');
  tt.match(await metrics('flaky'), { consecutive_failures: 1, failures_total: 1, invokes_total: 2 });

  succeeded(tt, await control('flaky', 'reset'), 'write control/reset');
  tt.equal(await readText(file('flaky', 'result.json')), `${JSON.stringify({ service_id: 'flaky', state: 'idle' }, null, 2)}\n`, 'the idle document');
  const s = await status('flaky');
  tt.equal(s.state, 'idle');
  tt.equal(s.service_id, 'flaky', 'identity kept');
  tt.match(s.runtime, { type: 'native_proc' }, 'identity kept');
  tt.equal(s.invocation_id, null, 'invocation fields cleared');
  tt.equal(s.exit_code, null, 'invocation fields cleared');
  tt.equal(await readText(file('flaky', 'last_error.txt')), '');
  tt.match(await metrics('flaky'), { consecutive_failures: 0, consecutive_timeouts: 0, failures_total: 1, invokes_total: 2 }, 'totals are kept');
});

await t.test('control/disable: offline with a reason; invoke.json refuses to open with EPERM', async (tt) => {
  succeeded(tt, await control('gate', 'disable'), 'write control/disable');
  const s = await status('gate');
  tt.equal(s.state, 'offline');
  tt.match(s.reason, /disable/);
  tt.match(await health('gate'), { state: 'offline', enabled: false, last_control_op: 'disable' });

  const run = await sh(`echo '{}' > ${q(file('gate', 'control/invoke.json'))}`);
  tt.equal(run.code, 1, 'bash reports the failed open');
  tt.match(run.stderr, /Operation not permitted/);
  tt.match(await readText(file('gate', 'last_error.txt')), /^EPERM: .*disabled/);
  const after = await status('gate');
  tt.equal(after.state, 'offline');
  tt.equal(after.errno, 'EPERM');
  tt.match(await metrics('gate'), { invokes_total: 0, rejected_total: 1 });
});

await t.test('control/enable: idle again, invokes work', async (tt) => {
  succeeded(tt, await control('gate', 'enable'), 'write control/enable');
  tt.equal((await status('gate')).state, 'idle');
  tt.match(await health('gate'), { state: 'online', enabled: true, last_control_op: 'enable' });
  succeeded(tt, await invoke('gate', '{"after":"enable"}'), 'invoke');
  tt.equal((await status('gate')).state, 'ok');
  tt.match(await readJson(file('gate', 'result.json')), { echo: { after: 'enable' } });
  tt.equal(await readText(file('gate', 'last_error.txt')), '');
  tt.match(await metrics('gate'), { invokes_total: 1 });
});

await t.test('control/cancel kills a running invocation; its writer\'s close() returns', async (tt) => {
  const writer = invoke('hang');
  await waitFor(async () => (await status('hang')).running === 1, { what: 'the hang driver to run' });
  tt.equal((await status('hang')).state, 'running');
  succeeded(tt, await control('hang', 'cancel'), 'write control/cancel');
  const run = await writer;
  tt.equal(run.signal, null, 'the writer was not killed by its bound');
  succeeded(tt, run, 'the writer\'s close() returned');
  const s = await status('hang');
  tt.equal(s.state, 'cancelled');
  tt.equal(s.running, 0);
  tt.match(await metrics('hang'), { invokes_total: 1, cancelled_total: 1, timeouts_total: 0 });
  tt.match(await readText(file('hang', 'last_error.txt')), /cancelled/);
});

await t.test('control/restart counts a restart and clears the last error', async (tt) => {
  succeeded(tt, await invoke('flaky', '{"do":"fail"}'), 'a failing invocation');
  tt.not(await readText(file('flaky', 'last_error.txt')), '');
  const before = (await health('flaky')).restarts_total as number;
  succeeded(tt, await control('flaky', 'restart'), 'write control/restart');
  tt.match(await health('flaky'), { restarts_total: before + 1, last_control_op: 'restart' });
  tt.equal(await readText(file('flaky', 'last_error.txt')), '');
});

await t.test('errnos of the tree', async (tt) => {
  const dir = node.service('plain');
  const cases: Array<[string, string, RegExp]> = [
    ['write to a read-only file', `echo x > status.json`, /Permission denied/],
    ['read a write-only control file', `cat control/reset`, /Permission denied/],
    ['create a file', `touch newfile`, /Permission denied/],
    ['create a file in control/', `echo '{}' > control/new.json`, /Permission denied/],
    ['mkdir', `mkdir newdir`, /Operation not permitted/],
    ['rmdir', `rmdir control`, /Operation not permitted/],
    ['rm', `rm -f status.json`, /Operation not permitted/],
    ['mv', `mv status.json moved.json`, /Operation not permitted/],
    ['chmod', `chmod 666 status.json`, /Operation not permitted/],
    ['ln', `ln status.json hard`, /Operation not permitted/],
    ['ln -s', `ln -s status.json soft`, /Operation not permitted/],
  ];
  for (const [what, command, message] of cases) {
    const run = await sh(command, { cwd: dir, timeoutMs: 10_000 });
    tt.not(run.code, 0, `${what}: fails`);
    tt.match(run.stderr, message, `${what}: ${run.stderr.trim()}`);
  }
  const ls = await sh(`ls -A`, { cwd: dir });
  tt.equal(ls.stdout.split('\n').filter(Boolean).sort().join(' '), 'HOST.json README.md SCHEMA.json TEMPLATE.json config.json control health.json jobs last_error.txt metrics.json result.json status.json', 'nothing was added or removed');
  succeeded(tt, await sh(`touch result.json && touch -d @1 README.md`, { cwd: dir }), 'touch (utimens) is accepted');
});

await t.test('no xattrs: an error, not a hang', async (tt) => {
  const run = await sh(`python3 - <<'PY'
import errno, os
path = os.environ['F']
for name, call in [('get', lambda: os.getxattr(path, 'user.x')), ('set', lambda: os.setxattr(path, 'user.x', b'1'))]:
    try:
        call()
        print(name, 'succeeded')
    except OSError as error:
        print(name, errno.errorcode.get(error.errno, error.errno))
PY`, { env: { ...process.env, F: file('plain', 'result.json') }, timeoutMs: 10_000 });
  tt.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  tt.equal(lines.length, 2);
  for (const line of lines) tt.notMatch(line, /succeeded/, line);
});

await t.test('ls, stat and find see the whole tree with the expected modes and owner', async (tt) => {
  succeeded(tt, await sh(`ls -la ${q(node.mount)} ${q(node.service('plain'))} ${q(file('plain', 'control'))} > /dev/null`), 'ls -la');
  succeeded(tt, await sh(`stat ${q(file('plain', 'status.json'))} > /dev/null`), 'stat');
  const find = await sh(`find ${q(node.mount)} -printf '%m %y %U %P\\n'`, { timeoutMs: 20_000 });
  succeeded(tt, find, 'find over the whole mount');
  const entries = new Map(find.stdout.trim().split('\n').map((line) => {
    const [mode, type, uid, path] = line.split(' ');
    return [path ?? '', { mode, type, uid }] as const;
  }));
  const uid = String(process.getuid?.());
  for (const [path, entry] of entries) tt.equal(entry.uid, uid, `${path || '/'} belongs to the mounting user`);
  const expect = (path: string, mode: string, type: string): void => {
    tt.same(entries.get(path), { mode, type, uid }, `${path || '/'}: ${type} ${mode}`);
  };
  expect('', '755', 'd');
  for (const name of ['NODE.json', 'SERVICES.json', 'ERRORS.json']) expect(name, '444', 'f');
  expect('services', '755', 'd');
  for (const id of ['flaky', 'gate', 'hang', 'plain']) {
    const base = `services/${id}`;
    expect(base, '755', 'd');
    expect(`${base}/control`, '755', 'd');
    for (const name of ['README.md', 'SCHEMA.json', 'TEMPLATE.json', 'HOST.json', 'result.json', 'status.json', 'last_error.txt', 'metrics.json', 'health.json']) expect(`${base}/${name}`, '444', 'f');
    expect(`${base}/control/invoke.json`, '644', 'f');
    for (const verb of ['reset', 'enable', 'disable', 'restart', 'cancel']) expect(`${base}/control/${verb}`, '200', 'f');
  }
});

await t.test('sizes equal what cat reads', async (tt) => {
  succeeded(tt, await invoke('plain', '{"size":"check"}'), 'an invocation, so result.json has content');
  const paths = [file('plain', 'status.json'), file('plain', 'result.json'), file('plain', 'README.md'), join(node.mount, 'NODE.json'), file('plain', 'last_error.txt')];
  for (const path of paths) {
    const run = await sh(`stat -c %s ${q(path)}; cat ${q(path)} | wc -c`);
    succeeded(tt, run, `stat and cat ${path}`);
    const [size, read] = run.stdout.trim().split('\n').map(Number);
    tt.ok(path.endsWith('last_error.txt') || (read ?? 0) > 0, `${path} has content`);
    tt.equal(size, read, `${path}: stat size ${size} = ${read} bytes read`);
  }
});
