//! group_past_end_rust: reads the bounds of one group past the last (see
//! group_past_end.cases.toml). Built from rules/sdk/rust:
//! sh build.sh out.wasm ../../conformance/testdata/group_past_end/group_past_end.rs
#[path = "../../../sdk/rust/vigie.rs"]
#[macro_use]
mod vigie;

const MANIFEST: &str = r#"{"abi": 1, "name": "group_past_end_rust", "version": "1.0.0", "kind": "group",
  "inputs": [{"name": "x", "type": "int32"}], "outputs": [{"name": "n", "type": "int32"}]}"#;

fn eval(input: &vigie::Input, out: &mut vigie::Output) -> Result<(), String> {
    for g in 0..=input.num_groups() { // the bug: ..=
        let rows = input.group(g);
        if g < input.num_groups() { out.int32(0).set(g, rows.len() as i32) }
    }
    Ok(())
}

rule!(MANIFEST, None, eval);
