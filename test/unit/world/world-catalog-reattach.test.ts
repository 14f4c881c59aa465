// A WorldFS catalog whose project token file holds a new token (WorldCatalog.reattach) attaches the
// session again on the same connection, which the files opened through it need (their relay
// session): it used to reconnect, so every open fs/ handle went ESTALE. The old watch is ended
// and a new one read under the new grant. A token the server refuses leaves the session, the
// watch and the connection as they were. A session refused after the server ended its watch (the
// token rotated, the file not rewritten yet) waits on the same connection (ENOTCONN) until it may
// read again. So does a new connection of a live mount (a reconnect): a project token refused, it
// attaches without it, and a session refused keeps the connection (it used to count as a failed
// connection, retried for ever with the old token). A scripted ws server.
import t, { type Test } from 'tap';
import { ProtocolError } from '../../../src/protocol/errors.js';
import type { SessionAttachReply } from '../../../src/protocol/types.gen.js';
import type { WorldCatalog } from '../../../src/world/world-catalog.js';
import { waitFor } from '../../helpers/process.js';
import { scriptedControl, type ScriptedControl } from '../../helpers/scripted-control.js';
import { startTestCatalog } from '../../helpers/world-catalog.js';

const ACTIONS = { read: 'allowed', observe: 'allowed', invoke: 'allowed', mount: 'allowed', admin: 'refused' };
const grant = (hasToken: boolean): SessionAttachReply => ({ project_id: 'p', has_project_token: hasToken, nodes: [], actions: ACTIONS });

/** What the scripted project answers session_attach: with a token, `accepted` decides; without, `open` (else not_found). */
interface Project {
  accepted: boolean;
  attaches: number;
  open?: boolean;
}

/** A scripted server numbering its watches w1, w2...; a user catalog on it whose attach the `project` answers. */
async function world(t: Test, project: Project): Promise<{ server: ScriptedControl; catalog: WorldCatalog }> {
  let watches = 0;
  const server = await scriptedControl({
    'control.node_service_watch': () => ({ watch_id: `w${++watches}`, enabled: true, include: 'delta', replay_limit: 0, replayed: 0, head_seq: 0 }),
    'control.node_list': () => ({ nodes: [] }),
  });
  const catalog = await startTestCatalog(
    t,
    {
      urls: [server.url],
      attach: async (_client, withProjectToken = true) => {
        project.attaches++;
        if (!withProjectToken && project.open) return grant(false);
        if (!withProjectToken) throw new ProtocolError('not_found', 'no project p this session may use without a project token');
        if (!project.accepted) throw new ProtocolError('unauthorized', 'no project p with that project token');
        return grant(true);
      },
    },
    () => server.close(),
  );
  return { server, catalog };
}

const typesOf = (server: ScriptedControl): string[] => server.requests.map((r) => r.type);
const count = (server: ScriptedControl, type: string): number => typesOf(server).filter((x) => x === type).length;

t.test('a new project token: attached again on the same connection, the old watch ended, a new one read', async (t) => {
  const project = { accepted: true, attaches: 0 };
  const { server, catalog } = await world(t, project);
  catalog.reattach('a new token in f');
  await waitFor(() => count(server, 'control.node_service_watch') === 2, { what: 'the second watch', timeoutMs: 5000 });
  t.equal(count(server, 'control.version'), 1, 'one connection: no reconnect');
  t.equal(project.attaches, 2, 'attached again');
  const types = typesOf(server);
  t.ok(types.lastIndexOf('control.node_service_unwatch') < types.lastIndexOf('control.node_service_watch'), 'the old watch ended before the new one');
  t.same(server.requests.find((r) => r.type === 'control.node_service_unwatch')?.payload, { watch_id: 'w1' });
  t.ok(catalog.connected, 'connected');
});

t.test('a new project token the server refuses: the session, its watch and the connection stay', async (t) => {
  const project = { accepted: true, attaches: 0 };
  const { server, catalog } = await world(t, project);
  project.accepted = false;
  catalog.reattach('a new token in f');
  await waitFor(() => project.attaches === 2, { what: 'the refused attach', timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(count(server, 'control.version'), 1, 'one connection');
  t.equal(count(server, 'control.node_service_watch'), 1, 'the watch goes on: nothing read again');
  t.equal(count(server, 'control.node_service_unwatch'), 0);
  t.same(catalog.grant, grant(true), 'the grant from before');
  t.ok(catalog.connected, 'still connected');
});

t.test('the watch ended and the session refused (the token rotated): ENOTCONN on the same connection until the new token attaches', async (t) => {
  const project = { accepted: true, attaches: 0 };
  const { server, catalog } = await world(t, project);
  project.accepted = false;
  const ended = {
    channel: 'control',
    type: 'control.error',
    id: null,
    ok: false,
    error: { code: 'resync_required', message: 'p has a new token', watch_id: 'w1' },
  };
  server.send(ended);
  await waitFor(() => !catalog.connected, { what: 'the refused session', timeoutMs: 5000 });
  t.match(catalog.lastError, /not_found: no project p this session may use/, 'why, for ENOTCONN');
  project.accepted = true;
  catalog.reattach('a new token in f');
  await waitFor(() => catalog.connected, { what: 'attached with the new token', timeoutMs: 5000 });
  t.equal(count(server, 'control.version'), 1, 'one connection throughout');
  t.equal(count(server, 'control.node_service_watch'), 2, 'a new watch');
});

t.test('a reconnect with a project token the server no longer takes: attached without it, the catalog read', async (t) => {
  const project = { accepted: true, attaches: 0, open: true };
  const { server, catalog } = await world(t, project);
  project.accepted = false;
  server.cut();
  await waitFor(() => count(server, 'control.version') === 2 && catalog.connected, { what: 'the catalog read on the new connection', timeoutMs: 5000 });
  t.same(catalog.grant, grant(false), 'the grant of a session without the token');
  t.equal(project.attaches, 3, 'refused with the token, attached without it');
  project.accepted = true;
  catalog.reattach('a new token in f');
  await waitFor(() => catalog.grant?.has_project_token === true, { what: 'attached with the new token', timeoutMs: 5000 });
  t.equal(count(server, 'control.version'), 2, 'on the same connection');
});

t.test('a reconnect whose session is refused (the project gone): ENOTCONN on the new connection, kept until the session may', async (t) => {
  const project = { accepted: true, attaches: 0 };
  const { server, catalog } = await world(t, project);
  project.accepted = false;
  server.cut();
  await waitFor(() => project.attaches === 3, { what: 'the attaches on the new connection', timeoutMs: 5000 });
  await waitFor(() => /not_found: no project p this session may use/.test(catalog.lastError), { what: 'why, for ENOTCONN', timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.notOk(catalog.connected, 'ENOTCONN');
  t.equal(count(server, 'control.version'), 2, 'the new connection kept: no reconnect after reconnect');
  project.accepted = true;
  catalog.reattach('a new token in f');
  await waitFor(() => catalog.connected, { what: 'attached with the new token', timeoutMs: 5000 });
  t.equal(count(server, 'control.version'), 2, 'on that connection');
  t.same(catalog.grant, grant(true));
});
