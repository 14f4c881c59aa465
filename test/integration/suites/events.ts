// SPEC §6 Events and Event history, §7 watch metrics, §8 watch role gates, against live `acheron
// control` child processes with real ws clients. Nodes are simulated (join token + our own upsert
// frames; no FUSE). Every watcher's view is checked by the history validator against the events an
// unfiltered admin watcher saw from seq 0: ordered, unique, no gaps, replay + live = exactly the
// matching events after its start. Includes kill -9 restarts (also with upserts in flight and
// inside a rotation), rotation and retention, pipelined upserts of one node, progress frames, and a
// watcher too slow to keep up. A torn log line: event-log-loss.test.ts.
import type { Test } from 'tap';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import { historyOf, learnedPosition, ResumingWatcher, service, SimNode, watchFrames } from '../../helpers/catalog-sim.js';
import {
  metricValue,
  sameOnEveryStore,
  scrape,
  serverStoreKind,
  session,
  startControl,
  type Frame,
  type RawPeer,
  type RunningControl,
} from '../../helpers/control.js';
import {
  checkReference,
  emitted,
  validateWatcher,
  type EmittedEvent,
  type WatchFrame,
  type ValidateOptions,
  type WatchRequest,
  type WatchSession,
} from '../../helpers/history-validator.js';
import { waitFor, withEnv } from '../../helpers/process.js';
import { prng, testSeed } from '../../helpers/random.js';

const gunzip = promisify(gunzipCallback);
const gzip = promisify(gzipCallback);
const EVENT = 'control.node_service_event';
const SYNCED = 'control.node_service_watch_synced';

interface Ack {
  watch_id: string;
  enabled: boolean;
  node_id?: string;
  replay_limit: number;
  replayed: number;
  head_seq: number;
}

const portsOf = (control: RunningControl): { ws: number; http: number } => ({
  ws: Number(new URL(control.url).port),
  http: Number(new URL(control.httpUrl).port),
});

/** kill -9, then a new server on the same data dir and ports. */
async function crashAndRestart(tt: Test, control: RunningControl): Promise<RunningControl> {
  const exit = await control.kill9();
  tt.equal(exit.signal, 'SIGKILL', 'the server died of SIGKILL');
  return startControl(tt, { dataDir: control.dataDir, ports: portsOf(control) });
}

function expectValid(tt: Test, name: string, sessions: WatchSession[], all: readonly EmittedEvent[], options: ValidateOptions = {}): void {
  const report = validateWatcher(sessions, all, options);
  tt.same(report.problems, [], `${name}: a valid history (${report.received.length} events received, ${report.expected.length} required)`);
}

/** Checks the reference itself (every seq once, in order) and then every watcher against it. */
function expectAllValid(tt: Test, reference: ResumingWatcher, watchers: readonly ResumingWatcher[]): EmittedEvent[] {
  const all = historyOf(reference);
  const files = serverStoreKind() === 'files';
  tt.same(checkReference(all, { contiguous: files }), [], `the reference saw every seq once, in order${files ? ', none missing' : ''}`);
  if (files) tt.equal(all[0]?.seq, 1, 'the reference starts at seq 1');
  expectValid(tt, reference.name, reference.sessions, all);
  for (const watcher of watchers) expectValid(tt, watcher.name, watcher.sessions, all);
  return all;
}

/** A watch on `peer`; returns the reply frame (checked ok) and its payload. */
async function watch(peer: RawPeer, request: WatchRequest): Promise<{ ack: Frame; payload: Ack }> {
  const ack = await peer.request('control.node_service_watch', request);
  if (ack.ok !== true) throw new Error(`watch ${JSON.stringify(request)} refused: ${JSON.stringify(ack.error)}`);
  return { ack, payload: ack.payload as Ack };
}

const eventsOf = (frames: readonly WatchFrame[]): Array<{ seq: number; replay: boolean; node_id: string; kind: string }> =>
  frames.filter((f) => f.type === EVENT).map((f) => f.payload as { seq: number; replay: boolean; node_id: string; kind: string });

const hasSynced = (peer: RawPeer, ack: Frame): boolean => watchFrames(peer, ack).some((f) => f.type === SYNCED);
/**
 * The suite, on the store this file's servers use (`serversUseStore`): files (events.test.ts) or etcd
 * (events-etcd.test.ts). On etcd a seq is a revision: increasing, with gaps (docs/control-protocol.md,
 * Storage), so every seq here is read from the reference watcher, never counted; the history on disk
 * is the file store's own.
 */
