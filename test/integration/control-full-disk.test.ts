// A control server whose data dir fills up (a real tmpfs): a store write the disk has no room for was
// answered `unavailable: internal error; see the server log`, and a join's token lock was left behind,
// failing every join for 30 s. Now the reply names the file and the errno, and once there is room again
// the next join goes through at once.
import t from 'tap';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, q } from '../helpers/process.js';
import { tmpfsDir } from '../helpers/tmpfs.js';
import { joinToken, session, startControl } from '../helpers/control.js';

// The data dir is the mount itself: the server's log (`<data dir>.log`) stays writable beside it.
const dataDir = await tmpfsDir(t, '512k', '0700');

const filler = join(dataDir, 'filler');

t.test('a full disk: replies name the file and the errno; joins work again at once after', async (t) => {
  const control = await startControl(t, { dataDir });
  const [first, second] = [await joinToken(dataDir), await joinToken(dataDir)];
  const admin = await session(control.url, { token: control.adminToken });
  t.teardown(() => admin.close());
  await sh(`head -c 1M /dev/zero > ${q(filler)}`);

  const upsert = await admin.request('control.project_upsert', { project_id: 'p', name: 'P', mounts: [] });
  t.match(
    upsert.error,
    { code: 'unavailable', message: /^the control server could not read or write its files: state journal .*projects\.journal: ENOSPC/ },
    'a journal write',
  );

  const joiner = await session(control.url, { token: first });
  t.teardown(() => joiner.close());
  const refused = await joiner.request('control.node_join', { join_token: first, node_id: 'n1' });
  t.match(refused.error, { code: 'unavailable', message: /auth_tokens\.json\.lock: the lock could not be written: ENOSPC/ }, 'the token lock');

  await rm(filler);
  const started = Date.now();
  const again = await session(control.url, { token: second });
  t.teardown(() => again.close());
  const joined = await again.request('control.node_join', { join_token: second, node_id: 'n2' });
  t.equal(joined.ok, true, `joined: ${JSON.stringify(joined.error)}`);
  t.ok(Date.now() - started < 5_000, 'at once: no lock was left behind');
});
