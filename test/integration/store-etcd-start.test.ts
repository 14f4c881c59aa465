// etcd unreachable when a command starts: `acheron control --store etcd` and `acheron token --store
// etcd` give up within --etcd-start-timeout-ms with an error naming the endpoints (exit 1), never
// hang; `--store etcd` without endpoints is a usage error (exit 2). The other option checks are unit
// tests (test/unit/cli/store-options.test.ts).
import t from 'tap';
import { join } from 'node:path';
import { acheron, freePort } from '../helpers/control.js';
import { tempDir } from '../helpers/node.js';

const dataDir = join(await tempDir(t), 'data');
const down = `http://127.0.0.1:${await freePort()},http://127.0.0.1:${await freePort()}`;

t.test('acheron control: exit 1, naming the endpoints', async (t) => {
  const r = await acheron([
    'control',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${await freePort()}`,
    '--http-listen',
    `127.0.0.1:${await freePort()}`,
    '--store',
    'etcd',
    '--etcd-endpoints',
    down,
    '--etcd-start-timeout-ms',
    '1000',
    '--log-level',
    'silent',
  ]);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, `acheron: etcd unreachable at ${down} (--etcd-endpoints) for 1000 ms: `, 'naming the endpoints and the wait');
});

t.test('acheron token: exit 1, naming the endpoints', async (t) => {
  const r = await acheron(['token', 'list', '--store', 'etcd', '--etcd-endpoints', down, '--etcd-start-timeout-ms', '1000']);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, `acheron: etcd unreachable at ${down}`);
});

t.test('--store etcd without endpoints: a usage error', async (t) => {
  const r = await acheron(['token', 'list', '--data-dir', dataDir, '--store', 'etcd']);
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, 'acheron: --store etcd needs --etcd-endpoints URL[,URL...]');
});
