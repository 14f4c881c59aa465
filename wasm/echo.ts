// The reference echo driver as a WASI preview1 module (AssemblyScript; `make build` compiles it to
// wasm/build/echo.wasm, see the Makefile). It answers exactly what bin/acheron-echo-driver.js answers
// for the same payload: {"ok":true,"service_id","node_id","invocation_id","bytes","echo":<payload>}
// and a newline, with the payload re-serialised the way JSON.stringify(JSON.parse(text)) does it
// (whitespace dropped, escapes normalised, integer-like keys first, a repeated key keeping its first
// place and its last value, numbers as the nearest double in its shortest form). {"fail":"why"} prints
// why on stderr and exits 1; stdin that is not JSON exits 2 (with its own wording of the reason).

@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: i32, iovs: usize, count: i32, nread: usize): i32;
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: i32, iovs: usize, count: i32, nwritten: usize): i32;
@external("wasi_snapshot_preview1", "environ_sizes_get")
declare function environ_sizes_get(count: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "environ_get")
declare function environ_get(environ: usize, buffer: usize): i32;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: i32): void;

/** A growable byte buffer. */
class Bytes {
  data: StaticArray<u8>;
  length: i32 = 0;

  constructor(capacity: i32 = 64) {
    this.data = new StaticArray<u8>(capacity);
  }

  reserve(extra: i32): void {
    if (this.length + extra <= this.data.length) return;
    let capacity = this.data.length * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const grown = new StaticArray<u8>(capacity);
    memory.copy(changetype<usize>(grown), changetype<usize>(this.data), this.length);
    this.data = grown;
  }

  byte(b: i32): void {
    this.reserve(1);
    unchecked((this.data[this.length++] = <u8>b));
  }

  ascii(text: string): void {
    for (let i = 0; i < text.length; i++) this.byte(text.charCodeAt(i));
  }

  append(other: Bytes): void {
    this.reserve(other.length);
    memory.copy(changetype<usize>(this.data) + this.length, changetype<usize>(other.data), other.length);
    this.length += other.length;
  }

  at(i: i32): i32 {
    return unchecked(this.data[i]);
  }

  /** The bytes as a string key (every byte one char), for maps. */
  key(): string {
    let s = '';
    for (let i = 0; i < this.length; i++) s += String.fromCharCode(this.at(i));
    return s;
  }

  write(fd: i32): void {
    const iov = memory.data(8);
    const done = memory.data(4);
    let at = 0;
    while (at < this.length) {
      store<u32>(iov, changetype<usize>(this.data) + at);
      store<u32>(iov, this.length - at, 4);
      if (fd_write(fd, iov, 1, done) != 0) return;
      at += load<u32>(done);
    }
  }
}

class NotJson {
  constructor(public message: string) {}
}

let input = new Bytes(4096);
let pos: i32 = 0;
let failure: NotJson | null = null;
/** The top-level "fail" member when it is a string, as the bytes process.stderr.write would print. */
let failText: Bytes | null = null;

function fail(message: string): void {
  if (failure === null) failure = new NotJson(message + ' at position ' + pos.toString());
}

function peek(): i32 {
  return pos < input.length ? input.at(pos) : -1;
}

function skipSpace(): void {
  while (pos < input.length) {
    const c = input.at(pos);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
    pos++;
  }
}

const HEX = '0123456789abcdef';

/** A UTF-16 code unit as JSON.stringify writes it; surrogates only arrive here unpaired. */
function emitUnit(out: Bytes, plain: Bytes | null, c: i32): void {
  if (c == 0x22) out.ascii('\\"');
  else if (c == 0x5c) out.ascii('\\\\');
  else if (c == 0x08) out.ascii('\\b');
  else if (c == 0x0c) out.ascii('\\f');
  else if (c == 0x0a) out.ascii('\\n');
  else if (c == 0x0d) out.ascii('\\r');
  else if (c == 0x09) out.ascii('\\t');
  else if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff)) {
    out.ascii('\\u');
    for (let shift = 12; shift >= 0; shift -= 4) out.byte(HEX.charCodeAt((c >> shift) & 15));
  } else {
    emitCodePoint(out, c);
    if (plain !== null) emitCodePoint(plain, c);
    return;
  }
  // A lone surrogate becomes U+FFFD when a JavaScript string is written out as UTF-8.
  if (plain !== null) emitCodePoint(plain, c >= 0xd800 && c <= 0xdfff ? 0xfffd : c);
}

