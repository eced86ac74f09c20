// group_stats_as: the group example rule (rules/sdk/vigie/examples/group_stats)
// written with the AssemblyScript SDK: per group, the number of rows, the
// sum of the non-null scores (null when there is none) and the last
// non-null label. Golden cases: rules/conformance/group.cases.toml.
//
// Build: node build.mjs examples/group_stats.ts group_stats.wasm
import { register, Input, Output } from "../assembly/vigie";
export { vigie_abi_version, vigie_manifest, vigie_alloc, vigie_init, vigie_eval } from "../assembly/vigie";

const MANIFEST = `{
  "abi": 1,
  "name": "group_stats_as",
  "version": "1.0.0",
  "description": "Per group: rows, sum of the non-null scores, last non-null label",
  "kind": "group",
  "inputs": [
    {"name": "score", "type": "float64"},
    {"name": "label", "type": "utf8"}
  ],
  "outputs": [
    {"name": "rows",       "type": "int32"},
    {"name": "score_sum",  "type": "float64"},
    {"name": "last_label", "type": "utf8"}
  ]
}`;

// Input and output positions, in manifest order.
const IN_SCORE = 0, IN_LABEL = 1;
const OUT_ROWS = 0, OUT_SUM = 1, OUT_LAST = 2;

function evaluate(input: Input, output: Output): i32 {
  const score = input.float64(IN_SCORE), label = input.utf8(IN_LABEL);
  const rows = output.int32(OUT_ROWS), sum = output.float64(OUT_SUM), last = output.utf8(OUT_LAST);
  // One output row per group, in group order (utf8 outputs are written in
  // row order).
  for (let g = 0, n = input.numGroups; g < n; g++) {
    const start = input.groupStart(g), end = input.groupEnd(g);
    rows.set(g, end - start);
    let s: f64 = 0, any = false;
    for (let r = start; r < end; r++) {
      if (!score.isNull(r)) { s += score.value(r); any = true; }
    }
    if (any) sum.set(g, s); // else null: every output row starts null
    for (let r = end - 1; r >= start; r--) {
      if (!label.isNull(r)) { last.setBytes(g, label.ptr(r), label.byteLength(r)); break; }
    }
  }
  return 0;
}

register(MANIFEST, evaluate);
