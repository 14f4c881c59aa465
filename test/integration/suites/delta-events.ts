// SPEC §6 Events, both shapes, one suite for every store: run by delta-events.test.ts on the file
// store (one server) and by delta-events-etcd.test.ts on etcd (changes through one server, watches
// on another). A watch without `include` gets the full shape of the earlier protocol (the node's
// whole catalog), one with `include: "delta"` lean events (node meta, service_delta, the
// descriptors of the added and updated services). Replay from the ring, replay after a kill -9
// restart and since_seq work in both; a delta watcher that applies what it gets to what it had ends
// with exactly the catalog that node_get shows, whatever the sequence of upserts and deletes
// (fast-check).
import type { Test } from 'tap';
import fc from 'fast-check';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { CatalogDeltaPayload, CatalogEventPayload, ServiceDescriptor } from '../../../src/protocol/types.gen.js';
import { session, type Frame, type RawPeer, type RunningControl } from '../../helpers/control.js';
import { waitFor } from '../../helpers/process.js';

const EVENT = 'control.node_service_event';
type Full = CatalogEventPayload & { watch_id: string; replay: boolean };
type Delta = CatalogDeltaPayload & { watch_id: string; replay: boolean };

const service = (nodeId: string, id: string, version: string): ServiceDescriptor =>
  applyDefaults({ service_id: id, kind: 'test', version, capabilities: { note: `${id}@${version}` } }, nodeId);

/** Everything a watch received: its ack and its event payloads. */
async function watch<T>(peer: RawPeer, request: Record<string, unknown>): Promise<{ ack: Record<string, unknown>; events: () => T[] }> {
  const ack = await peer.call<{ watch_id: string }>('control.node_service_watch', request);
  await peer.next((f) => f.type === 'control.node_service_watch_synced' && (f.payload as { watch_id: string }).watch_id === ack.watch_id);
  const events = (): T[] =>
    peer.frames.filter((f: Frame) => f.type === EVENT && (f.payload as { watch_id: string }).watch_id === ack.watch_id).map((f) => f.payload as T);
  return { ack, events };
}

/** A node's catalog after each event, from delta events only: service id → descriptor. */
function applyDeltas(events: readonly CatalogDeltaPayload[]): Map<string, Map<string, ServiceDescriptor>> {
  const nodes = new Map<string, Map<string, ServiceDescriptor>>();
  for (const event of events) {
    if (event.kind === 'delete') {
      nodes.delete(event.node_id);
      continue;
    }
    const services = nodes.get(event.node_id) ?? new Map<string, ServiceDescriptor>();
    nodes.set(event.node_id, services);
    const changed = new Map(event.changed_services.map((s) => [s.service_id, s]));
    for (const entry of [...event.service_delta.added, ...event.service_delta.updated])
      services.set(entry.service_id, changed.get(entry.service_id) as ServiceDescriptor);
    for (const entry of event.service_delta.removed) services.delete(entry.service_id);
  }
  return nodes;
}

const strip = <T extends { watch_id: string; replay: boolean }>(e: T): Omit<T, 'watch_id' | 'replay'> => {
  const { watch_id: _w, replay: _r, ...rest } = e;
  return rest;
};

async function provision(admin: RawPeer, nodeId: string): Promise<void> {
  await admin.call('control.node_join', { join_token: 'admin-provisioned', node_id: nodeId });
}

const upsert = (admin: RawPeer, nodeId: string, versions: Record<string, string>): Promise<unknown> =>
  admin.call('control.node_service_upsert', { node_id: nodeId, services: Object.entries(versions).map(([id, version]) => service(nodeId, id, version)) });

export interface EventsEnv {
  /** A fresh, empty catalog: the server changes go through, and the one watches use (the same one on the file store). */
  servers(t: Test): Promise<{ writer: RunningControl; reader: RunningControl }>;
  /** Starts a server killed with kill -9 again, on its store. */
  restart(t: Test, control: RunningControl): Promise<RunningControl>;
}

