// A node whose manifests are each valid but together exceed the server's 16 MiB node frame cap
// (docs/control-protocol.md): the node publishes every service that fits, leaving out the largest,
// says so (an error log line naming the sizes, the cap and what was left out; NODE.json
// control.last_error), and keeps its one session. Before, it sent the whole catalog, the server
// closed every session with 1009, and the node reconnected about every second, unpublished and silent.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { adminRequest, joinArgs, joinToken, startControl, waitForService } from '../helpers/control.js';
import { manifest, readJson, startNode, tempDir } from '../helpers/node.js';

const NODE_ID = 'test-node';
const control = await startControl(t);
const dir = await tempDir(t);
const joinTokenFile = join(dir, 'join-token');
await writeFile(joinTokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
// 18 manifests of about 1 MB (each under the 1 MiB a manifest may have); two a little larger.
const big = Array.from({ length: 18 }, (_, i) => {
  const id = `big${String(i).padStart(2, '0')}`;
  return { service_id: id, kind: 'k', capabilities: { pad: 'p'.repeat(1_000_000 + (i === 3 ? 4000 : i === 7 ? 2000 : 0)) } };
});
const node = await startNode(t, { manifests: [manifest('small', 'echo'), ...big], args: joinArgs(control.url, joinTokenFile) });

t.test('every service that fits is published; the largest are left out and said', async (t) => {
  await waitForService(control, NODE_ID, 'small');
  const doc = await adminRequest<{ services: Array<{ service_id: string }> }>(control, 'control.node_get', { node_id: NODE_ID });
  const ids = doc.services.map((s) => s.service_id);
  t.notOk(ids.includes('big03') || ids.includes('big07'), 'the two largest left out');
  t.equal(ids.filter((id) => id.startsWith('big')).length, 16, 'the 16 others published');
  const nodeJson = await readJson<{ control: { state: string; last_error: string | null } }>(join(node.mount, 'NODE.json'));
  t.equal(nodeJson.control.state, 'connected');
  t.match(
    nodeJson.control.last_error,
    /^catalog too large: its upsert would be \d+ bytes, above the control server's frame cap of 16777216; not published, largest first: big03 \(\d+ bytes\), big07 \(\d+ bytes\)/,
  );
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const log = await readFile(node.logFile, 'utf8');
  t.equal(log.match(/control session connected/g)?.length, 1, 'one session, never lost');
  t.equal(log.match(/catalog too large/g)?.length, 1, 'said once');
  t.notMatch(log, /1009/, 'never closed for size');
});

t.test('made smaller, the left-out services are published too and the error clears', async (t) => {
  for (const i of [3, 7, 10])
    await writeFile(
      join(node.servicesDir, `big${String(i).padStart(2, '0')}.json`),
      JSON.stringify({ service_id: `big${String(i).padStart(2, '0')}`, kind: 'k' }),
    );
  await waitForService(control, NODE_ID, 'big03');
  await waitForService(control, NODE_ID, 'big07');
  const nodeJson = await readJson<{ control: { last_error: string | null } }>(join(node.mount, 'NODE.json'));
  t.equal(nodeJson.control.last_error, null);
});
