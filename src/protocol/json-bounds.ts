import { pointerToken } from './json-pointer.js';

/**
 * What JSON.parse accepts but nothing after it can use: values nested deeper than a bound (what
 * serializes, hashes and copies recurses: a million `[` would exhaust the stack there) and numbers
 * that overflow to ±Infinity (`1e400`; canonical JSON, hence hashing, refuses them and
 * JSON.stringify would turn them into null), and strings or member names with a lone surrogate
 * (`"\ud800"`: no UTF-8 holds it, and canonical JSON refuses it too). Checked once where JSON
 * comes in: every request frame's payload (control server), every manifest (node).
 */
export interface JsonBoundProblem {
  /** The JSON pointer of the first offending value ('/' for the value itself). */
  pointer: string;
  rule: 'depth' | 'number' | 'text';
  message: string;
}

/** The first value in `value` (whose own depth is 0) nested deeper than `maxDepth`, a number not finite, or text with a lone surrogate; undefined when none. */
export function jsonBoundProblem(value: unknown, maxDepth: number): JsonBoundProblem | undefined {
  // Every frame and every changed descriptor is checked: the walk that finds nothing builds no paths.
  return breaksBounds(value, maxDepth) ? firstBreak(value, maxDepth) : undefined;
}

const nonFinite = (item: unknown): boolean => typeof item === 'number' && !Number.isFinite(item);
/** Not well-formed UTF-16 (String.prototype.isWellFormed: Node 20, not in the ES2023 types). */
const illFormed = (text: string): boolean => !(text as string & { isWellFormed(): boolean }).isWellFormed();
const illFormedText = (item: unknown): boolean => typeof item === 'string' && illFormed(item);
const LONE_SURROGATE = 'text with a lone surrogate (an unpaired \\ud800-\\udfff escape), which no UTF-8 can hold';

/** Whether anything in `value` breaks a bound; two parallel stacks, no paths built. */
function breaksBounds(value: unknown, maxDepth: number): boolean {
  // An explicit stack: the walk must not recurse on what it is there to bound.
  const values: unknown[] = [value];
  const depths: number[] = [0];
  while (values.length > 0) {
    const item = values.pop();
    const depth = depths.pop() as number;
    if (item === null || typeof item !== 'object') {
      if (nonFinite(item) || illFormedText(item)) return true;
      continue;
    }
    if (depth >= maxDepth) return true;
    if (!Array.isArray(item) && Object.keys(item).some(illFormed)) return true;
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
    if (illFormedText(item.value)) return { pointer, rule: 'text', message: LONE_SURROGATE };
    if (item.value === null || typeof item.value !== 'object') continue;
    if (item.depth >= maxDepth) return { pointer, rule: 'depth', message: `nested more than ${maxDepth} levels deep` };
    for (const [key, child] of Object.entries(item.value)) {
      const path = `${item.path}/${pointerToken(key)}`;
      if (illFormed(key)) return { pointer: path, rule: 'text', message: `a member name: ${LONE_SURROGATE}` };
      stack.push({ value: child, depth: item.depth + 1, path });
    }
  }
  return undefined;
}
