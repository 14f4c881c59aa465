// acheron invoke's one line for a refused transaction: the errno once, and why: a known meaning,
// last_error.txt only when it records that errno, else the system error's description.
import t from 'tap';
import { errorDetail, mountRefusal, refusalLine, systemErrorText, type MountPlace } from '../../../src/cli/invoke-command.js';

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
  const world = { service: 'echo', mount: '/w', under: '/w/nodes/n1', node: 'n1' };
  const nodeTree = { service: 'echo', mount: '/mnt/acheron', under: '/mnt/acheron', node: undefined };
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
    'acheron invoke: echo: ENOTCONN: WorldFS at /w has lost its control server (it reconnects by itself)\n',
  );
  t.equal(
    await line('ENOENT', "ENOENT: no such file or directory, open '/w/nodes/n1/services/echo/control/invoke.json'", world),
    'acheron invoke: echo: ENOENT: no service echo under /w/nodes/n1\n',
  );
  t.equal(reads, 0, 'a known meaning: last_error.txt is not read (on WorldFS it is out of reach too)');

  t.equal(
    await line('EINVAL', 'EINVAL: invalid argument, write', nodeTree, 'EINVAL: payload: /msg must be string\n'),
    'acheron invoke: echo: EINVAL: payload: /msg must be string\n',
    "last_error.txt's reason when it records this errno",
  );
  t.equal(
    await line('ETIMEDOUT', 'ETIMEDOUT: connection timed out, read', nodeTree, 'EIO: the driver exited with status 3\n'),
    'acheron invoke: echo: ETIMEDOUT: connection timed out\n',
    'else the description, without the errno again or the syscall',
  );
  t.equal(
    await line('EHOSTUNREACH', 'EHOSTUNREACH: host is unreachable, read', nodeTree),
    'acheron invoke: echo: EHOSTUNREACH: host is unreachable\n',
    'the node tree: no WorldFS meaning',
  );
});
