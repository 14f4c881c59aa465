// A WorldFS catalog whose watch the server ends (resync_required: its project changed) reads the
// catalog again on the same connection. A node read still in flight from before belongs to the old
// mirror: answered after the re-read, it must not show a node the new listing does not have (it did,
// for as long as the mount lived: no event of that node ever came again). A scripted ws server.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { serviceDelta } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import { serviceHash } from '../../../src/protocol/service-hash.js';
import { PROTOCOL } from '../../../src/protocol/envelope.js';
import type { ServiceDescriptor, StoredNode } from '../../../src/protocol/types.gen.js';
import type { Attach } from '../../../src/world/catalog-requests.js';
import type { WorldCatalog } from '../../../src/world/world-catalog.js';
import { waitFor } from '../../helpers/process.js';
import { startTestCatalog } from '../../helpers/world-catalog.js';

const a = applyDefaults({ service_id: 'a', kind: 'k' }, 'x');
const meta = (nodeId: string) => ({ node_id: nodeId, node_name: nodeId, platform: {}, labels: {} });
function event(seq: number, nodeId: string, after: ServiceDescriptor[]): unknown {
  const delta = serviceDelta([], after, 100 + seq);
  const payload = {
    watch_id: 'w1',
    replay: false,
    seq,
    kind: 'upsert',
    timestamp_ms: 100 + seq,
    ...meta(nodeId),
    service_delta: delta,
    changed_services: after,
  };
  return { channel: 'control', type: 'control.node_service_event', ok: true, payload };
}
function stored(nodeId: string, seq: number, services: ServiceDescriptor[]): StoredNode {
  const hashes = Object.fromEntries(services.map((s) => [s.service_id, serviceHash(s)]));
  return {
    ...meta(nodeId),
    lease_expires_at_ms: 9e12,
    last_seen_ms: 1,
    joined_at_ms: 1,
    updated_ms: 1,
    state: 'online',
    seq,
    services,
    service_hashes: hashes,
  } as StoredNode;
}

/** The server ends watch w1: the session's project changed. */
const WATCH_ENDED = JSON.stringify({
  channel: 'control',
  type: 'control.error',
  id: null,
  ok: false,
  error: { code: 'resync_required', message: 'project p changed', watch_id: 'w1' },
});

/** A catalog of the scripted `server`, started; stopped with the server at the test's end. */
async function startCatalog(t: Test, server: WebSocketServer, attach?: Attach): Promise<WorldCatalog> {
  const catalog = await startTestCatalog(
    t,
    { urls: [`ws://127.0.0.1:${(server.address() as AddressInfo).port}`], ...(attach ? { attach } : {}), backoffMaxMs: 50 },
    () => server.close(),
  );
  return catalog;
}

t.test('a node read in flight when the watch ends is dropped, not shown after the re-read', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  let socket: WebSocket | undefined;
  let held: (() => void) | undefined;
  let watches = 0;
  server.on('connection', (s) => {
    socket = s;
    s.on('message', (data) => {
      const { type, id, payload } = JSON.parse(data.toString()) as { type: string; id: string; payload: Record<string, unknown> };
      const reply = (p: unknown) => s.send(JSON.stringify({ channel: 'control', type, id, ok: true, payload: p }));
      if (type === 'control.version') reply({ protocol: PROTOCOL, server_version: 'test', principal: 'admin' });
      else if (type === 'control.node_service_watch') {
        watches++;
        reply({ watch_id: 'w1', enabled: true, include: 'delta', replay_limit: 0, replayed: 0, head_seq: 0 });
      } else if (type === 'control.node_list') reply({ nodes: [] });
      else if (type === 'control.node_get') held = () => reply(stored(payload.node_id as string, 1, [a]));
      else reply({});
    });
  });
  const catalog = await startCatalog(t, server);
  socket?.send(JSON.stringify(event(1, 'x', [a])));
  await waitFor(() => held !== undefined, { what: 'the read of x', timeoutMs: 5000 });
  // The server ends the watch (project changed: x no longer in sight), then the stale read answers.
  socket?.send(WATCH_ENDED);
  await waitFor(() => watches === 2, { what: 'the second watch', timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 100));
  t.same(catalog.nodeIds(), [], 'after the re-read: nothing listed');
  held?.();
  await new Promise((r) => setTimeout(r, 200));
  t.same(catalog.nodeIds(), [], 'the read of x answered afterwards shows nothing');
  t.ok(catalog.connected, 'still connected: read again in place');
});

/** A node as control.node_list gives it. */
function summary(nodeId: string): unknown {
  const { services, service_hashes: _hashes, ...node } = stored(nodeId, 1, [a]);
  return { ...node, service_count: services.length };
}

t.test('after the watch ends, the new grant shows only with the nodes read under it', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  let socket: WebSocket | undefined;
  let lists = 0;
  let heldList: (() => void) | undefined;
  server.on('connection', (s) => {
    socket = s;
    s.on('message', (data) => {
      const { type, id, payload } = JSON.parse(data.toString()) as { type: string; id: string; payload: Record<string, unknown> };
      const reply = (p: unknown) => s.send(JSON.stringify({ channel: 'control', type, id, ok: true, payload: p }));
      if (type === 'control.version') reply({ protocol: PROTOCOL, server_version: 'test', principal: 'user' });
      else if (type === 'control.node_service_watch') reply({ watch_id: 'w1', enabled: true, include: 'delta', replay_limit: 0, replayed: 0, head_seq: 0 });
      else if (type === 'control.node_list') {
        // The first listing has x; the one after the project changed has y, and waits until the test lets it go.
        lists++;
        if (lists === 1) reply({ nodes: [summary('x')] });
        else heldList = () => reply({ nodes: [summary('y')] });
      } else if (type === 'control.node_get') reply(stored(payload.node_id as string, 1, [a]));
      else reply({});
    });
  });
  const grant = (nodes: string[]) => ({
    project_id: 'p',
    has_project_token: false,
    nodes,
    actions: { read: 'allowed', observe: 'allowed', invoke: 'allowed', mount: 'allowed', admin: 'refused' },
  });
  const grants = [grant(['x']), grant(['y'])];
  const catalog = await startCatalog(t, server, async () => grants.shift() ?? grant(['y']));
  t.same([catalog.nodeIds(), catalog.grant?.nodes], [['x'], ['x']], 'read under the first grant');
  socket?.send(WATCH_ENDED);
  await waitFor(() => heldList !== undefined, { what: 'the listing after the re-attach', timeoutMs: 5000 });
  t.same([catalog.nodeIds(), catalog.grant?.nodes], [['x'], ['x']], 'while the catalog is read again: the old nodes, under the old grant');
  heldList?.();
  await waitFor(() => catalog.nodeIds()[0] === 'y', { what: 'the catalog read again', timeoutMs: 5000 });
  t.same(catalog.grant?.nodes, ['y'], 'the new grant, with the nodes read under it');
});
