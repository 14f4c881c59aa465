// SPEC §4 built-in providers through a real mount: the fs provider (exports, read-only exports that
// really are, symlinks that never lead out) and terminal-<id>.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACHERON, readJson, readText, spawnMounter, startNode, tempDir } from '../helpers/node.js';
import { q, sh } from '../helpers/process.js';
import { checkCreatingOpens } from '../helpers/creating-open.js';
import { checkStatfs } from '../helpers/statfs.js';
import { checkBlocks } from '../helpers/blocks.js';
import { checkChown } from '../helpers/ownership.js';
import { checkLinks } from '../helpers/links.js';

const base = await tempDir(t);
const rw = join(base, 'rw');
const ro = join(base, 'ro');
await mkdir(join(rw, 'old-dir'), { recursive: true });
await mkdir(join(ro, 'sub'), { recursive: true });
await writeFile(join(rw, 'notes.txt'), 'first line\n');
await writeFile(join(rw, 'move-me.txt'), 'moving\n');
await writeFile(join(rw, 'delete-me.txt'), 'bye\n');
await writeFile(join(ro, 'readme.txt'), 'read only\n');
await symlink('/etc', join(ro, 'to-etc'));
await symlink('/etc/hostname', join(rw, 'to-hostname'));
await symlink('readme.txt', join(ro, 'to-readme'));
await symlink('../ro', join(rw, 'to-sibling-export'));

const node = await startNode(t, { args: ['--export', `data=${rw}:rw`, '--export', `ro=${ro}:ro`, '--terminal-id', 't1'] });
const fs = join(node.mount, 'fs');
/** Runs a shell command with $FS = <mount>/fs. */
const run = (command: string) => sh(command, { env: { ...process.env, FS: fs } });

await t.test('fs/ lists the exports and reads files', async (tt) => {
  tt.same((await run('ls "$FS"')).stdout.split('\n').filter(Boolean), ['data', 'ro']);
  tt.equal(await readText(join(fs, 'ro', 'readme.txt')), 'read only\n');
  tt.equal(await readText(join(fs, 'data', 'notes.txt')), 'first line\n');
  const services = await readJson<Array<{ service_id: string; kind: string; path: string }>>(join(node.mount, 'SERVICES.json'));
  tt.same(
    services.find((s) => s.service_id === 'fs'),
    { service_id: 'fs', kind: 'fs', state: 'online', path: 'fs' },
    'fs is in SERVICES.json',
  );
});

await t.test('changes inside a :rw export reach the real directory', async (tt) => {
  const steps = [
    `echo replaced > "$FS/data/notes.txt"`,
    `echo appended >> "$FS/data/notes.txt"`,
    `printf new > "$FS/data/created.txt"`,
    `mkdir "$FS/data/new-dir"`,
    `rm "$FS/data/delete-me.txt"`,
    `mv "$FS/data/move-me.txt" "$FS/data/new-dir/moved.txt"`,
    `rmdir "$FS/data/old-dir"`,
    `touch "$FS/data/touched"`,
  ];
  for (const step of steps) {
    const r = await run(step);
    tt.equal(r.code, 0, `${step}: ${r.stderr.trim()}`);
  }
  tt.equal(await readFile(join(rw, 'notes.txt'), 'utf8'), 'replaced\nappended\n', 'write and append');
  tt.equal(await readFile(join(rw, 'created.txt'), 'utf8'), 'new', 'create');
  tt.equal(await readFile(join(rw, 'new-dir', 'moved.txt'), 'utf8'), 'moving\n', 'mkdir and mv');
  tt.same((await readdir(rw)).sort(), ['created.txt', 'new-dir', 'notes.txt', 'to-hostname', 'to-sibling-export', 'touched'], 'rm and rmdir');
  tt.equal(await readText(join(fs, 'data', 'new-dir', 'moved.txt')), 'moving\n', 'read back through the mount');
});

