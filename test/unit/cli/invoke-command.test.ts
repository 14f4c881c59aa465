// acheron invoke's one line for a refused transaction: the errno once, and why: a known meaning,
// last_error.txt only when it records that errno, else the system error's description.
import t from 'tap';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/node.js';
import { UsageError } from '../../../src/cli/exit.js';
import { PassThrough } from 'node:stream';
import { failureLine, payloadText, refusalLine, runInvokeCommand } from '../../../src/cli/invoke-command.js';
import { errorDetail, mountRefusal, type MountPlace } from '../../../src/cli/invoke-mount.js';
import { systemErrorText } from '../../../src/errors/errno.js';

t.test('the recorded line of the same errno, without its prefix', async (t) => {
  t.equal(errorDetail('EINVAL: payload: /msg must be string\nmore\n', 'EINVAL', 'Invalid argument'), 'payload: /msg must be string');
});

t.test('an earlier error of another errno, or text without a prefix, is not the reason: the fallback is', async (t) => {
  t.equal(errorDetail('EIO: the driver exited with status 3\n', 'ETIMEDOUT', 'connection timed out'), 'connection timed out');
  t.equal(errorDetail('boom\n', 'ETIMEDOUT', 'connection timed out'), 'connection timed out');
  t.equal(errorDetail('', 'ENOSPC', 'no space left on device'), 'no space left on device');
  t.equal(errorDetail('EIO: \n', 'EIO', 'input/output error'), 'input/output error', 'an empty reason falls back too');
});

t.test("a system error's description, without its errno and syscall", async (t) => {
  t.equal(systemErrorText('EHOSTUNREACH', 'EHOSTUNREACH: host is unreachable, read'), 'host is unreachable');
  t.equal(systemErrorText('ENOENT', "ENOENT: no such file or directory, open '/mnt/x, y/control/invoke.json'"), 'no such file or directory');
  t.equal(systemErrorText('EXDEV', "EXDEV: cross-device link not permitted, rename '/a' -> '/b'"), 'cross-device link not permitted');
  t.equal(systemErrorText('EIO', 'EIO: i/o error, write'), 'i/o error');
  t.equal(systemErrorText('ERROR', 'something else'), 'something else', 'not a system error: as it is');
});

