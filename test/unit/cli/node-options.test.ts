// SPEC §1 node options: mount -o parsing, the config file, precedence (command line > -o > config >
// defaults) and the mount-helper argv shape.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { inMountLineTerms } from '../../../src/cli/mount-line-terms.js';
import { worldLineSpelling } from '../../../src/cli/world-options.js';
import { UsageError } from '../../../src/cli/exit.js';
import { isDaemonArgv, isMountHelperArgv } from '../../../src/cli/daemon-argv.js';
import { toDaemonOptions } from '../../../src/cli/node-command.js';
import {
  busyPollWindow,
  defaultOptions,
  defaultStateFile,
  nodeLineSpelling,
  mergeOptions,
  parseMountOptions,
  readConfigFile,
  resolveNodeOptions,
  type NodeOptionValues,
} from '../../../src/cli/node-options.js';

const root = await mkdtemp(join(tmpdir(), 'acheron-node-options-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let files = 0;
async function configFile(content: unknown): Promise<string> {
  const path = join(root, `config-${files++}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

t.test('parseMountOptions', async (tt) => {
  tt.same(
    parseMountOptions('rw,services_dir=/srv/a,node_id=n1,dev,suid'),
    { values: { 'services-dir': ['/srv/a'], 'node-id': 'n1' }, unknown: [] },
    'what mount.fuse3 passes',
  );
  tt.same(
    parseMountOptions('ro,rw,dev,nodev,suid,nosuid,exec,noexec,noauto,nofail,_netdev,defaults,x-systemd.automount,x-foo=1'),
    { values: {}, unknown: [] },
    'generic options are ignored silently',
  );
  tt.same(
    parseMountOptions('services_dir=/a,services_dir=/b,services_dir=/c').values,
    { 'services-dir': ['/a', '/b', '/c'] },
    'services_dir repeats, in order',
  );
  tt.same(parseMountOptions('frobnicate=1,node_id=x,loud').unknown, ['frobnicate=1', 'loud'], 'unknown options are returned for a warning');
  tt.same(parseMountOptions('node_id=x,frobnicate=1').values, { 'node-id': 'x' }, 'and do not stop the known ones');
  tt.same(parseMountOptions('').values, {}, 'no options');
  for (const key of ['state_file', 'services_dir', 'log_file', 'driver_user'])
    for (const item of [key, `${key}=`])
      tt.throws(() => parseMountOptions(`rw,node_id=x,${item},dev`), { name: 'UsageError', message: `mount option ${key}: needs a value (empty given)` }, item);
  tt.same(
    parseMountOptions('no_fs_service,node_id=x').values,
    { 'fs-service': false, 'node-id': 'x' },
    'no_<switch> turns a switch off, as --no-<switch> does (no_fs_service was an unknown option, ignored: fs/ stayed)',
  );
  tt.same(parseMountOptions('no_node_id,no_fs_service=1').unknown, ['no_node_id', 'no_fs_service=1'], 'only a bare no_ of a switch');
  for (const [line, first, second] of [
    ['no_fs_service,fs_service=true', 'no_fs_service', 'fs_service=true'],
    ['fs_service=true,no_fs_service', 'fs_service=true', 'no_fs_service'],
    ['node_id=a,state_sync=batch,node_id=b', 'node_id=a', 'node_id=b'],
  ])
    tt.throws(
      () => parseMountOptions(line as string),
      { name: 'UsageError', message: `mount options ${first} and ${second} contradict each other (give one)` },
      `${line}: refused, as in --config (the last one silently won)`,
    );
  tt.same(
    parseMountOptions('no_fs_service,no_fs_service,node_id=a,node_id=a').values,
    { 'fs-service': false, 'node-id': 'a' },
    'the same said twice is no contradiction',
  );
  tt.same(
    parseMountOptions(
      'busy_poll_us=0,shutdown_grace_ms=250,fs_service=false,state_sync=batch,control_url=ws://h:1,state_file=/s.json,join_token_file=/t,config=/c.json',
    ).values,
    {
      'busy-poll-us': 0,
      'shutdown-grace-ms': 250,
      'fs-service': false,
      'state-sync': 'batch',
      'control-url': ['ws://h:1'],
      'state-file': '/s.json',
      'join-token-file': '/t',
      config: '/c.json',
    },
    'values are coerced to the option types',
  );
  tt.same(
    parseMountOptions('control_url=ws://a:1,control_url=ws://b:2').values,
    { 'control-url': ['ws://a:1', 'ws://b:2'] },
    'control_url repeats: several servers (a comma would end the option)',
  );
  tt.same(parseMountOptions('fs_service').values, { 'fs-service': true }, 'a bare boolean option is true');
  tt.same(
    parseMountOptions('rw,allow_other,default_permissions,dev,suid'),
    { values: { 'allow-other': true, 'default-permissions': true }, unknown: [] },
    "libfuse's allow_other and default_permissions are ours (SPEC §9), not unknown",
  );
  tt.same(parseMountOptions('allow_other=false').values, { 'allow-other': false });
  tt.same(parseMountOptions('label=a=b').values, { label: ['a=b'] }, 'only the first = splits');
  tt.throws(() => parseMountOptions('shutdown_grace_ms=soon'), {
    name: 'UsageError',
    message: 'mount option shutdown_grace_ms soon: expected a whole number from 0 to 2147483647 (milliseconds)',
  });
  tt.throws(
    () => parseMountOptions('reconnect_backoff_ms=0'),
    { message: /reconnect_backoff_ms 0: expected a whole number from 1 / },
    'no backoff is a tight loop',
  );
  tt.throws(() => parseMountOptions('manifest_reload_interval_ms=1.5'), { message: /manifest_reload_interval_ms 1.5: expected a whole number/ });
  tt.throws(
    () => parseMountOptions('reconnect_backoff_max_ms=3000000000'),
    { message: /to 2147483647/ },
    "beyond a Node timer's range a delay fires after 1 ms",
  );
  tt.throws(() => parseMountOptions('log_level=loud'), { message: /log_level: must be one of fatal, error, warn, info, debug, trace, silent/ });
  tt.throws(() => parseMountOptions('state_sync=sometimes'), { message: /state_sync: must be one of always, batch/ });
  tt.throws(() => parseMountOptions('fs_service=maybe'), { message: /fs_service: must be true or false/ });
  tt.throws(() => parseMountOptions('allow_other=maybe'), { name: 'UsageError', message: 'mount option allow_other: must be true or false' });
});

t.test('busyPollWindow', async (tt) => {
  tt.equal(busyPollWindow(undefined), 100, 'the default');
  tt.equal(busyPollWindow(0), 0, 'off');
  tt.equal(busyPollWindow('250'), 250, 'from mount -o');
  tt.throws(
    () => busyPollWindow(Number.NaN),
    { name: 'UsageError', message: '--busy-poll-us (not a number): expected a whole number from 0 to 10000 (microseconds)' },
    'a NaN has no text to show (yargs, which made it of --busy-poll-us abc, now passes the text: AS_GIVEN)',
  );
  tt.throws(() => busyPollWindow('soon'), { message: /--busy-poll-us soon: expected a whole number from 0 to 10000/ });
  tt.throws(() => busyPollWindow(-1), { message: /from 0 to 10000/ });
  tt.throws(() => busyPollWindow(20_000), { message: /from 0 to 10000/ }, 'a longer window is a spin');
});

t.test('readConfigFile', async (tt) => {
  const path = await configFile({
    node_id: 'from-config',
    services_dir: ['/a', '/b'],
    export: 'data=/d:ro',
    shutdown_grace_ms: 10,
    fs_service: false,
    log_level: 'debug',
    allow_other: true,
    default_permissions: true,
  });
  tt.same(
    await readConfigFile(path),
    {
      'node-id': 'from-config',
      'services-dir': ['/a', '/b'],
      export: ['data=/d:ro'],
      'shutdown-grace-ms': 10,
      'fs-service': false,
      'log-level': 'debug',
      'allow-other': true,
      'default-permissions': true,
    },
    'snake_case keys; a single string for a repeatable flag becomes an array',
  );

  for (const [doc, fsService] of [
    [{ no_fs_service: true }, false],
    [{ no_fs_service: false }, true],
    [{ no_fs_service: true, fs_service: false }, false],
  ] as const)
    tt.same(
      await readConfigFile(await configFile(doc)),
      { 'fs-service': fsService },
      `${JSON.stringify(doc)}: no_<switch>, as the mount option (it was "/no_fs_service: unknown key")`,
    );
  for (const doc of [
    { no_fs_service: true, fs_service: true },
    { fs_service: false, no_fs_service: false },
  ]) {
    const file = await configFile(doc);
    const [first, second] = Object.keys(doc);
    await tt.rejects(readConfigFile(file), { name: 'UsageError', message: `--config ${file}: /${second} and /${first} contradict each other (give one)` });
  }

  // A label with a lone surrogate (JSON "\ud800") would make every join and upsert of the node refused: named here.
  const lone = await configFile('{"node_id":"x","label":["k=\\ud800"]}');
  await tt.rejects(readConfigFile(lone), { name: 'UsageError', message: new RegExp(`^--config ${lone}: /label/0: text with a lone surrogate`) });

  const typo = await configFile({ node_id: 'x', nod_id: 'y' });
  const unknown = await readConfigFile(typo).catch((error: unknown) => error as Error);
  tt.type(unknown, UsageError);
  tt.match(unknown, { message: `--config ${typo}: /nod_id: unknown key` }, 'an unknown key is an error naming it and the file');

  const secret = 'join_token: ach_join_Sup3rS3cret\n';
  const notJson = await readConfigFile(await configFile(secret)).catch((error: unknown) => error as Error);
  tt.match(
    notJson,
    { message: /^--config .*: invalid JSON at line 1, column 1 \(byte 0\): unexpected character$/ },
    'a file that is not JSON: its position, never its content',
  );
  tt.notMatch(String(notJson), /S3cret|join_token/);

  const cases: Array<[unknown, RegExp]> = [
    [{ shutdown_grace_ms: 'soon' }, /: \/shutdown_grace_ms soon: expected a whole number from 0 /],
    [{ shutdown_grace_ms: -1 }, /: \/shutdown_grace_ms -1: expected a whole number from 0 /],
    [{ node_id: 5 }, /node_id: must be a string/],
    [{ services_dir: ['/a', 1] }, /services_dir: must be a string or an array of strings/],
    [{ fs_service: 'perhaps' }, /fs_service: must be true or false/],
    [{ no_fs_service: 'perhaps' }, /no_fs_service: must be true or false/],
    [{ no_node_id: true }, /no_node_id: unknown key/],
    [{ state_sync: 'never' }, /state_sync: must be one of always, batch/],
    [[1, 2], /must be a JSON object/],
    ['{"node_id": ', /--config .*config-\d+\.json: /],
  ];
  for (const [content, message] of cases) {
    const file = await configFile(content);
    await tt.rejects(readConfigFile(file), { name: 'UsageError', message }, `${JSON.stringify(content)} → ${message}`);
    await tt.rejects(readConfigFile(file), { message: new RegExp(`^--config ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `) }, 'names the file');
  }
  await tt.rejects(readConfigFile(join(root, 'missing.json')), { name: 'UsageError', message: /missing\.json.*ENOENT/ }, 'a missing file names itself');
});

t.test('mergeOptions: the first layer that sets an option wins', async (tt) => {
  const argv: NodeOptionValues = { 'node-id': 'argv', 'log-level': undefined };
  const mount: NodeOptionValues = { 'node-id': 'mount', 'services-dir': ['/from-mount'], 'log-level': 'warn' };
  const config: NodeOptionValues = { 'node-id': 'config', 'services-dir': ['/from-config'], 'shutdown-grace-ms': 1, 'log-level': 'error' };
  const merged = mergeOptions(argv, mount, config, defaultOptions());
  tt.equal(merged['node-id'], 'argv', 'command line over everything');
  tt.same(merged['services-dir'], ['/from-mount'], '-o over config (arrays replace, not append)');
  tt.equal(merged['log-level'], 'warn', 'an undefined value does not hide a lower layer');
  tt.equal(merged['shutdown-grace-ms'], 1, 'config over defaults');
  tt.equal(merged['reconnect-backoff-ms'], 5000, 'defaults fill the rest');
  tt.equal(merged.mount, '/mnt/acheron');
  tt.same([merged['allow-other'], merged['default-permissions']], [false, false], 'only the mounting user, unless asked');
  tt.equal(mergeOptions({}, {}, {}, defaultOptions())['node-id'], hostname(), 'node id defaults to the host name');
});

t.test('resolveNodeOptions reads the config named by argv or -o', async (tt) => {
  const config = await configFile({ node_id: 'config-id', services_dir: '/config-dir', shutdown_grace_ms: 7, log_level: 'warn' });
  const fromMount = await resolveNodeOptions({ mount: '/m', daemon: true }, { config, 'node-id': 'mount-id' });
  tt.equal(fromMount['node-id'], 'mount-id', '-o over config');
  tt.same(fromMount['services-dir'], ['/config-dir'], 'config fills what -o leaves out');
  tt.equal(fromMount['shutdown-grace-ms'], 7);
  tt.equal(fromMount.mount, '/m', 'argv over defaults');
  tt.equal(fromMount['manifest-reload-interval-ms'], 2000, 'defaults');
  const fromArgv = await resolveNodeOptions({ config, 'log-level': 'debug' }, { 'log-level': 'error' });
  tt.equal(fromArgv['log-level'], 'debug', 'argv over -o over config');
  tt.equal(fromArgv['node-id'], 'config-id');
  await tt.rejects(resolveNodeOptions({ config: join(root, 'nope.json') }), { name: 'UsageError' }, 'a missing config is bad usage');
  await tt.rejects(
    resolveNodeOptions({ 'manifest-reload-interval-ms': Number.NaN }),
    { name: 'UsageError', message: '--manifest-reload-interval-ms (not a number): expected a whole number from 0 to 2147483647 (milliseconds)' },
    'argv is checked as -o and config are (yargs turns --manifest-reload-interval-ms abc into NaN; it once reloaded in a tight loop)',
  );
  await tt.rejects(resolveNodeOptions({ 'shutdown-grace-ms': -5 }), { message: /^--shutdown-grace-ms -5: / });
  await tt.rejects(resolveNodeOptions({ 'log-level': 'loud' }), { message: /^--log-level: must be one of / });
});

t.test('resolveNodeOptions: a control-only option needs a control URL from some source', async (tt) => {
  const joinConfig = await configFile({ join_token_file: '/t', reconnect_backoff_ms: 100 });
  const withUrl = await resolveNodeOptions({ config: joinConfig, 'control-url': ['ws://h:1'] });
  tt.equal(withUrl['join-token-file'], '/t', 'the URL on the command line, the join token file in the config: taken');
  const urlConfig = await configFile({ control_url: ['ws://h:1'] });
  tt.equal((await resolveNodeOptions({ 'reconnect-backoff-ms': 100 }, { config: urlConfig }))['reconnect-backoff-ms'], 100, 'the URL in the config: taken');
  await tt.rejects(resolveNodeOptions({ config: joinConfig }), { name: 'UsageError', message: /\/join_token_file needs --control-url or \/control_url / });
  await tt.rejects(resolveNodeOptions({}, { 'reconnect-backoff-max-ms': 100 }), { message: /^--reconnect-backoff-max-ms needs --control-url / });
  tt.equal((await resolveNodeOptions({}))['reconnect-backoff-ms'], 5000, 'the defaults alone are no such option');
});

t.test('defaultStateFile', async (tt) => {
  if (process.getuid?.() === 0) tt.equal(defaultStateFile('n1'), '/var/lib/acheron/n1.json', 'as root');
  else tt.equal(defaultStateFile('n1', { XDG_STATE_HOME: '/xdg' }), '/xdg/acheron/n1.json', 'as a user');
});

t.test('isMountHelperArgv', async (tt) => {
  const yes: string[][] = [
    ['node', '/mnt/acheron', '-o', 'rw,services_dir=/s,dev,suid'],
    ['anything', '/mnt/x', '-o', 'rw'],
    ['world:ws://127.0.0.1:18790', '/nodes', '-o', 'rw'],
    ['node', '/mnt/acheron'],
  ];
  const no: string[][] = [
    [],
    ['node'],
    ['node', '--mount', '/mnt/acheron'],
    ['node', 'relative/dir', '-o', 'rw'],
    ['invoke', 'echo', '{}'],
    ['node', '/mnt/acheron', '--services-dir', '/s'],
    ['--version'],
  ];
  for (const argv of yes) tt.ok(isMountHelperArgv(argv), `mount helper: ${argv.join(' ')}`);
  for (const argv of no) tt.notOk(isMountHelperArgv(argv), `command line: ${argv.join(' ')}`);
});

t.test('isDaemonArgv: the command lines that hold off an early SIGHUP', async (tt) => {
  const daemons: string[][] = [
    ['node', '--mount', '/mnt/acheron'],
    ['node'],
    ['world', '--mount', '/nodes'],
    ['control', '--data-dir', '/d'],
    ['node', '/mnt/acheron', '-o', 'rw,services_dir=/s'],
    ['world:ws://127.0.0.1:18790', '/nodes', '-o', 'rw'],
  ];
  const clients: string[][] = [
    [],
    ['node', 'watch'],
    ['node', 'list'],
    ['node', 'get', 'n1'],
    ['node', 'delete', 'n1'],
    ['invoke', 'echo', '{}'],
    ['token', 'list'],
    ['--version'],
  ];
  for (const argv of daemons) tt.ok(isDaemonArgv(argv), `daemon: ${argv.join(' ')}`);
  for (const argv of clients) tt.notOk(isDaemonArgv(argv), `client (SIGHUP ends it, as it does any command): ${argv.join(' ')}`);
});

t.test("a usage error of a node mount line names the line's options, not flags it does not have", async (t) => {
  const line = (message: string): string => inMountLineTerms(message, nodeLineSpelling);
  t.equal(
    line('--control-url needs --join-token-file: /s.json holds no node secret for n1 (it has not joined yet)'),
    'mount option control_url needs mount option join_token_file: /s.json holds no node secret for n1 (it has not joined yet)',
  );
  t.equal(line('see --help; --etcd-endpoints is a server option'), 'see --help; --etcd-endpoints is a server option', 'only node options');
  t.equal(line('--mount /srv/m: ENOTDIR: not a directory'), 'the mount point /srv/m: ENOTDIR: not a directory', "--mount is the line's directory");
  t.equal(
    line('--label "a=--state-file \\" --x": bad key'),
    'mount option label "a=--state-file \\" --x": bad key',
    "a quoted value is the user's own text, left as it is (an escaped quote does not end it)",
  );
});

t.test("a world: mount line's terms: its option keys, its source for the URL", async (t) => {
  const line = (message: string): string => inMountLineTerms(message, worldLineSpelling);
  t.equal(
    line('--project-token-file needs --project; --control-url ws://x: refused'),
    "mount option project_token_file needs mount option project; the mount source's URL ws://x: refused",
  );
  t.equal(line('--mount /m busy; see --help'), 'the mount point /m busy; see --help');
});

t.test('--join-token is trimmed and checked as --join-token-file is: a line break in it would go out as an invalid header', async (t) => {
  const values = { ...mergeOptions({}, {}, {}, defaultOptions()), 'node-id': 'n1', 'control-url': ['ws://127.0.0.1:47601'] };
  t.equal(toDaemonOptions({ ...values, 'join-token': ' ach_join_x\n' }).joinToken, 'ach_join_x');
  t.throws(() => toDaemonOptions({ ...values, 'join-token': 'join-1 expires …\nach_join_x' }), {
    name: 'UsageError',
    message: /^--join-token holds more than the token/,
  });
});

t.test('manifest paths given relative are made absolute: ERRORS.json and the log name them for readers elsewhere', async (t) => {
  const values = {
    ...mergeOptions({}, {}, {}, defaultOptions()),
    'node-id': 'n1',
    'services-dir': ['svc', '/etc/acheron/services.d'],
    'service-manifest': ['one.json'],
  };
  const options = toDaemonOptions(values);
  t.same(options.servicesDirs, [join(process.cwd(), 'svc'), '/etc/acheron/services.d']);
  t.same(options.serviceManifests, [join(process.cwd(), 'one.json')]);
});
