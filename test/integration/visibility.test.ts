// SPEC §8 service visibility over the control protocol: a user session sees a service in catalog
// replies (node_get in both views, node_list's count) and in watch events (full and delta shapes,
// live, replayed from the ring with since_seq, and replayed from disk after a restart) only when the
// service's permissions admit it, as WorldFS shows it; admins see everything. A service whose
// permissions change moves into (added) or out of (removed) a user's view, so a user that applies
// its delta events to what it read ends with what node_get shows it.
import t, { type Test } from 'tap';
import { applyDefaults } from '../../src/manifest/index.js';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import type { CatalogDeltaPayload, CatalogEventPayload, NodeListReply, ServiceDescriptor, StoredNode } from '../../src/protocol/types.gen.js';
import { session, startControl, type RawPeer, type RunningControl } from '../helpers/control.js';
import { withEnv } from '../helpers/process.js';

t.setTimeout(120_000);

type Permissions = ServiceDescriptor['permissions'];
const USERS: Permissions = { default: 'deny-by-default', allow_roles: ['user'] };
const ADMINS: Permissions = { default: 'deny-by-default', allow_roles: ['admin'] };
const TOKEN: Permissions = { default: 'deny-by-default', allow_roles: ['user'], require_project_token: true };
const service = (id: string, version: string, permissions: Permissions): ServiceDescriptor =>
  applyDefaults({ service_id: id, kind: 'test', version, permissions, runtime: { args: [`--secret-of-${id}-${version}`] } }, 'n1');

const PROJECT_TOKEN = 'p-project-secret-of-16';
const control = await withEnv({ ACHERON_NODE_SERVICE_WATCH_ALLOW_USER: 'true' }, () => startControl(t));
const tokens = await FileTokenStore.open(control.dataDir);
const userToken = (await tokens.createUser('alice', null)).token;

async function peer(c: RunningControl, token: string, projectToken?: string | null): Promise<RawPeer> {
  const p = await session(c.url, { token });
  t.teardown(() => p.socket.terminate());
  if (projectToken !== null) await p.call('control.session_attach', { project_id: 'p', ...(projectToken ? { project_token: projectToken } : {}) });
  return p;
}

const admin = await peer(control, control.adminToken, null);
await admin.call('control.node_join', { join_token: 'admin-provisioned', node_id: 'n1' });
await admin.call('control.project_upsert', {
  project_id: 'p',
  token: PROJECT_TOKEN,
  mounts: [{ node_id: 'n1' }],
  access_policy: { actions: { read: 'open', observe: 'open' } },
});
const upsert = (services: ServiceDescriptor[]): Promise<unknown> => admin.call('control.node_service_upsert', { node_id: 'n1', services });
await upsert([service('open', '1', USERS), service('hidden', '1', ADMINS), service('token-only', '1', TOKEN), service('leaving', '1', USERS)]);

const ids = (services: ReadonlyArray<{ service_id: string }>): string[] => services.map((s) => s.service_id).sort();
const user = await peer(control, userToken);
const userWithToken = await peer(control, userToken, PROJECT_TOKEN);

/** What a session reads of n1: node_get (published, stored and its hashes) and node_list's count. */
async function reads(p: RawPeer): Promise<{ published: string[]; stored: string[]; hashes: string[]; count: number }> {
  const published = await p.call<StoredNode>('control.node_get', { node_id: 'n1' });
  const stored = await p.call<StoredNode>('control.node_get', { node_id: 'n1', view: 'stored' });
  const list = await p.call<NodeListReply>('control.node_list');
  return {
    published: ids(published.services),
    stored: ids(stored.services),
    hashes: Object.keys(stored.service_hashes).sort(),
    count: list.nodes.find((n) => n.node_id === 'n1')?.service_count ?? -1,
  };
}
// Read before the changes below; tap ends the file once it is idle after a first subtest, so all is done before it.
const firstReads = { admin: await reads(admin), user: await reads(user), withToken: await reads(userWithToken) };

const EVENT = 'control.node_service_event';
type Watched = { watch_id: string; replay: boolean };

