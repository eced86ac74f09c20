/*
 * vigie.h: the Vigie rule SDK for C (rule ABI v1, rules/ABI.md).
 *
 * A rule is one C file that includes this header, defines its manifest with
 * VIGIE_MANIFEST and the function vigie_rule_eval (and, when it has
 * parameters, vigie_rule_init), and is compiled with vigie.c for wasm32,
 * freestanding, by build.sh (README.md gives the commands it runs, with and
 * without binaryen's wasm-opt):
 *
 *   sh rules/sdk/c/build.sh rule.wasm rule.c
 *
 * The SDK owns the five ABI exports, the memory (a bump arena from
 * __heap_base, reset at the start of each evaluation cycle) and the batch
 * descriptors: a rule only sees typed columns.
 *
 * Inputs: vigie_input_<type>(in, index) returns a column by manifest
 * position; vigie_<type>_is_null and vigie_<type>_value read a row. A
 * column of the wrong type (or index) makes the evaluation fail with a
 * message and reads as all null.
 *
 * Group rules: vigie_groups(in) groups, one output row each;
 * vigie_group_bounds(in, g) gives the rows [start, end) of group g.
 *
 * Outputs: vigie_output_<type>(out, index); every output row starts null;
 * vigie_set_<type>(col, row, value) sets a row (any order for fixed-width
 * and bool columns). utf8 rows are written in non-decreasing row order,
 * with vigie_set_utf8 or vigie_utf8_begin / vigie_text_append... /
 * vigie_utf8_end.
 *
 * Errors: return non-zero from vigie_rule_eval or vigie_rule_init, after
 * writing a message with vigie_error() (a text: append to it) or
 * vigie_fail("...").
 */
#ifndef VIGIE_H
#define VIGIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Column types (rule-abi.md, 4). */
typedef enum {
  VIGIE_BOOL = 1,
  VIGIE_INT32 = 2,
  VIGIE_INT64 = 3,
  VIGIE_FLOAT64 = 4,
  VIGIE_UTF8 = 5,
  VIGIE_TIMESTAMP_US = 6,
  VIGIE_DATE32 = 7,
} vigie_type;

/* Log levels of vigie_log. */
enum { VIGIE_DEBUG = 0, VIGIE_INFO = 1, VIGIE_WARN = 2, VIGIE_ERROR = 3 };

/* ---- the rule's part ---------------------------------------------------- */

/* VIGIE_MANIFEST("{...}") defines the manifest (UTF-8 JSON, a literal). */
#define VIGIE_MANIFEST(json)                                   \
  const char vigie_rule_manifest[] = json;                     \
  const uint32_t vigie_rule_manifest_len = sizeof(json) - 1

typedef struct vigie_input vigie_input;
typedef struct vigie_output vigie_output;
typedef struct { const char *json; uint32_t len; } vigie_params;

/* Called once per instance with the parameters (defaults filled in by the
 * host). Optional: the SDK's default accepts anything. Non-zero = error. */
int vigie_rule_init(const vigie_params *params);
/* Evaluates one batch. Non-zero = error. */
int vigie_rule_eval(const vigie_input *in, vigie_output *out);

/* ---- strings and texts ------------------------------------------------------ */

/* A string slice (not NUL-terminated). */
typedef struct { const char *ptr; uint32_t len; } vigie_str;

/* A growable text in the cycle's arena. */
typedef struct { char *buf; uint32_t len, cap; } vigie_text;

void vigie_text_append(vigie_text *t, const char *p, uint32_t n);
void vigie_text_append_cstr(vigie_text *t, const char *s);
void vigie_text_append_int(vigie_text *t, int64_t v);
/* Fixed notation with at most max_decimals decimals (rounded half away
 * from zero), trailing zeros removed; "nan", "inf", "-inf". */
void vigie_text_append_float(vigie_text *t, double v, int max_decimals);

/* ---- parameters ---------------------------------------------------------------- */

/* Each returns false when the parameter is absent or of another JSON type. */
bool vigie_param_float64(const vigie_params *p, const char *name, double *v);
bool vigie_param_int64(const vigie_params *p, const char *name, int64_t *v);
bool vigie_param_int32(const vigie_params *p, const char *name, int32_t *v);
bool vigie_param_bool(const vigie_params *p, const char *name, bool *v);
/* The string, unescaped, in the arena (valid until the next cycle: copy it
 * in vigie_rule_init if it must last). */
bool vigie_param_utf8(const vigie_params *p, const char *name, vigie_str *v);

/* ---- errors, log, memory ------------------------------------------------------- */

/* The error message of the current call, emptied: append to it, then
 * return non-zero. */
vigie_text *vigie_error(void);
/* Sets the error message to msg. */
void vigie_fail(const char *msg);
void vigie_log(int level, const char *msg);
/* n bytes, 8-byte aligned, zeroed, valid until the next cycle; NULL when
 * memory cannot grow. */
void *vigie_arena_alloc(uint32_t n);

/* ---- descriptors (layout of rule-abi.md, 4; use the accessors) ------------- */

