// SPEC §9 WorldFS and §8 tokens: a mount started with --token-file survives the rotation of its
// token. The server closes the sessions of a rotated token at once (the mount answers ENOTCONN);
// the new token written into the file reaches the running mount, which reconnects with it, no
// restart: in the foreground and as the detached daemon of the fstab helper (given a relative file
// name, which it reads again from wherever it runs).
import t from 'tap';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron, adminRequest, startControl } from '../helpers/control.js';
import { ACHERON, tempDir } from '../helpers/node.js';
import { alive, daemonsUsing, killDaemonsUsing, q, sh, waitFor } from '../helpers/process.js';
import { startWorld } from '../helpers/world.js';

t.test('a rotated user token written into --token-file reaches running mounts', async (t) => {
  const control = await startControl(t);
  const dir = await tempDir(t, 'acheron-world-token-');
  const tokenFile = join(dir, 'user-token');
  await writeFile(tokenFile, `${control.userToken}\n`, { mode: 0o600 });
  // A user session watches through a project; this one has no nodes, so nodes/ lists empty.
  await adminRequest(control, 'control.project_upsert', { project_id: 'p', mounts: [], access_policy: { actions: { read: 'open', observe: 'open' } } });

  const foreground = await startWorld(t, { url: control.url, token: 'overridden-by-the-file', args: ['--token-file', tokenFile, '--project', 'p'] });
  const helperMount = join(dir, 'helper-mnt');
  t.teardown(async () => {
    await killDaemonsUsing(helperMount); // its lock: removed with the temp dir
    await sh(`fusermount -uz ${q(helperMount)} 2>/dev/null; true`);
  });
  // What mount.fuse3 runs for an fstab line, from the token's directory with a relative token_file.
  const helper = await sh(
    `cd ${q(dir)} && mkdir -p helper-mnt && node ${q(ACHERON)} ${q(`world:${control.url}`)} ${q(helperMount)} -o ${q(`token_file=user-token,project=p,log_file=${join(dir, 'helper.log')}`)}`,
    { timeoutMs: 60_000 },
  );
  t.equal(helper.code, 0, `the helper mounted (${helper.stderr.trim()})`);
  const [daemon] = await daemonsUsing(helperMount);
  t.ok(daemon !== undefined, 'a detached daemon serves the helper mount');

  const listing = async (mount: string) => sh(`ls -1 ${q(join(mount, 'nodes'))}`);
  for (const mount of [foreground.mount, helperMount]) t.equal((await listing(mount)).code, 0, `${mount}: nodes/ lists with the token`);

  // The same token written again (a config management run, a secret re-projected): the connection stays.
  await writeFile(`${tokenFile}.new`, `${control.userToken}\n`, { mode: 0o600 });
  await rename(`${tokenFile}.new`, tokenFile);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.notMatch(await readFile(foreground.logFile, 'utf8'), /reconnecting/, 'the same token again: no reconnect');

  const rotated = await acheron(['token', 'rotate', 'user', '--data-dir', control.dataDir]);
  t.equal(rotated.code, 0, rotated.stderr.trim());
  const newToken = rotated.stdout.trim().split('\n')[1] as string;
  t.not(newToken, control.userToken, 'a new user token');
  for (const mount of [foreground.mount, helperMount]) {
    const cut = await waitFor(
      async () => {
        const r = await listing(mount);
        return r.code !== 0 && r;
      },
      { what: `${mount}: the rotated token's session closed` },
    );
    t.match(cut.stderr, /Transport endpoint is not connected/, `${mount}: ENOTCONN while the file holds the old token`);
  }

  await writeFile(`${tokenFile}.new`, `${newToken}\n`, { mode: 0o600 });
  await rename(`${tokenFile}.new`, tokenFile);
  for (const mount of [foreground.mount, helperMount]) {
    await waitFor(async () => (await listing(mount)).code === 0, { what: `${mount}: back with the token from the file`, timeoutMs: 15_000 });
    t.pass(`${mount}: lists again with the new token`);
  }
  t.ok(await alive(foreground.child.pid as number), 'the foreground mount never restarted');
  t.ok(await alive(daemon as number), 'nor the helper daemon');
});
