// SPEC §2/§5 with a control server: a manifest the node cannot publish is refused on its own, never
// blocking the node's catalog. A number that overflows (`1e400`, Infinity once parsed) appeared
// valid, then made every catalog upsert throw (canonical JSON): on reload ERRORS.json stayed [] and
// no service of the node was published again. A real control server, a real node joined to it.
import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { joinArgs, joinToken, startControl, waitForService } from '../helpers/control.js';
import { manifest, readJson, startNode, tempDir } from '../helpers/node.js';
import { waitFor } from '../helpers/process.js';

const NODE_ID = 'test-node';
const control = await startControl(t);
const dir = await tempDir(t);
const joinTokenFile = join(dir, 'join-token');
await writeFile(joinTokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
const node = await startNode(t, { manifests: [manifest('a', 'echo')], args: joinArgs(control.url, joinTokenFile) });
await waitForService(control, NODE_ID, 'a');

t.test('a manifest with 1e400 at a reload: in ERRORS.json, and the valid ones are published', async (t) => {
  await writeFile(join(node.servicesDir, 'inf.json'), '{"service_id":"inf","kind":"k","capabilities":{"x":1e400}}');
  await writeFile(join(node.servicesDir, 'b.json'), JSON.stringify(manifest('b', 'echo')));
  await waitForService(control, NODE_ID, 'b');
  const errors = await readJson<Array<{ file: string; json_path: string; rule: string }>>(join(node.mount, 'ERRORS.json'));
  t.same(
    errors.map(({ file, json_path, rule }) => ({ file, json_path, rule })),
    [{ file: join(node.servicesDir, 'inf.json'), json_path: '/capabilities/x', rule: 'number' }],
  );
  const log = await readFile(node.logFile, 'utf8');
  t.notMatch(log, /catalog upsert failed|Infinity is not allowed/, 'no upsert failed');
});

t.test('a manifest with a lone surrogate (JSON "\\ud800"): in ERRORS.json naming the field, and the others are still published', async (t) => {
  const lone = join(node.servicesDir, 'lone.json');
  await writeFile(lone, '{"service_id":"lone","kind":"k","help_md":"bad \\ud800 here"}');
  await writeFile(join(node.servicesDir, 'c.json'), JSON.stringify(manifest('c', 'echo')));
  await waitForService(control, NODE_ID, 'c');
  const errors = await readJson<Array<{ file: string; json_path: string; rule: string }>>(join(node.mount, 'ERRORS.json'));
  t.match(
    errors.find((e) => e.file === lone),
    { json_path: '/help_md', rule: 'text' },
  );
  t.notMatch(await readFile(node.logFile, 'utf8'), /catalog upsert failed/, 'no upsert failed');
  await rm(lone);
});

t.test('fixed: the service is published too', async (t) => {
  await writeFile(join(node.servicesDir, 'inf.json'), '{"service_id":"inf","kind":"k","capabilities":{"x":1e300}}');
  await waitForService(control, NODE_ID, 'inf');
  await waitFor(async () => (await readJson<unknown[]>(join(node.mount, 'ERRORS.json'))).length === 0, { what: 'ERRORS.json empty again' });
  t.pass();
});
