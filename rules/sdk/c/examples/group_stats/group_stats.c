/*
 * group_stats_c: the group example rule (rules/sdk/vigie/examples/group_stats)
 * written with the C SDK: per group, the number of rows, the sum of the
 * non-null scores (null when there is none) and the last non-null label.
 * Golden cases: rules/conformance/group.cases.toml.
 *
 * Build: ../../build.sh group_stats.wasm group_stats.c
 */
#include "vigie.h"

VIGIE_MANIFEST("{\n"
"  \"abi\": 1,\n"
"  \"name\": \"group_stats_c\",\n"
"  \"version\": \"1.0.0\",\n"
"  \"description\": \"Per group: rows, sum of the non-null scores, last non-null label\",\n"
"  \"kind\": \"group\",\n"
"  \"inputs\": [\n"
"    {\"name\": \"score\", \"type\": \"float64\"},\n"
"    {\"name\": \"label\", \"type\": \"utf8\"}\n"
"  ],\n"
"  \"outputs\": [\n"
"    {\"name\": \"rows\",       \"type\": \"int32\"},\n"
"    {\"name\": \"score_sum\",  \"type\": \"float64\"},\n"
"    {\"name\": \"last_label\", \"type\": \"utf8\"}\n"
"  ]\n"
"}");

enum { IN_SCORE, IN_LABEL };
enum { OUT_ROWS, OUT_SUM, OUT_LAST };

int vigie_rule_eval(const vigie_input *in, vigie_output *out) {
  vigie_float64_col score = vigie_input_float64(in, IN_SCORE);
  vigie_utf8_col label = vigie_input_utf8(in, IN_LABEL);
  vigie_int32_out *rows = vigie_output_int32(out, OUT_ROWS);
  vigie_float64_out *sum = vigie_output_float64(out, OUT_SUM);
  vigie_utf8_out *last = vigie_output_utf8(out, OUT_LAST);
  /* One output row per group, in group order (utf8 outputs are written in
   * row order). */
  for (uint32_t g = 0; g < vigie_groups(in); g++) {
    vigie_group b = vigie_group_bounds(in, g);
    vigie_set_int32(rows, g, (int32_t)(b.end - b.start));
    double s = 0;
    bool any = false;
    for (uint32_t r = b.start; r < b.end; r++) {
      if (!vigie_float64_is_null(score, r)) {
        s += vigie_float64_value(score, r);
        any = true;
      }
    }
    if (any) vigie_set_float64(sum, g, s); /* else null: every output row starts null */
    for (uint32_t r = b.end; r > b.start; r--) {
      if (!vigie_utf8_is_null(label, r - 1)) {
        vigie_str v = vigie_utf8_value(label, r - 1);
        vigie_set_utf8(last, g, v.ptr, v.len);
        break;
      }
    }
  }
  return 0;
}
