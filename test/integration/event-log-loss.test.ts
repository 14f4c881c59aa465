// SPEC §6 / issue 10 item 4, against a live `acheron control`: a crash, and storage that kept only
// part of the event log's last line, an event watchers had already seen. After the restart its seq
// is never handed out again, and a watcher resuming from before the loss (or from the lost seq, or
// from ahead of the head) gets resync_required, never a silent miss; the loss survives a clean
// restart. A torn line that was never acknowledged is the same case from the log's point of view.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyOf, ResumingWatcher, SimNode, watchFrames } from '../helpers/catalog-sim.js';
import { session, startControl, type RawPeer } from '../helpers/control.js';
import { waitFor } from '../helpers/process.js';

/** Watches on `peer` until synced: the ack's head_seq and the seqs replayed. */
async function replayed(peer: RawPeer, request: Record<string, unknown>): Promise<{ head: number; seqs: number[] }> {
  const ack = await peer.request('control.node_service_watch', request);
  if (ack.ok !== true) throw new Error(`watch ${JSON.stringify(request)} refused: ${JSON.stringify(ack.error)}`);
  const frames = await waitFor(
    () => {
      const all = watchFrames(peer, ack);
      return all.some((f) => f.type === 'control.node_service_watch_synced') && all;
    },
    { what: `watch ${JSON.stringify(request)} synced` },
  );
  return {
    head: (ack.payload as { head_seq: number }).head_seq,
    seqs: frames.filter((f) => f.type === 'control.node_service_event').map((f) => (f.payload as { seq: number }).seq),
  };
}

t.test('a torn last line of an event watchers saw: its seq is never reused; resuming from before it gets resync_required', async (tt) => {
  let control = await startControl(tt);
  const ports = { ws: Number(new URL(control.url).port), http: Number(new URL(control.httpUrl).port) };
  const reference = new ResumingWatcher('reference', control.adminToken, { since_seq: 0 });
  await reference.connect(control.url);
  const node = await SimNode.join(control.url, control.dataDir, 'torn');
  for (let version = 1; version <= 3; version++) {
    node.services.set('svc', String(version));
    await node.publish();
  }
  // seq 1 is the join (online), 2..4 the upserts; the reference saw all four.
  await reference.reach(4);
  tt.same(
    historyOf(reference).map((e) => e.seq),
    [1, 2, 3, 4],
  );

  // A crash, and storage that kept only part of the last line (what the watchers saw as seq 4).
  tt.equal((await control.kill9()).signal, 'SIGKILL');
  const current = join(control.dataDir, 'node-service-events.ndjson');
  const text = await readFile(current, 'utf8');
  const lastLine = text.lastIndexOf('{"seq":4,');
  tt.ok(lastLine > 0, 'seq 4 is the last line');
  await writeFile(current, text.slice(0, lastLine + 40));
  control = await startControl(tt, { dataDir: control.dataDir, ports });
  const log = await readFile(control.logFile, 'utf8');
  tt.match(log, /the last line \(40 bytes\) was torn by a crash; skipped/, 'the start reports the torn line and goes on');
  tt.match(log, /seqs 4\.\.5 are never used again; watchers resuming from before get resync_required/, 'and that its seq is spent');

  const peer = await session(control.url, { token: control.adminToken });
  const expectResync = async (since: number, what: string): Promise<void> => {
    const refused = await peer.request('control.node_service_watch', { since_seq: since });
    tt.equal(refused.error?.code, 'resync_required', `since_seq ${since} (${what}): resync_required (${refused.error?.message ?? JSON.stringify(refused)})`);
    tt.equal(refused.error?.field, '/since_seq', `since_seq ${since}: names /since_seq`);
  };
  await expectResync(4, 'the torn event, which a watcher saw');
  await expectResync(3, 'before the loss: a resume would cross it');
  await expectResync(0, 'from the start: it crosses the loss too');
  await expectResync(9, 'ahead of the head');

  await node.reconnect(control.url);
  node.services.set('svc', '4');
  await node.publish();
  const fresh = await replayed(peer, { replay_limit: 10 });
  tt.same(fresh.seqs, [6], 'the new event got seq 6: 4 (the torn one) and 5 are never used again');
  tt.equal(fresh.head, 6);
  await expectResync(4, 'the torn seq, after a new event: before the fix it replayed nothing, silently');
  tt.same((await replayed(peer, { since_seq: 5 })).seqs, [6], 'since_seq 5 (the head after the restart) resumes normally');
  const relist = await peer.request('control.node_service_watch', { since_seq: reference.position as number });
  tt.equal(relist.error?.code, 'resync_required', `the reference, resuming after seq ${String(reference.position)}, is told to relist`);
  tt.same(
    (await peer.call<{ services: Array<{ version: string }> }>('control.node_service_get', { node_id: 'torn' })).services.map((s) => s.version),
    ['4'],
    'the catalog has the new upsert',
  );

  // The loss is on disk: a clean restart keeps refusing resumes from before it and keeps counting up.
  await peer.close();
  reference.close();
  control = await control.restart();
  const after = await session(control.url, { token: control.adminToken });
  tt.equal(
    (await after.request('control.node_service_watch', { since_seq: 4 })).error?.code,
    'resync_required',
    'after a clean restart: since_seq 4 still resync_required',
  );
  tt.equal((await after.request('control.node_service_watch', { since_seq: 6 })).ok, true, 'since_seq 6 resumes');
  await node.reconnect(control.url);
  node.services.set('svc', '5');
  await node.publish();
  tt.same((await replayed(after, { replay_limit: 1 })).seqs, [7], 'the next event is seq 7');
  tt.equal((await readFile(control.logFile, 'utf8')).split('torn by a crash').length - 1, 1, 'no torn line at the clean restart');
  await after.close();
  node.peer.socket.terminate();
});
