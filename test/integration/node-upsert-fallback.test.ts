// A node asks for the lean upsert reply (include: "delta", docs/control-protocol.md). A server of
// the earlier protocol refuses the key as an unknown one; the node must then upsert without it, say
// so once, and keep publishing. The server is a real ws server scripted like the earlier one
// (test/helpers/scripted-control.ts); the node is a real daemon on a real mount.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { joinArgs } from '../helpers/control.js';
import { manifest, startNode, tempDir } from '../helpers/node.js';
import { waitFor } from '../helpers/process.js';
import { scriptedControl } from '../helpers/scripted-control.js';

const NODE_ID = 'fallback-node';
const upsertReply = (payload: Record<string, unknown>): Record<string, unknown> => ({
  node_id: NODE_ID,
  node_name: NODE_ID,
  platform: {},
  labels: {},
  services: payload.services,
  service_delta: { changed: true, timestamp_ms: Date.now(), added: [], updated: [], removed: [] },
});

const server = await scriptedControl(
  {
    'control.node_join': () => ({ node_id: NODE_ID, node_secret: 'secret', lease_ttl_ms: 60_000 }),
    'control.node_lease_refresh': () => ({ node_id: NODE_ID, lease_expires_at_ms: Date.now() + 60_000, lease_ttl_ms: 60_000 }),
    'control.node_service_upsert': upsertReply,
  },
  {
    // As the earlier protocol's schema answers a key it does not know.
    'control.node_service_upsert': (id, payload) =>
      'include' in payload
        ? { channel: 'control', type: 'control.error', id, ok: false, error: { code: 'invalid_payload', message: 'unknown key', field: '/include' } }
        : undefined,
  },
);
t.teardown(() => server.close());

t.test('a server that refuses include: the node upserts without it, says so once, and its catalog is published', async (t) => {
  const tokenFile = join(await tempDir(t), 'join-token');
  await writeFile(tokenFile, 'join-token\n', { mode: 0o600 });
  const node = await startNode(t, {
    nodeId: NODE_ID,
    manifests: [manifest('echo', 'echo')],
    args: joinArgs(server.url, tokenFile),
  });
  const upserts = (): Array<Record<string, unknown>> => server.requests.filter((r) => r.type === 'control.node_service_upsert').map((r) => r.payload);
  await waitFor(async () => upserts().some((p) => !('include' in p)), { what: 'an upsert without include', timeoutMs: 20_000 });
  const [first, second] = upserts();
  t.equal(first?.include, 'delta', 'the first upsert asks for the lean reply');
  t.equal(second?.include, undefined, 'the one after the refusal does not');
  const ids = (payload: Record<string, unknown> | undefined): string[] => (payload?.services as Array<{ service_id: string }>).map((s) => s.service_id);
  t.ok(ids(second).includes('echo'), 'the catalog is published');
  t.same(ids(second), ids(first), 'the same catalog, sent again');
  const log = await readFile(node.logFile, 'utf8');
  t.equal(log.match(/does not know lean upsert replies/g)?.length, 1, 'said once in the log');
  t.notMatch(log, /catalog upsert failed/, 'no failed publication');
});
