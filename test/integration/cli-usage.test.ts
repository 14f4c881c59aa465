// SPEC §1: bad usage is refused at once with exit 2 and one line naming what was wrong, before a
// server or daemon starts with a value that cannot work. Each case below once started anyway: a
// server whose every join then failed, a reload loop at 90 % CPU, a node that mounted and retried a
// join forever with exit 0, a fresh token store made from a mistyped --data-dir, a mkdir spinning.
// And what is not bad usage is not exit 2: a token store locked by another process is exit 1.
// The daemons' start refusals are in cli-start-refusals.test.ts.
import t from 'tap';
import { access, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/main.js';
import { FileTokenStore } from '../../src/control/file-token-store.js';
import { acheron, listTokens, oneLine, startControl } from '../helpers/control.js';
import { ACHERON, isMounted, tempDir } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';

const control = await startControl(t);

t.test('numbers: every duration and count option refuses what is not a whole number in range', async (tt) => {
  const dir = await tempDir(tt);
  const data = ['--data-dir', join(dir, 'data')];
  const mount = ['--mount', join(dir, 'mnt')];
  const cases: Array<[string[], RegExp]> = [
    [['control', ...data, '--lease-ttl-ms', 'abc'], /--lease-ttl-ms abc: expected a whole number from 1000 to 2147483647 \(milliseconds\)/],
    [['control', ...data, '--offline-grace-ms', '-1'], /--offline-grace-ms -1: expected a whole number from 0 /],
    [['control', ...data, '--server-ttl-ms', '99999999999'], /--server-ttl-ms 99999999999: .* to 2147483647/],
    [['control', ...data, '--etcd-start-timeout-ms', '0'], /--etcd-start-timeout-ms 0: /],
    [['node', ...mount, '--manifest-reload-interval-ms', 'abc'], /--manifest-reload-interval-ms abc: /],
    [['node', ...mount, '--shutdown-grace-ms', '-5'], /--shutdown-grace-ms -5: /],
    [['node', ...mount, '--reconnect-backoff-ms', '1.5'], /--reconnect-backoff-ms 1.5: /],
    [['token', 'join', ...data, '--ttl-ms', '-5'], /--ttl-ms -5: expected a whole number from 1 /],
    [['node', 'watch', '--replay-limit', '-3'], /--replay-limit -3: expected a whole number from 0 .*\(events\)/],
    // The value as given: yargs' number type made it NaN, and the line said `(not a number)`.
    [['node', 'watch', '--since', 'abc'], /--since abc: expected a whole number from 0 /],
    [['token', 'join', ...data, '--ttl-ms', 'abc'], /--ttl-ms abc: expected a whole number from 1 /],
    [['world', ...mount, '--token', 'x', '--busy-poll-us', '1x'], /--busy-poll-us 1x: expected a whole number from 0 to 10000 /],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `${args.join(' ')}: exit 2 (${r.stderr.trim()})`);
    oneLine(tt, r.stderr, message);
  }
  await tt.rejects(access(join(dir, 'data')), 'no server ever made its data dir');
  tt.notOk(await isMounted(join(dir, 'mnt')), 'no node ever mounted');
});

t.test('a missing positional: exit 2, naming it with the usage line', async (tt) => {
  const cases: Array<[string[], string]> = [
    [['node', 'get'], 'acheron: node get: missing <node_id> (usage: acheron node get <node_id>)'],
    [['node', 'get', '--json'], 'acheron: node get: missing <node_id> (usage: acheron node get <node_id>)'],
    [['invoke'], 'acheron: invoke: missing <service> (usage: acheron invoke <service> [payload])'],
    [['token'], 'acheron: token: missing <action> (usage: acheron token <action> [id])'],
    [['project', '--control-url', control.url], 'acheron: project: missing <action> (usage: acheron project <action> [project_id])'],
    [
      ['project', 'get', '--control-url', control.url, '--token', control.adminToken],
      'acheron: project get: missing <project_id> (usage: acheron project get <project_id>)',
    ],
    // Checked before any connection, as node get's id is (the server refused it: exit 1).
    [
      ['project', 'get', 'a/b', '--control-url', control.url, '--token', control.adminToken],
      'acheron: project_id "a/b": must be 1-128 characters of [A-Za-z0-9._-], not . or ..',
    ],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    tt.equal(r.stderr, `${message}\n`, `${args.join(' ')}: one line naming the argument`);
  }
  const help = await acheron(['node', 'get', '--help']);
  tt.equal(help.code, 0, '--help still needs no argument');
  tt.match(help.stdout, /acheron node get <node_id>/);
});

