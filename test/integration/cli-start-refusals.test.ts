// SPEC §1 for the daemons' start: a node, a world or a control server given what cannot work
// (a log file no directory can hold, a join that cannot succeed, a driver user that is no user, an
// option given no value) refuses at once, one line naming it, before it mounts or serves; and what it
// can serve with (a refused join token) it serves, saying so. Split from cli-usage.test.ts, whose
// one-shot cases alone fill a file's time on a loaded machine.
import t from 'tap';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron, joinToken, oneLine, refusingPort, startControl } from '../helpers/control.js';
import { ACHERON, isMounted, readText, startNode, tempDir } from '../helpers/node.js';
import { killDaemonsUsing, q, sh, waitFor, type ShResult } from '../helpers/process.js';
import { ECHO_WASM } from '../helpers/wat.js';
import { tmpfsDir } from '../helpers/tmpfs.js';

const control = await startControl(t);

t.test('--log-level and --log-file: refused by every command that logs', async (tt) => {
  for (const args of [['control'], ['node'], ['world', '--token', 'x']]) {
    const r = await acheron([...args, '--log-level', 'loud']);
    tt.equal(r.code, 2, `${args[0]} --log-level loud: exit 2`);
    oneLine(tt, r.stderr, /log-level.*loud/);
  }
  const dir = await tempDir(tt);
  const logFile = await acheron(['control', '--data-dir', join(dir, 'data'), '--log-file', '/proc/nope/control.log']);
  tt.equal(logFile.code, 2, 'a log file no directory can hold: exit 2');
  oneLine(tt, logFile.stderr, /^acheron: --log-file \/proc\/nope\/control\.log: ENOENT: .*mkdir '\/proc\/nope'/);
  tt.same(await readdir(dir), [], 'and no data dir left behind (an empty one was)');
  // --daemon opens the log file before it detaches: refused alike, not a bare ENOENT or EISDIR with exit 1.
  const node = ['node', '--node-id', 'x', '--mount', join(dir, 'mnt'), '--no-fs-service', '--state-file', join(dir, 'x.json')];
  const world = ['world', '--mount', join(dir, 'mnt'), '--token', 'x', '--control-url', control.url];
  for (const args of [node, world, ['control', '--data-dir', join(dir, 'data')]])
    for (const daemon of args[0] === 'control' ? [[]] : [[], ['--daemon']]) {
      const what = `${args[0]} ${daemon.join(' ')}`;
      const noDir = await acheron([...args, ...daemon, '--log-file', '/proc/nope/x.log']);
      tt.equal(noDir.code, 2, `${what}: a log file no directory can hold: exit 2`);
      oneLine(tt, noDir.stderr, /^acheron: --log-file \/proc\/nope\/x\.log: ENOENT: .*mkdir '\/proc\/nope'/);
      const isDir = await acheron([...args, ...daemon, '--log-file', dir]);
      tt.equal(isDir.code, 2, `${what}: a directory as the log file: exit 2`);
      oneLine(tt, isDir.stderr, /^acheron: --log-file .*: EISDIR/);
    }
  const dataDir = await acheron(['control', '--data-dir', '/proc/acheron-data']);
  tt.equal(dataDir.code, 2, 'a data dir that cannot be made: exit 2');
  oneLine(tt, dataDir.stderr, /^acheron: --data-dir \/proc\/acheron-data: ENOENT: .*mkdir '\/proc\/acheron-data'/);
  await writeFile(join(dir, 'a-file'), '');
  const notDir = await acheron(['control', '--data-dir', join(dir, 'a-file')]);
  tt.equal(notDir.code, 2, 'a data dir that is a file: exit 2');
  oneLine(tt, notDir.stderr, /^acheron: --data-dir .*a-file: ENOTDIR/);
  const mount = await acheron(['node', '--mount', '/proc/acheron-mnt', '--no-fs-service', '--state-file', join(dir, 'state.json')]);
  tt.equal(mount.code, 1, 'a mount point that cannot be made: exit 1 (the daemon makes it at its start, as it clears a stale mount there)');
  oneLine(tt, mount.stderr, /^acheron: --mount \/proc\/acheron-mnt: ENOENT: .*mkdir '\/proc\/acheron-mnt'/);
  // Under a regular file: named by the option as --data-dir is, also through --daemon (the parent says the daemon's reason).
  const underFile = join(dir, 'a-file', 'x');
  const nodeArgs = ['node', '--node-id', 'fixcli-usage', '--no-fs-service', '--log-file', join(dir, 'node.log')];
  const readOnly = await tmpfsDir(tt, '64k');
  await mkdir(join(readOnly, 'ctl'));
  await sh(`mount -o remount,ro ${q(readOnly)}`);
  const cases: Array<[string[], RegExp]> = [
    [[...nodeArgs, '--mount', underFile, '--state-file', join(dir, 'state.json')], /^acheron: --mount \S+\/a-file\/x: ENOTDIR: /],
    [
      [...nodeArgs, '--mount', join(dir, 'mnt'), '--state-file', join(underFile, 'state.json')],
      /^acheron: --state-file \S+\/a-file\/x\/state\.json: ENOTDIR: not a directory, stat '\S+\/a-file\/x'$/,
    ],
    [
      [...nodeArgs, '--daemon', '--mount', join(dir, 'mnt'), '--state-file', join(underFile, 'state.json')],
      /^acheron: --state-file \S+\/a-file\/x\/state\.json: ENOTDIR: /,
    ],
    // No --log-file: the daemon's default one goes beside the state file. It was refused as
    // `--log-file …/a-file/n18.log: ENOTDIR` (exit 2), naming a flag the operator never gave.
    [
      ['node', '--node-id', 'n18', '--no-fs-service', '--daemon', '--mount', join(dir, 'mnt'), '--state-file', join(dir, 'a-file', 'n18.json')],
      /^acheron: --state-file \S+\/a-file\/n18\.json: ENOTDIR: not a directory, mkdir '\S+\/a-file'$/,
    ],
    // Its directory there but read-only: the same (it was `--log-file …: EROFS`, exit 2).
    [
      ['node', '--node-id', 'n19', '--no-fs-service', '--daemon', '--mount', join(dir, 'mnt'), '--state-file', join(readOnly, 'ctl', 'n19.json')],
      /^acheron: --state-file \S+\/ctl\/n19\.json: EROFS: read-only file system, access '\S+\/ctl'$/,
    ],
    [
      ['world', '--mount', underFile, '--token', 'x', '--control-url', control.url, '--log-file', join(dir, 'world.log')],
      /^acheron: --mount \S+\/a-file\/x: ENOTDIR: /,
    ],
    // A data dir there but read-only: named by its option too (it was the bare `EROFS: …, open '…/auth_tokens.json.lock'`).
    [
      ['control', '--data-dir', join(readOnly, 'ctl'), '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'],
      /^acheron: --data-dir \S+\/ctl: EROFS: read-only file system, open '\S+\/ctl\/auth_tokens\.json\.lock'$/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 1, `${args.join(' ')}: exit 1, as any start-up failure of the daemon`);
    oneLine(tt, r.stderr, message);
  }
  tt.notOk(await isMounted(join(dir, 'mnt')), 'nothing mounted');
  // Node 20's recursive mkdir spins forever on these: such a run is killed after sh's 60 s, and its
  // exit code (not 2) fails the case. A bound on the whole loop failed on a loaded CI machine (32.7 s).
});

