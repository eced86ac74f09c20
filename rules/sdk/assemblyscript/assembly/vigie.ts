// The Vigie rule SDK for AssemblyScript (rule ABI v1, rules/ABI.md).
//
// A rule is one entry file that calls register() at top level and
// re-exports the ABI functions:
//
//   import { register, Input, Output, Params } from "../assembly/vigie";
//   export { vigie_abi_version, vigie_manifest, vigie_alloc, vigie_init, vigie_eval } from "../assembly/vigie";
//   register(MANIFEST, eval, init);
//
// Built with build.mjs (runtime stub, abort routed to vigie.fail, start
// function exported as _initialize): the module imports only vigie.fail.
//
// The SDK owns the memory given to the host and every output buffer: an
// arena of raw heap chunks, emptied when a new evaluation cycle starts (the
// first vigie_alloc after a vigie_eval). Nothing on the evaluation path
// allocates managed objects, so memory stops growing after the first
// batches even with the stub runtime (which never frees).

// ---- types -----------------------------------------------------------------

export const BOOL: u32 = 1;
export const INT32: u32 = 2;
export const INT64: u32 = 3;
export const FLOAT64: u32 = 4;
export const UTF8: u32 = 5;
export const TIMESTAMP_US: u32 = 6;
export const DATE32: u32 = 7;

function typeName(t: u32): string {
  switch (t) {
    case BOOL: return "bool";
    case INT32: return "int32";
    case INT64: return "int64";
    case FLOAT64: return "float64";
    case UTF8: return "utf8";
    case TIMESTAMP_US: return "timestamp_us";
    case DATE32: return "date32";
  }
  return "?";
}

// ---- host imports ------------------------------------------------------------

// @ts-ignore: decorator
@external("vigie", "fail")
declare function hostFail(ptr: usize, len: u32): void;

// ---- SDK state ----------------------------------------------------------------

const errorText: Text = new Text();
const scratch: Text = new Text(); // absorbs writes to a bad output row
const badColumn: Column = newBad();
const badOut: OutColumn = newBadOut();

function newBad(): Column { const c = new Column(); c.bad = true; return c; }
function newBadOut(): OutColumn { const c = new OutColumn(); c.bad = true; return c; }

// ---- arena ---------------------------------------------------------------------

let chunk: usize = 0;
let chunkSize: usize = 0;
let top: usize = 0;
let evaluated: bool = false;
let markChunk: usize = 0;
let markTop: usize = 0;

function rawAlloc(n: usize): usize {
  let p = (top + 7) & ~(<usize>7);
  if (chunk == 0 || p + n > chunk + chunkSize) {
    let size = chunkSize * 2;
    if (size < n + 8) size = n + 8;
    if (size < 65536) size = 65536;
    const c = heap.alloc(size); // the last chunk is kept for the next cycles
    chunk = c;
    chunkSize = size;
    p = (c + 7) & ~(<usize>7);
  }
  top = p + n;
  return p;
}

/** n zeroed bytes, 8-byte aligned, valid until the next cycle. */
export function arenaAlloc(n: usize): usize {
  const p = rawAlloc(n);
  memory.fill(p, 0, n);
  return p;
}

// ---- texts ---------------------------------------------------------------------

/** A growable UTF-8 text in the arena. */
export class Text {
  buf: usize = 0;
  len: u32 = 0;
  cap: u32 = 0;

  reset(): void { this.buf = 0; this.len = 0; this.cap = 0; }

  private reserve(n: u32): usize {
    if (this.len + n > this.cap) {
      let cap = this.cap ? this.cap * 2 : 64;
      while (cap < this.len + n) cap *= 2;
      const b = rawAlloc(cap);
      if (this.len) memory.copy(b, this.buf, this.len);
      this.buf = b;
      this.cap = cap;
    }
    const p = this.buf + this.len;
    this.len += n;
    return p;
  }

  appendBytes(ptr: usize, n: u32): Text {
    memory.copy(this.reserve(n), ptr, n);
    return this;
  }

