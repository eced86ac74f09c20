// absence_as: the absence example rule (examples/rules/absence) written with
// the AssemblyScript SDK: the share of half-days a student missed, flagged
// when it reaches a threshold, with a reason a teaching team can read. Same
// inputs, outputs, parameters and texts as the Go rule; golden cases:
// rules/conformance/absence.cases.toml.
//
// Build: node build.mjs examples/absence.ts absence.wasm
import { register, error, Input, Output, Params, Text } from "../assembly/vigie";
export { vigie_abi_version, vigie_manifest, vigie_alloc, vigie_init, vigie_eval } from "../assembly/vigie";

const MANIFEST = `{
  "abi": 1,
  "name": "absence_as",
  "version": "1.0.0",
  "description": "Share of half-days missed, flagged at or above a threshold",
  "kind": "map",
  "inputs": [
    {"name": "absent_half_days", "type": "int32"},
    {"name": "half_days",        "type": "int32"}
  ],
  "outputs": [
    {"name": "absence_rate", "type": "float64"},
    {"name": "flag",         "type": "bool"},
    {"name": "reason",       "type": "utf8"}
  ],
  "params": [
    {"name": "threshold", "type": "float64", "default": 0.10,
     "description": "absence rate from which a student is flagged"}
  ]
}`;

// Input and output positions, in manifest order.
const IN_ABSENT = 0, IN_HALF_DAYS = 1;
const OUT_RATE = 0, OUT_FLAG = 1, OUT_REASON = 2;

let threshold: f64 = 0.1;

function init(p: Params): i32 {
  threshold = p.float64("threshold", NaN);
  if (!(threshold >= 0 && threshold <= 1)) {
    error().append("threshold ").appendFloat(threshold, 6).append(" is not between 0 and 1");
    return 1;
  }
  return 0;
}

// percent appends a rate as a percentage with at most one decimal: 0.175 ->
// "17.5", 0.1 -> "10" (as the Go rule: int64(r*1000+0.5) / 10).
function percent(t: Text, r: f64): void {
  let k = <i64>(r * 1000 + 0.5);
  if (k < 0) { t.append("-"); k = -k; }
  t.appendInt(k / 10);
  if (k % 10) t.append(".").appendInt(k % 10);
}

function evaluate(input: Input, output: Output): i32 {
  const absent = input.int32(IN_ABSENT), days = input.int32(IN_HALF_DAYS);
  const rate = output.float64(OUT_RATE), flag = output.bool(OUT_FLAG), reason = output.utf8(OUT_REASON);
  for (let row = 0, n = input.rows; row < n; row++) {
    if (absent.isNull(row) || days.isNull(row) || days.value(row) == 0) continue; // every output row starts null
    const a = absent.value(row), d = days.value(row);
    const r = <f64>a / <f64>d;
    rate.set(row, r);
    flag.set(row, r >= threshold);
    if (r >= threshold) {
      const t = reason.begin(row);
      t.append("absent ").appendInt(a).append(" of ").appendInt(d).append(" half-days (");
      percent(t, r);
      t.append(" %) >= ");
      percent(t, threshold);
      t.append(" % threshold");
      reason.end();
    }
  }
  return 0;
}

register(MANIFEST, evaluate, init);
