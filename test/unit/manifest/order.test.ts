import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import t from 'tap';
import { listManifestFiles, loadServices } from '../../../src/manifest/index.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';

const schemas = await loadSchemas();
const execFileP = promisify(execFile);
const root = await mkdtemp(join(tmpdir(), 'acheron-manifest-order-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

const manifest = (serviceId: string): string => JSON.stringify({ service_id: serviceId, kind: 'k' });
const dirA = join(root, 'a.d');
const dirB = join(root, 'b.d');
await mkdir(dirA);
await mkdir(dirB);
// Byte order puts upper case and '_' before lower case and UTF-8 multi-byte names last; locale order would not.
for (const [name, serviceId] of [
  ['b.json', 'lower-b'],
  ['a.json', 'lower-a'],
  ['B.json', 'upper-b'],
  ['_.json', 'underscore'],
  ['é.json', 'e-acute'],
  ['.hidden.json', 'hidden'],
  ['.#a.json', 'emacs-lock'],
] as const) {
  await writeFile(join(dirA, name), manifest(serviceId));
}
await writeFile(join(dirA, 'notes.txt'), 'not a manifest');
await writeFile(join(dirA, 'a.json~'), manifest('backup'));
await mkdir(join(dirA, 'sub.json'));
await symlink(join(dirA, 'a.json'), join(dirA, 'link.json'));
await symlink(join(dirA, 'sub.json'), join(dirA, 'link-to-dir.json'));
await writeFile(join(dirB, 'z.json'), manifest('in-b'));
const flagFile2 = join(root, 'flag-2.json');
const flagFile1 = join(root, 'flag-1.json');
await writeFile(flagFile2, manifest('flag-two'));
await writeFile(flagFile1, manifest('flag-one'));

t.test('flag files in flag order, then each dir in byte order of name', async (t) => {
  const { files, problems } = await listManifestFiles([flagFile2, flagFile1], [dirA, dirB]);
  t.same(problems, []);
  t.same(
    files,
    [
      flagFile2,
      flagFile1,
      join(dirA, 'B.json'),
      join(dirA, '_.json'),
      join(dirA, 'a.json'),
      join(dirA, 'b.json'),
      join(dirA, 'link-to-dir.json'),
      join(dirA, 'link.json'),
      join(dirA, 'sub.json'),
      join(dirA, 'é.json'),
      join(dirB, 'z.json'),
    ],
    'dot files and non-.json names are skipped; a directory or a link to one is listed, to be refused by name',
  );
});

t.test('services come out in load order', async (t) => {
  const { services, problems } = await loadServices({ manifestFiles: [flagFile2, flagFile1], servicesDirs: [dirA, dirB], nodeId: 'n1', reserved: [], schemas });
  t.same(
    services.map((s) => s.descriptor.service_id),
    ['flag-two', 'flag-one', 'upper-b', 'underscore', 'lower-a', 'lower-b', 'e-acute', 'in-b'],
  );
  t.same(
    problems.map((p) => p.message),
    [
      `${join(dirA, 'link-to-dir.json')}: /: not a regular file (a directory); a manifest must be one`,
      `${join(dirA, 'link.json')}: /service_id: service_id "lower-a" is already defined by ${join(dirA, 'a.json')}`,
      `${join(dirA, 'sub.json')}: /: not a regular file (a directory); a manifest must be one`,
    ],
  );
});

t.test('a FIFO, a link to /dev/null, a socket: each refused by name, and nothing blocks', async (t) => {
  const dir = join(root, 'special.d');
  await mkdir(dir);
  await execFileP('mkfifo', [join(dir, 'fifo.json')]);
  await symlink('/dev/null', join(dir, 'null.json'));
  await writeFile(join(dir, 'ok.json'), manifest('ok'));
  const { services, problems } = await loadServices({ manifestFiles: [join(dir, 'fifo.json')], servicesDirs: [dir], nodeId: 'n1', reserved: [], schemas });
  t.same(
    services.map((s) => s.descriptor.service_id),
    ['ok'],
    'the regular file still loads',
  );
  t.same(
    problems.map((p) => [p.file, p.json_path, p.rule, p.message]),
    [
      [join(dir, 'fifo.json'), '/', 'file', `${join(dir, 'fifo.json')}: /: not a regular file (a FIFO); a manifest must be one`],
      [join(dir, 'fifo.json'), '/', 'file', `${join(dir, 'fifo.json')}: /: not a regular file (a FIFO); a manifest must be one`],
      [join(dir, 'null.json'), '/', 'file', `${join(dir, 'null.json')}: /: not a regular file (a character device); a manifest must be one`],
    ],
    'a --service-manifest flag file too',
  );
});

t.test('a dangling symlink is reported, not silently dropped', async (t) => {
  const dir = join(root, 'dangling.d');
  await mkdir(dir);
  await symlink(join(dir, 'gone.json'), join(dir, 'x.json'));
  const { files } = await listManifestFiles([], [dir]);
  t.same(files, [join(dir, 'x.json')]);
  const { problems } = await loadServices({ manifestFiles: [], servicesDirs: [dir], nodeId: 'n1', reserved: [], schemas });
  t.match(problems, [{ file: join(dir, 'x.json'), json_path: '/', rule: 'read' }]);
});

t.test('a services dir that cannot be read is a problem', async (t) => {
  const missing = join(root, 'missing.d');
  const { files, problems } = await listManifestFiles([], [missing, dirB]);
  t.same(files, [join(dirB, 'z.json')], 'the other dirs still load');
  t.equal(problems.length, 1);
  t.match(problems[0], { file: missing, json_path: '/', rule: 'read' });
  t.match(problems[0]?.message, `${missing}: /: cannot read services directory: ENOENT`);
});
