// SPEC §8 policy, table-driven, through real mounts: one control server, three real node daemons,
// two projects, users with and without agent ids. First what `control.session_attach` grants for
// every action x mode x project token x per-agent override; then, for one WorldFS mount per
// principal and project, what the mount lists, what stat says, what an invoke gets (and the reason
// the server gives), what fs/ allows, where derived mount roots show, and what the user's own
// watch sees. Every node carries the same services, one per combination of service permissions.
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../src/protocol/control-client.js';
import type { ProtocolError } from '../../src/protocol/errors.js';
import type { ServerFrame } from '../../src/protocol/envelope.js';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import { acheron, joinArgs, startControl } from '../helpers/control.js';
import { isMounted, manifest, startNode, tempDir, type RunningNode } from '../helpers/node.js';
import { probe, shown, type Outcome, type ProbeOp } from '../helpers/probe.js';
import { waitFor, withEnv } from '../helpers/process.js';
import { startWorld, type RunningWorld } from '../helpers/world.js';

// Well under a minute on an idle 2-core machine; the margin is for machines busy with other work.
t.setTimeout(180_000);

const NODES = ['n1', 'n2', 'n3'];
// User watches are off by default (SPEC §8); the matrix checks what they see.
const control = await withEnv({ ACHERON_NODE_SERVICE_WATCH_ALLOW_USER: 'true' }, () => startControl(t));
const dir = await tempDir(t, 'acheron-policy-');
// Tokens made as `acheron token` makes them (the server notices the file change), without a process each.
const tokenStore = await FileTokenStore.open(control.dataDir);

/** Service permissions (SPEC §8) and who they admit among user sessions: everyone, only with the project token, nobody. */
const SERVICES: Array<{ id: string; permissions: Record<string, unknown>; users: 'all' | 'token' | 'none'; derived?: true }> = [
  { id: 'users', permissions: { allow_roles: ['user'] }, users: 'all', derived: true },
  { id: 'star', permissions: { allow_roles: ['*'] }, users: 'all' },
  { id: 'every', permissions: { allow_roles: ['all'] }, users: 'all' },
  { id: 'default-allow', permissions: { default: 'allow' }, users: 'all' },
  // allow_roles without `user`, but a default that is not deny: SPEC §8 lets users in.
  { id: 'admins-default-allow', permissions: { allow_roles: ['admin'], default: 'allow' }, users: 'all' },
  { id: 'admins', permissions: { allow_roles: ['admin'] }, users: 'none', derived: true },
  { id: 'default-deny', permissions: { default: 'deny' }, users: 'none' },
  { id: 'deny-by-default', permissions: {}, users: 'none' },
  { id: 'token-only', permissions: { allow_roles: ['user'], require_project_token: true }, users: 'token', derived: true },
  { id: 'token-default-allow', permissions: { default: 'allow', require_project_token: true }, users: 'token' },
];
const ALL_IDS = [...SERVICES.map((s) => s.id), 'fs'].sort();
const ids = (users: Array<'all' | 'token' | 'none'>): string[] => SERVICES.filter((s) => users.includes(s.users)).map((s) => s.id);

const nodes = new Map<string, RunningNode>();
await Promise.all(
  NODES.map(async (nodeId) => {
    const exported = join(dir, `export-${nodeId}`);
    await mkdir(exported);
    await writeFile(join(exported, 'hello.txt'), `hello from ${nodeId}\n`);
    const tokenFile = join(dir, `join-${nodeId}`);
    await writeFile(tokenFile, `${(await tokenStore.createJoin(60_000)).token}\n`, { mode: 0o600 });
    nodes.set(
      nodeId,
      await startNode(t, {
        nodeId,
        manifests: SERVICES.map((s) =>
          manifest(s.id, 'echo', {
            permissions: s.permissions,
            // A derived mount root (SPEC §2) beside the service's own directory.
            ...(s.derived
              ? {
                  mounts: [
                    { mount_id: s.id, mount_path: '/nodes/{node_id}/services/{service_id}' },
                    { mount_id: `${s.id}-dev`, mount_path: '/nodes/{node_id}/devices/{service_id}' },
                  ],
                }
              : {}),
          }),
        ),
        args: [...joinArgs(control.url, tokenFile), '--export', `data=${exported}:rw`],
      }),
    );
  }),
);

