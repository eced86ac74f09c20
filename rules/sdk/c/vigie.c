/*
 * vigie.c: the ABI side of the Vigie C SDK (see vigie.h): the five exports,
 * the arena, descriptors, parameters and texts. Freestanding: no libc.
 */
#include "vigie.h"

#define EXPORT(name) __attribute__((export_name(name)))
#define IMPORT(name) __attribute__((import_module("vigie"), import_name(name)))

IMPORT("log") void vigie__host_log(int32_t level, const char *p, uint32_t n);
IMPORT("fail") void vigie__host_fail(const char *p, uint32_t n);

extern const char vigie_rule_manifest[];
extern const uint32_t vigie_rule_manifest_len;

/* The compiler may emit calls to these; -mbulk-memory turns the builtins
 * into memory.copy and memory.fill. */
void *memcpy(void *d, const void *s, size_t n) { __builtin_memcpy(d, s, n); return d; }
void *memmove(void *d, const void *s, size_t n) { __builtin_memmove(d, s, n); return d; }
void *memset(void *d, int c, size_t n) { __builtin_memset(d, c, n); return d; }
static bool bytes_equal(const char *a, const char *b, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

/* ---- arena ------------------------------------------------------------------ */

/* A bump arena over [__heap_base, end of memory), grown with memory.grow.
 * A cycle starts at the first vigie_alloc after a vigie_eval; it empties
 * the arena. A vigie_eval that follows another with no vigie_alloc in
 * between drops only what the previous evaluation allocated. */
extern unsigned char __heap_base;
static uintptr_t arena_top;
static uintptr_t eval_mark;
static bool evaluated;

static uintptr_t arena_base(void) { return ((uintptr_t)&__heap_base + 7) & ~(uintptr_t)7; }

static void *arena_alloc_raw(uint32_t n) {
  if (arena_top == 0) arena_top = arena_base();
  uint64_t p = ((uint64_t)arena_top + 7) & ~(uint64_t)7;
  uint64_t end = p + n;
  uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) << 16;
  if (end > have) {
    uint64_t pages = (end - have + 65535) >> 16;
    if (end > ((uint64_t)1 << 32) || __builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) return 0;
  }
  arena_top = (uintptr_t)end;
  return (void *)(uintptr_t)p;
}

void *vigie_arena_alloc(uint32_t n) {
  void *p = arena_alloc_raw(n);
  if (p) __builtin_memset(p, 0, n);
  return p;
}

/* ---- errors and log ------------------------------------------------------------ */

static vigie_text error_text;
static bool failed; /* an SDK check failed during this call */

vigie_text *vigie_error(void) {
  error_text.len = 0;
  return &error_text;
}

static uint32_t cstrlen(const char *s) {
  uint32_t n = 0;
  while (s[n]) n++;
  return n;
}

void vigie_fail(const char *msg) {
  vigie_text *t = vigie_error();
  vigie_text_append_cstr(t, msg);
}

void vigie_log(int level, const char *msg) { vigie__host_log(level, msg, cstrlen(msg)); }

static void sdk_error(void) {
  failed = true;
}

static int32_t finish_call(int rc) {
  if (failed && rc == 0) rc = 1;
  if (rc != 0) {
    if (error_text.len == 0) vigie_text_append_cstr(&error_text, "rule returned an error");
    vigie__host_fail(error_text.buf, error_text.len);
  }
  return rc;
}

static void begin_call(void) {
  failed = false;
  error_text.buf = 0; /* the previous cycle's arena is gone */
  error_text.len = error_text.cap = 0;
}

/* ---- texts ------------------------------------------------------------------- */

void vigie_text_append(vigie_text *t, const char *p, uint32_t n) {
  if (!t) return;
  if (t->len + n > t->cap) {
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    while (cap < t->len + n) cap *= 2;
    char *b = arena_alloc_raw(cap);
    if (!b) { sdk_error(); return; }
    if (t->len) __builtin_memcpy(b, t->buf, t->len);
    t->buf = b;
    t->cap = cap;
  }
  __builtin_memcpy(t->buf + t->len, p, n);
  t->len += n;
}

void vigie_text_append_cstr(vigie_text *t, const char *s) { vigie_text_append(t, s, cstrlen(s)); }

void vigie_text_append_int(vigie_text *t, int64_t v) {
  char b[21];
  int i = 21;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do { b[--i] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) b[--i] = '-';
  vigie_text_append(t, b + i, (uint32_t)(21 - i));
}