t.test('node with a control server: it must be able to join, or it does not start', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'mnt');
  const base = ['node', '--mount', mount, '--state-file', join(dir, 'state.json'), '--control-url', control.url, '--no-fs-service'];
  const missing = await acheron([...base, '--daemon', '--join-token-file', join(dir, 'no-such-token')]);
  tt.equal(missing.code, 2, `--daemon with a join token file that is not there: exit 2, not 0 (${missing.stderr.trim()})`);
  oneLine(tt, missing.stderr, /--join-token-file .*no-such-token: ENOENT/);
  const none = await acheron([...base, '--daemon']);
  tt.equal(none.code, 2, 'no state file and no join token: exit 2');
  oneLine(tt, none.stderr, /--control-url needs --join-token-file: .*state\.json holds no node secret/);
  await writeFile(join(dir, 'empty'), '\n');
  const empty = await acheron([...base, '--join-token-file', join(dir, 'empty')]);
  tt.equal(empty.code, 2, 'an empty join token file: exit 2');
  oneLine(tt, empty.stderr, /the file is empty/);
  tt.notOk(await isMounted(mount), 'nothing was mounted');
  const world = ['world', '--daemon', '--mount', mount, '--control-url', control.url, '--token', control.userToken, '--project', 'p'];
  const emptyProjectToken = await acheron([...world, '--project-token-file', join(dir, 'empty')]);
  tt.equal(
    emptyProjectToken.code,
    2,
    `world --daemon with an empty project token file: exit 2 before detaching (was 1, "daemon exited") (${emptyProjectToken.stderr.trim()})`,
  );
  oneLine(tt, emptyProjectToken.stderr, /--project-token-file .*empty/);
  tt.notOk(await isMounted(mount), 'nothing was mounted');
});

