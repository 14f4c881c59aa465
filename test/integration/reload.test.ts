// SPEC §2 and §5 hot reload through a real mount: added manifests appear, changed ones keep their
// runtime state and apply the new settings, an invalid edit is reported in ERRORS.json while the
// previous good version keeps running, removed ones disappear (open handles get ENOENT, and so does
// a writer waiting for a run the removal cancelled), and with interval 0 only SIGHUP reloads. A
// service nobody edits keeps answering throughout.
import t from 'tap';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifest, readJson, readText, startNode } from '../helpers/node.js';
import { q, sh, waitFor, type ShResult } from '../helpers/process.js';
import { ECHO_WASM } from '../helpers/wat.js';

interface Problem {
  file: string;
  json_path: string;
  rule: string;
  message: string;
}

/** A version-stamped driver: prints {"v":N,"got":<payload>}; sleeps when the payload asks to hang. */
const versioned = (id: string, v: number, runtime: Record<string, unknown> = {}): Record<string, unknown> =>
  manifest(id, '/bin/sh', {
    version: String(v),
    runtime: {
      args: ['-c', `p=$(cat); case "$p" in *hang*) exec sleep 3600;; esac; printf '{"v":${v},"got":%s}' "$p"`],
      timeout_ms: 25_000,
      kill_grace_ms: 200,
      ...runtime,
    },
  });

const node = await startNode(t, {
  args: ['--manifest-reload-interval-ms', '300'],
  manifests: [manifest('steady', 'echo'), versioned('alpha', 1)],
});

