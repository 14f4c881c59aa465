// What `acheron project` prints without --json (src/cli/project-command.ts): lines to read, a
// table for list, and for rotate-token the new token alone on the last line, as `acheron token
// rotate` prints one, so `| tail -1 > file` keeps the token.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { formatProject, formatProjectList, formatProjectToken, readProjectDocument } from '../../../src/cli/project-command.js';
import type { PublicProject } from '../../../src/protocol/types.gen.js';

const UPDATED = Date.UTC(2026, 0, 2, 3, 4, 5);
const bare: PublicProject = { project_id: 'p1', name: 'p1', mounts: [], access_policy: {}, updated_ms: UPDATED, has_token: false };
const full: PublicProject = {
  project_id: 'p2',
  name: 'Two\tlines\n',
  mounts: [{ mount_path: '/p', node_id: 'n1', export_name: 'main' }, { node_id: 'n2' }, { node_id: 'n1', mount_path: '/q' }],
  access_policy: { actions: { read: 'open', invoke: 'token' }, agents: { bot: { invoke: 'deny', read: 'open' }, idle: {} } },
  updated_ms: UPDATED,
  has_token: true,
};

t.test('rotate-token: the project, then the token alone on the last line', async (t) => {
  const out = formatProjectToken({ project_id: 'p5', token: 'ach_project_secret' });
  t.equal(out, 'p5\nach_project_secret\n');
  t.equal(out.trimEnd().split('\n').at(-1), 'ach_project_secret', 'what `| tail -1` keeps');
});

t.test('list: a header and a line per project; names kept on their line', async (t) => {
  t.equal(
    formatProjectList({ projects: [bare, full] }),
    'PROJECT\tNAME\tTOKEN\tNODES\tUPDATED\n' +
      'p1\tp1\tno\t-\t2026-01-02T03:04:05.000Z\n' +
      'p2\tTwo\\u0009lines\\u000a\tyes\tn1,n2\t2026-01-02T03:04:05.000Z\n',
  );
  t.equal(formatProjectList({ projects: [] }), 'PROJECT\tNAME\tTOKEN\tNODES\tUPDATED\n', 'no projects: the header alone');
});

t.test('get: every action with its mode, defaults marked as the server applies them; agents; nodes', async (t) => {
  t.equal(
    formatProject(bare),
    'project p1: name "p1", no token, updated 2026-01-02T03:04:05.000Z\n' +
      '  actions: read open (default), observe open (default), invoke open (default), mount open (default), admin admin (default)\n' +
      '  no nodes\n',
  );
  t.equal(
    formatProject(full),
    'project p2: name "Two\\tlines\\n", token set, updated 2026-01-02T03:04:05.000Z\n' +
      '  actions: read open, observe token (default), invoke token, mount token (default), admin admin (default)\n' +
      '  agent bot: read open, invoke deny\n' +
      '  agent idle: as the project\n' +
      '  node n1, mount /p, export main\n' +
      '  node n2\n' +
      '  node n1, mount /q\n',
    'with a token, unset actions default to token',
  );
});

t.test('upsert takes what `project get --json` printed: the fields only the server sets are left out', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'acheron-project-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'p2.json');
  writeFileSync(file, JSON.stringify(full));
  const { updated_ms: _updated, has_token: _hasToken, ...editable } = full;
  const document = await readProjectDocument({ action: 'upsert', file, json: false });
  t.same(document, editable, 'name, mounts and access_policy as printed; no updated_ms, no has_token');
  t.notOk('updated_ms' in document || 'has_token' in document);
  t.same(await readProjectDocument({ action: 'upsert', project_id: 'p2', file, json: false }), editable, 'also with the id named');
});

t.test('upsert without a project_id, in the file or as the argument: a usage error naming it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'acheron-project-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'anon.json');
  writeFileSync(file, JSON.stringify({ name: 'no id' }));
  await t.rejects(readProjectDocument({ action: 'upsert', file, json: false }), {
    name: 'UsageError',
    message: `project upsert: --file ${file} has no project_id: add it to the file, or name the project (acheron project upsert <project_id> --file ${file})`,
  });
  t.same(await readProjectDocument({ action: 'upsert', project_id: 'p9', file, json: false }), { name: 'no id', project_id: 'p9' }, 'the argument names it');
});
