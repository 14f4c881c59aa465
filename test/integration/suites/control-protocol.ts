// SPEC §6 control protocol against a live `acheron control` (real ws, no mocks): the version
// handshake, every op's happy path, every error code this server can give (with the field it
// names), auth (header, browser subprotocol + Origin, node credentials; join tokens, revocation and
// rotation by the token CLI are in suites/tokens-and-projects.ts, run by store-file.test.ts), frame
// caps; and after every bad client the server keeps serving the others. On the store this file's
// servers use: files (control-protocol.test.ts) or etcd (control-protocol-etcd.test.ts).
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { hostname } from 'node:os';
import { serviceHash } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { DeltaEntry as ProtocolDeltaEntry, ServiceDescriptor, UpdatedEntry } from '../../../src/protocol/types.gen.js';
import {
  acheron,
  connect,
  errorsCounted,
  joinToken,
  metricValue,
  sameOnEveryStore,
  scrape,
  serverStoreKind,
  session,
  startControl,
  type Frame,
  type RawPeer,
} from '../../helpers/control.js';
import { sh, waitFor } from '../../helpers/process.js';

interface Joined {
  node_id: string;
  node_secret: string;
  lease_ttl_ms: number;
}
/** A service_delta entry; updated ones also carry the previous version and hash. */
type DeltaEntry = Partial<UpdatedEntry> & ProtocolDeltaEntry;
interface UpsertReply {
  node_id: string;
  node_name: string;
  labels: Record<string, string>;
  platform: Record<string, string>;
  services: ServiceDescriptor[];
  service_delta: { changed: boolean; timestamp_ms: number; added: DeltaEntry[]; updated: DeltaEntry[]; removed: DeltaEntry[] };
}
interface NodeDoc {
  node_id: string;
  state: string;
  lease_expires_at_ms: number;
  last_seen_ms: number;
  joined_at_ms: number;
  updated_ms: number;
  services: ServiceDescriptor[];
  service_count?: number;
}
export async function controlProtocolSuite(t: Test): Promise<void> {
  const files = serverStoreKind() === 'files';
  const ALLOWED_ORIGINS = ['https://console.example:8443', 'http://10.9.8.7'];
  const control = await startControl(t, { args: ALLOWED_ORIGINS.flatMap((origin) => ['--allowed-origin', origin]) });
  const { url } = control;
  const svc = (nodeId: string, serviceId: string, extra: { version?: string } = {}): ServiceDescriptor =>
    applyDefaults({ service_id: serviceId, kind: 'test', ...extra }, nodeId);

  /** A session that stays open through the whole file: every bad client must leave it served. */
  const bystander = await session(url, { token: control.adminToken });
  t.teardown(() => void bystander.socket.terminate());

  /** The bystander still gets answers, and a new client can connect and be served. */
  async function stillServes(tt: Test): Promise<void> {
    tt.equal((await bystander.request('control.node_list')).ok, true, 'the other session is still served');
    const fresh = await session(url, { token: control.userToken });
    tt.equal((await fresh.request('control.version', { protocol: 'unified-v2' })).ok, true, 'a new client is served');
    await fresh.close();
  }

  function expectError(tt: Test, frame: Frame, code: string, field?: string, what = code): void {
    tt.equal(frame.type, 'control.error', `${what}: an error frame`);
    tt.equal(frame.ok, false, `${what}: ok false`);
    tt.equal(frame.channel, 'control', `${what}: channel control`);
    tt.equal(frame.error?.code, code, `${what}: code ${code} (${frame.error?.message ?? JSON.stringify(frame)})`);
    tt.type(frame.error?.message, 'string', `${what}: a message`);
    if (field !== undefined) tt.equal(frame.error?.field, field, `${what}: names the field ${field}`);
  }

  /** Where withNested puts a deeply nested value. */
  const NESTED = '\u0000nested';
  /** The frame as JSON text with NESTED replaced by `[[[…]]]`, `depth` arrays deep (JSON.stringify of such a value would overflow). */
  const withNested = (frame: object, depth: number): string => JSON.stringify(frame).replace(JSON.stringify(NESTED), '['.repeat(depth) + ']'.repeat(depth));

  /** Joins a node with a fresh join token: the joining connection then speaks for the node. */
  async function joinNode(nodeId: string): Promise<{ peer: RawPeer; secret: string }> {
    const token = await joinToken(control.dataDir);
    const peer = await session(url, { token });
    const joined = await peer.call<Joined>('control.node_join', { join_token: token, node_id: nodeId });
    return { peer, secret: joined.node_secret };
  }

  const nodeSession = (nodeId: string, secret: string): Promise<RawPeer> => session(url, { token: `node.${nodeId}.${secret}` });

  // One node for the op tests. Set up before the first subtest: tap ends an idle root test.
  const n1 = await joinNode('n1');

  await t.test('the first frame must be control.version, else protocol_mismatch and close', async (tt) => {
    const cases: Array<[string, string | Buffer | object, string | null]> = [
      ['another op first', { channel: 'control', type: 'control.node_list', id: 'first', payload: {} }, 'first'],
      ['another protocol', { channel: 'control', type: 'control.version', id: 'first', payload: { protocol: 'unified-v1' } }, 'first'],
      ['a version without protocol', { channel: 'control', type: 'control.version', id: 'first', payload: {} }, 'first'],
      ['not JSON', 'not json', null],
      ['empty text', '', null],
      ['a binary frame', Buffer.from(JSON.stringify({ channel: 'control', type: 'control.version', id: 'bin', payload: { protocol: 'unified-v2' } })), null],
      ['an invalid envelope', { channel: 'data', type: 'control.version', id: 'first', payload: { protocol: 'unified-v2' } }, 'first'],
      ['JSON null', 'null', null],
      [
        'a version with a field it does not have',
        { channel: 'control', type: 'control.version', id: 'first', payload: { protocol: 'unified-v2', x: 1 } },
        'first',
      ],
      ['an id longer than 128 characters', { channel: 'control', type: 'control.node_list', id: 'i'.repeat(5000), payload: {} }, null],
    ];
    for (const [what, frame, id] of cases) {
      const opened = await connect(url, { token: control.adminToken });
      const peer = opened.peer as RawPeer;
      peer.send(frame);
      const reply = await peer.next();
      expectError(tt, reply, 'protocol_mismatch', undefined, what);
      tt.match(reply.error?.message, /the first frame must be control\.version with protocol unified-v2/, `${what}: says what the first frame must be`);
      tt.equal(reply.id, id, `${what}: the error carries the request id when there is one`);
      tt.equal((await peer.closed).code, 4002, `${what}: then the server closes the connection`);
    }
    await stillServes(tt);
  });

  await t.test('control.version naming another protocol mid-session: protocol_mismatch naming /payload/protocol, then close 4002', async (tt) => {
    const peer = await session(url, { token: control.userToken });
    tt.equal((await peer.request('control.version', { protocol: 'unified-v2' })).ok, true, 'the same protocol again: ok');
    const reply = await peer.request('control.version', { protocol: 'unified-v1' });
    expectError(tt, reply, 'protocol_mismatch', '/payload/protocol', 'another protocol mid-session');
    tt.match(reply.error?.message, /"unified-v1" is not unified-v2/, 'names both protocols');
    tt.equal((await peer.closed).code, 4002, 'then the server closes the connection');
    await stillServes(tt);
  });

  await t.test('control.version names the protocol, the server version and the principal', { skip: sameOnEveryStore() }, async (tt) => {
    const peer = await session(url, { token: control.userToken });
    const reply = await peer.request('control.version', { protocol: 'unified-v2' });
    tt.match(reply, { channel: 'control', type: 'control.version', ok: true, payload: { protocol: 'unified-v2', principal: 'user' } });
    tt.type((reply.payload as { server_version: unknown }).server_version, 'string');
    await peer.close();
  });

  await t.test('replies are matched by id, also when several requests are in flight', { skip: sameOnEveryStore() }, async (tt) => {
    const peer = await session(url, { token: control.adminToken });
    const ids = ['x1', 'x2', 'x3', 'x4', 'x5'];
    const replies = await Promise.all(ids.map((id) => peer.request('control.node_list', {}, id)));
    tt.same(
      replies.map((r) => [r.id, r.type, r.ok]),
      ids.map((id) => [id, 'control.node_list', true]),
    );
    await peer.close();
  });

  await t.test('node_join: a join token buys a node id and a secret; the connection becomes the node', async (tt) => {
    const token = await joinToken(control.dataDir);
    const peer = await session(url, { token });
    const version = await peer.call<{ principal: string }>('control.version', { protocol: 'unified-v2' });
    tt.equal(version.principal, 'joiner', 'a join token authenticates a joiner');
    const joined = await peer.call<Joined>('control.node_join', {
      join_token: token,
      node_id: 'joined-1',
      node_name: 'Joined One',
      platform: { os: 'linux', arch: 'x64', runtime_kind: 'node' },
      labels: { rack: 'r1' },
    });
    tt.equal(joined.node_id, 'joined-1');
    tt.match(joined.node_secret, /^[A-Za-z0-9_-]{20,}$/, 'a secret');
    tt.equal(joined.lease_ttl_ms, 60_000, 'the server tells the lease TTL');
    tt.equal(
      (await peer.call<{ principal: string }>('control.version', { protocol: 'unified-v2' })).principal,
      'node',
      'the joining connection now speaks for the node',
    );
    const got = await peer.call<NodeDoc & { node_name: string; labels: Record<string, string>; platform: Record<string, string> }>('control.node_get', {
      node_id: 'joined-1',
    });
    tt.match(got, {
      node_id: 'joined-1',
      node_name: 'Joined One',
      labels: { rack: 'r1' },
      platform: { os: 'linux', arch: 'x64' },
      state: 'online',
      services: [],
    });
    const again = await nodeSession('joined-1', joined.node_secret);
    tt.equal(
      (await again.call<{ principal: string }>('control.version', { protocol: 'unified-v2' })).principal,
      'node',
      'node.<id>.<secret> authenticates the node',
    );
    await Promise.all([peer.close(), again.close()]);

    const anonymous = await session(url, { token: await joinToken(control.dataDir) });
    expectError(tt, await anonymous.request('control.node_join', { join_token: '' }), 'invalid_payload', '/join_token', 'an empty join_token');
    await anonymous.close();
  });

  await t.test("joining again with a node's id closes the connections made with its old secret", async (tt) => {
    const first = await joinNode('n-rejoin');
    const tunnel = await nodeSession('n-rejoin', first.secret);
    const closed = new Promise<number>((resolve) => tunnel.socket.once('close', (code: number) => resolve(code)));
    const second = await joinNode('n-rejoin');
    tt.equal(await closed, 4001, 'the old tunnel is closed with 4001');
    tt.ok(second.peer.isOpen, 'the joining connection stays: it is the node now');
    tt.equal((await connect(url, { token: `node.n-rejoin.${first.secret}` })).status, 401, 'the old secret is refused');
    const fresh = await nodeSession('n-rejoin', second.secret);
    tt.equal((await fresh.request('control.node_get', { node_id: 'n-rejoin' })).ok, true, 'the new one works');
    await Promise.all([first.peer.close(), second.peer.close(), fresh.close()]);
  });

  await t.test('node_join without node_id: the server picks one', async (tt) => {
    const token = await joinToken(control.dataDir);
    const peer = await session(url, { token });
    const joined = await peer.call<Joined>('control.node_join', { join_token: token });
    tt.match(joined.node_id, /^[A-Za-z0-9._-]{1,128}$/);
    tt.equal((await bystander.call<NodeDoc>('control.node_get', { node_id: joined.node_id })).node_id, joined.node_id, 'the admin sees it');
    await peer.close();
  });

  await t.test('node_service_upsert: the stored catalog plus service_delta (add, update, remove, reorder, unchanged)', async (tt) => {
    const a1 = svc('n1', 'a');
    const b1 = svc('n1', 'b');
    const added = await n1.peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n1', labels: { zone: 'z1' }, services: [b1, a1] });
    tt.equal(added.node_id, 'n1');
    tt.same(added.labels, { zone: 'z1' });
    tt.same(added.services, [b1, a1], 'the stored catalog, as sent');
    tt.equal(added.service_delta.changed, true);
    tt.type(added.service_delta.timestamp_ms, 'number');
    tt.same(
      added.service_delta.added,
      [
        { service_id: 'a', version: '1', hash: serviceHash(a1) },
        { service_id: 'b', version: '1', hash: serviceHash(b1) },
      ],
      'added, sorted by service_id, hashed as SPEC §6 says',
    );
    tt.same([added.service_delta.updated, added.service_delta.removed], [[], []]);
    for (const e of added.service_delta.added) tt.match(e.hash, /^0x[0-9a-f]{16}$/);

    const same = await n1.peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n1', services: [b1, a1] });
    tt.same(same.service_delta, { changed: false, timestamp_ms: same.service_delta.timestamp_ms, added: [], updated: [], removed: [] }, 'unchanged');
    const reordered = await n1.peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n1', services: [a1, b1] });
    tt.equal(reordered.service_delta.changed, false, 'a reorder is no change');

    const b2 = svc('n1', 'b', { version: '2' });
    const c1 = svc('n1', 'c');
    const changed = await n1.peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n1', services: [c1, b2] });
    tt.equal(changed.service_delta.changed, true);
    tt.same(changed.service_delta.added, [{ service_id: 'c', version: '1', hash: serviceHash(c1) }]);
    tt.same(changed.service_delta.updated, [{ service_id: 'b', version: '2', hash: serviceHash(b2), previous_version: '1', previous_hash: serviceHash(b1) }]);
    tt.same(changed.service_delta.removed, [{ service_id: 'a', version: '1', hash: serviceHash(a1) }]);
    tt.same(changed.labels, { zone: 'z1' }, 'labels not sent are kept');

    const stored = await n1.peer.call<{ services: ServiceDescriptor[] }>('control.node_service_get', { node_id: 'n1' });
    tt.same(stored.services, [c1, b2], 'node_service_get returns what was stored');
  });

  await t.test('node_service_upsert with include "delta": the lean reply (changed_services, no catalog); the whole catalog is stored', async (tt) => {
    const [b2, c1] = [svc('n1', 'b', { version: '2' }), svc('n1', 'c')];
    const [b3, d1] = [svc('n1', 'b', { version: '3' }), svc('n1', 'd')];
    const lean = await n1.peer.call<Omit<UpsertReply, 'services'> & { services?: unknown; changed_services?: ServiceDescriptor[] }>(
      'control.node_service_upsert',
      { node_id: 'n1', services: [c1, b3, d1], include: 'delta' },
    );
    tt.equal(lean.services, undefined, 'no catalog in the reply');
    tt.same(lean.changed_services, [d1, b3], 'the added, then the updated descriptors, as stored');
    tt.same(lean.service_delta.added, [{ service_id: 'd', version: '1', hash: serviceHash(d1) }]);
    tt.same(lean.service_delta.updated, [{ service_id: 'b', version: '3', hash: serviceHash(b3), previous_version: '2', previous_hash: serviceHash(b2) }]);
    tt.same([lean.node_id, lean.labels], ['n1', { zone: 'z1' }], 'node meta as in the full shape');
    const unchanged = await n1.peer.call<{ changed_services?: unknown; service_delta: { changed: boolean } }>('control.node_service_upsert', {
      node_id: 'n1',
      services: [d1, c1, b3],
      include: 'delta',
    });
    tt.same([unchanged.changed_services, unchanged.service_delta.changed], [[], false], 'no change: no descriptor');
    const stored = await n1.peer.call<{ services: ServiceDescriptor[] }>('control.node_service_get', { node_id: 'n1' });
    tt.same(stored.services, [c1, b3, d1], 'the whole catalog was stored');
    const whole = await n1.peer.call<UpsertReply & { changed_services?: unknown }>('control.node_service_upsert', { node_id: 'n1', services: [c1, b2] });
    tt.same([whole.services, whole.changed_services], [[c1, b2], undefined], 'without include: the whole catalog, as in the earlier protocol');
  });

  await t.test('node_lease_refresh extends the lease', async (tt) => {
    const before = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' });
    await waitFor(() => Date.now() > before.last_seen_ms + 5, { what: 'the clock to move' });
    const refreshed = await n1.peer.call<{ node_id: string; lease_expires_at_ms: number; lease_ttl_ms: number }>('control.node_lease_refresh', {
      node_id: 'n1',
    });
    tt.equal(refreshed.node_id, 'n1');
    tt.equal(refreshed.lease_ttl_ms, 60_000);
    tt.ok(refreshed.lease_expires_at_ms > before.lease_expires_at_ms, 'the lease ends later than before');
    const after = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' });
    tt.equal(after.lease_expires_at_ms, refreshed.lease_expires_at_ms);
    tt.ok(after.last_seen_ms > before.last_seen_ms, 'last_seen_ms moved');
  });

  await t.test('node_list and node_get (admin; a node may get itself)', async (tt) => {
    const { nodes } = await bystander.call<{ nodes: NodeDoc[] }>('control.node_list');
    const listed = nodes.find((n) => n.node_id === 'n1');
    tt.match(listed, { node_id: 'n1', state: 'online', service_count: 2 }, 'n1 is listed with its service count');
    tt.notOk(listed && 'services' in listed, 'the list carries counts, not catalogs');
    tt.same(
      nodes.map((n) => n.node_id),
      [...nodes.map((n) => n.node_id)].sort(),
      'sorted by node_id',
    );
    const got = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' });
    tt.equal(got.state, 'online');
    for (const key of ['lease_expires_at_ms', 'last_seen_ms', 'joined_at_ms'] as const)
      tt.ok(Number.isInteger(got[key]) && got[key] > 1.6e12, `${key} is an epoch ms`);
    tt.same(
      got.services.map((s) => s.service_id),
      ['c', 'b'],
    );
    tt.notOk(JSON.stringify(got).includes('secret'), 'no secret (or its hash) leaves the server');
    tt.same(await n1.peer.call<NodeDoc>('control.node_get', { node_id: 'n1' }), got, 'the node gets the same document');
  });

  await t.test('control.metrics (admin): the §7 numbers as JSON', async (tt) => {
    const metrics = await bystander.call<Record<string, Array<{ labels: Record<string, string>; value: number }>>>('control.metrics');
    const online = metrics.acheron_nodes?.find((v) => v.labels.state === 'online');
    tt.ok(online && online.value >= 1, 'nodes by state');
    tt.ok(
      metrics.acheron_upserts_total?.some((v) => v.labels.changed === 'false' && v.value >= 2),
      'upserts by changed',
    );
    tt.ok(
      metrics.acheron_connections?.some((v) => v.labels.role === 'admin' && v.value >= 1),
      'connections by role',
    );
    tt.ok(
      metrics.acheron_errors_total?.some((v) => v.labels.code === 'protocol_mismatch' && v.value >= 2),
      'errors by code',
    );
    const joiners = metrics.acheron_connections?.find((v) => v.labels.role === 'joiner')?.value ?? 0;
    tt.equal(joiners, 0, 'connections that joined count as nodes, not as joiners');
    const nodes = metrics.acheron_connections?.find((v) => v.labels.role === 'node')?.value ?? 0;
    tt.equal(nodes, 1, 'one node connection is open (n1)');
  });

  await t.test('node_delete removes a node; its credentials stop working', async (tt) => {
    const doomed = await joinNode('doomed');
    await doomed.peer.call('control.node_service_upsert', { node_id: 'doomed', services: [svc('doomed', 'x')] });
    await doomed.peer.close();
    const tunnel = await nodeSession('doomed', doomed.secret);
    const closed = new Promise<number>((resolve) => tunnel.socket.once('close', (code: number) => resolve(code)));
    tt.same(await bystander.call('control.node_delete', { node_id: 'doomed' }), { node_id: 'doomed', deleted: true });
    tt.equal(await closed, 4001, "the deleted node's open connection is closed with 4001");
    expectError(tt, await bystander.request('control.node_get', { node_id: 'doomed' }), 'not_found', '/node_id', 'node_get after delete');
    tt.notOk(
      (await bystander.call<{ nodes: NodeDoc[] }>('control.node_list')).nodes.some((n) => n.node_id === 'doomed'),
      'not listed',
    );
    tt.equal((await connect(url, { token: `node.doomed.${doomed.secret}` })).status, 401, 'its secret is refused');
    expectError(tt, await bystander.request('control.node_delete', { node_id: 'doomed' }), 'not_found', '/node_id', 'a second delete');
  });

  await t.test('invalid_envelope: bad frames get an error naming the field; the connection stays up', async (tt) => {
    const peer = await session(url, { token: control.userToken });
    const cases: Array<[string, string | Buffer | object, string | undefined]> = [
      ['not JSON', '{"channel": "control", nope', undefined],
      ['empty text', '', undefined],
      [
        'a binary frame',
        Buffer.from(JSON.stringify({ channel: 'control', type: 'control.version', id: 'bin', payload: { protocol: 'unified-v2' } })),
        undefined,
      ],
      ['a JSON array', '[1,2]', '/'],
      ['JSON null', 'null', '/'],
      ['missing id', { channel: 'control', type: 'control.version', payload: { protocol: 'unified-v2' } }, '/id'],
      ['id not a string', { channel: 'control', type: 'control.version', id: 7, payload: { protocol: 'unified-v2' } }, '/id'],
      ['empty id', { channel: 'control', type: 'control.version', id: '', payload: { protocol: 'unified-v2' } }, '/id'],
      ['wrong channel', { channel: 'data', type: 'control.version', id: 'c1', payload: { protocol: 'unified-v2' } }, '/channel'],
      ['missing channel', { type: 'control.version', id: 'c2', payload: { protocol: 'unified-v2' } }, '/channel'],
      ['type not a string', { channel: 'control', type: 5, id: 'c3', payload: {} }, '/type'],
      ['type outside control.*', { channel: 'control', type: 'data.read', id: 'c4', payload: {} }, '/type'],
      ['payload not an object', { channel: 'control', type: 'control.version', id: 'c5', payload: [] }, '/payload'],
      ['missing payload', { channel: 'control', type: 'control.version', id: 'c6' }, '/payload'],
      ['an unknown envelope key', { channel: 'control', type: 'control.version', id: 'c7', payload: { protocol: 'unified-v2' }, extra: 1 }, '/extra'],
    ];
    for (const [what, frame, field] of cases) {
      peer.send(frame);
      const reply = await peer.next((f) => f.type === 'control.error');
      expectError(tt, reply, 'invalid_envelope', field, what);
      if (typeof frame === 'object' && !Buffer.isBuffer(frame) && typeof (frame as { id?: unknown }).id === 'string' && (frame as { id: string }).id !== '')
        tt.equal(reply.id, (frame as { id: string }).id, `${what}: the error carries the id`);
      tt.equal((await peer.request('control.version', { protocol: 'unified-v2' })).ok, true, `${what}: the same connection keeps working`);
    }
    tt.ok(peer.isOpen, 'never closed');
    await peer.close();
    await stillServes(tt);
  });

  await t.test('invalid_payload: wrong types get an error naming the field; the connection stays up', { skip: sameOnEveryStore() }, async (tt) => {
    const bad = { ...svc('n1', 'bad'), kind: 5 };
    const cases: Array<[string, RawPeer, string, Record<string, unknown>, string]> = [
      ['node_id a number', bystander, 'control.node_get', { node_id: 5 }, '/node_id'],
      ['node_id missing', bystander, 'control.node_get', {}, '/node_id'],
      ['node_id a path', bystander, 'control.node_get', { node_id: '../etc' }, '/node_id'],
      ['node_id ..', bystander, 'control.node_get', { node_id: '..' }, '/node_id'],
      ['node_id too long', bystander, 'control.node_get', { node_id: 'x'.repeat(129) }, '/node_id'],
      ['an unknown key', bystander, 'control.node_get', { node_id: 'n1', extra: true }, '/extra'],
      ['payload for an empty op', bystander, 'control.node_list', { all: true }, '/all'],
      ['version without protocol', bystander, 'control.version', {}, '/protocol'],
      ['services not an array', n1.peer, 'control.node_service_upsert', { node_id: 'n1', services: {} }, '/services'],
      ['a service kind of the wrong type', n1.peer, 'control.node_service_upsert', { node_id: 'n1', services: [bad] }, '/services/0/kind'],
      [
        'a service without service_id',
        n1.peer,
        'control.node_service_upsert',
        { node_id: 'n1', services: [{ ...svc('n1', 'q'), service_id: undefined }] },
        '/services/0/service_id',
      ],
      ['labels of the wrong type', n1.peer, 'control.node_service_upsert', { node_id: 'n1', services: [], labels: { a: 1 } }, '/labels/a'],
      ['a platform key unknown', n1.peer, 'control.node_service_upsert', { node_id: 'n1', services: [], platform: { cpu: 'x' } }, '/platform/cpu'],
    ];
    for (const [what, peer, type, payload, field] of cases) {
      expectError(tt, await peer.request(type, payload), 'invalid_payload', field, what);
    }
    // Values nested deeper than 64 levels: named where, never a stack overflow (`unavailable`) in what serializes or hashes them.
    const deepCases: Array<[string, RawPeer, string, Record<string, unknown>, number, string]> = [
      ['a value nested 100 deep', bystander, 'control.node_get', { node_id: 'n1', x: NESTED }, 100, `/x${'/0'.repeat(63)}`],
      [
        'a descriptor nested 70 deep',
        n1.peer,
        'control.node_service_upsert',
        { node_id: 'n1', services: [{ ...svc('n1', 'deep'), capabilities: { a: NESTED } }] },
        70,
        `/services/0/capabilities/a${'/0'.repeat(60)}`,
      ],
      // From 8 KiB on an upsert is read in parts (upsert-frame.ts): the same answer.
      [
        'a descriptor nested 200000 deep',
        n1.peer,
        'control.node_service_upsert',
        { node_id: 'n1', services: [{ ...svc('n1', 'deep'), capabilities: { a: NESTED } }] },
        200_000,
        `/services/0/capabilities/a${'/0'.repeat(60)}`,
      ],
    ];
    for (const [index, [what, peer, type, payload, depth, field]] of deepCases.entries()) {
      peer.send(withNested({ channel: 'control', type, id: `deep${index}`, payload }, depth));
      expectError(tt, await peer.next((f) => f.id === `deep${index}`), 'invalid_payload', field, what);
    }
    // A number that overflows to Infinity (JSON `1e400`): named where, nothing stored, never `unavailable` from what hashes it.
    const big = (id: string, capabilities: Record<string, unknown>): Record<string, unknown> => ({
      node_id: 'n1',
      services: [{ ...svc('n1', id), capabilities }],
    });
    const overflowCases: Array<[string, RawPeer, string, Record<string, unknown>, string]> = [
      ['a capability of 1e400', n1.peer, 'control.node_service_upsert', big('inf', { x: NESTED }), '/services/0/capabilities/x'],
      // From 8 KiB on an upsert is read in parts (upsert-frame.ts): the same answer.
      [
        'a large descriptor with a 1e400',
        n1.peer,
        'control.node_service_upsert',
        big('inf', { pad: 'p'.repeat(10_000), x: NESTED }),
        '/services/0/capabilities/x',
      ],
      ['a since_seq of 1e400', bystander, 'control.node_service_watch', { since_seq: NESTED }, '/since_seq'],
    ];
    for (const [index, [what, peer, type, payload, field]] of overflowCases.entries()) {
      peer.send(JSON.stringify({ channel: 'control', type, id: `inf${index}`, payload }).replace(JSON.stringify(NESTED), '1e400'));
      expectError(tt, await peer.next((f) => f.id === `inf${index}`), 'invalid_payload', field, what);
    }
    // A lone surrogate (JSON `"\ud800"`), in any string: named where, never `unavailable` from what hashes it.
    const LONE = 'LONE-SURROGATE';
    const surrogateCases: Array<[string, RawPeer, string, Record<string, unknown>, string]> = [
      ['a help_md with a lone surrogate', n1.peer, 'control.node_service_upsert', big('inf', {}), '/services/0/help_md'],
      ['the same in a large descriptor', n1.peer, 'control.node_service_upsert', big('inf', { pad: 'p'.repeat(10_000) }), '/services/0/help_md'],
    ];
    for (const [index, [what, peer, type, payload, field]] of surrogateCases.entries()) {
      const services = (payload.services as Array<Record<string, unknown>>).map((service) => ({ ...service, help_md: `bad ${LONE} here` }));
      peer.send(JSON.stringify({ channel: 'control', type, id: `lone${index}`, payload: { ...payload, services } }).replace(LONE, '\\ud800'));
      expectError(tt, await peer.next((f) => f.id === `lone${index}`), 'invalid_payload', field, what);
    }
    n1.peer.send(
      JSON.stringify({
        channel: 'control',
        type: 'control.node_service_upsert',
        id: 'lone-label',
        payload: { node_id: 'n1', labels: { x: LONE }, services: [] },
      }).replace(LONE, '\\udc00'),
    );
    expectError(tt, await n1.peer.next((f) => f.id === 'lone-label'), 'invalid_payload', '/labels/x', 'a label with a lone surrogate: every string alike');
    const n1Now = await bystander.call<{ services: Array<{ service_id: string }> }>('control.node_get', { node_id: 'n1' });
    tt.notOk(
      n1Now.services.some((service) => service.service_id === 'inf'),
      'nothing of a refused upsert is stored',
    );
    tt.ok(bystander.isOpen && n1.peer.isOpen, 'both connections stay up');
    await stillServes(tt);
  });

  await t.test('invalid_payload: an upsert is all-or-nothing', async (tt) => {
    const before = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' });
    const good = svc('n1', 'would-be-added');
    expectError(
      tt,
      await n1.peer.request('control.node_service_upsert', { node_id: 'n1', labels: { changed: 'yes' }, services: [good, { ...svc('n1', 'bad'), kind: 5 }] }),
      'invalid_payload',
      '/services/1/kind',
      'one bad entry',
    );
    expectError(
      tt,
      await n1.peer.request('control.node_service_upsert', { node_id: 'n1', services: [good, svc('n1', 'would-be-added', { version: '9' })] }),
      'invalid_payload',
      '/services/1/service_id',
      'a duplicate service_id',
    );
    // Frames from 8 KiB on are read in parts (descriptors apart, stored ones matched as text): same answers.
    const big = { ...svc('n1', 'would-be-added'), help_md: 'x'.repeat(9000) };
    expectError(
      tt,
      await n1.peer.request('control.node_service_upsert', { node_id: 'n1', labels: { changed: 'yes' }, services: [big, { ...svc('n1', 'bad'), kind: 5 }] }),
      'invalid_payload',
      '/services/1/kind',
      'one bad entry in a big frame',
    );
    expectError(
      tt,
      await n1.peer.request('control.node_service_upsert', { node_id: 'n1', services: [big, { ...big, version: '9' }] }),
      'invalid_payload',
      '/services/1/service_id',
      'a duplicate service_id in a big frame',
    );
    expectError(
      tt,
      await n1.peer.request('control.node_service_upsert', { node_id: 'n1', services: [...before.services, { ...big, help_md: 5 }] }),
      'invalid_payload',
      `/services/${before.services.length}/help_md`,
      'stored descriptors unchanged, one bad new one',
    );
    const after = await bystander.call<NodeDoc & { labels: Record<string, string> }>('control.node_get', { node_id: 'n1' });
    tt.same(after.services, before.services, 'the catalog did not change');
    tt.equal(after.updated_ms, before.updated_ms, 'nothing was written');
    tt.notOk('changed' in after.labels, 'the labels of the refused upsert were not applied');
  });

  await t.test('descriptors of other implementations: SPEC §2 defaults applied, stored and hashed with them', async (tt) => {
    const { peer } = await joinNode('n-partial');
    // What another implementation may send: no runtime limits, no mounts, no permissions, a templated endpoint.
    const partial = {
      service_id: 'lean',
      kind: 'sensor',
      runtime: { type: 'native_proc' as const, executable_path: '/usr/bin/sensor' },
      endpoints: ['/nodes/{node_id}/services/{service_id}'] as [string],
    };
    const expected = applyDefaults(partial, 'n-partial');
    const reply = await peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n-partial', services: [partial] });
    tt.same(reply.services, [expected], 'the reply is the catalog as stored: with the defaults the node applies to manifests');
    tt.match(reply.services[0]?.runtime, { timeout_ms: 30000, max_concurrency: 1, max_queue: 64, executable_path: '/usr/bin/sensor' });
    tt.same(reply.services[0]?.endpoints, ['/nodes/n-partial/services/lean'], 'placeholders replaced');
    tt.same(reply.service_delta.added, [{ service_id: 'lean', version: '1', hash: serviceHash(expected) }], 'the hash is over the descriptor as stored');
    const again = await peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n-partial', services: [expected] });
    tt.equal(again.service_delta.changed, false, 'the same descriptor sent whole is no change');
    const doc = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n-partial' });
    tt.same(doc.services, [expected], 'node_get has it with its defaults');
    expectError(
      tt,
      await peer.request('control.node_service_upsert', {
        node_id: 'n-partial',
        services: [{ service_id: 'lean', kind: 'sensor', runtime: { timeout_ms: 'soon' } }],
      }),
      'invalid_payload',
      '/services/0/runtime/timeout_ms',
      'a default never hides a wrong value',
    );
    await peer.close();
  });

  await t.test("endpoints and mount paths outside the node's own /nodes/<node_id>/ are refused, naming the field", async (tt) => {
    const { peer } = await joinNode('n-paths');
    const own = svc('n-paths', 'own');
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["another node's endpoint", { ...own, endpoints: ['/nodes/n-paths/services/own', '/nodes/n1/services/a'] }, '/services/0/endpoints/1'],
      ["another node's mount path", { ...own, mounts: [{ mount_id: 'm', mount_path: '/nodes/n1/fs' }] }, '/services/0/mounts/0/mount_path'],
      ['a way out with ..', { ...own, endpoints: ['/nodes/n-paths/../n1/x'], mounts: [] }, '/services/0/endpoints/0'],
      ['a node id that only starts the same', { ...own, endpoints: ['/nodes/n-paths2/x'], mounts: [] }, '/services/0/endpoints/0'],
    ];
    for (const [what, service, field] of cases) {
      const frame = await peer.request('control.node_service_upsert', { node_id: 'n-paths', services: [service] });
      expectError(tt, frame, 'invalid_payload', field, what);
      tt.match(frame.error?.message, /is not under \/nodes\/n-paths\//, `${what}: the message names the rule`);
    }
    const repeated = await peer.request('control.node_service_upsert', {
      node_id: 'n-paths',
      services: [{ ...own, mounts: ['m', 'n', 'm'].map((id, i) => ({ mount_id: id, mount_path: `/nodes/n-paths/m${i}` })) }],
    });
    expectError(tt, repeated, 'invalid_payload', '/services/0/mounts/2/mount_id', 'a mount_id used twice');
    tt.match(repeated.error?.message, 'mount_id "m" is already used by /services/0/mounts/0', 'the message names the first');
    for (const [what, service, field] of [
      ['a newline in an endpoint', { ...own, endpoints: ['/nodes/n-paths/a\nb'], mounts: [] }, '/services/0/endpoints/0'],
      ['a NUL in a mount path', { ...own, mounts: [{ mount_id: 'm', mount_path: '/nodes/n-paths/\u0000' }] }, '/services/0/mounts/0/mount_path'],
      ['a backslash', { ...own, endpoints: ['/nodes/n-paths/a\\b'], mounts: [] }, '/services/0/endpoints/0'],
      ['257 endpoints', { ...own, endpoints: Array.from({ length: 257 }, (_, i) => `/nodes/n-paths/e${i}`), mounts: [] }, '/services/0/endpoints'],
    ] as const) {
      expectError(tt, await peer.request('control.node_service_upsert', { node_id: 'n-paths', services: [service] }), 'invalid_payload', field, what);
    }
    // An admin upserting for a node is held to that node's tree too.
    expectError(
      tt,
      await bystander.request('control.node_service_upsert', { node_id: 'n-paths', services: [svc('n1', 'x')] }),
      'invalid_payload',
      '/services/0/endpoints/0',
      'an admin upsert of foreign paths',
    );
    // The victim's stored descriptor, sent by another node in a frame naming node_id twice (the
    // victim's before the array, its own after): refused as if sent plainly.
    const victim = { ...svc('n1', 'victim-db'), help_md: 'x'.repeat(9000) };
    await n1.peer.call('control.node_service_upsert', { node_id: 'n1', services: [victim] });
    const twice = JSON.stringify({
      channel: 'control',
      type: 'control.node_service_upsert',
      id: 'twice',
      payload: { node_id: 'n1', services: [victim] },
    }).replace(/\}\}$/, ',"node_id":"n-paths"}}');
    peer.send(twice);
    expectError(
      tt,
      await peer.next((f) => f.id === 'twice'),
      'invalid_payload',
      '/services/0/endpoints/0',
      'node_id twice, the stored descriptor of another node',
    );
    tt.same((await bystander.call<NodeDoc>('control.node_get', { node_id: 'n-paths' })).services, [], 'nothing was stored');
    await peer.close();
  });

  await t.test('node_get view "stored": services as stored with their hashes, and the seq the node reflects', async (tt) => {
    const a = svc('n1', 'viewed');
    const reply = await n1.peer.call<UpsertReply>('control.node_service_upsert', { node_id: 'n1', services: [a] });
    const stored = await bystander.call<NodeDoc & { seq: number; service_hashes: Record<string, string> }>('control.node_get', {
      node_id: 'n1',
      view: 'stored',
    });
    tt.same(stored.services, [a]);
    tt.same(stored.service_hashes, { viewed: reply.service_delta.added[0]?.hash ?? reply.service_delta.updated[0]?.hash });
    const watcher = await session(url, { token: control.adminToken });
    const ack = await watcher.call<{ head_seq: number }>('control.node_service_watch', { node_id: 'n1', replay_limit: 1, include: 'delta' });
    const last = await watcher.next((f) => f.type === 'control.node_service_event');
    tt.equal(stored.seq, (last.payload as { seq: number }).seq, "seq: the node's last event");
    tt.ok(stored.seq <= ack.head_seq);
    tt.notOk('service_hashes' in (await bystander.call<Record<string, unknown>>('control.node_get', { node_id: 'n1' })), 'the published view has no hashes');
    expectError(tt, await bystander.request('control.node_get', { node_id: 'n1', view: 'raw' }), 'invalid_payload', '/view');
    await watcher.close();
  });

  await t.test('unknown_op names /type; the connection stays up', { skip: sameOnEveryStore() }, async (tt) => {
    for (const type of ['control.no_such_op', 'control.node_joins']) {
      expectError(tt, await bystander.request(type, {}), 'unknown_op', '/type', type);
    }
    tt.ok(bystander.isOpen);
    await stillServes(tt);
  });

  await t.test('unauthorized: a bad or missing token gets HTTP 401 and nothing else', { skip: sameOnEveryStore() }, async (tt) => {
    const cases: Array<[string, Parameters<typeof connect>[1]]> = [
      ['no token', {}],
      ['a wrong token', { token: 'ach_admin_not-really' }],
      ['an empty bearer', { headers: { authorization: 'Bearer ' } }],
      ['a non-bearer scheme', { headers: { authorization: `Basic ${control.adminToken}` } }],
      ['a wrong node secret', { token: `node.n1.${n1.secret}x` }],
      ['an unknown node', { token: `node.nobody.${n1.secret}` }],
      ['a node token with the admin token as secret', { token: `node.n1.${control.adminToken}` }],
      ['a wrong token as subprotocol', { subprotocolToken: 'nope', origin: control.httpUrl }],
    ];
    for (const [what, options] of cases) tt.equal((await connect(url, options)).status, 401, what);
    await stillServes(tt);
  });

  await t.test('upgrades the peer resets (during the token check, or as it is refused) leave the server up', async (tt) => {
    const { hostname: host, port } = new URL(url);
    const request = (authorization: string) =>
      `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${authorization}` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    for (const [what, authorization] of [
      ['no token', ''],
      ['the admin token', `Authorization: Bearer ${control.adminToken}\r\n`],
    ] as const) {
      for (let round = 0; round < 4; round++) {
        await Promise.all(
          Array.from(
            { length: 40 },
            () =>
              new Promise<void>((done) => {
                const socket = netConnect(Number(port), host, () => {
                  socket.write(request(authorization));
                  setTimeout(() => (socket.resetAndDestroy(), done()), round % 3);
                });
                socket.on('error', () => done());
              }),
          ),
        );
      }
      tt.equal((await bystander.request('control.node_list')).ok, true, `${what}: 160 upgrades reset, the server still serves`);
    }
    await stillServes(tt);
  });

  await t.test('a peer that asks and does not read is not read either until it does; the others are served', { skip: sameOnEveryStore() }, async (tt) => {
    const { peer: node } = await joinNode('n-big');
    const services = Array.from({ length: 300 }, (_, i) => ({ ...svc('n-big', `s${i}`), help_md: 'y'.repeat(3000) }));
    await node.call('control.node_service_upsert', { node_id: 'n-big', services });
    const reader = await session(url, { token: control.adminToken });
    const served = async (): Promise<number> => metricValue(await scrape(control), 'acheron_frames_total', 'role="admin"') ?? 0;
    const before = await served();
    // It stops reading (its socket is paused), then asks for about 100 MiB of replies.
    const transport = (reader.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    transport.pause();
    for (let i = 0; i < 100; i++) reader.send({ channel: 'control', type: 'control.node_get', id: `g${i}`, payload: { node_id: 'n-big' } });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Up to 1 MiB unsent, then the server reads no more of its requests (the 100 replies would hold
    // 100 MiB; before, the server served them all and dropped it at 64 MiB): a few replies in the socket buffers.
    const servedWhileUnread = (await served()) - before;
    tt.ok(servedWhileUnread < 50, `served ${servedWhileUnread} of its 100 requests while it read nothing`);
    transport.resume();
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => reader.next((frame) => frame.id === `g${i}`, 60_000)));
    tt.ok(
      replies.every((frame) => frame.ok === true),
      'reading again, it gets every reply',
    );
    tt.ok(reader.isOpen, 'and stays connected');
    await reader.close();
    await stillServes(tt);
    await node.close();
  });

  await t.test('forbidden: roles and node ownership', async (tt) => {
    const user = await session(url, { token: control.userToken });
    for (const [type, payload] of [
      ['control.node_list', {}],
      ['control.metrics', {}],
      ['control.node_get', { node_id: 'n1' }],
      ['control.node_delete', { node_id: 'n1' }],
      ['control.node_service_upsert', { node_id: 'n1', services: [] }],
      ['control.node_join', { join_token: 'x' }],
    ] as const) {
      expectError(tt, await user.request(type, payload), 'forbidden', undefined, `a user calling ${type}`);
    }
    const joiner = await session(url, { token: await joinToken(control.dataDir) });
    expectError(tt, await joiner.request('control.node_list'), 'forbidden', undefined, 'a joiner listing nodes');
    expectError(tt, await joiner.request('control.node_service_upsert', { node_id: 'n1', services: [] }), 'forbidden', undefined, 'a joiner upserting');

    const n2 = await joinNode('n2');
    await n2.peer.call('control.node_service_upsert', { node_id: 'n2', services: [svc('n2', 'mine')] });
    const before = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n2' });
    const asN1: Array<[string, Record<string, unknown>]> = [
      ['control.node_service_upsert', { node_id: 'n2', services: [svc('n2', 'hijacked')] }],
      ['control.node_lease_refresh', { node_id: 'n2' }],
      ['control.node_service_get', { node_id: 'n2' }],
      ['control.node_get', { node_id: 'n2' }],
    ];
    for (const [type, payload] of asN1) expectError(tt, await n1.peer.request(type, payload), 'forbidden', '/node_id', `node n1 calling ${type} on n2`);
    for (const type of ['control.node_list', 'control.node_delete', 'control.metrics']) {
      expectError(tt, await n1.peer.request(type, type === 'control.node_delete' ? { node_id: 'n2' } : {}), 'forbidden', undefined, `node n1 calling ${type}`);
    }
    const after = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n2' });
    tt.same(after.services, before.services, "n2's catalog is untouched");
    tt.equal(after.lease_expires_at_ms, before.lease_expires_at_ms, "n2's lease is untouched");
    await Promise.all([user.close(), joiner.close(), n2.peer.close()]);
    await stillServes(tt);
  });

  await t.test('not_found: unknown node ids', async (tt) => {
    for (const type of ['control.node_get', 'control.node_service_get', 'control.node_lease_refresh', 'control.node_delete']) {
      expectError(tt, await bystander.request(type, { node_id: 'ghost' }), 'not_found', '/node_id', type);
    }
    expectError(
      tt,
      await bystander.request('control.node_service_upsert', { node_id: 'ghost', services: [] }),
      'not_found',
      '/node_id',
      'an admin upsert for an unknown node',
    );
    tt.notOk(
      (await bystander.call<{ nodes: NodeDoc[] }>('control.node_list')).nodes.some((n) => n.node_id === 'ghost'),
      'nothing was created',
    );
  });

  await t.test('payload_too_large: a user frame over 1 MiB is answered and closed with 1009', { skip: sameOnEveryStore() }, async (tt) => {
    for (const token of [control.userToken, control.adminToken]) {
      const peer = await session(url, { token });
      peer.send({ channel: 'control', type: 'control.node_list', id: 'big', payload: { fill: 'x'.repeat(1 << 20) } });
      const closed = await peer.closed;
      tt.equal(closed.code, 1009, 'closed with 1009');
      const error = peer.frames.find((f) => f.type === 'control.error');
      tt.equal(error?.error?.code, 'payload_too_large', 'told why before the close');
    }
    const justUnder = await session(url, { token: control.adminToken });
    const envelope = JSON.stringify({ channel: 'control', type: 'control.node_list', id: 'u', payload: { fill: '' } });
    const reply = await justUnder.request('control.node_list', { fill: 'x'.repeat((1 << 20) - envelope.length) }, 'u');
    expectError(tt, reply, 'invalid_payload', '/fill', 'a frame of exactly 1 MiB is read (and validated)');
    tt.ok(justUnder.isOpen);
    await justUnder.close();
    await stillServes(tt);
  });

  await t.test('payload_too_large: nodes may send up to 16 MiB; above, ws closes with 1009', async (tt) => {
    const big = { ...svc('n1', 'big'), capabilities: { blob: 'x'.repeat(2 << 20) } };
    // etcd stores a node's record gzipped: only bytes that do not compress go past its request cap.
    const tooBigForEtcd = { ...big, capabilities: { blob: randomBytes(3 << 20).toString('base64') } };
    const before = (await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' })).services.map((s) => s.service_id);
    const reply = await n1.peer.request('control.node_service_upsert', { node_id: 'n1', services: [files ? big : tooBigForEtcd] });
    if (files) {
      tt.same(
        (reply.payload as UpsertReply).service_delta.added.map((e) => e.service_id),
        ['big'],
        'a 2 MiB node frame is accepted',
      );
    } else {
      // One etcd transaction holds a node's catalog: etcd's own request cap (docs/control-protocol.md, Storage).
      expectError(tt, reply, 'payload_too_large', undefined, 'a catalog of 4 MiB of random text on etcd');
      tt.match(reply.error?.message, /--max-request-bytes.*nothing was written/, "the refusal names etcd's cap and says nothing was written");
      tt.same(
        (await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' })).services.map((s) => s.service_id),
        before,
        'the catalog is unchanged',
      );
      const ready = await fetch(`${control.httpUrl}/readyz`);
      tt.equal(ready.status, 200, `the server stays ready: one refused request does not trip the store (${await ready.text()})`);
    }
    const kept = files ? ['big'] : before;
    const node = await nodeSession('n1', n1.secret);
    node.send({
      channel: 'control',
      type: 'control.node_service_upsert',
      id: 'huge',
      payload: { node_id: 'n1', services: [{ ...big, capabilities: { blob: 'x'.repeat(16 << 20) } }] },
    });
    tt.equal((await node.closed).code, 1009, 'over 16 MiB: closed with 1009');
    tt.same(
      (await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' })).services.map((s) => s.service_id),
      kept,
      'the oversize upsert changed nothing',
    );
    tt.ok(n1.peer.isOpen, "the node's other connection is unaffected");
    await n1.peer.call('control.node_service_upsert', { node_id: 'n1', services: [svc('n1', 'c'), svc('n1', 'b', { version: '2' })] });
    await stillServes(tt);
  });

  await t.test('browser auth: bearer subprotocol, checked against Origin', { skip: sameOnEveryStore() }, async (tt) => {
    const opened = await connect(url, { subprotocolToken: control.userToken, origin: control.httpUrl });
    tt.equal(opened.status, 101, 'same host: accepted');
    const peer = opened.peer as RawPeer;
    tt.match(peer.socket.protocol, /^acheron\.bearer\./, 'the server selects the bearer subprotocol');
    tt.equal((await peer.call<{ principal: string }>('control.version', { protocol: 'unified-v2' })).principal, 'user');
    await peer.close();
    const localhost = await connect(url.replace('127.0.0.1', 'localhost'), {
      subprotocolToken: control.adminToken,
      origin: control.httpUrl.replace('127.0.0.1', 'localhost'),
    });
    tt.equal(localhost.status, 101, "the host name the client used, on the debug page's port: accepted");
    await localhost.peer?.close();
    const wsOrigin = await connect(url, { subprotocolToken: control.userToken, origin: url.replace(/^ws/, 'http') });
    tt.equal(wsOrigin.status, 101, 'on the WebSocket port itself: accepted');
    await wsOrigin.peer?.close();
    const httpPort = new URL(control.httpUrl).port;
    const subprotocol = async (origin: string, headers: Record<string, string> = {}): Promise<number> => {
      const opened = await connect(url, { subprotocolToken: control.userToken, origin, headers });
      await opened.peer?.close();
      return opened.status;
    };
    // Host spoofing (DNS rebinding): a page of evil.example, resolved to this host, sends its own name as Host.
    tt.equal(
      await subprotocol(`http://evil.example:${httpPort}`, { host: `evil.example:${url.split(':').at(-1) as string}` }),
      403,
      'a foreign Origin with a matching Host header (DNS rebinding): 403',
    );
    tt.equal(
      await subprotocol(`http://evil.example:${httpPort}`, { host: `evil.example:${httpPort}` }),
      403,
      "a foreign Origin on the debug page's port, Host to match: 403",
    );
    tt.equal(await subprotocol(`https://127.0.0.1:${httpPort}`), 403, 'https on a plain-http listener (wrong scheme): 403');
    tt.equal(await subprotocol(`ws://127.0.0.1:${httpPort}`), 403, 'a ws: Origin (no page has one): 403');
    tt.equal(await subprotocol(`http://127.0.0.1:${Number(httpPort) + 1}`), 403, 'the right host, the wrong port: 403');
    tt.equal(await subprotocol(ALLOWED_ORIGINS[0] as string), 101, '--allowed-origin https://console.example:8443: accepted');
    tt.equal(await subprotocol(ALLOWED_ORIGINS[1] as string), 101, '--allowed-origin http://10.9.8.7 (default port): accepted');
    tt.equal(await subprotocol('http://10.9.8.7:80'), 101, 'the same origin with its default port spelled out: accepted');
    tt.equal(await subprotocol('http://console.example:8443'), 403, "an allowed origin's host with another scheme: 403");
    tt.equal(await subprotocol('https://console.example'), 403, "an allowed origin's host on another port: 403");
    tt.equal(await subprotocol('https://console.example:8443.evil.example'), 403, 'a look-alike of an allowed origin: 403');
    tt.equal(
      (await connect(url, { subprotocolToken: control.userToken, origin: 'http://127.0.0.1:1' })).status,
      403,
      "the same host, a port that is not this server's: 403",
    );
    tt.equal(
      (await connect(url, { subprotocolToken: control.userToken, origin: 'http://127.0.0.1' })).status,
      403,
      'the same host, port 80 (another web server): 403',
    );
    tt.equal((await connect(url, { subprotocolToken: control.userToken, origin: 'http://evil.example' })).status, 403, 'a foreign Origin: 403');
    tt.equal((await connect(url, { subprotocolToken: control.userToken, origin: 'http://127.0.0.1.evil.example' })).status, 403, 'a look-alike Origin: 403');
    tt.equal((await connect(url, { subprotocolToken: control.userToken })).status, 403, 'no Origin: 403');
    tt.equal((await connect(url, { subprotocolToken: control.userToken, origin: 'null' })).status, 403, 'an opaque Origin: 403');
    await stillServes(tt);
  });

  await t.test('refused upgrades count in acheron_errors_total by the code a request would get: 401 unauthorized, 403 forbidden', async (tt) => {
    const [unauthorized, forbidden] = [await errorsCounted(control, 'unauthorized'), await errorsCounted(control, 'forbidden')];
    tt.equal((await connect(url, { token: 'ach_user_not-really' })).status, 401, 'a wrong token: 401');
    tt.equal((await connect(url, { token: `node.n1.${n1.secret}x` })).status, 401, 'a wrong node secret: 401');
    tt.equal((await connect(url, { subprotocolToken: control.userToken, origin: 'http://evil.example' })).status, 403, 'a foreign Origin: 403');
    tt.equal(await errorsCounted(control, 'unauthorized'), unauthorized + 2, 'acheron_errors_total{code="unauthorized"} counted both 401s');
    tt.equal(await errorsCounted(control, 'forbidden'), forbidden + 1, 'acheron_errors_total{code="forbidden"} counted the 403');
  });

  await t.test('HTTP: /livez, /readyz, /metrics (promtool-clean), /metrics.json; the ws port refuses plain HTTP', async (tt) => {
    tt.equal((await fetch(`${control.httpUrl}/livez`)).status, 200);
    const ready = await fetch(`${control.httpUrl}/readyz`);
    tt.equal(ready.status, 200);
    tt.equal(await ready.text(), 'ready\nlistener: ok\nstore: ok\n', 'each check named');
    // Services count by their own state (a degraded one on an online node is degraded, not online).
    const n3 = await joinNode('n3');
    await n3.peer.call('control.node_service_upsert', {
      node_id: 'n3',
      services: [applyDefaults({ service_id: 'sick', kind: 'test', state: 'degraded' }, 'n3'), svc('n3', 'fine')],
    });
    const text = await (await fetch(`${control.httpUrl}/metrics`)).text();
    tt.match(text, /^acheron_nodes\{state="online",server_id="[^"]+"\} \d+$/m);
    tt.match(text, /^acheron_errors_total\{code="invalid_envelope",server_id="[^"]+"\} \d+$/m);
    tt.match(text, /^acheron_services\{state="degraded",server_id="[^"]+"\} 1$/m, 'a degraded service counts as degraded');
    tt.match(text, /^process_cpu_seconds_total\{server_id="[^"]+"\} \d/m, 'process metrics');
    tt.match(text, /^nodejs_eventloop_lag_seconds\{server_id="[^"]+"\} \d/m, 'Node.js metrics');
    tt.match(text, /^acheron_watch_retained_window_seconds\{server_id="[^"]+"\} \d/m, 'times in seconds');
    const { hostname: host, port } = new URL(control.url);
    const serverId = `${hostname()}:${host}:${port}`;
    tt.ok(
      text
        .split('\n')
        .filter((line) => line.startsWith('acheron_'))
        .every((line) => line.includes(`server_id="${serverId}"`)),
      `every sample names the server (by default <hostname>:<listen host>:<port>, ${serverId})`,
    );
    tt.notMatch(text, /^acheron_\w+_ms[ {]/m, 'no metric in milliseconds');
    const lint = await sh('promtool check metrics', { input: text });
    tt.equal(lint.code, 0, `promtool check metrics on the scraped /metrics is clean: ${lint.stdout}${lint.stderr}`);
    await n3.peer.close();
    const json = (await (await fetch(`${control.httpUrl}/metrics.json`)).json()) as Record<string, unknown>;
    tt.ok(Array.isArray(json.acheron_nodes), '/metrics.json parses');
    tt.equal((await fetch(`${control.httpUrl}/nope`)).status, 404);
    tt.equal((await fetch(url.replace('ws:', 'http:'))).status, 426, 'plain HTTP on the ws port: 426');
    for (const [method, page] of [
      ['POST', '/livez'],
      ['DELETE', '/metrics'],
      ['PUT', '/readyz'],
    ]) {
      const refused = await fetch(`${control.httpUrl}${page}`, { method });
      tt.equal(refused.status, 405, `${method} ${page}: 405`);
      tt.equal(refused.headers.get('allow'), 'GET, HEAD', `${method} ${page}: names the methods allowed`);
    }
    const doubled = await fetch(`${control.httpUrl}//livez`);
    tt.equal(await doubled.text(), 'no such page: //livez\n', '//livez is a 404 naming the path asked for');
    const lower = await connect(url, { headers: { authorization: `bearer ${control.adminToken}` } });
    tt.equal(lower.status, 101, 'the auth scheme is case-insensitive (bearer)');
    lower.peer?.socket.terminate();
  });

  await t.test(
    '--ping-interval-ms: a peer that stops answering pings is dropped after two missed pongs; one that answers stays',
    { skip: sameOnEveryStore() },
    async (tt) => {
      const fast = await startControl(tt, { args: ['--ping-interval-ms', '200'] });
      const silent = await session(fast.url, { token: fast.adminToken, autoPong: false });
      const answering = await session(fast.url, { token: fast.adminToken });
      const started = Date.now();
      await silent.closed;
      const droppedAfterMs = Date.now() - started;
      tt.ok(droppedAfterMs < 10_000, `dropped after ${droppedAfterMs} ms, long before the default 10 s interval would even ping twice`);
      tt.ok(answering.isOpen, 'the peer that answers pings is still connected');
      tt.same((await answering.call('control.version', { protocol: 'unified-v2' })).protocol, 'unified-v2', 'and served');
      await answering.close();
      const bad = await acheron(['control', '--ping-interval-ms', '0', '--data-dir', fast.dataDir]);
      tt.equal(bad.code, 2, 'a ping interval below 50 ms is bad usage');
      tt.match(bad.stderr, /--ping-interval-ms 0: expected a whole number from 50 to /);
    },
  );

  await t.test('users read the catalog through a project session: only its nodes, only when read allows', async (tt) => {
    await bystander.call('control.project_upsert', { project_id: 'reads', mounts: [{ node_id: 'n1' }], access_policy: { actions: { read: 'open' } } });
    const user = await session(url, { token: control.userToken });
    expectError(tt, await user.request('control.node_list'), 'forbidden', undefined, 'no session yet');
    await user.call('control.session_attach', { project_id: 'reads' });
    const { nodes } = await user.call<{ nodes: NodeDoc[] }>('control.node_list');
    tt.same(
      nodes.map((n) => n.node_id),
      ['n1'],
      'only the nodes the project mounts',
    );
    tt.equal((await user.call<NodeDoc>('control.node_get', { node_id: 'n1' })).node_id, 'n1');
    expectError(tt, await user.request('control.node_get', { node_id: 'n2' }), 'not_found', '/node_id', 'a node outside the project is absent');
    await bystander.call('control.project_upsert', { project_id: 'reads', access_policy: { actions: { read: 'deny' } } });
    expectError(tt, await user.request('control.node_list'), 'forbidden', undefined, 'read denied by the project');
    await user.close();
  });

  await t.test("a user with a project's admin action changes its policy, not its nodes; a session without read is not told them", async (tt) => {
    await bystander.call('control.project_upsert', {
      project_id: 'delegated',
      mounts: [{ node_id: 'n1' }],
      access_policy: { actions: { read: 'deny', admin: 'open' } },
    });
    const user = await session(url, { token: control.userToken });
    const attached = await user.call<{ nodes: string[]; actions: Record<string, string> }>('control.session_attach', { project_id: 'delegated' });
    tt.same(attached.nodes, [], "read denied: the project's nodes are not in the reply (they were)");
    const widened = await user.request('control.project_upsert', {
      project_id: 'delegated',
      mounts: [{ node_id: 'n1' }, { node_id: 'n2' }],
      access_policy: { actions: { read: 'open', admin: 'open' } },
    });
    expectError(tt, widened, 'forbidden', '/payload/mounts', 'adding a node: admins only (a project admin reached every node of the fleet)');
    tt.match(widened, { error: { message: 'only admins add nodes to a project: n2 not in project delegated' } });
    const policy = await user.request('control.project_upsert', {
      project_id: 'delegated',
      mounts: [{ node_id: 'n1' }],
      access_policy: { actions: { read: 'open', admin: 'open' } },
    });
    tt.equal(policy.ok, true, 'its policy, on the same nodes: allowed');
    await user.close();
  });

  await t.test('project ids cannot be probed: to a user without rights, a project answers as an unknown id does; admins get precise answers', async (tt) => {
    const SECRET = 'sealed-project-secret';
    await bystander.call('control.project_upsert', { project_id: 'sealed', token: SECRET, mounts: [{ node_id: 'n1' }] });
    await bystander.call('control.project_upsert', { project_id: 'elsewhere', mounts: [{ node_id: 'n1' }], access_policy: { actions: { read: 'open' } } });
    /** The error as it reads with the project id taken out: what must not tell a known id from an unknown one. */
    const answer = (frame: Frame, projectId: string): unknown =>
      frame.ok ? 'ok' : { code: frame.error?.code, field: frame.error?.field, message: frame.error?.message?.replaceAll(projectId, 'ID') };
    const sameForBoth = async (tt2: Test, what: string, ask: (projectId: string) => Promise<Frame>): Promise<void> => {
      const known = answer(await ask('sealed'), 'sealed');
      tt2.not(known, 'ok', `${what}: refused`);
      tt2.same(answer(await ask('no-such-project'), 'no-such-project'), known, `${what}: the same answer for an unknown id (${JSON.stringify(known)})`);
    };
    const PROJECT_OPS = ['control.project_get', 'control.project_delete', 'control.project_token_rotate'];
    const user = await session(url, { token: control.userToken });
    for (const type of PROJECT_OPS) await sameForBoth(tt, `${type} without a session`, (id) => user.request(type, { project_id: id }));
    await sameForBoth(tt, 'project_upsert without a session', (id) => user.request('control.project_upsert', { project_id: id, name: 'mine now' }));
    await sameForBoth(tt, 'session_attach without the project token', (id) => user.request('control.session_attach', { project_id: id }));
    await sameForBoth(tt, 'session_attach with a wrong project token', (id) =>
      user.request('control.session_attach', { project_id: id, project_token: 'ach_project_guess' }),
    );
    expectError(
      tt,
      await user.request('control.session_attach', { project_id: 'sealed' }),
      'not_found',
      '/project_id',
      'a project that grants nothing without its token',
    );
    await user.call('control.session_attach', { project_id: 'elsewhere' });
    for (const type of PROJECT_OPS) await sameForBoth(tt, `${type} from a session on another project`, (id) => user.request(type, { project_id: id }));
    await sameForBoth(tt, 'project_upsert from a session on another project', (id) =>
      user.request('control.project_upsert', { project_id: id, name: 'mine now' }),
    );
    tt.match(
      (await user.call('control.project_get', { project_id: 'elsewhere' })) as object,
      { project_id: 'elsewhere' },
      "its own session's project: read allows",
    );
    expectError(
      tt,
      await user.request('control.project_delete', { project_id: 'elsewhere' }),
      'forbidden',
      undefined,
      "its own project's admin action: the reason",
    );

    const attached = await user.call<{ has_project_token: boolean }>('control.session_attach', { project_id: 'sealed', project_token: SECRET });
    tt.equal(attached.has_project_token, true, 'with the right token, the project attaches');
    tt.match(await user.call('control.project_get', { project_id: 'sealed' }), { project_id: 'sealed', has_token: true }, 'and read (token mode) gets it');

    expectError(tt, await bystander.request('control.project_get', { project_id: 'no-such-project' }), 'not_found', '/project_id', 'admin: an unknown id');
    tt.match(await bystander.request('control.session_attach', { project_id: 'sealed', project_token: 'ach_project_guess' }), {
      error: { code: 'unauthorized', message: 'wrong project token for sealed' },
    });
    tt.match(await bystander.request('control.session_attach', { project_id: 'no-such-project' }), {
      error: { code: 'not_found', message: 'no project no-such-project' },
    });
    for (const id of ['sealed', 'elsewhere']) await bystander.call('control.project_delete', { project_id: id });
    await user.close();
  });

  await t.test('a watch needs read as well as observe: its events carry what node_get shows', async (tt) => {
    const node = await joinNode('n-observe');
    let version = 0;
    /** A new version of the node's one service; the seq of its event. */
    const publish = async (): Promise<number> => {
      await node.peer.call('control.node_service_upsert', { node_id: 'n-observe', services: [svc('n-observe', 'svc', { version: String(++version) })] });
      return (await bystander.call<{ seq: number }>('control.node_get', { node_id: 'n-observe' })).seq;
    };
    await publish();
    const policy = (read: string): Promise<unknown> =>
      bystander.call('control.project_upsert', {
        project_id: 'observe-only',
        mounts: [{ node_id: 'n-observe' }],
        access_policy: { actions: { observe: 'open', read } },
      });
    await policy('deny');
    const user = await session(url, { token: control.userToken });
    tt.match(await user.call('control.session_attach', { project_id: 'observe-only' }), { actions: { observe: 'allowed', read: /read is denied/ } });
    expectError(tt, await user.request('control.node_get', { node_id: 'n-observe' }), 'forbidden', undefined, 'node_get without read');
    // The subscription a WorldFS mount keeps passes the role gates (user watches are off here), not the project's.
    const watch = { replay_limit: 25, purpose: 'worldfs' };
    const refused = await user.request('control.node_service_watch', watch);
    expectError(tt, refused, 'forbidden', undefined, 'a watch without read (it replayed the full descriptors)');
    tt.match(refused.error?.message, /^project observe-only: read is denied$/, 'with the reason');

    await policy('open');
    const { watch_id: watchId } = await user.call<{ watch_id: string }>('control.node_service_watch', { ...watch, replay_limit: 0 });
    const ended = user.next((f) => f.type === 'control.error' && (f.error as { watch_id?: string } | undefined)?.watch_id === watchId);
    await policy('deny');
    tt.match((await ended).error, { code: 'resync_required', message: /^project observe-only changed/ }, 'a running watch ends once read is denied');
    expectError(
      tt,
      await user.request('control.node_service_watch', { ...watch, replay_limit: 0 }),
      'forbidden',
      undefined,
      'and cannot start again meanwhile',
    );
    const whileDenied = await publish();
    await policy('open');
    const { watch_id: again } = await user.call<{ watch_id: string }>('control.node_service_watch', { ...watch, replay_limit: 0 });
    const nextEvent = user.next((f) => f.type === 'control.node_service_event' && (f.payload as { watch_id?: string }).watch_id === again);
    const afterwards = await publish();
    tt.equal(
      ((await nextEvent).payload as { seq: number }).seq,
      afterwards,
      `read open again: a new watch has the next event, seq ${afterwards} (not ${whileDenied}, made while read was denied)`,
    );
    await bystander.call('control.project_delete', { project_id: 'observe-only' });
    await Promise.all([user.close(), node.peer.close()]);
  });

  await t.test("a deleted project ends its sessions' watches, naming it; their relays say it no longer exists, also once it is made again", async (tt) => {
    const node = await joinNode('n-doomed');
    const doomed = { project_id: 'doomed', mounts: [{ node_id: 'n-doomed' }], access_policy: { actions: { read: 'open', observe: 'open', invoke: 'open' } } };
    await bystander.call('control.project_upsert', doomed);
    await bystander.call('control.project_upsert', { ...doomed, project_id: 'spared' });
    const attachedTo = async (projectId: string): Promise<{ peer: RawPeer; watchId: string }> => {
      const peer = await session(url, { token: control.userToken });
      await peer.call('control.session_attach', { project_id: projectId });
      const { watch_id: watchId } = await peer.call<{ watch_id: string }>('control.node_service_watch', { replay_limit: 0, purpose: 'worldfs' });
      return { peer, watchId };
    };
    const [user, other] = [await attachedTo('doomed'), await attachedTo('spared')];
    const ended = user.peer.next((f) => f.type === 'control.error' && f.id === null);
    await bystander.call('control.project_delete', { project_id: 'doomed' });
    tt.match(
      (await ended).error,
      { code: 'not_found', message: 'project doomed was deleted: the watch has ended', watch_id: user.watchId },
      'the watch ends, naming the project',
    );
    tt.match(
      await user.peer.call('control.relay', { node_id: 'n-doomed', request_id: 'after-delete', op: 'stat', path: '/services/x/status.json' }),
      { ok: false, errno: 'ENOENT', message: 'project doomed no longer exists' },
      'a relay says the project is gone (it said the node is not in it)',
    );
    expectError(tt, await user.peer.request('control.session_attach', { project_id: 'doomed' }), 'not_found', '/project_id', 'attaching again');
    // Made again under its id: another project, which the session of the old one must attach to.
    await bystander.call('control.project_upsert', doomed);
    expectError(
      tt,
      await user.peer.request('control.project_get', { project_id: 'doomed' }),
      'not_found',
      '/project_id',
      'made again: not the project of the session',
    );
    tt.match(
      await user.peer.call('control.relay', { node_id: 'n-doomed', request_id: 'after-again', op: 'stat', path: '/services/x/status.json' }),
      { ok: false, errno: 'ENOENT', message: 'project doomed no longer exists' },
      'made again: its relays still say it no longer exists',
    );
    expectError(
      tt,
      await user.peer.request('control.node_service_watch', { replay_limit: 0, purpose: 'worldfs' }),
      'not_found',
      '/project_id',
      'nor does it watch',
    );
    await user.peer.call('control.session_attach', { project_id: 'doomed' });
    tt.match(await user.peer.call('control.project_get', { project_id: 'doomed' }), { project_id: 'doomed' }, 'attached again: the new one');
    await bystander.call('control.project_delete', { project_id: 'doomed' });
    // The other project's watch goes on: an event of the node reaches it.
    const event = other.peer.next((f) => f.type === 'control.node_service_event');
    await node.peer.call('control.node_service_upsert', { node_id: 'n-doomed', services: [svc('n-doomed', 'svc')] });
    tt.match((await event).payload, { watch_id: other.watchId, node_id: 'n-doomed' }, "another project's watch is not ended");
    await bystander.call('control.project_delete', { project_id: 'spared' });
    await Promise.all([user.peer.close(), other.peer.close(), node.peer.close()]);
  });

  await t.test('kill -9 and restart: catalog, credentials and tokens intact', async (tt) => {
    const before = await bystander.call<NodeDoc>('control.node_get', { node_id: 'n1' });
    await control.kill9();
    const restarted = await control.restart();
    tt.equal(restarted.adminToken, control.adminToken, 'the admin token survived');
    const admin = await session(restarted.url, { token: restarted.adminToken });
    const after = await admin.call<NodeDoc>('control.node_get', { node_id: 'n1' });
    tt.same(after.services, before.services, 'the catalog survived exactly');
    tt.same(after.services.map(serviceHash), before.services.map(serviceHash));
    tt.equal(after.joined_at_ms, before.joined_at_ms);
    tt.equal(after.updated_ms, before.updated_ms);
    tt.equal(after.state, 'online', 'a fresh grace period after the restart');
    const node = await session(restarted.url, { token: `node.n1.${n1.secret}` });
    const same = await node.call<UpsertReply>('control.node_service_upsert', { node_id: 'n1', services: before.services });
    tt.equal(same.service_delta.changed, false, "the node's secret still works and its catalog is unchanged");
    await Promise.all([node.close(), admin.close()]);
  });
}
