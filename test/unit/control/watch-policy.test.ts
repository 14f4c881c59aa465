// SPEC §8 watch role gates, and the exemption for the subscription a WorldFS mount keeps for
// itself: it passes the gates but keeps the filter of its principal.
import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { FileProjectStore } from '../../../src/control/file-project-store.js';
import type { ProjectSession } from '../../../src/control/policy.js';
import { watchAccess } from '../../../src/control/watch-policy.js';
import { seesNode } from '../../../src/protocol/visibility.js';
import { tempDir } from '../../helpers/node.js';

const projects = await FileProjectStore.open(join(await tempDir(t), 'projects.json'), pino({ level: 'silent' }));
await projects.upsert({ project_id: 'p', mounts: [{ node_id: 'n1' }], access_policy: { actions: { observe: 'open', read: 'open' } } });
const admin = { kind: 'admin' as const, tokenId: 'admin' };
const user = { kind: 'user' as const, tokenId: 'u', userId: 'u1', agentId: null };
/** A session without the project token, as control.session_attach opens it on the project as it is now. */
const sessionOn = (projectId: string): ProjectSession => ({ projectId, tokenSha256: null, incarnation: projects.find(projectId)?.incarnation });
const session = sessionOn('p');
const closed = { allowAdmin: false, allowUser: false };

t.test('closed gates refuse admin and user watches, naming the setting', async (t) => {
  t.match(watchAccess(admin, closed, undefined, projects), { refused: /ACHERON_NODE_SERVICE_WATCH_ALLOW_ADMIN/ });
  t.match(watchAccess(user, closed, session, projects), { refused: /ACHERON_NODE_SERVICE_WATCH_ALLOW_USER/ });
});

t.test("purpose worldfs passes the gates; a user still sees only its project's nodes", async (t) => {
  const forAdmin = watchAccess(admin, closed, undefined, projects, 'worldfs');
  t.ok('sight' in forAdmin && seesNode(forAdmin.sight, 'anything', 'observe'), 'an admin sees every node');
  const forUser = watchAccess(user, closed, session, projects, 'worldfs');
  if (!('sight' in forUser)) throw new Error(`refused: ${forUser.refused}`);
  t.ok(seesNode(forUser.sight, 'n1', 'observe'), 'a node the project mounts');
  t.notOk(seesNode(forUser.sight, 'n2', 'observe'), 'a node it does not');
  t.match(watchAccess(user, closed, undefined, projects, 'worldfs'), { refused: /project session/ }, 'still needs a project session');
  t.match(watchAccess({ kind: 'node', nodeId: 'n1' }, closed, undefined, projects, 'worldfs'), { refused: /node connections do not watch/ });
});

t.test('a user watch needs read as well as observe (its events carry catalog metadata)', async (t) => {
  const open = { allowAdmin: true, allowUser: true };
  await projects.upsert({ project_id: 'blind', mounts: [{ node_id: 'n1' }], access_policy: { actions: { observe: 'open', read: 'deny' } } });
  t.match(watchAccess(user, open, sessionOn('blind'), projects), { refused: 'project blind: read is denied' });
  t.match(watchAccess(user, open, sessionOn('blind'), projects, 'worldfs'), { refused: 'project blind: read is denied' }, 'a WorldFS watch too');
  t.ok('sight' in watchAccess(user, open, session, projects), 'both allowed: watched');
});
