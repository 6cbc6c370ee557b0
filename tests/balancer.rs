//! Server replicas behind a load balancer, through the real binary: what a backplane is for, what the
//! balancer's idle timeout cuts, where each policy sends connections, and that it all reproduces.
//! Every figure asserted comes out of the simulation (summary.json), never out of a formula.

mod common;
use common::{files, rtsim, simulate_runs as simulate, temp_dir, u};

use serde_json::Value;

fn replicas_profile(backplane: &str, policy: &str, head: &str, extra: &str) -> String {
    format!(
        r#"
name = "balanced"
duration = "40s"
clients = 30
transports = ["long-polling", "sse", "websocket"]

[workload]
events_per_second = 2.0
arrival = "uniform"

[server]
replicas = 3
backplane = "{backplane}"
backplane_latency = "2ms"
{head}
[[scenario]]
name = "behind-a-balancer"
[scenario.balancer]
policy = "{policy}"
{extra}
"#
    )
}

#[test]
fn without_a_backplane_round_robin_clients_miss_what_other_replicas_publish() {
    let dir = temp_dir("backplane");
    let none = simulate(
        &dir,
        "none",
        &replicas_profile("none", "round-robin", "", ""),
    );
    let shared = simulate(
        &dir,
        "shared",
        &replicas_profile("shared", "round-robin", "", ""),
    );
    assert_eq!(none.len(), 3);
    for (lonely, bused) in none.iter().zip(&shared) {
        let transport = lonely["transport"].as_str().unwrap();
        assert!(u(lonely, "published") >= 40, "{transport}: {lonely}");
        // Each client's connection is on one replica, which knows only a third of the events.
        let delivered = u(lonely, "delivered") as f64 / u(lonely, "expected") as f64;
        assert!(
            u(lonely, "lost") > 0 && delivered < 0.5,
            "{transport} without a backplane delivered {delivered}: {lonely}"
        );
        assert_eq!(u(bused, "lost"), 0, "{transport} with a backplane: {bused}");
        assert_eq!(u(bused, "delivered"), u(bused, "expected"), "{transport}");
        for run in [lonely, bused] {
            let replicas = run["per_replica"].as_array().expect("per_replica");
            assert_eq!(replicas.len(), 3, "{transport}");
            let published: u64 = replicas.iter().map(|r| u(r, "events_published")).sum();
            assert_eq!(
                published,
                u(run, "published"),
                "published round the replicas"
            );
            for r in replicas {
                assert!(
                    u(r, "connections") > 0 && u(r, "requests") > 0,
                    "round-robin reaches every replica: {r}"
                );
            }
            let ends: u64 = replicas.iter().map(|r| u(r, "open_connections_end")).sum();
            assert!(ends >= 30, "every client holds a connection: {run}");
            assert!(u(run, "open_connections_peak") >= ends, "{run}");
            let imbalance = run["imbalance"].as_f64().expect("imbalance measured");
            assert!(
                (1.0..1.5).contains(&imbalance),
                "round-robin spreads 30 clients evenly: {imbalance}"
            );
        }
    }
}

#[test]
fn the_balancer_idle_timeout_cuts_silent_streams_and_heartbeats_keep_them() {
    let dir = temp_dir("idle");
    // One event every 20 s, a 5 s idle timeout: an SSE stream without heartbeats goes silent.
    let profile = |heartbeat: &str| {
        format!(
            r#"
name = "idle"
duration = "60s"
clients = 6
transports = ["sse"]

[workload]
events_per_second = 0.05
arrival = "uniform"

[sse]
heartbeat = "{heartbeat}"

[server]
replicas = 2

[[scenario]]
name = "idle"
[scenario.balancer]
idle_timeout = "5s"
"#
        )
    };
    let silent = &simulate(&dir, "silent", &profile("off"))[0];
    assert!(
        u(silent, "cuts") >= 6,
        "every stream was cut at least once: {silent}"
    );
    assert!(u(silent, "reconnects") >= 6, "{silent}");
    let kept = &simulate(&dir, "kept", &profile("2s"))[0];
    assert_eq!(u(kept, "cuts"), 0, "heartbeats are traffic: {kept}");
    assert_eq!(u(kept, "lost"), 0, "{kept}");
}

#[test]
fn sticky_sends_one_address_to_one_replica_and_least_connections_spreads() {
    let dir = temp_dir("policies");
    // All clients share one host (one address): sticky keeps them on one replica.
    let profile =
        |policy: &str| replicas_profile("shared", policy, "[simulation]\nclient_hosts = 1\n", "");
    let sticky = simulate(&dir, "sticky", &profile("sticky"));
    for run in &sticky {
        let loaded: Vec<u64> = run["per_replica"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| u(r, "connections"))
            .collect();
        assert_eq!(
            loaded.iter().filter(|&&c| c > 0).count(),
            1,
            "one address, one replica: {loaded:?}"
        );
        assert_eq!(u(run, "lost"), 0, "{run}");
        assert_eq!(run["imbalance"].as_f64(), Some(3.0), "{run}");
    }
    let least = simulate(&dir, "least", &profile("least-connections"));
    for run in &least {
        for r in run["per_replica"].as_array().unwrap() {
            assert!(u(r, "open_connections_end") >= 9, "{run}");
        }
    }
}

