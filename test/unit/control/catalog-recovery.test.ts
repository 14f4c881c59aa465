// SPEC §6 Storage: the event log is the write-ahead log and the catalog journal a snapshot of it.
// A server stopped without closing (kill -9) is rebuilt from the snapshot plus the events after
// it; what is not an event (a join's secret, metadata-only changes) was written to the journal
// before the reply. Rotated files are archived only after a checkpoint covers them.
import t, { type Test } from 'tap';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { tempDir } from '../../helpers/node.js';
import { noSpace, patchFileHandle } from '../../helpers/file-faults.js';
import { waitFor } from '../../helpers/process.js';
import { FileCatalog as Catalog } from '../../../src/control/file-catalog.js';
import { eventHead } from '../../../src/control/catalog-event.js';
import { EventLog } from '../../../src/control/event-log.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';

const log = pino({ level: 'silent' });
const service = (id: string, version: string): ServiceDescriptor => applyDefaults({ service_id: id, kind: 'k', version }, 'n');

async function open(dir: string, eventLog: { rotateMaxBytes?: number } = {}, offlineGraceMs = 15_000): Promise<{ events: EventLog; catalog: Catalog }> {
  const events = await EventLog.open({ dir, log, ...eventLog });
  const catalog = await Catalog.open(join(dir, 'catalog.journal'), events, { leaseTtlMs: 60_000, offlineGraceMs, log });
  return { events, catalog };
}

/** A store a test left open to act out a crash: closed once the test has looked, so no file stays open. */
async function shut({ events, catalog }: { events: EventLog; catalog: Catalog }): Promise<void> {
  await events.close();
  await catalog.close();
}

const upsert = (catalog: Catalog, payload: { node_id: string; labels?: Record<string, string>; services: ServiceDescriptor[] }) =>
  catalog.upsert(
    payload,
    payload.services.map((s) => ({ service: s, json: Buffer.from(JSON.stringify(s)) })),
  );

t.test('not closed (kill -9): the snapshot plus the events after it, secrets and metadata-only changes included', async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  const { node_secret: secret } = await first.catalog.join({ join_token: 'unused', node_id: 'n' });
  await upsert(first.catalog, { node_id: 'n', services: [service('a', '1'), service('b', '1')] });
  const snapshotSeq = await first.catalog.checkpoint();
  await upsert(first.catalog, { node_id: 'n', services: [service('a', '2'), service('c', '1')] });
  const { delta } = await upsert(first.catalog, { node_id: 'n', labels: { zone: 'z' }, services: [service('a', '2'), service('c', '1')] });
  t.equal(delta.changed, false, 'a metadata-only change is no event');
  await first.catalog.join({ join_token: 'unused', node_id: 'm' });
  await first.catalog.delete('m');
  t.ok(first.events.headSeq > snapshotSeq + 2, 'events after the snapshot');

  const second = await open(dir);
  const node = second.catalog.get('n');
  t.same(
    node.services.map((s) => [s.service_id, s.version]),
    [
      ['a', '2'],
      ['c', '1'],
    ],
    'services from the events after the snapshot',
  );
  t.same(node.labels, { zone: 'z' }, 'the metadata-only change');
  t.ok(await second.catalog.verifyNode('n', secret), 'the secret');
  t.same(
    second.catalog.list().map((n) => [n.node_id, n.service_count]),
    [['n', 2]],
    'the deleted node stays deleted',
  );
  t.equal(second.events.headSeq, first.events.headSeq, 'head seq');

  // Each descriptor is held once: the events read back from disk use the catalog's bytes.
  const entries = new Map((second.catalog.storedServices('n') ?? []).map((e) => [e.service_id, e.json]));
  const last = second.events
    .retained()
    .filter((e) => e.node_id === 'n')
    .at(-1);
  t.ok(
    last && last.node.services.length > 0 && last.node.services.every((s) => s.json === entries.get(s.service_id)),
    "the last event of n shares the catalog's descriptor bytes",
  );

  // Replayed nodes are written at the next checkpoint: a third start needs no events at all.
  await second.catalog.close();
  await second.events.close();
  await writeFile(join(dir, 'node-service-events.ndjson'), JSON.stringify({ type: 'head', seq: second.events.headSeq }) + '\n');
  const third = await open(dir);
  t.same(
    third.catalog.get('n').services.map((s) => s.version),
    ['2', '1'],
    'the closed catalog had it all in its journal',
  );
  await third.catalog.close();
  await third.events.close();
  await shut(first);
});

