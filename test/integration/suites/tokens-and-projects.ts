// Tokens and projects as the control store keeps them, one suite for every store (SPEC §6 Auth, §8):
// run by control-protocol.test.ts on the file store (one server) and by etcd-store.test.ts on etcd
// (two servers on one etcd). With two servers, `a` is where things are done and `b` must agree at
// once: a token made or revoked anywhere holds on every server, a revoked or rotated token's
// sessions end on every server, a join token is spent once across servers, projects are shared, and
// a project token replaced anywhere takes its rights from the sessions of the old one everywhere.
import type { Test } from 'tap';
import { acheron, connect, errorsCounted, eventually, session, type Frame, type RawPeer, type RunningControl } from '../../helpers/control.js';
import { service, SimNode } from '../../helpers/catalog-sim.js';
import { waitFor, type ShResult } from '../../helpers/process.js';
import { settledWithin } from '../../helpers/settle.js';

export interface StoreEnv {
  /** Servers on one store (a single one for the file store). */
  servers: RunningControl[];
  adminToken: string;
  userToken: string;
  /** `acheron token <args>` on the store (its data dir, or etcd). */
  token(args: string[]): Promise<ShResult>;
}

/** The server where a case acts, and the one that must agree with it (the same one when alone). */
const sides = (env: StoreEnv): { a: RunningControl; b: RunningControl } => ({ a: env.servers[0] as RunningControl, b: env.servers.at(-1) as RunningControl });

/** How the peer's connection closed, or undefined when it is still open after `ms`. */
const closedWithin = (peer: RawPeer, ms: number): Promise<{ code: number } | undefined> => settledWithin(peer.closed, ms, undefined);

function expectError(tt: Test, frame: Frame, code: string, field: string | undefined, what: string): void {
  tt.equal(frame.error?.code, code, `${what}: code ${code} (${frame.error?.message ?? JSON.stringify(frame)})`);
  if (field !== undefined) tt.equal(frame.error?.field, field, `${what}: names the field ${field}`);
}

