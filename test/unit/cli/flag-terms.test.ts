// The control server's refusals that name protocol fields, as a client command prints them: naming
// the flags that fix them (src/cli/flag-terms.ts). The messages are the server's own, made by its
// policy functions where they are exported, so a change of wording there shows here.
import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { inFlagTerms, withFlagTerms } from '../../../src/cli/flag-terms.js';
import { FileProjectStore } from '../../../src/control/file-project-store.js';
import { attachSession, notInSession, refusal } from '../../../src/control/policy.js';
import { watchAccess } from '../../../src/control/watch-policy.js';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { tempDir } from '../../helpers/node.js';

const projects = await FileProjectStore.open(join(await tempDir(t), 'projects.journal'), pino({ level: 'silent' }));
t.teardown(() => projects.close());
await projects.upsert({ project_id: 'p5', token: 'a-project-token-0123456789', mounts: [{ node_id: 'n1' }], access_policy: { actions: { read: 'open' } } });
const project = projects.get('p5');
const user = { kind: 'user' as const, tokenId: 'u', userId: 'u1', agentId: null };
const withoutToken = attachSession('p5', project, undefined, user).session;

/** The server's reason, which must be there to translate. */
function reason(refused: string | undefined): string {
  if (refused === undefined) throw new Error('not refused');
  return refused;
}

t.test('no project session: pass --project', async (t) => {
  const watch = watchAccess(user, { allowAdmin: true, allowUser: true }, undefined, projects);
  t.equal(inFlagTerms(reason('refused' in watch ? watch.refused : undefined)), 'a user watch needs a project session: pass --project <project_id>');
  const mount = watchAccess(user, { allowAdmin: true, allowUser: true }, undefined, projects, 'worldfs');
  t.equal(
    inFlagTerms(reason('refused' in mount ? mount.refused : undefined)),
    'a user WorldFS mount needs a project session: pass --project <project_id>',
    'acheron world: a mount, not a watch',
  );
  t.equal(
    inFlagTerms('catalog reads by users need a project session: control.session_attach {project_id, project_token?} first'),
    'catalog reads by users need a project session: pass --project <project_id>',
    'src/control/ops.ts',
  );
  t.equal(
    inFlagTerms('relayed operations by users need a project session: control.session_attach first'),
    'relayed operations by users need a project session: pass --project <project_id>',
    'src/control/relay-policy.ts',
  );
  t.equal(
    inFlagTerms(notInSession('p5').message),
    'no project p5 in this session: attach a session to project p5 first: pass --project p5',
    "a project op on a project other than the session's",
  );
  t.equal(inFlagTerms(reason(refusal(project, 'admin', user, undefined))), 'attach a session to project p5 first: pass --project p5', 'policy.ts refusal');
});

t.test('the project token: --project-token-file', async (t) => {
  t.equal(inFlagTerms(reason(refusal(project, 'observe', user, withoutToken))), 'project p5: observe needs the project token: pass --project-token-file FILE');
  t.equal(
    inFlagTerms(`EACCES: ${reason(refusal(project, 'invoke', user, withoutToken))}`),
    'EACCES: project p5: invoke needs the project token: pass --project-token-file FILE',
    'also inside a longer line',
  );
  const refused = (projectId: string, token: string | undefined, principal: Parameters<typeof attachSession>[3]): string => {
    try {
      attachSession(projectId, projects.find(projectId), token, principal);
    } catch (error) {
      if (error instanceof ProtocolError) return error.message;
    }
    throw new Error('attached');
  };
  t.equal(inFlagTerms(refused('p5', 'not-the-token', user)), 'no project p5 with that project token (--project-token-file)', 'a user');
  t.equal(inFlagTerms(refused('p5', 'not-the-token', { kind: 'admin', tokenId: 'admin' })), 'wrong project token for p5 (--project-token-file)', 'an admin');
  t.equal(
    inFlagTerms(refused('nope', undefined, user)),
    'no project nope this session may use without a project token (check the id, or pass --project-token-file FILE)',
    'an unknown id, or a project that grants nothing without its token',
  );
});

t.test('anything else is left alone; rewriting twice changes nothing', async (t) => {
  for (const message of ['no project nope', 'project p5: admin is for admins only', 'only admins create projects'])
    t.equal(inFlagTerms(message), message, message);
  for (const message of [
    reason(refusal(project, 'admin', user, undefined)),
    reason(refusal(project, 'observe', user, withoutToken)),
    'wrong project token for p5',
    'relayed operations by users need a project session: control.session_attach first',
  ])
    t.equal(inFlagTerms(inFlagTerms(message)), inFlagTerms(message), message);
});

t.test('withFlagTerms: a ProtocolError keeps its code and field, and the original as cause', async (t) => {
  const original = new ProtocolError('unauthorized', 'wrong project token for p5', { field: '/project_token' });
  const rewritten = withFlagTerms(original);
  t.type(rewritten, ProtocolError);
  t.match(rewritten, { code: 'unauthorized', field: '/project_token', message: 'wrong project token for p5 (--project-token-file)', cause: original });
  const untouched = new ProtocolError('not_found', 'no project nope', { field: '/project_id' });
  t.equal(withFlagTerms(untouched), untouched, 'nothing to rewrite: the same error');
  const other = new Error('attach a session to project p5 first (control.session_attach)');
  t.equal(withFlagTerms(other), other, 'only refusals from the server');
});
