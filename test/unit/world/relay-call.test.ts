// relayOnce's own answers, before anything is sent: a path longer than the relay carries is
// ENAMETOOLONG, as the node's own mount answers it, not an EIO from the request's schema check.
import t from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import type { ControlClient } from '../../../src/protocol/control-client.js';
import { RELAY_PATH_MAX } from '../../../src/protocol/relay.js';
import { relayOnce } from '../../../src/world/relay-call.js';

t.test('a path or rename target over PATH_MAX: ENAMETOOLONG, nothing sent', async (t) => {
  let sent = 0;
  const client = {
    request: async () => {
      sent++;
      return { ok: true, result: {} };
    },
    isOpen: true,
  } as unknown as ControlClient;
  const long = `/fs/data/${'d'.repeat(RELAY_PATH_MAX)}`;
  for (const operation of [
    { op: 'mkdir', path: long },
    { op: 'rename', path: '/fs/data/a', to: long },
  ] as const) {
    const refused = await relayOnce(client, 'n1', operation).catch((error: unknown) => error);
    t.equal(refused instanceof FsError && refused.errno, 'ENAMETOOLONG', `${operation.op}: ENAMETOOLONG`);
  }
  t.equal(sent, 0, 'nothing was sent');
  t.same(await relayOnce(client, 'n1', { op: 'mkdir', path: `/fs/data/${'d'.repeat(200)}` }), {}, 'a path within the limit goes');
  t.equal(sent, 1);
});