t.test('node --driver-user that is no user: it does not start, whatever its manifests (none, or wasm only)', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'mnt');
  const services = join(dir, 'services.d');
  await mkdir(services);
  // The old code started with these (--daemon: detached); ended, whatever the outcome.
  tt.teardown(async () => {
    await killDaemonsUsing(dir);
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  const base = ['node', '--node-id', 'fc2-user', '--mount', mount, '--state-file', join(dir, 'state.json'), '--no-fs-service', '--daemon'];
  const user = ['--driver-user', 'fc2-nosuchuser'];
  const none = await acheron([...base, ...user]);
  tt.equal(none.code, 1, `no manifest: exit 1, as with a terminal (${none.stderr.trim()})`);
  oneLine(tt, none.stderr, /^acheron: --driver-user "fc2-nosuchuser": no such user in \/etc\/passwd \(nor a uid\[:gid\]\)$/);
  tt.notOk(await isMounted(mount), 'nothing mounted');
  await writeFile(join(services, 'w.json'), JSON.stringify({ service_id: 'w', kind: 'echo', runtime: { type: 'wasm', module_path: ECHO_WASM } }));
  const wasm = await acheron([...base, '--services-dir', services, ...user]);
  tt.equal(wasm.code, 1, 'a wasm manifest only: exit 1');
  // Not charged to the wasm manifest, which runs as no user.
  oneLine(tt, wasm.stderr, /^acheron: --driver-user "fc2-nosuchuser": no such user /);
  tt.notOk(await isMounted(mount), 'nothing mounted');
  const known = await acheron([...base, '--services-dir', services, '--driver-user', 'nobody']);
  tt.equal(known.code, 0, `a known user: the node starts (${known.stderr.trim()})`);
  tt.ok(await isMounted(mount), 'mounted');
});

