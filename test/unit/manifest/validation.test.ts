import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadServices } from '../../../src/manifest/index.js';
import { loadSchemas, type Problem } from '../../../src/protocol/schemas.js';

const schemas = await loadSchemas();
const dir = await mkdtemp(join(tmpdir(), 'acheron-manifest-validation-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

let counter = 0;
/** Loads one manifest (written as JSON unless a string is given) and returns its problems. */
async function problemsOf(manifest: unknown): Promise<{ file: string; problems: Problem[]; loaded: number }> {
  const file = join(dir, `m${++counter}.json`);
  await writeFile(file, typeof manifest === 'string' || Buffer.isBuffer(manifest) ? manifest : JSON.stringify(manifest));
  const { services, problems } = await loadServices({ manifestFiles: [file], servicesDirs: [], nodeId: 'n1', reserved: [], schemas });
  return { file, problems, loaded: services.length };
}

interface Asserts {
  same(found: unknown, wanted: unknown, message: string): boolean;
}

/** Asserts that the file is refused with exactly one problem: this path, rule and description. */
async function expectProblem(t: Asserts, manifest: unknown, jsonPath: string, rule: string, description: string): Promise<void> {
  const { file, problems, loaded } = await problemsOf(manifest);
  t.same(
    { loaded, problems },
    { loaded: 0, problems: [{ file, json_path: jsonPath, rule, message: `${file}: ${jsonPath}: ${description}` }] },
    `${jsonPath}: ${description}`,
  );
}

const base = { service_id: 'echo', kind: 'echo' };

t.test('a minimal manifest loads with no problem', async (t) => {
  const { problems, loaded } = await problemsOf(base);
  t.same(problems, []);
  t.equal(loaded, 1);
});

t.test('unknown keys are errors, named in the path', async (t) => {
  await expectProblem(t, { ...base, servce: 'x' }, '/servce', 'additionalProperties', 'unknown key');
  await expectProblem(t, { ...base, runtime: { timout_ms: 5 } }, '/runtime/timout_ms', 'additionalProperties', 'unknown key');
  await expectProblem(t, { ...base, 'a/b~c': 1 }, '/a~1b~0c', 'additionalProperties', 'unknown key');
});

t.test('x- keys and $schema are allowed', async (t) => {
  const { problems, loaded } = await problemsOf({
    $schema: 'https://acheron.dev/schemas/manifest.schema.json',
    ...base,
    'x-owner': { team: 'a' },
    runtime: { 'x-note': 'hi' },
  });
  t.same(problems, []);
  t.equal(loaded, 1);
});

t.test('missing required keys are named by their own path', async (t) => {
  await expectProblem(t, { kind: 'echo' }, '/service_id', 'required', 'is required');
  await expectProblem(t, { ...base, mounts: [{ mount_id: 'm' }] }, '/mounts/0/mount_path', 'required', 'is required');
});

t.test('identifiers', async (t) => {
  await expectProblem(t, { ...base, service_id: 'a/b' }, '/service_id', 'pattern', 'must match pattern "^[A-Za-z0-9._-]*$"');
  await expectProblem(t, { ...base, service_id: 'a\u0000b' }, '/service_id', 'pattern', 'must match pattern "^[A-Za-z0-9._-]*$"');
  await expectProblem(t, { ...base, service_id: '..' }, '/service_id', 'not', 'must not be one of ".", ".."');
  await expectProblem(t, { ...base, kind: '.' }, '/kind', 'not', 'must not be one of ".", ".."');
  await expectProblem(t, { ...base, service_id: '' }, '/service_id', 'minLength', 'must NOT have fewer than 1 characters');
  await expectProblem(t, { ...base, service_id: 'x'.repeat(129) }, '/service_id', 'maxLength', 'must NOT have more than 128 characters');
  await expectProblem(
    t,
    { ...base, mounts: [{ mount_id: '../x', mount_path: '/nodes/x' }] },
    '/mounts/0/mount_id',
    'pattern',
    'must match pattern "^[A-Za-z0-9._-]*$"',
  );
  const { problems } = await problemsOf({ ...base, service_id: `A-z_0.9${'x'.repeat(121)}` });
  t.same(problems, [], '128 characters of the whole alphabet are fine');
});

t.test('service ids that collide with the node tree are refused', async (t) => {
  for (const reserved of ['services', 'fs', 'NODE.json', 'SERVICES.json', 'ERRORS.json']) {
    await expectProblem(
      t,
      { ...base, service_id: reserved },
      '/service_id',
      'not',
      'must not be one of "services", "fs", "NODE.json", "SERVICES.json", "ERRORS.json"',
    );
  }
});

t.test('wrong types and ranges', async (t) => {
  await expectProblem(t, [base], '/', 'type', 'must be object');
  await expectProblem(t, { ...base, enabled: 'yes' }, '/enabled', 'type', 'must be boolean');
  await expectProblem(t, { ...base, version: 1 }, '/version', 'type', 'must be string');
  await expectProblem(t, { ...base, state: 'x'.repeat(65) }, '/state', 'maxLength', 'must NOT have more than 64 characters');
  await expectProblem(t, { ...base, endpoints: [] }, '/endpoints', 'minItems', 'must NOT have fewer than 1 items');
  const path = 'must be a path under /nodes/ without control characters or backslashes';
  await expectProblem(t, { ...base, endpoints: ['/srv/echo'] }, '/endpoints/0', 'pattern', path);
  await expectProblem(t, { ...base, endpoints: ['/nodes/{node_id}/a\nb'] }, '/endpoints/0', 'pattern', path);
  await expectProblem(t, { ...base, mounts: [{ mount_id: 'm', mount_path: '/nodes/{node_id}/a\\b' }] }, '/mounts/0/mount_path', 'pattern', path);
  await expectProblem(t, { ...base, capabilities: [] }, '/capabilities', 'type', 'must be object');
  await expectProblem(t, { ...base, runtime: { timeout_ms: '30' } }, '/runtime/timeout_ms', 'type', 'must be integer');
  await expectProblem(t, { ...base, runtime: { timeout_ms: 1.5 } }, '/runtime/timeout_ms', 'type', 'must be integer');
  await expectProblem(t, { ...base, runtime: { timeout_ms: 0 } }, '/runtime/timeout_ms', 'minimum', 'must be >= 1');
  await expectProblem(t, { ...base, runtime: { max_concurrency: 1025 } }, '/runtime/max_concurrency', 'maximum', 'must be <= 1024');
  await expectProblem(t, { ...base, runtime: { type: 'docker' } }, '/runtime/type', 'enum', 'must be one of "native_proc", "wasm", "native_inproc"');
  await expectProblem(t, { ...base, runtime: { abi: 'v2' } }, '/runtime/abi', 'const', 'must be "namespace-driver-v1"');
  await expectProblem(t, { ...base, runtime: { mode: 'daemon' } }, '/runtime/mode', 'enum', 'must be one of "spawn", "persistent"');
  await expectProblem(t, { ...base, runtime: { env: { A: 1 } } }, '/runtime/env/A', 'type', 'must be string');
  await expectProblem(t, { ...base, runtime: { args: 'a b' } }, '/runtime/args', 'type', 'must be array');
  await expectProblem(t, { ...base, permissions: { require_project_token: 'yes' } }, '/permissions/require_project_token', 'type', 'must be boolean');
  await expectProblem(t, { ...base, schema: { input: true } }, '/schema/input', 'type', 'must be object');
});

t.test('every problem of a file is reported at once', async (t) => {
  const { problems } = await problemsOf({ service_id: 'a/b', runtime: { timeout_ms: 'x', bogus: 1 } });
  t.same(problems.map((p) => `${p.json_path} ${p.rule}`).sort(), [
    '/kind required',
    '/runtime/bogus additionalProperties',
    '/runtime/timeout_ms type',
    '/service_id pattern',
  ]);
});

t.test('help_md is limited to 65536 characters', async (t) => {
  const { problems } = await problemsOf({ ...base, help_md: 'x'.repeat(65536) });
  t.same(problems, []);
  await expectProblem(t, { ...base, help_md: 'x'.repeat(65537) }, '/help_md', 'maxLength', 'must NOT have more than 65536 characters');
});

t.test('invalid JSON names the position, never the content', async (t) => {
  await expectProblem(t, '{"service_id": "echo",', '/', 'json', 'invalid JSON at line 1, column 23 (byte 22): the document ends inside a JSON value');
  await expectProblem(t, '{\n  "service_id": "é",\n  kind: "x"\n}', '/', 'json', 'invalid JSON at line 3, column 3 (byte 26): unexpected character');
  // What /etc/shadow looks like: JSON.parse's own message would quote its start.
  const secret = 'root:$y$j9T$Sup3rS3cretHash$abcdefghijklmnop:19000:0:99999:7:::\n';
  await expectProblem(t, secret, '/', 'json', 'invalid JSON at line 1, column 1 (byte 0): unexpected character');
  await expectProblem(t, '', '/', 'json', 'invalid JSON at byte 0: the document is empty');
  await expectProblem(
    t,
    '\uFEFF{"service_id": "echo"}',
    '/',
    'json',
    'invalid JSON at byte 0: a byte order mark (U+FEFF, bytes EF BB BF), which JSON does not take: save it as UTF-8 without one',
  );
});

t.test('a number that overflows to Infinity (1e400) is refused, naming it: it could be neither hashed nor published', async (t) => {
  const overflow = 'a number beyond what a double holds (it overflows to Infinity); numbers must be finite';
  await expectProblem(t, '{"service_id":"echo","kind":"echo","capabilities":{"x":1e400}}', '/capabilities/x', 'number', overflow);
  await expectProblem(
    t,
    '{"service_id":"echo","kind":"echo","capabilities":{"a":[1,-1e999]}}',
    '/capabilities/a/1',
    'number',
    overflow.replace('Infinity', '-Infinity'),
  );
  t.same((await problemsOf('{"service_id":"echo","kind":"echo","capabilities":{"x":1.7e308}}')).problems, [], 'the largest doubles are fine');
});

t.test('a key written twice in one object is refused at its path: JSON.parse would keep the last silently', async (t) => {
  const twice = 'this key is written twice in one object; JSON keeps only the last, so the other is not used: keep one';
  const cases: Array<[string, string]> = [
    ['{"service_id":"echo","service_id":"other","kind":"echo"}', '/service_id'],
    ['{"service_id":"echo","kind":"echo","runtime":{"timeout_ms":60000,"env":{"A":"1"},"timeout_ms":1000}}', '/runtime/timeout_ms'],
    ['{"service_id":"echo","kind":"echo","capabilities":{"l":[{"a/b~":1},{"x":1,"a/b~":2,"a/b~":3}]}}', '/capabilities/l/1/a~1b~0'],
    // Escapes spell the same key: JSON.parse sees one name twice.
    ['{"service_id":"echo","kind":"echo","capabilities":{"\\u0061":1,"a":2}}', '/capabilities/a'],
  ];
  for (const [text, path] of cases) await expectProblem(t, text, path, 'key', twice);
  t.same(
    (await problemsOf('{"service_id":"echo","kind":"echo","capabilities":{"a":{"k":1},"b":{"k":"a\\"\\"k\\":"},"c":[{"k":1},{"k":2}]}}')).problems,
    [],
    'the same key in different objects, and quotes inside strings, are fine',
  );
});

t.test('bytes that are not UTF-8 are refused, naming the first bad byte', async (t) => {
  await expectProblem(t, Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), '/', 'utf8', 'not valid UTF-8 at byte 6');
  for (const [bytes, at] of [
    [[0x7b, 0xc3, 0x41, 0x7d], 2],
    [[0x7b, 0x7d, 0xe2, 0x82], 2],
    [[0xc0, 0x80], 0],
    [[0xed, 0xa0, 0x80], 1],
  ] as const) {
    const { file, problems } = await problemsOf(Buffer.from(bytes));
    t.same(problems, [{ file, json_path: '/', rule: 'utf8', message: `${file}: /: not valid UTF-8 at byte ${at}` }], `${Buffer.from(bytes).toString('hex')}`);
  }
});

t.test('enabled:false skips the file before any other check', async (t) => {
  const skipped = await problemsOf({ enabled: false, service_id: 'a/b', bogus: 1, runtime: { type: 'wasm' } });
  t.same(skipped.problems, []);
  t.equal(skipped.loaded, 0);
  const broken = await problemsOf('{"enabled": false,');
  t.match(broken.problems, [{ rule: 'json' }], 'but it must still be JSON');
});

t.test('runtime type native_inproc is refused', async (t) => {
  await expectProblem(
    t,
    { ...base, runtime: { type: 'native_inproc' } },
    '/runtime/type',
    'unsupported',
    'runtime type "native_inproc" is not supported; use "native_proc" or "wasm"',
  );
});

t.test('wasm runtime keys belong to type wasm, native ones to native_proc', async (t) => {
  const wasm = { type: 'wasm', module_path: 'echo.wasm' };
  t.same(
    (await problemsOf({ ...base, runtime: { ...wasm, wasm: { max_memory_bytes: 65536, preopens: [{ host_path: '.', guest_path: '.', mode: 'rw' }] } } }))
      .problems,
    [],
  );
  await expectProblem(
    t,
    { ...base, runtime: { ...wasm, executable_path: '/bin/cat' } },
    '/runtime/executable_path',
    'unsupported',
    'runtime type "wasm" runs runtime.module_path; executable_path belongs to "native_proc"',
  );
  await expectProblem(
    t,
    { ...base, runtime: { ...wasm, mode: 'persistent' } },
    '/runtime/mode',
    'unsupported',
    'runtime type "wasm" runs a fresh instance per invocation; mode "persistent" is for "native_proc" (docs/driver-abi.md says why)',
  );
  await expectProblem(
    t,
    { ...base, runtime: { ...wasm, cwd: '/tmp' } },
    '/runtime/cwd',
    'unsupported',
    'runtime type "wasm" has no cwd: a module sees only its preopens and runs inside the node',
  );
  await expectProblem(
    t,
    { ...base, runtime: { module_path: 'echo.wasm' } },
    '/runtime/module_path',
    'unsupported',
    'runtime.module_path needs runtime.type "wasm"',
  );
  await expectProblem(
    t,
    {
      ...base,
      runtime: {
        ...wasm,
        wasm: {
          preopens: [
            { host_path: 'a', guest_path: '/d' },
            { host_path: 'b', guest_path: '/d' },
          ],
        },
      },
    },
    '/runtime/wasm/preopens/1/guest_path',
    'duplicate',
    'guest_path "/d" is preopened twice',
  );
  await expectProblem(t, { ...base, runtime: { ...wasm, wasm: { max_memory_bytes: 1000 } } }, '/runtime/wasm/max_memory_bytes', 'minimum', 'must be >= 65536');
  await expectProblem(
    t,
    { ...base, runtime: { ...wasm, wasm: { preopens: [{ host_path: 'a', guest_path: 'data' }] } } },
    '/runtime/wasm/preopens/0/guest_path',
    'pattern',
    'must match pattern "^[/.][^\\u0000]*$"',
  );
});

t.test('an input schema that does not compile is a load problem', async (t) => {
  const { file, problems } = await problemsOf({ ...base, schema: { input: { type: 'objekt' } } });
  t.equal(problems.length, 1);
  t.match(problems[0], { file, json_path: '/schema/input', rule: 'schema' });
  t.match(problems[0]?.message, `${file}: /schema/input: invalid JSON Schema: `);
  const good = await problemsOf({ ...base, schema: { input: { type: 'object', required: ['msg'] } } });
  t.same(good.problems, []);
});

t.test('an unreadable manifest is a problem', async (t) => {
  const file = join(dir, 'missing.json');
  const { problems } = await loadServices({ manifestFiles: [file], servicesDirs: [], nodeId: 'n1', reserved: [], schemas });
  t.equal(problems.length, 1);
  t.match(problems[0], { file, json_path: '/', rule: 'read' });
  t.match(problems[0]?.message, `${file}: /: cannot read: ENOENT`);
});

t.test('duplicates name both sources', async (t) => {
  const first = join(dir, 'dup-1.json');
  const second = join(dir, 'dup-2.json');
  const builtin = join(dir, 'dup-3.json');
  await writeFile(first, JSON.stringify(base));
  await writeFile(second, JSON.stringify({ ...base, kind: 'other' }));
  await writeFile(builtin, JSON.stringify({ service_id: 'terminal-1', kind: 'terminal' }));
  const { services, problems } = await loadServices({
    manifestFiles: [first, second, builtin],
    servicesDirs: [],
    nodeId: 'n1',
    reserved: [{ service_id: 'terminal-1', source: 'built-in terminal provider' }],
    schemas,
  });
  t.same(
    services.map((s) => s.source),
    [first],
    'the first definition wins',
  );
  t.same(problems, [
    { file: second, json_path: '/service_id', rule: 'duplicate', message: `${second}: /service_id: service_id "echo" is already defined by ${first}` },
    {
      file: builtin,
      json_path: '/service_id',
      rule: 'duplicate',
      message: `${builtin}: /service_id: service_id "terminal-1" is already defined by built-in terminal provider`,
    },
  ]);
});

t.test("at a reload the running service stays its file's: a new file claiming its id is the duplicate, whatever sorts first", async (t) => {
  const running = join(dir, 'rel-2-running.json');
  const stray = join(dir, 'rel-1-stray.json');
  await writeFile(running, JSON.stringify(base));
  await writeFile(stray, JSON.stringify({ ...base, kind: 'other' }));
  const load = (incumbents?: Map<string, string>) =>
    loadServices({ manifestFiles: [stray, running], servicesDirs: [], nodeId: 'n1', reserved: [], schemas, ...(incumbents ? { incumbents } : {}) });
  const atStart = await load();
  t.same(
    atStart.services.map((s) => s.source),
    [stray],
    'at start-up the first in load order wins',
  );
  const reloaded = await load(new Map([['echo', running]]));
  t.same(
    reloaded.services.map((s) => s.source),
    [running],
    'at a reload the running one keeps it',
  );
  t.same(
    reloaded.problems.map((p) => [p.file, p.rule, p.message]),
    [[stray, 'duplicate', `${stray}: /service_id: service_id "echo" is already defined by ${running}`]],
    'and the new file is named as the duplicate',
  );
  await writeFile(running, '{"service_id": "echo",');
  const broken = await load(new Map([['echo', running]]));
  t.same(broken.services, [], 'a broken edit of the running file: no new version from the stray either (the running one is kept)');
  t.same(
    broken.problems.map((p) => [p.file, p.rule]),
    [
      [stray, 'duplicate'],
      [running, 'json'],
    ].sort((a, b) => (a[0] as string).localeCompare(b[0] as string)),
  );
  await writeFile(running, JSON.stringify({ ...base, service_id: 'renamed' }));
  const renamed = await load(new Map([['echo', running]]));
  t.same(
    renamed.services.map((s) => [s.source, s.descriptor.service_id]),
    [
      [stray, 'echo'],
      [running, 'renamed'],
    ],
    'a running file that now names another id leaves its old id free',
  );
});

t.test('a problem in one file does not stop the others', async (t) => {
  const bad = join(dir, 'iso-bad.json');
  const good = join(dir, 'iso-good.json');
  await writeFile(bad, '{oops');
  await writeFile(good, JSON.stringify({ service_id: 'good', kind: 'k' }));
  const { services, problems } = await loadServices({ manifestFiles: [bad, good], servicesDirs: [], nodeId: 'n1', reserved: [], schemas });
  t.same(
    services.map((s) => s.descriptor.service_id),
    ['good'],
  );
  t.same(
    problems.map((p) => p.file),
    [bad],
  );
});
