// The parts of src/protocol/schemas.ts that manifest loading and invocation rely on.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { MANIFEST_SCHEMA_ID } from '../../../src/manifest/index.js';
import { loadSchemas, SCHEMA_BASE, SchemaError } from '../../../src/protocol/schemas.js';
import type { Manifest } from '../../../src/protocol/types.gen.js';

const schemas = await loadSchemas();
const execFileAsync = promisify(execFile);

t.test('validate returns the typed value or throws SchemaError with every problem', async (t) => {
  const manifest = schemas.validate<Manifest>(MANIFEST_SCHEMA_ID, { service_id: 'a', kind: 'b' }, 'm.json');
  t.equal(manifest.service_id, 'a');
  const error = t.throws(() => schemas.validate(MANIFEST_SCHEMA_ID, { service_id: 1 }, 'm.json'));
  t.ok(error instanceof SchemaError);
  if (!(error instanceof SchemaError)) return;
  t.equal(error.name, 'SchemaError');
  t.same(
    error.problems.map((p) => p.message),
    ['m.json: /kind: is required', 'm.json: /service_id: must be string'],
  );
  t.equal(error.message, 'm.json: /kind: is required (and 1 more)', 'the message is one line');
  t.throws(() => schemas.problems('https://acheron.dev/schemas/nope.schema.json', {}, 'x'), /no schema registered/);
});

t.test('compile: service input schemas, with formats, cached by JSON text', async (t) => {
  const schema = { type: 'object', required: ['msg'], properties: { msg: { type: 'string' }, at: { format: 'date-time' } } };
  const validate = schemas.compile(schema);
  t.equal(schemas.compile(JSON.parse(JSON.stringify(schema))), validate, 'the same text compiles once');
  t.same(validate({ msg: 'hi' }, 'payload'), []);
  t.same(
    validate({ at: 'yesterday' }, 'payload').map((p) => p.message),
    ['payload: /msg: is required', 'payload: /at: must match format "date-time"'],
  );
  t.same(validate('x', 'payload'), [{ file: 'payload', json_path: '/', rule: 'type', message: 'payload: /: must be object' }]);
  t.throws(() => schemas.compile({ type: 'objekt' }), /^invalid JSON Schema: /);
});

t.test('a changed service schema may keep its $id (hot reload)', async (t) => {
  const first = schemas.compile({ $id: 'https://example.com/in.json', type: 'string' });
  const second = schemas.compile({ $id: 'https://example.com/in.json', type: 'number' });
  t.same([first(1, 'p').length, second(1, 'p').length], [1, 0]);
});

t.test('every docs/schemas file is registered under its $id, and types.gen.ts is current', async (t) => {
  const dir = new URL('../../../docs/schemas/', import.meta.url);
  const names = (await readdir(dir)).filter((name) => name.endsWith('.schema.json'));
  t.ok(names.length >= 4, 'the schemas are found');
  for (const name of names) {
    t.doesNotThrow(() => schemas.problems(SCHEMA_BASE + name, {}, name), `${name} is registered`);
    // Each is compiled at its first use (src/protocol/schemas.ts): use every definition once.
    const { definitions = {} } = JSON.parse(await readFile(new URL(name, dir), 'utf8')) as { definitions?: Record<string, unknown> };
    const broken = Object.keys(definitions).filter((definition) => {
      try {
        schemas.problems(`${SCHEMA_BASE}${name}#/definitions/${definition}`, {}, name);
        return false;
      } catch {
        return true;
      }
    });
    t.same(broken, [], `${name}: every definition compiles`);
  }
  const script = fileURLToPath(new URL('../../../scripts/gen-types.mjs', import.meta.url));
  const check = await execFileAsync(process.execPath, [script, '--check']).then(
    () => 'current',
    (error: Error) => error.message,
  );
  t.equal(check, 'current', 'src/protocol/types.gen.ts matches docs/schemas');
});
