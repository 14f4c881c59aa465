// A user watch from a since_seq this server has not delivered yet waits for it (etcd: another
// server's seq, a moment ahead). Its project deleted meanwhile, made again under its id or not, the
// watch ends with not_found naming it, as a running watch does; it registered after the deletion
// before, live and silent. A live watch whose project changes in what its session may see ends with
// resync_required; a new token alone ends only the watches of sessions attached with a token. The
// hub in process, on a real project store and the real watch policy.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CatalogStore, EventStream } from '../../../src/control/catalog-store.js';
import type { ConnectionPeer } from '../../../src/control/connection-peer.js';
import { FileProjectStore } from '../../../src/control/file-project-store.js';
import { ControlMetrics } from '../../../src/control/metrics.js';
import { attachSession } from '../../../src/control/policy.js';
import { WatchHub } from '../../../src/control/watch-hub.js';
import { watchAccess } from '../../../src/control/watch-policy.js';
import { tempDir } from '../../helpers/node.js';

const user = { kind: 'user' as const, tokenId: 'u', userId: 'u1', agentId: null };
const PROJECT = { project_id: 'p', mounts: [{ node_id: 'n1' }], access_policy: { actions: { read: 'open' as const, observe: 'open' as const } } };

/** An event stream at head 4 whose seq 5 arrives when the test says. */
function streamAwaitingSeq5(): EventStream & { arrive(): void } {
  let arrive = (): void => undefined;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  let headSeq = 4;
  return {
    get headSeq() {
      return headSeq;
    },
    lastEventSeq: 0,
    ringCapacity: 100,
    retainedAfter: 0,
    retained: () => [],
    window: () => ({}) as ReturnType<EventStream['window']>,
    onEvent: () => undefined,
    onGap: () => undefined,
    reach: (seq) => (seq > headSeq ? arrived : Promise.resolve()),
    arrive: () => {
      headSeq = 5;
      arrive();
    },
  };
}

/** What the hub pushed to its one watcher. */
const pushed: unknown[] = [];
const peer: ConnectionPeer = { id: 1, isOpen: true, bufferedBytes: 0, send: (frame) => void pushed.push(frame), sendFrame: () => undefined };

/** A user's watch from seq 5 started on a session of project p; `meanwhile` runs while it waits. */
async function watchFromSeq5(
  t: Test,
  meanwhile: (projects: FileProjectStore) => Promise<unknown>,
): Promise<{ outcome: Promise<void>; acks: unknown[]; hub: WatchHub; projects: FileProjectStore }> {
  const projects = await FileProjectStore.open(join(await tempDir(t), 'projects.journal'), pino({ level: 'silent' }));
  t.teardown(() => projects.close());
  await projects.upsert(PROJECT);
  const events = streamAwaitingSeq5();
  const hub = new WatchHub(events, new ControlMetrics({} as CatalogStore, events, 'test:1', async () => undefined), projects);
  t.teardown(() => hub.close());
  const { session } = attachSession('p', projects.find('p'), undefined, user);
  const scope = watchAccess(user, { allowAdmin: true, allowUser: true }, session, projects);
  if ('refused' in scope) throw new Error(scope.refused);
  const acks: unknown[] = [];
  const outcome = hub.watch(peer, { since_seq: 4 + 1 }, scope, (ack) => acks.push(ack));
  await meanwhile(projects);
  events.arrive();
  await outcome.catch(() => undefined);
  return { outcome, acks, hub, projects };
}

const ended = { code: 'not_found', message: 'project p was deleted: the watch has ended' };

t.test('its project deleted while the watch waits: not_found, nothing registered', async (t) => {
  const { outcome, acks, hub } = await watchFromSeq5(t, (projects) => projects.delete('p'));
  await t.rejects(outcome, ended);
  t.same(acks, [], 'no ack');
  t.equal(hub.size, 0, 'no watch left behind');
});

t.test('deleted and made again while it waits: the same (the new project is another)', async (t) => {
  const { outcome, acks, hub } = await watchFromSeq5(t, async (projects) => {
    await projects.delete('p');
    await projects.upsert(PROJECT);
  });
  await t.rejects(outcome, ended);
  t.same(acks, [], 'no ack');
  t.equal(hub.size, 0, 'no watch left behind');
});

t.test('the project still there: the watch starts once the seq has arrived', async (t) => {
  const { outcome, acks, hub } = await watchFromSeq5(t, async () => undefined);
  await t.resolves(outcome);
  t.match(acks, [{ watch_id: 'w1', head_seq: 5 }]);
  t.equal(hub.size, 1);
});