t.test('rotation: the current file is swapped at once; a checkpoint comes before each archive', async (t) => {
  const dir = await tempDir(t);
  const { events, catalog } = await open(dir, { rotateMaxBytes: 1 });
  const order: string[] = [];
  const archived = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n.endsWith('.ndjson.gz'));
  events.setCheckpoint(async () => {
    order.push(`checkpoint with ${(await archived()).length} archives`);
    return catalog.checkpoint();
  });
  await catalog.join({ join_token: 'unused', node_id: 'n' });
  for (let v = 1; v <= 3; v++) await upsert(catalog, { node_id: 'n', services: [service('a', String(v))] });
  await events.close();
  // A checkpoint that already covers the next rotated file (more events came meanwhile) is not repeated.
  t.equal(order[0], 'checkpoint with 0 archives', 'no archive before the first checkpoint');
  t.ok(order.length >= 1 && order.length <= 4 && new Set(order).size === order.length, `one checkpoint per archive at most (${order.join('; ')})`);
  const names = await readdir(dir);
  t.equal(names.filter((n) => /^node-service-events-\d+\.ndjson$/.test(n)).length, 0, 'no rotated file left');
  t.equal((await archived()).length, 4, 'four archives');
  await catalog.close();
});

t.test('a file rotated but not archived before a crash: replayed, then archived after a checkpoint', async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  await first.catalog.join({ join_token: 'unused', node_id: 'n' });
  await upsert(first.catalog, { node_id: 'n', services: [service('a', '1')] });
  // What a rotation leaves when the server dies before archiving: the events in a rotated file,
  // the current file starting after them, the journal older than both.
  const head = first.events.headSeq;
  const body = Buffer.from(
    `"node_id":"n","node_name":"n","platform":{},"labels":{},"services":[${JSON.stringify(service('a', '9'))}],"service_delta":{"changed":true,"timestamp_ms":1,"added":[],"updated":[],"removed":[]}}`,
  );
  await writeFile(
    join(dir, `node-service-events-${Date.now()}.ndjson`),
    Buffer.concat([Buffer.from('{'), eventHead(head + 1, 'upsert', 2), body, Buffer.from('\n')]),
  );
  await writeFile(join(dir, 'node-service-events.ndjson'), JSON.stringify({ type: 'head', seq: head + 1 }) + '\n');

  const second = await open(dir);
  t.same(
    second.catalog.get('n').services.map((s) => s.version),
    ['9'],
    "the rotated file's event replayed",
  );
  t.equal(second.events.headSeq, head + 1, 'head seq from it');
  t.equal(second.events.retained().at(-1)?.seq, head + 1, 'and in the ring');
  await second.events.close();
  const names = await readdir(dir);
  t.equal(names.filter((n) => /^node-service-events-\d+\.ndjson$/.test(n)).length, 0, 'archived once the catalog checkpointed');
  t.equal(names.filter((n) => n.endsWith('.ndjson.gz')).length, 1, 'one archive');
  await second.catalog.close();
  await shut(first);
});