  /** Appends s, encoded to UTF-8 (lone surrogates become U+FFFD). */
  append(s: string): Text {
    for (let i = 0, n = s.length; i < n; i++) {
      let c = <u32>s.charCodeAt(i);
      if (c < 0x80) { store<u8>(this.reserve(1), c); continue; }
      if (c < 0x800) {
        const p = this.reserve(2);
        store<u8>(p, 0xC0 | (c >> 6)); store<u8>(p, 0x80 | (c & 0x3F), 1);
        continue;
      }
      if (c >= 0xD800 && c < 0xDC00 && i + 1 < n) {
        const lo = <u32>s.charCodeAt(i + 1);
        if (lo >= 0xDC00 && lo < 0xE000) {
          c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
          i++;
          const p = this.reserve(4);
          store<u8>(p, 0xF0 | (c >> 18)); store<u8>(p, 0x80 | ((c >> 12) & 0x3F), 1);
          store<u8>(p, 0x80 | ((c >> 6) & 0x3F), 2); store<u8>(p, 0x80 | (c & 0x3F), 3);
          continue;
        }
      }
      if (c >= 0xD800 && c < 0xE000) c = 0xFFFD;
      const p = this.reserve(3);
      store<u8>(p, 0xE0 | (c >> 12)); store<u8>(p, 0x80 | ((c >> 6) & 0x3F), 1); store<u8>(p, 0x80 | (c & 0x3F), 2);
    }
    return this;
  }

  appendInt(v: i64): Text {
    let u: u64 = v < 0 ? <u64>0 - <u64>v : <u64>v;
    let digits: u32 = 1;
    for (let x = u / 10; x; x /= 10) digits++;
    const n = digits + (v < 0 ? 1 : 0);
    const p = this.reserve(n);
    if (v < 0) store<u8>(p, 0x2D);
    for (let i = n; i > n - digits; i--) {
      store<u8>(p + i - 1, <u32>(0x30 + u % 10));
      u /= 10;
    }
    return this;
  }

  /** Fixed notation, at most maxDecimals (<= 9) decimals, trailing zeros
   * removed; "nan", "inf", "-inf". */
  appendFloat(v: f64, maxDecimals: i32): Text {
    if (isNaN(v)) return this.append("nan");
    if (!isFinite(v)) return this.append(v > 0 ? "inf" : "-inf");
    if (maxDecimals < 0) maxDecimals = 0;
    if (maxDecimals > 9) maxDecimals = 9;
    let scale: u64 = 1;
    for (let i = 0; i < maxDecimals; i++) scale *= 10;
    const neg = v < 0;
    const a = neg ? -v : v;
    if (a * <f64>scale >= 9.2e18) return this.appendInt(<i64>v);
    const k = <u64>(a * <f64>scale + 0.5);
    if (neg && k != 0) this.append("-");
    this.appendInt(<i64>(k / scale));
    let fp = k % scale;
    if (fp) {
      let n = maxDecimals;
      while (fp % 10 == 0) { fp /= 10; n--; }
      this.append(".");
      const p = this.reserve(<u32>n);
      for (let i = n; i > 0; i--) { store<u8>(p + i - 1, <u32>(0x30 + fp % 10)); fp /= 10; }
    }
    return this;
  }
}

// ---- errors --------------------------------------------------------------------

let failed: bool = false;

/** The error message of the current call, emptied: append to it, then
 * return non-zero. */
export function error(): Text {
  errorText.len = 0;
  return errorText;
}

/** Sets the error message. */
export function fail(msg: string): void {
  error().append(msg);
}

function sdkError(): void { failed = true; }

function beginCall(): void {
  failed = false;
  errorText.reset();
}

function finishCall(rc: i32): i32 {
  if (failed && rc == 0) rc = 1;
  if (rc != 0) {
    if (errorText.len == 0) errorText.append("rule returned an error");
    hostFail(errorText.buf, errorText.len);
  }
  return rc;
}

/** The abort of the AssemblyScript runtime, routed to vigie.fail (build with
 * --use abort=assembly/vigie/vigieAbort). It may run while globals are
 * being initialised, so it touches no SDK state: it writes the message
 * (non-ASCII characters as '?') into a static buffer. */
