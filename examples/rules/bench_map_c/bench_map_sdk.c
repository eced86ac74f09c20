/*
 * bench_map_sdk.c: the benchmark map rule with the C SDK, in bulk, with
 * WebAssembly SIMD (bench_map.c is the same without the SDK):
 *
 *   score = 0.5*a + 0.3*b + 0.2*c   (float64)
 *   flag  = score > 0.5             (bool)
 *   both null on a row where any input is null.
 *
 * Built with rules/sdk/c/build.sh:
 *
 *   rules/sdk/c/build.sh bench_map_sdk.wasm bench_map_sdk.c -msimd128
 */
#include <wasm_simd128.h>

#include "vigie.h"

VIGIE_MANIFEST(
    "{\"abi\":1,\"name\":\"bench_map_sdk\",\"version\":\"1.0.0\",\"kind\":\"map\","
    "\"description\":\"score = 0.5a + 0.3b + 0.2c; flag = score > 0.5; null when an input is null (C SDK, SIMD)\","
    "\"inputs\":[{\"name\":\"a\",\"type\":\"float64\"},{\"name\":\"b\",\"type\":\"float64\"},{\"name\":\"c\",\"type\":\"float64\"}],"
    "\"outputs\":[{\"name\":\"score\",\"type\":\"float64\"},{\"name\":\"flag\",\"type\":\"bool\"}]}");

int vigie_rule_eval(const vigie_input *in, vigie_output *out) {
  const uint32_t n = vigie_rows(in);
  vigie_float64_col ca = vigie_input_float64(in, 0), cb = vigie_input_float64(in, 1),
                    cc = vigie_input_float64(in, 2);
  vigie_float64_out *score = vigie_output_float64(out, 0);
  vigie_bool_out *flag = vigie_output_bool(out, 1);
  if (ca.bad || cb.bad || cc.bad || !score || !flag) return 1;
  const double *a = ca.values, *b = cb.values, *c = cc.values;
  double *s = vigie_float64_values(score);
  uint8_t *f = vigie_bool_bits(flag);
  const v128_t ka = wasm_f64x2_splat(0.5), kb = wasm_f64x2_splat(0.3), kc = wasm_f64x2_splat(0.2);
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t *pa = (const v128_t *)(a + i), *pb = (const v128_t *)(b + i),
                 *pc = (const v128_t *)(c + i);
    v128_t *ps = (v128_t *)(s + i);
    uint32_t bits = 0;
    /* The last two rows first: one bounds check per column for the eight
     * rows (docs/rule-authors.md, "Speed"). */
#define STEP(k)                                                                                    \
  {                                                                                                \
    v128_t v = wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_mul(wasm_v128_load(pa + k), ka),          \
                                             wasm_f64x2_mul(wasm_v128_load(pb + k), kb)),         \
                              wasm_f64x2_mul(wasm_v128_load(pc + k), kc));                        \
    wasm_v128_store(ps + k, v);                                                                    \
    bits |= (uint32_t)wasm_i64x2_bitmask(wasm_f64x2_gt(v, ka)) << (2 * k);                        \
  }
    STEP(3) STEP(0) STEP(1) STEP(2)
#undef STEP
    f[i >> 3] = (uint8_t)bits;
  }
  for (; i < n; i++) {
    s[i] = 0.5 * a[i] + 0.3 * b[i] + 0.2 * c[i];
    if (s[i] > 0.5) f[i >> 3] |= (uint8_t)(1u << (i & 7));
  }
  /* Valid where every input is: the AND of their bitmaps, a byte at a time. */
  vigie_set_all_valid(score);
  vigie_set_all_valid(flag);
  const uint8_t *va = ca.validity, *vb = cb.validity, *vc = cc.validity;
  if (va || vb || vc) {
    uint8_t *vs = vigie_validity(score), *vf = vigie_validity(flag);
    for (uint32_t j = 0; j < (n + 7) / 8; j++) {
      uint8_t m = vs[j];
      if (va) m &= va[j];
      if (vb) m &= vb[j];
      if (vc) m &= vc[j];
      vs[j] = vf[j] = m;
    }
  }
  return 0;
}
