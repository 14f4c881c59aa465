import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { loadServices, manifestExecutablePath, resolveExecutable, resolveModule } from '../../../src/manifest/index.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';

const schemas = await loadSchemas();
const root = await mkdtemp(join(tmpdir(), 'acheron-manifest-exec-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

const bin = join(root, 'bin');
const other = join(root, 'other');
const emptyDir = join(root, 'empty');
await mkdir(bin);
await mkdir(other);
await mkdir(emptyDir);
await mkdir(join(bin, 'a-dir'));
await writeFile(join(bin, 'driver'), '#!/bin/sh\necho {}\n', { mode: 0o755 });
await writeFile(join(bin, 'plain'), 'not a program\n', { mode: 0o644 });
await writeFile(join(other, 'plain'), '#!/bin/sh\n', { mode: 0o755 });

t.test('executable_path resolution when loading (SPEC §2)', async (t) => {
  const manifestsDir = join(root, 'manifests.d');
  await mkdir(manifestsDir);
  const cases = [
    ['rel.json', '../bin/driver', join(bin, 'driver')],
    ['dot.json', './tools/run', join(manifestsDir, 'tools', 'run')],
    ['abs.json', '/usr/bin/env', '/usr/bin/env'],
    ['bare.json', 'python3', 'python3'],
  ] as const;
  for (const [name, executable] of cases) {
    await writeFile(join(manifestsDir, name), JSON.stringify({ service_id: name.replace('.json', ''), kind: 'k', runtime: { executable_path: executable } }));
  }
  await writeFile(join(manifestsDir, 'none.json'), JSON.stringify({ service_id: 'none', kind: 'k' }));
  const { services, problems } = await loadServices({ manifestFiles: [], servicesDirs: [manifestsDir], nodeId: 'n', reserved: [], schemas });
  t.same(problems, []);
  const byId = new Map(services.map((s) => [s.descriptor.service_id, s]));
  for (const [name, executable, expected] of cases) {
    const service = byId.get(name.replace('.json', ''));
    t.equal(service?.executablePath, expected, `${executable} → ${expected}`);
    t.equal(service?.descriptor.runtime.executable_path, executable, 'the descriptor keeps the path as written');
  }
  t.notOk('executablePath' in (byId.get('none') ?? {}), 'no executable: catalog-only');
});

t.test('manifestExecutablePath from a relative manifest path', async (t) => {
  t.equal(manifestExecutablePath('manifests.d/echo.json', 'drivers/echo.mjs'), resolve('manifests.d/drivers/echo.mjs'));
  t.equal(manifestExecutablePath('manifests.d/echo.json', 'node'), 'node');
  t.equal(manifestExecutablePath('manifests.d/echo.json', '/bin/true'), '/bin/true');
});

t.test('resolveExecutable', async (t) => {
  const path = `${emptyDir}::${bin}:${other}`;
  t.same(await resolveExecutable('driver', path), { path: join(bin, 'driver') }, 'a bare name is found in PATH');
  t.same(await resolveExecutable('plain', path), { path: join(other, 'plain') }, 'a non-executable match is passed over');
  t.same(await resolveExecutable(join(bin, 'driver'), undefined), { path: join(bin, 'driver') }, 'an absolute path is checked, not searched');
  t.same(await resolveExecutable('missing', path), { error: 'missing: not found in PATH' });
  t.same(await resolveExecutable('driver', undefined), { error: 'driver: not found in PATH' }, 'no PATH, nothing found');
  t.same(await resolveExecutable('plain', bin), { error: `${join(bin, 'plain')}: not executable` }, 'found but not executable says so');
  t.same(await resolveExecutable(join(bin, 'missing'), path), { error: `${join(bin, 'missing')}: no such file` });
  t.same(await resolveExecutable(join(bin, 'plain'), path), { error: `${join(bin, 'plain')}: not executable` });
  t.same(await resolveExecutable(join(bin, 'a-dir'), path), { error: `${join(bin, 'a-dir')}: not a regular file` });
  t.same(await resolveExecutable('a-dir', bin), { error: `${join(bin, 'a-dir')}: not a regular file` }, 'a directory in PATH is not a program');
});

t.test('the current directory is never searched through an empty PATH entry', async (t) => {
  const cwd = process.cwd();
  process.chdir(bin);
  t.teardown(() => process.chdir(cwd));
  t.same(await resolveExecutable('driver', `:${emptyDir}:`), { error: 'driver: not found in PATH' });
});

t.test('execute permission is checked (file mode changes are seen)', async (t) => {
  const program = join(root, 'toggle');
  await writeFile(program, '#!/bin/sh\n', { mode: 0o644 });
  t.same(await resolveExecutable(program, undefined), { error: `${program}: not executable` });
  await chmod(program, 0o700);
  t.same(await resolveExecutable(program, undefined), { path: program });
});

t.test('a wasm module_path is found the same way, but must be readable rather than executable', async (t) => {
  t.same(await resolveModule(join(bin, 'plain'), undefined), { path: join(bin, 'plain') }, 'readable, not executable: fine');
  t.same(await resolveExecutable(join(bin, 'plain'), undefined), { error: `${join(bin, 'plain')}: not executable` });
  t.same(await resolveModule('plain', `${emptyDir}:${bin}`), { path: join(bin, 'plain') }, 'a bare name is looked up in PATH');
  t.same(await resolveModule(join(bin, 'a-dir'), undefined), { error: `${join(bin, 'a-dir')}: not a regular file` });
  t.same(await resolveModule(join(bin, 'missing.wasm'), undefined), { error: `${join(bin, 'missing.wasm')}: no such file` });
  if (process.getuid?.() !== 0) {
    await writeFile(join(bin, 'secret.wasm'), '', { mode: 0o200 });
    t.same(await resolveModule(join(bin, 'secret.wasm'), undefined), { error: `${join(bin, 'secret.wasm')}: not readable` });
  }
});
