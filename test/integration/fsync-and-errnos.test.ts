// Issue 10, items 1 and 12, through real mounts: fsync/fdatasync are a real sync on fs/ exports, on
// the node and through WorldFS (on a service's files they are no-ops that succeed: the service-files
// conformance suite, test/integration/suites/service-files.ts, checks those on both mounts), and a
// failure gets the same errno name on the node mount and on a WorldFS mount (one mapping), even an
// errno that is not in our own registry.
import t from 'tap';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ControlClient } from '../../src/protocol/control-client.js';
import { joinToken, startControl } from '../helpers/control.js';
import { manifest, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const NODE_ID = 'test-node';
const control = await startControl(t);
const dir = await tempDir(t);
const exported = join(dir, 'exported');
await mkdir(join(exported, 'sub'), { recursive: true });
const tokenFile = join(dir, 'join-token');
await writeFile(tokenFile, `${await joinToken(control.dataDir)}\n`, { mode: 0o600 });
const node = await startNode(t, {
  manifests: [manifest('cat', 'cat', { permissions: { allow_roles: ['admin'], default: 'deny-by-default' } })],
  args: ['--control-url', control.url, '--join-token-file', tokenFile, '--export', `data=${exported}:rw`],
});
await waitFor(
  async () => {
    const client = await ControlClient.connect({ url: control.url, token: control.adminToken, requestTimeoutMs: 5_000 });
    try {
      const doc = await client.request<{ services: Array<{ service_id: string }> }>('control.node_get', { node_id: NODE_ID });
      return doc.services.some((s) => s.service_id === 'cat');
    } catch {
      return false;
    } finally {
      client.terminate();
    }
  },
  { what: 'the node catalog on the server', timeoutMs: 20_000 },
);
const world = await startWorld(t, { url: control.url, token: control.adminToken });

const mounts = [
  ['node', node.mount],
  ['WorldFS', world.node(NODE_ID)],
] as const;

/** Writes `text` to `path` with os.write, then fsync, fdatasync and an fsync of its directory; prints what failed. */
const PY_SYNC = `
import os, sys
path, text = sys.argv[1], sys.argv[2].encode()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, text)
os.fsync(fd)
os.write(fd, text)
os.fdatasync(fd)
os.close(fd)
d = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
os.fsync(d)
os.fdatasync(d)
os.close(d)
print("synced")
`;

for (const [where, root] of mounts) {
  await t.test(`${where}: os.fsync and os.fdatasync on a file written in an fs/ export, and on its directory`, async (tt) => {
    const name = `synced-${where}.txt`;
    const r = await sh(`python3 -c ${q(PY_SYNC)} ${q(join(root, 'fs', 'data', 'sub', name))} 'durable line\n'`);
    tt.equal(r.code, 0, `python exits 0 (${r.stderr.trim()})`);
    tt.equal(r.stdout.trim(), 'synced');
    tt.equal(await readFile(join(exported, 'sub', name), 'utf8'), 'durable line\ndurable line\n', 'the data is in the exported file');
  });
}

await t.test('one errno mapping: the node mount and WorldFS answer a failure alike, ETXTBSY included', async (tt) => {
  // A program running from the export cannot be opened for writing: the file system says ETXTBSY,
  // an errno outside Acheron's own registry (which the relay used to turn into EIO).
  const busy = join(exported, 'busy-program');
  await copyFile('/bin/sleep', busy);
  const running = spawn(busy, ['60'], { stdio: 'ignore' });
  tt.teardown(() => void running.kill('SIGKILL'));
  await waitFor(async () => (await readFile(`/proc/${running.pid}/cmdline`, 'utf8').catch(() => '')).startsWith(busy), {
    what: 'the program from the export running',
  });
  const errnoOf = async (path: string, how: string): Promise<string> => {
    const r = await sh(
      `python3 -c ${q(`import errno, sys\ntry:\n    ${how}\n    print("OK")\nexcept OSError as e:\n    print(errno.errorcode[e.errno])`)} ${q(path)}`,
    );
    return r.stdout.trim();
  };
  const cases: Array<[string, string, string]> = [
    ['busy-program', 'open(sys.argv[1], "wb")', 'ETXTBSY'],
    ['missing.txt', 'open(sys.argv[1], "rb")', 'ENOENT'],
    ['sub', 'open(sys.argv[1], "wb")', 'EISDIR'],
  ];
  for (const [name, how, expected] of cases) {
    const answers = await Promise.all(mounts.map(([, root]) => errnoOf(join(root, 'fs', 'data', name), how)));
    tt.same(answers, [expected, expected], `${name}: ${expected} on the node and through WorldFS`);
  }
});
