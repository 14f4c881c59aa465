import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/node.js';
import { checkDriverUser, checkDriverUsers, lookupUser, readPasswd } from '../../../src/node/driver-users.js';
import type { LoadedService } from '../../../src/manifest/index.js';

const service = (id: string, user?: string): LoadedService => ({
  source: `/m/${id}.json`,
  descriptor: { service_id: id, runtime: { ...(user === undefined ? {} : { user }) } } as unknown as LoadedService['descriptor'],
});

t.test('passwd lookup by name and by number', async (t) => {
  const path = join(await tempDir(t), 'passwd');
  await writeFile(path, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n\nbroken\n');
  const users = await readPasswd(path);
  t.same(lookupUser(users, 'nobody'), { uid: 65534, gid: 65534 });
  t.same(lookupUser(users, '1000'), { uid: 1000, gid: 1000 });
  t.same(lookupUser(users, '1000:50'), { uid: 1000, gid: 50 });
  t.equal(lookupUser(users, 'ghost'), undefined);
});

t.test('unknown users are problems naming the file and path; known ones load', async (t) => {
  const users = new Map([['nobody', { uid: 65534, gid: 65534 }]]);
  const { ok, problems } = checkDriverUsers([service('a', 'nobody'), service('b', 'ghost'), service('c')], users, undefined);
  t.same(
    ok.map((s) => s.descriptor.service_id),
    ['a', 'c'],
  );
  t.equal(problems.length, 1);
  t.match(problems[0], { file: '/m/b.json', json_path: '/runtime/user', rule: 'user' });
  t.match(problems[0]?.message, /no such user "ghost"/);
  const withDefault = checkDriverUsers([service('c')], users, 'ghost');
  t.match(withDefault.problems[0], { json_path: '/', rule: 'user' });
});

t.test('--driver-user: not applied to a wasm manifest (no user runs it); checked at start on its own', async (t) => {
  const users = new Map([['nobody', { uid: 65534, gid: 65534 }]]);
  const wasm = { source: '/m/w.json', descriptor: { service_id: 'w', runtime: { type: 'wasm' } } } as unknown as LoadedService;
  t.same(checkDriverUsers([wasm], users, 'ghost'), { ok: [wasm], problems: [] });
  const path = join(await tempDir(t), 'passwd');
  await writeFile(path, 'nobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n');
  await t.rejects(checkDriverUser('ghost', path), { message: '--driver-user "ghost": no such user in /etc/passwd (nor a uid[:gid])' });
  await t.resolves(checkDriverUser('nobody', path));
  await t.resolves(checkDriverUser('1000:1000', path));
  await t.resolves(checkDriverUser(undefined, path));
});