await t.test('O_DIRECT reads and writes work (dd iflag=direct, oflag=direct)', async (tt) => {
  const write = await run(`dd if=/dev/urandom of="$FS/data/direct.bin" oflag=direct bs=64k count=4 2>&1`);
  tt.equal(write.code, 0, `dd oflag=direct: ${write.stdout.trim()}`);
  const written = await readFile(join(rw, 'direct.bin'));
  tt.equal(written.length, 4 * 65536, 'every byte reached the export');
  const read = await run(`dd if="$FS/data/direct.bin" iflag=direct bs=64k 2>/dev/null | md5sum`);
  tt.equal(read.code, 0, read.stderr.trim());
  tt.equal(read.stdout.split(' ')[0], createHash('md5').update(written).digest('hex'), 'dd iflag=direct reads the same bytes');
  tt.equal((await run(`rm "$FS/data/direct.bin"`)).code, 0);
});

await t.test('the open that creates a file keeps its own flags (O_APPEND, O_EXCL) and may write a read-only mode', (tt) =>
  checkCreatingOpens(tt, join(fs, 'data'), rw),
);

await t.test("statfs of an export is its directory's file system (df), of the synthetic tree zeros", (tt) =>
  checkStatfs(tt, join(fs, 'data'), rw, join(node.mount, 'services')),
);

await t.test('st_blocks: an export file shows its blocks (du, tar -S copy its bytes), a synthetic file the blocks its size needs', (tt) =>
  checkBlocks(tt, join(fs, 'data'), rw, join(node.mount, 'NODE.json')),
);

await t.test('chown to the owner shown succeeds in an export (tar x as root), any other is EPERM, synthetic files keep theirs', (tt) =>
  checkChown(tt, join(fs, 'data'), rw, join(node.mount, 'NODE.json')),
);

await t.test('every change under a :ro export fails with EROFS and changes nothing', async (tt) => {
  const before = (await readdir(ro)).sort();
  const mtime = (await stat(join(ro, 'readme.txt'))).mtimeMs;
  const steps = [
    `/bin/echo x > "$FS/ro/readme.txt"`,
    `/bin/echo x >> "$FS/ro/readme.txt"`,
    `touch "$FS/ro/new-file"`,
    `touch "$FS/ro/readme.txt"`,
    `mkdir "$FS/ro/new-dir"`,
    `rm "$FS/ro/readme.txt"`,
    `rmdir "$FS/ro/sub"`,
    `mv "$FS/ro/readme.txt" "$FS/ro/renamed.txt"`,
    `chmod 600 "$FS/ro/readme.txt"`,
    `chown 1234 "$FS/ro/readme.txt"`,
    `truncate -s 0 "$FS/ro/readme.txt"`,
    `ln -s readme.txt "$FS/ro/link"`,
    `ln "$FS/ro/readme.txt" "$FS/ro/hard-link"`,
    // It was EPERM (only regular files are made), said before the export's EROFS (tester T11).
    `mkfifo "$FS/ro/fifo"`,
  ];
  for (const step of steps) {
    const r = await run(step);
    tt.not(r.code, 0, `${step} fails`);
    tt.match(r.stderr, /Read-only file system/, `${step}: EROFS`);
  }
  tt.same((await readdir(ro)).sort(), before, 'the real directory is unchanged');
  tt.equal(await readFile(join(ro, 'readme.txt'), 'utf8'), 'read only\n');
  tt.equal((await stat(join(ro, 'readme.txt'))).mtimeMs, mtime, 'not even touched');
  tt.equal(await readText(join(fs, 'ro', 'readme.txt')), 'read only\n', 'still readable');
});

await t.test('symlinks never lead out of an export', async (tt) => {
  for (const link of ['ro/to-etc', 'data/to-hostname', 'data/to-sibling-export']) {
    const r = await run(`ls "$FS/${link}/"`);
    tt.not(r.code, 0, `${link} is not followed`);
    tt.match(r.stderr, /No such file or directory/, `${link}: ENOENT`);
  }
  const listing = await run('ls -a "$FS/ro" "$FS/data"');
  tt.equal(listing.code, 0, `listings work (${listing.stderr.trim()})`);
  tt.notMatch(listing.stdout, /to-etc|to-hostname|to-sibling-export/, 'links leading out are absent from listings');
  tt.equal(await readText(join(fs, 'ro', 'to-readme')), 'read only\n', 'a link inside the export works');
  const escape = await run(`ln -s /etc "$FS/data/new-escape"`);
  tt.match(escape.stderr, /Operation not permitted/, 'creating a link that leads out is refused');
});

