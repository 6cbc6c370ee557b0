//! `[simulation] lookahead`: stepping in lookahead windows and skipping idle hosts (`auto`) must give the
//! same report, byte for byte, as stepping every host tick by tick (`off`), on shipped profiles that
//! exercise the scheduled scenario actions the windows must stop at (network switches, a server
//! restart) and the middleboxes (NAT, buffering proxy); and a windowed run must be deterministic.
mod common;

use common::{files, rtsim, temp_dir};
use std::path::Path;

/// Runs `profile` (a shipped one, with `edit` = (from, to) replaced in its text and
/// `[simulation] lookahead = mode` appended) small, into `out`. The copy is always written to the same
/// path, so that reports naming it do not differ by it.
fn run(
    profile: &str,
    edit: Option<(&str, &str)>,
    mode: &str,
    dir: &Path,
    out: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(profile)).unwrap();
    if let Some((from, to)) = edit {
        assert!(text.contains(from), "{profile} has no `{from}`");
        text = text.replace(from, to);
    }
    run_text(profile, &text, mode, dir, out)
}

/// [`run`] on a profile's text.
fn run_text(
    profile: &str,
    text: &str,
    mode: &str,
    dir: &Path,
    out: &str,
) -> Vec<(String, Vec<u8>)> {
    assert!(
        !text.contains("[simulation]"),
        "{profile} has its own [simulation] table: append the key there instead"
    );
    let copy = dir.join("profile.toml");
    std::fs::write(
        &copy,
        format!("{text}\n[simulation]\nlookahead = \"{mode}\"\n"),
    )
    .unwrap();
    let out = dir.join(out);
    let output = rtsim(&[
        "simulate",
        copy.to_str().unwrap(),
        "--clients",
        "8",
        "--duration",
        "40s",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{profile} ({mode}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = files(&out);
    assert!(
        report.iter().any(|(name, _)| name == "summary.json"),
        "{profile} ({mode}) wrote no summary.json"
    );
    report
}

/// The summary's runs of a report read by [`run`].
fn runs(report: &[(String, Vec<u8>)]) -> Vec<serde_json::Value> {
    let (_, bytes) = report.iter().find(|(n, _)| n == "summary.json").unwrap();
    let summary: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    summary["runs"].as_array().unwrap().clone()
}

/// Runs `profile` with lookahead auto and off and asserts identical report folders; returns the runs.
fn assert_same(profile: &str, edit: Option<(&str, &str)>, name: &str) -> Vec<serde_json::Value> {
    let dir = temp_dir(name);
    let auto = run(profile, edit, "auto", &dir, "auto");
    let off = run(profile, edit, "off", &dir, "off");
    let names = |r: &[(String, Vec<u8>)]| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&auto), names(&off), "{profile}: other files");
    for ((file, a), (_, b)) in auto.iter().zip(&off) {
        assert!(
            a == b,
            "{profile}: {file} differs between lookahead auto and off"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    runs(&auto)
}

/// The sum of a summary field over the runs of one scenario.
fn total(runs: &[serde_json::Value], scenario: &str, key: &str) -> u64 {
    runs.iter()
        .filter(|r| r["scenario"] == scenario)
        .map(|r| r[key].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn windows_match_ticks_with_network_switches() {
    // Switches every 10 s instead of 3 min, so that a 40 s run has many (notified: cuts).
    let runs = assert_same(
        "profiles/mobile-chat.toml",
        Some(("every = \"3m\"", "every = \"10s\"")),
        "la-mobile",
    );
    let scenario = runs
        .iter()
        .map(|r| r["scenario"].as_str().unwrap().to_string())
        .find(|s| total(&runs, s, "cuts") > 0);
    assert!(scenario.is_some(), "no run saw a network switch: {runs:?}");
}

#[test]
fn windows_match_ticks_with_a_server_restart() {
    let runs = assert_same("profiles/live-scores.toml", None, "la-scores");
    assert!(
        total(&runs, "goal-rush-restart", "reconnects") > 0,
        "the restart made no client reconnect"
    );
}

#[test]
fn windows_match_ticks_behind_a_buffering_proxy() {
    assert_same("profiles/corporate-feed.toml", None, "la-corporate");
}

#[test]
fn windows_match_ticks_with_a_rolling_deploy_and_a_fleet_restart() {
    // No shipped profile has replicas: the deploy's phases are scheduled actions windows must stop at.
    let text = r#"
name = "deploy"
duration = "40s"
clients = 20
transports = ["long-polling", "sse", "websocket"]
[workload]
events_per_second = 2.0
[server]
replicas = 3
[[scenario]]
name = "rolling-deploy"
[scenario.deploy]
at = "8s"
every = "7s"
drain = "3s"
down = "2s"
[[scenario]]
name = "fleet-restart"
[scenario.restart]
at = "12s"
down = "3s"
"#;
    let dir = temp_dir("la-deploy");
    let auto = run_text("deploy", text, "auto", &dir, "auto");
    let off = run_text("deploy", text, "off", &dir, "off");
    assert!(
        auto == off,
        "a deploy's report differs between lookahead auto and off"
    );
    let runs = runs(&auto);
    assert!(
        total(&runs, "rolling-deploy", "reconnects") > 0,
        "the deploy made no client reconnect"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn windowed_runs_are_deterministic() {
    let dir = temp_dir("la-determinism");
    let first = run("profiles/quickstart.toml", None, "auto", &dir, "a");
    let second = run("profiles/quickstart.toml", None, "auto", &dir, "b");
    assert!(
        first == second,
        "same profile and seed must give identical bytes with lookahead windows"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn windows_match_ticks_with_a_scale_out_and_the_websocket_fallback() {
    // The scale-out is a scheduled action windows must stop at; the fallback's engine.io sessions
    // (pings, held polls, refusals under round-robin) run through a proxy and the balancer.
    let text = r#"
name = "scale-out"
duration = "40s"
clients = 20
transports = ["polling", "sse", "websocket"]
[workload]
events_per_second = 2.0
[websocket]
fallback = "long-polling"
ping_interval = "5s"
ping_timeout = "3s"
[server]
replicas = 2
[[scenario]]
name = "scale-out"
[scenario.proxy]
block_websocket = true
buffer_bytes = 0
[scenario.balancer]
policy = "round-robin"
[scenario.scale_out]
at = "15s"
add = 2
"#;
    let dir = temp_dir("la-scale-out");
    let auto = run_text("scale-out", text, "auto", &dir, "auto");
    let off = run_text("scale-out", text, "off", &dir, "off");
    assert!(
        auto == off,
        "a scale-out's report differs between lookahead auto and off"
    );
    let runs = runs(&auto);
    assert!(
        total(&runs, "scale-out", "session_refusals") > 0,
        "round-robin refused no fallback session"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