void vigie_text_append_float(vigie_text *t, double v, int max_decimals) {
  if (v != v) { vigie_text_append_cstr(t, "nan"); return; }
  if (v > 1.7976931348623157e308) { vigie_text_append_cstr(t, "inf"); return; }
  if (v < -1.7976931348623157e308) { vigie_text_append_cstr(t, "-inf"); return; }
  if (max_decimals < 0) max_decimals = 0;
  if (max_decimals > 9) max_decimals = 9;
  uint64_t scale = 1;
  for (int i = 0; i < max_decimals; i++) scale *= 10;
  bool neg = v < 0;
  double a = neg ? -v : v;
  if (a * (double)scale >= 9.2e18) { /* too large for fixed: integer part only */
    vigie_text_append_int(t, (int64_t)v);
    return;
  }
  uint64_t k = (uint64_t)(a * (double)scale + 0.5);
  uint64_t ip = k / scale, fp = k % scale;
  if (neg && k != 0) vigie_text_append(t, "-", 1);
  vigie_text_append_int(t, (int64_t)ip);
  if (fp) {
    char b[10];
    int n = max_decimals;
    for (int i = n - 1; i >= 0; i--) { b[i] = (char)('0' + fp % 10); fp /= 10; }
    while (n > 0 && b[n - 1] == '0') n--;
    vigie_text_append(t, ".", 1);
    vigie_text_append(t, b, (uint32_t)n);
  }
}

/* ---- parameters (a flat JSON object from the host) -------------------------- */

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* Skips a JSON string starting at p (on the quote); returns past it. */
static const char *skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\') p++;
    else if (*p == '"') return p + 1;
  }
  return end;
}

/* Skips a value (string, number, literal; nested values are skipped by
 * bracket depth). */
static const char *skip_value(const char *p, const char *end) {
  int depth = 0;
  while (p < end) {
    char c = *p;
    if (c == '"') { p = skip_string(p, end); continue; }
    if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') { if (depth == 0) return p; depth--; }
    else if (c == ',' && depth == 0) return p;
    p++;
  }
  return p;
}

/* Finds the value of key name; sets [*vs, *ve). */
static bool find_param(const vigie_params *ps, const char *name, const char **vs, const char **ve) {
  if (!ps || !ps->json) return false;
  const char *p = ps->json, *end = ps->json + ps->len;
  uint32_t nlen = cstrlen(name);
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return false;
  p++;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return false;
    const char *ks = p + 1, *ke = skip_string(p, end) - 1;
    p = skip_ws(ke + 1, end);
    if (p >= end || *p != ':') return false;
    p = skip_ws(p + 1, end);
    const char *v = p;
    p = skip_value(p, end);
    const char *e = p;
    while (e > v && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r')) e--;
    if ((uint32_t)(ke - ks) == nlen && bytes_equal(ks, name, nlen)) {
      *vs = v; *ve = e;
      return true;
    }
    if (p >= end || *p != ',') return false;
    p++;
  }
}

static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parses a JSON number: exact (correctly rounded) for up to 15 significant
 * digits and a decimal exponent within +-22, close otherwise. */
static bool parse_number(const char *p, const char *e, double *out, bool *integral, int64_t *ival) {
  bool neg = false;
  if (p < e && *p == '-') { neg = true; p++; }
  if (p >= e || *p < '0' || *p > '9') return false;
  uint64_t m = 0;
  int exp10 = 0, digits = 0;
  bool frac = false, overflow = false;
  for (; p < e && *p >= '0' && *p <= '9'; p++) {
    if (digits < 19) { m = m * 10 + (uint64_t)(*p - '0'); if (m) digits++; }
    else { exp10++; overflow = true; }
  }
  if (p < e && *p == '.') {
    frac = true;
    for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
      if (digits < 19) { m = m * 10 + (uint64_t)(*p - '0'); if (m) digits++; exp10--; }
    }
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    frac = true;
    p++;
    bool eneg = false;
    if (p < e && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
    int x = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++) if (x < 10000) x = x * 10 + (*p - '0');
    exp10 += eneg ? -x : x;
  }
  if (p != e) return false;
  double d = (double)m;
  if (exp10 < 0) {
    int k = -exp10;
    while (k > 22) { d /= 1e22; k -= 22; }
    d /= pow10[k];
  } else {
    int k = exp10;
    while (k > 22) { d *= 1e22; k -= 22; }
    d *= pow10[k];
  }
  *out = neg ? -d : d;
  *integral = !frac && !overflow && m <= (uint64_t)INT64_MAX + (neg ? 1u : 0u);
  if (*integral) *ival = neg ? (int64_t)(0 - m) : (int64_t)m;
  return true;
}

