//! group_stats_rust: the group example rule
//! (rules/sdk/vigie/examples/group_stats) written with the Rust SDK: per
//! group, the number of rows, the sum of the non-null scores (null when
//! there is none) and the last non-null label. Golden cases:
//! rules/conformance/group.cases.toml.
//!
//! Build: see ../build.sh
#[path = "../vigie.rs"]
#[macro_use]
mod vigie;

const MANIFEST: &str = r#"{
  "abi": 1,
  "name": "group_stats_rust",
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
}"#;

// Input and output positions, in manifest order.
const IN_SCORE: usize = 0;
const IN_LABEL: usize = 1;
const OUT_ROWS: usize = 0;
const OUT_SUM: usize = 1;
const OUT_LAST: usize = 2;

fn eval(input: &vigie::Input, out: &mut vigie::Output) -> Result<(), String> {
    let (score, label) = (input.float64(IN_SCORE), input.utf8(IN_LABEL));
    // One output row per group, in group order (utf8 outputs are written
    // in row order).
    for g in 0..input.num_groups() {
        let rows = input.group(g);
        out.int32(OUT_ROWS).set(g, rows.len() as i32);
        let mut sum = None;
        for r in rows.clone() {
            if let Some(v) = score.get(r) {
                sum = Some(sum.unwrap_or(0.0) + v);
            }
        }
        if let Some(s) = sum {
            out.float64(OUT_SUM).set(g, s); // else null: every output row starts null
        }
        if let Some(l) = rows.rev().find_map(|r| label.get(r)) {
            out.utf8(OUT_LAST).set(g, l);
        }
    }
    Ok(())
}

rule!(MANIFEST, None, eval);