const admin = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 10_000 });
t.teardown(() => admin.terminate());
await waitFor(
  async () => {
    const docs = await Promise.all(NODES.map((id) => admin.request<{ services: unknown[] }>('control.node_get', { node_id: id }).catch(() => undefined)));
    return docs.every((d) => d?.services.length === SERVICES.length + 1);
  },
  { what: 'the three nodes and their services in the catalog', timeoutMs: 30_000 },
);

const P1_TOKEN = 'p1-project-secret';
/** WorldFS takes project tokens from files only (never in argv). */
async function tokenFile(name: string, token: string): Promise<string> {
  const path = join(dir, `${name}.token`);
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return path;
}
await admin.request('control.project_upsert', {
  project_id: 'p1',
  token: P1_TOKEN,
  mounts: [
    { node_id: 'n1', export_name: 'data' },
    { node_id: 'n2', export_name: 'data' },
  ],
  access_policy: {
    actions: { read: 'open', observe: 'open', invoke: 'token', mount: 'admin' },
    agents: { bot: { invoke: 'open', mount: 'open' }, mute: { invoke: 'deny' }, blind: { read: 'deny' }, deaf: { observe: 'deny' } },
  },
});
// No token and no actions: every action but admin is open (SPEC §8 defaults).
await admin.request('control.project_upsert', {
  project_id: 'p2',
  mounts: [{ node_id: 'n2' }, { node_id: 'n3' }],
  access_policy: { agents: { bot: { invoke: 'admin' } } },
});

const userToken = async (user: string, agent?: string): Promise<string> => (await tokenStore.createUser(user, agent ?? null)).token;
const tokens = {
  alice: await userToken('alice'),
  bot: await userToken('alice', 'bot'),
  mute: await userToken('alice', 'mute'),
  blind: await userToken('alice', 'blind'),
  deaf: await userToken('alice', 'deaf'),
  flip: await userToken('alice', 'flip'),
};

/** A user connection with its project session attached. */
async function attached(
  token: string,
  projectId: string,
  projectToken?: string,
): Promise<{ client: ControlClient; grant: { actions: Record<string, string>; has_project_token: boolean }; pushes: ServerFrame[] }> {
  const pushes: ServerFrame[] = [];
  const client = await ControlClient.connect({ url: control.url, token, requestTimeoutMs: 10_000, onPush: (frame) => pushes.push(frame) });
  t.teardown(() => client.terminate());
  const grant = await client.request<{ actions: Record<string, string>; has_project_token: boolean }>('control.session_attach', {
    project_id: projectId,
    ...(projectToken ? { project_token: projectToken } : {}),
  });
  return { client, grant, pushes };
}

// Everything is set up, mounted and probed before the first subtest: tap ends the file once it is idle after one.
const USERS = ids(['all']);
const WITH_TOKEN = ids(['all', 'token']);
/** One WorldFS mount per row, all up at once. `devices`: the derived roots under nodes/<id>/devices/. */
const MOUNTS: Array<{
  name: string;
  token: string;
  project?: string;
  projectToken?: string;
  nodes: string[];
  services: string[];
  devices: string[];
  fsWrite: 'ok' | 'EACCES';
  invokeRefused?: RegExp;
}> = [
  {
    name: 'alice@p1 with the project token (invoke: token, mount: admin)',
    token: tokens.alice,
    project: 'p1',
    projectToken: P1_TOKEN,
    nodes: ['n1', 'n2'],
    services: [...WITH_TOKEN, 'fs'],
    devices: [],
    fsWrite: 'EACCES',
  },
  {
    name: 'alice@p1 without the project token',
    token: tokens.alice,
    project: 'p1',
    nodes: ['n1', 'n2'],
    services: [],
    devices: [],
    fsWrite: 'EACCES',
    invokeRefused: /^project p1: invoke needs the project token/,
  },
  {
    name: 'agent bot@p1 without the token (agent: invoke open, mount open)',
    token: tokens.bot,
    project: 'p1',
    nodes: ['n1', 'n2'],
    services: [...USERS, 'fs'],
    devices: ['users'],
    fsWrite: 'ok',
  },
  {
    name: 'agent mute@p1 with the token (agent: invoke deny)',
    token: tokens.mute,
    project: 'p1',
    projectToken: P1_TOKEN,
    nodes: ['n1', 'n2'],
    services: [],
    devices: [],
    fsWrite: 'EACCES',
    invokeRefused: /^project p1: invoke is denied for agent mute$/,
  },
  {
    name: 'alice@p2 (no project token: all open)',
    token: tokens.alice,
    project: 'p2',
    nodes: ['n2', 'n3'],
    services: [...USERS, 'fs'],
    devices: ['users'],
    fsWrite: 'ok',
  },
  {
    name: 'agent bot@p2 (agent: invoke admin)',
    token: tokens.bot,
    project: 'p2',
    nodes: ['n2', 'n3'],
    services: [],
    devices: [],
    fsWrite: 'ok',
    invokeRefused: /^project p2: invoke is for admins only$/,
  },
  {
    name: 'admin (no project)',
    token: control.adminToken,
    nodes: NODES,
    services: ALL_IDS.filter((id) => id !== 'fs').concat('fs'),
    devices: ['admins', 'token-only', 'users'],
    fsWrite: 'ok',
  },
  // Admins pass every policy (SPEC §8): a project given to an admin's mount hid admin-only services.
  {
    name: 'admin with --project p2',
    token: control.adminToken,
    project: 'p2',
    nodes: NODES,
    services: ALL_IDS.filter((id) => id !== 'fs').concat('fs'),
    devices: ['admins', 'token-only', 'users'],
    fsWrite: 'ok',
  },
];