/** The events of a watch (its ack first, then everything up to its synced marker is in). */
async function watch(p: RawPeer, request: Record<string, unknown>): Promise<() => Array<Record<string, unknown>>> {
  const ack = await p.call<{ watch_id: string }>('control.node_service_watch', request);
  await p.next((f) => f.type === 'control.node_service_watch_synced' && (f.payload as Watched).watch_id === ack.watch_id);
  return () => p.frames.filter((f) => f.type === EVENT && (f.payload as Watched).watch_id === ack.watch_id).map((f) => f.payload as Record<string, unknown>);
}

/** Every service id an event names, in its catalog, its descriptors and its delta. */
function named(event: Record<string, unknown>): string[] {
  const full = event as unknown as CatalogEventPayload;
  const lean = event as unknown as CatalogDeltaPayload;
  const delta = full.service_delta;
  return [
    ...(full.services ?? []).map((s) => s.service_id),
    ...(lean.changed_services ?? []).map((s) => s.service_id),
    ...[...delta.added, ...delta.updated, ...delta.removed].map((e) => e.service_id),
  ];
}

/** A node's services after delta events applied to what was read (as WorldFS's mirror does it). */
function applied(t: Test, read: StoredNode, events: ReadonlyArray<Record<string, unknown>>): Map<string, string> {
  const services = new Map(read.services.map((s) => [s.service_id, read.service_hashes[s.service_id] as string]));
  for (const event of events as unknown as CatalogDeltaPayload[]) {
    if (event.seq <= read.seq) continue;
    const delta = event.service_delta;
    for (const e of delta.removed) t.equal(services.get(e.service_id), e.hash, `seq ${event.seq}: removed ${e.service_id} is what the user had`);
    for (const e of delta.updated) t.equal(services.get(e.service_id), e.previous_hash, `seq ${event.seq}: updated ${e.service_id} is what the user had`);
    for (const e of delta.added) t.notOk(services.has(e.service_id), `seq ${event.seq}: added ${e.service_id} is new to the user`);
    for (const e of delta.removed) services.delete(e.service_id);
    for (const e of [...delta.added, ...delta.updated]) services.set(e.service_id, e.hash);
  }
  return services;
}

const watchers = {
  admin: { full: await watch(admin, { replay_limit: 0 }), delta: await watch(admin, { replay_limit: 0, include: 'delta' }) },
  user: { full: await watch(user, { replay_limit: 0 }), delta: await watch(user, { replay_limit: 0, include: 'delta' }) },
  withToken: { delta: await watch(userWithToken, { replay_limit: 0, include: 'delta' }) },
};
const userRead = await user.call<StoredNode>('control.node_get', { node_id: 'n1', view: 'stored' });
const tokenRead = await userWithToken.call<StoredNode>('control.node_get', { node_id: 'n1', view: 'stored' });
// Every kind of change: a hidden service updated and one added; a shown one updated, one removed,
// one hidden from now on (its permissions changed), one shown from now on.
await upsert([service('open', '2', USERS), service('hidden', '2', ADMINS), service('token-only', '1', TOKEN), service('leaving', '1', USERS)]);
await upsert([service('open', '2', USERS), service('hidden', '3', USERS), service('token-only', '2', ADMINS), service('secret-new', '1', ADMINS)]);
const EVENTS = 2;
const userFinal = await user.call<StoredNode>('control.node_get', { node_id: 'n1', view: 'stored' });
const tokenFinal = await userWithToken.call<StoredNode>('control.node_get', { node_id: 'n1', view: 'stored' });

async function all(watched: () => Array<Record<string, unknown>>): Promise<Array<Record<string, unknown>>> {
  for (let i = 0; i < 200 && watched().length < EVENTS; i++) await new Promise((r) => setTimeout(r, 50));
  return watched();
}

