/* group_past_end_c: reads the bounds of one group past the last (see
 * group_past_end.cases.toml). Build: ../../../sdk/c/build.sh out.wasm group_past_end.c */
#include "vigie.h"

VIGIE_MANIFEST("{\"abi\": 1, \"name\": \"group_past_end_c\", \"version\": \"1.0.0\", \"kind\": \"group\","
               " \"inputs\": [{\"name\": \"x\", \"type\": \"int32\"}],"
               " \"outputs\": [{\"name\": \"n\", \"type\": \"int32\"}]}");

int vigie_rule_eval(const vigie_input *in, vigie_output *out) {
  vigie_int32_out *n = vigie_output_int32(out, 0);
  for (uint32_t g = 0; g <= vigie_groups(in); g++) { /* the bug: <= */
    vigie_group b = vigie_group_bounds(in, g);
    if (g < vigie_groups(in)) vigie_set_int32(n, g, (int32_t)(b.end - b.start));
  }
  return 0;
}
