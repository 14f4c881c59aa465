// SPEC §1: an `acheron node` option that only a node with a control server reads (a join token, the
// reconnect backoff) given without `--control-url` is refused, exit 2, naming it as its source spells
// it (flag, mount option, config key), as `--etcd-endpoints` needs `--store etcd`. Before, the node
// mounted standalone, exit 0, and never used it.
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acheron, oneLine } from '../helpers/control.js';
import { isMounted, tempDir } from '../helpers/node.js';
import { killDaemonsUsing, q, sh } from '../helpers/process.js';

t.test('a control-only option without --control-url: exit 2 naming it, nothing mounted', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'mnt');
  await mkdir(mount);
  // The old code mounted and detached a daemon here: ended, whatever the outcome.
  tt.teardown(async () => {
    await killDaemonsUsing(dir);
    await sh(`fusermount -uz ${q(mount)} 2>/dev/null; true`);
  });
  const config = join(dir, 'node.json');
  await writeFile(config, JSON.stringify({ join_token_file: join(dir, 'join') }));
  const why = '\\(without one the node runs standalone and never uses it\\)';
  const node = [
    'node',
    '--node-id',
    'co-1',
    '--mount',
    mount,
    '--no-fs-service',
    '--state-file',
    join(dir, 'x.json'),
    '--daemon',
    '--log-file',
    join(dir, 'n.log'),
  ];
  const line = (option: string): string[] => [
    'node',
    mount,
    '-o',
    `rw,node_id=co-1,state_file=${join(dir, 'x.json')},no_fs_service,log_file=${join(dir, 'n.log')},${option}`,
  ];
  const cases: Array<[string[], RegExp]> = [
    [[...node, '--join-token-file', join(dir, 'join')], new RegExp(`^acheron: --join-token-file needs --control-url ${why}$`)],
    [[...node, '--join-token', 'ach_join_x'], /^acheron: --join-token needs --control-url /],
    [[...node, '--reconnect-backoff-ms', '100'], /^acheron: --reconnect-backoff-ms needs --control-url /],
    [[...node, '--reconnect-backoff-max-ms', '1000'], /^acheron: --reconnect-backoff-max-ms needs --control-url /],
    [line('reconnect_backoff_ms=100'), new RegExp(`^acheron: mount option reconnect_backoff_ms needs mount option control_url ${why}$`)],
    [[...node, '--config', config], new RegExp(`^acheron: --config ${config}: /join_token_file needs --control-url or /control_url ${why}$`)],
  ];
  for (const [args, message] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `${args.slice(-2).join(' ')}: exit 2 (${r.stderr.trim()})`);
    oneLine(tt, r.stderr, message);
    tt.notOk(await isMounted(mount), 'nothing mounted');
  }
});