function emitCodePoint(out: Bytes, c: i32): void {
  if (c < 0x80) out.byte(c);
  else if (c < 0x800) {
    out.byte(0xc0 | (c >> 6));
    out.byte(0x80 | (c & 63));
  } else if (c < 0x10000) {
    out.byte(0xe0 | (c >> 12));
    out.byte(0x80 | ((c >> 6) & 63));
    out.byte(0x80 | (c & 63));
  } else {
    out.byte(0xf0 | (c >> 18));
    out.byte(0x80 | ((c >> 12) & 63));
    out.byte(0x80 | ((c >> 6) & 63));
    out.byte(0x80 | (c & 63));
  }
}

/**
 * The length of the valid UTF-8 sequence at `at`, or the negated length of the maximal ill-formed
 * subpart (at least 1) that a WHATWG decoder, as Buffer#toString is, replaces by one U+FFFD.
 */
function utf8At(bytes: Bytes, at: i32): i32 {
  const b = bytes.at(at);
  if (b < 0x80) return 1;
  let need = 0;
  let lower = 0x80;
  let upper = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) need = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    need = 2;
    if (b == 0xe0) lower = 0xa0;
    if (b == 0xed) upper = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 3;
    if (b == 0xf0) lower = 0x90;
    if (b == 0xf4) upper = 0x8f;
  } else return -1;
  let j = at + 1;
  for (let k = 0; k < need; k++) {
    if (j >= bytes.length) return -(j - at);
    const c = bytes.at(j);
    if (c < lower || c > upper) return -(j - at);
    lower = 0x80;
    upper = 0xbf;
    j++;
  }
  return j - at;
}

function decodeAt(bytes: Bytes, at: i32, length: i32): i32 {
  const b = bytes.at(at);
  if (length == 1) return b;
  if (length == 2) return ((b & 0x1f) << 6) | (bytes.at(at + 1) & 63);
  if (length == 3) return ((b & 0x0f) << 12) | ((bytes.at(at + 1) & 63) << 6) | (bytes.at(at + 2) & 63);
  return ((b & 0x07) << 18) | ((bytes.at(at + 1) & 63) << 12) | ((bytes.at(at + 2) & 63) << 6) | (bytes.at(at + 3) & 63);
}

/** Buffer.byteLength of the string Buffer#toString('utf8') makes of these bytes. */
function decodedLength(bytes: Bytes): i32 {
  let n = 0;
  for (let at = 0; at < bytes.length;) {
    const length = utf8At(bytes, at);
    if (length > 0) {
      n += length;
      at += length;
    } else {
      n += 3;
      at -= length;
    }
  }
  return n;
}

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** \uXXXX at pos (after the backslash and the u), or -1. */
function hex4(): i32 {
  if (pos + 4 > input.length) return -1;
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const d = hexDigit(input.at(pos + i));
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  pos += 4;
  return v;
}

