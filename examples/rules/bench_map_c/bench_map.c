/*
 * bench_map.c: the benchmark map rule in C with WebAssembly SIMD, written
 * against the rule ABI (rules/ABI.md) directly, with no SDK:
 *
 *   score = 0.5*a + 0.3*b + 0.2*c   (float64)
 *   flag  = score > 0.5             (bool)
 *   both null on a row where any input is null.
 *
 * It computes two rows per instruction (f64x2) and sixteen per loop
 * iteration. Built with Debian's clang and lld, then binaryen's wasm-opt
 * (which folds constant offsets into the loads and stores: see the loop):
 *
 *   clang --target=wasm32 -O2 -msimd128 -nostdlib -ffreestanding \
 *     -Wl,--no-entry -o bench_map.wasm bench_map.c
 *   wasm-opt -O3 --low-memory-unused --strip-debug --strip-producers \
 *     --strip-target-features bench_map.wasm -o bench_map.wasm
 *
 * (without wasm-opt, add -Wl,--strip-all to the first command).
 */
#include <stdint.h>
#include <wasm_simd128.h>

static const char manifest[] =
    "{\"abi\":1,\"name\":\"bench_map_c\",\"version\":\"1.0.0\",\"kind\":\"map\","
    "\"description\":\"score = 0.5a + 0.3b + 0.2c; flag = score > 0.5; null when an input is null (C, SIMD)\","
    "\"inputs\":[{\"name\":\"a\",\"type\":\"float64\"},{\"name\":\"b\",\"type\":\"float64\"},{\"name\":\"c\",\"type\":\"float64\"}],"
    "\"outputs\":[{\"name\":\"score\",\"type\":\"float64\"},{\"name\":\"flag\",\"type\":\"bool\"}]}";

typedef struct {
  uint32_t type, validity, data, offsets, data_len, null_count;
} column;
typedef struct {
  uint32_t num_rows, num_columns, num_groups, group_offsets;
  column columns[];
} batch;

extern unsigned char __heap_base;
static uintptr_t bump;   /* next free byte of the arena */
static int evaluated;    /* a cycle ended: the next alloc starts a new one */

__attribute__((export_name("vigie_abi_version"))) int32_t vigie_abi_version(void) { return 1; }

__attribute__((export_name("vigie_manifest"))) int64_t vigie_manifest(void) {
  return (int64_t)(((uint64_t)(uintptr_t)manifest << 32) | (sizeof manifest - 1));
}

__attribute__((export_name("vigie_alloc"))) uint32_t vigie_alloc(uint32_t n) {
  uintptr_t base = ((uintptr_t)&__heap_base + 7) & ~(uintptr_t)7;
  if (evaluated || bump == 0) {
    bump = base;
    evaluated = 0;
  }
  uint64_t end = (uint64_t)bump + n;
  uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) << 16;
  if (end > have) {
    uint64_t pages = (end - have + 65535) >> 16;
    if (end > 0xffffffffull || __builtin_wasm_memory_grow(0, (uintptr_t)pages) == (uintptr_t)-1) return 0;
  }
  uint32_t p = (uint32_t)bump;
  bump = (uintptr_t)((end + 7) & ~7ull);
  return p;
}

/* popcount of the first n bits of bm */
static uint32_t count_valid(const uint8_t *bm, uint32_t n) {
  uint32_t c = 0, i = 0;
  for (; i + 8 <= n; i += 8) c += (uint32_t)__builtin_popcount(bm[i >> 3]);
  for (; i < n; i++) c += (bm[i >> 3] >> (i & 7)) & 1;
  return c;
}