typedef struct {
  uint32_t type, validity, data, offsets, data_len, null_count;
} vigie__column;

struct vigie_input {
  uint32_t num_rows, num_columns, num_groups, group_offsets;
  vigie__column columns[];
};

static inline bool vigie__bit(const uint8_t *bm, uint32_t i) {
  return (bm[i >> 3] >> (i & 7)) & 1;
}

/* Number of rows of the input batch. */
static inline uint32_t vigie_rows(const vigie_input *in) { return in->num_rows; }

/* ---- groups (group rules) ------------------------------------------------------ */

/* The rows of one group: [start, end). A group may be empty. */
typedef struct { uint32_t start, end; } vigie_group;

/* Number of groups of a group rule's input, which is the number of output
 * rows; 0 for a map rule. */
static inline uint32_t vigie_groups(const vigie_input *in) {
  return in->group_offsets ? in->num_groups : 0;
}
/* The rows of group g (0 <= g < vigie_groups(in)), contiguous, in the order
 * the pipeline declares. A g out of range (or group offsets that are not
 * within the batch) makes the evaluation fail with a message and gives an
 * empty group. */
vigie_group vigie_group_bounds(const vigie_input *in, uint32_t g);
/* First row of group g, for 0 <= g <= vigie_groups(in) (g = vigie_groups(in)
 * gives vigie_rows(in)); checked as vigie_group_bounds. */
uint32_t vigie_group_start(const vigie_input *in, uint32_t g);

/* Resolves an input column; on a wrong type or index it records an error
 * and returns NULL (the column then reads as all null). */
const vigie__column *vigie__input(const vigie_input *in, uint32_t index, vigie_type t);

#define VIGIE__PTR(T, p) ((T)(uintptr_t)(p))

/* Fixed-width input columns. */
#define VIGIE__INPUT(name, ctype, vt)                                              \
  typedef struct { const uint8_t *validity; const ctype *values; bool bad; } vigie_##name##_col; \
  static inline vigie_##name##_col vigie_input_##name(const vigie_input *in, uint32_t index) { \
    const vigie__column *c = vigie__input(in, index, vt);                          \
    vigie_##name##_col r = {0, 0, c == 0};                                         \
    if (c) { r.validity = VIGIE__PTR(const uint8_t *, c->validity);                \
             r.values = VIGIE__PTR(const ctype *, c->data); }                      \
    return r;                                                                      \
  }                                                                                \
  static inline bool vigie_##name##_is_null(vigie_##name##_col c, uint32_t row) {  \
    return c.bad || (c.validity && !vigie__bit(c.validity, row));                  \
  }                                                                                \
  static inline ctype vigie_##name##_value(vigie_##name##_col c, uint32_t row) {   \
    return c.bad ? 0 : c.values[row];                                              \
  }

VIGIE__INPUT(int32, int32_t, VIGIE_INT32)
VIGIE__INPUT(int64, int64_t, VIGIE_INT64)
VIGIE__INPUT(float64, double, VIGIE_FLOAT64)
VIGIE__INPUT(timestamp_us, int64_t, VIGIE_TIMESTAMP_US)
VIGIE__INPUT(date32, int32_t, VIGIE_DATE32)

typedef struct { const uint8_t *validity, *bits; bool bad; } vigie_bool_col;
static inline vigie_bool_col vigie_input_bool(const vigie_input *in, uint32_t index) {
  const vigie__column *c = vigie__input(in, index, VIGIE_BOOL);
  vigie_bool_col r = {0, 0, c == 0};
  if (c) { r.validity = VIGIE__PTR(const uint8_t *, c->validity); r.bits = VIGIE__PTR(const uint8_t *, c->data); }
  return r;
}
static inline bool vigie_bool_is_null(vigie_bool_col c, uint32_t row) {
  return c.bad || (c.validity && !vigie__bit(c.validity, row));
}
static inline bool vigie_bool_value(vigie_bool_col c, uint32_t row) {
  return !c.bad && vigie__bit(c.bits, row);
}

typedef struct { const uint8_t *validity; const int32_t *offsets; const char *data; bool bad; } vigie_utf8_col;
static inline vigie_utf8_col vigie_input_utf8(const vigie_input *in, uint32_t index) {
  const vigie__column *c = vigie__input(in, index, VIGIE_UTF8);
  vigie_utf8_col r = {0, 0, 0, c == 0};
  if (c) {
    r.validity = VIGIE__PTR(const uint8_t *, c->validity);
    r.offsets = VIGIE__PTR(const int32_t *, c->offsets);
    r.data = VIGIE__PTR(const char *, c->data);
  }
  return r;
}
static inline bool vigie_utf8_is_null(vigie_utf8_col c, uint32_t row) {
  return c.bad || (c.validity && !vigie__bit(c.validity, row));
}
static inline vigie_str vigie_utf8_value(vigie_utf8_col c, uint32_t row) {
  vigie_str s = {"", 0};
  if (!c.bad) {
    s.ptr = c.data + c.offsets[row];
    s.len = (uint32_t)(c.offsets[row + 1] - c.offsets[row]);
  }
  return s;
}

