import t from 'tap';
import fc from 'fast-check';
import { classifyJson } from '../../../src/errors/json-prefix.js';

t.test('fixed cases', async (t) => {
  const cases: Array<[string, ReturnType<typeof classifyJson>]> = [
    ['', 'empty'],
    [' \n\t ', 'empty'],
    ['{}', 'complete'],
    ['{"a":1}\n', 'complete'],
    ['[1,2]', 'complete'],
    ['"x"', 'complete'],
    ['12', 'complete'],
    ['true', 'complete'],
    ['-0.5e+3', 'complete'],
    ['{', 'prefix'],
    ['{"a"', 'prefix'],
    ['{"a":', 'prefix'],
    ['{"a":1,', 'prefix'],
    ['[1,', 'prefix'],
    ['"abc', 'prefix'],
    ['"\\u00', 'prefix'],
    ['tr', 'prefix'],
    ['-', 'prefix'],
    ['1.', 'prefix'],
    ['1e', 'prefix'],
    ['bad{', 'invalid'],
    ['{"a" 1}', 'invalid'],
    ['{a:1}', 'invalid'],
    ['[1,]', 'invalid'],
    ['{"a":1,}', 'invalid'],
    ['{}}', 'invalid'],
    ['{} {}', 'invalid'],
    ['01', 'invalid'],
    ['"\\x"', 'invalid'],
    ['"a\nb"', 'invalid'],
    ['tru e', 'invalid'],
    ['nul', 'prefix'],
    ['{"a":1]', 'invalid'],
  ];
  for (const [text, expected] of cases) t.equal(classifyJson(text), expected, JSON.stringify(text));
});

t.test('every proper prefix of a JSON text is a prefix or complete; the whole is complete', async (t) => {
  fc.assert(
    fc.property(fc.json(), fc.nat(), (text, cut) => {
      if (classifyJson(text) !== 'complete') return false;
      const at = cut % (text.length + 1);
      const state = classifyJson(text.slice(0, at));
      return state !== 'invalid';
    }),
    { numRuns: 2000 },
  );
  t.pass('property held');
});

t.test('agrees with JSON.parse on whole texts', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '1', '0', '-', '.', 'e', 't', 'r', 'u', ' ', 'a', '\\') }), (text) => {
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const state = classifyJson(text);
      return parses ? state === 'complete' || (state === 'empty' && false) : state !== 'complete';
    }),
    { numRuns: 5000 },
  );
  t.pass('property held');
});
