// SPEC §3 through a real mount, what the service-files conformance suite
// (test/integration/suites/service-files.ts: the control files, the errno table, modes and sizes of
// a service directory, on both mounts) leaves to the node's own mount: the whole mount as ls, stat
// and find see it (NODE.json, SERVICES.json, ERRORS.json, services/), and sizes equal to what cat reads.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { manifest, startNode } from '../helpers/node.js';
import { q, sh, type ShResult } from '../helpers/process.js';

const node = await startNode(t, { manifests: [manifest('plain', 'echo')] });

const file = (id: string, name: string): string => join(node.service(id), name);
const invoke = (id: string, payload = '{}'): Promise<ShResult> => sh(`/bin/echo ${q(payload)} > ${q(file(id, 'control/invoke.json'))}`, { timeoutMs: 30_000 });

function succeeded(tt: Test, run: ShResult, what: string): void {
  tt.equal(run.code, 0, `${what} (${run.stderr.trim()})`);
}

await t.test('ls, stat and find see the whole tree with the expected modes and owner', async (tt) => {
  succeeded(tt, await sh(`ls -la ${q(node.mount)} ${q(node.service('plain'))} ${q(file('plain', 'control'))} > /dev/null`), 'ls -la');
  succeeded(tt, await sh(`stat ${q(file('plain', 'status.json'))} > /dev/null`), 'stat');
  const find = await sh(`find ${q(node.mount)} -printf '%m %y %U %P\\n'`, { timeoutMs: 20_000 });
  succeeded(tt, find, 'find over the whole mount');
  const entries = new Map(
    find.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const [mode, type, uid, path] = line.split(' ');
        return [path ?? '', { mode, type, uid }] as const;
      }),
  );
  const uid = String(process.getuid?.());
  for (const [path, entry] of entries) tt.equal(entry.uid, uid, `${path || '/'} belongs to the mounting user`);
  const expect = (path: string, mode: string, type: string): void => {
    tt.same(entries.get(path), { mode, type, uid }, `${path || '/'}: ${type} ${mode}`);
  };
  expect('', '755', 'd');
  for (const name of ['NODE.json', 'SERVICES.json', 'ERRORS.json']) expect(name, '444', 'f');
  expect('services', '755', 'd');
  const base = 'services/plain';
  expect(base, '755', 'd');
  expect(`${base}/control`, '755', 'd');
  for (const name of ['README.md', 'SCHEMA.json', 'TEMPLATE.json', 'HOST.json', 'result.json', 'status.json', 'last_error.txt', 'metrics.json', 'health.json'])
    expect(`${base}/${name}`, '444', 'f');
  expect(`${base}/control/invoke.json`, '644', 'f');
  for (const verb of ['reset', 'enable', 'disable', 'restart', 'cancel']) expect(`${base}/control/${verb}`, '200', 'f');
});

await t.test('sizes equal what cat reads', async (tt) => {
  succeeded(tt, await invoke('plain', '{"size":"check"}'), 'an invocation, so result.json has content');
  const paths = [
    file('plain', 'status.json'),
    file('plain', 'result.json'),
    file('plain', 'README.md'),
    join(node.mount, 'NODE.json'),
    file('plain', 'last_error.txt'),
  ];
  for (const path of paths) {
    const run = await sh(`stat -c %s ${q(path)}; cat ${q(path)} | wc -c`);
    succeeded(tt, run, `stat and cat ${path}`);
    const [size, read] = run.stdout.trim().split('\n').map(Number);
    tt.ok(path.endsWith('last_error.txt') || (read ?? 0) > 0, `${path} has content`);
    tt.equal(size, read, `${path}: stat size ${size} = ${read} bytes read`);
  }
});
