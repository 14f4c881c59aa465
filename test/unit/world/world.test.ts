// WorldFS rules without a mount: which services a session sees (SPEC §8), and how a
// `world:<url>` mount helper command line becomes `acheron world` options (SPEC §1).
import t from 'tap';
import type { ServiceDescriptor, SessionAttachReply } from '../../../src/protocol/types.gen.js';
import { worldMountArgs } from '../../../src/cli/world-options.js';
import { visible } from '../../../src/world/world-tree.js';

const service = (permissions: ServiceDescriptor['permissions']): ServiceDescriptor => ({
  service_id: 's',
  kind: 'k',
  version: '1',
  state: 'online',
  endpoints: ['file'],
  capabilities: {},
  mounts: [],
  ops: {},
  runtime: { type: 'native_proc' } as ServiceDescriptor['runtime'],
  permissions,
  schema: {},
});
const grant = (invoke: string, hasToken = false): SessionAttachReply => ({
  project_id: 'p',
  nodes: ['n1'],
  has_project_token: hasToken,
  actions: { read: 'allowed', observe: 'allowed', invoke, mount: 'allowed', admin: 'no' },
});

t.test('admins (no project session) see every service', async (t) => {
  t.ok(visible('n1', service({ default: 'deny-by-default', allow_roles: ['admin'] }), undefined));
});

t.test('a user session needs invoke allowed, then the service permissions decide', async (t) => {
  const open = grant('allowed');
  t.ok(visible('n1', service({ default: 'deny-by-default', allow_roles: ['user'] }), open), 'allow_roles user');
  t.ok(visible('n1', service({ default: 'deny-by-default', allow_roles: ['*'] }), open), 'allow_roles *');
  t.ok(visible('n1', service({ default: 'deny-by-default', allow_roles: ['all'] }), open), 'allow_roles all');
  t.notOk(visible('n1', service({ default: 'deny-by-default', allow_roles: ['admin'] }), open), 'admins only: hidden');
  t.notOk(visible('n1', service({ default: 'deny' }), open), 'default deny: hidden');
  t.ok(visible('n1', service({ default: 'allow' }), open), 'a default that is not deny: visible');
  t.notOk(
    visible('n1', service({ default: 'allow', allow_roles: ['user'] }), grant('project p: invoke needs the project token')),
    'invoke refused: nothing is visible',
  );
});

t.test('require_project_token hides a service from sessions without the project token', async (t) => {
  const permissions = { default: 'deny-by-default', allow_roles: ['user'], require_project_token: true };
  t.notOk(visible('n1', service(permissions), grant('allowed', false)));
  t.ok(visible('n1', service(permissions), grant('allowed', true)));
});

t.test('world:<url> <dir> -o ...: the URL from the source, known keys in snake_case, the rest reported', async (t) => {
  const { args, unknown } = worldMountArgs(
    'world:ws://10.0.0.1:18790',
    '/nodes',
    'rw,token_file=/etc/acheron/token,project=p1,project_token_file=/etc/acheron/p1,subtree=nodes,busy_poll_us=50,log_level=debug,noauto,x-systemd.automount,dev,suid,frobnicate=1,token_file',
  );
  t.same(args, {
    'control-url': 'ws://10.0.0.1:18790',
    mount: '/nodes',
    daemon: true,
    'token-file': '/etc/acheron/token',
    project: 'p1',
    'project-token-file': '/etc/acheron/p1',
    subtree: 'nodes',
    'busy-poll-us': 50,
    'log-level': 'debug',
  });
  t.same(unknown, ['frobnicate=1', 'token_file'], "x-* and mount(8)'s own options are ignored; a key without a value is unknown");
});

t.test('world:<url> <dir> -o allow_other,default_permissions: switches, bare or with a value (SPEC §9)', async (t) => {
  const { args, unknown } = worldMountArgs('world:ws://h:1', '/nodes', 'rw,token_file=/t,allow_other,default_permissions=false,dev');
  t.same(unknown, [], 'neither is unknown');
  t.equal(args['allow-other'], true, 'a bare switch is on');
  t.equal(args['default-permissions'], false, '=false turns it off');
  t.throws(() => worldMountArgs('world:ws://h:1', '/nodes', 'allow_other=perhaps'), {
    name: 'UsageError',
    message: 'mount option allow_other: must be true or false',
  });
});

t.test('world:<url> <dir> -o with a bad value: refused naming the mount option, as the line spells it', async (t) => {
  const refused = (options: string, message: string): void => {
    t.throws(() => worldMountArgs('world:ws://h:1', '/nodes', `token_file=/t,${options}`), { name: 'UsageError', message }, options);
  };
  // They named --busy-poll-us, --subtree and --log-level, flags a mount line does not have.
  refused('busy_poll_us=abc', 'mount option busy_poll_us abc: expected a whole number from 0 to 10000 (microseconds)');
  refused('busy_poll_us=20000', 'mount option busy_poll_us 20000: expected a whole number from 0 to 10000 (microseconds)');
  refused('subtree=services', 'mount option subtree "services": the only subtree is nodes');
  refused('log_file=', 'mount option log_file: needs a value (empty given)');
  refused('log_level=loud', 'mount option log_level: must be one of fatal, error, warn, info, debug, trace, silent');
});

t.test('world:<url> <dir> -o without token_file: refused naming that mount option', async (t) => {
  // It said "a token is required: --token-file FILE, --token T or ACHERON_TOKEN", flags a mount line does not have.
  t.throws(() => worldMountArgs('world:ws://h:1', '/nodes', 'rw,subtree=nodes', {}), {
    name: 'UsageError',
    message: 'a world: mount needs mount option token_file=FILE (the file holding its token)',
  });
  t.equal(worldMountArgs('world:ws://h:1', '/nodes', 'rw', { ACHERON_TOKEN: 'x' }).args['token-file'], undefined, "mount(8)'s environment may hold the token");
});
