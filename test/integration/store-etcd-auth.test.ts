// etcd with auth enabled (operator review): a wrong password, no credentials and a prefix the
// user may not read fail at once, each naming the flag to fix, not "etcd unreachable" after the
// whole --etcd-start-timeout-ms. (TLS and PEM mistakes: test/unit/control/etcd/start-refusals.test.ts.)
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron } from '../helpers/control.js';
import { startEtcd } from '../helpers/etcd.js';
import { tempDir } from '../helpers/node.js';
import { sh } from '../helpers/process.js';

const cluster = await startEtcd(t);
const endpoints = cluster.endpoints.join(',');
const dir = await tempDir(t);
const [right, wrong] = [join(dir, 'pw'), join(dir, 'wrong-pw')];
await writeFile(right, 'secret-pw\n');
await writeFile(wrong, 'not-the-pw\n');
for (const command of [
  'user add root:root-pw',
  'user add acheron:secret-pw',
  'role add acheron',
  'role grant-permission --prefix=true acheron readwrite /acheron/',
  'user grant-role acheron acheron',
  'auth enable',
]) {
  const r = await sh(`etcdctl --endpoints=${endpoints} --user root:root-pw ${command}`);
  if (r.code !== 0) throw new Error(`etcdctl ${command}: ${r.stderr}`);
}

// A generous start bound: a refusal must come well before it.
const tokenList = (...args: string[]): ReturnType<typeof acheron> =>
  acheron(['token', 'list', '--store', 'etcd', '--etcd-endpoints', endpoints, '--etcd-start-timeout-ms', '30000', ...args]);

t.test('the right credentials work', async (tt) => {
  const r = await tokenList('--etcd-username', 'acheron', '--etcd-password-file', right);
  tt.equal(r.code, 0, r.stderr);
});

for (const [what, args, expected] of [
  [
    'a wrong password',
    ['--etcd-username', 'acheron', '--etcd-password-file', wrong],
    `acheron: etcd refused the credentials (--etcd-username acheron, --etcd-password-file ${wrong}): `,
  ],
  ['no credentials', [], 'acheron: etcd requires authentication: give --etcd-username and --etcd-password-file'],
  [
    'a prefix the user may not read',
    ['--etcd-username', 'acheron', '--etcd-password-file', right, '--etcd-prefix', '/other/'],
    'acheron: etcd user acheron may not read --etcd-prefix /other/: grant its role readwrite on it',
  ],
] as const) {
  t.test(`${what}: exit 1 at once, naming the flags`, async (tt) => {
    const started = Date.now();
    const r = await tokenList(...args);
    tt.equal(r.code, 1, 'exit 1');
    tt.match(r.stderr, expected);
    tt.notMatch(r.stderr, 'unreachable');
    tt.ok(Date.now() - started < 20_000, `in ${Date.now() - started} ms, not after the 30 s start bound`);
  });
}