t.test('a refused transaction on the mount: one line, the errno once, and what it means', async (t) => {
  // What each kind of mount has at its root: WorldFS nodes/, a node tree NODE.json.
  const w = await tempDir(t);
  await mkdir(join(w, 'nodes'));
  const n = await tempDir(t);
  await writeFile(join(n, 'NODE.json'), '{}');
  const world = { service: 'echo', mount: w, under: join(w, 'nodes', 'n1'), node: 'n1' };
  const nodeTree = { service: 'echo', mount: n, under: n, node: undefined };
  let reads = 0;
  const recorded = (text: string) => async (): Promise<string> => {
    reads++;
    return text;
  };
  const line = async (errno: string, message: string, place: MountPlace, lastError = ''): Promise<string> =>
    refusalLine('echo', await mountRefusal(errno, message, place, recorded(lastError)));

  t.equal(
    await line('EHOSTUNREACH', 'EHOSTUNREACH: host is unreachable, read', world),
    'acheron invoke: echo: EHOSTUNREACH: node n1 is offline or not connected to the control server\n',
    'WorldFS, the node offline: was `EHOSTUNREACH: EHOSTUNREACH: host is unreachable, read`',
  );
  t.equal(
    await line('ENOTCONN', 'ENOTCONN: socket is not connected, open', world),
    `acheron invoke: echo: ENOTCONN: WorldFS at ${w} has no working session with its control server (out of reach, or its token or project refused: its log says which); it tries again by itself, reading its token files again each time\n`,
  );
  // At the commit (the read after the write) the invoke may have reached the node before the link went: a script must not retry blindly.
  const jobs = join(w, 'nodes', 'n1', 'services', 'echo', 'jobs');
  t.equal(
    await line('EHOSTUNREACH', 'EHOSTUNREACH: host is unreachable, read', { ...world, committing: true }),
    `acheron invoke: echo: EHOSTUNREACH: node n1 is offline or not connected to the control server; the invocation may have run before the link was lost: see ${jobs}/ once it is back, before invoking again\n`,
  );
  t.equal(
    await line('EHOSTUNREACH', 'EHOSTUNREACH: host is unreachable, read', { ...world, committing: true, offlineBefore: true }),
    'acheron invoke: echo: EHOSTUNREACH: node n1 was offline before this invocation (its STATUS.json): the invocation was not sent\n',
    'a node offline already: refused before anything was sent, no warning of a run',
  );
  t.equal(
    await line('ENOTCONN', 'ENOTCONN: socket is not connected, read', { ...world, committing: true }),
    `acheron invoke: echo: ENOTCONN: WorldFS at ${w} has no working session with its control server (out of reach, or its token or project refused: its log says which); it tries again by itself, reading its token files again each time; the invocation may have run before the link was lost: see ${jobs}/ once it is back, before invoking again\n`,
  );
  t.equal(
    await line('ENOENT', 'ENOENT: no such file or directory, open', world),
    `acheron invoke: echo: ENOENT: no node n1 under ${w}/nodes (not in the catalog, or hidden from this mount's token)\n`,
    'WorldFS without the node: the node is named (it was "no service echo under …/nodes/n1")',
  );
  await mkdir(join(w, 'nodes', 'n1'));
  t.equal(await line('ENOENT', 'ENOENT: no such file or directory, open', world), `acheron invoke: echo: ENOENT: no service echo under ${w}/nodes/n1\n`);
  t.equal(
    await line('ENOENT', 'ENOENT: no such file or directory, open', { ...nodeTree, mount: w, under: w }),
    `acheron invoke: echo: ENOENT: ${w} is not an acheron node mount (no NODE.json): is it running?\n`,
    'a directory nothing is mounted on: said so (it was "no service echo under …")',
  );
  t.equal(
    await line('ENOENT', 'ENOENT: no such file or directory, open', { ...world, mount: n, under: join(n, 'nodes', 'n1') }),
    `acheron invoke: echo: ENOENT: ${n} is not an acheron WorldFS mount (no nodes): is it running?\n`,
  );
  t.equal(reads, 0, 'a known meaning: last_error.txt is not read (on WorldFS it is out of reach too)');

  t.equal(
    await line('EINVAL', 'EINVAL: invalid argument, write', nodeTree, 'EINVAL: payload: /msg must be string\n'),
    'acheron invoke: echo: EINVAL: payload: /msg must be string\n',
    "last_error.txt's reason when it records this errno",
  );
  t.equal(
    await line('ETIMEDOUT', 'ETIMEDOUT: connection timed out, read', nodeTree, 'EIO: the driver exited with status 3\n'),
    `acheron invoke: echo: ETIMEDOUT: no outcome within the writer's bound (the queue, timeout_ms and kill_grace_ms); the invocation may still end: see ${n}/services/echo/jobs/\n`,
    "the node tree's wait bound: said so (it was `connection timed out`)",
  );
  t.equal(
    await line('ENOTCONN', 'ENOTCONN: socket is not connected, open', nodeTree),
    `acheron invoke: echo: ENOTCONN: the daemon that served ${n} is gone (a stale mount): start the node again, or fusermount -uz ${n}\n`,
  );
  // The daemon killed while it held the commit (was the bare `ECONNABORTED: software caused connection abort`).
  t.equal(
    await line('ECONNABORTED', 'ECONNABORTED: software caused connection abort, read', { ...nodeTree, committing: true }),
    `acheron invoke: echo: ECONNABORTED: the node daemon serving ${n} stopped during this invocation (killed, or its mount forced off); the invocation may have run: once it serves again, see ${n}/services/echo/jobs/ (a run the node did not finish shows as interrupted) before invoking again\n`,
  );
  t.equal(
    await line('ECONNABORTED', 'ECONNABORTED: software caused connection abort, open', world),
    `acheron invoke: echo: ECONNABORTED: WorldFS serving ${w} stopped during this invocation (killed, or its mount forced off); the invocation was not sent\n`,
  );
  // At the commit the service was there at the open: a reload removed it and cancelled the run (was "no service echo under …").
  t.equal(
    await line('ENOENT', 'ENOENT: no such file or directory, read', { ...nodeTree, committing: true }),
    'acheron invoke: echo: ENOENT: service echo was removed (a manifest reload) while this invocation ran or waited: it was cancelled\n',
  );
  // On WorldFS the service may be hidden from the session, or gone after its run: no claim that it was cancelled.
  await mkdir(join(w, 'nodes', 'n1'), { recursive: true });
  t.equal(
    await line('ENOENT', 'ENOENT: no such file or directory, read', { ...world, committing: true }),
    `acheron invoke: echo: ENOENT: service echo is gone from ${w}/nodes/n1 (removed on the node, or hidden from this mount's session): the invocation may have run; check on the node before invoking again\n`,
  );
  await rm(join(w, 'nodes', 'n1'), { recursive: true });
  t.equal(
    await line('ENOSPC', 'ENOSPC: no space left on device, write', nodeTree, 'EIO: the driver exited with status 3\n'),
    'acheron invoke: echo: ENOSPC: no space left on device\n',
    'else the description, without the errno again or the syscall',
  );
  t.equal(
    await line('EAGAIN', 'EAGAIN: resource temporarily unavailable, open', nodeTree, ''),
    `acheron invoke: echo: EAGAIN: the node serving ${n} is shutting down and takes no new invocations: try again once it runs` + '\n',
    'the node tree, EAGAIN not in last_error.txt: a stopping node (was `resource temporarily unavailable`)',
  );
  t.equal(
    await line('EAGAIN', 'EAGAIN: resource temporarily unavailable, open', nodeTree, 'EAGAIN: service echo: queue full (max_queue 1)\n'),
    'acheron invoke: echo: EAGAIN: service echo: queue full (max_queue 1)\n',
    'a cooldown or a full queue is recorded: that',
  );
  t.equal(
    await line('EHOSTUNREACH', 'EHOSTUNREACH: host is unreachable, read', nodeTree),
    'acheron invoke: echo: EHOSTUNREACH: host is unreachable\n',
    'the node tree: no WorldFS meaning',
  );
  t.equal(
    await line('EACCES', 'EACCES: permission denied, open', world, ''),
    'acheron invoke: echo: EACCES: permission denied\n',
    'WorldFS, invoke.json out of reach (the kernel refused this caller the mount): no claim about the server',
  );
  await mkdir(join(w, 'nodes', 'n1', 'services', 'echo', 'control'), { recursive: true });
  await writeFile(join(w, 'nodes', 'n1', 'services', 'echo', 'control', 'invoke.json'), '');
  t.equal(
    await line('EACCES', 'EACCES: permission denied, read', world, ''),
    `acheron invoke: echo: EACCES: the control server refused it to the token or project session of ${w}: the mount's log says why ("relayed operation refused")\n`,
    "WorldFS, a refusal of the server (the project's invoke action): where its reason is (was `permission denied`)",
  );
  t.equal(
    await line('EACCES', 'EACCES: permission denied, read', world, 'EACCES: the driver may not do that\n'),
    'acheron invoke: echo: EACCES: the driver may not do that\n',
    "WorldFS, an EACCES the node recorded: the node's reason",
  );
  t.equal(
    await line('EACCES', 'EACCES: permission denied, open', nodeTree, ''),
    'acheron invoke: echo: EACCES: permission denied\n',
    'the node tree: no WorldFS meaning',
  );
});

