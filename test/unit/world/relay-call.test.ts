// relayOnce's own answers, before anything is sent: a path longer than the relay carries is
// ENAMETOOLONG, as the node's own mount answers it, not an EIO from the request's schema check.
// An invoke by a session without `read` (`acheron invoke --node`) states no timeout_ms, so the
// server bounds it from the descriptor it holds; the requester waits as long as the server may.
import type { Logger } from 'pino';
import t from 'tap';
import { FsError } from '../../../src/errors/errno.js';
import type { ControlClient } from '../../../src/protocol/control-client.js';
import { RELAY_PATH_MAX, RELAY_WAIT_MAX_MS, RELAY_WAIT_MS } from '../../../src/protocol/relay.js';
import { RelayLog, relayOnce } from '../../../src/world/relay-call.js';
import { invokeOnNode } from '../../../src/world/relay-invoke.js';

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

t.test("an invoke without `read`: no timeout_ms (the server's bound applies), waited for as long as the server may", async (t) => {
  const sent: Array<{ type: string; payload: Record<string, unknown>; waitMs: number | undefined }> = [];
  const client = {
    request: async (type: string, payload: Record<string, unknown>, waitMs?: number) => {
      sent.push({ type, payload, waitMs });
      return { ok: true, result: { size: 2, data: Buffer.from('{}').toString('base64') } };
    },
    isOpen: true,
  } as unknown as ControlClient;
  t.equal((await invokeOnNode(client, 'n1', 's', Buffer.from('{}'), { readsCatalog: false })).toString(), '{}');
  t.same(
    sent.map((s) => s.type),
    ['control.relay'],
    'one relay, no catalog read',
  );
  t.notOk('timeout_ms' in (sent[0]?.payload ?? {}), 'no timeout_ms: the server derives it from its catalog');
  t.ok((sent[0]?.waitMs ?? 0) > RELAY_WAIT_MAX_MS, `the reply is awaited past the longest bound the server may derive (${sent[0]?.waitMs} ms)`);
  sent.length = 0;
  await relayOnce(client, 'n1', { op: 'stat', path: '/services/s/status.json' });
  t.ok((sent[0]?.waitMs ?? Infinity) < 2 * RELAY_WAIT_MS, 'any other op without one: about the default');
});
