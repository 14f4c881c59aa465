// RFC 8785 (JCS) canonical JSON, as service hashes use it (SPEC §6): members sorted by UTF-16 code
// units, no whitespace, ECMAScript number and string forms; what JCS cannot express is refused.
import t from 'tap';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { canonicalJson } from '../../../src/protocol/canonical-json.js';

t.test('members sorted by UTF-16 code units, nested, no whitespace, ES number form', async (t) => {
  // U+1F600 is written as the surrogates D83D DE00, which sort before U+FB33 (code points would not).
  const value = { '\ufb33': 1, '\u{1f600}': 2, b: [3, { z: null, a: true }], a: 1e21, c: 0.1 + 0.2, d: -0, e: 'é\n"' };
  t.equal(canonicalJson(value), '{"a":1e+21,"b":[3,{"a":true,"z":null}],"c":0.30000000000000004,"d":0,"e":"é\\n\\"","\u{1f600}":2,"\ufb33":1}');
});

t.test('as JSON.stringify: undefined members left out, undefined elements null, toJSON used', async (t) => {
  t.equal(canonicalJson({ b: undefined, a: [undefined, 1] }), '{"a":[null,1]}');
  t.equal(canonicalJson({ when: new Date(0) }), '{"when":"1970-01-01T00:00:00.000Z"}');
});

t.test('the same text as the reference implementation (the canonicalize package) for any JSON value', async () => {
  fc.assert(fc.property(fc.jsonValue(), (value) => canonicalJson(value) === canonicalize(value)));
  fc.assert(fc.property(fc.object(), (value) => canonicalJson(JSON.parse(JSON.stringify(value))) === canonicalize(JSON.parse(JSON.stringify(value)))));
});

t.test('refuses what JCS cannot express, naming it', async (t) => {
  t.throws(() => canonicalJson({ n: NaN }), /NaN is not allowed/);
  t.throws(() => canonicalJson([Infinity]), /Infinity is not allowed/);
  t.throws(() => canonicalJson({ s: 'a\ud800' }), /lone surrogate/);
  t.throws(() => canonicalJson({ ['\udc00']: 1 }), /lone surrogate/);
  t.throws(() => canonicalJson({ f: () => 1 }), /a function is not a JSON value/);
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  t.throws(() => canonicalJson(cycle), /nested too deep/);
  t.equal(canonicalJson({ pair: '\ud83d\ude00' }), '{"pair":"😀"}', 'a surrogate pair is fine');
});