t.test('an unknown command: exit 2, one line naming it, the commands there are and the one meant; an extra argument named as one', async (tt) => {
  const cases: Array<[string[], RegExp]> = [
    [['watch'], /^acheron: unknown command watch: did you mean acheron node watch\? \(commands: node, invoke, world, control, token, project\)$/],
    [['nodes'], /^acheron: unknown command nodes: did you mean acheron node\? /],
    [['node', 'lst'], /^acheron: unknown command node lst \(commands: list, watch, get, delete; acheron node alone runs the daemon\)$/],
    // A word after a command that has neither subcommands nor positionals is an extra argument.
    [['control', 'extra'], /^acheron: control: unexpected argument extra \(acheron control takes options only; see --help\)$/],
    [['node', 'list', 'a', 'b'], /^acheron: node list: unexpected arguments a b \(acheron node list takes options only; see --help\)$/],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    oneLine(tt, r.stderr, message);
  }
});

t.test('an id that is not an identifier: exit 2 naming it, checked before any connection (as acheron invoke does)', async (tt) => {
  const admin = ['--control-url', control.url, '--token', control.adminToken];
  const cases: Array<[string[], RegExp]> = [
    [['node', 'get', 'a/b', ...admin], /^acheron: node_id "a\/b": must be 1-128 characters of \[A-Za-z0-9._-\], not \. or \.\.$/],
    [['node', 'watch', '..', ...admin], /^acheron: node_id "\.\.": must be 1-128 characters /],
    [['invoke', 'echo', '--node', 'a/b', ...admin], /^acheron: --node "a\/b": must be 1-128 characters /],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `${args.slice(0, 3).join(' ')}: exit 2 (${r.stderr.trim()})`);
    oneLine(tt, r.stderr, message);
  }
});

t.test(
  'control --listen, --http-listen: a URL is refused at once; a port in use is named with its option; a client at the HTTP port is told the other',
  async (tt) => {
    const dir = await tempDir(tt);
    const url = await acheron(['control', '--data-dir', join(dir, 'a'), '--listen', 'ws://127.0.0.1:7447']);
    tt.equal(url.code, 2, 'a URL: exit 2');
    oneLine(tt, url.stderr, /--listen "ws:\/\/127\.0\.0\.1:7447": expected host:port without a scheme or path \(e\.g\. 127\.0\.0\.1:7447\)$/);
    const taken = new URL(control.httpUrl).host;
    const inUse = await acheron(['control', '--data-dir', join(dir, 'new', 'b'), '--listen', '127.0.0.1:0', '--http-listen', taken]);
    tt.equal(inUse.code, 1, 'a port in use: exit 1');
    tt.match(inUse.stderr, new RegExp(`acheron: --http-listen ${taken.replace(/\./g, '\\.')}: address in use`), 'naming the option and the address');
    const wsTaken = new URL(control.url).host;
    const wsInUse = await acheron(['control', '--data-dir', join(dir, 'new', 'c'), '--listen', wsTaken, '--http-listen', '127.0.0.1:0']);
    tt.equal(wsInUse.code, 1, 'the WebSocket port in use: exit 1');
    tt.match(wsInUse.stderr, new RegExp(`acheron: --listen ${wsTaken.replace(/\./g, '\\.')}: address in use \\(EADDRINUSE`), 'naming it');
    tt.same(await readdir(dir), [], 'neither start left a data dir (nor its parent) behind: it made them, and touched nothing in them');
    const wrongPort = await acheron(['node', 'list', '--control-url', `ws://${taken}`, '--token', control.adminToken]);
    tt.equal(wrongPort.code, 1, 'a client given the HTTP listener: exit 1');
    tt.match(
      wrongPort.stderr,
      `HTTP 400: this is the HTTP listener (health, metrics, debug page): WebSocket clients connect to port ${new URL(control.url).port} (--listen)`,
    );
  },
);

t.test('--tls-cert and --tls-key that TLS cannot use: exit 2 naming both files, not OpenSSL alone', async (tt) => {
  const dir = await tempDir(tt);
  const notPem = join(dir, 'not.pem');
  await writeFile(notPem, 'hello\n');
  const r = await acheron(['control', '--data-dir', join(dir, 'data'), '--tls-cert', notPem, '--tls-key', notPem]);
  tt.equal(r.code, 2, 'exit 2');
  oneLine(tt, r.stderr, new RegExp(`^acheron: --tls-cert ${notPem} --tls-key ${notPem}: not a PEM certificate and its private key \\(.*no start line\\)$`));
});

