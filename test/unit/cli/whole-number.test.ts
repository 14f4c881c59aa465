// checkWholeNumber: the one check of every number option (yargs, mount -o, --config).
import t from 'tap';
import { checkWholeNumber, MAX_TIMER_MS, wholeNumberOption } from '../../../src/cli/whole-number.js';

const ms = { min: 1, unit: 'milliseconds' };

t.test('accepts whole numbers in range, from numbers or text', async (tt) => {
  tt.equal(checkWholeNumber('--x', 5, ms), 5);
  tt.equal(checkWholeNumber('--x', '250', ms), 250, 'mount -o gives text');
  tt.equal(checkWholeNumber('--x', MAX_TIMER_MS, ms), MAX_TIMER_MS, 'the default upper bound is inclusive');
  tt.equal(checkWholeNumber('--x', 0, { min: 0, unit: 'events' }), 0);
});

t.test('refuses the rest with a message naming the option, the value and the range', async (tt) => {
  const cases: Array<[unknown, string]> = [
    [Number.NaN, '--x (not a number): expected a whole number from 1 to 2147483647 (milliseconds)'],
    ['abc', '--x abc: expected a whole number from 1 to 2147483647 (milliseconds)'],
    ['', '--x "": expected a whole number from 1 to 2147483647 (milliseconds)'],
    [0, '--x 0: expected a whole number from 1 to 2147483647 (milliseconds)'],
    [1.5, '--x 1.5: expected a whole number from 1 to 2147483647 (milliseconds)'],
    [MAX_TIMER_MS + 1, '--x 2147483648: expected a whole number from 1 to 2147483647 (milliseconds)'],
    [Number.POSITIVE_INFINITY, '--x null: expected a whole number from 1 to 2147483647 (milliseconds)'],
    [true, '--x true: expected a whole number from 1 to 2147483647 (milliseconds)'],
  ];
  for (const [raw, message] of cases) tt.throws(() => checkWholeNumber('--x', raw, ms), { name: 'UsageError', message }, String(raw));
  tt.throws(() => checkWholeNumber('--x', 11, { min: 0, max: 10, unit: 'microseconds' }), { message: /from 0 to 10 \(microseconds\)/ });
});

t.test('as a yargs coerce: the last of repeated values counts', async (tt) => {
  const coerce = wholeNumberOption('lease-ttl-ms', { min: 1000, unit: 'milliseconds' });
  tt.equal(coerce([2000, 3000]), 3000);
  tt.throws(() => coerce([2000, 5]), { message: /^--lease-ttl-ms 5: / });
});
