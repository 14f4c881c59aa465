// SPEC §8/§9: a WorldFS mount's project token rotated (`acheron project rotate-token`, the new token
// written into its --project-token-file) re-attaches the session on the same connection, so a file
// held open for writing under a node's fs/ export keeps working: its later writes and close()
// succeed and the bytes reach the node's disk. It used to reconnect, so every open fs/ handle went
// ESTALE and the writes in progress were lost. A token the server refuses in the file leaves the
// session as it was attached, said in the log, and the open file goes on too. A token rotated and
// not written into the file, then a reconnect (the control server restarted), or the project deleted
// and made again under its id with another token: the new connection attaches without the token,
// as the live one does, and the mount shows the project's node again. It used to take the refusal
// for a failed connection: ENOTCONN for good, "control server connection failed" in the log.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron, adminRequest, startControl, startJoinedNode } from '../helpers/control.js';
import { tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { startWorld, type RunningWorld } from '../helpers/world.js';

const NODE_ID = 'rot-node';
const PROJECT = 'rot';

/** Opens argv[1] write-only, writes "abc", says "open"; then each stdin line is written (an empty one closes) and its outcome printed: "ok ..." or the errno name. */
const PY_WRITER = `
import errno, os, sys
w = os.open(sys.argv[1], os.O_WRONLY)
os.write(w, b"abc")
print("open", flush=True)
for line in sys.stdin:
    text = line.strip()
    try:
        print("ok", os.write(w, text.encode()) if text else os.close(w), flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
`;

interface Mounted {
  world: RunningWorld;
  control: Awaited<ReturnType<typeof startControl>>;
  tokenFile: string;
  exported: string;
  data: string;
}

interface Held extends Mounted {
  /** Sends a line to the writer, resolves to its outcome. */
  step(text: string): Promise<string>;
}

/** The project's mounts: the node's `data` export. */
const MOUNTS = [{ mount_path: '/p', node_id: NODE_ID, export_name: 'data' }];

/** A node exporting `data`, a project on it with a token and `project` (its policy; none: every action needs the token), a user's mount with --project-token-file. */
async function mounted(t: Test, project: Record<string, unknown> = {}): Promise<Mounted> {
  const control = await startControl(t);
  const dir = await tempDir(t, 'acheron-project-rotation-');
  const exported = join(dir, 'exported');
  await mkdir(exported);
  await writeFile(join(exported, 'w.txt'), '');
  await startJoinedNode(t, control, NODE_ID, dir, ['--export', `data=${exported}:rw`]);
  await adminRequest(control, 'control.project_upsert', { project_id: PROJECT, mounts: MOUNTS, ...project });
  const { token } = await adminRequest<{ token: string }>(control, 'control.project_token_rotate', { project_id: PROJECT });
  const tokenFile = join(dir, 'project-token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const world = await startWorld(t, { url: control.url, token: control.userToken, args: ['--project', PROJECT, '--project-token-file', tokenFile] });
  const data = join(world.node(NODE_ID), 'fs', 'data');
  await readable(data);
  return { world, control, tokenFile, exported, data };
}

/** As `mounted`, and w.txt held open for writing through the mount. */
async function holding(t: Test): Promise<Held> {
  const { world, control, tokenFile, exported, data } = await mounted(t);
  const writer = spawn('python3', ['-c', PY_WRITER, join(data, 'w.txt')], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void writer.kill('SIGKILL'));
  const lines = createInterface({ input: writer.stdout })[Symbol.asyncIterator]();
  t.equal((await lines.next()).value, 'open', 'w.txt open for writing through WorldFS, "abc" written');
  const step = async (text: string): Promise<string> => {
    writer.stdin.write(`${text}\n`);
    return String((await lines.next()).value);
  };
  return { world, control, tokenFile, exported, data, step };
}

/** A fresh read through the mount: the session may read the export (it holds the project's current token). */
function readable(data: string): Promise<boolean> {
  return waitFor(async () => (await sh(`ls ${q(data)}`)).stdout.includes('w.txt'), { what: 'the export through WorldFS', timeoutMs: 30_000 });
}

/** The token written into the file as a rotation would: renamed into place. */
async function writeToken(file: string, token: string): Promise<void> {
  await writeFile(`${file}.new`, `${token}\n`, { mode: 0o600 });
  await rename(`${file}.new`, file);
}

t.test('a rotated project token written into the file: the open file keeps working', async (t) => {
  const held = await holding(t);
  const rotated = await acheron(['project', 'rotate-token', PROJECT, '--control-url', held.control.url, '--token', held.control.adminToken, '--json']);
  t.equal(rotated.code, 0, `acheron project rotate-token: ${rotated.stderr.trim()}`);
  await writeToken(held.tokenFile, (JSON.parse(rotated.stdout) as { token: string }).token);
  await readable(held.data);
  t.equal(await held.step('def'), 'ok 3', 'a write on the file opened before the rotation');
  t.equal(await held.step(''), 'ok None', 'and its close()');
  t.equal(await readFile(join(held.exported, 'w.txt'), 'utf8'), 'abcdef', "every byte is on the node's disk");
  const log = await readFile(held.world.logFile, 'utf8');
  // The server ends the watch at the rotation; the session attaches again when the file changes, or,
  // when the file was already written by then, while reading the catalog again (the file's change
  // comes later).
  t.match(log, /attached again with the new project token|catalog read again; following events/, 'the log says the session was attached again');
  t.notMatch(log, /"msg":"reconnecting"/, 'on the same connection: no reconnect');
});

t.test('a project token the server refuses in the file: logged, the session stays as attached', async (t) => {
  const held = await holding(t);
  await writeToken(held.tokenFile, 'not-the-project-token');
  await waitFor(async () => /the new project token was refused/.test(await readFile(held.world.logFile, 'utf8')), {
    what: 'the refusal in the log',
    timeoutMs: 15_000,
  });
  t.equal(await held.step('def'), 'ok 3', 'a write on the open file, with the session attached before');
  t.equal(await held.step(''), 'ok None', 'and its close()');
  t.equal(await readFile(join(held.exported, 'w.txt'), 'utf8'), 'abcdef', "every byte is on the node's disk");
  t.equal((await sh(`cat ${q(join(held.data, 'w.txt'))}`)).stdout, 'abcdef', 'fresh reads go on');
});

t.test('a reconnect with a project token the server no longer takes: attached without it, the node shown again', async (t) => {
  // Every action open: a session without the token may read, watch and relay.
  const open = { access_policy: { actions: { read: 'open', observe: 'open', invoke: 'open', mount: 'open' } } };
  const m = await mounted(t, open);
  const nodes = join(m.world.mount, 'nodes');
  const shown = (what: string): Promise<boolean> =>
    waitFor(async () => (await sh(`ls ${q(nodes)}`)).stdout.split('\n').includes(NODE_ID), { what, timeoutMs: 30_000 });
  const logSince = async (offset: number): Promise<string> => (await readFile(m.world.logFile, 'utf8')).slice(offset);
  const REFUSED = /"msg":"the project token was refused: attached without it until its file holds the new one"/;
  await adminRequest(m.control, 'control.project_token_rotate', { project_id: PROJECT });
  await waitFor(async () => REFUSED.test(await logSince(0)), { what: 'the live connection attached without the token', timeoutMs: 15_000 });
  await readable(m.data);
  let offset = (await readFile(m.world.logFile, 'utf8')).length;
  const control = await m.control.restart();
  await shown('the node through the mount after the control server restarted');
  await readable(m.data);
  const restarted = await logSince(offset);
  t.match(restarted, REFUSED, 'the reconnect: the token refused, attached without it');
  const lostForIt = restarted.split('\n').filter((line) => line.includes('control server connection failed') && line.includes('with that project token'));
  t.same(lostForIt, [], 'the refusal is not taken for a failed connection');

  // Deleted and made again under its id with another token: the mount attaches to it, without the token too.
  offset = (await readFile(m.world.logFile, 'utf8')).length;
  await adminRequest(control, 'control.project_delete', { project_id: PROJECT });
  await waitFor(async () => /project gone: nothing shown/.test(await logSince(offset)), { what: 'the project gone', timeoutMs: 15_000 });
  await adminRequest(control, 'control.project_upsert', { project_id: PROJECT, mounts: MOUNTS, token: 'another-project-token-0123456789', ...open });
  await shown('the node through the mount once the project is made again');
  t.match(await logSince(offset), REFUSED, 'made again: the token refused, attached without it');

  // The file given the project's token: the session attaches with it, on the same connection.
  offset = (await readFile(m.world.logFile, 'utf8')).length;
  await writeToken(m.tokenFile, 'another-project-token-0123456789');
  await waitFor(async () => /attached again with the new project token/.test(await logSince(offset)), { what: 'attached with the token', timeoutMs: 15_000 });
  t.notMatch(await logSince(offset), /"msg":"reconnecting"/, 'no reconnect');
  await readable(m.data);
});
