/**
 * What JSON.parse accepts but nothing after it can use: values nested deeper than a bound (what
 * serializes, hashes and copies recurses: a million `[` would exhaust the stack there) and numbers
 * that overflow to ±Infinity (`1e400`; canonical JSON, hence hashing, refuses them and
 * JSON.stringify would turn them into null). Checked once where JSON comes in: every request
 * frame's payload (control server), every manifest (node).
 */
export interface JsonBoundProblem {
  /** The JSON pointer of the first offending value ('/' for the value itself). */
  pointer: string;
  rule: 'depth' | 'number';
  message: string;
}

/** The first value in `value` (whose own depth is 0) nested deeper than `maxDepth`, or that is a number not finite; undefined when none. */
export function jsonBoundProblem(value: unknown, maxDepth: number): JsonBoundProblem | undefined {
  // Every frame and every changed descriptor is checked: the walk that finds nothing builds no paths.
  return breaksBounds(value, maxDepth) ? firstBreak(value, maxDepth) : undefined;
}

const nonFinite = (item: unknown): boolean => typeof item === 'number' && !Number.isFinite(item);

/** Whether anything in `value` breaks a bound; two parallel stacks, no paths built. */
function breaksBounds(value: unknown, maxDepth: number): boolean {
  // An explicit stack: the walk must not recurse on what it is there to bound.
  const values: unknown[] = [value];
  const depths: number[] = [0];
  while (values.length > 0) {
    const item = values.pop();
    const depth = depths.pop() as number;
    if (item === null || typeof item !== 'object') {
      if (nonFinite(item)) return true;
      continue;
    }
    if (depth >= maxDepth) return true;
    const children: unknown[] = Array.isArray(item) ? item : Object.values(item);
    for (const child of children) {
      values.push(child);
      depths.push(depth + 1);
    }
  }
  return false;
}

/** The first break found, with its pointer, for the error message. */
function firstBreak(value: unknown, maxDepth: number): JsonBoundProblem | undefined {
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value, depth: 0, path: '' }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const pointer = item.path || '/';
    if (nonFinite(item.value))
      return { pointer, rule: 'number', message: `a number beyond what a double holds (it overflows to ${String(item.value)}); numbers must be finite` };
    if (item.value === null || typeof item.value !== 'object') continue;
    if (item.depth >= maxDepth) return { pointer, rule: 'depth', message: `nested more than ${maxDepth} levels deep` };
    for (const [key, child] of Object.entries(item.value))
      stack.push({ value: child, depth: item.depth + 1, path: `${item.path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}` });
  }
  return undefined;
}