const starting = Promise.all(
  MOUNTS.map(async (m, index) =>
    startWorld(t, {
      url: control.url,
      token: m.token,
      args: [
        ...(m.project ? ['--project', m.project] : []),
        ...(m.projectToken ? ['--project-token-file', await tokenFile(`mount-${index}`, m.projectToken)] : []),
      ],
    }),
  ),
);
// Mounts that must not start, tried meanwhile (checked in a subtest below).
const refusing = Promise.all(
  (
    [
      ['agent blind (read: deny)', tokens.blind, P1_TOKEN, /forbidden: project p1: read is denied for agent blind/, false],
      ['agent deaf (observe: deny)', tokens.deaf, P1_TOKEN, /forbidden: project p1: observe is denied for agent deaf/, false],
      ['a wrong project token', tokens.alice, 'not-the-project-token', /unauthorized: no project p1 with that project token \(--project-token-file\)/, false],
      // Detached, the waiting parent prints what the daemon said: the wire code too (it was dropped).
      ['agent blind, --daemon', tokens.blind, P1_TOKEN, /^acheron: forbidden: project p1: read is denied for agent blind$/m, true],
    ] as const
  ).map(async ([what, token, projectToken, reason, daemon], index) => {
    const mount = join(await tempDir(t), 'mnt');
    const r = await acheron([
      'world',
      ...(daemon ? ['--daemon', '--log-file', join(await tempDir(t), 'world.log')] : []),
      '--control-url',
      control.url,
      '--token',
      token,
      '--project',
      'p1',
      '--project-token-file',
      await tokenFile(`refused-${index}`, projectToken),
      '--mount',
      mount,
      '--log-level',
      'silent',
    ]);
    return { what, reason, mount, ...r };
  }),
);
const [worlds, refusedStarts] = await Promise.all([starting, refusing]);

/** What each mount is asked, in the order the subtests below check the outcomes. */
function probesFor(m: (typeof MOUNTS)[number], index: number): ProbeOp[] {
  const world = worlds[index] as RunningWorld;
  const ops: ProbeOp[] = [{ op: 'ls', path: join(world.mount, 'nodes') }];
  for (const nodeId of NODES.filter((n) => !m.nodes.includes(n))) ops.push({ op: 'stat', path: world.node(nodeId) });
  for (const nodeId of m.nodes) {
    const base = world.node(nodeId);
    ops.push({ op: 'ls', path: base }, { op: 'ls', path: join(base, 'services') }, { op: 'read', path: join(base, 'services', 'SERVICES.json') });
    for (const id of ALL_IDS) ops.push({ op: 'stat', path: join(base, 'services', id, 'README.md') });
    ops.push({ op: 'ls', path: join(base, 'devices') }, { op: 'stat', path: join(base, 'devices', 'admins') });
    ops.push(
      { op: 'read', path: join(base, 'fs', 'data', 'hello.txt') },
      { op: 'write', path: join(base, 'fs', 'data', `written-${index}.txt`), data: 'x\n', create: true },
    );
    // Invokes on the first node only: each one runs a driver, and the rules are the same on every node.
    if (nodeId !== m.nodes[0]) continue;
    for (const id of ['users', 'admins', 'token-only'])
      ops.push({ op: 'transact', path: join(base, 'services', id, 'control', 'invoke.json'), data: JSON.stringify({ by: m.name, id }) });
    ops.push({ op: 'transact', path: join(base, 'devices', 'users', 'control', 'invoke.json'), data: JSON.stringify({ by: m.name, via: 'devices' }) });
  }
  return ops;
}
// All mounts at once (each transaction reads its own outcome, so concurrent invokes do not mix).
const probed = await Promise.all(MOUNTS.map((m, index) => probe(probesFor(m, index))));

