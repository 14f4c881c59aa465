// relayOnce's own answers, before anything is sent: a path longer than the relay carries is
// ENAMETOOLONG, as the node's own mount answers it, not an EIO from the request's schema check.
import type { Logger } from 'pino';
import t from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import type { ControlClient } from '../../../src/protocol/control-client.js';
import { RELAY_PATH_MAX } from '../../../src/protocol/relay.js';
import { RelayLog, relayOnce } from '../../../src/world/relay-call.js';

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

t.test("an EACCES's reason goes to the mount's log, once a minute per node and reason", async (t) => {
  const reason = 'project p1: mount needs the project token (attach with project_token)';
  const client = { request: async () => ({ ok: false, errno: 'EACCES', message: reason }), isOpen: true } as unknown as ControlClient;
  const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  const log = new RelayLog({ warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as unknown as Logger);
  for (let i = 0; i < 3; i++) {
    const refused = await relayOnce(client, 'n1', { op: 'open', path: '/fs/data/new.txt', flags: 1 }, log).catch((error: unknown) => error);
    t.equal(refused instanceof FsError && refused.errno, 'EACCES', 'the caller still gets EACCES');
  }
  t.equal(lines.length, 1, 'logged once, not per attempt');
  t.equal(lines[0]?.msg, 'relayed operation refused');
  t.match(lines[0]?.fields, { node_id: 'n1', op: 'open', path: '/fs/data/new.txt', errno: 'EACCES', reason });
  await relayOnce(client, 'n2', { op: 'open', path: '/fs/data/new.txt', flags: 1 }, log).catch(() => undefined);
  t.equal(lines.length, 2, 'another node: logged too');
});
