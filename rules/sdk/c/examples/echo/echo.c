/*
 * echo_c: copies each of its seven inputs, one per ABI type, to the output
 * of the same type, nulls included, through the SDK's typed accessors.
 * Golden cases: rules/conformance/types.cases.toml.
 *
 * Build: ../../build.sh echo.wasm echo.c
 */
#include "vigie.h"

VIGIE_MANIFEST("{\"abi\": 1, \"name\": \"echo_c\", \"version\": \"1.0.0\", \"kind\": \"map\","
"\"inputs\": [{\"name\": \"b\", \"type\": \"bool\"}, {\"name\": \"i\", \"type\": \"int32\"},"
"  {\"name\": \"l\", \"type\": \"int64\"}, {\"name\": \"f\", \"type\": \"float64\"},"
"  {\"name\": \"s\", \"type\": \"utf8\"}, {\"name\": \"ts\", \"type\": \"timestamp_us\"},"
"  {\"name\": \"d\", \"type\": \"date32\"}],"
"\"outputs\": [{\"name\": \"b_out\", \"type\": \"bool\"}, {\"name\": \"i_out\", \"type\": \"int32\"},"
"  {\"name\": \"l_out\", \"type\": \"int64\"}, {\"name\": \"f_out\", \"type\": \"float64\"},"
"  {\"name\": \"s_out\", \"type\": \"utf8\"}, {\"name\": \"ts_out\", \"type\": \"timestamp_us\"},"
"  {\"name\": \"d_out\", \"type\": \"date32\"}]}");

#define COPY(type, idx)                                               \
  do {                                                                \
    vigie_##type##_col c = vigie_input_##type(in, idx);               \
    vigie_##type##_out *o = vigie_output_##type(out, idx);            \
    for (uint32_t r = 0; r < n; r++)                                  \
      if (!vigie_##type##_is_null(c, r)) vigie_set_##type(o, r, vigie_##type##_value(c, r)); \
  } while (0)

int vigie_rule_eval(const vigie_input *in, vigie_output *out) {
  uint32_t n = vigie_rows(in);
  COPY(bool, 0);
  COPY(int32, 1);
  COPY(int64, 2);
  COPY(float64, 3);
  vigie_utf8_col s = vigie_input_utf8(in, 4);
  vigie_utf8_out *so = vigie_output_utf8(out, 4);
  for (uint32_t r = 0; r < n; r++) {
    if (vigie_utf8_is_null(s, r)) continue;
    vigie_str v = vigie_utf8_value(s, r);
    vigie_set_utf8(so, r, v.ptr, v.len);
  }
  COPY(timestamp_us, 5);
  COPY(date32, 6);
  return 0;
}