await t.test('session_attach: every action in every mode, with and without the project token, and per-agent overrides', async (tt) => {
  const MODES = ['open', 'token', 'admin', 'deny'] as const;
  const ACTIONS = ['read', 'observe', 'invoke', 'mount', 'admin'] as const;
  // The agent's entry flips the project's mode: deny where the project is open, open elsewhere.
  const flipped = (mode: string): string => (mode === 'open' ? 'deny' : 'open');
  const expected = (action: string, mode: string, hasToken: boolean, agent: boolean): RegExp => {
    switch (mode) {
      case 'open':
        return /^allowed$/;
      case 'token':
        return hasToken ? /^allowed$/ : new RegExp(`^project p3: ${action} needs the project token`);
      case 'admin':
        return new RegExp(`^project p3: ${action} is for admins only$`);
      default:
        return new RegExp(`^project p3: ${action} is denied${agent ? ' for agent flip' : ''}$`);
    }
  };
  // Without the project token, a user whose every action is refused is told what an unknown id gets (ids are not for probing).
  const NOTHING_WITHOUT_TOKEN = 'not_found: no project p3 this session may use without a project token (check the id, or attach with project_token)';
  /** What `control.session_attach` answers: the verdict of each action, or the refusal as `code: message`. */
  const grantOf = async (token: string, projectToken?: string): Promise<Record<string, string> | string> =>
    attached(token, 'p3', projectToken).then(
      ({ client, grant }) => {
        client.terminate();
        return grant.actions;
      },
      (error: ProtocolError) => `${error.code}: ${error.message}`,
    );
  let checked = 0;
  for (const action of ACTIONS) {
    for (const mode of MODES) {
      await admin.request('control.project_upsert', {
        project_id: 'p3',
        token: 'p3-project-secret',
        mounts: [],
        access_policy: { actions: { [action]: mode }, agents: { flip: { [action]: flipped(mode) } } },
      });
      for (const hasToken of [false, true]) {
        const projectToken = hasToken ? 'p3-project-secret' : undefined;
        // The other actions need the token (the default of a project with one), or are for admins only.
        for (const [who, token, governing, agent] of [
          ['alice', tokens.alice, mode, false],
          ['agent flip', tokens.flip, flipped(mode), true],
        ] as const) {
          const grant = await grantOf(token, projectToken);
          const what = `${who}: ${action}=${governing}, ${hasToken ? 'with' : 'without'} the token`;
          if (!hasToken && governing !== 'open') tt.equal(grant, NOTHING_WITHOUT_TOKEN, `${what}: nothing allowed, so no project`);
          else tt.match(typeof grant === 'string' ? grant : grant[action], expected(action, governing, hasToken, agent), `${what}: ${JSON.stringify(grant)}`);
          checked++;
        }
      }
    }
  }
  tt.equal(checked, ACTIONS.length * MODES.length * 4);
  // Defaults (SPEC §8): admin → admin; the others → token when the project has one, else open.
  await admin.request('control.project_upsert', { project_id: 'p3', token: 'p3-project-secret', mounts: [], access_policy: {} });
  tt.equal(await grantOf(tokens.alice), NOTHING_WITHOUT_TOKEN, 'a project with a token, default modes: nothing without the token');
  tt.match(
    await grantOf(tokens.alice, 'p3-project-secret'),
    { read: 'allowed', observe: 'allowed', invoke: 'allowed', mount: 'allowed', admin: /for admins only/ },
    'with it, every action but admin',
  );
  const noTokenProject = await attached(tokens.alice, 'p2');
  tt.match(noTokenProject.grant.actions, { read: 'allowed', observe: 'allowed', invoke: 'allowed', mount: 'allowed', admin: /for admins only/ });
  const asAdmin = await attached(control.adminToken, 'p3');
  tt.same(Object.values(asAdmin.grant.actions), ['allowed', 'allowed', 'allowed', 'allowed', 'allowed'], 'admin principals pass everything');
  for (const c of [noTokenProject, asAdmin]) c.client.terminate();
});