t.test('token: a data dir without a token store is a mistake, not a new store', async (tt) => {
  const dir = await tempDir(tt);
  const typo = join(dir, 'contrl-data');
  for (const action of [['list'], ['join'], ['create', '--user', 'u1']]) {
    const r = await acheron(['token', ...action, '--data-dir', typo]);
    tt.equal(r.code, 2, `token ${action[0]}: exit 2`);
    oneLine(tt, r.stderr, /--data-dir .*contrl-data: no auth_tokens\.json there/);
    tt.equal(r.stdout, '', 'no token printed');
  }
  await tt.rejects(access(typo), 'nothing created');
  const short = await acheron(['token', 'join', '--ttl-ms', '1', '--data-dir', control.dataDir, '--json']);
  tt.equal(short.code, 0, 'a join token of 1 ms (tests make expired tokens so)');
  const { id } = JSON.parse(short.stdout) as { id: string };
  await new Promise((resolve) => setTimeout(resolve, 20));
  const listed = await acheron(['token', 'list', '--data-dir', control.dataDir]);
  tt.equal(listed.code, 0, 'the real data dir still works');
  tt.match(listed.stdout, /^admin\tadmin\t/m);
  tt.match(listed.stdout, new RegExp(`^${id}\tjoin\texpires \\S+ \\(expired\\)$`, 'm'), 'an expired join token says so');
});

t.test('token create: a --user or --agent that is not an id is named with its value, not taken for a missing one', async (tt) => {
  const data = ['--data-dir', control.dataDir];
  const cases: Array<[string[], string]> = [
    [['--user', 'bad user'], 'acheron: --user "bad user": must be 1-128 characters of [A-Za-z0-9._-], not . or ..\n'],
    [['--user', 'u1', '--agent', 'a/b'], 'acheron: --agent "a/b": must be 1-128 characters of [A-Za-z0-9._-], not . or ..\n'],
    [[], 'acheron: token create needs --user ID (1-128 characters of [A-Za-z0-9._-])\n'],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(['token', 'create', ...args, ...data]);
    tt.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    tt.equal(r.stderr, message);
  }
  // Checked before the store is opened: a store that cannot be opened does not hide the mistake.
  const noStore = await acheron(['token', 'create', '--user', 'bad user', '--data-dir', join(control.dataDir, 'missing')]);
  tt.equal(noStore.stderr, 'acheron: --user "bad user": must be 1-128 characters of [A-Za-z0-9._-], not . or ..\n', 'named before the data dir is looked at');
});

t.test('token: a store that fails, an unknown token id, the last admin token: failures (exit 1), not usage errors', async (tt) => {
  const dataDir = await tempDir(tt);
  await (await FileTokenStore.open(dataDir)).close();
  const data = ['--data-dir', dataDir];
  // Another live process (this test's) holds the lock file; the command opens the store without it and waits at its change.
  await writeFile(join(dataDir, 'auth_tokens.json.lock'), String(process.pid), { flag: 'wx' });
  // (rotate goes the same way: one mapping in token-command.ts; the lock's wait, 10 s, is not to be paid twice.)
  const locked = await acheron(['token', 'revoke', 'user', ...data]);
  tt.equal(locked.code, 1, `token revoke with the store locked by another process: exit 1, not 2 (${locked.stderr.trim()})`);
  oneLine(tt, locked.stderr, /auth_tokens\.json\.lock: locked by process \d+ for over 10000 ms; it is taken for stale once 30000 ms old$/);
  await rm(join(dataDir, 'auth_tokens.json.lock'));
  tt.ok(
    (await listTokens(dataDir)).tokens.some((e) => e.id === 'user'),
    'the user token is still there',
  );
  // The command line is good; the store says no (as `node get` of an unknown node is exit 1).
  const unknown = await acheron(['token', 'revoke', 'nobody', ...data]);
  tt.equal(unknown.code, 1, 'revoke of an unknown token id: exit 1');
  oneLine(tt, unknown.stderr, /^acheron: no token "nobody" \(never made, or already revoked: see acheron token list\)$/);
  const rotateUnknown = await acheron(['token', 'rotate', 'nobody', ...data]);
  tt.equal(rotateUnknown.code, 1, 'rotate of an unknown token id: exit 1');
  oneLine(tt, rotateUnknown.stderr, /^acheron: no token "nobody"/);
  const joinId = (await acheron(['token', 'join', ...data])).stdout.split('\n')[0]?.split(' ')[0] ?? '';
  const rotateJoin = await acheron(['token', 'rotate', joinId, ...data]);
  tt.equal(rotateJoin.code, 1, 'rotate of a join token: exit 1');
  oneLine(tt, rotateJoin.stderr, /is a join token: join tokens are single-use and cannot be rotated/);
  const lastAdmin = await acheron(['token', 'revoke', 'admin', ...data]);
  tt.equal(lastAdmin.code, 1, 'the last admin token: exit 1');
  oneLine(tt, lastAdmin.stderr, /refusing to revoke the last admin token/);
  const noId = await acheron(['token', 'revoke', ...data]);
  tt.equal(noId.code, 2, 'revoke without an id: still bad usage, exit 2');
});

