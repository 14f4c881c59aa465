// A small JSON Schema (draft-07) checker for what services and config.json use: type, enum,
// const, properties, required, additionalProperties, patternProperties, propertyNames,
// min/maxProperties, items (one schema or a tuple), additionalItems, min/maxItems, uniqueItems,
// min/maxLength, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf,
// allOf, anyOf, oneOf, not, if/then/else and local `$ref`s (`#/...`). Other keywords (format,
// remote refs) are not checked here: the node checks every payload again and its refusal says why.
// Problems are `{path, message}` with the path a JSON pointer, worded as the node words them.

const typeOf = (value) => (value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value);

function hasType(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

/** One JSON pointer segment. */
export const pointer = (key) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

function resolveRef(root, ref) {
  if (!ref.startsWith('#')) return undefined;
  let node = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    node = node?.[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** Every problem of `value` against `schema` (an empty list: valid as far as this checker sees). */
export function check(schema, value) {
  const problems = [];
  walk(schema, value, '', schema, problems, 0);
  return problems;
}

function walk(schema, value, path, root, problems, depth) {
  if (schema === true || schema === undefined) return;
  const at = path || '/';
  if (schema === false) return void problems.push({ path: at, message: 'must not be present' });
  if (typeof schema !== 'object' || schema === null || depth > 64) return;
  const fail = (message) => problems.push({ path: at, message });
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(root, schema.$ref);
    if (target !== undefined) walk(target, value, path, root, problems, depth + 1);
    // draft-07: other keywords beside $ref are ignored.
    return;
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((type) => hasType(value, type))) return void fail(`must be ${types.join(' or ')}`);
  }
  if (schema.enum && !schema.enum.some((v) => equal(v, value))) fail(`must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if ('const' in schema && !equal(schema.const, value)) fail(`must be ${JSON.stringify(schema.const)}`);
  const kind = typeOf(value);
  if (kind === 'string') {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength) fail(`must NOT have fewer than ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && length > schema.maxLength) fail(`must NOT have more than ${schema.maxLength} characters`);
    if (typeof schema.pattern === 'string') {
      try {
        if (!new RegExp(schema.pattern, 'u').test(value)) fail(`must match pattern "${schema.pattern}"`);
      } catch {
        // A pattern this browser cannot compile is left to the node.
      }
    }
  }
  if (kind === 'integer' || kind === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) fail(`must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) fail(`must be <= ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) fail(`must be > ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) fail(`must be < ${schema.exclusiveMaximum}`);
    if (schema.multipleOf && Math.abs(value / schema.multipleOf - Math.round(value / schema.multipleOf)) > 1e-9)
      fail(`must be multiple of ${schema.multipleOf}`);
  }
  if (kind === 'object') checkObject(schema, value, path, root, problems, depth, fail);
  if (kind === 'array') checkArray(schema, value, path, root, problems, depth, fail);
  for (const sub of schema.allOf ?? []) walk(sub, value, path, root, problems, depth + 1);
  const passes = (sub) => check1(sub, value, path, root, depth);
  if (schema.anyOf && !schema.anyOf.some(passes)) fail('must match a schema in anyOf');
  if (schema.oneOf && schema.oneOf.filter(passes).length !== 1) fail('must match exactly one schema in oneOf');
  if (schema.not !== undefined && passes(schema.not)) fail('must NOT be valid');
  if (schema.if !== undefined) {
    const branch = passes(schema.if) ? schema.then : schema.else;
    if (branch !== undefined) walk(branch, value, path, root, problems, depth + 1);
  }
}

function check1(schema, value, path, root, depth) {
  const problems = [];
  walk(schema, value, path, root, problems, depth + 1);
  return problems.length === 0;
}

function checkObject(schema, value, path, root, problems, depth, fail) {
  const keys = Object.keys(value);
  for (const key of schema.required ?? []) if (!(key in value)) fail(`must have required property '${key}'`);
  if (schema.minProperties !== undefined && keys.length < schema.minProperties) fail(`must NOT have fewer than ${schema.minProperties} properties`);
  if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) fail(`must NOT have more than ${schema.maxProperties} properties`);
  const patterns = Object.entries(schema.patternProperties ?? {}).flatMap(([source, sub]) => {
    try {
      return [[new RegExp(source, 'u'), sub]];
    } catch {
      return [];
    }
  });
  for (const key of keys) {
    const child = `${path}/${pointer(key)}`;
    if (schema.propertyNames !== undefined && !check1(schema.propertyNames, key, child, root, depth))
      problems.push({ path: child, message: 'property name is not allowed' });
    let matched = false;
    if (schema.properties && Object.hasOwn(schema.properties, key)) {
      matched = true;
      walk(schema.properties[key], value[key], child, root, problems, depth + 1);
    }
    for (const [regex, sub] of patterns) {
      if (!regex.test(key)) continue;
      matched = true;
      walk(sub, value[key], child, root, problems, depth + 1);
    }
    if (matched || schema.additionalProperties === undefined) continue;
    if (schema.additionalProperties === false) problems.push({ path: child, message: 'unknown key: must NOT have additional properties' });
    else walk(schema.additionalProperties, value[key], child, root, problems, depth + 1);
  }
}

function checkArray(schema, value, path, root, problems, depth, fail) {
  if (schema.minItems !== undefined && value.length < schema.minItems) fail(`must NOT have fewer than ${schema.minItems} items`);
  if (schema.maxItems !== undefined && value.length > schema.maxItems) fail(`must NOT have more than ${schema.maxItems} items`);
  if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) fail('must NOT have duplicate items');
  value.forEach((item, index) => {
    const child = `${path}/${index}`;
    if (Array.isArray(schema.items)) {
      if (index < schema.items.length) walk(schema.items[index], item, child, root, problems, depth + 1);
      else if (schema.additionalItems !== undefined) walk(schema.additionalItems, item, child, root, problems, depth + 1);
    } else if (schema.items !== undefined) walk(schema.items, item, child, root, problems, depth + 1);
  });
}

/**
 * Parses an editor's text and checks it: `{value}` when it is valid, else `{problems}` (a syntax
 * error is one problem at `/`). A payload must be a JSON object (the node's rule for invoke.json
 * and config.json).
 */
export function checkText(schema, text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problems: [{ path: '/', message: `not JSON: ${error.message}` }] };
  }
  if (typeOf(value) !== 'object') return { problems: [{ path: '/', message: 'must be a JSON object' }] };
  const problems = schema ? check(schema, value) : [];
  return problems.length ? { problems } : { value };
}
