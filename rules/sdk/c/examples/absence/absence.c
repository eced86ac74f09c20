/*
 * absence_c: the absence example rule (examples/rules/absence) written with
 * the C SDK: the share of half-days a student missed, flagged when it
 * reaches a threshold, with a reason a teaching team can read. Same inputs,
 * outputs, parameters and texts as the Go rule; golden cases:
 * rules/conformance/absence.cases.toml.
 *
 * Build: ../../build.sh absence.wasm absence.c
 */
#include "vigie.h"

VIGIE_MANIFEST("{\n"
"  \"abi\": 1,\n"
"  \"name\": \"absence_c\",\n"
"  \"version\": \"1.0.0\",\n"
"  \"description\": \"Share of half-days missed, flagged at or above a threshold\",\n"
"  \"kind\": \"map\",\n"
"  \"inputs\": [\n"
"    {\"name\": \"absent_half_days\", \"type\": \"int32\"},\n"
"    {\"name\": \"half_days\",        \"type\": \"int32\"}\n"
"  ],\n"
"  \"outputs\": [\n"
"    {\"name\": \"absence_rate\", \"type\": \"float64\"},\n"
"    {\"name\": \"flag\",         \"type\": \"bool\"},\n"
"    {\"name\": \"reason\",       \"type\": \"utf8\"}\n"
"  ],\n"
"  \"params\": [\n"
"    {\"name\": \"threshold\", \"type\": \"float64\", \"default\": 0.10,\n"
"     \"description\": \"absence rate from which a student is flagged\"}\n"
"  ]\n"
"}");

enum { IN_ABSENT, IN_HALF_DAYS };
enum { OUT_RATE, OUT_FLAG, OUT_REASON };

static double threshold;

int vigie_rule_init(const vigie_params *p) {
  if (!vigie_param_float64(p, "threshold", &threshold)) {
    vigie_fail("threshold is missing");
    return 1;
  }
  if (!(threshold >= 0 && threshold <= 1)) {
    vigie_text *e = vigie_error();
    vigie_text_append_cstr(e, "threshold ");
    vigie_text_append_float(e, threshold, 6);
    vigie_text_append_cstr(e, " is not between 0 and 1");
    return 1;
  }
  return 0;
}

/* percent appends a rate as a percentage with at most one decimal:
 * 0.175 -> "17.5", 0.1 -> "10" (as the Go rule: int64(r*1000+0.5) / 10). */
static void percent(vigie_text *t, double r) {
  int64_t k = (int64_t)(r * 1000 + 0.5);
  if (k < 0) {
    vigie_text_append(t, "-", 1);
    k = -k;
  }
  vigie_text_append_int(t, k / 10);
  if (k % 10) {
    vigie_text_append(t, ".", 1);
    vigie_text_append_int(t, k % 10);
  }
}

int vigie_rule_eval(const vigie_input *in, vigie_output *out) {
  vigie_int32_col absent = vigie_input_int32(in, IN_ABSENT);
  vigie_int32_col days = vigie_input_int32(in, IN_HALF_DAYS);
  vigie_float64_out *rate = vigie_output_float64(out, OUT_RATE);
  vigie_bool_out *flag = vigie_output_bool(out, OUT_FLAG);
  vigie_utf8_out *reason = vigie_output_utf8(out, OUT_REASON);
  for (uint32_t row = 0; row < vigie_rows(in); row++) {
    if (vigie_int32_is_null(absent, row) || vigie_int32_is_null(days, row) ||
        vigie_int32_value(days, row) == 0)
      continue; /* every output row starts null */
    int32_t a = vigie_int32_value(absent, row), d = vigie_int32_value(days, row);
    double r = (double)a / (double)d;
    vigie_set_float64(rate, row, r);
    vigie_set_bool(flag, row, r >= threshold);
    if (r >= threshold) {
      vigie_text *t = vigie_utf8_begin(reason, row);
      vigie_text_append_cstr(t, "absent ");
      vigie_text_append_int(t, a);
      vigie_text_append_cstr(t, " of ");
      vigie_text_append_int(t, d);
      vigie_text_append_cstr(t, " half-days (");
      percent(t, r);
      vigie_text_append_cstr(t, " %) >= ");
      percent(t, threshold);
      vigie_text_append_cstr(t, " % threshold");
      vigie_utf8_end(reason);
    }
  }
  return 0;
}