await t.test('symlinks are shown as links: rm -r removes the link, not what it leads to; find and tar end', (tt) => checkLinks(tt, join(fs, 'data'), rw));

await t.test('names that are not UTF-8: not listed, not made (EILSEQ), never collapsed into one', async (tt) => {
  const odd = join(rw, 'odd');
  await mkdir(odd);
  const made = await sh(`python3 -c ${q(`open(b'${odd}/bad\\xff', 'wb').write(b'x'); open(b'${odd}/good', 'wb').write(b'y')`)}`);
  tt.equal(made.code, 0, made.stderr);
  tt.same((await run('ls "$FS/data/odd"')).stdout.split('\n').filter(Boolean), ['good'], 'the name that is not UTF-8 is not listed');
  const create = await sh(
    `python3 -c ${q(`import errno\nfor name in (b'caf\\xe9', b'caf\\xe8'):\n    try:\n        open(b'${join(fs, 'data', 'odd')}/' + name, 'wb').write(b'z')\n        print('made')\n    except OSError as e:\n        print(errno.errorcode[e.errno])`)}`,
  );
  tt.same(create.stdout.trim().split('\n'), ['EILSEQ', 'EILSEQ'], `each create is refused (${create.stderr.trim()})`);
  tt.same((await readdir(odd)).length, 2, 'nothing was made on the disk');
});

await t.test('terminal-t1: argv and command payloads', async (tt) => {
  const dir = node.service('terminal-t1');
  const host = await readJson(join(dir, 'HOST.json'));
  tt.equal(host.host_kind, 'static_linked');
  tt.equal(host.abi, 'namespace-driver-v1');
  const invoke = async (payload: unknown): Promise<Record<string, unknown>> => {
    const r = await sh(`/bin/echo ${q(JSON.stringify(payload))} > ${q(join(dir, 'control', 'invoke.json'))}`);
    tt.equal(r.code, 0, `invoke ${JSON.stringify(payload)}: ${r.stderr.trim()}`);
    return readJson(join(dir, 'result.json'));
  };
  tt.same(
    await invoke({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] }),
    {
      service: 'terminal',
      terminal_id: 't1',
      operation: 'exec',
      ok: false,
      state: 'exited',
      exit_code: 3,
      stdout: 'out\n',
      stderr: 'err\n',
    },
    'argv: a non-zero exit is a result, not a failure',
  );
  tt.equal((await readJson(join(dir, 'status.json'))).state, 'ok');
  tt.same(
    await invoke({ command: 'pwd; echo $((2 + 3))', cwd: base }),
    {
      service: 'terminal',
      terminal_id: 't1',
      operation: 'exec',
      ok: true,
      state: 'exited',
      exit_code: 0,
      stdout: `${base}\n5\n`,
      stderr: '',
    },
    'command runs under /bin/sh -c in cwd',
  );
  const capped = await invoke({ argv: ['sh', '-c', 'yes | head -c 100000'], max_output_bytes: 1000 });
  tt.equal(capped.state, 'terminated', 'past max_output_bytes the command is killed');
  tt.ok((capped.stdout as string).length <= 1000, 'and its output is capped');

  const bad = await sh(`/bin/echo '{"neither": 1}' > ${q(join(dir, 'control', 'invoke.json'))}`);
  tt.match(bad.stderr, /Invalid argument/, 'a payload without argv or command is EINVAL');
  tt.match(await readText(join(dir, 'last_error.txt')), /^EINVAL: .*"argv".*"command"/, 'last_error.txt says what is missing');
  tt.equal((await readJson(join(dir, 'status.json'))).errno, 'EINVAL');
});

