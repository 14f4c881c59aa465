// StartAttempts: a WorldFS start gives up as the one-shot commands do: three rounds while no server
// is in reach (quick handshakes in the first two), at once on what a server answered.
import t from 'tap';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { StartAttempts } from '../../../src/world/start-attempts.js';

const refused = (url: string): ProtocolError => new ProtocolError('unavailable', `cannot reach the control server at ${url}: connect ECONNREFUSED`);

t.test('servers out of reach: three rounds, then one line naming each', async (t) => {
  const start = new StartAttempts(2);
  const handshakes: Array<number | undefined> = [];
  for (let round = 1; round <= 3; round++) {
    handshakes.push(start.handshakeTimeoutMs);
    start.failed('ws://a', refused('ws://a'));
    start.failed('ws://b', refused('ws://b'));
    if (round < 3) start.roundFailed();
  }
  t.same(handshakes, [2_000, 2_000, undefined], 'the quick handshake in the first two rounds, the client default in the last');
  t.throws(() => start.roundFailed(), {
    code: 'unavailable',
    message: 'no control server answered (3 rounds over 2 URLs): ws://a: connect ECONNREFUSED; ws://b: connect ECONNREFUSED',
  });
});

t.test('what a server answered ends the start at once', async (t) => {
  const start = new StartAttempts(2);
  t.throws(() => start.failed('ws://a', new ProtocolError('unauthorized', 'control server refused the connection: HTTP 401')), { code: 'unauthorized' });
  t.throws(() => start.failed('ws://a', new ProtocolError('not_found', 'no project nope')), { code: 'not_found' });
  t.throws(() => start.failed('ws://a', new Error('EACCES: token file')), /EACCES/, 'and so does a failure of this side');
  t.doesNotThrow(
    () => start.failed('ws://a', new ProtocolError('unavailable', 'control store: etcd out of reach')),
    "a server's store out of reach: tried again",
  );
});