bool vigie_param_float64(const vigie_params *ps, const char *name, double *v) {
  const char *s, *e;
  bool integral;
  int64_t i;
  return find_param(ps, name, &s, &e) && parse_number(s, e, v, &integral, &i);
}

bool vigie_param_int64(const vigie_params *ps, const char *name, int64_t *v) {
  const char *s, *e;
  bool integral;
  double d;
  return find_param(ps, name, &s, &e) && parse_number(s, e, &d, &integral, v) && integral;
}

bool vigie_param_int32(const vigie_params *ps, const char *name, int32_t *v) {
  int64_t i;
  if (!vigie_param_int64(ps, name, &i) || i < INT32_MIN || i > INT32_MAX) return false;
  *v = (int32_t)i;
  return true;
}

bool vigie_param_bool(const vigie_params *ps, const char *name, bool *v) {
  const char *s, *e;
  if (!find_param(ps, name, &s, &e)) return false;
  if (e - s == 4 && bytes_equal(s, "true", 4)) { *v = true; return true; }
  if (e - s == 5 && bytes_equal(s, "false", 5)) { *v = false; return true; }
  return false;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int32_t hex4(const char *p, const char *e) {
  if (e - p < 4) return -1;
  int32_t v = 0;
  for (int i = 0; i < 4; i++) { int h = hexval(p[i]); if (h < 0) return -1; v = v * 16 + h; }
  return v;
}

bool vigie_param_utf8(const vigie_params *ps, const char *name, vigie_str *v) {
  const char *s, *e;
  if (!find_param(ps, name, &s, &e) || e - s < 2 || *s != '"' || e[-1] != '"') return false;
  vigie_text t = {0, 0, 0};
  vigie_text_append(&t, "", 0);
  for (const char *p = s + 1; p < e - 1; p++) {
    if (*p != '\\') { vigie_text_append(&t, p, 1); continue; }
    p++;
    char c = *p, o;
    switch (c) {
      case 'n': o = '\n'; break;
      case 't': o = '\t'; break;
      case 'r': o = '\r'; break;
      case 'b': o = '\b'; break;
      case 'f': o = '\f'; break;
      case 'u': {
        int32_t cp = hex4(p + 1, e - 1);
        if (cp < 0) return false;
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && p + 2 < e - 1 && p[1] == '\\' && p[2] == 'u') {
          int32_t lo = hex4(p + 3, e - 1);
          if (lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); p += 6; }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
        char b[4];
        uint32_t n;
        if (cp < 0x80) { b[0] = (char)cp; n = 1; }
        else if (cp < 0x800) { b[0] = (char)(0xC0 | (cp >> 6)); b[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
        else if (cp < 0x10000) { b[0] = (char)(0xE0 | (cp >> 12)); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[2] = (char)(0x80 | (cp & 0x3F)); n = 3; }
        else { b[0] = (char)(0xF0 | (cp >> 18)); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); n = 4; }
        vigie_text_append(&t, b, n);
        continue;
      }
      default: o = c; /* \" \\ \/ */
    }
    vigie_text_append(&t, &o, 1);
  }
  v->ptr = t.buf;
  v->len = t.len;
  return true;
}

/* ---- columns ------------------------------------------------------------------ */

static const char *type_name(uint32_t t) {
  static const char *names[] = {"?", "bool", "int32", "int64", "float64", "utf8", "timestamp_us", "date32"};
  return t >= 1 && t <= 7 ? names[t] : "?";
}

const vigie__column *vigie__input(const vigie_input *in, uint32_t index, vigie_type t) {
  if (index >= in->num_columns) {
    vigie_text *e = vigie_error();
    vigie_text_append_cstr(e, "input ");
    vigie_text_append_int(e, index);
    vigie_text_append_cstr(e, " does not exist");
    sdk_error();
    return 0;
  }
  const vigie__column *c = &in->columns[index];
  if (c->type != (uint32_t)t) {
    vigie_text *e = vigie_error();
    vigie_text_append_cstr(e, "input ");
    vigie_text_append_int(e, index);
    vigie_text_append_cstr(e, " is ");
    vigie_text_append_cstr(e, type_name(c->type));
    vigie_text_append_cstr(e, ", read as ");
    vigie_text_append_cstr(e, type_name(t));
    sdk_error();
    return 0;
  }
  return c;
}

vigie__out *vigie__output(vigie_output *out, uint32_t index, vigie_type t) {
  if (index >= out->num_columns || out->cols[index].type != t) {
    vigie_text *e = vigie_error();
    vigie_text_append_cstr(e, "output ");
    vigie_text_append_int(e, index);
    if (index < out->num_columns) {
      vigie_text_append_cstr(e, " is ");
      vigie_text_append_cstr(e, type_name(out->cols[index].type));
      vigie_text_append_cstr(e, ", written as ");
      vigie_text_append_cstr(e, type_name(t));
    } else {
      vigie_text_append_cstr(e, " does not exist");
    }
    sdk_error();
    return 0;
  }
  return &out->cols[index];
}

void vigie__bad_row(vigie__out *o, uint32_t row) {
  if (!o) return; /* already reported by vigie__output */
  vigie_text *e = vigie_error();
  vigie_text_append_cstr(e, "output row ");
  vigie_text_append_int(e, row);
  vigie_text_append_cstr(e, " is out of range (");
  vigie_text_append_int(e, o->n);
  vigie_text_append_cstr(e, " rows) or written out of order");
  sdk_error();
}

/* ---- groups ------------------------------------------------------------------ */

static void group_error(const vigie_input *in, uint32_t g, const char *what) {
  vigie_text *e = vigie_error();
  vigie_text_append_cstr(e, "group ");
  vigie_text_append_int(e, g);
  vigie_text_append_cstr(e, what);
  vigie_text_append_int(e, vigie_groups(in));
  vigie_text_append_cstr(e, " groups)");
  sdk_error();
}

uint32_t vigie_group_start(const vigie_input *in, uint32_t g) {
  if (!in->group_offsets || g > vigie_groups(in)) {
    group_error(in, g, " does not exist (the batch has ");
    return 0;
  }
  uint32_t s = ((const uint32_t *)(uintptr_t)in->group_offsets)[g];
  if (s > in->num_rows) {
    group_error(in, g, " starts past the last row (the batch has ");
    return 0;
  }
  return s;
}

vigie_group vigie_group_bounds(const vigie_input *in, uint32_t g) {
  vigie_group r = {0, 0};
  if (g >= vigie_groups(in)) {
    group_error(in, g, " does not exist (the batch has ");
    return r;
  }
  const uint32_t *off = (const uint32_t *)(uintptr_t)in->group_offsets;
  if (off[g] > off[g + 1] || off[g + 1] > in->num_rows) {
    group_error(in, g, " has offsets out of order or past the last row (the batch has ");
    return r;
  }
  r.start = off[g];
  r.end = off[g + 1];
  return r;
}

/* utf8: offsets of rows [next_row, row] become the current end (nulls). */
static void utf8_fill(vigie__out *o, uint32_t row) {
  for (; o->next_row < row; o->next_row++) o->offsets[o->next_row + 1] = (int32_t)o->text.len;
}

vigie_text *vigie_utf8_begin(vigie_utf8_out *c, uint32_t row) {
  vigie__out *o = c ? &c->o : 0;
  if (!o || row >= o->n || row < o->next_row || o->open) { vigie__bad_row(o, row); return 0; }
  utf8_fill(o, row);
  o->open = true;
  return &o->text;
}

void vigie_utf8_end(vigie_utf8_out *c) {
  vigie__out *o = c ? &c->o : 0;
  if (!o || !o->open) return;
  uint32_t row = o->next_row;
  o->offsets[row + 1] = (int32_t)o->text.len;
  o->validity[row >> 3] |= (uint8_t)(1u << (row & 7));
  o->next_row = row + 1;
  o->open = false;
}

void vigie_set_utf8(vigie_utf8_out *c, uint32_t row, const char *p, uint32_t n) {
  vigie_text *t = vigie_utf8_begin(c, row);
  if (!t) return;
  vigie_text_append(t, p, n);
  vigie_utf8_end(c);
}

/* Prepares the output columns: all rows null, zeroed values. */
static bool open_outputs(vigie_output *out, vigie_input *desc) {
  out->num_rows = desc->num_rows;
  out->num_columns = desc->num_columns;
  out->cols = vigie_arena_alloc(sizeof(vigie__out) * desc->num_columns);
  if (!out->cols && desc->num_columns) return false;
  uint32_t n = desc->num_rows;
  for (uint32_t i = 0; i < desc->num_columns; i++) {
    vigie__out *o = &out->cols[i];
    o->desc = &desc->columns[i];
    o->n = n;
    o->type = (vigie_type)o->desc->type;
    o->validity = vigie_arena_alloc((n + 7) / 8 + 1);
    switch (o->type) {
      case VIGIE_BOOL: o->data = vigie_arena_alloc((n + 7) / 8 + 1); break;
      case VIGIE_INT32: case VIGIE_DATE32: o->data = vigie_arena_alloc(4 * n + 1); break;
      case VIGIE_INT64: case VIGIE_FLOAT64: case VIGIE_TIMESTAMP_US: o->data = vigie_arena_alloc(8 * n + 1); break;
      case VIGIE_UTF8:
        o->offsets = vigie_arena_alloc(4 * (n + 1));
        if (!o->offsets) return false;
        vigie_text_append(&o->text, "", 0);
        o->data = (uint8_t *)1; /* checked below */
        break;
      default: return false;
    }
    if (!o->validity || !o->data) return false;
  }
  return true;
}

void vigie__set_all_valid(vigie__out *o) {
  if (!o) return; /* already reported by vigie__output */
  if (o->type == VIGIE_UTF8) {
    vigie_text_append_cstr(vigie_error(), "vigie_set_all_valid: a utf8 output's rows become valid as they are written");
    sdk_error();
    return;
  }
  uint32_t full = o->n >> 3;
  for (uint32_t i = 0; i < full; i++) o->validity[i] = 0xff;
  if (o->n & 7) o->validity[full] = (uint8_t)((1u << (o->n & 7)) - 1);
}

void vigie__set_null(vigie__out *o, uint32_t row) {
  if (!o || row >= o->n) {
    vigie__bad_row(o, row);
    return;
  }
  o->validity[row >> 3] &= (uint8_t)~(1u << (row & 7));
}

/* Writes the output descriptors. */
static void close_outputs(vigie_output *out) {
  for (uint32_t i = 0; i < out->num_columns; i++) {
    vigie__out *o = &out->cols[i];
    vigie__column *d = o->desc;
    uint32_t n = o->n, valid = 0, r = 0;
    for (; r + 8 <= n; r += 8) valid += (uint32_t)__builtin_popcount(o->validity[r >> 3]);
    for (; r < n; r++) valid += vigie__bit(o->validity, r);
    /* no bitmap when every row is valid: the host has less to copy */
    d->validity = valid == n ? 0 : (uint32_t)(uintptr_t)o->validity;
    d->null_count = n - valid;
    switch (o->type) {
      case VIGIE_BOOL: d->data = (uint32_t)(uintptr_t)o->data; d->data_len = (n + 7) / 8; break;
      case VIGIE_INT32: case VIGIE_DATE32: d->data = (uint32_t)(uintptr_t)o->data; d->data_len = 4 * n; break;
      case VIGIE_UTF8:
        if (o->open) vigie_utf8_end((vigie_utf8_out *)o);
        utf8_fill(o, n);
        d->offsets = (uint32_t)(uintptr_t)o->offsets;
        d->data = (uint32_t)(uintptr_t)o->text.buf;
        d->data_len = o->text.len;
        break;
      default: d->data = (uint32_t)(uintptr_t)o->data; d->data_len = 8 * n;
    }
  }
}

/* ---- the ABI exports -------------------------------------------------------- */

EXPORT("vigie_abi_version") int32_t vigie_abi_version(void) { return 1; }

EXPORT("vigie_manifest") int64_t vigie_manifest(void) {
  return (int64_t)(((uint64_t)(uintptr_t)vigie_rule_manifest << 32) | vigie_rule_manifest_len);
}

EXPORT("vigie_alloc") uint32_t vigie_alloc(uint32_t size) {
  if (evaluated) { /* a new cycle */
    arena_top = arena_base();
    evaluated = false;
  }
  return (uint32_t)(uintptr_t)arena_alloc_raw(size ? size : 1);
}

__attribute__((weak)) int vigie_rule_init(const vigie_params *params) {
  (void)params;
  return 0;
}

EXPORT("vigie_init") int32_t vigie_init(uint32_t ptr, uint32_t len) {
  begin_call();
  vigie_params p = {(const char *)(uintptr_t)ptr, len};
  return finish_call(vigie_rule_init(&p));
}

EXPORT("vigie_eval") int32_t vigie_eval(uint32_t input, uint32_t output) {
  if (evaluated) arena_top = eval_mark; /* no vigie_alloc since the last eval */
  else eval_mark = arena_top;
  evaluated = true;
  begin_call();
  vigie_input *in = (vigie_input *)(uintptr_t)input;
  vigie_input *od = (vigie_input *)(uintptr_t)output;
  vigie_output out;
  if (od->num_rows != (in->group_offsets ? in->num_groups : in->num_rows)) {
    vigie_fail(in->group_offsets ? "output rows differ from input groups" : "output rows differ from input rows");
    return finish_call(1);
  }
  if (!open_outputs(&out, od)) {
    vigie_fail("out of memory for the outputs");
    return finish_call(1);
  }
  int rc = vigie_rule_eval(in, &out);
  if (rc == 0 && !failed) close_outputs(&out);
  return finish_call(rc);
}
