// Token files (--token-file, --project-token-file; SPEC §8 tokens): read whenever asked, so a rotated
// token written into the file is what the next connection uses; trimmed; an empty or unreadable file
// is a usage error naming the option and the file.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProjectToken, resolveClient, tokenFile } from '../../../src/cli/client-options.js';
import { UsageError } from '../../../src/cli/exit.js';
import { readTokenFile, tokenTextProblem } from '../../../src/protocol/token-text.js';

t.test('read whenever asked: the current content, trimmed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-token-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'token');
  await writeFile(path, '  first\n');
  const file = tokenFile('--token-file', path);
  t.equal(await file.read(), 'first');
  await writeFile(path, 'second\n');
  t.equal(await file.read(), 'second', 'the file again, not the first read');
  t.equal(file.path, path);
  t.same(
    await resolveClient({ 'token-file': path }, { ACHERON_TOKEN: 'env' }),
    { urls: ['ws://127.0.0.1:18790'], token: 'second' },
    'the file over ACHERON_TOKEN',
  );
  // The file wins, as before, but no longer silently: one of the two was a mistake.
  const warned: string[] = [];
  const warn = (text: string): void => void warned.push(text);
  t.same(await resolveClient({ 'token-file': path, token: 'other' }, {}, warn), { urls: ['ws://127.0.0.1:18790'], token: 'second' }, 'the file wins');
  t.same(warned, ['--token is ignored: --token-file is given, and it is the one read'], 'said');
  await resolveClient({ 'token-file': path, 'project-token-file': path }, {}, warn);
  t.same(
    warned.at(-1),
    '--project-token-file is ignored without --project ID (the project whose session it opens)',
    'a project token without its project: said',
  );
  await resolveClient({ 'token-file': path, 'project-token-file': path, project: 'p1' }, {}, warn);
  t.equal(warned.length, 2, 'with its project: nothing to say');
});

t.test('empty or missing: a usage error naming the option and the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-token-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const empty = join(dir, 'empty');
  await writeFile(empty, ' \n');
  await t.rejects(readProjectToken({ 'project-token-file': empty }), new UsageError(`--project-token-file ${empty} is empty`));
  await t.rejects(tokenFile('--token-file', join(dir, 'missing')).read(), { name: 'UsageError', message: /^--token-file .*missing: ENOENT/ });
  t.equal(await readProjectToken({}), undefined, 'no file, no project token');
});

t.test('more than one word (a whole `acheron token join` output): a usage error saying to keep the last line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-token-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'join');
  await writeFile(path, 'join-13c9ed9d expires 2026-12-06T14:43:47.571Z\nach_join_lKUVBNnQ\n');
  // It was read as the token and sent: the server answered "Invalid character in header content".
  await t.rejects(tokenFile('--join-token-file', path).read(), {
    name: 'UsageError',
    message: `--join-token-file ${path} holds more than the token (spaces or several lines): write only the token (acheron token join|create|rotate print it on their last line: ... | tail -1 > FILE)`,
  });
  t.equal(tokenTextProblem('ach_join_lKUVBNnQ'), undefined, 'one word: a token');
  t.match(tokenTextProblem('admin\tach_admin_x'), /more than the token/);
  t.equal(tokenTextProblem(''), 'is empty');
});

t.test('the one reader behind all three: the token, or the problem, an empty file told apart (the node daemon waits for a token there)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'acheron-token-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'token');
  await writeFile(path, ' ach_join_x\n');
  t.same(await readTokenFile(path), { isUsable: true, token: 'ach_join_x' });
  await writeFile(path, '\n');
  t.same(await readTokenFile(path), { isUsable: false, problem: 'is empty', isEmpty: true });
  await writeFile(path, 'id\nach_join_x\n');
  t.match(await readTokenFile(path), { isUsable: false, problem: /^holds more than the token/, isEmpty: false });
  await t.rejects(readTokenFile(join(dir, 'missing')), { code: 'ENOENT' }, 'read errors pass through');
  t.same(await readTokenFile('given', async (file) => ` ach_${file} `), { isUsable: true, token: 'ach_given' }, 'readText reads it');
});

t.test('--token and ACHERON_TOKEN: trimmed and checked as a file is, a usage error naming the option or variable', async (t) => {
  const url = { 'control-url': 'ws://127.0.0.1:47601' };
  t.same(await resolveClient({ ...url, token: ' ach_user_x\n' }, {}), { urls: ['ws://127.0.0.1:47601'], token: 'ach_user_x' }, '--token trimmed');
  t.same(await resolveClient(url, { ACHERON_TOKEN: 'ach_user_y\r\n' }), { urls: ['ws://127.0.0.1:47601'], token: 'ach_user_y' }, 'ACHERON_TOKEN trimmed');
  // It went out as the Authorization header: "unavailable: no control server answered (3 rounds …): Invalid character in header content".
  await t.rejects(resolveClient({ ...url, token: 'ach_user_x\r\nX-Other: 1' }, {}), { name: 'UsageError', message: /^--token holds more than the token/ });
  await t.rejects(resolveClient(url, { ACHERON_TOKEN: 'id\nach_user_y' }), { name: 'UsageError', message: /^ACHERON_TOKEN holds more than the token/ });
  await t.rejects(resolveClient({ ...url, token: ' ' }, {}), new UsageError('--token is empty'));
  await t.rejects(
    resolveClient(url, { ACHERON_TOKEN: '' }),
    new UsageError('a token is required: --token-file FILE, --token T or ACHERON_TOKEN'),
    'an empty variable is none',
  );
});
