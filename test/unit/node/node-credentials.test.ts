// The node's credentials file (SPEC §5, §6): only a missing file, or one with no credentials for this
// node, means "not joined"; a damaged one is named with what is wrong and set aside (never silently
// overwritten by the next join); one that cannot be read is an error naming it.
import t from 'tap';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { tempDir } from '../../helpers/node.js';
import { inspectNodeCredentials, readNodeCredentials, saveNodeCredentials } from '../../../src/node/node-credentials.js';

const CREDENTIALS = { node_id: 'n1', node_secret: 'secret', control_url: 'ws://127.0.0.1:1', joined_ms: 1 };

function logger() {
  const lines: string[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }) };
}

t.test('missing, or another node: not joined, nothing changed', async (t) => {
  const dir = await tempDir(t);
  const { lines, log } = logger();
  t.equal(await readNodeCredentials(join(dir, 'none.json'), 'n1', log), undefined);
  const other = join(dir, 'other.json');
  await saveNodeCredentials(other, { ...CREDENTIALS, node_id: 'n2' });
  t.equal(await readNodeCredentials(other, 'n1', log), undefined);
  await writeFile(join(dir, 'empty-object.json'), '{}\n');
  t.same(await inspectNodeCredentials(join(dir, 'empty-object.json'), 'n1'), {}, 'no credentials at all');
  t.same(await readdir(dir), ['empty-object.json', 'other.json']);
  t.same(lines, []);
  await saveNodeCredentials(join(dir, 'n1.json'), CREDENTIALS);
  t.same(await readNodeCredentials(join(dir, 'n1.json'), 'n1', log), CREDENTIALS, 'its own: read back');
});

t.test('truncated: reported naming the file and what is wrong, set aside as it was', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'n1.json');
  await saveNodeCredentials(path, CREDENTIALS);
  const truncated = (await readFile(path, 'utf8')).slice(0, 30);
  await writeFile(path, truncated);
  t.match(
    await inspectNodeCredentials(path, 'n1'),
    { damage: /^is not JSON \(30 bytes; invalid JSON at line \d+, column \d+ \(byte \d+\): / },
    'inspecting changes nothing',
  );
  t.equal(await readFile(path, 'utf8'), truncated);
  const { lines, log } = logger();
  t.equal(await readNodeCredentials(path, 'n1', log), undefined, 'then not joined: a join token joins again');
  const aside = (await readdir(dir)).filter((name) => name.startsWith('n1.json.corrupt-'));
  t.equal(aside.length, 1, 'set aside');
  t.equal(await readFile(join(dir, aside[0] as string), 'utf8'), truncated, 'as it was');
  t.equal(lines.length, 1);
  t.match(JSON.parse(lines[0] as string), { level: 50, msg: new RegExp(`^node credentials: ${path} is not JSON .*; set aside as ${path}\\.corrupt-\\d+`) });
  // The parser's own message quoted the text around the fault: a secret's bytes reached stderr and the log.
  await writeFile(path, '{"node_id":"n1","node_secret":srVa22iYguTKCYoYZoSDAIt5l6A0}');
  const { damage } = await inspectNodeCredentials(path, 'n1');
  t.match(damage, /^is not JSON \(59 bytes; invalid JSON at line 1, column 31 \(byte 30\)/, 'where the fault is');
  t.notMatch(damage, /srVa|node_secret/, 'never what the file holds');
  await writeFile(path, JSON.stringify({ node_id: 'n1' }));
  t.match(await inspectNodeCredentials(path, 'n1'), { damage: 'has no node_secret for n1' }, 'a record without its secret is damage too');
});

t.test('unreadable: an error naming the file, errno kept', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'n1.json');
  await mkdir(path);
  await t.rejects(readNodeCredentials(path, 'n1', logger().log), { code: 'EISDIR', message: new RegExp(`^--state-file ${path}: EISDIR`) });
});
