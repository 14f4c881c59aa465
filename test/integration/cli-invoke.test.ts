// SPEC §1 `acheron invoke` and the CLI conventions: exit 0 on success, 1 on failure, 2 on bad usage,
// errors one line on stderr naming what was wrong.
import t from 'tap';
import { join } from 'node:path';
import { ACHERON, manifest, readJson, startNode } from '../helpers/node.js';
import { q, sh, type ShResult } from '../helpers/process.js';

const node = await startNode(t, { manifests: [manifest('echo', 'echo'), manifest('fail', 'fail'), manifest('gated', 'echo')] });

/** Runs `acheron <args>` (already quoted) in a child process. */
const acheron = (args: string, input?: string): Promise<ShResult> => sh(`exec node ${q(ACHERON)} ${args}`, input === undefined ? {} : { input });
const mount = `--mount ${q(node.mount)}`;
const lines = (text: string): string[] => text.split('\n').filter(Boolean);

await t.test('a successful invoke prints the result and exits 0', async (tt) => {
  const r = await acheron(`invoke echo '{"msg":"hi"}' ${mount}`);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stderr, '');
  const result = JSON.parse(r.stdout) as { service_id: string; echo: unknown };
  tt.same(result.echo, { msg: 'hi' });
  tt.equal(result.service_id, 'echo');
  tt.same(await readJson(join(node.service('echo'), 'result.json')), result, 'the same as result.json');
});

await t.test('the payload from stdin with -', async (tt) => {
  const r = await acheron(`invoke echo - ${mount}`, '{"from":"stdin"}\n');
  tt.equal(r.code, 0, r.stderr);
  tt.same((JSON.parse(r.stdout) as { echo: unknown }).echo, { from: 'stdin' });
});

await t.test('a long outcome is printed whole into a pipe', async (tt) => {
  // Above a pipe's buffer: the exit must wait for the rest.
  const big = 'x'.repeat(300 * 1024);
  const r = await acheron(`invoke echo - ${mount}`, JSON.stringify({ big }));
  tt.equal(r.code, 0, r.stderr);
  tt.equal((JSON.parse(r.stdout) as { echo: { big: string } }).echo.big, big);
});

await t.test('no payload means {}', async (tt) => {
  const r = await acheron(`invoke echo ${mount}`);
  tt.equal(r.code, 0, r.stderr);
  tt.same((JSON.parse(r.stdout) as { echo: unknown }).echo, {});
});

await t.test('a failing driver: exit 1, one stderr line naming the service and the failure', async (tt) => {
  const r = await acheron(`invoke fail '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(r.stdout, '', 'nothing on stdout');
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /^acheron invoke: fail: error: fail driver: something went wrong\n$/);

  const json = await acheron(`invoke fail '{}' --json ${mount}`);
  tt.equal(json.code, 1);
  const doc = JSON.parse(json.stdout) as { error: string; status: { state: string; exit_code: number } };
  tt.match(doc, { error: 'fail driver: something went wrong', status: { state: 'error', exit_code: 3 } }, '--json prints the outcome document');
});

await t.test('a payload the service refuses (not an object): exit 1 naming EINVAL', async (tt) => {
  const r = await acheron(`invoke echo '[1,2]' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /^acheron invoke: echo: EINVAL: .*must be a JSON object/);
});

await t.test('invalid JSON argument: exit 2', async (tt) => {
  const before = (await readJson<{ invokes_total: number }>(join(node.service('echo'), 'metrics.json'))).invokes_total;
  const r = await acheron(`invoke echo '{"msg": oops}' ${mount}`);
  tt.equal(r.code, 2);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /payload is not valid JSON/);
  tt.equal((await readJson<{ invokes_total: number }>(join(node.service('echo'), 'metrics.json'))).invokes_total, before, 'nothing ran');
});

await t.test('unknown service: exit 1, "no service"', async (tt) => {
  const r = await acheron(`invoke nosuch '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, `acheron invoke: nosuch: ENOENT: no service nosuch under ${node.mount}`);
});

await t.test('a service id with a path trick is bad usage', async (tt) => {
  const r = await acheron(`invoke ../echo '{}' ${mount}`);
  tt.equal(r.code, 2);
  tt.match(r.stderr, /service "\.\.\/echo": must be/);
});

await t.test('disabled service: exit 1 naming EPERM', async (tt) => {
  const off = await sh(`echo 1 > ${q(join(node.service('gated'), 'control', 'disable'))}`);
  tt.equal(off.code, 0, off.stderr);
  const r = await acheron(`invoke gated '{}' ${mount}`);
  tt.equal(r.code, 1);
  tt.equal(lines(r.stderr).length, 1, 'one line');
  tt.match(r.stderr, /^acheron invoke: gated: EPERM: service gated is disabled/);
  tt.notMatch(r.stderr, /EPERM: EPERM/, 'the errno is named once');
  const on = await sh(`echo 1 > ${q(join(node.service('gated'), 'control', 'enable'))}`);
  tt.equal(on.code, 0, on.stderr);
  tt.equal((await acheron(`invoke gated '{}' ${mount}`)).code, 0, 'enabled again, it works');
});

await t.test('--version, --help, node --help, invoke --help exit 0', async (tt) => {
  const version = await acheron('--version');
  tt.equal(version.code, 0);
  tt.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const help = await acheron('--help');
  tt.equal(help.code, 0);
  tt.match(help.stdout, /acheron node/);
  tt.match(help.stdout, /acheron invoke/);
  const nodeHelp = await acheron('node --help');
  tt.equal(nodeHelp.code, 0);
  for (const flag of [
    '--node-id',
    '--mount',
    '--services-dir',
    '--export',
    '--no-fs-service',
    '--terminal-id',
    '--shutdown-grace-ms',
    '--config',
    '--daemon',
  ]) {
    tt.match(nodeHelp.stdout, flag, `node --help lists ${flag}`);
  }
  const invokeHelp = await acheron('invoke --help');
  tt.equal(invokeHelp.code, 0);
  tt.match(invokeHelp.stdout, /--mount/);
  tt.match(invokeHelp.stdout, /--control-url/);
});

await t.test('bad usage: exit 2 with one line on stderr', async (tt) => {
  const cases: Array<[string, RegExp]> = [
    [`invoke echo '{}' --bogus ${mount}`, /Unknown argument: bogus/],
    ['node --bogus-flag', /bogus-flag/],
    ['frobnicate', /frobnicate/],
    ['', /name a command/],
    ['node --state-sync sometimes', /state-sync.*sometimes/],
  ];
  for (const [args, names] of cases) {
    const r = await acheron(args);
    tt.equal(r.code, 2, `acheron ${args}: exit 2`);
    tt.equal(lines(r.stderr).length, 1, `acheron ${args}: one line (${r.stderr.trim()})`);
    tt.match(r.stderr, /^acheron: /);
    tt.match(r.stderr, names, 'names what was wrong');
  }
});
