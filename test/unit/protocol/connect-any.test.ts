// connectAny (src/protocol/connect-any.ts): what it retries. A connection the network or a server
// refused is tried again (then `unavailable`); a request ws could not even build is this side's
// mistake and ends it at once, as itself.
import t from 'tap';
import { connectAny } from '../../../src/protocol/connect-any.js';
import { ProtocolError } from '../../../src/protocol/errors.js';

// Nothing listens there (the test's port range): each attempt is refused.
const NOWHERE = 'ws://127.0.0.1:47601';

t.test('nothing listening: tried `rounds` times, then unavailable naming the URL', async (t) => {
  await t.rejects(connectAny([NOWHERE], { token: 'ach_user_x' }, { rounds: 2, firstMs: 1, maxMs: 1 }), {
    code: 'unavailable',
    message: new RegExp(`^no control server answered \\(2 rounds over 1 URL\\): ${NOWHERE}: connect ECONNREFUSED`),
  });
});

t.test('a token that is no valid header value: thrown at once as it is, not unavailable after retries', async (t) => {
  const error: unknown = await connectAny([NOWHERE], { token: 'ach_user_x\r\nX-Other: 1' }, { rounds: 3, firstMs: 1, maxMs: 1 }).catch((e: unknown) => e);
  t.notOk(error instanceof ProtocolError, `not a ProtocolError (${String(error)})`);
  t.match(error, { code: 'ERR_INVALID_CHAR', message: /Invalid character in header content \["authorization"\]/ });
});
