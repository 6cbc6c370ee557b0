//! Faults that break real-time apps, simulated: each test runs the real transports through simulated
//! middleboxes and asserts numbers against what the setup implies. Nothing here is computed by formula.

use rtsim::metrics::RunMetrics;
use rtsim::scenario::Plan;
use rtsim::transport::TransportKind;

/// Runs a profile; returns (scenario, transport, metrics) for every run.
fn simulate(profile: &str) -> Vec<(String, TransportKind, RunMetrics)> {
    let plan = Plan::from_text("faults.toml", profile).unwrap_or_else(|e| panic!("{e}"));
    let report = rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).expect("simulation runs");
    report
        .runs
        .into_iter()
        .map(|r| (r.scenario, r.transport, r.metrics))
        .collect()
}

fn run_of<'a>(
    runs: &'a [(String, TransportKind, RunMetrics)],
    scenario: &str,
    transport: TransportKind,
) -> &'a RunMetrics {
    &runs
        .iter()
        .find(|(s, t, _)| s == scenario && *t == transport)
        .expect("run present")
        .2
}

#[test]
fn nat_forgets_idle_sse_streams_unless_heartbeats_keep_them_alive() {
    // One event every 70 s, a 30 s NAT: without heartbeats the mapping dies between events.
    let profile = |heartbeat: &str| {
        format!(
            r#"
name = "nat"
duration = "5m"
clients = 10
transports = ["sse"]
[workload]
events_per_second = {rate}
arrival = "uniform"
[sse]
heartbeat = "{heartbeat}"
[[scenario]]
name = "mobile-nat"
[scenario.nat]
idle_timeout = "30s"
"#,
            rate = 1.0 / 70.0
        )
    };
    let silent = &simulate(&profile("off"))[0].2;
    assert!(silent.published >= 3, "{silent:?}");
    // Every stream died silently and nobody noticed: everything after the first expiry is gone.
    assert!(silent.silent_deaths >= 10, "{silent:?}");
    assert_eq!(silent.undetected, silent.silent_deaths, "{silent:?}");
    assert_eq!(silent.delivered, 0, "{silent:?}");
    assert_eq!(silent.lost, silent.expected);

    let kept = &simulate(&profile("15s"))[0].2;
    assert_eq!(
        kept.silent_deaths, 0,
        "heartbeats keep the mapping fresh: {kept:?}"
    );
    assert_eq!(kept.lost, 0, "{kept:?}");
    assert!(
        kept.latency_ms.p99.unwrap() < 100.0,
        "{:?}",
        kept.latency_ms
    );
}

#[test]
fn nat_expiry_is_detected_by_the_sse_client_timeout_and_resumed() {
    // One event every 70 s; heartbeats every 45 s do not beat a 30 s NAT. The client timeout
    // (2 × 45 s + 2 × latency) notices and Last-Event-ID recovers what was missed.
    let profile = r#"
name = "nat-detect"
duration = "5m"
clients = 10
transports = ["sse"]
[workload]
events_per_second = 0.0142857
arrival = "uniform"
[sse]
heartbeat = "45s"
[[scenario]]
name = "mobile-nat"
[scenario.nat]
idle_timeout = "30s"
"#;
    let m = &simulate(profile)[0].2;
    assert!(m.silent_deaths >= 10, "{m:?}");
    assert!(m.detections >= 10, "{m:?}");
    // Death at 30 s of silence, noticed at 90.1 s of silence: about a minute later.
    assert!(
        (m.time_to_detect_ms.p50.unwrap() - 60_100.0).abs() < 1_500.0,
        "{:?}",
        m.time_to_detect_ms
    );
    assert_eq!(m.lost, 0, "resumed with Last-Event-ID: {m:?}");
    assert!(
        m.latency_ms.max.unwrap() > 10_000.0,
        "some events waited for the reconnect: {m:?}"
    );
}

const PROXY_PROFILE: &str = r#"
name = "proxy"
duration = "4m"
clients = 10
transports = ["long-polling", "sse"]
[workload]
events_per_second = 1.0
event_bytes = 100
arrival = "uniform"
[sse]
client_timeout = "off"
"#;