export function vigieAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const buf = memory.data(256);
  let n: u32 = 0;
  n = abortPut(buf, n, "abort: ");
  if (message) n = abortPut(buf, n, message);
  if (fileName) { n = abortPut(buf, n, " at "); n = abortPut(buf, n, fileName); }
  hostFail(buf, n);
  unreachable();
}

function abortPut(buf: usize, n: u32, s: string): u32 {
  for (let i = 0; i < s.length && n < 256; i++, n++) {
    const c = <u32>s.charCodeAt(i);
    store<u8>(buf + n, c < 0x80 ? c : 0x3F);
  }
  return n;
}

// ---- parameters ------------------------------------------------------------------

/** The rule's parameters: a flat JSON object from the host. */
export class Params {
  ptr: usize = 0;
  len: u32 = 0;
  private vs: usize = 0;
  private ve: usize = 0;

  private find(name: string): bool {
    const end = this.ptr + this.len;
    let p = skipWS(this.ptr, end);
    if (p >= end || load<u8>(p) != 0x7B) return false;
    p++;
    while (true) {
      p = skipWS(p, end);
      if (p >= end || load<u8>(p) != 0x22) return false;
      const ks = p + 1;
      const ke = skipString(p, end) - 1;
      p = skipWS(ke + 1, end);
      if (p >= end || load<u8>(p) != 0x3A) return false;
      p = skipWS(p + 1, end);
      const v = p;
      p = skipValue(p, end);
      let e = p;
      while (e > v && isWS(load<u8>(e - 1))) e--;
      if (equalsASCII(ks, ke, name)) { this.vs = v; this.ve = e; return true; }
      if (p >= end || load<u8>(p) != 0x2C) return false;
      p++;
    }
  }

  has(name: string): bool { return this.find(name); }

  /** The number named name, or def when absent or not a number. */
  float64(name: string, def: f64): f64 {
    if (!this.find(name)) return def;
    const v = parseNumber(this.vs, this.ve);
    return numberOK ? v : def;
  }

  /** The integer named name, or def. */
  int64(name: string, def: i64): i64 {
    if (!this.find(name)) return def;
    parseNumber(this.vs, this.ve);
    return numberOK && numberIntegral ? numberInt : def;
  }

  bool(name: string, def: bool): bool {
    if (!this.find(name)) return def;
    const n = this.ve - this.vs;
    if (n == 4 && equalsASCII(this.vs, this.ve, "true")) return true;
    if (n == 5 && equalsASCII(this.vs, this.ve, "false")) return false;
    return def;
  }
}

function isWS(c: u32): bool { return c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D; }

function skipWS(p: usize, end: usize): usize {
  while (p < end && isWS(load<u8>(p))) p++;
  return p;
}

function skipString(p: usize, end: usize): usize {
  for (p++; p < end; p++) {
    const c = load<u8>(p);
    if (c == 0x5C) p++;
    else if (c == 0x22) return p + 1;
  }
  return end;
}

function skipValue(p: usize, end: usize): usize {
  let depth = 0;
  while (p < end) {
    const c = load<u8>(p);
    if (c == 0x22) { p = skipString(p, end); continue; }
    if (c == 0x7B || c == 0x5B) depth++;
    else if (c == 0x7D || c == 0x5D) { if (depth == 0) return p; depth--; }
    else if (c == 0x2C && depth == 0) return p;
    p++;
  }
  return p;
}

function equalsASCII(s: usize, e: usize, name: string): bool {
  if (<i32>(e - s) != name.length) return false;
  for (let i = 0; i < name.length; i++) {
    if (<u32>load<u8>(s + i) != <u32>name.charCodeAt(i)) return false;
  }
  return true;
}

const POW10: StaticArray<f64> = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
let numberOK: bool = false;
let numberIntegral: bool = false;
let numberInt: i64 = 0;

