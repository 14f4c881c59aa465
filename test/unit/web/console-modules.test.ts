// The console's pure modules (web/debug/, plain browser JavaScript), run in Node: the schema
// checker agrees with ajv (the node's validator) on validity for the schema subset it covers,
// the markdown subset never yields markup, and the chart series count what they should.
import t from 'tap';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { REPO } from '../../helpers/node.js';

type Problem = { path: string; message: string };
interface SchemaCheck {
  check(schema: unknown, value: unknown): Problem[];
  checkText(schema: unknown, text: string): { value?: unknown; problems?: Problem[] };
}
type Span = { type: string; text: string; href?: string };
interface Markdown {
  parse(text: string): Array<{ type: string; level?: number; ordered?: boolean; text?: string; spans?: Span[]; items?: Span[][] }>;
}
type Bucket = { from: number; to: number; value: number | null };
interface Charts {
  perMinute(list: Array<Record<string, number>>, field: string, minutes?: number, now?: number): Bucket[];
  rate(events: Array<{ timestamp_ms: number }>, windowMs?: number, bucketMs?: number, now?: number): Bucket[];
  segments(transitions: Array<{ at_ms: number; state: string }>, from: number, to: number): Array<{ from: number; to: number; state: string }>;
}

// Browser modules without type declarations: loaded by URL, typed here.
const load = async <T>(name: string): Promise<T> => (await import(String(new URL(`../../../web/debug/${name}`, import.meta.url)))) as T;
const { check, checkText } = await load<SchemaCheck>('schema-check.js');
const { parse } = await load<Markdown>('markdown.js');
const { perMinute, rate, segments } = await load<Charts>('charts.js');

const ajv = new Ajv({ allErrors: true, strict: false });
const configSchema = JSON.parse(await readFile(join(REPO, 'docs/schemas/service-config.schema.json'), 'utf8')) as Record<string, unknown>;
delete configSchema.$schema;
delete configSchema.$id;
const terminalInput = {
  type: 'object',
  properties: {
    argv: { type: 'array', items: { type: 'string' }, minItems: 1 },
    command: { type: 'string', minLength: 1 },
    cwd: { type: 'string' },
    max_output_bytes: { type: 'integer', minimum: 1 },
  },
};
const richer = {
  definitions: { port: { type: 'integer', minimum: 1, maximum: 65535 } },
  type: 'object',
  required: ['mode'],
  additionalProperties: false,
  properties: {
    mode: { enum: ['a', 'b', 3] },
    port: { $ref: '#/definitions/port' },
    tags: { type: 'array', items: { type: 'string', pattern: '^[a-z]+$' }, uniqueItems: true, maxItems: 3 },
    pair: { type: 'array', items: [{ type: 'number' }, { type: 'string' }], additionalItems: false },
    ratio: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, multipleOf: 0.25 },
    either: { anyOf: [{ type: 'string', maxLength: 2 }, { type: 'integer' }] },
    one: { oneOf: [{ type: 'integer' }, { type: 'number', minimum: 10 }] },
    notNull: { not: { type: 'null' } },
    fixed: { const: { k: [1] } },
    sized: { type: 'object', minProperties: 1, maxProperties: 2, propertyNames: { pattern: '^x' } },
    cond: { if: { type: 'string' }, then: { minLength: 2 }, else: { type: 'boolean' } },
    both: { allOf: [{ type: 'string' }, { maxLength: 3 }] },
  },
};

const agrees = (schema: object, value: unknown): boolean => (check(schema, value).length === 0) === ajv.validate(schema, value);