/** What a user without the project token must (not) get, in both shapes. */
function checkUser(t: Test, full: Array<Record<string, unknown>>, delta: Array<Record<string, unknown>>): void {
  for (const [name, got] of [
    ['full', full],
    ['delta', delta],
  ] as const) {
    t.equal(got.length, EVENTS, `${name}: one event per change`);
    t.same(
      got.flatMap(named).filter((id) => id === 'secret-new' || id === 'token-only'),
      [],
      `${name}: no service hidden from the user is named`,
    );
    t.notOk(got[0] && named(got[0]).includes('hidden'), `${name}: nor the update of a service that was and stays hidden`);
    t.notMatch(JSON.stringify(got), /--secret-of-(secret-new|token-only|hidden-[12])/, `${name}: no descriptor hidden from the user`);
  }
  t.same(
    (delta as unknown as CatalogDeltaPayload[]).map((e) => [ids(e.service_delta.added), ids(e.service_delta.updated), ids(e.service_delta.removed)]),
    [
      [[], ['open'], []],
      [['hidden'], [], ['leaving']],
    ],
    'delta: a service counts as added once its permissions admit the user',
  );
  t.same(Object.fromEntries(applied(t, userRead, delta)), userFinal.service_hashes, 'the user applying its delta events ends with what node_get shows it');
}

const fromRing = { full: await watch(user, { since_seq: userRead.seq }), delta: await watch(user, { since_seq: userRead.seq, include: 'delta' }) };
const live = {
  user: { full: await all(watchers.user.full), delta: await all(watchers.user.delta) },
  admin: { full: await all(watchers.admin.full), delta: await all(watchers.admin.delta) },
  withToken: await all(watchers.withToken.delta),
};
// Replayed from disk: the server restarted on its data dir, watched with since_seq.
const restarted = await withEnv({ ACHERON_NODE_SERVICE_WATCH_ALLOW_USER: 'true' }, () => control.restart());
const userAgain = await peer(restarted, userToken);
const fromDisk = { full: await watch(userAgain, { since_seq: userRead.seq }), delta: await watch(userAgain, { since_seq: userRead.seq, include: 'delta' }) };
const adminFromDisk = await watch(await peer(restarted, restarted.adminToken, null), { since_seq: userRead.seq });

t.test('node_get and node_list: a user gets only the services their permissions admit; an admin gets all', async (t) => {
  const all = ['hidden', 'leaving', 'open', 'token-only'];
  t.same(firstReads.admin, { published: all, stored: all, hashes: all, count: 4 }, 'admin');
  const mine = ['leaving', 'open'];
  t.same(firstReads.user, { published: mine, stored: mine, hashes: mine, count: 2 }, 'user without the project token');
  const withToken = ['leaving', 'open', 'token-only'];
  t.same(firstReads.withToken, { published: withToken, stored: withToken, hashes: withToken, count: 3 }, 'user with the project token');
});

t.test('live events: a user never gets a hidden service, an admin gets every change', async (t) => {
  checkUser(t, live.user.full, live.user.delta);
  const adminDelta = live.admin.delta as unknown as CatalogDeltaPayload[];
  t.ok(
    adminDelta.some((e) => e.service_delta.added.some((a) => a.service_id === 'secret-new')),
    'the admin gets the hidden service added',
  );
  t.match(JSON.stringify(live.admin.full), /--secret-of-secret-new-1/, "the admin's full events carry the hidden descriptor");
  const tokenDelta = live.withToken;
  t.same(Object.fromEntries(applied(t, tokenRead, tokenDelta)), tokenFinal.service_hashes, 'so does the user with the project token');
  t.ok(
    (tokenDelta as unknown as CatalogDeltaPayload[]).some((e) => e.service_delta.removed.some((r) => r.service_id === 'token-only')),
    'with the token: token-only was shown, so it is removed once hidden',
  );
});

t.test('replayed from the ring with since_seq: the same', async (t) => {
  checkUser(t, fromRing.full(), fromRing.delta());
});

t.test('replayed from disk after a restart: the same', async (t) => {
  checkUser(t, fromDisk.full(), fromDisk.delta());
  t.match(JSON.stringify(adminFromDisk()), /--secret-of-secret-new-1/, 'the admin still gets everything');
});