#[test]
fn replicas_balancer_and_restart_reproduce_byte_for_byte() {
    let dir = temp_dir("determinism");
    let profile = replicas_profile(
        "none",
        "least-connections",
        "",
        "[scenario.restart]\nat = \"15s\"\ndown = \"2s\"\n\
         [scenario.deploy]\nat = \"20s\"\nevery = \"5s\"\ndrain = \"2s\"\n",
    );
    let first = simulate(&dir, "a", &profile);
    // The same profile file again, into another folder.
    let out = dir.join("b");
    let output = rtsim(&[
        "simulate",
        dir.join("a.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    assert!(first.iter().all(|r| r["per_replica"].is_array()));
    // The restart and each replica's deploy phase, each with its own window, in time order.
    for run in &first {
        let causes: Vec<&str> = restarts(run)
            .iter()
            .map(|w| w["cause"].as_str().unwrap())
            .collect();
        assert_eq!(causes, ["restart", "deploy", "deploy", "deploy"], "{run}");
    }
    let a = files(&dir.join("a"));
    assert!(!a.is_empty());
    assert_eq!(a, files(&out));
}

#[test]
fn a_rolling_deploy_moves_every_client_and_loses_nothing_over_a_shared_backplane() {
    let dir = temp_dir("deploy");
    for (name, drain) in [("hard", ""), ("drained", "drain = \"4s\"\n")] {
        let runs = simulate(
            &dir,
            name,
            &replicas_profile(
                "shared",
                "round-robin",
                "",
                &format!("[scenario.deploy]\nat = \"12s\"\nevery = \"8s\"\n{drain}"),
            ),
        );
        for run in &runs {
            let transport = run["transport"].as_str().unwrap();
            // Every replica restarted once: every client had to connect again at least once (a
            // long poll's move is a resend on a new connection, not a lost session: count the
            // connect attempts round the restarts, not `reconnects`).
            let moved: u64 = restarts(run)
                .iter()
                .map(|w| u(w, "reconnect_attempts"))
                .sum();
            assert!(moved >= 30, "{name} {transport}: {run}");
            assert!(u(run, "peak_reconnects_per_second") > 0, "{run}");
            // A shared backplane and resumable transports: nothing lost across the deploy.
            assert_eq!(u(run, "lost"), 0, "{name} {transport}: {run}");
            // Every client is served again at the end, on the replicas that were up to take it.
            let ends: u64 = run["per_replica"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| u(r, "open_connections_end"))
                .sum();
            assert!(ends >= 30, "{name} {transport}: {run}");
            assert!(run["imbalance"].as_f64().is_some(), "{run}");
        }
    }
}

/// A run's restarts (summary.json `restarts`).
fn restarts(run: &Value) -> &Vec<Value> {
    run["restarts"]
        .as_array()
        .unwrap_or_else(|| panic!("restarts in {run}"))
}

#[test]
fn a_drain_closes_every_connection_before_the_stop_a_hard_stop_cuts_them_and_a_spread_drain_spreads_the_reconnects(
) {
    let dir = temp_dir("drain");
    // Deploy moments half-way between events, so that the drain does not fall where every long
    // poll has just been answered.
    let profile = |drain: &str| {
        replicas_profile(
            "shared",
            "round-robin",
            "",
            &format!("[scenario.deploy]\nat = \"12500ms\"\nevery = \"8s\"\ndrain = \"{drain}\"\n"),
        )
        .replace("events_per_second = 2.0", "events_per_second = 1.0")
    };
    let hard = simulate(&dir, "hard", &profile("0s"));
    let drained = simulate(&dir, "drained", &profile("4s"));
    let spread = simulate(
        &dir,
        "spread",
        &profile("4s").replace("drain = \"4s\"", "drain = \"4s\"\nclose_spread = \"3s\""),
    );
    for (stopped, graceful) in hard.iter().zip(&drained) {
        let transport = stopped["transport"].as_str().unwrap();
        for (name, run) in [("hard", stopped), ("drained", graceful)] {
            let windows = restarts(run);
            assert_eq!(windows.len(), 3, "one per replica: {run}");
            assert_eq!(u(run, "lost"), 0, "{name} {transport}: {run}");
            assert!(
                run["deploy_peak_reconnects_per_second"].as_u64().unwrap() > 0,
                "{run}"
            );
            for w in windows {
                assert_eq!(w["cause"], "deploy");
                assert_eq!(u(w, "unserved"), 0, "{name} {transport}: {w}");
                assert!(w["served_again_s"].as_f64().is_some(), "{w}");
                // Every client the replica held had to go elsewhere.
                assert!(u(w, "open_at_drain") > 0, "{w}");
                assert!(
                    u(w, "reconnect_attempts") >= u(w, "open_at_drain") / 2,
                    "{w}"
                );
            }
        }
        for (w_hard, w_drained) in restarts(stopped).iter().zip(restarts(graceful)) {
            // A hard stop cuts every connection the replica holds ...
            assert_eq!(
                u(w_hard, "open_at_stop"),
                u(w_hard, "open_at_drain"),
                "{transport}: {w_hard}"
            );
            // ... a drain has closed them all gracefully by then: WebSocket 1001, SSE streams
            // ended, held long polls answered with `Connection: close`, idle keep-alive closed.
            assert_eq!(u(w_drained, "open_at_stop"), 0, "{transport}: {w_drained}");
        }
        // Closes spread over 3 s of the drain (HAProxy's close-spread-time): the clients of a
        // replica reconnect over those seconds, not all in one, and still nothing is cut or lost.
        let spread_run = spread
            .iter()
            .find(|r| r["transport"] == graceful["transport"])
            .unwrap();
        assert_eq!(u(spread_run, "lost"), 0, "{transport}: {spread_run}");
        for (w_drained, w_spread) in restarts(graceful).iter().zip(restarts(spread_run)) {
            assert_eq!(u(w_spread, "open_at_stop"), 0, "{transport}: {w_spread}");
            assert_eq!(u(w_spread, "unserved"), 0, "{transport}: {w_spread}");
            assert!(
                u(w_spread, "peak_reconnects_per_second")
                    < u(w_drained, "peak_reconnects_per_second"),
                "{transport}: spread {w_spread} vs at once {w_drained}"
            );
        }
        assert!(
            u(spread_run, "deploy_peak_reconnects_per_second")
                < u(graceful, "deploy_peak_reconnects_per_second"),
            "{transport}"
        );
        // What the drain changes for the clients is measured, not asserted: print it for the record.
        let figures = |run: &Value| {
            restarts(run)
                .iter()
                .map(|w| {
                    format!(
                        "peak {}/s served {}s",
                        w["peak_reconnects_per_second"], w["served_again_s"]
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "{transport}: hard stop [{}], drain 4s [{}], drain 4s spread 3s [{}]",
            figures(stopped),
            figures(graceful),
            figures(spread_run)
        );
    }
}

/// What a drain buys when the balancer learns of a stop only from its health check: without a drain
/// the stopped replica stays in rotation for `health_check`, so reconnecting clients are sent to it and
/// refused, back off and try again; a drain deregisters it first, so every reconnect lands on a
/// running replica. Both out of the simulation. (Each replica is down 12 s, longer than the health
/// check, so the balancer does notice each stop.)
#[test]
fn without_a_drain_a_stopped_replica_stays_in_rotation_until_its_health_check_fails() {
    let dir = temp_dir("health-check");
    let profile = |drain: &str| {
        replicas_profile(
            "shared",
            "round-robin",
            "",
            &format!(
                "health_check = \"10s\"\n[scenario.deploy]\nat = \"12500ms\"\nevery = \"20s\"\n\
                 drain = \"{drain}\"\ndown = \"12s\"\n"
            ),
        )
        .replace("duration = \"40s\"", "duration = \"80s\"")
        .replace("events_per_second = 2.0", "events_per_second = 1.0")
        .replace(
            "transports = [\"long-polling\", \"sse\", \"websocket\"]",
            "transports = [\"long-polling\", \"websocket\"]",
        )
    };
    let hard = simulate(&dir, "hard", &profile("0s"));
    let drained = simulate(&dir, "drained", &profile("4s"));
    let served = |run: &Value| run["served_again_s"].as_f64().unwrap();
    let p99 = |run: &Value| run["latency_ms"]["p99"].as_f64().unwrap();
    for (h, d) in hard.iter().zip(&drained) {
        let transport = h["transport"].as_str().unwrap();
        eprintln!(
            "{transport}: served again {:.3} s hard vs {:.3} s drained; p99 {:.0} vs {:.0} ms",
            served(h),
            served(d),
            p99(h),
            p99(d)
        );
        // The clients sent to the stopped replica wait a backoff more before they are served.
        assert!(served(h) > served(d) + 0.5, "{transport}: {h}\n{d}");
        assert!(p99(h) > p99(d), "{transport}: {h}\n{d}");
        assert_eq!(u(h, "lost"), 0, "{transport}: {h}");
        assert_eq!(u(d, "lost"), 0, "{transport}: {d}");
    }
    let faults = std::fs::read_to_string(dir.join("hard").join("faults.csv")).unwrap();
    assert_eq!(
        faults.matches("fails its health check").count(),
        3 * 2,
        "each replica once per transport:\n{faults}"
    );
    let faults = std::fs::read_to_string(dir.join("drained").join("faults.csv")).unwrap();
    assert!(!faults.contains("fails its health check"), "{faults}");
}