t.test(
  'after a restart every online node has a fresh grace period, longer by the time since it was last seen: one that does not come back turns offline then, not at its lease end',
  async (t) => {
    const dir = await tempDir(t);
    const first = await open(dir);
    await first.catalog.join({ join_token: 'unused', node_id: 'n' });
    t.ok(first.catalog.get('n').lease_expires_at_ms > Date.now() + 50_000, 'a 60 s lease before the restart');
    // A clean stop, then the server is down for longer than the grace: the node's reconnect backoff grows meanwhile.
    await shut(first);
    const stoppedBy = Date.now();
    await sleep(400);
    const openedFrom = Date.now();
    const second = await open(dir, {}, 300);
    const openedBy = Date.now();
    const { lease_expires_at_ms: expires, last_seen_ms: lastSeen } = second.catalog.get('n');
    t.ok(openedFrom - lastSeen >= 400, `last seen before the restart (${openedFrom - lastSeen} ms)`);
    t.ok(
      expires >= openedFrom + 300 + (openedFrom - stoppedBy) && expires <= openedBy + 300 + (openedBy - lastSeen),
      `the lease ends the grace period plus the time since the node was last seen, no server up since, after the restart (${expires - openedFrom} ms)`,
    );
    await sleep(openedBy + 400 - Date.now());
    t.same(await second.catalog.expireLeases(), [], 'still online past --offline-grace-ms after the restart: its next reconnect attempt may come later');
    await sleep(expires + 50 - Date.now());
    t.same(await second.catalog.expireLeases(), ['n'], 'offline once its grace has passed');
    t.equal(second.catalog.get('n').state, 'offline');
    await shut(second);
  },
);

t.test('a server that crash-loops: each start adds only the time no server was up, so a gone node still turns offline', async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  await first.catalog.join({ join_token: 'unused', node_id: 'n' });
  const lastSeen = first.catalog.get('n').last_seen_ms;
  // The node is gone; the server crashes (left open: no clean stop) and starts again, twice. Its
  // first run's alive time is written up to a batch after its start: 2 s leave a loaded host room.
  await sleep(2_000);
  const secondFrom = Date.now();
  const second = await open(dir, {}, 300);
  t.ok(second.catalog.get('n').lease_expires_at_ms - secondFrom > 300 + 1_000, 'the first restart: up to the time since the node was last seen');
  const aliveSince = async (ms: number): Promise<boolean> =>
    (await readFile(join(dir, 'last-seen.journal'), 'utf8'))
      .split('\n')
      .some((line) => line.startsWith('{"key":"server/alive"') && (JSON.parse(line) as { value: number }).value >= ms);
  await waitFor(() => aliveSince(secondFrom), { timeoutMs: 5_000, what: 'the second run records that it is up' });
  await sleep(200);
  const thirdFrom = Date.now();
  const third = await open(dir, {}, 300);
  const thirdBy = Date.now();
  const expires = third.catalog.get('n').lease_expires_at_ms;
  t.ok(thirdFrom - lastSeen > 2_100, `the node was last seen ${thirdFrom - lastSeen} ms ago`);
  t.ok(
    expires <= thirdBy + 300 + (thirdBy - secondFrom),
    `the grace adds only the time since the previous run was last up, not since the node was seen (${expires - thirdFrom} ms)`,
  );
  await sleep(expires + 50 - Date.now());
  t.same(await third.catalog.expireLeases(), ['n'], 'offline once that grace has passed');
  await shut(third);
  await shut(second);
  await shut(first);
});

t.test('a node back online with a changed catalog: one online event carrying the change, replayed after a crash', async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  await first.catalog.join({ join_token: 'unused', node_id: 'n' });
  await upsert(first.catalog, { node_id: 'n', services: [service('a', '1')] });
  await shut(first);
  const second = await open(dir, {}, 50);
  await sleep(second.catalog.get('n').lease_expires_at_ms + 50 - Date.now());
  t.same(await second.catalog.expireLeases(), ['n'], 'offline');
  const { delta } = await upsert(second.catalog, { node_id: 'n', services: [service('a', '2'), service('b', '1')] });
  const event = second.events.retained().at(-1);
  t.equal(event?.kind, 'online', 'the node came back: online');
  t.same(event?.delta, delta, 'with what the upsert changed');
  t.same([delta.added.map((e) => e.service_id), delta.updated.map((e) => e.service_id)], [['b'], ['a']]);
  // No close (kill -9): the next start has only the log for that change.
  const third = await open(dir);
  t.same(
    third.catalog.get('n').services.map((s) => `${s.service_id}@${s.version}`),
    ['a@2', 'b@1'],
    'replayed: the online event changed the services',
  );
  t.equal(third.catalog.get('n').state, 'online');
  await shut(third);
  await shut(second);
});

