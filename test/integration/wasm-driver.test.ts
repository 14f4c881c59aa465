// runtime.type "wasm" through a real mount (SPEC §4), touched only from child processes: the wasm
// echo answers what the native echo answers; an infinite loop is stopped at timeout_ms while the node
// and the service go on; the memory cap; no files without a preopen, a read-only preopen cannot be
// written; 8 concurrent invocations; HOST.json; bad modules at start-up (fatal, naming the file and
// the reason) and at reload (ERRORS.json, the last good version keeps answering); a changed module
// is picked up by the reload.
import t from 'tap';
import { copyFile, mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, REPO, readJson, readText, spawnMounter, startNode, tempDir, TRANSACTION } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { ECHO_WASM, wat, watFixture } from '../helpers/wat.js';

const work = await tempDir(t, 'acheron-wasm-');
const modules = join(work, 'modules');
const shared = join(work, 'shared');
await mkdir(modules);
await mkdir(shared);
await writeFile(join(shared, 'data.txt'), 'shared data\n');
for (const name of ['loop', 'grow', 'files']) await writeFile(join(modules, `${name}.wasm`), await watFixture(name));
await copyFile(ECHO_WASM, join(modules, 'changing.wasm'));

const wasm = (serviceId: string, module: string, runtime: Record<string, unknown> = {}): Record<string, unknown> => ({
  service_id: serviceId,
  kind: 'test',
  runtime: { type: 'wasm', module_path: join(modules, module), ...runtime },
});
const node = await startNode(t, {
  args: ['--manifest-reload-interval-ms', '300'],
  manifests: [
    { service_id: 'echo', kind: 'echo', runtime: { executable_path: join(REPO, 'bin', 'acheron-echo-driver.js'), timeout_ms: 20_000 } },
    { service_id: 'echo-wasm', kind: 'echo', runtime: { type: 'wasm', module_path: ECHO_WASM, max_concurrency: 8 } },
    wasm('loop', 'loop.wasm', { timeout_ms: 500 }),
    wasm('grow', 'grow.wasm', { wasm: { max_memory_bytes: 1048576 } }),
    wasm('files', 'files.wasm'),
    wasm('files-ro', 'files.wasm', { wasm: { preopens: [{ host_path: shared, guest_path: '/shared' }] } }),
    wasm('changing', 'changing.wasm'),
  ],
});
const file = (id: string, name: string): string => join(node.service(id), name);
/** Writes the payload with printf (exact bytes, no newline added) and closes: one invocation. */
const invoke = (id: string, payload: string) =>
  sh(`printf '%s' "$P" > ${q(file(id, 'control/invoke.json'))}`, { env: { ...process.env, P: payload }, timeoutMs: 60_000 });
const status = (id: string) => readJson<Record<string, unknown>>(file(id, 'status.json'));

t.test('the wasm echo answers what the native echo answers', async (t) => {
  const payloads = [
    '{"msg":"hi"}',
    '{"msg":"hi"}\n',
    ' { "a" : [1, 2.50, -0, 1e3, 1E-7, 1e21, 123456789012345678901234567890, 0.30000000000000004] }',
    '{"b":1,"a":2,"b":3,"10":4,"2":5}',
    '{"s":"\\u0041\\/\\ud83d\\ude00\\u001f é \\" \\\\ \\n"}',
    '{"nested":{"x":[{"y":null},true,false]}}',
  ];
  // The same bytes but for the service id and the invocation id.
  const normalized = (text: string, serviceId: string): string =>
    text.replace(`"service_id":"${serviceId}"`, '"service_id":"S"').replace(/"invocation_id":"[0-9]+-[0-9]+"/, '"invocation_id":"I"');
  for (const payload of payloads) {
    for (const id of ['echo', 'echo-wasm']) t.equal((await invoke(id, payload)).code, 0);
    t.equal(
      normalized(await readText(file('echo-wasm', 'result.json')), 'echo-wasm'),
      normalized(await readText(file('echo', 'result.json')), 'echo'),
      JSON.stringify(payload),
    );
  }
  for (const id of ['echo', 'echo-wasm']) await invoke(id, '{"fail":"boom"}');
  t.equal(await readText(file('echo-wasm', 'last_error.txt')), 'boom\n', 'stderr becomes last_error.txt');
  t.equal(await readText(file('echo', 'last_error.txt')), 'boom\n');
  t.match(await status('echo-wasm'), { state: 'error', exit_code: 1, runtime: { type: 'wasm' } }, 'the exit code reaches status.json');
  t.match(await status('echo'), { state: 'error', exit_code: 1 });
});