export async function deltaEventsSuite(t: Test, env: EventsEnv): Promise<void> {
  /** Two admin sessions: one to change the catalog, one to watch it. */
  async function server(tt: Test): Promise<{ admin: RawPeer; watcher: RawPeer }> {
    const { writer, reader } = await env.servers(tt);
    const [admin, watcher] = await Promise.all([session(writer.url, { token: writer.adminToken }), session(reader.url, { token: reader.adminToken })]);
    tt.teardown(() => {
      admin.socket.terminate();
      watcher.socket.terminate();
    });
    return { admin, watcher };
  }

  await t.test('one event, two shapes: the delta one carries what changed, the full one the whole catalog', async (tt) => {
    const { admin, watcher } = await server(tt);
    const full = await watch<Full>(watcher, { replay_limit: 0 });
    const delta = await watch<Delta>(watcher, { replay_limit: 0, include: 'delta' });
    tt.equal(delta.ack.include, 'delta', 'the ack says which shape');
    tt.notOk('include' in full.ack);

    await provision(admin, 'n1');
    await upsert(admin, 'n1', { a: '1', b: '1', c: '1' });
    await upsert(admin, 'n1', { a: '2', c: '1', d: '1' });
    await admin.call('control.node_delete', { node_id: 'n1' });
    await waitFor(() => delta.events().length === 4 && full.events().length === 4, { what: 'four events in both shapes' });

    const fulls = full.events();
    const deltas = delta.events();
    tt.same(
      deltas.map((e) => [e.seq, e.kind]),
      fulls.map((e) => [e.seq, e.kind]),
      'the same events, in the same order',
    );
    for (const [index, d] of deltas.entries()) {
      const f = fulls[index] as Full;
      const { services, ...fullRest } = strip(f);
      const { changed_services: changed, ...deltaRest } = strip(d);
      tt.same(deltaRest, fullRest, `seq ${d.seq}: node meta, seq, kind, time and service_delta agree`);
      tt.notOk('services' in d, `seq ${d.seq}: no whole catalog in the delta shape`);
      const wanted = [...d.service_delta.added, ...d.service_delta.updated].map((e) => e.service_id);
      tt.same(
        changed,
        wanted.map((id) => services.find((s) => s.service_id === id)),
        `seq ${d.seq}: the descriptors of the added, then the updated services`,
      );
    }
    const third = deltas[2] as Delta;
    tt.same(
      third.changed_services.map((s) => s.service_id),
      ['d', 'a'],
      'an upsert that adds d, updates a and removes b sends d and a',
    );
    tt.same(
      third.service_delta.removed.map((e) => [e.service_id, e.version]),
      [['b', '1']],
      'and b by id, with its version and hash',
    );
    tt.ok(Buffer.byteLength(JSON.stringify(third)) < Buffer.byteLength(JSON.stringify(fulls[2])), 'smaller');
  });

  await t.test('replay from the ring, since_seq, and both after a kill -9 restart, in both shapes', async (tt) => {
    const { writer, reader } = await env.servers(tt);
    let control: RunningControl = reader;
    const admin = await session(writer.url, { token: writer.adminToken });
    for (const nodeId of ['n1', 'n2']) await provision(admin, nodeId);
    for (let v = 1; v <= 4; v++) {
      await upsert(admin, 'n1', { a: String(v), keep: '1' });
      await upsert(admin, 'n2', { x: String(v) });
    }
    const reference = async (c: RunningControl): Promise<{ full: Full[]; delta: Delta[]; peer: RawPeer }> => {
      const peer = await session(c.url, { token: c.adminToken });
      const full = await watch<Full>(peer, { since_seq: 0 });
      const delta = await watch<Delta>(peer, { since_seq: 0, include: 'delta' });
      return { full: full.events().map(strip) as Full[], delta: delta.events().map(strip) as Delta[], peer };
    };
    const before = await reference(control);
    tt.equal(before.full.length, 10, 'two joins and eight upserts');
    tt.same(
      before.delta.map((e) => e.seq),
      before.full.map((e) => e.seq),
    );
    tt.same(applyDeltas(before.delta).get('n1')?.get('a')?.version, '4', 'the deltas add up');

    const check = async (c: RunningControl, label: string): Promise<void> => {
      const peer = await session(c.url, { token: c.adminToken });
      const since = before.full[5]?.seq as number;
      const fullSince = await watch<Full>(peer, { since_seq: since });
      const deltaSince = await watch<Delta>(peer, { since_seq: since, include: 'delta' });
      tt.same(
        fullSince.events().map(strip),
        before.full.filter((e) => e.seq > since),
        `${label}: since_seq, full shape`,
      );
      tt.same(
        deltaSince.events().map(strip),
        before.delta.filter((e) => e.seq > since),
        `${label}: since_seq, delta shape`,
      );
      const fullLast = await watch<Full>(peer, { node_id: 'n1', replay_limit: 2 });
      const deltaLast = await watch<Delta>(peer, { node_id: 'n1', replay_limit: 2, include: 'delta' });
      tt.same(fullLast.events().map(strip), before.full.filter((e) => e.node_id === 'n1').slice(-2), `${label}: replay_limit, full shape`);
      tt.same(deltaLast.events().map(strip), before.delta.filter((e) => e.node_id === 'n1').slice(-2), `${label}: replay_limit, delta shape`);
      tt.ok(
        deltaLast.events().every((e) => e.replay === true),
        `${label}: replayed events say so`,
      );
      await peer.close();
    };
    await check(control, 'from the ring');
    before.peer.socket.terminate();
    await admin.close();
    const exit = await control.kill9();
    tt.equal(exit.signal, 'SIGKILL');
    control = await env.restart(tt, control);
    await check(control, 'after kill -9, from the store');
    const after = await reference(control);
    tt.same(after.delta, before.delta, 'the whole history in the delta shape, as before the restart');
    tt.same(after.full, before.full, 'and in the full shape');
    after.peer.socket.terminate();
  });

  await t.test('property: a delta watcher that applies each event ends with the catalog node_get shows', async (tt) => {
    const { admin, watcher } = await server(tt);
    const live = await watch<Delta>(watcher, { replay_limit: 0, include: 'delta' });
    const step = fc.oneof(
      fc.record({
        op: fc.constant('upsert' as const),
        node: fc.nat(2),
        services: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.constantFrom('1', '2', '3'), { maxKeys: 4 }),
      }),
      fc.record({ op: fc.constant('delete' as const), node: fc.nat(2) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        run++;
        const ids = [0, 1, 2].map((i) => `r${run}-n${i}`);
        const present = new Set<string>();
        for (const s of steps) {
          const nodeId = ids[s.node] as string;
          if (s.op === 'delete') {
            if (!present.has(nodeId)) continue;
            await admin.call('control.node_delete', { node_id: nodeId });
            present.delete(nodeId);
          } else {
            if (!present.has(nodeId)) await provision(admin, nodeId);
            present.add(nodeId);
            await upsert(admin, nodeId, s.services);
          }
        }
        // The writer's head (on etcd possibly a revision of no event: an unchanged upsert's lease); a
        // watch from it on the reader is answered once the reader is there, and so is the live watch.
        const head = (await admin.call<{ head_seq: number }>('control.node_service_watch', { replay_limit: 0 })).head_seq;
        const { watch_id: reached } = await watcher.call<{ watch_id: string }>('control.node_service_watch', { since_seq: head, replay_limit: 0 });
        await watcher.call('control.node_service_unwatch', { watch_id: reached });
        const mirrored = applyDeltas(live.events());
        for (const nodeId of ids) {
          const want = present.has(nodeId)
            ? await admin.call<{ services: ServiceDescriptor[] }>('control.node_get', { node_id: nodeId, view: 'stored' })
            : undefined;
          const got = mirrored.get(nodeId);
          if (want === undefined ? got !== undefined : !got || JSON.stringify([...got.values()].sort(byId)) !== JSON.stringify([...want.services].sort(byId)))
            return false;
        }
        return true;
      }),
      { numRuns: 12 },
    );
    tt.pass('every sequence ends with the same catalog');
  });
}

function byId(a: { service_id: string }, b: { service_id: string }): number {
  return a.service_id < b.service_id ? -1 : a.service_id > b.service_id ? 1 : 0;
}