t.test('node with a refused join token: it serves its tree and says so at error level, and NODE.json keeps saying it', async (tt) => {
  const dir = await tempDir(tt);
  const tokenFile = join(dir, 'join-token');
  await writeFile(tokenFile, 'ach_join_not-a-token\n');
  // A second server of the list that is down: its connect error must not hide the refusal.
  const down = `ws://127.0.0.1:${await refusingPort()}`;
  const node = await startNode(tt, {
    dir,
    args: ['--control-url', `${control.url},${down}`, '--join-token-file', tokenFile, '--reconnect-backoff-ms', '200', '--reconnect-backoff-max-ms', '400'],
  });
  const refused = await waitFor(
    async () => (await readText(node.logFile)).split('\n').find((line) => line.includes('"level":50') && line.includes('refused')),
    {
      what: 'an error-level line about the refusal',
    },
  );
  tt.match(refused, /401/, 'the refusal names the HTTP status');
  // Tried the server that is down since, and the refusing one again.
  await waitFor(async () => (await readText(node.logFile)).split('\n').filter((line) => line.includes(down)).length >= 2, {
    what: 'two attempts on the server that is down',
  });
  const status = JSON.parse(await readText(join(node.mount, 'NODE.json'))) as { control?: { last_error?: string } };
  tt.match(
    status.control?.last_error ?? '',
    new RegExp(`^${control.url}: .*401`),
    'NODE.json says why it is not connected: the refusal, not the other server being down',
  );
  // The token file is read again at every attempt: a good one put there joins.
  await writeFile(tokenFile, (await joinToken(control.dataDir)) + '\n');
  await waitFor(async () => (JSON.parse(await readText(join(node.mount, 'NODE.json'))) as { control?: { state?: string } }).control?.state === 'connected', {
    what: 'the node joined with the new token',
  });
  tt.pass('joined once a good token was in the file');
});