t.test('the outcome reaches stdout byte for byte: a text result need not be UTF-8', async (t) => {
  // A stand-in for a node tree: a regular invoke.json reads back what the transaction wrote, then the rest.
  const n = await tempDir(t);
  await writeFile(join(n, 'NODE.json'), '{}');
  await mkdir(join(n, 'services', 'bin', 'control'), { recursive: true });
  const text = Buffer.from([0xff, 0xfe, 0x67, 0x0a]);
  await writeFile(join(n, 'services', 'bin', 'control', 'invoke.json'), Buffer.concat([Buffer.from('  '), text]));
  const chunks: Buffer[] = [];
  const stdout = new PassThrough().on('data', (chunk: Buffer) => chunks.push(chunk));
  const stderr = new PassThrough();
  const code = await runInvokeCommand({ service: 'bin', payload: '{}', mount: n, node: undefined, json: false }, stdout, stderr);
  t.equal(code, 0);
  t.same(Buffer.concat(chunks), Buffer.concat([Buffer.from('{}'), text]), 'the bytes 0xff 0xfe as read (they were printed as two U+FFFD)');
});

t.test('a payload from stdin: its bytes, or a usage error when they are not UTF-8', async (t) => {
  t.equal(payloadText(Buffer.from('{"a":"é"}\n')), '{"a":"é"}\n');
  // Decoded leniently, 0xff became U+FFFD: the invocation ran, on other data than given.
  t.throws(
    () => payloadText(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])),
    new UsageError('payload is not valid UTF-8 (a JSON text must be)'),
  );
  t.equal(payloadText(Buffer.from('\ufeff{}')), '\ufeff{}', 'a byte order mark stays (and is then refused as not JSON)');
});

t.test("a failure's line: the first line of its error, cut after 1000 characters (not halving one) saying how many more and where the whole is", async (t) => {
  t.equal(failureLine('short\nsecond line', 'W'), 'short');
  t.equal(failureLine('y'.repeat(1000), 'W'), 'y'.repeat(1000), 'exactly 1000: whole');
  t.equal(failureLine(`${'y'.repeat(1001)}\nmore`, 'W'), `${'y'.repeat(1000)}… (1 more character; the whole error: W)`);
  t.equal(failureLine('😀'.repeat(1500), 'W'), `${'😀'.repeat(1000)}… (500 more characters; the whole error: W)`, 'characters, not UTF-16 units');
});