for (const [index, m] of MOUNTS.entries()) {
  await t.test(`WorldFS as ${m.name}`, async (tt) => {
    const visible = [...m.services].sort();
    const out = probed[index] as Outcome[];
    let at = 0;
    const next = (): Outcome => out[at++] as Outcome;
    tt.same(shown(next()), m.nodes, "nodes/ lists the project's nodes");
    for (const nodeId of NODES.filter((n) => !m.nodes.includes(n))) tt.equal(shown(next()), 'ENOENT', `a node outside the project (${nodeId}) is ENOENT`);
    for (const nodeId of m.nodes) {
      const fixed = ['CAPS.json', 'NODE.json', 'README.md', 'STATUS.json', 'fs', 'services'];
      tt.same(
        shown(next()),
        [...fixed, ...(m.devices.length ? ['devices'] : [])].sort(),
        `${nodeId}/: fixed names${m.devices.length ? ' and the derived devices/' : ''}`,
      );
      tt.same(shown(next()), ['SERVICES.json', ...visible], `${nodeId}/services/ lists exactly what this session may see`);
      const listed = next();
      tt.same(
        listed.value === undefined ? listed.errno : (JSON.parse(String(listed.value)) as Array<{ service_id: string }>).map((s) => s.service_id),
        visible,
        'SERVICES.json agrees',
      );
      for (const id of ALL_IDS) tt.equal(shown(next()), visible.includes(id) ? 'file' : 'ENOENT', `stat services/${id}/README.md`);
      tt.same(shown(next()), m.devices.length ? m.devices : 'ENOENT', `${nodeId}/devices/: the derived roots this session may see`);
      tt.equal(shown(next()), m.devices.includes('admins') ? 'dir' : 'ENOENT', "an admin-only service's derived root");
      tt.equal(shown(next()), `hello from ${nodeId}\n`, 'fs/ reads (read is open)');
      tt.equal(shown(next()), m.fsWrite === 'ok' ? true : m.fsWrite, `fs/ writes: ${m.fsWrite} (mount action)`);
      if (nodeId !== m.nodes[0]) continue;
      for (const id of ['users', 'admins', 'token-only']) {
        const invoked = next();
        if (visible.includes(id))
          tt.match(
            JSON.parse(String(invoked.value ?? '{}')),
            { echo: { by: m.name, id } },
            `invoke services/${id}: runs, the transaction reads its own result (${shown(invoked)})`,
          );
        else tt.equal(invoked.errno, 'ENOENT', `invoke services/${id}: hidden, ENOENT`);
      }
      const viaDevices = next();
      if (m.devices.includes('users'))
        tt.match(JSON.parse(String(viaDevices.value ?? '{}')), { echo: { via: 'devices' } }, 'invoke through the derived root devices/users');
      else tt.equal(viaDevices.errno, 'ENOENT', 'no derived root: ENOENT');
    }
    tt.equal(at, out.length, 'every probe checked');

    if (!m.project || m.token === control.adminToken) return;
    // What the server itself answers a relayed invoke of this principal (it does not trust the mount).
    const { client } = await attached(m.token, m.project, m.projectToken);
    const nodeId = m.nodes[0] as string;
    const relay = (path: string, op = 'stat'): Promise<{ ok: boolean; errno?: string; message?: string }> =>
      client.request('control.relay', { node_id: nodeId, request_id: `${index}-${op}-${path}`, op, path, flags: 1 });
    const users = await relay('/services/users/control/invoke.json', 'open');
    if (m.invokeRefused) {
      tt.equal(users.errno, 'EACCES', 'a relayed invoke the project refuses: EACCES');
      tt.match(users.message, m.invokeRefused, `with the reason: ${users.message}`);
    } else {
      tt.equal(users.ok, true, 'a relayed write-open of invoke.json is allowed');
      await client.request('control.relay', {
        node_id: nodeId,
        request_id: `${index}-release`,
        op: 'release',
        path: '/services/users/control/invoke.json',
        fh: Number((users as { result?: { fh?: number } }).result?.fh),
      });
    }
    tt.match(
      await relay('/services/admins/result.json'),
      { ok: false, errno: 'ENOENT', message: `no service admins on node ${nodeId}` },
      'an admin-only service: absent on the server too, also where invoke is refused (EACCES told it exists)',
    );
    tt.match(await relay('/NODE.json'), { ok: false, errno: 'EACCES' }, 'only services/<id>/ and fs/ are relayed to users');
    tt.match(
      await relay(`/fs/data/written-${index}.txt`, 'unlink'),
      m.fsWrite === 'ok' ? { ok: true } : { ok: false, errno: 'EACCES', message: /mount is for admins only/ },
      'changing fs/ needs the mount action, with the reason',
    );
    tt.match(
      await client.request('control.relay', { node_id: nodeId, request_id: `${index}-symlink`, op: 'symlink', path: `/fs/data/link-${index}`, target: 'x' }),
      m.fsWrite === 'ok' ? { ok: true } : { ok: false, errno: 'EACCES', message: /mount is for admins only/ },
      'so does making a link there',
    );
    client.terminate();
  });
}