// parseNumber parses a JSON number: exact (correctly rounded) for up to 15
// significant digits and a decimal exponent within +-22, close otherwise.
function parseNumber(p: usize, e: usize): f64 {
  numberOK = false;
  let neg = false;
  if (p < e && load<u8>(p) == 0x2D) { neg = true; p++; }
  if (p >= e || load<u8>(p) < 0x30 || load<u8>(p) > 0x39) return 0;
  let m: u64 = 0;
  let exp10 = 0, digits = 0;
  let frac = false, overflow = false;
  for (; p < e && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39; p++) {
    if (digits < 19) { m = m * 10 + <u64>(load<u8>(p) - 0x30); if (m) digits++; } else { exp10++; overflow = true; }
  }
  if (p < e && load<u8>(p) == 0x2E) {
    frac = true;
    for (p++; p < e && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39; p++) {
      if (digits < 19) { m = m * 10 + <u64>(load<u8>(p) - 0x30); if (m) digits++; exp10--; }
    }
  }
  if (p < e && (load<u8>(p) == 0x65 || load<u8>(p) == 0x45)) {
    frac = true;
    p++;
    let eneg = false;
    if (p < e && (load<u8>(p) == 0x2B || load<u8>(p) == 0x2D)) { eneg = load<u8>(p) == 0x2D; p++; }
    let x = 0;
    for (; p < e && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39; p++) if (x < 10000) x = x * 10 + <i32>(load<u8>(p) - 0x30);
    exp10 += eneg ? -x : x;
  }
  if (p != e) return 0;
  let d = <f64>m;
  if (exp10 < 0) {
    let k = -exp10;
    while (k > 22) { d /= 1e22; k -= 22; }
    d /= unchecked(POW10[k]);
  } else {
    let k = exp10;
    while (k > 22) { d *= 1e22; k -= 22; }
    d *= unchecked(POW10[k]);
  }
  numberOK = true;
  numberIntegral = !frac && !overflow && m <= <u64>i64.MAX_VALUE;
  numberInt = neg ? -<i64>m : <i64>m;
  return neg ? -d : d;
}

// ---- input columns -----------------------------------------------------------------

/** An input column; read it through its typed view (Int32Column...). */
export class Column {
  validity: usize = 0;
  data: usize = 0;
  offsets: usize = 0;
  bad: bool = false;

  isNull(row: i32): bool {
    if (this.bad) return true;
    const v = this.validity;
    return v != 0 && ((load<u8>(v + (<usize>row >> 3)) >> (<u32>row & 7)) & 1) == 0;
  }
}
export class BoolColumn extends Column {
  value(row: i32): bool { return !this.bad && ((load<u8>(this.data + (<usize>row >> 3)) >> (<u32>row & 7)) & 1) != 0; }
}
export class Int32Column extends Column {
  value(row: i32): i32 { return this.bad ? 0 : load<i32>(this.data + (<usize>row << 2)); }
}
export class Int64Column extends Column {
  value(row: i32): i64 { return this.bad ? 0 : load<i64>(this.data + (<usize>row << 3)); }
}
export class Float64Column extends Column {
  value(row: i32): f64 { return this.bad ? 0 : load<f64>(this.data + (<usize>row << 3)); }
}
/** Microseconds since the Unix epoch, UTC. */
export class TimestampColumn extends Int64Column {}
/** Days since the Unix epoch. */
export class Date32Column extends Int32Column {}
export class Utf8Column extends Column {
  /** Pointer to the UTF-8 bytes of row (length: byteLength). */
  ptr(row: i32): usize { return this.bad ? 0 : this.data + <usize>load<i32>(this.offsets + (<usize>row << 2)); }
  byteLength(row: i32): u32 {
    if (this.bad) return 0;
    const o = this.offsets + (<usize>row << 2);
    return <u32>(load<i32>(o, 4) - load<i32>(o));
  }
  /** The value as a string (allocates: avoid it in hot loops). */
  value(row: i32): string { return String.UTF8.decodeUnsafe(this.ptr(row), this.byteLength(row)); }
}

/** The input batch: the manifest's inputs in order. */
export class Input {
  ptr: usize = 0;
  cols: StaticArray<Column> = new StaticArray<Column>(0);

  get rows(): i32 { return <i32>load<u32>(this.ptr); }