t.test("project upsert: --file - reads stdin; the id given must be the file's", async (tt) => {
  const dir = await tempDir(tt);
  const client = ['--control-url', control.url, '--token', control.adminToken];
  const fromStdin = await acheron(['project', 'upsert', '--file', '-', ...client, '--json'], { input: JSON.stringify({ project_id: 'from-stdin' }) });
  tt.equal(fromStdin.code, 0, `--file - works (${fromStdin.stderr.trim()})`);
  tt.match(JSON.parse(fromStdin.stdout), { project_id: 'from-stdin' });
  const file = join(dir, 'p1.json');
  await writeFile(file, JSON.stringify({ project_id: 'p1' }));
  const namedStdin = await acheron(['project', 'upsert', 'p0', '--file', '-', ...client, '--json'], { input: JSON.stringify({ name: 'from stdin, named' }) });
  tt.equal(namedStdin.code, 0, `an id and --file - (${namedStdin.stderr.trim()})`);
  tt.match(JSON.parse(namedStdin.stdout), { project_id: 'p0', name: 'from stdin, named' });
  const mismatch = await acheron(['project', 'upsert', 'p2', '--file', file, ...client]);
  tt.equal(mismatch.code, 2, "an id that is not the file's: exit 2");
  oneLine(tt, mismatch.stderr, /project upsert p2: --file .*p1\.json is project "p1"/);
  await writeFile(join(dir, 'anon.json'), JSON.stringify({ name: 'named by the command line' }));
  const named = await acheron(['project', 'upsert', 'p3', '--file', join(dir, 'anon.json'), ...client, '--json']);
  tt.equal(named.code, 0, `the id fills a file without one (${named.stderr.trim()})`);
  tt.match(JSON.parse(named.stdout), { project_id: 'p3', name: 'named by the command line' });
  const noId = await acheron(['project', 'upsert', '--file', join(dir, 'anon.json'), '--control-url', 'ws://127.0.0.1:1', '--token', 'x']);
  tt.equal(noId.code, 2, 'no project_id, in the file or as the argument: exit 2, before any connection (none could be made)');
  tt.equal(
    noId.stderr,
    `acheron: project upsert: --file ${join(dir, 'anon.json')} has no project_id: add it to the file, or name the project (acheron project upsert <project_id> --file ${join(dir, 'anon.json')})\n`,
  );
  const empty = await acheron(['project', 'upsert', '--file', '-', ...client], { input: '' });
  tt.equal(empty.code, 2, 'empty stdin: exit 2');
  oneLine(tt, empty.stderr, /--file -: empty/);
  const directory = await sh(`exec node ${q(ACHERON)} ${['project', 'upsert', '--file', '-', ...client].map(q).join(' ')} < /`);
  tt.equal(directory.code, 2, 'a directory on stdin: exit 2');
  oneLine(tt, directory.stderr, /^acheron: --file -: standard input is a directory; give a file \(< file\.json\) or a pipe$/);
  const missing = await acheron(['project', 'upsert', '--file', join(dir, 'nope.json'), ...client]);
  tt.equal(missing.code, 2, 'a missing file: exit 2');
  oneLine(tt, missing.stderr, /--file .*nope\.json: ENOENT/);
  const list = await acheron(['project', 'list', 'extra', ...client]);
  tt.equal(list.code, 2, 'project list takes no id');
  const asUser = await acheron(['project', 'upsert', 'p3', '--file', join(dir, 'anon.json'), '--control-url', control.url, '--token', control.userToken]);
  tt.equal(asUser.code, 1, 'a user without a project session: exit 1');
  oneLine(
    tt,
    asUser.stderr,
    /^acheron: forbidden: project p3 is not this session's: attach a session to project p3 first: pass --project p3; only admins create projects$/,
  );
  const listAsUser = await acheron(['project', 'list', '--control-url', control.url, '--token', control.userToken]);
  tt.equal(listAsUser.code, 1, 'an admin-only command with a user token: exit 1');
  oneLine(tt, listAsUser.stderr, /^acheron: forbidden: this command needs an admin token \(--token-file\), not the token of user \S+$/);
});