/** A JSON string at pos (on its quote) as JSON.stringify writes it; `plain` gets its text as UTF-8. */
function parseString(out: Bytes, plain: Bytes | null): void {
  pos++;
  out.byte(0x22);
  while (failure === null) {
    if (pos >= input.length) return fail('Unterminated string in JSON');
    const c = input.at(pos);
    if (c == 0x22) {
      pos++;
      out.byte(0x22);
      return;
    }
    if (c < 0x20) return fail('Bad control character in string literal in JSON');
    if (c != 0x5c) {
      pos += emitRaw(out, plain, input, pos);
      continue;
    }
    pos++;
    const e = peek();
    pos++;
    if (e == 0x22) emitUnit(out, plain, 0x22);
    else if (e == 0x5c) emitUnit(out, plain, 0x5c);
    else if (e == 0x2f) emitUnit(out, plain, 0x2f);
    else if (e == 0x62) emitUnit(out, plain, 0x08);
    else if (e == 0x66) emitUnit(out, plain, 0x0c);
    else if (e == 0x6e) emitUnit(out, plain, 0x0a);
    else if (e == 0x72) emitUnit(out, plain, 0x0d);
    else if (e == 0x74) emitUnit(out, plain, 0x09);
    else if (e == 0x75) {
      const unit = hex4();
      if (unit < 0) return fail('Bad Unicode escape in JSON');
      if (unit >= 0xd800 && unit <= 0xdbff && pos + 6 <= input.length && input.at(pos) == 0x5c && input.at(pos + 1) == 0x75) {
        const saved = pos;
        pos += 2;
        const low = hex4();
        if (low >= 0xdc00 && low <= 0xdfff) {
          emitUnitOrCodePoint(out, plain, 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00));
          continue;
        }
        pos = saved;
      }
      emitUnit(out, plain, unit);
    } else return fail('Bad escaped character in JSON');
  }
}

/** The character of raw UTF-8 at `at` (U+FFFD for an ill-formed sequence); returns the bytes it took. */
function emitRaw(out: Bytes, plain: Bytes | null, bytes: Bytes, at: i32): i32 {
  const length = utf8At(bytes, at);
  if (length < 0) {
    emitUnit(out, plain, 0xfffd);
    return -length;
  }
  emitUnitOrCodePoint(out, plain, decodeAt(bytes, at, length));
  return length;
}