  /** Number of groups of a group rule's input, which is the number of
   * output rows; 0 for a map rule. */
  get numGroups(): i32 { return load<u32>(this.ptr, 12) ? <i32>load<u32>(this.ptr, 8) : 0; }
  /** First row of group g (0 <= g <= numGroups; groupStart(numGroups) is
   * rows). Group g is rows [groupStart(g), groupEnd(g)), contiguous, in
   * the order the pipeline declares; it may be empty. A g out of range
   * fails the evaluation with a message and gives 0. */
  groupStart(g: i32): i32 {
    if (g < 0 || g > this.numGroups) return this.badGroup(g);
    const s = load<u32>(<usize>load<u32>(this.ptr, 12) + (<usize>g << 2));
    return s <= load<u32>(this.ptr) ? <i32>s : this.badGroup(g);
  }
  /** End (excluded) of group g, 0 <= g < numGroups: groupStart(g + 1). */
  groupEnd(g: i32): i32 {
    if (g < 0 || g >= this.numGroups) return this.badGroup(g);
    return this.groupStart(g + 1);
  }
  private badGroup(g: i32): i32 {
    error().append("group ").appendInt(g).append(" does not exist or is past the last row (the batch has ")
      .appendInt(this.numGroups).append(" groups)");
    sdkError();
    return 0;
  }

  column(i: i32, t: u32): Column {
    const n = <i32>load<u32>(this.ptr, 4);
    if (i < 0 || i >= n) {
      error().append("input ").appendInt(i).append(" does not exist");
      sdkError();
      return badColumn;
    }
    const c = unchecked(this.cols[i]);
    const d = this.ptr + 16 + <usize>i * 24;
    if (load<u32>(d) != t) {
      error().append("input ").appendInt(i).append(" is ").append(typeName(load<u32>(d))).append(", read as ").append(typeName(t));
      sdkError();
      return badColumn;
    }
    c.validity = load<u32>(d, 4);
    c.data = load<u32>(d, 8);
    c.offsets = load<u32>(d, 12);
    return c;
  }
  bool(i: i32): BoolColumn { return changetype<BoolColumn>(this.column(i, BOOL)); }
  int32(i: i32): Int32Column { return changetype<Int32Column>(this.column(i, INT32)); }
  int64(i: i32): Int64Column { return changetype<Int64Column>(this.column(i, INT64)); }
  float64(i: i32): Float64Column { return changetype<Float64Column>(this.column(i, FLOAT64)); }
  utf8(i: i32): Utf8Column { return changetype<Utf8Column>(this.column(i, UTF8)); }
  timestamp(i: i32): TimestampColumn { return changetype<TimestampColumn>(this.column(i, TIMESTAMP_US)); }
  date32(i: i32): Date32Column { return changetype<Date32Column>(this.column(i, DATE32)); }
}


// ---- output columns ------------------------------------------------------------------

/** An output column; write it through its typed view (Float64Out...).
 * Every row starts null. */
export class OutColumn {
  desc: usize = 0;
  n: i32 = 0;
  type: u32 = 0;
  validity: usize = 0;
  data: usize = 0;
  offsets: usize = 0;
  text: Text = new Text();
  nextRow: i32 = 0;
  open: bool = false;
  bad: bool = false;