/* ---- outputs ------------------------------------------------------------------ */

typedef struct {
  vigie__column *desc;
  uint32_t n;
  vigie_type type;
  uint8_t *validity;
  uint8_t *data;     /* fixed-width and bool */
  int32_t *offsets;  /* utf8 */
  vigie_text text;   /* utf8 data */
  uint32_t next_row; /* utf8: first row not yet written */
  bool open;         /* utf8: between begin and end */
} vigie__out;

struct vigie_output {
  uint32_t num_rows, num_columns;
  vigie__out *cols;
};

/* Number of output rows: vigie_rows(in) for a map rule, vigie_groups(in)
 * for a group rule (output row g is group g). */
static inline uint32_t vigie_output_rows(const vigie_output *out) { return out->num_rows; }

vigie__out *vigie__output(vigie_output *out, uint32_t index, vigie_type t);
void vigie__bad_row(vigie__out *o, uint32_t row);

static inline bool vigie__settable(vigie__out *o, uint32_t row) {
  if (!o || row >= o->n) { vigie__bad_row(o, row); return false; }
  o->validity[row >> 3] |= (uint8_t)(1u << (row & 7));
  return true;
}

#define VIGIE__OUTPUT(name, ctype, vt)                                            \
  typedef struct { vigie__out o; } vigie_##name##_out;                            \
  static inline vigie_##name##_out *vigie_output_##name(vigie_output *out, uint32_t index) { \
    return (vigie_##name##_out *)vigie__output(out, index, vt);                   \
  }                                                                               \
  static inline void vigie_set_##name(vigie_##name##_out *c, uint32_t row, ctype v) { \
    if (vigie__settable(&c->o, row)) ((ctype *)c->o.data)[row] = v;              \
  }                                                                               \
  /* The column's values (zeroed), to write in bulk; rows stay null until       \
   * vigie_set_valid / vigie_set_all_valid. NULL for a bad column. */            \
  static inline ctype *vigie_##name##_values(vigie_##name##_out *c) {             \
    return c ? (ctype *)c->o.data : 0;                                            \
  }

VIGIE__OUTPUT(int32, int32_t, VIGIE_INT32)
VIGIE__OUTPUT(int64, int64_t, VIGIE_INT64)
VIGIE__OUTPUT(float64, double, VIGIE_FLOAT64)
VIGIE__OUTPUT(timestamp_us, int64_t, VIGIE_TIMESTAMP_US)
VIGIE__OUTPUT(date32, int32_t, VIGIE_DATE32)

typedef struct { vigie__out o; } vigie_bool_out;
static inline vigie_bool_out *vigie_output_bool(vigie_output *out, uint32_t index) {
  return (vigie_bool_out *)vigie__output(out, index, VIGIE_BOOL);
}
static inline void vigie_set_bool(vigie_bool_out *c, uint32_t row, bool v) {
  if (!vigie__settable(&c->o, row)) return;
  uint8_t m = (uint8_t)(1u << (row & 7));
  if (v) c->o.data[row >> 3] |= m; else c->o.data[row >> 3] &= (uint8_t)~m;
}

/* A bool column's bitmap (zeroed: all false), to write in bulk: row r is
 * bit r & 7 of byte r >> 3. Rows stay null until vigie_set_valid /
 * vigie_set_all_valid. NULL for a bad column. */
static inline uint8_t *vigie_bool_bits(vigie_bool_out *c) { return c ? c->o.data : 0; }

/* Validity of fixed-width and bool outputs written in bulk: c is any
 * vigie_<type>_out. vigie_set_all_valid makes every row valid (then
 * vigie_set_null may null some); vigie_validity returns the bitmap itself,
 * to AND inputs' validity into. */
void vigie__set_all_valid(vigie__out *o);
#define vigie_set_all_valid(c) vigie__set_all_valid(&(c)->o)
#define vigie_set_valid(c, row) ((void)vigie__settable(&(c)->o, (row)))
#define vigie_set_null(c, row) vigie__set_null(&(c)->o, (row))
#define vigie_validity(c) ((c) ? (c)->o.validity : (uint8_t *)0)
void vigie__set_null(vigie__out *o, uint32_t row);

typedef struct { vigie__out o; } vigie_utf8_out;
static inline vigie_utf8_out *vigie_output_utf8(vigie_output *out, uint32_t index) {
  return (vigie_utf8_out *)vigie__output(out, index, VIGIE_UTF8);
}
/* Starts row (>= every row written before) and returns the text to append
 * its value to; vigie_utf8_end finishes it. NULL on a bad row. */
vigie_text *vigie_utf8_begin(vigie_utf8_out *c, uint32_t row);
void vigie_utf8_end(vigie_utf8_out *c);
void vigie_set_utf8(vigie_utf8_out *c, uint32_t row, const char *p, uint32_t n);

#ifdef __cplusplus
}
#endif
#endif
