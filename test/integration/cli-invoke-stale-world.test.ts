// docs/errors.md ENOTCONN: `acheron invoke --node N --mount DIR` on a WorldFS mount whose daemon is
// gone (kill -9: a stale mount, whose root itself answers ENOTCONN) says so and how to clear it; it
// said the mount had lost its control server and reconnects by itself, which a dead mount never does.
// A live WorldFS that lost its control server answers ENOTCONN only below its root. A real control
// server, node and WorldFS daemon; the CLI as a child process.
import t from 'tap';
import { acheron, startControl, startJoinedNode } from '../helpers/control.js';
import { tempDir } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const NODE_ID = 'n1';
const control = await startControl(t);
const dir = await tempDir(t);
await startJoinedNode(t, control, NODE_ID, dir);

t.test('a WorldFS mount whose daemon was killed: "the daemon that served DIR is gone (a stale mount)"', async (t) => {
  const world = await startWorld(t, { url: control.url, token: control.adminToken });
  const ok = await acheron(['invoke', 'echo', '{"msg":"hi"}', '--node', NODE_ID, '--mount', world.mount]);
  t.equal(ok.code, 0, `the live mount invokes (${ok.stderr.trim()})`);
  process.kill(-(world.child.pid as number), 'SIGKILL');
  await world.exited;
  const r = await acheron(['invoke', 'echo', '{"msg":"hi"}', '--node', NODE_ID, '--mount', world.mount]);
  t.equal(r.code, 1);
  t.equal(
    r.stderr,
    `acheron invoke: echo: ENOTCONN: the daemon that served ${world.mount} is gone (a stale mount): start acheron world again, or fusermount -uz ${world.mount}\n`,
  );
  await sh(`fusermount -uz ${q(world.mount)}`);
});