t.test("a live watch ends with resync_required when its project's nodes, policy or token change; not for its name", async (t) => {
  const { outcome, hub, projects } = await watchFromSeq5(t, async () => undefined);
  await outcome;
  pushed.length = 0;
  await projects.upsert({ project_id: 'p', name: 'renamed' });
  t.equal(hub.size, 1, 'a new name: the watch goes on');
  await projects.upsert({
    project_id: 'p',
    mounts: [{ node_id: 'n1', mount_path: '/nodes/n1' }],
    access_policy: { actions: { observe: 'open' as const, read: 'open' as const } },
  });
  t.equal(hub.size, 1, 'the same nodes (another mount path) and the same policy (keys in another order): the watch goes on');
  t.same(pushed, [], 'nothing pushed');
  await projects.upsert({ project_id: 'p', mounts: [{ node_id: 'n1' }, { node_id: 'n2' }] });
  t.equal(hub.size, 0, 'another node mounted: the watch ended');
  t.match(pushed, [
    {
      type: 'control.error',
      id: null,
      ok: false,
      error: {
        code: 'resync_required',
        watch_id: 'w1',
        message: 'project p changed (its nodes or policy, or it got or lost its token): read the catalog again and watch',
      },
    },
  ]);
});

t.test('a first project token ends the watch too (an unset action needs the token from then on)', async (t) => {
  const { outcome, hub, projects } = await watchFromSeq5(t, async () => undefined);
  await outcome;
  pushed.length = 0;
  await projects.rotateToken('p');
  t.equal(hub.size, 0);
  t.match(pushed, [{ error: { code: 'resync_required', watch_id: 'w1' } }]);
});

/** Two live watches of project p (which has a token): one of a session attached with it, one without. */
async function holderAndTokenless(t: Test): Promise<{ hub: WatchHub; projects: FileProjectStore; holder: unknown[]; tokenless: unknown[] }> {
  const projects = await FileProjectStore.open(join(await tempDir(t), 'projects.journal'), pino({ level: 'silent' }));
  t.teardown(() => projects.close());
  await projects.upsert({ ...PROJECT, token: 'T1' });
  const events = streamAwaitingSeq5();
  const hub = new WatchHub(events, new ControlMetrics({} as CatalogStore, events, 'test:1', async () => undefined), projects);
  t.teardown(() => hub.close());
  const watcher = async (id: number, token: string | undefined): Promise<unknown[]> => {
    const frames: unknown[] = [];
    const connection: ConnectionPeer = { id, isOpen: true, bufferedBytes: 0, send: (frame) => void frames.push(frame), sendFrame: () => undefined };
    const { session } = attachSession('p', projects.find('p'), token, user);
    const scope = watchAccess(user, { allowAdmin: true, allowUser: true }, session, projects);
    if ('refused' in scope) throw new Error(scope.refused);
    await hub.watch(connection, {}, scope, () => undefined);
    frames.length = 0; // the synced marker
    return frames;
  };
  const holder = await watcher(11, 'T1');
  const tokenless = await watcher(12, undefined);
  t.equal(hub.size, 2);
  return { hub, projects, holder, tokenless };
}

const newToken = 'project p has a new project token (the one this session attached with may no longer count): read the catalog again and watch';

t.test('a new project token alone ends the watch of the session attached with the token, not of one without', async (t) => {
  const { hub, projects, holder, tokenless } = await holderAndTokenless(t);
  await projects.upsert({ project_id: 'p', token: 'T1' });
  t.equal(hub.size, 2, 'the same token again: both go on');
  await projects.rotateToken('p');
  t.equal(hub.size, 1, 'one watch left');
  t.match(holder, [{ type: 'control.error', id: null, ok: false, error: { code: 'resync_required', watch_id: 'w1', message: newToken } }]);
  t.equal(holder.length, 1);
  t.same(tokenless, [], 'the session without the token sees as before: its watch goes on, nothing pushed');
  await projects.upsert({ project_id: 'p', token: 'T3' });
  t.equal(hub.size, 1, 'a token set by an upsert: the same');
  t.same(tokenless, []);
});

t.test("a change of the project's policy ends both", async (t) => {
  const { hub, projects, holder, tokenless } = await holderAndTokenless(t);
  await projects.upsert({ project_id: 'p', access_policy: { actions: { read: 'open', observe: 'open', invoke: 'open' } } });
  t.equal(hub.size, 0);
  const changed = {
    code: 'resync_required',
    message: 'project p changed (its nodes or policy, or it got or lost its token): read the catalog again and watch',
  };
  t.match(holder, [{ error: { ...changed, watch_id: 'w1' } }]);
  t.match(tokenless, [{ error: { ...changed, watch_id: 'w1' } }]);
});