t.test('node with a damaged state file: named, not taken for "never joined"; a join sets it aside, logged', async (tt) => {
  const dir = await tempDir(tt);
  const stateFile = join(dir, 'node-state.json');
  const saved = JSON.stringify({ node_id: 'test-node', node_secret: 's'.repeat(40), control_url: control.url, joined_ms: 1 }, null, 2);
  // As `head -c 30` leaves it: a crash or a full disk mid-copy, a bad restore.
  await writeFile(stateFile, saved.slice(0, 30));
  const args = (file: string) => [
    'node',
    '--node-id',
    'test-node',
    '--mount',
    join(dir, 'mnt'),
    '--state-file',
    file,
    '--control-url',
    control.url,
    '--no-fs-service',
  ];
  const refused = await acheron(args(stateFile));
  tt.equal(refused.code, 2, 'no join token: exit 2');
  oneLine(
    tt,
    refused.stderr,
    /node-state\.json holds no node secret for test-node \(it is not JSON \(30 bytes; invalid JSON at line \d+, column \d+ .*\): given a join token, the node sets it aside/,
  );
  tt.notMatch(refused.stderr, /has not joined yet/, 'not taken for a node that never joined');
  await mkdir(stateFile + '.d');
  const unreadable = await acheron(args(stateFile + '.d'));
  tt.equal(unreadable.code, 1, 'a state file that cannot be read: exit 1');
  oneLine(tt, unreadable.stderr, /^acheron: --state-file .*node-state\.json\.d: EISDIR/);
  const tokenFile = join(dir, 'join-token');
  await writeFile(tokenFile, (await joinToken(control.dataDir)) + '\n');
  const node = await startNode(tt, { dir, args: ['--control-url', control.url, '--join-token-file', tokenFile] });
  const logged = await waitFor(
    async () => (await readText(node.logFile)).split('\n').find((line) => line.includes('"level":50') && line.includes('node credentials')),
    { what: 'an error-level line about the damaged state file' },
  );
  tt.match(logged, /node-state\.json is not JSON .*set aside as .*node-state\.json\.corrupt-\d+/);
  const aside = (await readdir(dir)).filter((name) => name.startsWith('node-state.json.corrupt-'));
  tt.equal(aside.length, 1, 'set aside, not deleted');
  tt.equal(await readText(join(dir, aside[0] as string)), saved.slice(0, 30), 'as it was');
  await waitFor(async () => (JSON.parse(await readText(join(node.mount, 'NODE.json'))) as { control?: { state?: string } }).control?.state === 'connected', {
    what: 'the node joined again',
  });
  tt.match(JSON.parse(await readText(stateFile)), { node_id: 'test-node', node_secret: String }, 'new credentials in place');
});

t.test('world: a failed start is one line, no log line with a stack before it', async (tt) => {
  const dir = await tempDir(tt);
  const unreachable = await acheron(['world', '--control-url', 'ws://127.0.0.1:1', '--token', 'x', '--mount', join(dir, 'a')]);
  tt.equal(unreachable.code, 1, 'server out of reach: exit 1');
  // After three rounds, as the one-shot commands give up (it gave up after one try, in other words).
  oneLine(tt, unreachable.stderr, /^acheron: unavailable: no control server answered \(3 rounds over 1 URL\): ws:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/);
  // As mount.fuse3 runs it for a world: line with the token itself on it: taken, with a warning.
  await mkdir(join(dir, 'helper'));
  const inLine = await acheron(['world:ws://127.0.0.1:1', join(dir, 'helper'), '-o', `token=x,log_file=${join(dir, 'helper.log')}`]);
  tt.equal(inLine.code, 1, 'mount line with token=: the start fails as above');
  tt.match(
    inLine.stderr,
    /^acheron: warning: mount option token= shows the token in the mount line and the process list: use token_file=FILE$/m,
    'with a warning',
  );
  // A world: line's usage errors too (they named --token-file and --control-url).
  const worldFile = await acheron(['world:ws://127.0.0.1:1', join(dir, 'helper'), '-o', `token_file=${join(dir, 'nope')}`]);
  tt.equal(worldFile.code, 2, 'world mount line, a token file that is not there: exit 2');
  oneLine(tt, worldFile.stderr, /^acheron: mount option token_file \S+\/nope: ENOENT: /);
  const worldUrl = await acheron(['world:http://x', join(dir, 'helper'), '-o', `token_file=${join(dir, 'helper.log')}`]);
  tt.equal(worldUrl.code, 2, 'world mount line, not a ws URL: exit 2');
  oneLine(tt, worldUrl.stderr, /^acheron: the mount source's URL "http:\/\/x": expected ws:\/\/host:port/);
  // A node mount line's usage error names its options, not the flags it does not have.
  const nodeLine = await acheron(['acheron', join(dir, 'helper'), '-o', `control_url=ws://127.0.0.1:1,state_file=${join(dir, 'state', 'node.json')}`]);
  tt.equal(nodeLine.code, 2, 'node mount line without a join token: exit 2');
  oneLine(tt, nodeLine.stderr, /^acheron: mount option control_url needs mount option join_token_file: .* holds no node secret/);
  const badToken = await acheron(['world', '--control-url', control.url, '--token', 'not-a-token', '--mount', join(dir, 'b')]);
  tt.equal(badToken.code, 1, 'bad token: exit 1');
  oneLine(tt, badToken.stderr, /^acheron: unauthorized: .*401 \(no token, or a wrong or revoked one, or a join token already used or expired\)/);
  const noProject = await acheron(['world', '--control-url', control.url, '--token', control.userToken, '--project', 'nope', '--mount', join(dir, 'c')]);
  tt.equal(noProject.code, 1, 'unknown project: exit 1');
  oneLine(tt, noProject.stderr, /^acheron: not_found: no project nope/);
  // The same from a world: mount line: the server's refusal in the line's terms (it said --project-token-file).
  const userFile = join(dir, 'user-token');
  await writeFile(userFile, `${control.userToken}\n`);
  await mkdir(join(dir, 'd'));
  const lineProject = await acheron([`world:${control.url}`, join(dir, 'd'), '-o', `token_file=${userFile},project=nope,log_file=${join(dir, 'd.log')}`]);
  tt.equal(lineProject.code, 1, 'mount line, unknown project: exit 1');
  oneLine(tt, lineProject.stderr, /^acheron: not_found: no project nope .*\(check the id, or pass mount option project_token_file FILE\)$/);
  // The server's refusals name protocol fields (control.session_attach, project_token); the CLI names the flags.
  const user = ['world', '--control-url', control.url, '--token', control.userToken];
  const noSession = await acheron([...user, '--mount', join(dir, 'd')]);
  tt.equal(noSession.code, 1, 'a user token without --project: exit 1');
  oneLine(tt, noSession.stderr, /^acheron: forbidden: a user WorldFS mount needs a project session: pass --project <project_id>$/);
  const detached = await acheron([...user, '--mount', join(dir, 'e'), '--daemon', '--log-file', join(dir, 'world.log')]);
  tt.equal(detached.code, 1, 'the same with --daemon: exit 1');
  oneLine(tt, detached.stderr, /^acheron: forbidden: a user WorldFS mount needs a project session: pass --project <project_id>$/);
  const upsert = await acheron(['project', 'upsert', '--file', '-', '--control-url', control.url, '--token', control.adminToken], {
    input: JSON.stringify({ project_id: 'needs-token', token: 'a-project-token-0123456789', access_policy: { actions: { read: 'open' } } }),
  });
  tt.equal(upsert.code, 0, upsert.stderr);
  const noToken = await acheron([...user, '--project', 'needs-token', '--mount', join(dir, 'f')]);
  tt.equal(noToken.code, 1, 'a project whose observe needs its token, without it: exit 1');
  oneLine(tt, noToken.stderr, /^acheron: forbidden: project needs-token: observe needs the project token: pass --project-token-file FILE$/);
});

t.test("an option given no value (a bare state_file in mount -o, --state-file ''): exit 2 naming it, nothing mounted or written", async (tt) => {
  const dir = await tempDir(tt);
  const cwd = join(dir, 'cwd');
  const mount = join(dir, 'mnt');
  await mkdir(cwd);
  await mkdir(mount);
  // The old code mounted and detached a daemon here: ended, whatever the outcome.
  tt.teardown(async () => {
    await killDaemonsUsing(dir);
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  const run = (args: string[]): Promise<ShResult> => sh(`exec node ${q(ACHERON)} ${args.map(q).join(' ')}`, { cwd });
  const line = (option: string): string[] => [
    'node',
    mount,
    '-o',
    `rw,node_id=fc2-empty,state_file=${join(dir, 'st.json')},no_fs_service,log_file=${join(dir, 'n.log')},${option},dev,suid`,
  ];
  const cases: Array<[string[], RegExp]> = [
    [line('state_file'), /^acheron: mount option state_file: needs a value \(empty given\)$/],
    [line('services_dir'), /^acheron: mount option services_dir: needs a value /],
    [line('service_manifest'), /^acheron: mount option service_manifest: needs a value /],
    [line('join_token_file'), /^acheron: mount option join_token_file: needs a value /],
    [line('config'), /^acheron: mount option config: needs a value /],
    // Empty, it ran drivers as root instead of the mount's default user, nobody.
    [line('driver_user'), /^acheron: mount option driver_user: needs a value /],
    [['node', '--node-id', 'fc2-empty', '--mount', mount, '--no-fs-service', '--state-file', ''], /^acheron: --state-file: needs a value /],
    [
      ['node', '--node-id', 'fc2-empty', '--mount', mount, '--no-fs-service', '--state-file', join(dir, 'st.json'), '--log-file', ''],
      /^acheron: --log-file: needs a value /,
    ],
    [['world', '--mount', '', '--token', 'x', '--control-url', control.url], /^acheron: --mount: needs a value /],
    [['world:' + control.url, mount, '-o', 'token=x,log_file='], /^acheron: mount option log_file: needs a value /],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    tt.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    tt.match(r.stderr.trimEnd().split('\n').at(-1), message);
    tt.notOk(await isMounted(mount), 'nothing mounted');
  }
  tt.same(await readdir(cwd), [], 'no journal or log in the working directory');
});

t.test('--allow-other, --default-permissions: acheron node and acheron world take them (SPEC §9)', async (tt) => {
  for (const command of ['node', 'world']) {
    const help = await acheron([command, '--help']);
    tt.equal(help.code, 0);
    tt.match(help.stdout, /--allow-other /, `acheron ${command} --help lists --allow-other`);
    tt.match(help.stdout, /--default-permissions /, 'and --default-permissions');
  }
});