/** A store with node `n` joined and checkpointed, and `later()`: waits until the clock is past the last-seen time it publishes. */
async function seenNode(t: Test): Promise<{ dir: string; first: { events: EventLog; catalog: Catalog }; later(): Promise<void> }> {
  const dir = await tempDir(t);
  const first = await open(dir);
  await first.catalog.join({ join_token: 'unused', node_id: 'n' });
  await first.catalog.checkpoint();
  const later = async (): Promise<void> => {
    const seen = first.catalog.get('n').last_seen_ms;
    await waitFor(() => Date.now() > seen + 2, { what: 'the clock to move' });
  };
  return { dir, first, later };
}

/** Opens the store again on `dir`, as after a kill -9 of `first`; the last-seen time never earlier than `first` published. */
async function restoredNotEarlier(t: Test, dir: string, first: { events: EventLog; catalog: Catalog }): Promise<void> {
  const published = first.catalog.get('n').last_seen_ms;
  t.ok(published > first.catalog.get('n').joined_at_ms, 'it moved after the checkpoint');
  const second = await open(dir);
  t.teardown(() => Promise.all([shut(first), shut(second)]));
  const restored = second.catalog.get('n').last_seen_ms;
  t.ok(restored >= published, `last_seen_ms restored ${restored}, published before the kill ${published}`);
}

t.test('not closed (kill -9): last_seen_ms of a replayed event, not the older one of the snapshot', async (t) => {
  const { dir, first, later } = await seenNode(t);
  await later();
  await upsert(first.catalog, { node_id: 'n', services: [service('a', '1')] });
  await restoredNotEarlier(t, dir, first);
});

t.test('not closed (kill -9): last_seen_ms of lease refreshes and unchanged upserts (no events) is not lost', async (t) => {
  const { dir, first, later } = await seenNode(t);
  await later();
  await first.catalog.refresh('n');
  await later();
  await upsert(first.catalog, { node_id: 'n', services: [] });
  await later();
  await first.catalog.refresh('n');
  await restoredNotEarlier(t, dir, first);
});

t.test("a change of a node does not wait behind its refresh's last-seen batch", async (t) => {
  const { first } = await seenNode(t);
  t.teardown(() => shut(first));
  const answered: string[] = [];
  await Promise.all([
    first.catalog.refresh('n').then(() => answered.push('refresh')),
    upsert(first.catalog, { node_id: 'n', services: [service('a', '2')] }).then(() => answered.push('upsert')),
  ]);
  t.same(answered, ['upsert', 'refresh'], 'the upsert, sent second, was answered while the refresh waited for its batch');
});

t.test('a last-seen time that is not a number is ignored at restore, not turned into NaN', async (t) => {
  const { dir, first } = await seenNode(t);
  const published = first.catalog.get('n').last_seen_ms;
  await shut(first);
  await appendFile(join(dir, 'last-seen.journal'), '{"key":"seen/n","value":"garbage"}\n');
  const second = await open(dir);
  t.teardown(() => shut(second));
  t.equal(second.catalog.get('n').last_seen_ms, published, 'the time of the record');
});

t.test('an event log lost or emptied while the catalog journal knows later seqs: no seq is handed out twice, and it is said at warn', async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  await first.catalog.join({ join_token: 'unused', node_id: 'n' });
  for (const version of ['1', '2', '3']) await upsert(first.catalog, { node_id: 'n', services: [service('a', version)] });
  const before = first.events.headSeq;
  await shut(first);
  await writeFile(join(dir, 'node-service-events.ndjson'), '');

  const lines: string[] = [];
  const warned = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const events = await EventLog.open({ dir, log: warned });
  const catalog = await Catalog.open(join(dir, 'catalog.journal'), events, { leaseTtlMs: 60_000, offlineGraceMs: 15_000, log: warned });
  t.teardown(() => shut({ events, catalog }));
  t.equal(events.headSeq, before, 'the head is the highest seq the journal recorded');
  await upsert(catalog, { node_id: 'n', services: [service('a', '4')] });
  t.equal(events.headSeq, before + 1, 'the next event comes after it');
  t.equal(catalog.get('n').seq, before + 1, 'the node shows the new seq');
  const warning = lines
    .map((line) => JSON.parse(line) as { level: number; msg: string; floor_seq: number })
    .find((l) => /event log: it ends at seq 0/.test(l.msg));
  t.match(warning, { level: 40, floor_seq: before, msg: new RegExp(`catalog\\.journal recorded seq ${before}`) }, 'at warn: what was found, the floor used');
});