const file = (id: string, name: string): string => join(node.service(id), name);
const invoke = (id: string, payload: string): Promise<ShResult> => sh(`/bin/echo ${q(payload)} > ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 40_000 });
const metrics = (id: string): Promise<Record<string, number>> => readJson(file(id, 'metrics.json'));
const errors = (): Promise<Problem[]> => readJson<Problem[]>(join(node.mount, 'ERRORS.json'));
/** The log's all-clear lines, written before ERRORS.json shows [] (the log file lies outside the mount). */
const allClears = async (): Promise<string[]> =>
  (await readFile(node.logFile, 'utf8')).split('\n').filter((line) => line.includes('"msg":"manifest reload: no problems any more (ERRORS.json is [])"'));
async function services(): Promise<string[]> {
  const run = await sh(`ls ${q(join(node.mount, 'services'))}`);
  if (run.code !== 0) throw new Error(run.stderr);
  return run.stdout.split('\n').filter(Boolean);
}
/** Replaces a manifest atomically, so a reload never reads half a file (dot names are skipped). */
async function putManifest(name: string, text: string): Promise<void> {
  const temp = join(node.servicesDir, `.${name}.tmp`);
  await writeFile(temp, text);
  await rename(temp, join(node.servicesDir, name));
}

// Keeps invoking `steady` until told to stop; every invocation must succeed whatever reloads do.
const stopFile = join(node.dir, 'stop-steady');
const background = sh(
  `n=0; bad=0
while [ ! -e "$STOP" ]; do
  n=$((n+1))
  /bin/echo "{\\"i\\":$n}" > "$F" || bad=$((bad+1))
done
echo "$n $bad"`,
  { env: { ...process.env, STOP: stopFile, F: file('steady', 'control/invoke.json') }, timeoutMs: 120_000 },
);

await t.test('an added manifest appears as a service', async (tt) => {
  tt.notOk((await services()).includes('added'));
  await putManifest('added.json', JSON.stringify(manifest('added', 'echo')));
  await waitFor(async () => (await services()).includes('added'), { what: 'services/added' });
  const listed = await readJson<Array<{ service_id: string; state: string }>>(join(node.mount, 'SERVICES.json'));
  tt.match(
    listed.find((s) => s.service_id === 'added'),
    { service_id: 'added', state: 'online' },
    'SERVICES.json lists it',
  );
  const run = await invoke('added', '{"hello":"added"}');
  tt.equal(run.code, 0, run.stderr);
  tt.match(await readJson(file('added', 'result.json')), { echo: { hello: 'added' } });
});

await t.test('a changed manifest keeps counters and jobs and applies the new args and timeout', async (tt) => {
  for (const n of [1, 2]) tt.equal((await invoke('alpha', `{"n":${n}}`)).code, 0);
  tt.same(await readJson(file('alpha', 'result.json')), { v: 1, got: { n: 2 } });
  const jobsBefore = (await sh(`ls ${q(file('alpha', 'jobs'))}`)).stdout;
  tt.equal(jobsBefore.trim().split('\n').length, 2);

  await putManifest('alpha.json', JSON.stringify(versioned('alpha', 2, { timeout_ms: 300 })));
  await waitFor(async () => (await readText(file('alpha', 'README.md'))).includes('version 2'), { what: 'the new alpha manifest' });
  tt.match(await metrics('alpha'), { invokes_total: 2 }, 'counters survive the change');
  tt.equal((await sh(`ls ${q(file('alpha', 'jobs'))}`)).stdout, jobsBefore, 'jobs survive the change');
  tt.same(await readJson(file('alpha', 'result.json')), { v: 1, got: { n: 2 } }, 'the last result survives the change');

  tt.equal((await invoke('alpha', '{"n":3}')).code, 0);
  tt.same(await readJson(file('alpha', 'result.json')), { v: 2, got: { n: 3 } }, 'the new args apply');
  tt.equal((await invoke('alpha', '{"do":"hang"}')).code, 0);
  tt.equal((await readJson(file('alpha', 'status.json'))).state, 'timeout', 'the new timeout applies');
  const m = await metrics('alpha');
  tt.ok(m.last_duration_ms !== undefined && m.last_duration_ms < 10_000, `ended by the new 300 ms timeout, not the old 25 s (${m.last_duration_ms} ms)`);
  tt.match(m, { invokes_total: 4, timeouts_total: 1 });
});

await t.test(
  'a change of runtime.type keeps the state too (SPEC §5): counters, config.json and a disable survive native_proc → wasm → native_proc',
  async (tt) => {
    await putManifest('shifty.json', JSON.stringify(versioned('shifty', 1)));
    await waitFor(async () => (await services()).includes('shifty'), { what: 'shifty' });
    tt.equal((await invoke('shifty', '{"n":1}')).code, 0);
    tt.equal((await sh(`echo '{"timeout_ms":5000}' > ${q(file('shifty', 'config.json'))}`)).code, 0);
    tt.equal((await sh(`echo 1 > ${q(file('shifty', 'control/disable'))}`)).code, 0);
    const runtimeType = async (): Promise<unknown> => ((await readJson(file('shifty', 'status.json'))) as { runtime?: { type?: unknown } }).runtime?.type;

    await putManifest('shifty.json', JSON.stringify({ service_id: 'shifty', kind: 'echo', version: '2', runtime: { type: 'wasm', module_path: ECHO_WASM } }));
    await waitFor(async () => (await runtimeType()) === 'wasm', { what: 'shifty as wasm' });
    tt.match(await metrics('shifty'), { invokes_total: 1 }, 'counters survive');
    tt.match(await readJson(file('shifty', 'config.json')), { timeout_ms: 5000 }, 'config.json survives');
    tt.match(await readJson(file('shifty', 'status.json')), { state: 'offline' }, 'still disabled');
    tt.not((await invoke('shifty', '{"n":2}')).code, 0, 'an invoke is refused (EPERM)');
    tt.equal((await sh(`echo 1 > ${q(file('shifty', 'control/enable'))}`)).code, 0);
    tt.equal((await invoke('shifty', '{"n":3}')).code, 0);
    tt.match(await readJson(file('shifty', 'result.json')), { ok: true, echo: { n: 3 } }, 'the wasm echo answered');

    await putManifest('shifty.json', JSON.stringify(versioned('shifty', 3)));
    await waitFor(async () => (await runtimeType()) === 'native_proc', { what: 'shifty native again' });
    tt.equal((await invoke('shifty', '{"n":4}')).code, 0);
    tt.same(await readJson(file('shifty', 'result.json')), { v: 3, got: { n: 4 } }, 'the native driver answers again');
    tt.match(await metrics('shifty'), { invokes_total: 3, rejected_total: 1 }, 'one history across all three');
    await rm(join(node.servicesDir, 'shifty.json'));
    await waitFor(async () => !(await services()).includes('shifty'), { what: 'shifty gone' });
  },
);

await t.test('an invalid edit is reported; the previous good version keeps running; a fix clears it', async (tt) => {
  const alphaFile = join(node.servicesDir, 'alpha.json');
  tt.same(await errors(), [], 'no problems yet');

  await putManifest('alpha.json', '{"service_id": "alpha", "kind": ');
  const syntax = await waitFor(
    async () => {
      const list = await errors();
      return list.length > 0 && list;
    },
    { what: 'ERRORS.json to report bad JSON' },
  );
  tt.equal(syntax.length, 1);
  tt.match(syntax[0], { file: alphaFile, json_path: '/', rule: 'json', message: /invalid JSON/ });
  tt.match((await readJson(join(node.mount, 'NODE.json'))).manifest_errors, 1, 'NODE.json counts it');
  tt.ok((await services()).includes('alpha'), 'alpha is still there');
  tt.equal((await invoke('alpha', '{"n":5}')).code, 0, 'and answers invokes');
  tt.same(await readJson(file('alpha', 'result.json')), { v: 2, got: { n: 5 } }, 'with the previous good version');

  await putManifest('alpha.json', JSON.stringify({ ...versioned('alpha', 9), bogus_key: 1 }));
  const unknown = await waitFor(
    async () => {
      const list = await errors();
      return list.some((p) => p.message.includes('bogus_key')) && list;
    },
    { what: 'ERRORS.json to report the unknown key' },
  );
  tt.equal(unknown.length, 1);
  tt.match(unknown[0], { file: alphaFile, json_path: '/bogus_key', rule: 'additionalProperties', message: /unknown key/ }, 'the problem names the key');
  tt.equal((await invoke('alpha', '{"n":6}')).code, 0);
  tt.same(await readJson(file('alpha', 'result.json')), { v: 2, got: { n: 6 } }, 'still the previous good version');

  tt.same(await allClears(), [], 'no all-clear while problems are listed');
  await putManifest('alpha.json', JSON.stringify(versioned('alpha', 3)));
  await waitFor(async () => (await errors()).length === 0, { what: 'ERRORS.json to clear' });
  const cleared = await allClears();
  tt.equal(cleared.length, 1, 'the log says once that the problems are gone');
  tt.match(cleared[0], /"level":30,/, 'at info');
  await waitFor(async () => (await readText(file('alpha', 'README.md'))).includes('version 3'), { what: 'the fixed alpha manifest' });
  tt.equal((await invoke('alpha', '{"n":7}')).code, 0);
  tt.same(await readJson(file('alpha', 'result.json')), { v: 3, got: { n: 7 } }, 'the fixed version runs');
  tt.match(await metrics('alpha'), { invokes_total: 7 }, 'counters survived every edit');
});

await t.test('a new manifest claiming a running service id is the duplicate, even when it sorts first; the running one keeps going', async (tt) => {
  const stray = join(node.servicesDir, 'aa-alpha-copy.json');
  await putManifest('aa-alpha-copy.json', JSON.stringify(versioned('alpha', 8)));
  const duplicate = await waitFor(
    async () => {
      const list = await errors();
      return list.length > 0 && list;
    },
    { what: 'ERRORS.json to report the duplicate' },
  );
  tt.match(
    duplicate,
    [{ file: stray, json_path: '/service_id', rule: 'duplicate', message: /already defined by .*alpha\.json/ }],
    'the new file is the duplicate',
  );
  tt.match(await readText(file('alpha', 'README.md')), /version 3/, 'the running version stays (not version 8)');
  await rm(stray);
  await waitFor(async () => (await errors()).length === 0, { what: 'ERRORS.json to clear' });
  tt.equal((await allClears()).length, 2, 'one more all-clear for this fix');
});

await t.test(
  'a removed manifest: the service disappears; every later use of a handle opened before (invoke.json, status.json) gets ENOENT, never a hang',
  async (tt) => {
    const ready = join(node.dir, 'writer-ready');
    const go = join(node.dir, 'writer-go');
    // The first half of a payload before the removal, the rest after it: each step says what it got.
    const writer = sh(
      `python3 - <<'PY'
import errno, os, time
def attempt(step, call):
    try:
        call()
        print(step, 'ok')
    except OSError as error:
        print(step, errno.errorcode.get(error.errno, error.errno))
fd = os.open(os.environ['F'], os.O_WRONLY)
os.write(fd, b'{"n":')
status = os.open(os.environ['STATUS'], os.O_RDONLY)
open(os.environ['READY'], 'w').close()
while not os.path.exists(os.environ['GO']):
    time.sleep(0.05)
attempt('write', lambda: os.write(fd, b'1}'))
attempt('ftruncate', lambda: os.ftruncate(fd, 0))
attempt('fsync', lambda: os.fsync(fd))
attempt('close', lambda: os.close(fd))
attempt('read status.json', lambda: os.read(status, 100))
PY`,
      { env: { ...process.env, F: file('alpha', 'control/invoke.json'), STATUS: file('alpha', 'status.json'), READY: ready, GO: go }, timeoutMs: 30_000 },
    );
    await waitFor(async () => (await sh(`test -e ${q(ready)}`)).code === 0, { what: 'the writer to open invoke.json' });
    const invokesBefore = (await metrics('alpha')).invokes_total;

    await rm(join(node.servicesDir, 'alpha.json'));
    await waitFor(async () => !(await services()).includes('alpha'), { what: 'alpha to disappear' });
    const listed = await readJson<Array<{ service_id: string }>>(join(node.mount, 'SERVICES.json'));
    tt.notOk(
      listed.some((s) => s.service_id === 'alpha'),
      'SERVICES.json no longer lists it',
    );
    const cat = await sh(`cat ${q(file('alpha', 'status.json'))}`);
    tt.match(cat.stderr, /No such file or directory/, 'its files are gone');

    await writeFile(go, '');
    const run = await writer;
    tt.equal(run.signal, null, 'the writer was not killed by the bound (no hang)');
    tt.equal(run.code, 0, run.stderr);
    tt.same(
      run.stdout.trim().split('\n'),
      ['write ENOENT', 'ftruncate ENOENT', 'fsync ENOENT', 'close ENOENT', 'read status.json ENOENT'],
      'each use of the handles got ENOENT, the read of a document opened before too',
    );
    tt.equal(invokesBefore, 7, 'nothing ran for the removed service');
  },
);

await t.test("a manifest removed while its run is in flight: the blocked writer's close() gets ENOENT", async (tt) => {
  await putManifest('doomed.json', JSON.stringify(versioned('doomed', 1, { timeout_ms: 8000 })));
  await waitFor(async () => (await services()).includes('doomed'), { what: 'services/doomed' });
  // /bin/echo reports a failed close(), unlike bash's builtin.
  const writer = invoke('doomed', '{"do":"hang"}');
  await waitFor(async () => (await readJson(file('doomed', 'status.json'))).running === 1, { what: 'the doomed run to start' });
  await rm(join(node.servicesDir, 'doomed.json'));
  const run = await writer;
  tt.equal(run.signal, null, 'the writer was not killed by the bound (no hang)');
  tt.not(run.code, 0, 'the writer failed');
  tt.match(run.stderr, /No such file or directory/, `its close() got ENOENT (${run.stderr.trim()})`);
  tt.notOk((await services()).includes('doomed'), 'the service is gone');
});

await t.test('a services directory that cannot be read for a while: its services keep running, with their state', async (tt) => {
  const away = `${node.servicesDir}.away`;
  await writeFile(file('steady', 'config.json'), '{"supervision":{"max_consecutive_failures":7}}\n');
  const before = (await metrics('steady')).invokes_total as number;
  tt.ok(before > 0, `steady has run (${before} invocations)`);
  await rename(node.servicesDir, away);
  try {
    const unreadable = await waitFor(
      async () => {
        const list = await errors();
        // The directory's own error: a reload that listed it just before it went reports a file of it first.
        return list.length === 1 && list[0]?.rule === 'read' && list[0].file === node.servicesDir && list;
      },
      { what: 'ERRORS.json to report the services directory' },
    );
    tt.match(unreadable, [{ file: node.servicesDir, rule: 'read', message: /cannot read services directory/ }]);
    tt.ok((await services()).includes('steady'), 'steady is still there');
    const seen = (await metrics('steady')).invokes_total as number;
    // The background loop keeps invoking it (its count is checked in the next test).
    await waitFor(async () => ((await metrics('steady')).invokes_total as number) > seen, { what: 'steady to answer invokes meanwhile' });
  } finally {
    await rename(away, node.servicesDir);
  }
  await waitFor(async () => (await errors()).length === 0, { what: 'ERRORS.json to clear' });
  tt.ok(((await metrics('steady')).invokes_total as number) > before, 'its counters went on, not from 0');
  tt.same(JSON.parse(await readText(file('steady', 'config.json'))), { supervision: { max_consecutive_failures: 7 } }, 'its config.json is kept');
});

await t.test('a reloaded service that nobody edited answered every invocation meanwhile', async (tt) => {
  await writeFile(stopFile, '');
  const run = await background;
  tt.equal(run.code, 0, run.stderr);
  const [count, bad] = run.stdout.trim().split(' ').map(Number) as [number, number];
  tt.ok(count > 10, `the loop invoked ${count} times`);
  tt.equal(bad, 0, 'no invocation failed at the filesystem');
  tt.match(
    await metrics('steady'),
    { invokes_total: count, failures_total: 0, rejected_total: 0, cancelled_total: 0, timeouts_total: 0 },
    'every invocation ran and succeeded',
  );
  tt.equal((await readJson(file('steady', 'status.json'))).state, 'ok');
});

await t.test(
  'a reload that cannot apply one change applies none of its harm: a runtime.cwd inside the mount is a problem, a retired service leaves the tree',
  async (tt) => {
    // Load order is by file name: `a-retiring` (executable → catalog-only, so its runtime retires)
    // comes before `b-moving`, whose new runtime.cwd lies inside the mount.
    const quiet = await startNode(tt, {
      args: ['--manifest-reload-interval-ms', '0', '--no-fs-service'],
      manifests: [versioned('a-retiring', 1), versioned('b-moving', 1)],
    });
    const list = async (): Promise<string[]> => (await sh(`ls ${q(join(quiet.mount, 'services'))}`)).stdout.split('\n').filter(Boolean);
    tt.same(await list(), ['a-retiring', 'b-moving']);
    await writeFile(join(quiet.servicesDir, 'a-retiring.json'), JSON.stringify({ service_id: 'a-retiring', kind: 'test' }));
    const moving = join(quiet.servicesDir, 'b-moving.json');
    await writeFile(moving, JSON.stringify(versioned('b-moving', 2, { cwd: join(quiet.mount, 'services') })));
    process.kill(quiet.child.pid as number, 'SIGHUP');
    const problems = await waitFor(
      async () => {
        const listed = await readJson<Problem[]>(join(quiet.mount, 'ERRORS.json'));
        return listed.length > 0 && listed;
      },
      { what: 'ERRORS.json to name the cwd' },
    );
    tt.match(problems, [{ file: moving, json_path: '/runtime/cwd', rule: 'cwd', message: /lies inside the mount/ }], 'the cwd is a manifest problem');
    tt.same(await list(), ['b-moving'], 'the retired runtime left services/');
    const listed = await readJson<Array<{ service_id: string; path: string | null }>>(join(quiet.mount, 'SERVICES.json'));
    tt.match(
      listed,
      [
        { service_id: 'a-retiring', path: null },
        { service_id: 'b-moving', path: 'services/b-moving' },
      ],
      'SERVICES.json: a-retiring catalog-only',
    );
    const run = await sh(`/bin/echo '{"n":1}' > ${q(join(quiet.service('b-moving'), 'control/invoke.json'))}`);
    tt.equal(run.code, 0, run.stderr);
    tt.same(await readJson(join(quiet.service('b-moving'), 'result.json')), { v: 1, got: { n: 1 } }, 'b-moving runs its previous good version');
  },
);

await t.test('interval 0: only SIGHUP reloads', async (tt) => {
  const quiet = await startNode(tt, { args: ['--manifest-reload-interval-ms', '0'], manifests: [manifest('first', 'echo')] });
  const list = async (): Promise<string[]> => (await sh(`ls ${q(join(quiet.mount, 'services'))}`)).stdout.split('\n').filter(Boolean);
  tt.same(await list(), ['first']);
  await writeFile(join(quiet.servicesDir, 'second.json'), JSON.stringify(manifest('second', 'echo')));
  // Absence can only be shown by waiting: several default intervals' worth would have reloaded by now.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  tt.same(await list(), ['first'], 'no reload without SIGHUP');
  process.kill(quiet.child.pid as number, 'SIGHUP');
  await waitFor(async () => (await list()).includes('second'), { what: 'services/second after SIGHUP' });
  tt.same(await list(), ['first', 'second']);
  const run = await sh(`/bin/echo '{"x":2}' > ${q(join(quiet.service('second'), 'control/invoke.json'))}`);
  tt.equal(run.code, 0, run.stderr);
  tt.equal((await readJson(join(quiet.mount, 'NODE.json'))).pid, quiet.child.pid, 'the same daemon (SIGHUP did not stop it)');
  // A SIGHUP with nothing to change is still answered, so the operator knows it arrived.
  process.kill(quiet.child.pid as number, 'SIGHUP');
  await waitFor(async () => (await readFile(quiet.logFile, 'utf8')).includes('manifests reloaded: nothing changed'), {
    what: "the node's answer to a SIGHUP that changed nothing",
  });
  tt.pass('a SIGHUP that changed nothing is logged');
});
