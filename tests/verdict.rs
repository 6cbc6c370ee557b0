//! End-to-end tests of the verdict: the real binary on real profiles, small and short so they stay
//! fast — the quickstart says SSE, the wizard and the report agree, a transport that delivers nothing
//! reads as nothing (null, —, ✗), `--check` gates CI, and the terminal output fits 80 and 100 columns.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{rtsim, summary, temp_dir};

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_quickstart_feed_is_sse_confirmed() {
    let dir = temp_dir("quickstart");
    let out = dir.join("r");
    ok(&rtsim(&[
        "simulate",
        "profiles/quickstart.toml",
        "--clients",
        "20",
        "--duration",
        "40s",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    let s = summary(&out);
    let v = &s["verdict"];
    assert_eq!(v["candidate"], "sse", "{v:#}");
    assert_eq!(v["transport"], "sse", "{v:#}");
    assert_eq!(v["confirmed"], true, "{v:#}");
    assert!(v["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    let checks = v["checks"].as_array().unwrap();
    // One check per scenario × transport × requirement (latency and losses; no upstream here).
    assert_eq!(checks.len(), 4 * 2);
    for c in checks {
        for key in [
            "scenario",
            "transport",
            "requirement",
            "measured",
            "limit",
            "pass",
        ] {
            assert!(c.get(key).is_some(), "{key} in {c}");
        }
    }
    let r = &s["requirements"];
    assert_eq!(r["latency"], "1s");
    assert_eq!(r["server_push"], true);
    assert_eq!(
        r["assumed"],
        serde_json::json!([]),
        "all stated in the profile"
    );
    // The report page and report.md open with the same verdict.
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.find("id=\"verdict\"").unwrap() < page.find("id=\"comparison\"").unwrap());
    assert!(page.contains("Verdict: SSE"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.starts_with("# quickstart") && md.contains("## Verdict: SSE"),
        "{md}"
    );
    assert!(!md.contains("Best fit"), "the old rule is gone");
}

/// A feed behind a proxy that buffers 64 KiB and ignores `X-Accel-Buffering: no`: SSE's stream never
/// gets through in a 30 s run.
const BUFFERED: &str = r#"
name = "buffered"
duration = "30s"
clients = 5
transports = ["long-polling", "sse"]
[workload]
events_per_second = 1.0
[sse]
accel_buffering_off = true
[requirements]
bidirectional = false
server_push = true
latency = "1s"
[[scenario]]
name = "buffering-proxy"
proxy = { buffer_bytes = 65536, honor_accel_buffering = false }
"#;

fn buffered_profile(dir: &Path) -> String {
    let path = dir.join("buffered.toml");
    std::fs::write(&path, BUFFERED).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn nothing_delivered_is_null_and_a_cross_and_the_verdict_moves_on() {
    let dir = temp_dir("buffered");
    let profile = buffered_profile(&dir);
    let out = dir.join("r");
    let stdout = ok(&rtsim(&[
        "simulate",
        &profile,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    let s = summary(&out);
    let sse = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["transport"] == "sse")
        .unwrap();
    assert_eq!(sse["delivered"], 0, "{sse:#}");
    for p in ["mean", "p50", "p95", "p99", "max"] {
        assert!(sse["latency_ms"][p].is_null(), "latency_ms.{p} in {sse:#}");
    }
    assert!(sse["bytes_per_delivery"].is_null());
    assert_eq!(s["verdict"]["candidate"], "sse");
    assert_eq!(
        s["verdict"]["transport"], "long-polling",
        "{:#}",
        s["verdict"]
    );
    assert_eq!(s["verdict"]["confirmed"], false);
    // The terminal: the verdict first, SSE crossed out, its latency a dash, not 0.
    assert!(stdout.starts_with("Verdict: Long polling"), "{stdout}");
    let sse_row = stdout
        .lines()
        .find(|l| l.starts_with("│ sse "))
        .expect("SSE's row");
    assert!(sse_row.contains("—") && sse_row.contains("✗"), "{sse_row}");
    assert!(!sse_row.contains(" 0.0 "), "{sse_row}");
    // CSV: empty, not zero.
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.contains(",sse,"))
        .unwrap()
        .split(',')
        .collect();
    let p95 = header.iter().position(|h| *h == "latency_p95_ms").unwrap();
    assert_eq!(row[p95], "", "{csv}");
}

#[test]
fn check_exits_1_naming_each_failure_and_0_when_all_pass() {
    let dir = temp_dir("check");
    let profile = buffered_profile(&dir);
    let out = dir.join("r");
    let failed = rtsim(&[
        "simulate",
        &profile,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--check",
        "sse",
    ]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("check sse: FAILED"), "{stderr}");
    assert!(
        stderr.contains("In buffering-proxy, SSE delivered nothing"),
        "{stderr}"
    );
    // The events the proxy still holds at the end are `stranded`, not lost (issue 13): the failure
    // is the latency nobody measured, not a loss.
    assert!(stderr.contains("1 of its checks did not pass"), "{stderr}");
    let passed = rtsim(&[
        "simulate",
        &profile,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--check",
        "long-polling",
    ]);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    let absent = rtsim(&[
        "simulate",
        &profile,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--check",
        "websocket",
    ]);
    assert_ne!(absent.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&absent.stderr).contains("not among the transports"));
}

fn run_at_width(profile: &str, out: &Path, columns: usize) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .args([
            "simulate",
            profile,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("COLUMNS", columns.to_string())
        .output()
        .unwrap();
    ok(&output)
}

#[test]
fn the_terminal_fits_80_and_100_columns_without_splitting_a_number() {
    let dir = temp_dir("columns");
    // Long names and upstream traffic make for the widest tables.
    let profile = dir.join("wide.toml");
    std::fs::write(
        &profile,
        r#"
name = "a-rather-long-profile-name"
duration = "30s"
clients = 5
[workload]
upstream_per_minute = 6.0
[[scenario]]
name = "proxy-blocks-websocket-upgrades"
proxy = { block_websocket = true }
[[scenario]]
name = "mobile-nat"
nat = { idle_timeout = "30s" }
"#,
    )
    .unwrap();
    let out = dir.join("r");
    for columns in [80, 100] {
        let text = run_at_width(profile.to_str().unwrap(), &out, columns);
        assert!(text.starts_with("Verdict: "), "{text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= columns,
                "{columns} columns: {} chars: {line}",
                line.chars().count()
            );
        }
        // Every run's p95 and delivered share appears whole in its row.
        let s = summary(&out);
        for run in s["runs"].as_array().unwrap() {
            let name = run["transport"].as_str().unwrap();
            let rows: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("│ {name} ")))
                .collect();
            assert_eq!(rows.len(), 2, "{name}: one row per scenario\n{text}");
            if let Some(p95) = run["latency_ms"]["p95"].as_f64() {
                let cell = format!(" {p95:.0} ");
                assert!(rows.iter().any(|r| r.contains(&cell)), "{cell} in {rows:?}");
            }
        }
        // The full table is there on request, whatever the width.
        let wide = Command::new(env!("CARGO_BIN_EXE_rtsim"))
            .args([
                "simulate",
                profile.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--quiet", "--wide"])
            .env("COLUMNS", columns.to_string())
            .output()
            .unwrap();
        assert!(ok(&wide).contains("radio s/client"));
    }
}

#[test]
fn a_lone_server_counts_its_open_connections_and_the_population_scales_them() {
    // 12 SSE and WebSocket clients hold one connection each once they have all arrived: the server
    // counts 12 open at the peak (a WebSocket session after its upgrade too), fewer on average over
    // the run because clients join over the ramp. 120 real clients scale the peak ×10.
    let dir = temp_dir("open-connections");
    let profile = dir.join("open.toml");
    std::fs::write(
        &profile,
        r#"
name = "open"
duration = "40s"
clients = 12
population = 120
transports = ["sse", "websocket"]
[workload]
events_per_second = 1.0
client_ramp = "10s"
[[scenario]]
name = "baseline"
"#,
    )
    .unwrap();
    let out = dir.join("r");
    ok(&rtsim(&[
        "simulate",
        profile.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    let s = summary(&out);
    for run in s["runs"].as_array().unwrap() {
        assert_eq!(run["open_connections_peak"], 12, "{run:#}");
        let mean = run["open_connections_mean"].as_f64().unwrap();
        assert!(mean > 9.0 && mean < 12.0, "mean {mean} in {run:#}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let section = &report[report
        .find("## Scaled to 120 clients")
        .expect("a scaled section")..];
    let scaled = section
        .lines()
        .find(|l| l.starts_with("| baseline | sse |"))
        .unwrap_or_else(|| panic!("a scaled row for SSE in\n{report}"));
    assert!(scaled.trim_end().ends_with("| 120 |"), "{scaled}");
}

/// The balancer's figures are requirements too: the busiest server's open connections everywhere, the
/// deploy's reconnect peak and the time until every client is served again only where the scenario
/// restarts something — measured, never assumed.
#[test]
fn deploy_and_capacity_requirements_are_checked_where_they_apply() {
    let dir = temp_dir("deploy-requirements");
    let profile = dir.join("fleet.toml");
    std::fs::write(
        &profile,
        "name = \"fleet\"\nduration = \"60s\"\nclients = 12\ntransports = [\"sse\", \"websocket\"]\n\
         [workload]\nevents_per_second = 1.0\nclient_ramp = \"2s\"\n\
         [server]\nreplicas = 3\n\
         [requirements]\nlatency = \"5s\"\nmax_open_connections_per_server = 2\n\
         max_reconnects_per_second = 1000\nmax_served_again = \"1ms\"\n\
         [[scenario]]\nname = \"steady\"\n\
         [[scenario]]\nname = \"rolling\"\n[scenario.deploy]\nat = \"15s\"\nevery = \"10s\"\n\
         drain = \"2s\"\n",
    )
    .unwrap();
    let out = dir.join("r");
    let output = rtsim(&[
        "simulate",
        profile.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    // Nothing passes: 1 ms is below any time until served again, 2 connections below any replica.
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let s = summary(&out);
    let checks = s["verdict"]["checks"].as_array().unwrap();
    let of = |scenario: &str, requirement: &str| -> Vec<&serde_json::Value> {
        checks
            .iter()
            .filter(|c| c["scenario"] == scenario && c["requirement"] == requirement)
            .collect()
    };
    for scenario in ["steady", "rolling"] {
        let capacity = of(scenario, "max_open_connections_per_server");
        assert_eq!(capacity.len(), 2, "one per transport in {scenario}");
        for c in capacity {
            // 12 clients over 3 replicas: the busiest holds at least 4 at its peak.
            assert!(c["measured"].as_f64().unwrap() >= 4.0, "{c}");
            assert_eq!(c["pass"], false, "{c}");
        }
    }
    assert!(of("steady", "max_reconnects_per_second").is_empty());
    assert!(of("steady", "max_served_again").is_empty());
    for c in of("rolling", "max_reconnects_per_second") {
        let run = s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["scenario"] == "rolling" && r["transport"] == c["transport"])
            .unwrap();
        assert_eq!(
            c["measured"],
            run["deploy_peak_reconnects_per_second"].as_f64().unwrap()
        );
        assert!(c["measured"].as_f64().unwrap() >= 1.0, "clients moved: {c}");
        assert_eq!(c["pass"], true, "{c}");
    }
    let served = of("rolling", "max_served_again");
    assert_eq!(served.len(), 2);
    for c in served {
        assert!(c["measured"].as_f64().unwrap() > 1.0, "{c}");
        assert_eq!(c["pass"], false, "{c}");
        assert_eq!(c["limit"], 1.0);
    }
    let text = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(text.contains("≤ 2 open connections per server"), "{text}");
    assert!(
        text.contains("every client served again within 1 ms of a restart"),
        "{text}"
    );
}
