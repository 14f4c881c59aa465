// WorldFS's catalog client (src/world/world-catalog.ts) over a real ws server, for a node whose
// read (control.node_get {view: "stored"}) answers not_found: the node was deleted after its first
// event (a replay of `upsert X, delete X` on resume, or a delete that beat the read), or the
// session may no longer see it. The answer settles the node: one read, nothing shown, the position
// saved for a resume; an event after its delete (it joined again) reads it again and shows it.
import t, { type Test } from 'tap';
import { serviceDelta } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import { serviceHash } from '../../../src/protocol/service-hash.js';
import type { EventKind, ServiceDescriptor, StoredNode } from '../../../src/protocol/types.gen.js';
import { waitFor } from '../../helpers/process.js';
import { scriptedControl } from '../../helpers/scripted-control.js';
import { startTestCatalog } from '../../helpers/world-catalog.js';

const a = applyDefaults({ service_id: 'a', kind: 'k' }, 'x');
const meta = (nodeId: string): Pick<StoredNode, 'node_id' | 'node_name' | 'platform' | 'labels'> => ({
  node_id: nodeId,
  node_name: nodeId,
  platform: {},
  labels: {},
});

/** The delta event frame the server would push for `before` → `after`. */
function event(seq: number, nodeId: string, kind: EventKind, before: ServiceDescriptor[], after: ServiceDescriptor[]): unknown {
  const delta = serviceDelta(before, after, 100 + seq);
  const byId = new Map(after.map((s) => [s.service_id, s]));
  const changed = [...delta.added, ...delta.updated].map((e) => byId.get(e.service_id) as ServiceDescriptor);
  const payload = { watch_id: 'w1', replay: false, seq, kind, timestamp_ms: 100 + seq, ...meta(nodeId), service_delta: delta, changed_services: changed };
  return { channel: 'control', type: 'control.node_service_event', ok: true, payload };
}

function stored(nodeId: string, seq: number, services: ServiceDescriptor[]): StoredNode {
  const times = { lease_expires_at_ms: 9e12, last_seen_ms: 1, joined_at_ms: 1, updated_ms: 1 };
  const hashes = Object.fromEntries(services.map((s) => [s.service_id, serviceHash(s)]));
  return { ...meta(nodeId), ...times, state: 'online', seq, services, service_hashes: hashes };
}

/**
 * A scripted server with no node listed whose node_get answers `nodeGet(node_id)` (undefined:
 * not_found), and a catalog on it that re-reads lease times every 50 ms.
 */
async function world(t: Test, nodeGet: (nodeId: string) => StoredNode | undefined) {
  const server = await scriptedControl(
    {
      'control.node_service_watch': () => ({ watch_id: 'w1', enabled: true, include: 'delta', replay_limit: 0, replayed: 0, head_seq: 0 }),
      'control.node_list': () => ({ nodes: [] }),
    },
    {
      'control.node_get': (id, payload) => {
        const nodeId = payload.node_id as string;
        const node = nodeGet(nodeId);
        return node
          ? { channel: 'control', type: 'control.node_get', id, ok: true, payload: node }
          : { channel: 'control', type: 'control.error', id, ok: false, error: { code: 'not_found', message: `no node ${nodeId}` } };
      },
    },
  );
  const catalog = await startTestCatalog(t, { urls: [server.url], backoffMaxMs: 50, refreshMs: 50 }, () => server.close());
  const gets = (nodeId: string): number => server.requests.filter((r) => r.type === 'control.node_get' && r.payload.node_id === nodeId).length;
  /**
   * Until two lease refreshes (node_list, every 50 ms) came after the first read of `nodeId`: a
   * read that its not_found answer led to would have gone out at once, in the same turn as the answer.
   */
  const settled = async (nodeId: string): Promise<void> => {
    await waitFor(() => gets(nodeId) > 0, { what: `a read of ${nodeId}`, timeoutMs: 5000 });
    const first = server.requests.findIndex((r) => r.type === 'control.node_get' && r.payload.node_id === nodeId);
    await waitFor(() => server.requests.slice(first).filter((r) => r.type === 'control.node_list').length >= 2, {
      what: 'two lease refreshes',
      timeoutMs: 5000,
    });
  };
  return { server, catalog, gets, settled };
}

t.test('a node deleted before its read answers: one read, not shown, the position saved; joined again later, it shows', async (t) => {
  let x: StoredNode | undefined;
  const { server, catalog, gets, settled } = await world(t, () => x);
  server.send(event(1, 'x', 'upsert', [], [a]));
  server.send(event(2, 'x', 'delete', [a], []));
  await settled('x');
  t.equal(gets('x'), 1, 'node x read once: its not_found answer covers both events');
  t.same(catalog.nodeIds(), [], 'x is not shown');

  server.cut();
  const watches = (): Array<Record<string, unknown>> => server.requests.filter((r) => r.type === 'control.node_service_watch').map((r) => r.payload);
  await waitFor(() => watches().length === 2, { what: 'the catalog reconnected', timeoutMs: 5000 });
  t.equal(watches()[1]?.since_seq, 2, 'it resumed after the delete: the position was saved');

  x = stored('x', 3, [a]);
  server.send(event(3, 'x', 'upsert', [], [a]));
  await waitFor(() => catalog.node('x'), { what: 'x joined again, shown', timeoutMs: 5000 });
  t.equal(catalog.node('x')?.seq, 3);
  t.same(
    catalog.node('x')?.services.map((s) => s.service_id),
    ['a'],
  );
  t.equal(gets('x'), 2, 'its new event read it again');
});

t.test('an event queued after the delete (the node joined again) is not dropped with the rest: it reads the node again', async (t) => {
  // The first answer reflects the catalog between the delete and the new join (sent right after it).
  const answers: Array<StoredNode | undefined> = [undefined, stored('x', 3, [a])];
  const { server, catalog, gets } = await world(t, () => answers.shift());
  server.send(event(1, 'x', 'upsert', [], [a]));
  server.send(event(2, 'x', 'delete', [a], []));
  server.send(event(3, 'x', 'upsert', [], [a]));
  await waitFor(() => catalog.node('x'), { what: 'x shown', timeoutMs: 5000 });
  t.equal(catalog.node('x')?.seq, 3);
  t.equal(gets('x'), 2);
});

t.test('a node the session may not see (not_found, no delete): one read, its events dropped', async (t) => {
  const { server, catalog, gets, settled } = await world(t, () => undefined);
  server.send(event(1, 'y', 'upsert', [], [a]));
  server.send(event(2, 'y', 'offline', [], []));
  await settled('y');
  t.equal(gets('y'), 1);
  t.same(catalog.nodeIds(), []);
  t.ok(catalog.connected, 'still connected');
});
