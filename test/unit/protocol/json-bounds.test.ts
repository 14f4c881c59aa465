// JSON bounds (SPEC §11: bad input gets a clear error, no crash): jsonBoundProblem names the first
// value nested too deep, or the first number that overflowed to ±Infinity, by its JSON pointer, and
// finds nothing in a value within the bounds.
import t from 'tap';
import { jsonBoundProblem } from '../../../src/protocol/json-bounds.js';

/** `depth` levels of objects `{"a/~": …}` and arrays `[…]` alternating around 1. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { 'a/~': value };
  return value;
}

const tooDeepAt = (value: unknown, maxDepth: number): string | undefined => jsonBoundProblem(value, maxDepth)?.pointer;

t.test('within the bound: undefined, whatever the shape', async (t) => {
  t.equal(tooDeepAt(nested(3), 3), undefined, 'three levels under a bound of 3');
  t.equal(tooDeepAt({ a: [1, 'x', null, true, -1.5e308, 0], b: { c: {} } }, 3), undefined);
  t.equal(tooDeepAt('scalar', 0), undefined, 'a scalar has no depth to exceed');
});

t.test('beyond it: the pointer of the first value too deep, ~ and / escaped', async (t) => {
  t.equal(tooDeepAt(nested(4), 3), '/a~1~0/0/a~1~0');
  t.equal(tooDeepAt({ ok: 1, deep: { x: { y: [{}] } } }, 3), '/deep/x/y');
  t.equal(tooDeepAt({}, 0), '/', 'the value itself');
  t.equal(jsonBoundProblem({ ok: 1, deep: { x: { y: [{}] } } }, 3)?.rule, 'depth');
});

t.test('a number that overflowed (JSON 1e400): its pointer, rule number', async (t) => {
  const parsed = JSON.parse('{"services":[{"service_id":"a","capabilities":{"x/y":1e400}}],"n":-1e400}') as unknown;
  const problem = jsonBoundProblem(parsed, 64);
  t.ok(problem);
  t.equal(problem?.rule, 'number');
  t.match(problem?.pointer, /^\/(services\/0\/capabilities\/x~1y|n)$/);
  t.match(problem?.message, /Infinity/);
  t.same(jsonBoundProblem(JSON.parse('{"since_seq":1e400}'), 64)?.pointer, '/since_seq');
  t.same(jsonBoundProblem(JSON.parse('[1,[-1e999]]'), 64)?.pointer, '/1/0');
  t.same(jsonBoundProblem(Number.NaN, 64)?.pointer, '/', 'NaN too (not from JSON, but not JSON either)');
});

t.test('a million levels neither recurse nor throw', async (t) => {
  let value: unknown = null;
  for (let i = 0; i < 1_000_000; i++) value = [value];
  t.equal(tooDeepAt(value, 64), `/${Array(64).fill('0').join('/')}`);
});

t.test('a lone surrogate (JSON "\\ud800"), in a value or a member name: its pointer, rule text', async (t) => {
  const inValue = jsonBoundProblem(JSON.parse('{"services":[{"service_id":"a","help_md":"bad \\ud800 here"}]}'), 64);
  t.match(inValue, { pointer: '/services/0/help_md', rule: 'text', message: /lone surrogate/ });
  t.match(jsonBoundProblem(JSON.parse('{"labels":{"\\udc00x":"v"}}'), 64), {
    pointer: '/labels/\udc00x',
    rule: 'text',
    message: /^a member name: text with a lone surrogate/,
  });
  t.equal(jsonBoundProblem(JSON.parse('{"emoji":"\\ud83d\\ude00","plain":"é"}'), 64), undefined, 'a surrogate pair is text');
});
