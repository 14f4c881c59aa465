// SPEC §2, §11: invalid manifests, from a table of known traps and from a seeded random mutator of
// valid ones. Each is refused with one line naming the file, the JSON path and the rule, never
// quoting the file: through src/manifest/load.ts for the many, by a real daemon at start-up for a
// representative subset, and at reload, where the previous good version keeps serving invocations
// and ERRORS.json names the problem. No daemon crashes.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadServices } from '../../src/manifest/index.js';
import { loadSchemas, type Problem } from '../../src/protocol/schemas.js';
import { ACHERON, DRIVERS, manifest, readJson, spawnMounter, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { prng, reliabilityScale, testSeed } from '../helpers/random.js';
import { settledWithin } from '../helpers/settle.js';

const execFileP = promisify(execFile);
const schemas = await loadSchemas();

const seed = testSeed();
const random = prng(seed);
const scale = reliabilityScale();
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/**
 * Appears in files that must never be quoted (never in a key or a service id, which paths name); its
 * first characters are enough to tell a quote (V8's JSON.parse message quotes about ten).
 */
const SECRET_MARK = 'S3CR3T';
const SECRET = `${SECRET_MARK}-${process.pid}-${seed}`;

/** How a case makes its file at `path` (in `dir`, where a secret file waits for symlinks). */
type Make = (path: string, dir: string) => Promise<void>;
interface Case {
  name: string;
  make: Make;
  /** The rule, when the case is about one. */
  rule?: string;
}

const text =
  (content: string | Buffer): Make =>
  (path) =>
    writeFile(path, content);
const doc = (value: unknown): Make => text(JSON.stringify(value));
const valid = {
  service_id: 'svc',
  kind: 'test',
  help_md: `nothing to see: ${SECRET}`,
  runtime: { type: 'native_proc', executable_path: join(DRIVERS, 'echo') },
};
const withTop = (patch: Record<string, unknown>): Make => doc({ ...valid, ...patch });
const withRuntime = (patch: Record<string, unknown>): Make => doc({ ...valid, runtime: { ...valid.runtime, ...patch } });
const without = (key: string): Make => doc(Object.fromEntries(Object.entries(valid).filter(([k]) => k !== key)));

const BAD_IDS = [
  '../x',
  'a/b',
  'a\u0000b',
  '',
  '.',
  '..',
  'x'.repeat(129),
  'services',
  'fs',
  'NODE.json',
  'SERVICES.json',
  'ERRORS.json',
  'é',
  'a b',
  'a\nb',
  'terminal-t1',
];
const BAD_RUNTIME: Array<Record<string, unknown>> = [
  { timeout_ms: -1 },
  { timeout_ms: 0 },
  { timeout_ms: 1.5 },
  { timeout_ms: '10' },
  { timeout_ms: 1e12 },
  { kill_grace_ms: 60_001 },
  { max_concurrency: 0 },
  { max_queue: -1 },
  { max_input_bytes: 0 },
  { max_output_bytes: 268_435_457 },
  { mode: 'weird' },
  { type: 'native_inproc' },
  { type: 'bogus' },
  { abi: 'v2' },
  { args: 'x' },
  { args: [1] },
  { env: { A: 1 } },
  { env_passthrough: 'X' },
  { cwd: '' },
  { executable_path: '' },
  { user: '' },
  { jobs_keep: 10_001 },
  { bogus: true },
];
const WRONG_TYPES: Array<[string, unknown]> = [
  ['service_id', 5],
  ['kind', true],
  ['version', 7],
  ['version', ''],
  ['state', 'x'.repeat(65)],
  ['enabled', 'yes'],
  ['runtime', 'x'],
  ['endpoints', 'x'],
  ['endpoints', []],
  ['endpoints', ['/elsewhere']],
  ['capabilities', []],
  ['mounts', {}],
  ['mounts', [{ mount_id: 'x' }]],
  ['help_md', 5],
  ['help_md', 'x'.repeat(65_537)],
  ['schema', 5],
  ['schema', { input: { type: 'objekt' } }],
  ['permissions', []],
  ['ops', 'x'],
];

/** Table cases that are hostile as files, not as manifests: what a reader of services.d must survive. */
const HOSTILE_FILES = [
  'not JSON at all (a secret)',
  'invalid UTF-8',
  'a key with a newline',
  'nested 5000 deep',
  'larger than 1 MiB',
  'a directory',
  'a FIFO',
  'a symlink to /dev/null',
  'a symlink to a secret file',
];

function tableCases(): Case[] {
  const deep = `{"service_id":"svc","kind":"test","capabilities":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
  return [
    { name: 'not JSON at all (a secret)', make: text(`${SECRET}:$y$j9T$:19000:0:99999:7:::\n`), rule: 'json' },
    { name: 'cut short', make: text(`{"service_id":"svc","kind":"test","help_md":"${SECRET}`), rule: 'json' },
    { name: 'empty file', make: text(''), rule: 'json' },
    { name: 'whitespace only', make: text(' \n\t\n'), rule: 'json' },
    { name: 'two documents', make: text(`${JSON.stringify(valid)}\n${JSON.stringify(valid)}`), rule: 'json' },
    { name: 'a NUL byte', make: text(`{"service_id":"svc",\u0000"kind":"${SECRET}"}`), rule: 'json' },
    { name: 'a UTF-8 BOM', make: text(`\ufeff${JSON.stringify(valid)}`), rule: 'json' },
    { name: 'comments', make: text(`// ${SECRET}\n${JSON.stringify(valid)}`), rule: 'json' },
    {
      name: 'invalid UTF-8',
      make: text(Buffer.concat([Buffer.from(`{"service_id":"svc","kind":"test","help_md":"${SECRET}`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])),
      rule: 'utf8',
    },
    { name: 'an array', make: doc([valid]), rule: 'type' },
    { name: 'null', make: text('null'), rule: 'type' },
    { name: 'a string', make: doc(SECRET), rule: 'type' },
    { name: 'a secret where a value starts', make: text(`{"service_id": ${SECRET}}`), rule: 'json' },
    { name: 'no service_id', make: without('service_id'), rule: 'required' },
    { name: 'no kind', make: without('kind'), rule: 'required' },
    { name: 'unknown top-level key', make: withTop({ servce: SECRET }), rule: 'additionalProperties' },
    { name: 'a key with a newline', make: withTop({ 'a\nb': SECRET }), rule: 'additionalProperties' },
    { name: 'a 10000-character key', make: withTop({ ['k'.repeat(10_000)]: SECRET }), rule: 'additionalProperties' },
    { name: 'nested 5000 deep', make: text(deep), rule: 'depth' },
    { name: 'a number that overflows (1e400)', make: text('{"service_id":"svc","kind":"test","capabilities":{"x":1e400}}'), rule: 'number' },
    { name: 'larger than 1 MiB', make: withTop({ 'x-padding': 'p'.repeat(2 << 20) }), rule: 'size' },
    ...BAD_IDS.map((id) => ({ name: `service_id ${JSON.stringify(id)}`, make: withTop({ service_id: id }) })),
    ...BAD_RUNTIME.map((patch) => ({ name: `runtime ${JSON.stringify(patch)}`, make: withRuntime(patch) })),
    ...WRONG_TYPES.map(([key, value]) => ({ name: `${key} = ${JSON.stringify(value).slice(0, 40)}`, make: withTop({ [key]: value }) })),
    { name: 'a directory', make: (path) => mkdir(path), rule: 'file' },
    { name: 'a FIFO', make: async (path) => void (await execFileP('mkfifo', [path])), rule: 'file' },
    { name: 'a symlink to /dev/null', make: (path) => symlink('/dev/null', path), rule: 'file' },
    { name: 'a symlink to a directory', make: (path, dir) => symlink(dir, path), rule: 'file' },
    { name: 'a symlink to a secret file', make: (path, dir) => symlink(join(dir, 'secret.txt'), path), rule: 'json' },
    { name: 'a dangling symlink', make: (path, dir) => symlink(join(dir, 'nowhere'), path), rule: 'read' },
  ];
}

/** A valid manifest, changed in one way that no valid manifest has. */
function mutant(): Case {
  const base = JSON.stringify(valid);
  const mutations: Array<() => Case> = [
    () => {
      const at = 1 + Math.floor(random() * (base.length - 1));
      return { name: `cut at byte ${at}`, make: text(base.slice(0, at)), rule: 'json' };
    },
    () => {
      const at = Math.floor(random() * (base.length + 1));
      return {
        name: `0xff at byte ${at}`,
        make: text(Buffer.concat([Buffer.from(base.slice(0, at)), Buffer.from([0xff]), Buffer.from(base.slice(at))])),
        rule: 'utf8',
      };
    },
    () => {
      const at = Math.floor(random() * (base.length + 1));
      const control = String.fromCharCode(1 + Math.floor(random() * 8));
      return { name: `a control character at ${at}`, make: text(base.slice(0, at) + control + base.slice(at)), rule: 'json' };
    },
    () => {
      const [key, value] = pick(WRONG_TYPES);
      return { name: `${key} of the wrong kind`, make: withTop({ [key]: value }) };
    },
    () => {
      const patch = pick(BAD_RUNTIME);
      return { name: `runtime ${JSON.stringify(patch)}`, make: withRuntime(patch) };
    },
    () => {
      const id = pick(BAD_IDS);
      return { name: `service_id ${JSON.stringify(id)}`, make: withTop({ service_id: id }) };
    },
    () => {
      const key = `unknown_${Math.floor(random() * 1e6)}`;
      return random() < 0.5
        ? { name: `top-level ${key}`, make: withTop({ [key]: SECRET }), rule: 'additionalProperties' }
        : { name: `runtime ${key}`, make: withRuntime({ [key]: SECRET }), rule: 'additionalProperties' };
    },
    () => {
      const key = pick(['service_id', 'kind']);
      return { name: `no ${key}`, make: without(key), rule: 'required' };
    },
  ];
  return pick(mutations)();
}

/** One line, `<file>: <json path>: …`, the rule named, nothing of the file's content. */
function wellFormed(problem: Problem, file: string): string | undefined {
  if (problem.file !== file) return `names ${problem.file}, not ${file}`;
  if (!problem.json_path.startsWith('/')) return `json_path ${problem.json_path}`;
  if (problem.rule === '') return 'no rule';
  if (/[\n\r]/.test(problem.message)) return 'more than one line';
  if (!problem.message.startsWith(`${file}: /`)) return `does not start with the file and path: ${problem.message}`;
  if (problem.message.includes(SECRET_MARK)) return `quotes the file: ${problem.message}`;
  return undefined;
}

const root = await tempDir(t);
await writeFile(join(root, 'secret.txt'), `${SECRET}:$y$j9T$:19000:0:99999:7:::\n`, { mode: 0o600 });

t.test('through the loader: every case refused by name, path and rule, never quoted', async (tt) => {
  tt.comment(`seed ${seed} (ACHERON_TEST_SEED=${seed} replays the same mutants)`);
  const cases = [...tableCases(), ...Array.from({ length: 300 * scale }, mutant)];
  let failures = 0;
  for (const [index, c] of cases.entries()) {
    const dir = join(root, `load-${index}`);
    await mkdir(dir);
    const file = join(dir, 'svc.json');
    await c.make(file, root);
    const { services, problems } = await loadServices({
      manifestFiles: [],
      servicesDirs: [dir],
      nodeId: 'n1',
      reserved: [{ service_id: 'terminal-t1', source: 'built-in terminal provider' }],
      schemas,
    });
    const wrong =
      problems.length === 0
        ? 'accepted'
        : services.length > 0
          ? 'loaded anyway'
          : (problems.map((p) => wellFormed(p, file)).find((w) => w !== undefined) ??
            (c.rule !== undefined && !problems.some((p) => p.rule === c.rule) ? `rule ${problems.map((p) => p.rule).join(',')}, not ${c.rule}` : undefined));
    if (wrong !== undefined) {
      failures++;
      tt.fail(`${c.name}: ${wrong}`);
    }
    await rm(dir, { recursive: true, force: true });
  }
  tt.equal(failures, 0, `${cases.length} invalid manifests, each refused with a named problem`);
  tt.comment(`manifests fuzzed through the loader: ${cases.length}, failures: ${failures}`);
});

t.test('a real daemon at start-up: refuses them all, one line each, and exits', async (tt) => {
  const dir = join(root, 'startup');
  const servicesDir = join(dir, 'services.d');
  await mkdir(servicesDir, { recursive: true });
  await writeFile(join(servicesDir, 'good.json'), JSON.stringify(manifest('good', 'echo')));
  const table = tableCases();
  const subset = [
    ...[...HOSTILE_FILES, 'service_id "../x"', 'service_id "fs"', 'runtime {"timeout_ms":-1}'].map((name) => table.find((c) => c.name === name) as Case),
    ...Array.from({ length: 8 }, mutant),
  ];
  const files: string[] = [];
  for (const [index, c] of subset.entries()) {
    const file = join(servicesDir, `case-${String(index).padStart(2, '0')}.json`);
    await c.make(file, root);
    files.push(file);
  }
  const mount = join(dir, 'mnt');
  const daemon = spawnMounter(
    tt,
    [
      ACHERON,
      'node',
      '--node-id',
      'fuzz',
      '--mount',
      mount,
      '--services-dir',
      servicesDir,
      '--state-file',
      join(dir, 'state.json'),
      '--log-file',
      join(dir, 'node.log'),
      '--terminal-id',
      't1',
    ],
    mount,
  );
  const exit = await settledWithin(daemon.exited, 30_000, 'hung' as const);
  tt.not(exit, 'hung', 'it exits: nothing blocked on the FIFO');
  tt.match(exit, { code: 1 }, 'with exit code 1');
  const lines = daemon.stderr().split('\n').filter(Boolean);
  let failures = 0;
  for (const [index, file] of files.entries()) {
    const named = lines.filter((line) => line.startsWith(`acheron: ${file}: /`));
    if (named.length === 0) {
      failures++;
      tt.fail(`${subset[index]?.name}: no line names ${file}`);
    }
  }
  for (const line of lines) {
    if (line.includes(SECRET_MARK) || !/^acheron: \/\S+\.json: \/\S*: /.test(line)) {
      failures++;
      tt.fail(`a bad line: ${line.slice(0, 300)}`);
    }
  }
  tt.notOk(
    lines.some((line) => line.includes('good.json')),
    'the good manifest is not blamed',
  );
  tt.equal(failures, 0, `${subset.length} invalid manifests refused at start-up, one line each`);
  tt.comment(`manifests fuzzed at start-up: ${subset.length}, failures: ${failures}`);
});

t.test('at reload: each problem in ERRORS.json, the previous version keeps serving, no crash', async (tt) => {
  // Several services, each broken its own way in the same reload: fewer rounds on a slow machine.
  const slots = ['s0', 's1', 's2', 's3', 's4'];
  const good = (id: string): Record<string, unknown> => manifest(id, 'echo', { help_md: `good ${SECRET}` });
  const node = await startNode(tt, { manifests: slots.map(good), args: ['--manifest-reload-interval-ms', '0', '--terminal-id', 't1'] });
  // Reloads on SIGHUP only, once a round's files are in place: a reload between removing a file and
  // making its replacement would rightly remove the service.
  const reload = (): void => void process.kill(node.child.pid as number, 'SIGHUP');
  const table = tableCases();
  const chosen = [
    ...HOSTILE_FILES,
    'cut short',
    'empty file',
    'a dangling symlink',
    'service_id "fs"',
    'service_id "terminal-t1"',
    'service_id "a/b"',
    'runtime {"type":"native_inproc"}',
    'runtime {"max_concurrency":0}',
    'schema = {"input":{"type":"objekt"}}',
    'no kind',
    'an array',
  ].map((name) => table.find((c) => c.name === name) as Case);
  const cases = [...chosen, ...Array.from({ length: 10 * scale }, mutant)];
  const errorsFile = join(node.mount, 'ERRORS.json');
  let failures = 0;
  let invokes = 0;
  for (let round = 0; round * slots.length < cases.length; round++) {
    const batch = cases.slice(round * slots.length, (round + 1) * slots.length);
    const files = batch.map((_, i) => join(node.servicesDir, `${slots[i]}.json`));
    for (const [i, c] of batch.entries()) {
      await rm(files[i] as string, { recursive: true, force: true });
      await c.make(files[i] as string, root);
    }
    reload();
    const errors = await waitFor(
      async () => {
        const listed = await readJson<Problem[]>(errorsFile);
        return files.every((file) => listed.some((p) => p.file === file)) ? listed : undefined;
      },
      { what: `ERRORS.json to name round ${round}'s files`, timeoutMs: 20_000 },
    ).catch(() => undefined);
    for (const [i, c] of batch.entries()) {
      const file = files[i] as string;
      const mine = errors?.filter((p) => p.file === file) ?? [];
      const wrong =
        mine.length === 0
          ? 'not in ERRORS.json'
          : (mine.map((p) => wellFormed(p, file)).find((w) => w !== undefined) ??
            (c.rule !== undefined && !mine.some((p) => p.rule === c.rule) ? `rule ${mine.map((p) => p.rule).join(',')}, not ${c.rule}` : undefined));
      // The previous good version still serves.
      const run = await sh(`/bin/echo '{"round":${round}}' > ${q(join(node.service(slots[i] as string), 'control', 'invoke.json'))}`, { timeoutMs: 20_000 });
      invokes++;
      const broken = wrong ?? (run.code !== 0 ? `the previous version does not serve: ${run.stderr.trim()}` : undefined);
      if (broken !== undefined) {
        failures++;
        tt.fail(`${c.name}: ${broken}`);
      }
    }
    // Back to good before the next round, so each round's problems are its own.
    for (const [i] of batch.entries()) {
      await rm(files[i] as string, { recursive: true, force: true });
      await writeFile(files[i] as string, JSON.stringify(good(slots[i] as string)));
    }
    reload();
    await waitFor(async () => (await readJson<Problem[]>(errorsFile)).length === 0, { what: 'ERRORS.json to clear', timeoutMs: 20_000 });
  }
  tt.equal(node.child.exitCode, null, 'the daemon is still running');
  const served = await readJson<{ pid: number }>(join(node.mount, 'NODE.json'));
  tt.equal(served.pid, node.child.pid, 'the same daemon serves the mount');
  const counted = await Promise.all(slots.map(async (id) => (await readJson<{ invokes_total: number }>(join(node.service(id), 'metrics.json'))).invokes_total));
  tt.equal(
    counted.reduce((a, b) => a + b, 0),
    invokes,
    'every invocation counted: no service lost its state',
  );
  tt.notMatch(await readFile(node.logFile, 'utf8'), SECRET_MARK, 'the log quotes no file');
  tt.equal(failures, 0, `${cases.length} invalid manifests at reload, each in ERRORS.json, the previous version serving`);
  tt.comment(`manifests fuzzed at reload: ${cases.length}, failures: ${failures}`);
});
