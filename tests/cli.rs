//! End-to-end tests of `rtsim simulate`: the real binary on real files.

use std::process::Output;

mod common;
use common::{rtsim, summary, temp_dir};

#[test]
fn shipped_profile_writes_a_summary_with_all_four_transports() {
    let out = temp_dir("shipped");
    let report = out.join("report");
    let output = rtsim(&[
        "simulate",
        "profiles/quickstart.toml",
        "--out",
        report.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("long-polling") && stdout.contains("websocket"),
        "{stdout}"
    );
    let summary = summary(&report);
    assert_eq!(summary["profile"], "quickstart");
    assert_eq!(summary["clients"], 100);
    assert_eq!(summary["duration_s"], 120.0);
    let runs = summary["runs"].as_array().unwrap();
    let transports: Vec<&str> = runs
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports, ["polling", "long-polling", "sse", "websocket"]);
    for run in runs {
        for key in [
            "published",
            "expected",
            "delivered",
            "lost",
            "duplicates",
            "requests",
            "requests_per_second",
            "bytes_down",
            "bytes_up",
            "bytes_per_delivery",
            "connections_opened",
            "reconnects",
        ] {
            assert!(run[key].is_number(), "{key} missing in {run}");
        }
        for key in ["mean", "p50", "p95", "p99", "max"] {
            assert!(run["latency_ms"][key].is_number(), "latency_ms.{key}");
        }
        assert!(run["delivered"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["scenario"], "baseline");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let out = temp_dir("determinism");
    let profile = out.join("p.toml");
    std::fs::write(
        &profile,
        "name = \"det\"\nduration = \"40s\"\nclients = 15\n[workload]\nupstream_per_minute = 3.0\n",
    )
    .unwrap();
    let run = |seed: &str, dir: &str| {
        let dir = out.join(dir);
        let output = rtsim(&[
            "simulate",
            profile.to_str().unwrap(),
            "--seed",
            seed,
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read(dir.join("summary.json")).unwrap()
    };
    let first = run("7", "a");
    let second = run("7", "b");
    let other = run("8", "c");
    assert_eq!(
        first, second,
        "same profile and seed must give identical bytes"
    );
    assert_ne!(first, other, "another seed must give other results");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn json_flag_prints_the_summary_and_transports_flag_filters() {
    let out = temp_dir("json");
    let output = rtsim(&[
        "simulate",
        "profiles/quickstart.toml",
        "--transports",
        "sse,websocket",
        "--seed",
        "3",
        "--json",
        "--out",
        out.join("r").to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(summary["seed"], 3);
    let transports: Vec<&str> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports, ["sse", "websocket"]);
    std::fs::remove_dir_all(&out).unwrap();
}

fn assert_clean_failure(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail: {stderr}");
    assert_ne!(
        output.status.code(),
        Some(101),
        "exit code 101 means a panic: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in expected {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}

#[test]
fn bad_profiles_fail_clearly_naming_file_line_and_key() {
    let out = temp_dir("bad");
    let cases = [
        (
            "unknown.toml",
            "name = \"x\"\nduration = \"1m\"\nclients = 5\n[sse]\nheartbeet = \"15s\"\n",
            vec!["unknown.toml:5", "sse.heartbeet", "unknown field"],
        ),
        (
            "type.toml",
            "name = \"x\"\nduration = \"1m\"\nclients = \"lots\"\n",
            vec!["type.toml:3", "`clients`"],
        ),
        (
            "zero.toml",
            "name = \"x\"\nduration = \"1m\"\nclients = 0\n",
            vec!["zero.toml:3", "`clients`", "at least 1"],
        ),
        (
            "unit.toml",
            "name = \"x\"\nduration = \"1 fortnight\"\nclients = 5\n",
            vec!["unit.toml:2", "`duration`", "unit"],
        ),
        (
            "escape.toml",
            "name = \"../x\"\nduration = \"1m\"\nclients = 5\n",
            vec!["escape.toml:1", "`name`"],
        ),
    ];
    for (file, text, expected) in cases {
        let path = out.join(file);
        std::fs::write(&path, text).unwrap();
        let output = rtsim(&[
            "simulate",
            path.to_str().unwrap(),
            "--out",
            out.join("r").to_str().unwrap(),
        ]);
        assert_clean_failure(&output, &expected);
        assert!(
            !out.join("r").exists(),
            "a failed run must not write a report"
        );
    }
    let missing = out.join("missing.toml");
    let output = rtsim(&["simulate", missing.to_str().unwrap()]);
    assert_clean_failure(&output, &["missing.toml", "cannot read"]);
    std::fs::remove_dir_all(&out).unwrap();
}

/// Help examples paste as they are: at 80 columns each example line is a command, a comment, or the
/// continuation of a line ending in `\` — never a command clap wrapped in the middle.
#[test]
fn help_examples_are_never_wrapped_mid_command() {
    for sub in [
        &[][..],
        &["simulate"],
        &["wizard"],
        &["merge"],
        &["serve"],
        &["sweep"],
    ] {
        let mut args: Vec<&str> = sub.to_vec();
        args.push("--help");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtsim"))
            .args(&args)
            .env("COLUMNS", "80")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        let examples = help
            .split("Examples:")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub:?}: no examples"));
        let mut continued = false;
        for line in examples.lines().take_while(|l| !l.is_empty()) {
            let text = line.trim_start();
            assert!(
                continued || text.starts_with("rtsim ") || text == "rtsim" || text.starts_with('#'),
                "{sub:?}: `{line}` is a wrapped piece of an example"
            );
            continued = text.ends_with('\\');
        }
    }
}
