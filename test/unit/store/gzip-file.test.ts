// Event log archives are compressed by Debian's gzip at the lowest priority, straight into the
// archive file (gzip-file.ts); without a gzip that runs, or once a stop hurries it, by zlib in
// process. Either way the archive reads back as the file it was made from; a gzip that fails says
// which file and why and leaves no archive; a writer still holding an old file of that name (a
// gzip a killed server left running) does not touch the new one.
import t, { type Test } from 'tap';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { gzipInBackground } from '../../../src/store/gzip-file.js';
import { tempDir } from '../../helpers/node.js';

const GZIP = '/usr/bin/gzip';
const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ seq: i + 1, node_id: `n${i % 7}`, note: 'x'.repeat(i % 300) })).join('\n') + '\n';

async function archive(dir: string, name: string): Promise<Buffer> {
  await gzipInBackground(join(dir, 'events.ndjson'), join(dir, name));
  return readFile(join(dir, name));
}

t.test('the archive reads back as the file, through gzip', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.ndjson'), lines);
  const bytes = await archive(dir, 'a.gz');
  t.equal(gunzipSync(bytes).toString(), lines);
  t.ok(bytes.length < lines.length / 3, `compressed (${bytes.length} of ${lines.length} bytes)`);
  t.equal(bytes[3]! & 0x08, 0, 'no file name in the header (gzip -n)');
  t.equal((await stat(join(dir, 'a.gz'))).mode & 0o777, 0o600, 'readable by its owner only');
});

t.test('gzip runs at the lowest priority', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.ndjson'), lines);
  // A gzip on PATH that notes its own nice value (field 19 of /proc/<pid>/stat), then is the real one.
  await fakeGzip(t, dir, `sleep 0.2\ncut -d' ' -f19 /proc/$$/stat > ${join(dir, 'nice')}\nexec ${GZIP} "$@"`);
  const bytes = await archive(dir, 'b.gz');
  t.equal((await readFile(join(dir, 'nice'), 'utf8')).trim(), '19');
  t.equal(gunzipSync(bytes).toString(), lines);
});

/** Puts `script` first on PATH as `gzip` for the rest of the test. */
async function fakeGzip(t: Test, dir: string, script: string, mode = 0o755): Promise<void> {
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'gzip'), `#!/bin/sh\n${script}\n`, { mode });
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  t.teardown(() => void (process.env.PATH = path));
}

t.test('a gzip that cannot be executed: zlib makes the archive', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.ndjson'), lines);
  await fakeGzip(t, dir, `exec ${GZIP} "$@"`, 0o644);
  t.equal(gunzipSync(await archive(dir, 'e.gz')).toString(), lines);
});

t.test('hurried (the server stops): the slow gzip is stopped and zlib finishes the archive at once', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.ndjson'), lines);
  await fakeGzip(t, dir, 'exec sleep 30');
  const hurry = new AbortController();
  const started = performance.now();
  const compressing = gzipInBackground(join(dir, 'events.ndjson'), join(dir, 'f.gz'), hurry.signal);
  setTimeout(() => hurry.abort(), 200);
  await compressing;
  t.ok(performance.now() - started < 5000, 'not held by the gzip');
  t.equal(gunzipSync(await readFile(join(dir, 'f.gz'))).toString(), lines);
});

t.test('a writer holding an old file of the name does not touch the new archive', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.ndjson'), lines);
  const orphan = await open(join(dir, 'g.gz'), 'w');
  const bytes = await archive(dir, 'g.gz');
  await orphan.write(Buffer.from('garbage from a gzip left running'), 0, undefined, 0);
  await orphan.close();
  t.same(await readFile(join(dir, 'g.gz')), bytes, 'the archive as written');
  t.equal(gunzipSync(bytes).toString(), lines);
});

t.test('without gzip on PATH, zlib makes the same archive in process', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'events.ndjson'), lines);
  const path = process.env.PATH;
  process.env.PATH = join(dir, 'no-such-bin');
  t.teardown(() => void (process.env.PATH = path));
  const bytes = await archive(dir, 'c.gz');
  t.equal(gunzipSync(bytes).toString(), lines);
});

t.test('a gzip that fails names the file and says why', async (t) => {
  const dir = await tempDir(t);
  await t.rejects(archive(dir, 'd.gz'), { message: /^gzip .*events\.ndjson: exit 1: .*No such file/ });
  await t.rejects(stat(join(dir, 'd.gz')), { code: 'ENOENT' }, 'no archive left');
});
