// Payload depth bound (SPEC §11: bad input gets a clear error, no crash): tooDeepAt names the first
// value nested too deep by its JSON pointer, and finds nothing in a value within the bound.
import t from 'tap';
import { tooDeepAt } from '../../../src/protocol/envelope.js';

/** `depth` levels of objects `{"a/~": …}` and arrays `[…]` alternating around 1. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { 'a/~': value };
  return value;
}

t.test('within the bound: undefined, whatever the shape', async (t) => {
  t.equal(tooDeepAt(nested(3), 3), undefined, 'three levels under a bound of 3');
  t.equal(tooDeepAt({ a: [1, 'x', null, true], b: { c: {} } }, 3), undefined);
  t.equal(tooDeepAt('scalar', 0), undefined, 'a scalar has no depth to exceed');
});

t.test('beyond it: the pointer of the first value too deep, ~ and / escaped', async (t) => {
  t.equal(tooDeepAt(nested(4), 3), '/a~1~0/0/a~1~0');
  t.equal(tooDeepAt({ ok: 1, deep: { x: { y: [{}] } } }, 3), '/deep/x/y');
  t.equal(tooDeepAt({}, 0), '/', 'the value itself');
});

t.test('a million levels neither recurse nor throw', async (t) => {
  let value: unknown = null;
  for (let i = 0; i < 1_000_000; i++) value = [value];
  t.equal(tooDeepAt(value, 64), `/${Array(64).fill('0').join('/')}`);
});