await t.test('a WorldFS mount needs read and observe: refused, it does not start and says why', async (tt) => {
  for (const r of refusedStarts) {
    tt.not(r.code, 0, `${r.what}: exit ${r.code}`);
    tt.match(r.stderr, r.reason, `${r.what}: ${r.stderr.trim()}`);
    tt.notOk(await isMounted(r.mount), `${r.what}: nothing mounted`);
  }
});

await t.test("a user's own watch: only the project's nodes, only when observe allows; live events too", async (tt) => {
  const watchers = [
    { name: 'alice@p1', ...(await attached(tokens.alice, 'p1', P1_TOKEN)), nodes: ['n1', 'n2'] },
    { name: 'agent bot@p1 (no token)', ...(await attached(tokens.bot, 'p1')), nodes: ['n1', 'n2'] },
    { name: 'alice@p2', ...(await attached(tokens.alice, 'p2')), nodes: ['n2', 'n3'] },
  ];
  for (const w of watchers) await w.client.request('control.node_service_watch', { replay_limit: 1024 });
  const deaf = await attached(tokens.deaf, 'p1', P1_TOKEN);
  const refused = await deaf.client.request('control.node_service_watch', {}).then(
    () => 'accepted',
    (error: Error) => error.message,
  );
  tt.match(refused, /project p1: observe is denied for agent deaf/, 'observe denied for the agent: the watch is refused with the reason');
  // A live change on n1 and on n3 (a service added by each node's reload).
  for (const nodeId of ['n1', 'n3'])
    await writeFile(
      join((nodes.get(nodeId) as RunningNode).servicesDir, 'late.json'),
      JSON.stringify(manifest('late', 'echo', { permissions: { allow_roles: ['user'] } })),
    );
  type EventPayload = { node_id: string; replay: boolean; services: Array<{ service_id: string }> };
  const events = (w: { pushes: ServerFrame[] }): EventPayload[] =>
    w.pushes.flatMap((f) => (f.ok && f.type === 'control.node_service_event' ? [f.payload as EventPayload] : []));
  const lateOn = (w: { pushes: ServerFrame[] }, nodeId: string): boolean =>
    events(w).some((e) => e.node_id === nodeId && !e.replay && e.services.some((s) => s.service_id === 'late'));
  await waitFor(() => watchers.every((w) => w.nodes.filter((n) => n !== 'n2').every((n) => lateOn(w, n))), {
    what: "the live events of n1 and n3 at their projects' watchers",
    timeoutMs: 20_000,
  });
  for (const w of watchers) {
    const seen = new Set(events(w).map((e) => e.node_id));
    tt.same([...seen].sort(), w.nodes, `${w.name}: events of exactly its project's nodes (replayed and live)`);
    w.client.terminate();
  }
});
