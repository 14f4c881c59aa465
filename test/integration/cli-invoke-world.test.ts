// `acheron invoke --node N --mount DIR` through a WorldFS mount of either tree: the whole one
// (`<mount>/nodes/<id>`) and the runbook's `--subtree nodes` one (`<mount>/<id>`), told apart by the
// mount table's source (src/world/mount-source.ts), not by the tree's shape: the node here is named
// `nodes`, so a subtree mount of it looks like a whole one. ENOENT says "is it running?" only where
// nothing is mounted; another file system there is named. A real control server, node and mounts.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron, joinArgs, joinToken, startControl, waitForService } from '../helpers/control.js';
import { manifest, startNode, tempDir } from '../helpers/node.js';
import { startWorld } from '../helpers/world.js';

const NODE_ID = 'nodes';
const control = await startControl(t);
const dir = await tempDir(t);
const joinTokenFile = join(dir, 'join-token');
await writeFile(joinTokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
const node = await startNode(t, { nodeId: NODE_ID, manifests: [manifest('echo', 'echo')], args: joinArgs(control.url, joinTokenFile) });
await waitForService(control, NODE_ID, 'echo');
const whole = await startWorld(t, { url: control.url, token: control.adminToken });
const sub = await startWorld(t, { url: control.url, token: control.adminToken, subtree: true });

t.test('a --subtree nodes mount: the invocation runs, exit 0; an unknown node is named under the mount itself', async (t) => {
  const r = await acheron(['invoke', 'echo', '{"x":1}', '--node', NODE_ID, '--mount', sub.mount]);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { echo: { x: 1 } });
  const unknown = await acheron(['invoke', 'echo', '{}', '--node', 'n9', '--mount', sub.mount]);
  t.equal(unknown.code, 1);
  t.equal(unknown.stderr, `acheron invoke: echo: ENOENT: no node n9 under ${sub.mount} (not in the catalog, or hidden from this mount's token)\n`);
  const service = await acheron(['invoke', 'nosuch', '{}', '--node', NODE_ID, '--mount', sub.mount]);
  t.equal(service.stderr, `acheron invoke: nosuch: ENOENT: no service nosuch under ${join(sub.mount, NODE_ID)}\n`);
});

t.test('a whole mount: through <mount>/nodes/<id>, as before', async (t) => {
  const r = await acheron(['invoke', 'echo', '{"x":2}', '--node', NODE_ID, '--mount', whole.mount]);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { echo: { x: 2 } });
});

t.test('not a WorldFS mount: "is it running?" only where nothing is mounted', async (t) => {
  const empty = await tempDir(t);
  const none = await acheron(['invoke', 'echo', '{}', '--node', NODE_ID, '--mount', empty]);
  t.equal(none.code, 1);
  t.equal(none.stderr, `acheron invoke: echo: ENOENT: ${empty} is not an acheron WorldFS mount (no nodes): is it running?\n`);
  const nodeMount = await acheron(['invoke', 'echo', '{}', '--node', NODE_ID, '--mount', node.mount]);
  t.equal(nodeMount.code, 1);
  t.equal(
    nodeMount.stderr,
    `acheron invoke: echo: ENOENT: ${node.mount} is not an acheron WorldFS mount (no nodes): acheron (fuse.acheron) is mounted there\n`,
  );
});
