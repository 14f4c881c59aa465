// `acheron node delete <id>` (control.node_delete, admin): retires a node, with `node get`'s options
// and exit codes: 0 and one line; an unknown node exit 1 naming it; a malformed id exit 2 before any
// connection; a user token refused; the node, given a new join token, joins again. A real control
// server and a real node joined to it.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron, joinToken, startControl, startJoinedNode, waitForService } from '../helpers/control.js';
import { tempDir } from '../helpers/node.js';
import { SimNode } from '../helpers/catalog-sim.js';
import { settledWithin } from '../helpers/settle.js';

const NODE_ID = 'test-node';
const control = await startControl(t);
const dir = await tempDir(t);
await startJoinedNode(t, control, NODE_ID, dir);
const tokenFile = async (name: string, token: string): Promise<string[]> => {
  const file = join(dir, name);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return ['--control-url', control.url, '--token-file', file];
};
const admin = await tokenFile('admin', control.adminToken);

t.test('a node that joined on its connection is dropped (4001) when deleted: the server files a joiner under its node', async (t) => {
  const joined = await SimNode.join(control.url, control.dataDir, 'joined-here');
  t.teardown(() => joined.peer.socket.terminate());
  const r = await acheron(['node', 'delete', 'joined-here', ...admin]);
  t.equal(r.code, 0, r.stderr);
  t.match(
    await settledWithin(joined.peer.closed, 10_000, 'still open after 10 s'),
    { code: 4001, reason: 'node deleted' },
    'its connection, opened with the join token, is closed',
  );
});

t.test('a malformed id: exit 2, before any connection', async (t) => {
  const r = await acheron(['node', 'delete', 'a/b', '--control-url', 'ws://127.0.0.1:1', '--token', 'x']);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'acheron: node_id "a/b": must be 1-128 characters of [A-Za-z0-9._-], not . or ..\n');
});

t.test('a user token is refused, and the node stays', async (t) => {
  const r = await acheron(['node', 'delete', NODE_ID, ...(await tokenFile('user', control.userToken))]);
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /^acheron: .*forbidden/);
  t.equal((await acheron(['node', 'get', NODE_ID, ...admin])).code, 0, 'still in the catalog');
});

t.test('an admin deletes the node: exit 0, one line; it is gone from the catalog', async (t) => {
  const r = await acheron(['node', 'delete', NODE_ID, ...admin]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `node ${NODE_ID} deleted\n`);
  const get = await acheron(['node', 'get', NODE_ID, ...admin]);
  t.equal(get.code, 1);
  t.match(get.stderr, `no node ${NODE_ID}`);
  const list = await acheron(['node', 'list', '--json', ...admin]);
  t.same(JSON.parse(list.stdout), [], 'node list shows none');
});

t.test('an unknown node (deleted already): exit 1 naming it; --json', async (t) => {
  const r = await acheron(['node', 'delete', NODE_ID, '--json', ...admin]);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, new RegExp(`^acheron: .*no node ${NODE_ID}\\n$`));
});

t.test('the deleted node, still running, comes back once its join token file holds a new token', async (t) => {
  await writeFile(join(dir, 'join-token'), `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
  await waitForService(control, NODE_ID, 'echo');
  t.equal((await acheron(['node', 'get', NODE_ID, ...admin])).code, 0, 'in the catalog again (docs/operations.md, "Retire a node")');
});
