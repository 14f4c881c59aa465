// acheron invoke's one-line reason for a failed transaction: last_error.txt only when it records that errno.
import t from 'tap';
import { errorDetail } from '../../../src/cli/invoke-command.js';

t.test('the recorded line of the same errno, without its prefix', async (t) => {
  t.equal(errorDetail('EINVAL: payload: /msg must be string\nmore\n', 'EINVAL', 'Invalid argument'), 'payload: /msg must be string');
});

t.test('an earlier error of another errno, or text without a prefix, is not the reason: the fallback is', async (t) => {
  t.equal(errorDetail('EIO: the driver exited with status 3\n', 'ETIMEDOUT', 'connection timed out'), 'connection timed out');
  t.equal(errorDetail('boom\n', 'ETIMEDOUT', 'connection timed out'), 'connection timed out');
  t.equal(errorDetail('', 'ENOSPC', 'no space left on device'), 'no space left on device');
  t.equal(errorDetail('EIO: \n', 'EIO', 'input/output error'), 'input/output error', 'an empty reason falls back too');
});
