// What a client is told when an op fails with something other than a refusal: a store file that
// could not be written is named with its errno (it was `internal error; see the server log`).
import t from 'tap';
import { opFailure } from '../../../src/control/op-failure.js';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { namedError } from '../../../src/store/named-error.js';

t.test('a file the store could not write: named (its name alone, not the data dir), with its errno', async (t) => {
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  t.same(opFailure(namedError('state journal /var/lib/acheron/control/projects.journal', full)).toWire(), {
    code: 'unavailable',
    message: 'the control server could not read or write its files: state journal projects.journal: ENOSPC: no space left on device, write',
  });
});

t.test('a refusal goes as it is; a bug says only where to look', async (t) => {
  const refusal = new ProtocolError('not_found', 'no node n1');
  t.equal(opFailure(refusal), refusal);
  t.same(opFailure(new TypeError('x is undefined')).toWire(), { code: 'unavailable', message: 'internal error; see the server log' });
  t.same(
    opFailure(Object.assign(new Error('odd'), { code: 'ERR_SOMETHING' })).toWire().message,
    'internal error; see the server log',
    'a code that is no errno',
  );
});
