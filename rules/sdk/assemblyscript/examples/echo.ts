// echo_as: copies each of its seven inputs, one per ABI type, to the output
// of the same type, nulls included, through the SDK's typed accessors.
// Golden cases: rules/conformance/types.cases.toml.
//
// Build: node build.mjs examples/echo.ts echo.wasm
import { register, Input, Output } from "../assembly/vigie";
export { vigie_abi_version, vigie_manifest, vigie_alloc, vigie_init, vigie_eval } from "../assembly/vigie";

const MANIFEST = `{"abi": 1, "name": "echo_as", "version": "1.0.0", "kind": "map",
  "inputs": [
    {"name": "b", "type": "bool"}, {"name": "i", "type": "int32"},
    {"name": "l", "type": "int64"}, {"name": "f", "type": "float64"},
    {"name": "s", "type": "utf8"}, {"name": "ts", "type": "timestamp_us"},
    {"name": "d", "type": "date32"}],
  "outputs": [
    {"name": "b_out", "type": "bool"}, {"name": "i_out", "type": "int32"},
    {"name": "l_out", "type": "int64"}, {"name": "f_out", "type": "float64"},
    {"name": "s_out", "type": "utf8"}, {"name": "ts_out", "type": "timestamp_us"},
    {"name": "d_out", "type": "date32"}]}`;

function evaluate(input: Input, output: Output): i32 {
  const n = input.rows;
  const b = input.bool(0), bo = output.bool(0);
  const i = input.int32(1), io = output.int32(1);
  const l = input.int64(2), lo = output.int64(2);
  const f = input.float64(3), fo = output.float64(3);
  const s = input.utf8(4), so = output.utf8(4);
  const ts = input.timestamp(5), tso = output.timestamp(5);
  const d = input.date32(6), dout = output.date32(6);
  for (let r = 0; r < n; r++) {
    if (!b.isNull(r)) bo.set(r, b.value(r));
    if (!i.isNull(r)) io.set(r, i.value(r));
    if (!l.isNull(r)) lo.set(r, l.value(r));
    if (!f.isNull(r)) fo.set(r, f.value(r));
    if (!s.isNull(r)) so.setBytes(r, s.ptr(r), s.byteLength(r));
    if (!ts.isNull(r)) tso.set(r, ts.value(r));
    if (!d.isNull(r)) dout.set(r, d.value(r));
  }
  return 0;
}

register(MANIFEST, evaluate);
