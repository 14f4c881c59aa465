/**
 * Classifies bytes written so far as a JSON text: `empty` (only whitespace), `complete` (one whole
 * value, maybe followed by whitespace), `prefix` (could still become a value: `{"a":` or `[1,`) or
 * `invalid` (no continuation can make it JSON). The commit rule (SPEC §3) needs the difference
 * between `prefix` and `invalid`, which JSON.parse does not give reliably.
 */
export type JsonPrefixState = 'empty' | 'complete' | 'prefix' | 'invalid';

const enum Mode {
  Value,
  AfterValue,
  ObjectKeyOrEnd,
  ObjectKey,
  Colon,
  ArrayValueOrEnd,
  String,
  Escape,
  Unicode,
  Number,
  Literal,
  Done,
}
// Number sub-states: what the last character allowed.
const enum Num {
  Minus,
  Zero,
  Int,
  Dot,
  Frac,
  Exp,
  ExpSign,
  ExpInt,
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const LITERALS: Record<string, string> = { t: 'true', f: 'false', n: 'null' };

export function classifyJson(text: string): JsonPrefixState {
  return scanJson(text).state;
}

/** Like classifyJson, and for `invalid` the index of the first character no JSON text can have there. */
export function scanJson(text: string): { state: JsonPrefixState; at: number } {
  const stack: Array<'object' | 'array'> = [];
  let mode: Mode = Mode.Value;
  let stringIsKey = false;
  let unicodeLeft = 0;
  let num: Num = Num.Int;
  let literal = '';
  let literalAt = 0;
  let sawValue = false;

  const afterValue = (): Mode => (stack.length === 0 ? Mode.Done : Mode.AfterValue);

  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    switch (mode) {
      case Mode.Number: {
        const next = stepNumber(num, c);
        if (next !== undefined) {
          num = next;
          continue;
        }
        if (!numberAccepts(num)) return { state: 'invalid', at: i };
        mode = afterValue();
        i--; // re-read this character in the new mode
        continue;
      }
      case Mode.String:
        if (c === '"') {
          if (stringIsKey) mode = Mode.Colon;
          else mode = afterValue();
        } else if (c === '\\') mode = Mode.Escape;
        else if (c < ' ') return { state: 'invalid', at: i };
        continue;
      case Mode.Escape:
        if (c === 'u') {
          mode = Mode.Unicode;
          unicodeLeft = 4;
          continue;
        }
        if (!'"\\/bfnrt'.includes(c)) return { state: 'invalid', at: i };
        mode = Mode.String;
        continue;
      case Mode.Unicode:
        if (!/[0-9a-fA-F]/.test(c)) return { state: 'invalid', at: i };
        if (--unicodeLeft === 0) mode = Mode.String;
        continue;
      case Mode.Literal:
        if (c !== literal[literalAt]) return { state: 'invalid', at: i };
        if (++literalAt === literal.length) mode = afterValue();
        continue;
      default:
        break;
    }
    if (WHITESPACE.has(c)) continue;
    if (mode === Mode.ArrayValueOrEnd) {
      if (c === ']') {
        stack.pop();
        mode = afterValue();
        continue;
      }
      mode = Mode.Value;
    } else if (mode === Mode.ObjectKeyOrEnd) {
      if (c === '}') {
        stack.pop();
        mode = afterValue();
        continue;
      }
      mode = Mode.ObjectKey;
    }
    switch (mode as Mode) {
      case Mode.Done:
        return { state: 'invalid', at: i };
      case Mode.Value:
        sawValue = true;
        if (c === '{') {
          stack.push('object');
          mode = Mode.ObjectKeyOrEnd;
        } else if (c === '[') {
          stack.push('array');
          mode = Mode.ArrayValueOrEnd;
        } else if (c === '"') {
          stringIsKey = false;
          mode = Mode.String;
        } else if (c === '-') {
          mode = Mode.Number;
          num = Num.Minus;
        } else if (c === '0') {
          mode = Mode.Number;
          num = Num.Zero;
        } else if (c >= '1' && c <= '9') {
          mode = Mode.Number;
          num = Num.Int;
        } else if (c in LITERALS) {
          literal = LITERALS[c] as string;
          literalAt = 1;
          mode = Mode.Literal;
        } else return { state: 'invalid', at: i };
        continue;
      case Mode.ObjectKey:
        if (c !== '"') return { state: 'invalid', at: i };
        stringIsKey = true;
        mode = Mode.String;
        continue;
      case Mode.Colon:
        if (c !== ':') return { state: 'invalid', at: i };
        mode = Mode.Value;
        continue;
      case Mode.AfterValue: {
        const top = stack[stack.length - 1];
        if (c === ',') {
          mode = top === 'object' ? Mode.ObjectKey : Mode.Value;
          continue;
        }
        if ((c === '}' && top === 'object') || (c === ']' && top === 'array')) {
          stack.pop();
          mode = afterValue();
          continue;
        }
        return { state: 'invalid', at: i };
      }
      default:
        return { state: 'invalid', at: i };
    }
  }
  if (!sawValue) return { state: 'empty', at: text.length };
  if ((mode as Mode) === Mode.Done) return { state: 'complete', at: text.length };
  if ((mode as Mode) === Mode.Number && stack.length === 0 && numberAccepts(num)) return { state: 'complete', at: text.length };
  return { state: 'prefix', at: text.length };
}

function stepNumber(state: Num, c: string): Num | undefined {
  const digit = c >= '0' && c <= '9';
  switch (state) {
    case Num.Minus:
      return c === '0' ? Num.Zero : digit ? Num.Int : undefined;
    case Num.Zero:
      return c === '.' ? Num.Dot : c === 'e' || c === 'E' ? Num.Exp : undefined;
    case Num.Int:
      return digit ? Num.Int : c === '.' ? Num.Dot : c === 'e' || c === 'E' ? Num.Exp : undefined;
    case Num.Dot:
      return digit ? Num.Frac : undefined;
    case Num.Frac:
      return digit ? Num.Frac : c === 'e' || c === 'E' ? Num.Exp : undefined;
    case Num.Exp:
      return digit ? Num.ExpInt : c === '+' || c === '-' ? Num.ExpSign : undefined;
    case Num.ExpSign:
      return digit ? Num.ExpInt : undefined;
    case Num.ExpInt:
      return digit ? Num.ExpInt : undefined;
  }
}

function numberAccepts(state: Num): boolean {
  return state === Num.Zero || state === Num.Int || state === Num.Frac || state === Num.ExpInt;
}