  /** Marks row valid; false (and an error) when row is out of range. */
  protected valid(row: i32): bool {
    if (this.bad) return false;
    if (row < 0 || row >= this.n) {
      error().append("output row ").appendInt(row).append(" is out of range (").appendInt(this.n).append(" rows)");
      sdkError();
      return false;
    }
    const p = this.validity + (<usize>row >> 3);
    store<u8>(p, load<u8>(p) | <u8>(<u32>1 << (<u32>row & 7)));
    return true;
  }
}
export class BoolOut extends OutColumn {
  set(row: i32, v: bool): void {
    if (!this.valid(row)) return;
    const p = this.data + (<usize>row >> 3);
    const m = <u8>(<u32>1 << (<u32>row & 7));
    store<u8>(p, v ? load<u8>(p) | m : load<u8>(p) & ~m);
  }
}
export class Int32Out extends OutColumn {
  set(row: i32, v: i32): void { if (this.valid(row)) store<i32>(this.data + (<usize>row << 2), v); }
}
export class Int64Out extends OutColumn {
  set(row: i32, v: i64): void { if (this.valid(row)) store<i64>(this.data + (<usize>row << 3), v); }
}
export class Float64Out extends OutColumn {
  set(row: i32, v: f64): void { if (this.valid(row)) store<f64>(this.data + (<usize>row << 3), v); }
}
export class TimestampOut extends Int64Out {}
export class Date32Out extends Int32Out {}
/** utf8 rows are written in non-decreasing row order. */
export class Utf8Out extends OutColumn {
  private fill(row: i32): void {
    for (; this.nextRow < row; this.nextRow++) store<i32>(this.offsets + (<usize>(this.nextRow + 1) << 2), this.text.len);
  }
  /** Starts row and returns the text to append its value to; end() finishes it. */
  begin(row: i32): Text {
    if (this.bad || this.open || row < this.nextRow || row >= this.n) {
      if (!this.bad) {
        error().append("utf8 output row ").appendInt(row).append(" written out of order or out of range");
        sdkError();
      }
      return scratch;
    }
    this.fill(row);
    this.open = true;
    return this.text;
  }
  end(): void {
    if (!this.open) return;
    const row = this.nextRow;
    store<i32>(this.offsets + (<usize>(row + 1) << 2), this.text.len);
    this.valid(row);
    this.nextRow = row + 1;
    this.open = false;
  }
  set(row: i32, s: string): void { this.begin(row).append(s); this.end(); }
  setBytes(row: i32, ptr: usize, n: u32): void { this.begin(row).appendBytes(ptr, n); this.end(); }
  finish(): void {
    this.end();
    this.fill(this.n);
  }
}


/** The output batch: the manifest's outputs in order. */
export class Output {
  ptr: usize = 0;
  cols: StaticArray<OutColumn> = new StaticArray<OutColumn>(0);

  /** Number of output rows: input.rows for a map rule, input.numGroups for
   * a group rule (output row g is group g). */
  get rows(): i32 { return <i32>load<u32>(this.ptr); }

  column(i: i32, t: u32): OutColumn {
    if (i < 0 || i >= this.cols.length || unchecked(this.cols[i]).type != t) {
      error().append("output ").appendInt(i).append(" is not ").append(typeName(t));
      sdkError();
      return badOut;
    }
    return unchecked(this.cols[i]);
  }
  bool(i: i32): BoolOut { return changetype<BoolOut>(this.column(i, BOOL)); }
  int32(i: i32): Int32Out { return changetype<Int32Out>(this.column(i, INT32)); }
  int64(i: i32): Int64Out { return changetype<Int64Out>(this.column(i, INT64)); }
  float64(i: i32): Float64Out { return changetype<Float64Out>(this.column(i, FLOAT64)); }
  utf8(i: i32): Utf8Out { return changetype<Utf8Out>(this.column(i, UTF8)); }
  timestamp(i: i32): TimestampOut { return changetype<TimestampOut>(this.column(i, TIMESTAMP_US)); }
  date32(i: i32): Date32Out { return changetype<Date32Out>(this.column(i, DATE32)); }

  open(ptr: usize): void {
    this.ptr = ptr;
    const n = <i32>load<u32>(ptr);
    const nc = <i32>load<u32>(ptr, 4);
    if (this.cols.length != nc) { // once: the manifest fixes the columns
      this.cols = new StaticArray<OutColumn>(nc);
      for (let i = 0; i < nc; i++) unchecked(this.cols[i] = new OutColumn());
    }
    for (let i = 0; i < nc; i++) {
      const o = unchecked(this.cols[i]);
      o.desc = ptr + 16 + <usize>i * 24;
      o.type = load<u32>(o.desc);
      o.n = n;
      o.validity = arenaAlloc((<usize>n + 7) >> 3);
      o.data = 0;
      o.offsets = 0;
      o.text.reset();
      o.nextRow = 0;
      o.open = false;
      switch (o.type) {
        case BOOL: o.data = arenaAlloc((<usize>n + 7) >> 3); break;
        case INT32: case DATE32: o.data = arenaAlloc(<usize>n << 2); break;
        case UTF8: o.offsets = arenaAlloc((<usize>n + 1) << 2); break;
        default: o.data = arenaAlloc(<usize>n << 3);
      }
    }
  }