#[test]
fn buffering_proxy_stalls_sse_until_accel_buffering_is_off() {
    let buffered = format!(
        "{PROXY_PROFILE}[[scenario]]\nname = \"nginx\"\n[scenario.proxy]\nbuffer_bytes = 8192\nhonor_accel_buffering = true\n"
    );
    let runs = simulate(&buffered);
    let sse = run_of(&runs, "nginx", TransportKind::Sse);
    // ~130 bytes of stream per event: an 8 KiB buffer holds about a minute of events.
    assert!(
        sse.latency_ms.p50.unwrap() > 20_000.0,
        "{:?}",
        sse.latency_ms
    );
    assert!(
        sse.latency_ms.p50.unwrap() < 60_000.0,
        "{:?}",
        sse.latency_ms
    );
    let long_polling = run_of(&runs, "nginx", TransportKind::LongPolling);
    assert!(
        long_polling.latency_ms.p50.unwrap() < 60.0,
        "{:?}",
        long_polling.latency_ms
    );
    assert_eq!(long_polling.lost, 0);

    let unbuffered = buffered.replace(
        "client_timeout = \"off\"",
        "client_timeout = \"off\"\naccel_buffering_off = true",
    );
    let runs = simulate(&unbuffered);
    let sse = run_of(&runs, "nginx", TransportKind::Sse);
    assert!(sse.latency_ms.p50.unwrap() < 60.0, "{:?}", sse.latency_ms);
    assert_eq!(sse.lost, 0);

    let ignored = unbuffered.replace(
        "honor_accel_buffering = true",
        "honor_accel_buffering = false",
    );
    let sse = &simulate(&ignored)[1].2;
    assert!(
        sse.latency_ms.p50.unwrap() > 20_000.0,
        "a proxy that ignores the header still buffers"
    );
}

#[test]
fn proxy_refusing_the_upgrade_stops_websocket_unless_it_falls_back() {
    let profile = |fallback: &str| {
        format!(
            r#"
name = "blocked"
duration = "2m"
clients = 10
transports = ["websocket"]
[websocket]
fallback = "{fallback}"
[[scenario]]
name = "strict-proxy"
[scenario.proxy]
block_websocket = true
"#
        )
    };
    let stuck = &simulate(&profile("none"))[0].2;
    assert_eq!(stuck.delivered, 0, "{stuck:?}");
    assert!(stuck.refused_upgrades >= 10, "{stuck:?}");
    assert_eq!(stuck.fallbacks, 0);
    assert_eq!(stuck.lost, stuck.expected);

    let fell_back = &simulate(&profile("long-polling"))[0].2;
    assert_eq!(fell_back.fallbacks, 10, "{fell_back:?}");
    assert_eq!(fell_back.refused_upgrades, 10);
    assert_eq!(fell_back.lost, 0, "{fell_back:?}");
    assert!(fell_back.delivered > 0 && fell_back.delivered == fell_back.expected);
    assert!(
        fell_back.latency_ms.p50.unwrap() < 60.0,
        "{:?}",
        fell_back.latency_ms
    );
}

#[test]
fn network_switch_loses_only_what_cannot_resume() {
    let profile = |resume: bool, notify: bool| {
        format!(
            r#"
name = "switch"
duration = "4m"
clients = 12
transports = ["polling", "sse", "websocket"]
[websocket]
resume = {resume}
[[scenario]]
name = "wifi-to-cellular"
[scenario.switch]
every = "1m"
outage = "2s"
notify = {notify}
"#
        )
    };
    // Clients that are not told (`notify = false`): every connection dies silently.
    let runs = simulate(&profile(false, false));
    for transport in [TransportKind::Polling, TransportKind::Sse] {
        let m = run_of(&runs, "wifi-to-cellular", transport);
        assert!(m.silent_deaths >= 12, "{transport}: {m:?}");
        assert_eq!(m.lost, 0, "{transport} resumes from its cursor: {m:?}");
        assert!(m.reconnects > 0, "{transport}");
    }
    let forgetful = run_of(&runs, "wifi-to-cellular", TransportKind::Websocket);
    assert!(forgetful.silent_deaths >= 12, "{forgetful:?}");
    assert!(
        forgetful.lost > 0,
        "without resume the gap is lost: {forgetful:?}"
    );
    // Detection needs the ping window (20 s + 10 s): about that long after each death.
    assert!(
        forgetful.time_to_detect_ms.p50.unwrap() > 15_000.0,
        "{:?}",
        forgetful.time_to_detect_ms
    );

    // Told (the default, as browsers and mobile OSes are): connections fail at once, nothing is
    // silent, and the WebSocket client is back after the outage instead of a ping window later.
    let told = simulate(&profile(false, true));
    for transport in [TransportKind::Polling, TransportKind::Sse] {
        let m = run_of(&told, "wifi-to-cellular", transport);
        assert_eq!(m.silent_deaths, 0, "{transport}: {m:?}");
        assert!(m.cuts >= 12, "{transport}: {m:?}");
        assert_eq!(m.lost, 0, "{transport} resumes from its cursor: {m:?}");
    }
    let ws = run_of(&told, "wifi-to-cellular", TransportKind::Websocket);
    assert_eq!(ws.silent_deaths, 0, "{ws:?}");
    assert!(
        ws.disconnected_s < forgetful.disconnected_s / 2.0,
        "told: {} s without a session, silent: {} s",
        ws.disconnected_s,
        forgetful.disconnected_s
    );

    let resumed = simulate(&profile(true, true));
    let m = run_of(&resumed, "wifi-to-cellular", TransportKind::Websocket);
    assert_eq!(m.lost, 0, "{m:?}");
}