t.test('HOST.json describes the wasm host', async (t) => {
  const host = await readJson(file('files-ro', 'HOST.json'));
  t.match(host, {
    host_kind: 'wasm_worker',
    runtime_kind: 'wasm',
    wasm: {
      engine: 'node:wasi',
      wasi_version: 'preview1',
      module: { path: join(modules, 'files.wasm'), sha256: /^[0-9a-f]{64}$/ },
      limits: { max_memory_bytes: 67108864, timeout_ms: 30000, max_output_bytes: 1048576 },
      preopens: [{ guest_path: '/shared', host_path: shared, mode: 'ro' }],
    },
  });
  // config.json's overrides are the limits in force, so HOST.json shows them; `{}` brings the manifest's back.
  const config = (text: string) => sh(`echo ${q(text)} > ${q(file('files-ro', 'config.json'))}`);
  t.equal((await config('{"timeout_ms":700,"max_output_bytes":100000}')).code, 0);
  t.match(await readJson(file('files-ro', 'HOST.json')), { wasm: { limits: { timeout_ms: 700, max_output_bytes: 100000, max_memory_bytes: 67108864 } } });
  t.equal((await config('{}')).code, 0);
  t.match(await readJson(file('files-ro', 'HOST.json')), { wasm: { limits: { timeout_ms: 30000, max_output_bytes: 1048576 } } });
});

t.test('an infinite loop is stopped at timeout_ms; the node and the service go on', async (t) => {
  const looping = invoke('loop', '{}');
  await waitFor(async () => (await status('loop')).state === 'running', { what: 'loop running' });
  // While the module spins, the daemon serves everything else.
  t.equal((await invoke('echo-wasm', '{"during":"loop"}')).code, 0);
  t.match(await readJson(file('echo-wasm', 'result.json')), { echo: { during: 'loop' } });
  t.equal((await looping).code, 0, 'close() returns once the run is stopped');
  t.match(await status('loop'), { state: 'timeout', timeouts_total: 1 });
  t.equal(await readText(file('loop', 'last_error.txt')), `${join(modules, 'loop.wasm')} timed out after 500 ms and was stopped\n`);
  t.equal((await invoke('loop', '{}')).code, 0);
  t.match(await status('loop'), { state: 'timeout', timeouts_total: 2 }, 'the service runs again, and is stopped again');
  t.equal((await invoke('echo-wasm', '{"after":"loop"}')).code, 0);
  t.match(await readJson(file('echo-wasm', 'result.json')), { echo: { after: 'loop' } });
});

t.test('a module that grows past max_memory_bytes fails with a clear error', async (t) => {
  await invoke('grow', '{}');
  t.match(await status('grow'), { state: 'error', exit_code: null });
  t.equal(
    await readText(file('grow', 'last_error.txt')),
    `${join(modules, 'grow.wasm')} trapped: RuntimeError: unreachable (its memory had reached the maximum of 1048576 bytes: runtime.wasm.max_memory_bytes or the module's own limit)\n`,
  );
});

t.test('no files without a preopen; a read-only preopen cannot be written', async (t) => {
  await invoke('files', '{"r":"/etc/passwd"}');
  t.match(await status('files'), { state: 'error', exit_code: 1 });
  t.equal(await readText(file('files', 'last_error.txt')), 'errno 08\n', 'EBADF: there is no directory to open it from');
  await invoke('files-ro', '{"r":"data.txt"}');
  t.equal(await readText(file('files-ro', 'result.json')), 'shared data\n', 'the preopen can be read');
  await invoke('files-ro', '{"r":"../../../../etc/passwd"}');
  t.equal(await readText(file('files-ro', 'last_error.txt')), 'errno 76\n', 'ENOTCAPABLE: no way out of the preopen');
  await invoke('files-ro', '{"w":"written.txt"}');
  t.match(await status('files-ro'), { state: 'error', exit_code: 1 });
  t.equal(await readText(file('files-ro', 'last_error.txt')), 'errno 76\n', 'ENOTCAPABLE: read-only');
  t.same(await readdir(shared), ['data.txt'], 'nothing was written');
});

