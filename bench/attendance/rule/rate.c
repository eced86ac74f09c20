/*
 * rate.c: the map rule of the attendance benchmark (bench/attendance; this folder keeps it out of the Go package),
 * written with the C SDK (rules/sdk/c):
 *
 *   rate = absent_half_days / half_days   (float64)
 *   flag = rate >= 0.1                    (bool)
 *
 * both null on a row where an input is null or half_days is 0 (as DuckDB's
 * division gives NULL there). Built by the benchmark with
 *
 *   rules/sdk/c/build.sh rate.wasm rate.c
 */
#include "vigie.h"

VIGIE_MANIFEST(
    "{\"abi\":1,\"name\":\"attendance_rate\",\"version\":\"1.0.0\",\"kind\":\"map\","
    "\"description\":\"rate = absent_half_days / half_days; flag = rate >= 0.1\","
    "\"inputs\":[{\"name\":\"half_days\",\"type\":\"int64\"},{\"name\":\"absent_half_days\",\"type\":\"int64\"}],"
    "\"outputs\":[{\"name\":\"rate\",\"type\":\"float64\"},{\"name\":\"flag\",\"type\":\"bool\"}]}");

int vigie_rule_eval(const vigie_input *in, vigie_output *out) {
  const uint32_t n = vigie_rows(in);
  vigie_int64_col half = vigie_input_int64(in, 0), absent = vigie_input_int64(in, 1);
  vigie_float64_out *rate = vigie_output_float64(out, 0);
  vigie_bool_out *flag = vigie_output_bool(out, 1);
  if (half.bad || absent.bad || !rate || !flag) return 1;
  for (uint32_t i = 0; i < n; i++) {
    if (vigie_int64_is_null(half, i) || vigie_int64_is_null(absent, i)) continue;
    int64_t h = half.values[i];
    if (h == 0) continue;
    double r = (double)absent.values[i] / (double)h;
    vigie_set_float64(rate, i, r);
    vigie_set_bool(flag, i, r >= 0.1);
  }
  return 0;
}