t.test('validity agrees with ajv on hand-picked cases', async (tt) => {
  const cases: Array<[object, unknown]> = [
    [configSchema, {}],
    [configSchema, { timeout_ms: 9000 }],
    [configSchema, { timeout_ms: 0 }],
    [configSchema, { timeot_ms: 1 }],
    [configSchema, { 'x-note': 'free' }],
    [configSchema, { supervision: { cooldown_ms: 10, auto_disable_on_threshold: 'yes' } }],
    [configSchema, { supervision: { extra: 1 } }],
    [configSchema, { max_output_bytes: 1.5 }],
    [configSchema, []],
    [terminalInput, { argv: [] }],
    [terminalInput, { argv: ['ls'] }],
    [terminalInput, { command: '' }],
    [terminalInput, { max_output_bytes: 0 }],
    [richer, { mode: 'a' }],
    [richer, { mode: 3 }],
    [richer, { mode: 'c' }],
    [richer, {}],
    [richer, { mode: 'a', other: 1 }],
    [richer, { mode: 'a', port: 0 }],
    [richer, { mode: 'a', port: 80 }],
    [richer, { mode: 'a', tags: ['ab', 'ab'] }],
    [richer, { mode: 'a', tags: ['A'] }],
    [richer, { mode: 'a', tags: ['a', 'b', 'c', 'd'] }],
    [richer, { mode: 'a', pair: [1, 'x'] }],
    [richer, { mode: 'a', pair: [1, 'x', 2] }],
    [richer, { mode: 'a', pair: ['x'] }],
    [richer, { mode: 'a', ratio: 0.5 }],
    [richer, { mode: 'a', ratio: 0.3 }],
    [richer, { mode: 'a', ratio: 1 }],
    [richer, { mode: 'a', either: 'abc' }],
    [richer, { mode: 'a', either: 4 }],
    [richer, { mode: 'a', one: 5 }],
    [richer, { mode: 'a', one: 12 }],
    [richer, { mode: 'a', one: 10.5 }],
    [richer, { mode: 'a', notNull: null }],
    [richer, { mode: 'a', fixed: { k: [1] } }],
    [richer, { mode: 'a', fixed: { k: [2] } }],
    [richer, { mode: 'a', sized: {} }],
    [richer, { mode: 'a', sized: { xa: 1 } }],
    [richer, { mode: 'a', sized: { ya: 1 } }],
    [richer, { mode: 'a', cond: 'a' }],
    [richer, { mode: 'a', cond: 'ab' }],
    [richer, { mode: 'a', cond: 3 }],
    [richer, { mode: 'a', cond: true }],
    [richer, { mode: 'a', both: 'abcd' }],
    [richer, { mode: 'a', both: 'ab' }],
  ];
  for (const [schema, value] of cases) tt.ok(agrees(schema, value), `${JSON.stringify(value)}: ${ajv.validate(schema, value) ? 'valid' : 'invalid'} for both`);
});

