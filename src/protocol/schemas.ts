/**
 * The project's one ajv instance: every docs/schemas/*.schema.json registered under its `$id`, plus the
 * service-provided `schema.input` schemas compiled on demand. Validation failures become `Problem`s
 * whose message is formatted here and nowhere else: `<source>: <json_path>: <rule description>`.
 * Schemas are draft-07 (ajv's default meta-schema, and the draft editors support best).
 */
import { readdir, readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { jsonSyntaxError } from '../errors/json-document.js';
import { pointerToken } from './json-pointer.js';

/** Every project schema's `$id` is this base plus its file name, so relative `$ref`s between files work. */
export const SCHEMA_BASE = 'https://acheron.dev/schemas/';

// From src/protocol and dist/protocol alike, two levels up is the package root.
const SCHEMA_DIR = new URL('../../docs/schemas/', import.meta.url);

/** One thing wrong with one document; also the shape of an ERRORS.json entry. */
export interface Problem {
  file: string;
  /** JSON Pointer into the document; '/' for the document itself. */
  json_path: string;
  /** The JSON Schema keyword that failed, or our own rule name ('json', 'duplicate', …). */
  rule: string;
  /** One line: `<file>: <json_path>: <rule description>`. */
  message: string;
}

/** Validates one value against a compiled schema; an empty list means valid. */
export type ValidateFn = (value: unknown, source: string) => Problem[];

/** The single place a problem message is formatted. */
export function problemAt(file: string, jsonPath: string, rule: string, description: string): Problem {
  const path = jsonPath === '' ? '/' : jsonPath;
  const shownPath = path.length > MAX_SHOWN_PATH ? `${path.slice(0, MAX_SHOWN_PATH)}…` : path;
  return { file, json_path: path, rule, message: oneLine(`${file}: ${shownPath}: ${description}`) };
}

/** A key of the document is part of its path: a huge one is cut short in the message (json_path keeps it whole). */
const MAX_SHOWN_PATH = 256;

/** File names and keys may hold control characters (a newline): messages stay one line. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A document failed validation; `problems` lists every reason, `message` is the first one. */
export class SchemaError extends Error {
  // On the prototype, not the instance: an own, fixed `name` breaks code that redefines it (tap's t.throws).
  static {
    const name = { value: 'SchemaError', enumerable: false, writable: true, configurable: true };
    Object.defineProperty(this.prototype, 'name', name);
  }

  readonly problems: Problem[];

  constructor(problems: Problem[]) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super(`${problems[0]?.message ?? 'invalid document'}${more}`);
    this.problems = problems;
  }
}

export class Schemas {
  readonly #ajv: Ajv;
  readonly #compiled = new Map<string, ValidateFn>();

  constructor(ajv: Ajv) {
    this.#ajv = ajv;
  }

  /** Returns `value` typed as T when it matches the schema `schemaId`; throws SchemaError otherwise. */
  validate<T>(schemaId: string, value: unknown, source: string): T {
    const validator = this.#validator<T>(schemaId);
    if (validator(value)) return value;
    throw new SchemaError(toProblems(validator.errors, source));
  }

  /** Every problem of `value` against the schema `schemaId`; [] when valid. `at`: where `value` sits in its document (a JSON pointer prefix). */
  problems(schemaId: string, value: unknown, source: string, at = ''): Problem[] {
    const validator = this.#validator(schemaId);
    return validator(value) ? [] : toProblems(validator.errors, source, at);
  }

