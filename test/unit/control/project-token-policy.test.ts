// SPEC §8: a session's project-token rights hold only while the token it presented is still the
// project's. A rotation or an upsert with a new token takes them from the sessions already attached
// with the old one, at their next decision: project actions, service visibility, and the relay
// policy, which keeps a service's permissions between the operations of one payload. A session is
// of one project: deleted, and made again under its id (whatever its token), it is refused
// everything until it attaches again.
import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CatalogStore } from '../../../src/control/catalog-store.js';
import { FileProjectStore } from '../../../src/control/file-project-store.js';
import { attachSession, refusal } from '../../../src/control/policy.js';
import { RelayPolicy } from '../../../src/control/relay-policy.js';
import { userSight } from '../../../src/control/sight.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';
import { admits } from '../../../src/protocol/visibility.js';
import { tempDir } from '../../helpers/node.js';

const projects = await FileProjectStore.open(join(await tempDir(t), 'projects.journal'), pino({ level: 'silent' }));
t.teardown(() => projects.close());
const user = { kind: 'user' as const, tokenId: 'u', userId: 'u1', agentId: null };
// An agent whose invoke is open: what it may reach depends on the services' permissions alone.
const bot = { kind: 'user' as const, tokenId: 'b', userId: 'u1', agentId: 'bot' };
const OLD = 'old-project-secret';
const PROJECT = {
  project_id: 'p',
  mounts: [{ node_id: 'n1' }],
  access_policy: { actions: { read: 'open' as const, invoke: 'token' as const }, agents: { bot: { invoke: 'open' as const } } },
};
const tokenOnly = { require_project_token: true, allow_roles: ['user'] };

/** A catalog of one node, n1, with a service `users` that admits users and `token-only` that needs the project token too. */
const services: Record<string, Pick<ServiceDescriptor, 'permissions'>> = {
  users: { permissions: { allow_roles: ['user'] } as ServiceDescriptor['permissions'] },
  'token-only': { permissions: tokenOnly as ServiceDescriptor['permissions'] },
};
const catalog = { service: (nodeId: string, serviceId: string) => (nodeId === 'n1' ? services[serviceId] : undefined) } as unknown as CatalogStore;
const relayPolicy = new RelayPolicy(catalog, projects, { onEvent: () => undefined, onGap: () => undefined });
const invokeOpen = (serviceId: string) => ({
  node_id: 'n1',
  request_id: `r-${serviceId}`,
  op: 'open' as const,
  path: `/services/${serviceId}/control/invoke.json`,
  flags: 1,
});

interface Now {
  invoke: string | undefined;
  seesTokenOnly: boolean;
  relayUsers: unknown;
  relayTokenOnly: unknown;
  botRelayTokenOnly: unknown;
}

/** Sessions of the user and of the agent attached with OLD, and what they get now: the invoke action, token-only's visibility, relayed invokes. */
async function attachedWithOldToken(): Promise<() => Now> {
  await projects.upsert({ ...PROJECT, token: OLD });
  const session = attachSession('p', projects.find('p'), OLD, user).session;
  const botSession = attachSession('p', projects.find('p'), OLD, bot).session;
  const sight = userSight(user, session, projects);
  return () => {
    const project = projects.find('p');
    return {
      invoke: project ? refusal(project, 'invoke', user, session) : 'no project p',
      seesTokenOnly: admits(sight, tokenOnly as ServiceDescriptor['permissions']),
      relayUsers: relayPolicy.refusal(user, session, invokeOpen('users')),
      relayTokenOnly: relayPolicy.refusal(user, session, invokeOpen('token-only')),
      botRelayTokenOnly: relayPolicy.refusal(bot, botSession, invokeOpen('token-only')),
    };
  };
}

const holding: Now = { invoke: undefined, seesTokenOnly: true, relayUsers: undefined, relayTokenOnly: undefined, botRelayTokenOnly: undefined };
const needsToken = { ok: false, errno: 'EACCES', message: /^project p: invoke needs the project token/ };
const lost = {
  invoke: /^project p: invoke needs the project token/,
  seesTokenOnly: false,
  relayUsers: needsToken,
  // A service that needs the project token is hidden from a session without it: absent, before any action refusal.
  relayTokenOnly: { ok: false, errno: 'ENOENT', message: 'no service token-only on node n1' },
  // The agent may invoke, but the service is hidden from a session without the token: absent.
  botRelayTokenOnly: { ok: false, errno: 'ENOENT', message: 'no service token-only on node n1' },
};

t.test('a rotation takes the rights from the sessions of the old token; the new token gives them', async (t) => {
  const now = await attachedWithOldToken();
  t.same(now(), holding, 'attached with the token: invoke allowed, token-only visible, both relays allowed');
  const rotated = await projects.rotateToken('p');
  t.match(now(), lost, 'after the rotation the same session is one without the token (relay decisions kept for it included)');
  t.throws(
    () => attachSession('p', projects.find('p'), OLD, user),
    { code: 'unauthorized', message: 'no project p with that project token' },
    'the old token no longer attaches',
  );
  const again = attachSession('p', projects.find('p'), rotated, user).session;
  t.equal(refusal(projects.get('p'), 'invoke', user, again), undefined, 'attached again with the new token: invoke allowed');
  t.equal(relayPolicy.refusal(user, again, invokeOpen('token-only')), undefined, 'and token-only relayed');
});

t.test('an upsert with a new token does the same; one that keeps the token keeps the rights', async (t) => {
  const now = await attachedWithOldToken();
  await projects.upsert({ project_id: 'p', name: 'renamed' });
  t.same(now(), holding, 'an upsert without a token keeps it, and the rights');
  await projects.upsert({ ...PROJECT, token: OLD });
  t.same(now(), holding, 'an upsert with the same token: the same secret, the same rights');
  await projects.upsert({ ...PROJECT, token: 'new-project-secret' });
  t.match(now(), lost, 'an upsert with another token takes them');
});

const noLongerExists = { ok: false, errno: 'ENOENT', message: 'project p no longer exists' };
/** What a session of a deleted project gets: nothing, whatever the services' permissions. */
const gone = {
  invoke: 'attach a session to project p first (control.session_attach)',
  seesTokenOnly: false,
  relayUsers: noLongerExists,
  relayTokenOnly: noLongerExists,
  botRelayTokenOnly: noLongerExists,
};

t.test('the project deleted and made again under its id, with the same token, another or none: its sessions stay refused', async (t) => {
  const now = await attachedWithOldToken();
  t.same(now(), holding, 'attached with the token');
  await projects.delete('p');
  t.same(now(), { ...gone, invoke: 'no project p' }, 'deleted: refused');
  await projects.upsert({ ...PROJECT, token: OLD });
  t.same(now(), gone, 'made again with the same token: still refused (another project)');
  await projects.upsert({ project_id: 'p', name: 'renamed' });
  t.same(now(), gone, 'and after a change of the new one');
  await projects.delete('p');
  await projects.upsert({ ...PROJECT, access_policy: { actions: { read: 'open', invoke: 'open' } } });
  t.same(now(), gone, 'made again without a token, invoke open to anyone: still refused');
  const again = attachSession('p', projects.find('p'), undefined, user).session;
  t.equal(refusal(projects.get('p'), 'invoke', user, again), undefined, 'attached again: allowed');
  t.equal(relayPolicy.refusal(user, again, invokeOpen('users')), undefined, 'and relayed');
});
