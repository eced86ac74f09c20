// group_past_end_as: reads the bounds of one group past the last (see
// group_past_end.cases.toml). TestGroupPastEnd builds it as examples/X.ts of
// a copy of rules/sdk/assemblyscript (build.mjs wants the SDK at assembly/).
import { register, Input, Output } from "../assembly/vigie";
export { vigie_abi_version, vigie_manifest, vigie_alloc, vigie_init, vigie_eval } from "../assembly/vigie";

const MANIFEST = `{"abi": 1, "name": "group_past_end_as", "version": "1.0.0", "kind": "group",
  "inputs": [{"name": "x", "type": "int32"}], "outputs": [{"name": "n", "type": "int32"}]}`;

function evaluate(input: Input, output: Output): i32 {
  const n = output.int32(0);
  for (let g = 0; g <= input.numGroups; g++) { // the bug: <=
    const rows = input.groupEnd(g) - input.groupStart(g);
    if (g < input.numGroups) n.set(g, rows);
  }
  return 0;
}

register(MANIFEST, evaluate);
