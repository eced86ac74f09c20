//! absence_rust: the absence example rule (examples/rules/absence) written
//! with the Rust SDK: the share of half-days a student missed, flagged when
//! it reaches a threshold, with a reason a teaching team can read. Same
//! inputs, outputs, parameters and texts as the Go rule; golden cases:
//! rules/conformance/absence.cases.toml.
//!
//! Build: see ../build.sh
#[path = "../vigie.rs"]
#[macro_use]
mod vigie;

const MANIFEST: &str = r#"{
  "abi": 1,
  "name": "absence_rust",
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
}"#;

// Input and output positions, in manifest order.
const IN_ABSENT: usize = 0;
const IN_HALF_DAYS: usize = 1;
const OUT_RATE: usize = 0;
const OUT_FLAG: usize = 1;
const OUT_REASON: usize = 2;

static mut THRESHOLD: f64 = 0.1;

fn init(p: &vigie::Params) -> Result<(), String> {
    let t = p.float64("threshold").ok_or("threshold is missing")?;
    if !(0.0..=1.0).contains(&t) {
        return Err(format!("threshold {} is not between 0 and 1", t));
    }
    unsafe { THRESHOLD = t };
    Ok(())
}

/// A rate as a percentage with at most one decimal: 0.175 -> "17.5", 0.1 -> "10".
fn percent(r: f64) -> f64 {
    (r * 1000.0 + 0.5) as i64 as f64 / 10.0
}

fn eval(input: &vigie::Input, out: &mut vigie::Output) -> Result<(), String> {
    let threshold = unsafe { THRESHOLD };
    let (absent, days) = (input.int32(IN_ABSENT), input.int32(IN_HALF_DAYS));
    for row in 0..input.rows() {
        let (a, d) = match (absent.get(row), days.get(row)) {
            (Some(a), Some(d)) if d != 0 => (a, d),
            _ => continue, // every output row starts null
        };
        let r = a as f64 / d as f64;
        out.float64(OUT_RATE).set(row, r);
        out.bool(OUT_FLAG).set(row, r >= threshold);
        if r >= threshold {
            let reason = format!("absent {} of {} half-days ({} %) >= {} % threshold", a, d, percent(r), percent(threshold));
            out.utf8(OUT_REASON).set(row, &reason);
        }
    }
    Ok(())
}

rule!(MANIFEST, Some(init), eval);
