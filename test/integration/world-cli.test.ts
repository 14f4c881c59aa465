// SPEC §1: `acheron world` accepts `--foreground` as `acheron node` does (the foreground is the
// default; the flag changes nothing): a world mount started with it goes live, and a bad token
// with it is refused by the server, not by the option parser.
import t from 'tap';
import { join } from 'node:path';
import { acheron, startControl } from '../helpers/control.js';
import { tempDir } from '../helpers/node.js';
import { sh, q } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

const control = await startControl(t);

t.test('--foreground: the mount goes live in the foreground', async (t) => {
  const world = await startWorld(t, { url: control.url, token: control.adminToken, args: ['--foreground'] });
  const listed = await sh(`ls ${q(join(world.mount, 'nodes'))}`);
  t.equal(listed.code, 0, `nodes/ lists: ${listed.stderr}`);
  t.equal(world.child.exitCode, null, 'still running: it did not detach');
});

t.test('--foreground with a bad token: the server refuses it (exit 1), the parser does not (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const r = await acheron(['world', '--foreground', '--control-url', control.url, '--token', 'not-a-token', '--mount', join(dir, 'mnt')]);
  t.equal(r.code, 1, `exit 1: ${r.stderr}`);
  t.notMatch(r.stderr, /Unknown argument/, 'the option is known');
  t.match(r.stderr, /401/, 'the token was refused');
});