  /**
   * Compiles a service-provided JSON Schema (`schema.input`), cached by its JSON text so that a reload
   * with an unchanged schema costs nothing. Throws an Error naming the rule when the schema is invalid.
   */
  compile(schema: object): ValidateFn {
    const key = JSON.stringify(schema);
    const cached = this.#compiled.get(key);
    if (cached) return cached;
    let validator: ValidateFunction;
    try {
      validator = this.#ajv.compile(schema);
    } catch (error) {
      throw new Error(`invalid JSON Schema: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    const validate: ValidateFn = (value, source) => (validator(value) ? [] : toProblems(validator.errors, source));
    this.#compiled.set(key, validate);
    return validate;
  }

  #validator<T>(schemaId: string): ValidateFunction<T> {
    const validator = this.#ajv.getSchema<T>(schemaId);
    if (!validator) throw new Error(`no schema registered with $id ${schemaId}`);
    return validator;
  }
}

/**
 * Reads and registers every docs/schemas/*.schema.json. Each is compiled at its first use: compiling
 * them all was half of a control server's start-up CPU (0.5 of 1 s), and a process uses a few of
 * them. A shipped schema or definition that does not compile fails test/unit/manifest/schemas.test.ts,
 * which uses every one.
 */
export async function loadSchemas(): Promise<Schemas> {
  const names = (await readdir(SCHEMA_DIR)).filter((name) => name.endsWith('.schema.json')).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    // Errors carry their schema, so a failed `not: {enum}` can say which values are refused.
    verbose: true,
    // Service schemas compiled later must not claim their `$id` in the shared instance: a reload that
    // changes a schema but keeps its `$id` would otherwise fail as a duplicate.
    addUsedSchema: false,
  });
  // ajv-formats is CommonJS: under NodeNext its default import is the module, the plugin is `.default`.
  formatsPlugin.default(ajv);
  for (const name of names) {
    const id = SCHEMA_BASE + name;
    const schema = await readSchemaFile(name);
    if (!isRecord(schema) || schema.$id !== id) {
      throw new Error(`docs/schemas/${name}: /$id: must be "${id}"`);
    }
    ajv.addSchema(withoutIndex(schema));
  }
  return new Schemas(ajv);
}

/**
 * A root that only indexes its definitions (each of its `properties` a `$ref` to the definition of
 * that name, so that gen-types makes a type of each) without that index. ajv compiles a file's root
 * before any reference into it, and such a root reaches every definition: a client's first frame
 * compiled all 29 of control-replies (0.4 s of CPU). Nothing is validated against these roots.
 */
function withoutIndex(schema: Record<string, unknown>): Record<string, unknown> {
  const { properties, ...rest } = schema;
  const indexes = isRecord(properties) && Object.entries(properties).every(([name, member]) => isRecord(member) && member.$ref === `#/definitions/${name}`);
  return indexes ? rest : schema;
}

async function readSchemaFile(name: string): Promise<unknown> {
  const text = await readFile(new URL(name, SCHEMA_DIR), 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`docs/schemas/${name}: /: invalid JSON ${jsonSyntaxError(text)}`, { cause: error });
  }
}

function toProblems(errors: ErrorObject[] | null | undefined, source: string, at = ''): Problem[] {
  return (errors ?? []).map((error) => toProblem(error, source, at));
}

/** ajv's wording, except where it hides the key or the allowed values behind a generic phrase. */
function toProblem(error: ErrorObject, source: string, at: string): Problem {
  const { keyword } = error;
  const instancePath = at + error.instancePath;
  const params: Record<string, unknown> = error.params;
  switch (keyword) {
    case 'additionalProperties':
      return problemAt(source, `${instancePath}/${pointerToken(params.additionalProperty)}`, keyword, 'unknown key');
    case 'required':
      return problemAt(source, `${instancePath}/${pointerToken(params.missingProperty)}`, keyword, 'is required');
    case 'enum':
      return problemAt(source, instancePath, keyword, `must be one of ${listValues(params.allowedValues)}`);
    case 'const':
      return problemAt(source, instancePath, keyword, `must be ${JSON.stringify(params.allowedValue)}`);
    case 'pattern':
      // The node_path regex says nothing to a reader; its rule in words.
      if (error.schemaPath.endsWith('/node_path/pattern'))
        return problemAt(source, instancePath, keyword, 'must be a path under /nodes/ without control characters or backslashes');
      break;
    case 'not': {
      const refused = isRecord(error.schema) ? error.schema.enum : undefined;
      if (!Array.isArray(refused)) break;
      return problemAt(source, instancePath, keyword, `must not be one of ${listValues(refused)}`);
    }
  }
  return problemAt(source, instancePath, keyword, error.message ?? `fails ${keyword}`);
}

function listValues(values: unknown): string {
  return Array.isArray(values) ? values.map((value) => JSON.stringify(value)).join(', ') : String(values);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
