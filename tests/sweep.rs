//! End-to-end tests of `rtsim sweep`: the real binary on a tiny profile.

mod common;
use common::{rtsim, temp_dir};

const PROFILE: &str = r#"
name = "tiny"
duration = "30s"
clients = 3
transports = ["polling", "sse"]

[polling]
interval = "5s"

[sse]
heartbeat = "5s"
"#;

#[test]
fn a_sweep_writes_json_csv_markdown_and_charts_that_follow_the_parameter() {
    let dir = temp_dir("e2e");
    let profile = dir.join("tiny.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let out = dir.join("sweep");
    let output = rtsim(&[
        "sweep",
        profile.to_str().unwrap(),
        "--vary",
        "polling.interval=1s,2s,4s",
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "2",
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Swept polling.interval over 3 points (6 runs)"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(out.join("sweep.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["profile"], "tiny");
    assert_eq!(json["parameters"], serde_json::json!(["polling.interval"]));
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    let rate = |point: &serde_json::Value, transport: &str| {
        point["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["transport"] == transport)
            .unwrap()["requests_per_second"]
            .as_f64()
            .unwrap()
    };
    let polling: Vec<f64> = points.iter().map(|p| rate(p, "polling")).collect();
    let sse: Vec<f64> = points.iter().map(|p| rate(p, "sse")).collect();
    assert_eq!(points[0]["values"]["polling.interval"], "1s");
    assert!(
        polling[0] > polling[1] && polling[1] > polling[2],
        "polling's request rate falls as its interval grows: {polling:?}"
    );
    assert!(
        (polling[0] - 3.0).abs() < 0.5,
        "3 clients polling every second: {polling:?}"
    );
    assert!(
        sse.windows(2).all(|w| w[0] == w[1]),
        "SSE does not care about the polling interval: {sse:?}"
    );
    for key in [
        "latency_ms",
        "lost",
        "bytes_per_delivery",
        "scenario",
        "seed",
    ] {
        assert!(points[0]["runs"][0].get(key).is_some(), "{key}");
    }
    assert!(json["crossovers"].is_array());

    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 2);
    assert!(csv.starts_with("polling.interval,scenario,transport,"));
    assert!(csv.contains("\n4s,baseline,sse,"), "{csv}");
    assert!(out.join("sweep.md").exists());
    for metric in [
        "latency_ms.p50",
        "requests_per_second",
        "lost",
        "bytes_per_delivery",
    ] {
        for ext in ["svg", "png"] {
            let chart = out.join("charts").join(format!("sweep-{metric}.{ext}"));
            assert!(
                chart.metadata().unwrap().len() > 1000,
                "{}",
                chart.display()
            );
        }
    }

    // Same inputs, same bytes, whatever the number of threads; --json prints sweep.json.
    let again = dir.join("again");
    let output = rtsim(&[
        "sweep",
        profile.to_str().unwrap(),
        "--vary",
        "polling.interval=1s,2s,4s",
        "--out",
        again.to_str().unwrap(),
        "--jobs",
        "1",
        "--json",
    ]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), text);
    for file in [
        "sweep.json",
        "sweep.csv",
        "sweep.md",
        "charts/sweep-lost.svg",
        "charts/sweep-lost.png",
    ] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_sweeps_fail_with_clear_messages() {
    let dir = temp_dir("errors");
    let profile = dir.join("tiny.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let p = profile.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--vary", "sse.heartbeat=60s..5s:5s"],
            "start 60s is after the end 5s",
        ),
        (&["--vary", "sse.heartbeat=5s..60s"], "has no step"),
        (
            &["--vary", "sse.heartbeet=5s,10s"],
            "unknown field `heartbeet`",
        ),
        (
            &["--vary", "sse.heartbeat=5s,30s"],
            "with sse.heartbeat = \"30s\"",
        ),
        (
            &["--vary", "clients=1,2", "--metric", "speed"],
            "unknown metric `speed`",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["sweep", p, "--quiet", "--out", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let output = rtsim(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
