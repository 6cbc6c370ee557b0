//! Many runs: parallel jobs, repeated seeds, shards and merge — through the real binary.

mod common;
use common::files;

use std::path::{Path, PathBuf};
use std::process::Command;

fn rtsim(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "rtsim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A profile of 2 scenarios × 4 transports = 8 runs, small enough for a debug build.
fn profile(dir: &Path) -> PathBuf {
    let path = dir.join("p.toml");
    std::fs::write(
        &path,
        r#"
name = "scale"
duration = "40s"
clients = 6
[workload]
upstream_per_minute = 2.0
[[scenario]]
name = "baseline"
[[scenario]]
name = "switching"
[scenario.switch]
every = "20s"
outage = "2s"
"#,
    )
    .unwrap();
    path
}

#[test]
fn jobs_do_not_change_results() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let p = p.to_str().unwrap();
    rtsim(
        dir.path(),
        &["simulate", p, "--jobs", "1", "--out", "one", "--quiet"],
    );
    rtsim(
        dir.path(),
        &["simulate", p, "--jobs", "2", "--out", "two", "--quiet"],
    );
    let one = std::fs::read(dir.path().join("one/summary.json")).unwrap();
    let two = std::fs::read(dir.path().join("two/summary.json")).unwrap();
    assert!(
        one == two,
        "--jobs 1 and --jobs 2 must write identical summaries"
    );
    assert!(
        files(&dir.path().join("one")) == files(&dir.path().join("two")),
        "and identical reports"
    );
}

#[test]
fn sharded_then_merged_equals_unsharded_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let p = p.to_str().unwrap();
    rtsim(
        dir.path(),
        &["simulate", p, "--out", "whole", "--quiet", "--jobs", "2"],
    );
    for (k, out) in [("1/3", "a"), ("2/3", "b"), ("3/3", "c")] {
        rtsim(
            dir.path(),
            &[
                "simulate", p, "--shard", k, "--out", out, "--quiet", "--jobs", "1",
            ],
        );
    }
    rtsim(dir.path(), &["merge", "a", "b", "c", "--out", "merged"]);
    let whole = files(&dir.path().join("whole"));
    let merged = files(&dir.path().join("merged"));
    assert_eq!(
        whole.iter().map(|f| &f.0).collect::<Vec<_>>(),
        merged.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in whole.iter().zip(&merged) {
        assert!(
            a == b,
            "{name} differs between the merged and the unsharded report"
        );
    }
    // A missing shard is named, not papered over.
    let out = Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .args(["merge", "a", "c", "--out", "partial"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn repeated_seeds_report_means_and_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let out = rtsim(
        dir.path(),
        &[
            "simulate",
            p.to_str().unwrap(),
            "--seeds",
            "3",
            "--transports",
            "sse",
            "--json",
            "--out",
            "r",
        ],
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "one entry per scenario × transport");
    for run in runs {
        let seeds = run["seeds"].as_array().unwrap();
        assert_eq!(seeds.len(), 3);
        assert_eq!(seeds[0], 1, "the profile's seed comes first");
        let p50 = run["latency_ms"]["p50"].as_f64().unwrap();
        let ci = run["ci95"]["latency_ms"]["p50"].as_array().unwrap();
        let (low, high) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(low <= p50 && p50 <= high, "{low} <= {p50} <= {high}");
    }
    let by_seed = std::fs::read_to_string(dir.path().join("r/runs-by-seed.csv")).unwrap();
    assert_eq!(
        by_seed.lines().count(),
        1 + 2 * 3,
        "a header and one row per single run"
    );
}