await t.test(
  "terminal commands run as the node's --driver-user (as root); an unknown one stops the start",
  { skip: process.getuid?.() !== 0 && 'needs root' },
  async (tt) => {
    const idOf = async (dir: string): Promise<string> => {
      const r = await sh(`/bin/echo '{"argv":["id","-u"]}' > ${q(join(dir, 'control', 'invoke.json'))}`);
      tt.equal(r.code, 0, r.stderr.trim());
      return (await readJson<{ stdout: string }>(join(dir, 'result.json'))).stdout.trim();
    };
    tt.equal(await idOf(node.service('terminal-t1')), '0', 'without --driver-user: as the node (root)');
    const nobody = (await readText('/etc/passwd'))
      .split('\n')
      .find((line) => line.startsWith('nobody:'))
      ?.split(':')[2];
    const dropped = await startNode(tt, { args: ['--no-fs-service', '--terminal-id', 't3', '--driver-user', 'nobody'] });
    tt.equal(await idOf(dropped.service('terminal-t3')), nobody, `with --driver-user nobody: as nobody (${nobody})`);
    const dir = await tempDir(tt);
    const unknown = spawnMounter(
      tt,
      [
        ACHERON,
        'node',
        '--node-id',
        't4',
        '--mount',
        join(dir, 'mnt'),
        '--no-fs-service',
        '--terminal-id',
        't4',
        '--driver-user',
        'no-such-user',
        '--state-file',
        join(dir, 'state.json'),
      ],
      join(dir, 'mnt'),
    );
    tt.same(await unknown.exited, { code: 1, signal: null }, 'an unknown --driver-user: exit 1');
    tt.match(unknown.stderr().trim(), /^acheron: --driver-user "no-such-user": no such user/, `naming it (${unknown.stderr().trim()})`);
  },
);

await t.test('an export that contains the mount point is rejected at start-up', async (tt) => {
  const dir = await tempDir(tt);
  const mount = join(dir, 'inner', 'mnt');
  const r = await sh(`exec node ${q(ACHERON)} node --node-id loop --mount ${q(mount)} --export ${q(`all=${dir}`)} --state-file ${q(join(dir, 'state.json'))}`, {
    timeoutMs: 30_000,
  });
  tt.equal(r.code, 1, 'exit 1');
  tt.match(r.stderr, `--export all=${dir}: contains the mount point ${mount}`, r.stderr.trim());
  tt.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  tt.notOk((await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${mount} `), 'nothing mounted');
});

await t.test('an export whose mode is mistyped (name=dir:xx): the start names the path it took and says the mode is none', async (tt) => {
  const dir = await tempDir(tt);
  const r = await sh(
    `exec node ${q(ACHERON)} node --node-id typo --mount ${q(join(dir, 'mnt'))} --export ${q(`data=${dir}:xx`)} --state-file ${q(join(dir, 'state.json'))}`,
    { timeoutMs: 30_000 },
  );
  tt.equal(r.code, 1, 'exit 1');
  tt.match(r.stderr, `--export data=${dir}:xx: ENOENT`, 'the path as taken');
  tt.match(r.stderr, '(":xx" is no mode: ro or rw)', r.stderr.trim());
});

await t.test('--no-fs-service: no fs/ and no fs entry', async (tt) => {
  const bare = await startNode(tt, { args: ['--no-fs-service', '--terminal-id', 't2'] });
  const ls = await sh(`ls ${q(bare.mount)}`);
  tt.notOk(ls.stdout.split('\n').includes('fs'), `no fs/ in ${ls.stdout.trim().replace(/\n/g, ' ')}`);
  tt.match(ls.stdout, /services/);
  const gone = await sh(`ls ${q(join(bare.mount, 'fs'))}`);
  tt.match(gone.stderr, /No such file or directory/, 'fs/ is ENOENT');
  const services = await readJson<Array<{ service_id: string }>>(join(bare.mount, 'SERVICES.json'));
  tt.same(
    services.map((s) => s.service_id),
    ['terminal-t2'],
    'SERVICES.json has no fs entry',
  );
});