__attribute__((export_name("vigie_eval"))) int32_t vigie_eval(uint32_t inp, uint32_t outp) {
  const batch *in = (const batch *)(uintptr_t)inp;
  batch *out = (batch *)(uintptr_t)outp;
  const uint32_t n = in->num_rows, nb = (n + 7) >> 3;
  const double *a = (const double *)(uintptr_t)in->columns[0].data;
  const double *b = (const double *)(uintptr_t)in->columns[1].data;
  const double *c = (const double *)(uintptr_t)in->columns[2].data;
  double *s = (double *)(uintptr_t)vigie_alloc(8 * n + 16);
  uint8_t *f = (uint8_t *)(uintptr_t)vigie_alloc(nb + 8);
  if (!s || !f) {
    evaluated = 1;
    return 1;
  }
  const v128_t ka = wasm_f64x2_splat(0.5), kb = wasm_f64x2_splat(0.3), kc = wasm_f64x2_splat(0.2);
  const v128_t half = wasm_f64x2_splat(0.5);
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v128_t *pa = (const v128_t *)(a + i), *pb = (const v128_t *)(b + i),
                 *pc = (const v128_t *)(c + i);
    v128_t *ps = (v128_t *)(s + i);
    uint32_t bits = 0;
    /* The last two rows first: the runtime (wazero) checks the bounds of an
     * access at pointer+offset and then knows that lower offsets from the
     * same pointer are in bounds. With wasm-opt folding the constant
     * offsets into the instructions (see the build commands above), that is
     * one check per column per sixteen rows instead of one per access. */
#define STEP(k)                                                                                    \
  {                                                                                                \
    v128_t v = wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_mul(wasm_v128_load(pa + k), ka),          \
                                             wasm_f64x2_mul(wasm_v128_load(pb + k), kb)),         \
                              wasm_f64x2_mul(wasm_v128_load(pc + k), kc));                        \
    wasm_v128_store(ps + k, v);                                                                    \
    bits |= (uint32_t)wasm_i64x2_bitmask(wasm_f64x2_gt(v, half)) << (2 * k);                      \
  }
    STEP(7) STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6)
#undef STEP
    f[(i >> 3) + 1] = (uint8_t)(bits >> 8);
    f[i >> 3] = (uint8_t)bits;
  }
  while (i < n) {
    uint32_t bits = 0;
    for (uint32_t k = 0; k < 8 && i + k < n; k++) {
      double v = 0.5 * a[i + k] + 0.3 * b[i + k] + 0.2 * c[i + k];
      s[i + k] = v;
      bits |= (uint32_t)(v > 0.5) << k;
    }
    f[i >> 3] = (uint8_t)bits;
    i += 8;
  }
  /* Validity: none when no input has nulls; the bitmap of the only input
   * with nulls (it is in this cycle's memory, valid until the next); the
   * AND of the bitmaps otherwise. */
  uint32_t validity = 0, with_nulls = 0;
  for (int k = 0; k < 3; k++) {
    if (in->columns[k].validity) {
      with_nulls++;
      validity = in->columns[k].validity;
    }
  }
  uint32_t nulls = 0;
  if (with_nulls == 1) {
    for (int k = 0; k < 3; k++)
      if (in->columns[k].validity) nulls = in->columns[k].null_count;
  } else if (with_nulls > 1) {
    uint8_t *v = (uint8_t *)(uintptr_t)vigie_alloc(nb + 8);
    if (!v) {
      evaluated = 1;
      return 1;
    }
    for (uint32_t j = 0; j < nb; j++) {
      uint8_t x = 0xff;
      for (int k = 0; k < 3; k++)
        if (in->columns[k].validity) x &= ((const uint8_t *)(uintptr_t)in->columns[k].validity)[j];
      v[j] = x;
    }
    validity = (uint32_t)(uintptr_t)v;
    nulls = n - count_valid(v, n);
  }
  column *os = &out->columns[0], *of = &out->columns[1];
  os->validity = of->validity = validity;
  os->null_count = of->null_count = nulls;
  os->data = (uint32_t)(uintptr_t)s;
  os->data_len = 8 * n;
  of->data = (uint32_t)(uintptr_t)f;
  of->data_len = nb;
  evaluated = 1;
  return 0;
}