function emitUnitOrCodePoint(out: Bytes, plain: Bytes | null, c: i32): void {
  if (c >= 0x10000) {
    emitCodePoint(out, c);
    if (plain !== null) emitCodePoint(plain, c);
  } else emitUnit(out, plain, c);
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

/** A JSON number at pos, written as Number#toString writes the double JSON.parse makes of it. */
function parseNumber(out: Bytes): void {
  let negative = false;
  if (peek() == 0x2d) {
    negative = true;
    pos++;
  }
  // Significant digits (no leading zeros) and the decimal point's place: value = 0.DIGITS * 10^point.
  const digits = new Bytes(32);
  let point = 0;
  if (peek() == 0x30) pos++;
  else if (isDigit(peek())) {
    while (isDigit(peek())) {
      digits.byte(input.at(pos++));
      point++;
    }
  } else return fail('No number after minus sign in JSON');
  if (peek() == 0x2e) {
    pos++;
    if (!isDigit(peek())) return fail('Unterminated fractional number in JSON');
    while (isDigit(peek())) {
      const d = input.at(pos++);
      if (digits.length == 0 && d == 0x30) point--;
      else digits.byte(d);
    }
  }
  if (peek() == 0x65 || peek() == 0x45) {
    pos++;
    let expNegative = false;
    if (peek() == 0x2b || peek() == 0x2d) expNegative = input.at(pos++) == 0x2d;
    if (!isDigit(peek())) return fail('Exponent part is missing a number in JSON');
    let exp = 0;
    while (isDigit(peek())) {
      if (exp < 100000) exp = exp * 10 + (input.at(pos) - 0x30);
      pos++;
    }
    point += expNegative ? -exp : exp;
  }
  while (digits.length > 0 && digits.at(digits.length - 1) == 0x30) digits.length--;
  if (digits.length == 0) {
    out.byte(0x30); // 0 and -0 alike
    return;
  }
  if (digits.length > 15 || point < -305 || point > 308) {
    // Outside the range where every decimal of at most 15 digits names a double of its own: round to
    // the nearest double, then find the shortest digits that name it, both exactly (big integers).
    const value = decimalToDouble(digits, point);
    if (value == Infinity) {
      out.ascii('null');
      return;
    }
    if (value == 0) {
      out.byte(0x30);
      return;
    }
    point = shortestDigits(value, digits);
  }
  if (negative) out.byte(0x2d);
  formatNumber(out, digits, point);
}

// Big naturals: little-endian arrays of 32-bit limbs.

function bigOf(x: u64): Array<u32> {
  const a = new Array<u32>();
  while (x != 0) {
    a.push(<u32>x);
    x >>= 32;
  }
  return a;
}

function bigMulAdd(a: Array<u32>, m: u32, add: u32): void {
  let carry: u64 = add;
  for (let i = 0; i < a.length; i++) {
    const t = <u64>a[i] * m + carry;
    a[i] = <u32>t;
    carry = t >> 32;
  }
  if (carry != 0) a.push(<u32>carry);
}

function bigMulPow10(a: Array<u32>, k: i32): void {
  for (; k >= 9; k -= 9) bigMulAdd(a, 1000000000, 0);
  let m: u32 = 1;
  for (; k > 0; k--) m *= 10;
  if (m != 1) bigMulAdd(a, m, 0);
}

function bigShl(a: Array<u32>, bits: i32): Array<u32> {
  const out = new Array<u32>();
  for (let i = 0; i < bits >> 5; i++) out.push(0);
  const s = bits & 31;
  let carry: u32 = 0;
  for (let i = 0; i < a.length; i++) {
    out.push(s == 0 ? a[i] : (a[i] << s) | carry);
    carry = s == 0 ? 0 : a[i] >> (32 - s);
  }
  if (carry != 0) out.push(carry);
  return out;
}

function bigTrim(a: Array<u32>): void {
  while (a.length > 0 && a[a.length - 1] == 0) a.pop();
}

function bigBits(a: Array<u32>): i32 {
  bigTrim(a);
  return a.length == 0 ? 0 : a.length * 32 - <i32>clz(a[a.length - 1]);
}

function bigCmp(a: Array<u32>, b: Array<u32>): i32 {
  bigTrim(a);
  bigTrim(b);
  if (a.length != b.length) return a.length < b.length ? -1 : 1;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** a -= b, for a >= b. */
function bigSub(a: Array<u32>, b: Array<u32>): void {
  let borrow: i64 = 0;
  for (let i = 0; i < a.length; i++) {
    const t = <i64>a[i] - (i < b.length ? <i64>b[i] : 0) - borrow;
    a[i] = <u32>t;
    borrow = t < 0 ? 1 : 0;
  }
}

/** floor(num / den) for a quotient below 2^60; num keeps the remainder. */
function bigDiv(num: Array<u32>, den: Array<u32>): u64 {
  let q: u64 = 0;
  for (let bit = 59; bit >= 0; bit--) {
    const shifted = bigShl(den, bit);
    if (bigCmp(num, shifted) >= 0) {
      bigSub(num, shifted);
      q |= (<u64>1) << bit;
    }
  }
  return q;
}

/** The double nearest to mantissa * 10^exp10 (ties to even), as JSON.parse rounds. */
function bigToDouble(mantissa: Array<u32>, exp10: i32): f64 {
  let num = mantissa;
  let den = bigOf(1);
  if (exp10 >= 0) bigMulPow10(num, exp10);
  else bigMulPow10(den, -exp10);
  // Scale so that the quotient has 55 or 56 bits: 53 for the significand, the rest for rounding.
  const e2 = bigBits(num) - bigBits(den) - 55;
  if (e2 >= 0) den = bigShl(den, e2);
  else num = bigShl(num, -e2);
  const q = bigDiv(num, den);
  const sticky = bigBits(num) != 0;
  let extra = 64 - <i32>clz(q) - 53;
  let e = e2 + extra;
  if (e < -1074) {
    extra += -1074 - e;
    e = -1074;
  }
  let mant: u64 = 0;
  if (extra < 60) {
    mant = q >> extra;
    const dropped = q & (((<u64>1) << extra) - 1);
    const half = (<u64>1) << (extra - 1);
    if (dropped > half || (dropped == half && (sticky || (mant & 1) != 0))) mant++;
    if (mant == (<u64>1) << 53) {
      mant >>= 1;
      e++;
    }
  }
  if (e > 971) return Infinity;
  return reinterpret<f64>(((<u64>(e + 1074)) << 52) + mant);
}

/** 0.DIGITS * 10^point as the nearest double; at most 800 digits count, the rest only as "more". */
function decimalToDouble(digits: Bytes, point: i32): f64 {
  if (point >= 310) return Infinity;
  if (point <= -324) return 0;
  const mantissa = new Array<u32>();
  const used = min(digits.length, 800);
  for (let i = 0; i < used; i++) bigMulAdd(mantissa, 10, digits.at(i) - 0x30);
  let exp10 = point - used;
  if (used < digits.length) {
    bigMulAdd(mantissa, 10, 1);
    exp10--;
  }
  return bigToDouble(mantissa, exp10);
}

function pow10(p: i32): u64 {
  let v: u64 = 1;
  for (let i = 0; i < p; i++) v *= 10;
  return v;
}

/**
 * The shortest digits that JSON.parse reads back as `value` (> 0), and of those the nearest (ties to
 * the even digit), as V8 writes numbers; returns the decimal point of 0.DIGITS.
 */
function shortestDigits(value: f64, digits: Bytes): i32 {
  const bits = reinterpret<u64>(value);
  const biased = <i32>((bits >> 52) & 0x7ff);
  const m: u64 = biased == 0 ? bits & 0xfffffffffffff : (bits & 0xfffffffffffff) | ((<u64>1) << 52);
  const e = biased == 0 ? -1074 : biased - 1075;
  let n = <i32>Math.floor(Math.log10(value)) + 1;
  for (let p = 1; p <= 17; p++) {
    // c = floor(value * 10^(p - n)): the p-digit decimal at or below value; num/den what is left.
    let c: u64 = 0;
    let num = new Array<u32>();
    let den = new Array<u32>();
    for (let tries = 0; tries < 3; tries++) {
      num = bigOf(m);
      den = bigOf(1);
      if (e >= 0) num = bigShl(num, e);
      else den = bigShl(den, -e);
      if (p - n >= 0) bigMulPow10(num, p - n);
      else bigMulPow10(den, n - p);
      c = bigDiv(num, den);
      if (c >= pow10(p)) n++;
      else if (c < pow10(p - 1)) n--;
      else break;
    }
    const lowOk = c > 0 && bigToDouble(bigOf(c), n - p) == value;
    const highOk = bigToDouble(bigOf(c + 1), n - p) == value;
    if (!lowOk && !highOk) continue;
    let chosen = lowOk ? c : c + 1;
    if (lowOk && highOk) {
      const side = bigCmp(bigShl(num, 1), den);
      chosen = side < 0 || (side == 0 && (c & 1) == 0) ? c : c + 1;
    }
    const text = chosen.toString();
    digits.length = 0;
    digits.ascii(text);
    while (digits.at(digits.length - 1) == 0x30) digits.length--;
    return text.length + n - p;
  }
  return 0;
}

/** ECMAScript Number::toString(10) for 0.DIGITS * 10^point (digits without leading or trailing zeros). */
function formatNumber(out: Bytes, digits: Bytes, point: i32): void {
  const k = digits.length;
  if (k <= point && point <= 21) {
    out.append(digits);
    for (let i = k; i < point; i++) out.byte(0x30);
  } else if (0 < point && point <= 21) {
    for (let i = 0; i < k; i++) {
      if (i == point) out.byte(0x2e);
      out.byte(digits.at(i));
    }
  } else if (-6 < point && point <= 0) {
    out.ascii('0.');
    for (let i = point; i < 0; i++) out.byte(0x30);
    out.append(digits);
  } else {
    out.byte(digits.at(0));
    if (k > 1) {
      out.byte(0x2e);
      for (let i = 1; i < k; i++) out.byte(digits.at(i));
    }
    out.byte(0x65);
    out.byte(point - 1 < 0 ? 0x2d : 0x2b);
    out.ascii(abs<i32>(point - 1).toString());
  }
}

/** An array index key ("0", or digits without a leading zero, at most 2^32 - 2) as its value, else -1. */
function arrayIndex(key: Bytes): i64 {
  // key holds the quoted, serialised name.
  const n = key.length - 2;
  if (n < 1 || n > 10 || (n > 1 && key.at(1) == 0x30)) return -1;
  let v: i64 = 0;
  for (let i = 1; i <= n; i++) {
    const c = key.at(i);
    if (!isDigit(c)) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v <= 4294967294 ? v : -1;
}

function parseValue(out: Bytes, depth: i32): void {
  skipSpace();
  const c = peek();
  if (c == 0x7b) parseObject(out, depth);
  else if (c == 0x5b) {
    pos++;
    out.byte(0x5b);
    skipSpace();
    if (peek() == 0x5d) pos++;
    else {
      while (failure === null) {
        parseValue(out, depth + 1);
        skipSpace();
        const d = peek();
        pos++;
        if (d == 0x5d) break;
        if (d != 0x2c) return fail("Expected ',' or ']' after array element in JSON");
        out.byte(0x2c);
      }
    }
    out.byte(0x5d);
  } else if (c == 0x22) parseString(out, null);
  else if (c == 0x2d || isDigit(c)) parseNumber(out);
  else if (literal('true')) out.ascii('true');
  else if (literal('false')) out.ascii('false');
  else if (literal('null')) out.ascii('null');
  else fail(c < 0 ? 'Unexpected end of JSON input' : 'Unexpected token in JSON');
}

function literal(word: string): bool {
  if (pos + word.length > input.length) return false;
  for (let i = 0; i < word.length; i++) if (input.at(pos + i) != word.charCodeAt(i)) return false;
  pos += word.length;
  return true;
}

/** An object's members in JavaScript's property order: array indices ascending, then first-insertion order. */
function parseObject(out: Bytes, depth: i32): void {
  pos++;
  const keys = new Array<Bytes>();
  const values = new Array<Bytes>();
  const places = new Map<string, i32>();
  skipSpace();
  if (peek() == 0x7d) pos++;
  else {
    while (failure === null) {
      skipSpace();
      if (peek() != 0x22) return fail('Expected double-quoted property name in JSON');
      const key = new Bytes(16);
      parseString(key, null);
      skipSpace();
      if (peek() != 0x3a) return fail("Expected ':' after property name in JSON");
      pos++;
      const value = new Bytes(16);
      skipSpace();
      const isFail = depth == 0 && key.length == 6 && key.key() == '"fail"';
      let plain: Bytes | null = null;
      if (isFail && peek() == 0x22) {
        plain = new Bytes(16);
        parseString(value, plain);
      } else parseValue(value, depth + 1);
      if (isFail) failText = plain;
      const name = key.key();
      if (places.has(name)) values[places.get(name)] = value;
      else {
        places.set(name, keys.length);
        keys.push(key);
        values.push(value);
      }
      skipSpace();
      const d = peek();
      pos++;
      if (d == 0x7d) break;
      if (d != 0x2c) return fail("Expected ',' or '}' after property value in JSON");
    }
  }
  // Array-index keys first, in numeric order; the rest keep their order.
  const order = new Array<i32>();
  const indices = new Array<i64>();
  for (let i = 0; i < keys.length; i++) {
    const index = arrayIndex(keys[i]);
    if (index < 0) continue;
    // Insertion sort: objects with many integer-like keys are rare.
    order.push(i);
    indices.push(index);
    let at = order.length - 1;
    for (; at > 0 && indices[at - 1] > index; at--) {
      order[at] = order[at - 1];
      indices[at] = indices[at - 1];
    }
    order[at] = i;
    indices[at] = index;
  }
  for (let i = 0; i < keys.length; i++) if (arrayIndex(keys[i]) < 0) order.push(i);
  out.byte(0x7b);
  for (let i = 0; i < order.length; i++) {
    if (i > 0) out.byte(0x2c);
    out.append(keys[order[i]]);
    out.byte(0x3a);
    out.append(values[order[i]]);
  }
  out.byte(0x7d);
}

/** An environment variable as JSON.stringify(process.env[name] ?? null) writes it. */
function envJson(out: Bytes, name: string): void {
  const sizes = memory.data(8);
  environ_sizes_get(sizes, sizes + 4);
  const count = load<u32>(sizes);
  const pointers = heap.alloc(count * 4);
  const buffer = heap.alloc(load<u32>(sizes, 4));
  environ_get(pointers, buffer);
  const prefix = String.UTF8.encode(name + '=');
  const prefixLength = prefix.byteLength;
  for (let i: u32 = 0; i < count; i++) {
    const entry = load<u32>(pointers + i * 4);
    if (memory.compare(entry, changetype<usize>(prefix), prefixLength) != 0) continue;
    const value = new Bytes(64);
    for (let p = entry + prefixLength; load<u8>(p) != 0; p++) value.byte(load<u8>(p));
    out.byte(0x22);
    for (let at = 0; at < value.length;) at += emitRaw(out, null, value, at);
    out.byte(0x22);
    heap.free(pointers);
    heap.free(buffer);
    return;
  }
  heap.free(pointers);
  heap.free(buffer);
  out.ascii('null');
}

function readStdin(): void {
  const iov = memory.data(8);
  const got = memory.data(4);
  for (;;) {
    // Small payloads are the common case: start small, double when nearly full.
    input.reserve(1024);
    store<u32>(iov, changetype<usize>(input.data) + input.length);
    store<u32>(iov, input.data.length - input.length, 4);
    if (fd_read(0, iov, 1, got) != 0) return;
    const n = load<u32>(got);
    if (n == 0) return;
    input.length += n;
  }
}

function main(): void {
  readStdin();
  const payload = new Bytes(input.length + 16);
  parseValue(payload, 0);
  skipSpace();
  if (failure === null && pos < input.length) fail('Unexpected non-whitespace character after JSON');
  const problem = failure;
  if (problem !== null) {
    const err = new Bytes(128);
    err.ascii('echo driver: stdin is not JSON: ');
    err.ascii(problem.message);
    err.byte(0x0a);
    err.write(2);
    proc_exit(2);
    return;
  }
  const why = failText;
  if (why !== null) {
    why.byte(0x0a);
    why.write(2);
    proc_exit(1);
    return;
  }
  const out = new Bytes(payload.length + 256);
  out.ascii('{"ok":true,"service_id":');
  envJson(out, 'ACHERON_SERVICE_ID');
  out.ascii(',"node_id":');
  envJson(out, 'ACHERON_NODE_ID');
  out.ascii(',"invocation_id":');
  envJson(out, 'ACHERON_INVOCATION_ID');
  out.ascii(',"bytes":');
  out.ascii(decodedLength(input).toString());
  out.ascii(',"echo":');
  out.append(payload);
  out.ascii('}\n');
  out.write(1);
}

// The module's start function, exported as _start by the build (--exportStart).
main();

/** Failed assertions and allocation failures (the memory cap) end the run with a message and exit 70. */
function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  // No allocation here: this also ends a run that ran out of memory. A string literal is static data.
  const text = 'echo driver: aborted (out of memory, or a failed assertion)\n';
  const bytes = memory.data(64);
  for (let i = 0; i < text.length; i++) store<u8>(bytes + i, <u8>text.charCodeAt(i));
  const iov = memory.data(8);
  store<u32>(iov, bytes);
  store<u32>(iov, text.length, 4);
  fd_write(2, iov, 1, iov);
  proc_exit(70);
}