t.test('validity agrees with ajv on generated documents', async (tt) => {
  const values = fc.oneof(
    fc.integer({ min: -3, max: 70000 }),
    fc.double({ noNaN: true, min: -2, max: 2 }),
    fc.boolean(),
    fc.constant(null),
    fc.string({ maxLength: 4 }),
    fc.constantFrom('a', 'b', 3, 'ab', 'xa'),
  );
  const leaf = fc.oneof(
    values,
    fc.array(values, { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('xa', 'ya', 'k', 'cooldown_ms', 'extra'), values, { maxKeys: 3 }),
  );
  const keys = fc.constantFrom(
    'mode',
    'port',
    'tags',
    'pair',
    'ratio',
    'either',
    'one',
    'notNull',
    'fixed',
    'sized',
    'cond',
    'both',
    'other',
    'timeout_ms',
    'kill_grace_ms',
    'supervision',
    'x-a',
    'argv',
    'command',
    'max_output_bytes',
  );
  const documents = fc.dictionary(keys, leaf, { maxKeys: 5 });
  for (const schema of [richer, configSchema, terminalInput]) {
    fc.assert(
      fc.property(documents, (doc) => agrees(schema, doc)),
      { numRuns: 400 },
    );
  }
  tt.pass('400 documents per schema');
});

t.test('problems name the field as the node does', async (tt) => {
  tt.same(checkText({ type: 'object', properties: { msg: { type: 'string' } } }, '{"msg": 5}'), { problems: [{ path: '/msg', message: 'must be string' }] });
  tt.same(checkText({ required: ['msg'] }, '{}').problems, [{ path: '/', message: "must have required property 'msg'" }]);
  tt.match(checkText(undefined, '{"a":').problems?.[0], { path: '/', message: /^not JSON/ });
  tt.same(checkText(undefined, '[1]').problems, [{ path: '/', message: 'must be a JSON object' }], 'a payload is an object');
  tt.same(checkText(undefined, '{"a":1}'), { value: { a: 1 } }, 'no schema: any object');
  tt.same(check(configSchema, { supervision: { nope: 1 } }), [{ path: '/supervision/nope', message: 'unknown key: must NOT have additional properties' }]);
  tt.same(check({ properties: { 'a/b': { type: 'string' } } }, { 'a/b': 1 }), [{ path: '/a~1b', message: 'must be string' }], 'pointer escapes');
});

t.test('markdown: the subset, and markup stays text', async (tt) => {
  const blocks = parse(
    '# Title\n\nSome **bold** and *em* and `code`.\nnext line\n\n- one\n- two\n\n1. first\n\n```\n<b>raw</b>\n```\n> quoted\n<script>alert(1)</script>\n[web](https://example.org) [js](javascript:alert(1))',
  );
  tt.same(
    blocks.map((b) => b.type),
    ['heading', 'paragraph', 'list', 'list', 'code', 'quote', 'paragraph'],
  );
  tt.same(blocks[1]?.spans, [
    { type: 'text', text: 'Some ' },
    { type: 'strong', text: 'bold' },
    { type: 'text', text: ' and ' },
    { type: 'em', text: 'em' },
    { type: 'text', text: ' and ' },
    { type: 'code', text: 'code' },
    { type: 'text', text: '. next line' },
  ]);
  tt.match(blocks[2], { ordered: false, items: [[{ text: 'one' }], [{ text: 'two' }]] });
  tt.match(blocks[3], { ordered: true });
  tt.equal(blocks[4]?.text, '<b>raw</b>', 'code keeps its characters');
  const last = blocks[6]?.spans ?? [];
  tt.same(
    last.filter((s) => s.type === 'link'),
    [{ type: 'link', text: 'web', href: 'https://example.org' }],
    'only web links are links',
  );
  const text = last
    .filter((s) => s.type === 'text')
    .map((s) => s.text)
    .join('');
  tt.match(text, '<script>alert(1)</script>', 'a script tag is text');
  tt.match(text, '[js](javascript:alert(1))', 'a javascript: link stays text');
});

t.test('charts: per-minute counters, events per second, timeline segments', async (tt) => {
  const now = 10 * 60_000 + 30_000;
  const samples = [
    { at_ms: 8 * 60_000 + 10_000, n: 5 },
    { at_ms: 9 * 60_000 + 10_000, n: 9 },
    { at_ms: 10 * 60_000 + 5_000, n: 12 },
    { at_ms: 10 * 60_000 + 25_000, n: 12 },
  ];
  const minutes = perMinute(samples, 'n', 4, now);
  tt.same(
    minutes.map((b) => [b.from / 60_000, b.value]),
    [
      [7, null],
      [8, 0],
      [9, 4],
      [10, 3],
    ],
    'a minute: its last reading less the one before it; none: no data',
  );
  const buckets = rate(
    [{ timestamp_ms: now - 1000 }, { timestamp_ms: now - 2000 }, { timestamp_ms: now - 15_000 }, { timestamp_ms: now - 3_600_000 }],
    60_000,
    10_000,
    now,
  );
  tt.equal(buckets.length, 6);
  tt.same(
    buckets.map((b) => b.value),
    [0, 0, 0, 0, 0.1, 0.2],
    'per second, per 10 s bucket; older events are outside',
  );
  tt.same(
    segments(
      [
        { at_ms: 50, state: 'online' },
        { at_ms: 150, state: 'offline' },
        { at_ms: 180, state: 'online' },
      ],
      100,
      200,
    ),
    [
      { from: 100, to: 150, state: 'online' },
      { from: 150, to: 180, state: 'offline' },
      { from: 180, to: 200, state: 'online' },
    ],
  );
  tt.same(
    segments([{ at_ms: 150, state: 'online' }], 100, 200),
    [
      { from: 100, to: 150, state: 'unknown' },
      { from: 150, to: 200, state: 'online' },
    ],
    'unknown before the first change seen',
  );
});