async function cli(tt: Test, env: StoreEnv, args: string[]): Promise<string> {
  const r = await env.token(args);
  tt.equal(r.code, 0, `acheron token ${args[0]}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function joinToken(tt: Test, env: StoreEnv, ttlMs?: number): Promise<{ id: string; token: string }> {
  const out = await cli(tt, env, ['join', ...(ttlMs === undefined ? [] : ['--ttl-ms', String(ttlMs)]), '--json']);
  return JSON.parse(out) as { id: string; token: string };
}

const principal = async (peer: RawPeer): Promise<string> => (await peer.call<{ principal: string }>('control.version', { protocol: 'unified-v2' })).principal;

export const TOKEN_AND_PROJECT_CASES: Record<string, (tt: Test, env: StoreEnv) => Promise<void>> = {
  'tokens made and revoked by the CLI while the servers run': async (tt, env) => {
    const { a, b } = sides(env);
    const entry = JSON.parse(await cli(tt, env, ['create', '--user', 'alice', '--agent', 'bot', '--json'])) as {
      id: string;
      token: string;
      user_id: string;
      agent_id: string;
    };
    tt.match(entry, { user_id: 'alice', agent_id: 'bot' });
    const onA = await session(a.url, { token: entry.token });
    const onB = await session(b.url, { token: entry.token });
    tt.equal(await principal(onB), 'user', 'the new token works at once, on every server');
    const other = await session(b.url, { token: env.userToken });

    await cli(tt, env, ['revoke', entry.id]);
    for (const server of new Set([a, b])) {
      const refused = await errorsCounted(server, 'unauthorized');
      tt.equal((await connect(server.url, { token: entry.token })).status, 401, `${server.url}: a new connection with the revoked token gets 401 at once`);
      tt.equal(await errorsCounted(server, 'unauthorized'), refused + 1, `${server.url}: counted in acheron_errors_total{code="unauthorized"}`);
    }
    for (const peer of new Set([onA, onB]))
      tt.equal((await closedWithin(peer, 15_000))?.code, 4001, "the revoked token's sessions are closed with 4001 on every server");
    tt.ok(other.isOpen, 'other sessions stay');
    tt.equal(await principal(other), 'user', 'and are served');
    await other.close();
  },

  'a rotated token: the old secret stops working everywhere, also for its open sessions': async (tt, env) => {
    const { a, b } = sides(env);
    const created = JSON.parse(await cli(tt, env, ['create', '--user', 'bob', '--json'])) as { id: string; token: string };
    const bob = await session(a.url, { token: created.token });
    const fresh = JSON.parse(await cli(tt, env, ['rotate', created.id, '--json'])) as { id: string; token: string };
    tt.equal(fresh.id, created.id, 'same identity');
    tt.not(fresh.token, created.token, 'new secret');
    tt.equal((await connect(b.url, { token: created.token })).status, 401, 'the old secret is refused');
    const renewed = await session(b.url, { token: fresh.token });
    tt.equal(await principal(renewed), 'user', 'the new secret works');
    tt.equal((await closedWithin(bob, 15_000))?.code, 4001, 'the session of the old secret is closed with 4001');
    await renewed.close();
  },

  'join tokens are single-use across servers and expire': async (tt, env) => {
    const { a, b } = sides(env);
    const { id: usedId, token: used } = await joinToken(tt, env);
    const first = await session(a.url, { token: used });
    const second = await session(b.url, { token: used });
    await first.call('control.node_join', { join_token: used, node_id: 'race-1' });
    expectError(
      tt,
      await second.request('control.node_join', { join_token: used, node_id: 'race-2' }),
      'unauthorized',
      '/join_token',
      'the second join with the same token, on another server',
    );
    expectError(tt, await second.request('control.node_list'), 'forbidden', undefined, 'the refused joiner is still only a joiner');
    tt.equal((await connect(b.url, { token: used })).status, 401, 'a used join token is refused at the upgrade');

    const { id: freshId, token: fresh } = await joinToken(tt, env);
    const { token: expired } = await joinToken(tt, env, 1);
    const peer = await session(b.url, { token: fresh });
    expectError(
      tt,
      await peer.request('control.node_join', { join_token: used, node_id: 'reuse' }),
      'unauthorized',
      '/join_token',
      'a used join token in the payload',
    );
    expectError(
      tt,
      await peer.request('control.node_join', { join_token: expired, node_id: 'late' }),
      'unauthorized',
      '/join_token',
      'an expired join token in the payload',
    );
    expectError(
      tt,
      await peer.request('control.node_join', { join_token: 'ach_join_made-up', node_id: 'fake' }),
      'unauthorized',
      '/join_token',
      'an unknown join token in the payload',
    );
    tt.equal((await connect(a.url, { token: expired })).status, 401, 'an expired join token is refused at the upgrade');
    const joined = await peer.call<{ node_id: string }>('control.node_join', { join_token: fresh, node_id: 'late-but-fine' });
    tt.equal(joined.node_id, 'late-but-fine', "refused attempts did not spend the connection's own token");
    for (const server of new Set([a, b])) {
      const admin = await session(server.url, { token: env.adminToken });
      const { nodes } = await admin.call<{ nodes: Array<{ node_id: string }> }>('control.node_list');
      tt.notOk(
        nodes.some((n) => ['race-2', 'reuse', 'late', 'fake'].includes(n.node_id)),
        `${server.url}: no refused join created a node`,
      );
      await admin.close();
    }
    const listed = JSON.parse(await cli(tt, env, ['list', '--json'])) as { tokens: Array<{ id: string; used_ms?: number | null }> };
    const spent = new Set(listed.tokens.filter((e) => typeof e.used_ms === 'number').map((e) => e.id));
    tt.ok(spent.has(usedId) && spent.has(freshId), 'acheron token list shows both spent');
    await Promise.all([first.close(), second.close(), peer.close()]);
  },

  'projects made through one server hold on the others': async (tt, env) => {
    const { a, b } = sides(env);
    const adminA = await session(a.url, { token: env.adminToken });
    const adminB = await session(b.url, { token: env.adminToken });
    await adminA.call('control.project_upsert', {
      project_id: 'shared',
      name: 'Shared',
      mounts: [{ node_id: 'n9' }],
      access_policy: { actions: { read: 'open' } },
    });
    const got = await eventually(adminB, 'control.project_get', { project_id: 'shared' }, 'the project on the other server', 5_000);
    tt.match(got.payload, { name: 'Shared', has_token: false }, 'made on one server, read on the other');

    // Without --json, as `acheron token rotate`: the new token alone on the last line (`| tail -1 > file`).
    const rotated = await acheron(['project', 'rotate-token', 'shared', '--control-url', b.url, '--token', env.adminToken]);
    tt.equal(rotated.code, 0, rotated.stderr);
    const [rotatedId, token] = rotated.stdout.trimEnd().split('\n');
    tt.equal(rotatedId, 'shared', 'the project first');
    tt.match(token, /^ach_project_\S+$/, 'then the token, last');
    const user = await session(a.url, { token: env.userToken });
    const attached = await eventually(
      user,
      'control.session_attach',
      { project_id: 'shared', project_token: token },
      'the rotated project token on the other server',
      5_000,
    );
    tt.equal(attached.ok, true, 'a project token rotated through one server works on the other');
    expectError(
      tt,
      await user.request('control.session_attach', { project_id: 'shared', project_token: 'ach_project_wrong' }),
      'unauthorized',
      '/project_token',
      'a wrong project token',
    );

    const { projects } = await adminA.call<{ projects: Array<{ project_id: string; has_token: boolean }> }>('control.project_list');
    tt.ok(
      projects.some((p) => p.project_id === 'shared' && p.has_token),
      'listed with its token',
    );

    await adminB.call('control.project_delete', { project_id: 'shared' });
    const gone = await waitFor(
      async () => {
        const frame = await adminA.request('control.project_get', { project_id: 'shared' });
        return frame.ok === false ? frame : undefined;
      },
      { what: 'the deletion on the other server', timeoutMs: 5_000 },
    );
    expectError(tt, gone, 'not_found', '/project_id', 'deleted through one server, gone on the other');
    expectError(tt, await adminA.request('control.project_delete', { project_id: 'shared' }), 'not_found', '/project_id', 'deleting it again');
    await Promise.all([adminA.close(), adminB.close(), user.close()]);
  },

  'a new project token takes its rights from the sessions attached with the old one, on every server': async (tt, env) => {
    const { a, b } = sides(env);
    const nodeId = 'pt-node';
    // A node of two services, its tunnel on `a`: every relayed operation is answered ok (no driver behind it).
    const node = await SimNode.provision(a.url, env.adminToken, nodeId);
    const publish = (version: string): Promise<unknown> =>
      node.peer.call('control.node_service_upsert', {
        node_id: nodeId,
        services: [
          { ...service(nodeId, 'users', version), permissions: { default: 'deny', allow_roles: ['user'] } },
          { ...service(nodeId, 'token-only', version), permissions: { default: 'deny', allow_roles: ['user'], require_project_token: true } },
        ],
      });
    await publish('1');
    node.peer.socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as Frame;
      const relayId = (frame.payload as { relay_id?: string } | undefined)?.relay_id;
      if (frame.type === 'control.relay_request' && relayId)
        node.peer.send({ channel: 'control', type: 'control.relay_reply', id: `reply-${relayId}`, payload: { relay_id: relayId, ok: true, result: {} } });
    });
    await node.peer.call('control.relay_ready', { node_id: nodeId });
    const adminA = await session(a.url, { token: env.adminToken });
    const OLD = 'ach_project_before-the-leak';
    const project = { project_id: 'leaky', mounts: [{ node_id: nodeId }], access_policy: { actions: { read: 'open', observe: 'open', invoke: 'token' } } };
    await adminA.call('control.project_upsert', { ...project, token: OLD });

    // A user session on `b` attached with the token, with the watch a WorldFS mount keeps for itself.
    const user = await session(b.url, { token: env.userToken });
    const attach = (token: string): Promise<Frame> =>
      eventually(user, 'control.session_attach', { project_id: 'leaky', project_token: token }, 'the project on b', 5_000);
    tt.match((await attach(OLD)).payload, { has_project_token: true, actions: { invoke: 'allowed' } }, 'attached with the token');
    const watchNode = (): Promise<{ watch_id: string }> =>
      user.call<{ watch_id: string }>('control.node_service_watch', { node_id: nodeId, replay_limit: 0, purpose: 'worldfs' });
    let watch = await watchNode();
    let relays = 0;
    const invoke = (serviceId: string): Promise<{ ok: boolean; errno?: string; message?: string }> =>
      user.call('control.relay', {
        node_id: nodeId,
        request_id: `leaky-${relays++}`,
        op: 'invoke',
        path: `/services/${serviceId}/control/invoke.json`,
        data: Buffer.from('{}').toString('base64'),
        size: 2,
      });
    const listed = async (): Promise<string[]> =>
      (await user.call<{ services: Array<{ service_id: string }> }>('control.node_get', { node_id: nodeId })).services.map((s) => s.service_id).sort();
    /** The services of the node's next event at this watch, after the node publishes `version`. */
    const inNextEvent = async (version: string): Promise<string[]> => {
      const event = user.next((f) => f.type === 'control.node_service_event' && (f.payload as { watch_id?: string }).watch_id === watch.watch_id);
      await publish(version);
      return ((await event).payload as { services: Array<{ service_id: string }> }).services.map((s) => s.service_id).sort();
    };
    const holding = async (what: string): Promise<void> => {
      tt.match(await invoke('token-only'), { ok: true }, `${what}: a relayed invoke passes the policy and runs`);
      tt.same(await listed(), ['token-only', 'users'], `${what}: node_get shows the service that needs the project token`);
    };
    await holding('with the token');
    tt.same(await inNextEvent('2'), ['token-only', 'users'], 'and so do its watch events');

    const rotated = await acheron(['project', 'rotate-token', 'leaky', '--control-url', a.url, '--token', env.adminToken, '--json']);
    tt.equal(rotated.code, 0, `acheron project rotate-token through ${a === b ? 'the server' : 'another server'}: ${rotated.stderr.trim()}`);
    const { token: NEW } = JSON.parse(rotated.stdout) as { token: string };
    // The same session, on its server: once that server has the new token, it is a session without one.
    const refused = await waitFor(
      async () => {
        const outcome = await invoke('users');
        return outcome.ok ? undefined : outcome;
      },
      { what: `the rotation seen on ${b.url}`, timeoutMs: 5_000 },
    );
    tt.match(refused, { errno: 'EACCES', message: /^project leaky: invoke needs the project token/ }, 'a relayed invoke is refused with the usual reason');
    tt.match(await invoke('token-only'), { ok: false, errno: 'ENOENT' }, 'the service that needs the token: absent (hidden from a session without it)');
    tt.same(await listed(), ['users'], 'node_get no longer shows the service that needs the project token');
    // The watch ended, since the session may see otherwise: a new one's events follow the new sight.
    const ended = await user.next((f) => f.type === 'control.error' && (f.error as { watch_id?: string } | undefined)?.watch_id === watch.watch_id);
    tt.match(ended.error, { code: 'resync_required', message: /^project leaky has a new project token/ }, 'its watch ended with resync_required');
    watch = await watchNode();
    tt.same(await inNextEvent('3'), ['users'], 'nor do the events of a new watch');
    expectError(
      tt,
      await user.request('control.session_attach', { project_id: 'leaky', project_token: OLD }),
      'unauthorized',
      '/project_token',
      'the old token no longer attaches',
    );
    tt.match((await attach(NEW)).payload, { has_project_token: true, actions: { invoke: 'allowed' } }, 'the session attaches again with the new token');
    await holding('attached again with the new token');

    // The project deleted and made again under its id, with the same token: another project, which the session must attach to.
    await adminA.call('control.project_delete', { project_id: 'leaky' });
    await adminA.call('control.project_upsert', { ...project, token: NEW });
    const refusedAgain = await waitFor(
      async () => {
        const outcome = await invoke('users');
        return outcome.ok ? undefined : outcome;
      },
      { what: `the deletion seen on ${b.url}`, timeoutMs: 5_000 },
    );
    tt.match(refusedAgain, { errno: 'ENOENT', message: 'project leaky no longer exists' }, 'made again, even with the same token: the session is of none');
    expectError(tt, await user.request('control.node_get', { node_id: nodeId }), 'not_found', '/project_id', 'nor does it read the catalog');
    tt.match((await attach(NEW)).payload, { has_project_token: true }, 'attached again');
    await holding('attached to the project made again');

    await adminA.call('control.project_delete', { project_id: 'leaky' });
    await adminA.call('control.node_delete', { node_id: nodeId });
    node.peer.socket.terminate();
    await Promise.all([adminA.close(), user.close()]);
  },
};

/** Runs every case as a subtest of `t`. */
export async function tokenAndProjectSuite(t: Test, env: StoreEnv): Promise<void> {
  for (const [name, run] of Object.entries(TOKEN_AND_PROJECT_CASES)) await t.test(name, (tt) => run(tt, env));
}