  close(): void {
    for (let i = 0; i < this.cols.length; i++) {
      const o = unchecked(this.cols[i]);
      const d = o.desc;
      const n = o.n;
      let nulls: u32 = 0;
      for (let r = 0; r < n; r++) nulls += ((load<u8>(o.validity + (<usize>r >> 3)) >> (<u32>r & 7)) & 1) ^ 1;
      store<u32>(d, <u32>o.validity, 4);
      store<u32>(d, nulls, 20);
      switch (o.type) {
        case BOOL: store<u32>(d, <u32>o.data, 8); store<u32>(d, (<u32>n + 7) >> 3, 16); break;
        case INT32: case DATE32: store<u32>(d, <u32>o.data, 8); store<u32>(d, <u32>n << 2, 16); break;
        case UTF8: {
          changetype<Utf8Out>(o).finish();
          if (o.text.buf == 0) o.text.buf = rawAlloc(8);
          store<u32>(d, <u32>o.text.buf, 8);
          store<u32>(d, <u32>o.offsets, 12);
          store<u32>(d, o.text.len, 16);
          break;
        }
        default: store<u32>(d, <u32>o.data, 8); store<u32>(d, <u32>n << 3, 16);
      }
    }
  }
}


// ---- registration and the ABI exports ----------------------------------------------------

export type EvalFn = (input: Input, output: Output) => i32;
export type InitFn = (params: Params) => i32;

let manifest: ArrayBuffer = new ArrayBuffer(0);
let evalFn: EvalFn | null = null;
let initFn: InitFn | null = null;
const theInput: Input = new Input();
const theOutput: Output = new Output();
const theParams: Params = new Params();

/** Registers the rule: its manifest (JSON), its evaluation function and,
 * when it has parameters, its init function. Call it at top level. */
export function register(manifestJSON: string, evaluate: EvalFn, init: InitFn | null = null): void {
  manifest = String.UTF8.encode(manifestJSON);
  evalFn = evaluate;
  initFn = init;
}

export function vigie_abi_version(): i32 { return 1; }

export function vigie_manifest(): i64 {
  return <i64>((<u64>changetype<usize>(manifest) << 32) | <u64>manifest.byteLength);
}

export function vigie_alloc(size: u32): u32 {
  if (evaluated) { // a new cycle: empty the arena, keep its last chunk
    top = chunk;
    evaluated = false;
  }
  return <u32>rawAlloc(size ? <usize>size : <usize>1);
}

export function vigie_init(ptr: u32, len: u32): i32 {
  beginCall();
  theParams.ptr = ptr;
  theParams.len = len;
  const f = initFn;
  return finishCall(f ? f(theParams) : 0);
}

export function vigie_eval(input: u32, output: u32): i32 {
  if (evaluated) { if (chunk == markChunk) top = markTop; } // no vigie_alloc since the last eval
  else { markChunk = chunk; markTop = top; }
  evaluated = true;
  beginCall();
  theInput.ptr = input;
  const nc = <i32>load<u32>(input, 4);
  if (theInput.cols.length != nc) {
    theInput.cols = new StaticArray<Column>(nc);
    for (let i = 0; i < nc; i++) unchecked(theInput.cols[i] = new Column());
  }
  theOutput.open(output);
  const f = evalFn;
  if (!f) { fail("no rule registered"); return finishCall(1); }
  if (theOutput.rows != (load<u32>(input, 12) ? theInput.numGroups : theInput.rows)) {
    fail("output rows differ from input " + (load<u32>(input, 12) ? "groups" : "rows"));
    return finishCall(1);
  }
  const rc = f(theInput, theOutput);
  if (rc == 0 && !failed) theOutput.close();
  return finishCall(rc);
}