#[test]
fn jittered_backoff_spreads_the_reconnect_storm_after_a_restart() {
    let profile = |jitter: f64| {
        format!(
            r#"
name = "storm"
duration = "2m"
clients = 200
transports = ["websocket"]
[reconnect]
initial = "1s"
max = "8s"
jitter = {jitter}
[[scenario]]
name = "deploy"
[scenario.restart]
at = "60s"
down = "5s"
"#
        )
    };
    let synchronised = &simulate(&profile(0.0))[0].2;
    let spread = &simulate(&profile(0.5))[0].2;
    println!(
        "peak reconnect attempts per second: {} without jitter, {} with jitter 0.5",
        synchronised.peak_reconnects_per_second, spread.peak_reconnects_per_second
    );
    // Every client lost its session in the restart (some tried again while the server was down).
    assert!(
        synchronised.reconnects >= 200,
        "{}",
        synchronised.reconnects
    );
    // Without jitter every client retries in the same second.
    assert!(
        synchronised.peak_reconnects_per_second >= 190,
        "{synchronised:?}"
    );
    assert!(
        spread.peak_reconnects_per_second * 10 < synchronised.peak_reconnects_per_second * 7,
        "jitter must flatten the peak: {} vs {}",
        spread.peak_reconnects_per_second,
        synchronised.peak_reconnects_per_second
    );
    assert_eq!(spread.lost, 0);
    assert_eq!(synchronised.lost, 0);
}

#[test]
fn faults_are_deterministic() {
    let profile = r#"
name = "det"
duration = "90s"
clients = 8
[[scenario]]
name = "everything"
[scenario.nat]
idle_timeout = "20s"
[scenario.proxy]
buffer_bytes = 4096
[scenario.switch]
every = "30s"
outage = "2s"
"#;
    let plan = Plan::from_text("det.toml", profile).unwrap();
    let run = || rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).unwrap();
    let (once, twice) = (run(), run());
    let summary = |r| rtsim::report::json::summary_json(r).unwrap();
    assert!(
        summary(&once) == summary(&twice),
        "summaries differ between identical runs"
    );
    for (a, b) in once.runs.iter().zip(&twice.runs) {
        assert!(
            a.metrics.timeline == b.metrics.timeline,
            "{} {}: timelines differ",
            a.scenario,
            a.transport
        );
    }
}

#[test]
fn events_a_proxy_still_holds_at_the_end_are_stranded_not_lost() {
    // nginx defaults hold an event stream until 4 KiB of it gathered: at ~100 bytes an event, half a
    // minute of events is always in the buffer. When the run ends they are still there — stranded in
    // the proxy, not lost by the transport, and the report says where.
    let profile = format!(
        "{PROXY_PROFILE}[[scenario]]\nname = \"nginx\"\n[scenario.proxy]\nlike = \"nginx\"\n"
    );
    let runs = simulate(&profile);
    let sse = run_of(&runs, "nginx", TransportKind::Sse);
    assert!(sse.stranded >= 10, "{sse:?}");
    assert_eq!(sse.stranded_in, vec!["proxy (nginx)".to_string()]);
    assert_eq!(sse.lost, 0, "{sse:?}");
    assert_eq!(sse.delivered + sse.stranded, sse.expected);
    let long_polling = run_of(&runs, "nginx", TransportKind::LongPolling);
    assert_eq!(
        long_polling.stranded, 0,
        "whole answers are never held at the end"
    );
    assert_eq!(long_polling.lost, 0);
}