export async function eventsSuite(t: Test): Promise<void> {
  const files = serverStoreKind() === 'files';
  /** Opened first and checked last (10 s later): a filtered watch that sees no event still hears progress. */
  let quiet: { control: RunningControl; peer: RawPeer; ack: Frame; payload: Ack } | undefined;

  if (files)
    await t.test('the history validator catches gaps, duplicates, reordering and misplaced frames', async (tt) => {
      const all: EmittedEvent[] = [1, 2, 3, 4, 5, 6].map((seq) => ({ seq, kind: 'upsert', node_id: seq % 2 ? 'a' : 'b' }));
      const ack: WatchFrame = {
        type: 'control.node_service_watch',
        id: '1',
        ok: true,
        payload: { watch_id: 'w1', enabled: true, replay_limit: 2, replayed: 2, head_seq: 4 },
      };
      const ev = (seq: number, replay = false, watchId = 'w1'): WatchFrame => ({
        type: EVENT,
        ok: true,
        payload: { watch_id: watchId, replay, ...all[seq - 1] },
      });
      const synced: WatchFrame = { type: SYNCED, ok: true, payload: { watch_id: 'w1', head_seq: 4 } };
      const good = [ack, ev(3, true), ev(4, true), synced, ev(5), ev(6)];
      const check = (frames: WatchFrame[], request = { replay_limit: 2 }): string[] => validateWatcher([{ request, frames }], all).problems;
      tt.same(check(good), [], 'a correct history passes');
      const cases: Array<[string, WatchFrame[], RegExp]> = [
        ['a live gap', [ack, ev(3, true), ev(4, true), synced, ev(6)], /missing seqs 5/],
        ['a replay gap', [{ ...ack, payload: { ...(ack.payload as object), replayed: 1 } }, ev(4, true), synced, ev(5), ev(6)], /expected the last 2/],
        ['a duplicate', [ack, ev(3, true), ev(4, true), synced, ev(5), ev(5), ev(6)], /duplicate or out of order/],
        ['a reordering', [ack, ev(3, true), ev(4, true), synced, ev(6), ev(5)], /duplicate or out of order/],
        ['a replay after synced', [ack, ev(3, true), synced, ev(4, true), ev(5)], /after the synced marker/],
        ['a replay before the ack', [ev(3, true), ack, ev(4, true), synced], /first frame is not the watch reply/],
        ['a foreign watch_id', [ack, ev(3, true), ev(4, true), synced, ev(5, false, 'w2')], /carries watch_id w2/],
        ['a second synced', [ack, ev(3, true), ev(4, true), synced, synced], /second synced/],
        [
          'content that differs',
          [ack, ev(3, true), ev(4, true), synced, { type: EVENT, ok: true, payload: { watch_id: 'w1', replay: false, seq: 5, kind: 'delete', node_id: 'a' } }],
          /differs from the emitted event/,
        ],
      ];
      for (const [name, frames, problem] of cases) tt.match(check(frames).join('\n'), problem, `${name} is caught`);
      tt.match(check([ack, ev(3, true)]).join('\n'), /never the synced marker/, 'a watch that stops before its synced marker is caught');
      tt.same(
        validateWatcher([{ request: { replay_limit: 2 }, frames: [ack, ev(3, true)], cut: true }], all).problems,
        [],
        'unless the watcher closed it there itself',
      );
      tt.match(
        validateWatcher([{ request: { node_id: 'a' }, frames: [ack, ev(3, true), ev(4, true), synced] }], all).problems.join('\n'),
        /outside the filter a/,
        'an event outside the filter is caught',
      );
      const resumed = validateWatcher(
        [
          { request: { replay_limit: 2 }, frames: [ack, ev(3, true), ev(4, true), synced, ev(5)] },
          {
            request: { since_seq: 4 },
            frames: [
              { ...ack, payload: { watch_id: 'w9', enabled: true, replay_limit: 25, replayed: 2, head_seq: 6 } },
              ev(5, true, 'w9'),
              ev(6, true, 'w9'),
              { type: SYNCED, ok: true, payload: { watch_id: 'w9', head_seq: 6 } },
            ],
          },
        ],
        all,
      ).problems;
      tt.match(resumed.join('\n'), /resumed from since_seq 4, but the watcher had learned position 5/, 'a resume behind the learned position is caught');
      tt.same(
        checkReference([all[0] as EmittedEvent, all[2] as EmittedEvent]),
        ['reference: seq 3 follows 1 (a gap, a duplicate or a reordering)'],
        'a gap in the reference is caught',
      );
    });

  await t.test('one server: frame order, filters, replay limits, since_seq, unchanged upserts, kinds, metrics', async (tt) => {
    // This server lives to the end of the file, for the progress check.
    const control = await startControl(t, { args: ['--offline-grace-ms', '300'] });
    const { url } = control;
    const quietPeer = await session(url, { token: control.adminToken });
    quiet = { control, peer: quietPeer, ...(await watch(quietPeer, { node_id: 'quiet', replay_limit: 0 })) };
    const reference = new ResumingWatcher('reference', control.adminToken, { since_seq: 0 });
    await reference.connect(url);
    await reference.synced();
    const [n1, n2, n3] = (await Promise.all(['n1', 'n2', 'n3'].map((id) => SimNode.join(url, control.dataDir, id)))) as [SimNode, SimNode, SimNode];
    n1.services.set('a', '1');
    await n1.publish();
    n2.services.set('b', '1');
    await n2.publish();
    n1.services.set('a', '2');
    await n1.publish();
    n1.services.set('c', '1');
    await n1.publish();
    n2.services.set('b', '2');
    await n2.publish();
    n3.services.set('x', '1');
    await n3.publish();
    n1.services.delete('a');
    await n1.publish();
    // 3 joins (online) + 7 upserts.
    await reference.reachCount(10);
    /** The seq of the k-th event (1-based): k itself on files, a revision on etcd. */
    const seqAt = (k: number): number => (historyOf(reference)[k - 1] as EmittedEvent).seq;
    /** A head_seq after the k-th event: that event's seq on files; on etcd the head also moves with revisions that are no event (leases, tunnels). */
    const headAfter = (t2: Test, head: number | undefined, k: number, what: string): void => {
      if (files) t2.equal(head, seqAt(k), what);
      else
        t2.ok(
          head !== undefined && head >= seqAt(k) && historyOf(reference).every((e) => e.seq <= head || e.seq > seqAt(k)),
          `${what} (${String(head)}, event ${k} is ${seqAt(k)})`,
        );
    };
    const watchers: ResumingWatcher[] = [];

    await tt.test('a watch sends its ack, the replays oldest first, one synced, then live events; each names the watch', async (t2) => {
      const peer = await session(url, { token: control.adminToken });
      const { ack, payload } = await watch(peer, { replay_limit: 4 });
      t2.equal(payload.enabled, true, 'enabled');
      t2.equal(payload.replay_limit, 4, 'replay_limit echoed');
      t2.equal(payload.replayed, 4, 'replayed 4');
      headAfter(t2, payload.head_seq, 10, 'head_seq is the last event');
      t2.notOk('node_id' in payload, 'no node_id without a filter');
      t2.match(payload.watch_id, /^\S+$/, 'a watch_id');
      await waitFor(() => hasSynced(peer, ack), { what: 'synced' });
      n2.services.set('b', '3');
      await n2.publish();
      await reference.reachCount(11);
      await waitFor(() => eventsOf(watchFrames(peer, ack)).some((e) => e.seq === seqAt(11)), { what: 'live event 11' });
      const sinceAck = peer.frames.slice(peer.frames.indexOf(ack));
      t2.same(
        sinceAck.map(
          (f) => `${f.type}${f.type === EVENT ? `:${(f.payload as { seq: number }).seq}:${String((f.payload as { replay: boolean }).replay)}` : ''}`,
        ),
        ['control.node_service_watch', ...[7, 8, 9, 10].map((k) => `${EVENT}:${seqAt(k)}:true`), SYNCED, `${EVENT}:${seqAt(11)}:false`],
        'ack, 4 replays oldest first, synced, live',
      );
      t2.ok(
        sinceAck.slice(1).every((f) => (f.payload as { watch_id?: string }).watch_id === payload.watch_id),
        'every frame after the ack carries the watch_id',
      );
      headAfter(t2, (sinceAck[5]?.payload as { head_seq?: number }).head_seq, 10, 'synced carries head_seq');
      expectValid(t2, 'replay 4', [{ request: { replay_limit: 4 }, frames: watchFrames(peer, ack) }], historyOf(reference));
      await peer.close();
    });

    await tt.test('several watches on one connection: node filters, replay_limit 0 / 3 / more than history / clamped; unwatch', async (t2) => {
      const peer = await session(url, { token: control.adminToken });
      const requests: WatchRequest[] = [
        {},
        { node_id: 'n1', replay_limit: 3 },
        { node_id: 'n2', replay_limit: 0 },
        { node_id: 'n3', replay_limit: 100 },
        { replay_limit: 5000 },
      ];
      type Opened = { request: WatchRequest; ack: Frame; payload: Ack };
      const opened: Opened[] = [];
      for (const request of requests) opened.push({ request, ...(await watch(peer, request)) });
      const [all, onlyN1, onlyN2, onlyN3, big] = opened as [Opened, Opened, Opened, Opened, Opened];
      t2.equal(new Set(opened.map((o) => o.payload.watch_id)).size, opened.length, 'each watch has its own watch_id');
      t2.equal(all.payload.replay_limit, 25, 'default replay_limit 25');
      t2.equal(all.payload.replayed, 11, 'fewer events than the default: all 11 replayed');
      t2.equal(onlyN1.payload.node_id, 'n1', 'the ack names the node filter');
      t2.equal(onlyN1.payload.replayed, 3, 'replay_limit 3: 3 replayed');
      t2.equal(onlyN2.payload.replayed, 0, 'replay_limit 0: nothing replayed');
      t2.equal(onlyN3.payload.replayed, 2, 'replay_limit above the history: every n3 event (join, upsert)');
      t2.equal(onlyN3.payload.replay_limit, 100, 'replay_limit 100 kept (below the ring)');
      t2.equal(big.payload.replay_limit, 1024, 'replay_limit 5000 clamped to the ring capacity');
      t2.equal(big.payload.replayed, 11, 'clamped watch replays the whole history');
      await waitFor(() => opened.every((o) => hasSynced(peer, o.ack)), { what: 'all synced' });
      t2.same(
        eventsOf(watchFrames(peer, onlyN1.ack)).map((e) => e.seq),
        [6, 7, 10].map(seqAt),
        'n1 replay: its last 3 events',
      );
      n1.services.set('c', '2');
      await n1.publish();
      n2.services.set('b', '4');
      await n2.publish();
      n3.services.set('x', '2');
      await n3.publish();
      await reference.reachCount(14);
      await waitFor(() => eventsOf(watchFrames(peer, all.ack)).some((e) => e.seq === seqAt(14)), { what: 'event 14 on the unfiltered watch' });
      for (const [o, node, k] of [
        [onlyN1, 'n1', 12],
        [onlyN2, 'n2', 13],
        [onlyN3, 'n3', 14],
      ] as const) {
        await waitFor(() => eventsOf(watchFrames(peer, o.ack)).some((e) => e.seq === seqAt(k)), { what: `event ${k} on the ${node} watch` });
        t2.ok(
          eventsOf(watchFrames(peer, o.ack))
            .filter((e) => !e.replay)
            .every((e) => e.node_id === node),
          `the ${node} watch got only ${node} live events`,
        );
      }
      const unwatched = await peer.request('control.node_service_unwatch', { watch_id: onlyN1.payload.watch_id });
      t2.same(unwatched.payload, { watch_id: onlyN1.payload.watch_id, enabled: false }, 'unwatch reply');
      const again = await peer.request('control.node_service_unwatch', { watch_id: onlyN1.payload.watch_id });
      t2.equal(again.error?.code, 'not_found', 'unwatching twice: not_found');
      t2.equal(again.error?.field, '/watch_id', 'names /watch_id');
      n1.services.set('c', '3');
      await n1.publish();
      n2.services.set('b', '5');
      await n2.publish();
      // Events go out in seq order on one socket: once the n2 watch has 16, a 15 for n1 would be here.
      await reference.reachCount(16);
      await waitFor(() => eventsOf(watchFrames(peer, onlyN2.ack)).some((e) => e.seq === seqAt(16)), { what: 'event 16 on the n2 watch' });
      t2.notOk(
        eventsOf(watchFrames(peer, onlyN1.ack)).some((e) => e.seq === seqAt(15)),
        'the unwatched n1 watch gets nothing more',
      );
      t2.ok(
        eventsOf(watchFrames(peer, all.ack)).some((e) => e.seq === seqAt(15)),
        'the other watches on the connection still do',
      );
      for (const o of opened)
        expectValid(t2, `watch ${JSON.stringify(o.request)}`, [{ request: o.request, frames: watchFrames(peer, o.ack) }], historyOf(reference));
      await peer.close();
    });

    await tt.test('since_seq replays exactly what follows that seq; ahead of head is resync_required', async (t2) => {
      const peer = await session(url, { token: control.adminToken });
      const all = historyOf(reference);
      const head = all.at(-1)?.seq as number;
      for (const since of [0, 5, head - 1, head]) {
        const { ack, payload } = await watch(peer, { since_seq: since, replay_limit: 1 });
        await waitFor(() => hasSynced(peer, ack), { what: `synced since ${since}` });
        const seqs = eventsOf(watchFrames(peer, ack)).map((e) => e.seq);
        t2.same(
          seqs,
          all.filter((e) => e.seq > since).map((e) => e.seq),
          `since_seq ${since}: every event after it, replay_limit ignored`,
        );
        t2.equal(payload.replayed, seqs.length, `since_seq ${since}: replayed counts them`);
      }
      const { ack } = await watch(peer, { since_seq: 5, node_id: 'n2' });
      await waitFor(() => hasSynced(peer, ack), { what: 'synced n2 since 5' });
      t2.same(
        eventsOf(watchFrames(peer, ack)).map((e) => e.seq),
        all.filter((e) => e.seq > 5 && e.node_id === 'n2').map((e) => e.seq),
        'since_seq with a node filter',
      );
      // On files the next seq is ahead; on etcd a seq names a revision, and one far beyond etcd's is.
      const serverHead = (await watch(peer, { replay_limit: 0 })).payload.head_seq;
      const ahead = await peer.request('control.node_service_watch', { since_seq: files ? head + 1 : serverHead + 1_000_000_000 });
      t2.equal(ahead.error?.code, 'resync_required', 'since_seq ahead of head (events this server cannot have delivered): resync_required');
      t2.equal(ahead.error?.field, '/since_seq', 'names /since_seq');
      t2.equal((await peer.request('control.version', { protocol: 'unified-v2' })).ok, true, 'the connection stays up');
      // A watcher that drops and resumes after the last seq it saw misses nothing and repeats nothing.
      const resuming = new ResumingWatcher('resuming-n1', control.adminToken, { node_id: 'n1', replay_limit: 2 });
      watchers.push(resuming);
      await resuming.connect(url);
      await resuming.synced();
      n1.services.set('c', '4');
      await n1.publish();
      await reference.reachCount(all.length + 1);
      const next = seqAt(all.length + 1);
      await resuming.reach(next);
      resuming.close();
      n1.services.set('d', '1');
      await n1.publish();
      n2.services.set('b', '6');
      await n2.publish();
      const resumed = await resuming.connect(url);
      t2.equal((resumed.payload as Ack).replayed, 1, 'the resumed watch replays the one n1 event it missed');
      await resuming.synced();
      t2.same(
        resuming.sessions.map((s) => s.request.since_seq),
        [undefined, next],
        'resumed with since_seq = the last seq seen',
      );
      await peer.close();
    });

    await tt.test('an unchanged upsert emits nothing (order of keys and services does not matter)', async (t2) => {
      const peer = await session(url, { token: control.adminToken });
      const head = (await watch(peer, { replay_limit: 0 })).payload.head_seq;
      t2.equal(await n1.publish(), false, 'the same catalog again: changed false');
      const reversed = n1
        .descriptors()
        .reverse()
        .map((d) => Object.fromEntries(Object.entries(d).reverse()));
      const frame = await n1.peer.request('control.node_service_upsert', { node_id: 'n1', services: reversed });
      t2.equal((frame.payload as { service_delta: { changed: boolean } }).service_delta.changed, false, 'reordered services and keys: changed false');
      // On etcd the head also moves with revisions that are no event; the check below holds on both.
      if (files) t2.equal((await watch(peer, { replay_limit: 0 })).payload.head_seq, head, 'head_seq did not move');
      const count = historyOf(reference).length;
      n3.services.set('x', '3');
      await n3.publish();
      await reference.reachCount(count + 1);
      const after = historyOf(reference).filter((e) => e.seq > head);
      t2.equal(after.length, 1, 'the next real change is the one event after head_seq');
      if (files) t2.equal(after[0]?.seq, head + 1, 'and on files the very next seq');
      await peer.close();
    });

    await tt.test('upserts one node sends without waiting apply in order: each delta from the one before, the last wins', async (t2) => {
      const peer = await session(url, { token: control.adminToken });
      const head = (await watch(peer, { replay_limit: 0 })).payload.head_seq;
      const count = historyOf(reference).length;
      const versions = ['4', '3', '5'];
      const replies = await Promise.all(
        versions.map((v) => n3.peer.request('control.node_service_upsert', { node_id: 'n3', services: [service('n3', 'x', v)] })),
      );
      n3.services.set('x', '5');
      const steps = replies.map(
        (r) => (r.payload as { service_delta: { changed: boolean; updated: Array<{ previous_version: string; version: string }> } }).service_delta,
      );
      t2.same(
        steps.map((d) => [d.changed, d.updated.map((u) => `${u.previous_version}->${u.version}`)]),
        [
          [true, ['3->4']],
          [true, ['4->3']],
          [true, ['3->5']],
        ],
        'each reply diffs against the upsert before it (none lost as unchanged)',
      );
      await reference.reachCount(count + 3);
      const events = historyOf(reference).filter((e) => e.seq > head) as Array<EmittedEvent & { service_delta: (typeof steps)[number] }>;
      t2.same(
        events.map((e) => e.service_delta.updated.map((u) => u.version)),
        [['4'], ['3'], ['5']],
        'three events, in the order sent',
      );
      if (files)
        t2.same(
          events.map((e) => e.seq),
          [head + 1, head + 2, head + 3],
          'at the next three seqs',
        );
      const node = await peer.call<{ services: Array<{ version: string }> }>('control.node_get', { node_id: 'n3' });
      t2.same(
        node.services.map((x) => x.version),
        ['5'],
        'the catalog holds the last upsert',
      );
      await peer.close();
    });

    await tt.test('kinds: online at join, upsert, offline when the tunnel stays closed, online again, delete', async (t2) => {
      const seen = (node: string): EmittedEvent[] => historyOf(reference).filter((e) => e.node_id === node);
      const n4 = await SimNode.join(url, control.dataDir, 'n4');
      await waitFor(() => seen('n4').length === 1, { what: 'n4 join event' });
      t2.equal(seen('n4')[0]?.kind, 'online', 'a join is an online event');
      n4.services.set('y', '1');
      await n4.publish();
      await waitFor(() => seen('n4').length === 2, { what: 'n4 upsert event' });
      const upsert = seen('n4')[1] as EmittedEvent & { service_delta: { added: Array<{ service_id: string; version: string }> } };
      t2.equal(upsert.kind, 'upsert', 'a change is an upsert event');
      t2.same(
        upsert.service_delta.added.map((s) => [s.service_id, s.version]),
        [['y', '1']],
        'its delta adds y@1',
      );
      await n4.peer.close();
      await waitFor(() => seen('n4').length === 3, { what: 'n4 offline event', timeoutMs: 20_000 });
      const offline = seen('n4')[2] as EmittedEvent & { services: Array<{ state: string }> };
      t2.equal(offline.kind, 'offline', 'a tunnel closed past --offline-grace-ms: offline event');
      t2.same(
        offline.services.map((s) => s.state),
        ['offline'],
        'its services stay, marked offline',
      );
      await n4.reconnect(url);
      t2.equal((await n4.peer.request('control.node_lease_refresh', { node_id: 'n4' })).ok, true, 'lease refresh');
      await waitFor(() => seen('n4').length === 4, { what: 'n4 online event' });
      const online = seen('n4')[3] as EmittedEvent & { services: Array<{ state: string }> };
      t2.equal(online.kind, 'online', 'a refresh brings it back: online event');
      t2.same(
        online.services.map((s) => s.state),
        ['online'],
        'its services are online again',
      );
      await n4.peer.close();
      await waitFor(() => seen('n4').length === 5, { what: 'n4 second offline', timeoutMs: 20_000 });
      await n4.reconnect(url);
      t2.equal(await n4.publish(), false, 'an unchanged upsert from an offline node: changed false');
      await waitFor(() => seen('n4').length === 6, { what: 'n4 online via upsert' });
      t2.equal(seen('n4')[5]?.kind, 'online', 'an upsert from an offline node: online event');
      await n4.peer.close();
      await waitFor(() => seen('n4').length === 7, { what: 'n4 third offline', timeoutMs: 20_000 });
      await n4.reconnect(url);
      n4.services.set('z', '1');
      t2.equal(await n4.publish(), true, 'a changed upsert from an offline node: changed true');
      await waitFor(() => seen('n4').length === 8, { what: 'n4 online with a change' });
      const back = seen('n4')[7] as EmittedEvent & { service_delta: { added: Array<{ service_id: string }> } };
      t2.equal(back.kind, 'online', 'it is still the online event: the node came back');
      t2.same(
        back.service_delta.added.map((s) => s.service_id),
        ['z'],
        'carrying what the upsert changed',
      );
      const admin = await session(url, { token: control.adminToken });
      await admin.call('control.node_delete', { node_id: 'n4' });
      await waitFor(() => seen('n4').length === 9, { what: 'n4 delete event' });
      const deleted = seen('n4')[8] as EmittedEvent & { service_delta: { removed: Array<{ service_id: string }> } };
      t2.equal(deleted.kind, 'delete', 'node_delete: delete event');
      t2.same(
        deleted.service_delta.removed.map((s) => s.service_id),
        ['y', 'z'],
        'its delta removes every service',
      );
      t2.same(
        seen('n4').map((e) => e.kind),
        ['online', 'upsert', 'offline', 'online', 'offline', 'online', 'offline', 'online', 'delete'],
        'kinds in order',
      );
      await admin.close();
    });

    await tt.test('users may not watch by default: forbidden with a reason', async (t2) => {
      const user = await session(url, { token: control.userToken });
      const refused = await user.request('control.node_service_watch', {});
      t2.equal(refused.error?.code, 'forbidden', 'forbidden');
      t2.match(refused.error?.message, /ACHERON_NODE_SERVICE_WATCH_ALLOW_USER/, 'the reason names the setting');
      const node = await n3.peer.request('control.node_service_watch', {});
      t2.equal(node.error?.code, 'forbidden', 'a node may not watch either');
      await user.close();
    });

    await tt.test('every watcher of this server saw a valid history; /metrics has the watch telemetry', async (t2) => {
      const all = expectAllValid(t2, reference, watchers);
      const text = await scrape(control);
      const newest = all.at(-1)?.seq as number;
      await waitFor(async () => metricValue(await scrape(control), 'acheron_watch_subscribers') === 3, {
        what: 'acheron_watch_subscribers 3 (the reference, the resuming and the quiet watcher)',
      });
      for (const name of [
        'acheron_watch_fanout_events_total',
        'acheron_watch_fanout_attempts_total',
        'acheron_watch_fanout_sent_total',
        'acheron_watch_replay_requests_total',
        'acheron_watch_replay_events_total',
        'acheron_watch_replay_bytes_total',
      ]) {
        t2.ok((metricValue(text, name) ?? 0) > 0, `${name} > 0`);
      }
      t2.equal(metricValue(text, 'acheron_watch_fanout_events_total'), all.length, 'fan-out saw every event once');
      t2.equal(metricValue(text, 'acheron_watch_fanout_dropped_total'), 0, 'nothing dropped');
      t2.equal(metricValue(text, 'acheron_watch_retained_events'), all.length, 'the ring holds the whole history');
      t2.equal(metricValue(text, 'acheron_watch_retained_capacity'), 1024, 'ring capacity 1024');
      t2.equal(metricValue(text, 'acheron_watch_retained_oldest_seq'), all[0]?.seq, 'oldest retained seq');
      t2.equal(metricValue(text, 'acheron_watch_retained_newest_seq'), newest, 'newest retained seq');
      const [first, last] = [all[0]?.timestamp_ms as number, all.at(-1)?.timestamp_ms as number];
      t2.equal(metricValue(text, 'acheron_watch_retained_oldest_timestamp_seconds'), first / 1000, 'oldest retained time, in seconds');
      t2.equal(metricValue(text, 'acheron_watch_retained_newest_timestamp_seconds'), last / 1000, 'newest retained time, in seconds');
      t2.equal(metricValue(text, 'acheron_watch_retained_window_seconds'), (last - first) / 1000, 'the window, in seconds');
      t2.equal(metricValue(text, 'acheron_event_seq'), newest, "acheron_event_seq: the last event's seq");
    });
    reference.close();
    for (const w of watchers) w.close();
  });

  await t.test('randomized upserts, watcher reconnects and kill -9 restarts: every watcher sees a valid history', async (tt) => {
    const seed = testSeed();
    tt.comment(`seed ${seed} (repeat with ACHERON_TEST_SEED=${seed})`);
    const random = prng(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    let control = await startControl(tt);
    const reference = new ResumingWatcher('reference', control.adminToken, { since_seq: 0 });
    await reference.connect(control.url);
    const nodes = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((id) => SimNode.join(control.url, control.dataDir, id)));
    const watchers = [
      new ResumingWatcher('all-default', control.adminToken, {}),
      new ResumingWatcher('r1-limit3', control.adminToken, { node_id: 'r1', replay_limit: 3 }),
      new ResumingWatcher('r2-limit0', control.adminToken, { node_id: 'r2', replay_limit: 0 }),
      new ResumingWatcher('r3-since0', control.adminToken, { node_id: 'r3', since_seq: 0 }),
      new ResumingWatcher('all-limit1', control.adminToken, { replay_limit: 1 }),
      new ResumingWatcher('r4-limit50', control.adminToken, { node_id: 'r4', replay_limit: 50 }),
    ];
    const started: ResumingWatcher[] = [];
    /** A random change of one node's wanted catalog (sometimes none at all). */
    const mutate = (node: SimNode): void => {
      const id = `s${Math.floor(random() * 4)}`;
      const r = random();
      if (r < 0.15) return;
      if (r < 0.35) node.services.delete(id);
      else node.services.set(id, String(Number(node.services.get(id) ?? 0) + 1));
    };
    let restarts = 0;
    let maxSeenBeforeCrash = 0;
    const crash = async (): Promise<void> => {
      restarts++;
      // Upserts in flight when the server dies: durable before fan-out means a seen event survives.
      const inFlight = nodes.filter(() => random() < 0.5).map((node) => (mutate(node), node.upsert().catch(() => undefined)));
      maxSeenBeforeCrash = Math.max(maxSeenBeforeCrash, ...[reference, ...started].map((w) => w.position ?? 0));
      for (const w of [reference, ...started]) w.serverGone();
      control = await crashAndRestart(tt, control);
      await Promise.all(inFlight);
      const ack = await reference.connect(control.url);
      tt.ok(
        (ack.payload as Ack).head_seq >= maxSeenBeforeCrash,
        `restart ${restarts}: head_seq ${(ack.payload as Ack).head_seq} is at least the last seq seen before the crash (${maxSeenBeforeCrash})`,
      );
      // A reconnect counts as a start: each node publishes what it wants (nothing, if it is already there).
      for (const node of nodes) {
        await node.reconnect(control.url);
        await node.publish();
      }
      for (const w of started) await w.connect(control.url);
    };
    for (let step = 0; step < 70; step++) {
      const r = random();
      if (restarts === 0 && step === 45) await crash();
      const unstarted = watchers.filter((w) => !started.includes(w));
      if (unstarted.length > 0 && r < 0.1) {
        const w = pick(unstarted);
        started.push(w);
        await w.connect(control.url);
      } else if (r < 0.6) {
        const node = pick(nodes);
        mutate(node);
        await node.publish();
      } else if (r < 0.75) {
        // Upserts from several nodes at once, and a watcher resuming while they are in flight.
        const pending = nodes.filter(() => random() < 0.6).map((node) => (mutate(node), node.upsert()));
        if (started.length > 0) await pick(started).connect(control.url);
        await Promise.all(pending);
      } else if (r < 0.9 && started.length > 0) {
        await pick(started).connect(control.url);
      } else if (restarts < 2 && step > 5) {
        await crash();
      }
    }
    for (const w of watchers.filter((x) => !started.includes(x))) {
      started.push(w);
      await w.connect(control.url);
    }
    for (const node of nodes) {
      node.services.set('final', '1');
      await node.publish();
    }
    const probe = await session(control.url, { token: control.adminToken });
    const head = (await watch(probe, { replay_limit: 0 })).payload.head_seq;
    await reference.reach(head);
    // A last resume for each watcher: its synced head_seq brings it to the end of the history.
    for (const w of started) {
      await w.connect(control.url);
      await w.synced();
      await w.reach(head);
    }
    tt.ok(restarts >= 1, `${restarts} kill -9 restarts`);
    const all = expectAllValid(tt, reference, started);
    if (files) tt.equal(all.at(-1)?.seq, head, 'the reference reached the head');
    else
      tt.ok(
        (all.at(-1)?.seq ?? 0) <= head && (reference.position ?? 0) >= head,
        `the reference reached the head (${head}; its last event ${String(all.at(-1)?.seq)})`,
      );
    // A run worth checking, whatever the seed: about 45 events on average, 37 with seed 1380726186.
    tt.ok(all.length > 20, `${all.length} events in the run`);
    // What the log holds after the crashes is exactly what was streamed: no seq lost or reused.
    const { ack } = await watch(probe, { since_seq: 0 });
    await waitFor(() => hasSynced(probe, ack), { what: 'full replay' });
    tt.same(
      eventsOf(watchFrames(probe, ack)).map((e) => emitted(e as unknown as Record<string, unknown>)),
      all,
      'a replay from seq 0 equals the streamed history',
    );
    await probe.close();
    reference.close();
    for (const w of started) w.close();
  });

  if (files)
    await t.test('history on disk: gzip archives, ARCHIVE_KEEP, replay and since_seq across kill -9', async (tt) => {
      const env = { ACHERON_NODE_SERVICE_EVENT_LOG_ROTATE_MAX_BYTES: '2000', ACHERON_NODE_SERVICE_EVENT_LOG_ARCHIVE_KEEP: '2' };
      let control = await withEnv(env, () => startControl(tt));
      const reference = new ResumingWatcher('reference', control.adminToken, { since_seq: 0 });
      await reference.connect(control.url);
      const node = await SimNode.join(control.url, control.dataDir, 'rot');
      const current = join(control.dataDir, 'node-service-events.ndjson');
      // The reply comes once the event is durable; a rotation it triggers (file above 2000 bytes) may
      // still be running, and archiving runs in the background after it. Settled: the last event is in
      // the current file, no rotation is due and no rotated file waits for its archive.
      const settled = async (seq: number): Promise<boolean> => {
        const text = await readFile(current, 'utf8');
        const rotated = (await readdir(control.dataDir)).some((n) => /^node-service-events-\d+\.ndjson$/.test(n));
        return Buffer.byteLength(text) <= 2000 && text.includes(`{"seq":${seq},`) && !rotated;
      };
      let version = 0;
      while (version < 30 || !(await settled(1 + version))) {
        node.services.set('svc', String(++version));
        await node.publish();
      }
      const head = 1 + version;
      await reference.reach(head);
      const archivesOf = async (): Promise<string[]> => (await readdir(control.dataDir)).filter((n) => /^node-service-events-\d+\.ndjson\.gz$/.test(n));
      const archives = await archivesOf();
      tt.ok(archives.length >= 1 && archives.length <= 2, `1 or 2 archives kept (${archives.join(', ')})`);
      const archived = (await gunzip(await readFile(join(control.dataDir, archives[0] as string))))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type?: string; seq: number });
      tt.ok(
        archived.some((r) => r.type === undefined && r.seq > 0),
        'an archive is gzipped NDJSON of events',
      );
      const log = async (): Promise<string> => readFile(control.logFile, 'utf8');
      tt.match(await log(), /event log rotated/, 'the log reports rotations');
      const all = historyOf(reference);

      // kill -9 inside a rotation, after the archive was written and before the file was swapped:
      // the current file's events are then in both.
      tt.equal((await control.kill9()).signal, 'SIGKILL', 'the server died of SIGKILL');
      await writeFile(join(control.dataDir, `node-service-events-${Date.now()}.ndjson.gz`), await gzip(await readFile(current)));
      control = await withEnv(env, () => startControl(tt, { dataDir: control.dataDir, ports: portsOf(control) }));
      const peer = await session(control.url, { token: control.adminToken });
      const { ack, payload } = await watch(peer, { replay_limit: 1024 });
      await waitFor(() => hasSynced(peer, ack), { what: 'synced after restart' });
      tt.equal(payload.head_seq, head, 'head_seq is the last whole event');
      const replayed = eventsOf(watchFrames(peer, ack)).map((e) => emitted(e as unknown as Record<string, unknown>));
      const oldest = replayed[0]?.seq as number;
      tt.ok(oldest > 1, `pruned archives are gone from the history (oldest retained seq ${oldest})`);
      tt.same(
        replayed,
        all.filter((e) => e.seq >= oldest),
        'the ring refilled from the kept archives and the current file, contents intact',
      );
      expectValid(tt, 'replay after the restart', [{ request: { replay_limit: 1024 }, frames: watchFrames(peer, ack) }], all, { retainedFrom: oldest });
      tt.equal((await peer.request('control.node_service_watch', { since_seq: oldest - 1 })).ok, true, 'since_seq just before the oldest retained event: ok');
      const tooOld = await peer.request('control.node_service_watch', { since_seq: oldest - 2 });
      tt.equal(tooOld.error?.code, 'resync_required', 'since_seq older than the retained history: resync_required');
      tt.equal(tooOld.error?.field, '/since_seq', 'names /since_seq');
      tt.match(tooOld.error?.message, /older than the retained history/, 'says why');
      const text = await scrape(control);
      tt.equal(metricValue(text, 'acheron_watch_retained_oldest_seq'), oldest, 'retained_oldest_seq metric');
      tt.equal(metricValue(text, 'acheron_watch_retained_newest_seq'), head, 'retained_newest_seq metric');
      await peer.close();

      await reference.connect(control.url);
      await node.reconnect(control.url);
      for (let i = 1; i <= 15; i++) {
        node.services.set('svc', String(++version));
        await node.publish();
      }
      await reference.reach(head + 15);
      tt.same(
        historyOf(reference)
          .filter((e) => e.seq > head)
          .map((e) => e.seq),
        Array.from({ length: 15 }, (_, i) => head + 1 + i),
        'seq continues after the restart',
      );
      await waitFor(async () => (await archivesOf()).length <= 2, { what: 'at most 2 archives' });
      expectAllValid(tt, reference, []);
      reference.close();

      control = await withEnv(env, () => control.restart());
      const again = await session(control.url, { token: control.adminToken });
      const resumed = await watch(again, { since_seq: head + 9 });
      await waitFor(() => hasSynced(again, resumed.ack), { what: 'synced' });
      tt.same(
        eventsOf(watchFrames(again, resumed.ack)).map((e) => e.seq),
        [10, 11, 12, 13, 14, 15].map((i) => head + i),
        'since_seq resumes across a clean restart too',
      );
      await again.close();
    });

  await t.test('a watcher that stops reading ends with resync_required (counted) while another keeps receiving', { skip: sameOnEveryStore() }, async (tt) => {
    const control = await startControl(tt);
    const fast = new ResumingWatcher('fast', control.adminToken, { since_seq: 0 });
    await fast.connect(control.url);
    const node = await SimNode.join(control.url, control.dataDir, 'big');
    const slow = await session(control.url, { token: control.adminToken });
    const { ack, payload } = await watch(slow, { replay_limit: 0 });
    await waitFor(() => hasSynced(slow, ack), { what: 'slow synced' });
    (slow.socket as unknown as { _socket: Socket })._socket.pause();
    const blob = 'x'.repeat(512 * 1024);
    let sent = 0;
    let dropped = 0;
    for (let i = 1; i <= 120 && dropped === 0; i++) {
      node.services.set('big', String(i));
      await node.publish({ blob, i });
      sent++;
      dropped = metricValue(await scrape(control), 'acheron_watch_fanout_dropped_total') ?? 0;
    }
    tt.ok(dropped > 0, `the slow watch was dropped after ${sent} events of 512 KiB`);
    for (let i = 0; i < 5; i++) {
      node.services.set('big', `after-${i}`);
      await node.publish({ blob, i });
    }
    // The join, the upserts up to the drop, five more.
    await fast.reachCount(1 + sent + 5);
    const seqAt = (k: number): number => (historyOf(fast)[k - 1] as EmittedEvent).seq;
    const head = seqAt(1 + sent + 5);
    const text = await scrape(control);
    tt.equal(metricValue(text, 'acheron_watch_fanout_dropped_total'), 1, 'one delivery refused (acheron_watch_fanout_dropped_total)');
    tt.equal(metricValue(text, 'acheron_watch_ended_total', 'reason="resync_required"'), 1, 'one watch ended with resync_required');
    tt.equal(metricValue(text, 'acheron_watch_subscribers'), 1, 'only the fast watch remains');
    (slow.socket as unknown as { _socket: Socket })._socket.resume();
    const end = await slow.next((f) => f.ok === false && (f.error as { watch_id?: string } | undefined)?.watch_id === payload.watch_id, 30_000);
    tt.equal(end.error?.code, 'resync_required', 'the slow watcher gets resync_required naming its watch');
    const slowFrames = watchFrames(slow, ack);
    const slowEvents = eventsOf(slowFrames);
    tt.ok(slowEvents.length < sent, `the slow watcher got ${slowEvents.length} of ${sent + 5} events before its watch ended: its buffer was bounded`);
    tt.notOk(
      slowEvents.some((e) => e.seq > seqAt(1 + sent)),
      'nothing more was queued for it after the drop',
    );
    tt.equal(slowFrames.at(-1), end, 'nothing follows the error on that watch');
    tt.ok(slow.isOpen, 'the connection stays up; only the watch ended');
    // Watching again after the last seq received fills the gap: nothing was dropped silently.
    const last = learnedPosition(slowFrames) as number;
    const again = await watch(slow, { since_seq: last });
    await waitFor(() => hasSynced(slow, again.ack), { what: 'slow re-synced', timeoutMs: 30_000 });
    const all = expectAllValid(tt, fast, []);
    expectValid(
      tt,
      'slow, then resumed',
      [
        { request: { replay_limit: 0 }, frames: slowFrames },
        { request: { since_seq: last }, frames: watchFrames(slow, again.ack) },
      ],
      all,
    );
    const reached = learnedPosition(watchFrames(slow, again.ack)) ?? 0;
    if (files) tt.equal(reached, head, 'the resumed watch reaches the head');
    else tt.ok(reached >= head, `the resumed watch reaches the head (${reached} ≥ ${head})`);
    await slow.close();
    fast.close();
  });

  await t.test(
    "acheron_event_seq is the last event's: lease refreshes leave it (on etcd each is a revision head_seq follows), an upsert moves it",
    async (tt) => {
      const control = await startControl(tt);
      const node = await SimNode.provision(control.url, control.adminToken, 'refresher');
      node.services.set('a', '1');
      await node.publish();
      const admin = await session(control.url, { token: control.adminToken });
      const lastEvent = async (): Promise<number> => (await admin.call<{ seq: number }>('control.node_get', { node_id: 'refresher', view: 'stored' })).seq;
      const eventSeq = async (): Promise<number | undefined> => metricValue(await scrape(control), 'acheron_event_seq');
      const headSeq = async (): Promise<number> => (await watch(admin, { replay_limit: 0 })).payload.head_seq;
      const upserted = await lastEvent();
      tt.equal(await eventSeq(), upserted, "acheron_event_seq: the upsert's seq");
      const head = await headSeq();
      for (let i = 0; i < 5; i++) await node.peer.call('control.node_lease_refresh', { node_id: 'refresher' });
      const refreshedHead = await headSeq();
      if (files) tt.equal(refreshedHead, head, 'files: a refresh takes no seq');
      else tt.ok(refreshedHead > head, `etcd: head_seq followed the refreshes' revisions (${head} → ${refreshedHead})`);
      tt.equal(await lastEvent(), upserted, 'no event meanwhile');
      tt.equal(await eventSeq(), upserted, 'acheron_event_seq did not move with the refreshes');
      node.services.set('a', '2');
      await node.publish();
      const changed = await lastEvent();
      tt.ok(changed > upserted, 'the next upsert is an event');
      tt.equal(await eventSeq(), changed, 'acheron_event_seq moved with it');
      await admin.close();
      await node.peer.close();
    },
  );

  await t.test('policy: ALLOW_ADMIN=false refuses admins; ALLOW_USER=true still needs a project', { skip: sameOnEveryStore() }, async (tt) => {
    const control = await withEnv({ ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN: 'false', ACHERON_NODE_SERVICE_WATCH_ALLOW_USER: 'true' }, () => startControl(tt));
    const admin = await session(control.url, { token: control.adminToken });
    const refused = await admin.request('control.node_service_watch', {});
    tt.equal(refused.error?.code, 'forbidden', 'admin watch forbidden');
    tt.match(refused.error?.message, /ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN/, 'the reason names the setting');
    tt.equal((await admin.request('control.node_list')).ok, true, 'other admin ops still work');
    await admin.close();
    const user = await session(control.url, { token: control.userToken });
    const userRefused = await user.request('control.node_service_watch', {});
    tt.equal(userRefused.error?.code, 'forbidden', 'user watch forbidden without a project session');
    tt.match(userRefused.error?.message, /project/, 'the reason mentions the project session');
    await user.close();
    tt.equal(metricValue(await scrape(control), 'acheron_watch_subscribers'), 0, 'no watch started');
  });

  await t.test('a filtered watch that matches nothing gets progress frames after 10 s of silence, and resumes from them', async (tt) => {
    if (!quiet) throw new Error('the quiet watch was not opened');
    const { control, peer, ack, payload } = quiet;
    // The first silent stretch may come before any event (a slow start): its progress frame keeps the ack's head.
    const progress = await peer.next(
      (f) => f.type === 'control.node_service_watch_progress' && (f.payload as { head_seq: number }).head_seq > payload.head_seq,
      30_000,
    );
    const { watch_id: watchId, head_seq: progressHead } = progress.payload as { watch_id: string; head_seq: number };
    tt.equal(watchId, payload.watch_id, 'progress names the watch');
    const probe = await session(control.url, { token: control.adminToken });
    const head = (await watch(probe, { replay_limit: 0 })).payload.head_seq;
    tt.ok(
      progressHead > payload.head_seq && progressHead <= head,
      `progress head_seq ${progressHead} moved past the ack's ${payload.head_seq} (head now ${head})`,
    );
    tt.same(eventsOf(watchFrames(peer, ack)), [], 'no event reached the quiet watch');
    const resumed = await watch(probe, { node_id: 'quiet', since_seq: progressHead });
    tt.equal(resumed.payload.replayed, 0, 'resuming from the progress head replays nothing it never wanted');
    await probe.close();
    await peer.close();
  });
}