t.test('every node deleted, then the event log lost: the journal still knows the last seq', async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  await first.catalog.join({ join_token: 'unused', node_id: 'm' });
  await first.catalog.delete('m');
  const before = first.events.headSeq;
  await shut(first);
  await writeFile(join(dir, 'node-service-events.ndjson'), '');
  const second = await open(dir);
  t.teardown(() => shut(second));
  await second.catalog.join({ join_token: 'unused', node_id: 'm' });
  t.ok(second.events.headSeq > before, `a new seq (${second.events.headSeq} after ${before})`);
});

for (const failing of [1, 2])
  t.test(`a join is all or nothing: its write ${failing} failing leaves no node, no event, nothing after a restart`, async (t) => {
    const dir = await tempDir(t);
    const first = await open(dir);
    const seen: number[] = [];
    first.events.onEvent((event) => seen.push(event.seq));
    const head = first.events.headSeq;
    let writes = 0;
    // 1: the journal's secret (the journal keeps the value for its next write, so it must be taken
    // out); 2: the event (the old order: the event went through, the journal's secret did not).
    const restore = await patchFileHandle(t, 'writev', (original, self, args) =>
      ++writes === failing ? Promise.reject(noSpace()) : original.call(self, ...(args as never[])),
    );
    await t.rejects(first.catalog.join({ join_token: 'unused', node_id: 'n' }), { message: /ENOSPC/ });
    restore();
    t.throws(() => first.catalog.get('n'), { code: 'not_found' }, 'not in the catalog');
    t.same(seen, [], 'no event told');
    t.equal(first.events.headSeq, head, 'no seq spent');
    await first.catalog.join({ join_token: 'unused', node_id: 'm' }); // a later write that goes through
    await shut(first);
    const second = await open(dir);
    t.teardown(() => shut(second));
    t.throws(() => second.catalog.get('n'), { code: 'not_found' }, 'not there after a restart');
    t.ok(second.catalog.get('m'), 'the later join is');
  });

t.test("killed between a join's journal write and its event: the next start writes the event, once", async (t) => {
  const dir = await tempDir(t);
  const first = await open(dir);
  let writes = 0;
  let cut: (error: Error) => void = () => undefined;
  // 1: the journal's record; 2: the event, held unwritten as a kill -9 at that moment leaves it.
  const restore = await patchFileHandle(t, 'writev', (original, self, args) =>
    ++writes === 2 ? new Promise((_, reject) => (cut = reject)) : original.call(self, ...(args as never[])),
  );
  const joining = first.catalog.join({ join_token: 'unused', node_id: 'n' });
  // The store left as the kill left it; let go (its undo then has nothing to say) before the temp dir goes.
  t.teardown(async () => {
    cut(noSpace());
    await joining.catch(() => undefined);
    await shut(first).catch(() => undefined);
  });
  await waitFor(() => writes >= 2, { what: 'the join to reach its event write' });
  restore();
  const head = first.events.headSeq;

  const second = await open(dir);
  t.equal(second.catalog.get('n').state, 'online', 'the journaled node is in the catalog');
  t.same(
    second.events
      .retained()
      .filter((e) => e.node_id === 'n')
      .map((e) => [e.kind, e.seq]),
    [['online', head + 1]],
    'and its online event was written at the start (it was never written before)',
  );
  await shut(second);
  const third = await open(dir);
  t.teardown(() => shut(third));
  t.equal(third.events.headSeq, head + 1, 'a start after that writes none again');
});