t.test('files and URLs the options name: refused with the option named', async (tt) => {
  const dir = await tempDir(tt);
  const tls = await acheron(['control', '--data-dir', join(dir, 'data'), '--tls-cert', join(dir, 'c.pem'), '--tls-key', join(dir, 'k.pem')]);
  tt.equal(tls.code, 2, 'a missing certificate: exit 2');
  oneLine(tt, tls.stderr, /^acheron: --tls-cert .*c\.pem: ENOENT/);
  await tt.rejects(access(join(dir, 'data')), 'the server did not start');
  // The same for the etcd store's files (before, exit 1): refused before any etcd is asked.
  const etcd = ['--store', 'etcd', '--etcd-endpoints', 'https://127.0.0.1:1', '--etcd-cacert', join(dir, 'ca.pem')];
  const [byControl, byToken] = await Promise.all([acheron(['control', '--data-dir', join(dir, 'data'), ...etcd]), acheron(['token', 'list', ...etcd])]);
  for (const [command, missing] of [
    ['control', byControl],
    ['token', byToken],
  ] as const) {
    tt.equal(missing.code, 2, `acheron ${command}: a missing --etcd-cacert: exit 2`);
    oneLine(tt, missing.stderr, /^acheron: --etcd-cacert .*ca\.pem: ENOENT/);
  }
  const port = await acheron(['node', 'list', '--control-url', 'ws://127.0.0.1:99999', '--token', 'x']);
  tt.equal(port.code, 2, 'a port out of range: exit 2');
  oneLine(tt, port.stderr, /--control-url "ws:\/\/127\.0\.0\.1:99999": port 99999 is out of range \(1-65535\)/);
  const extra = await acheron(['token', 'list', 'extra', '--data-dir', control.dataDir]);
  tt.equal(extra.code, 2, 'token list takes no id');
  oneLine(tt, extra.stderr, /token list takes no token id/);
});

t.test('--help of every client command: --control-url takes several servers', async (tt) => {
  // acheron invoke's said "this control server" alone, though it takes a list as the others do.
  for (const command of [['invoke'], ['node', 'list'], ['node', 'watch'], ['project', 'list'], ['world']]) {
    const help = await acheron([...command, '--help']);
    tt.equal(help.code, 0);
    const option = help.stdout.split(/\n(?=  -)/).find((entry) => entry.trimStart().startsWith('--control-url')) ?? '';
    tt.ok(
      option.replace(/\s+/g, ' ').includes('several (servers of one store): comma-separated or repeated, tried in turn'),
      `acheron ${command.join(' ')} --help`,
    );
  }
});

t.test('acheron --help: wrapped between words, and it names the node client commands', async (tt) => {
  const help = await acheron(['--help']);
  tt.equal(help.code, 0);
  const text = help.stdout.replace(/\s+/g, ' ');
  // yargs' ES module build cut words where the column ended ("mou" / "nt the node tree").
  tt.ok(text.includes('run the node daemon: load services, mount the node tree'), 'whole words');
  tt.ok(text.includes('node list | get | watch | delete'), "acheron node's client commands are named");
  tt.ok(
    help.stdout.split('\n').every((line) => line.length <= 80),
    'within 80 columns',
  );
  const listed = [...help.stdout.matchAll(/^ {2}acheron (\w+)/gm)].map((m) => m[1]);
  tt.same(listed, COMMANDS, 'the commands an unknown one is told from are the ones --help lists');
  const unknown = await acheron(['catalog', '--help']);
  tt.equal(unknown.code, 2, 'an unknown command with --help: exit 2, not the top-level help and 0');
  oneLine(tt, unknown.stderr, /^acheron: unknown command catalog \(commands: node, invoke, world, control, token, project\)$/);
});

t.test('node list|get|watch: the daemon options are not theirs', async (tt) => {
  const help = await acheron(['node', 'list', '--help']);
  tt.equal(help.code, 0);
  tt.notMatch(help.stdout, /--mount|--services-dir|--shutdown-grace-ms/, 'their help lists no daemon option');
  tt.match(help.stdout, /--control-url/, 'only the client options');
  const daemonHelp = await acheron(['node', '--help']);
  tt.match(daemonHelp.stdout, /--services-dir/, 'acheron node --help still lists them');
  const mount = await acheron(['node', 'watch', '--mount', '/mnt/x', '--token', 'x']);
  tt.equal(mount.code, 2, 'a daemon option on a client command: exit 2');
  oneLine(tt, mount.stderr, /Unknown argument: mount/);
});