t.test('8 concurrent invocations give 8 correct results', async (t) => {
  const runs = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      sh(`python3 ${q(TRANSACTION)} ${q(file('echo-wasm', 'control/invoke.json'))} ${q(`{"i":${i}}`)}`, { timeoutMs: 60_000 }),
    ),
  );
  runs.forEach((run, i) => {
    t.equal(run.code, 0, run.stderr);
    t.match(JSON.parse(run.stdout), { ok: true, service_id: 'echo-wasm', echo: { i } }, `transaction ${i}`);
  });
});

t.test('reload: a changed module is picked up, a bad one keeps the last good version', async (t) => {
  const hash = async (): Promise<string> => (await readJson<{ wasm: { module: { sha256: string } } }>(file('changing', 'HOST.json'))).wasm.module.sha256;
  const before = await hash();
  const replace = async (bytes: Uint8Array | string): Promise<void> => {
    await writeFile(join(modules, '.changing.tmp'), bytes);
    await rename(join(modules, '.changing.tmp'), join(modules, 'changing.wasm'));
  };
  const version2 = await wat(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 64) "{\\"version\\":2}\\n")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 14))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))`);
  await replace(version2);
  await waitFor(async () => (await hash()) !== before, { what: 'the changed module in HOST.json' });
  await invoke('changing', '{}');
  t.same(await readJson(file('changing', 'result.json')), { version: 2 }, 'the new module answers');

  const manifest = join(node.servicesDir, 'changing.json');
  const errors = () => readJson<Array<{ file: string; json_path: string; rule: string; message: string }>>(join(node.mount, 'ERRORS.json'));
  const bad: Array<[string, Uint8Array | string, string]> = [
    ['not wasm', '#!/bin/sh\necho hi\n', 'not a WebAssembly module (the file does not start with "\\0asm")'],
    [
      'no _start',
      await wat('(module (memory (export "memory") 1))'),
      'exports no _start function (a WASI command module needs one; a reactor or library module cannot be run)',
    ],
    [
      'an import WASI lacks',
      await wat('(module (import "env" "now" (func)) (memory (export "memory") 1) (func (export "_start")))'),
      'imports function env.now, which WASI preview1 does not provide (only wasi_snapshot_preview1 functions are)',
    ],
  ];
  for (const [what, bytes, reason] of bad) {
    await replace(bytes);
    await waitFor(async () => (await errors()).length > 0, { what: `ERRORS.json for ${what}` });
    t.same(
      await errors(),
      [
        {
          file: manifest,
          json_path: '/runtime/module_path',
          rule: 'wasm',
          message: `${manifest}: /runtime/module_path: ${join(modules, 'changing.wasm')}: ${reason}`,
        },
      ],
      what,
    );
    await invoke('changing', '{}');
    t.same(await readJson(file('changing', 'result.json')), { version: 2 }, `${what}: the last good version keeps answering`);
    await replace(version2);
    await waitFor(async () => (await errors()).length === 0, { what: 'ERRORS.json empty again' });
  }
  t.match(await readJson(file('changing', 'metrics.json')), { invokes_total: 4, failures_total: 0 }, 'one runtime throughout: its counters kept');
});

t.test('a bad module at start-up is fatal, naming the file and the reason', async (t) => {
  const dir = await tempDir(t);
  const mount = join(dir, 'mnt');
  const servicesDir = join(dir, 'services.d');
  await mkdir(servicesDir);
  await writeFile(join(dir, 'bad.wasm'), await wat('(module (memory (export "memory") 20) (func (export "_start")))'));
  const manifest = join(servicesDir, 'bad.json');
  // Relative to the manifest's directory, as executable_path would be.
  await writeFile(
    manifest,
    JSON.stringify({ service_id: 'bad', kind: 'test', runtime: { type: 'wasm', module_path: '../bad.wasm', wasm: { max_memory_bytes: 1048576 } } }),
  );
  const daemon = spawnMounter(
    t,
    [ACHERON, 'node', '--node-id', 'bad', '--mount', mount, '--services-dir', servicesDir, '--state-file', join(dir, 'state.json')],
    mount,
  );
  t.equal((await daemon.exited).code, 1);
  t.match(
    daemon.stderr(),
    `${manifest}: /runtime/module_path: ${join(dir, 'bad.wasm')}: declares an initial memory of 1310720 bytes, above runtime.wasm.max_memory_bytes (1048576)`,
  );
});
