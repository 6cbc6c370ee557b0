//! The design brief's own numbers, measured from the simulation (through the library, not a formula):
//! polling every N seconds delivers after about N/2 plus the one-way latency and costs about C/N
//! requests per second; SSE and WebSocket deliver in about the one-way latency.

use rtsim::metrics::RunMetrics;
use rtsim::scenario::Plan;
use rtsim::transport::TransportKind;

fn run(profile: &str) -> Vec<(TransportKind, RunMetrics)> {
    let plan = Plan::from_text("brief.toml", profile).expect("valid profile");
    let report = rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).expect("simulation runs");
    report
        .runs
        .into_iter()
        .map(|r| (r.transport, r.metrics))
        .collect()
}

const PROFILE: &str = r#"
name = "brief"
duration = "3m"
clients = 40
[network]
latency = "50ms"
jitter = "0ms"
[workload]
events_per_second = 1.0
event_bytes = 200
arrival = "poisson"
[polling]
interval = "4s"
"#;

/// The profile restricted to some transports (top-level keys must precede the first table).
fn only(transports: &[&str]) -> String {
    let list = transports
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    PROFILE.replace("[network]", &format!("transports = [{list}]\n[network]"))
}

#[test]
fn polling_delay_is_half_the_interval_plus_latency_and_load_is_clients_over_interval() {
    let (_, m) = &run(&only(&["polling"]))[0];
    // N/2 + latency = 2000 + 50 ms. Poisson arrivals are uniform within the interval, so the mean wait
    // is half of it; allow 10 % for sampling.
    assert!(
        (m.latency_ms.mean.unwrap() - 2050.0).abs() < 205.0,
        "mean delay {} ms",
        m.latency_ms.mean.unwrap()
    );
    // Nobody waits more than an interval plus a round trip.
    assert!(
        m.latency_ms.max.unwrap() <= 4000.0 + 150.0,
        "max delay {} ms",
        m.latency_ms.max.unwrap()
    );
    // C/N = 40 / 4 s = 10 requests per second.
    assert!(
        (m.requests_per_second - 10.0).abs() < 0.5,
        "{} req/s",
        m.requests_per_second
    );
    assert_eq!(m.lost, 0);
    assert_eq!(m.duplicates, 0);
}

#[test]
fn sse_and_websocket_deliver_in_about_the_one_way_latency() {
    for (transport, m) in run(&only(&["sse", "websocket"])) {
        assert!(
            m.latency_ms.p50.unwrap() >= 50.0 && m.latency_ms.p50.unwrap() <= 53.0,
            "{transport}: median {} ms for a 50 ms one-way latency",
            m.latency_ms.p50.unwrap()
        );
        assert!(
            m.latency_ms.p99.unwrap() <= 60.0,
            "{transport}: p99 {} ms",
            m.latency_ms.p99.unwrap()
        );
        assert_eq!(m.lost, 0, "{transport}");
        assert_eq!(m.duplicates, 0, "{transport}");
        assert!(m.delivered > 0);
        // One connection per client for the whole run, and no request per event.
        assert_eq!(m.connections_opened, 40, "{transport}");
        assert!(m.requests <= 40, "{transport}: {} requests", m.requests);
    }
}

#[test]
fn long_polling_is_near_push_but_pays_a_request_per_event() {
    let (_, m) = &run(&only(&["long-polling"]))[0];
    // An event usually finds a poll waiting: one-way latency. Sometimes the next poll is still on its
    // way (a round trip more), so the tail is longer than SSE's.
    assert!(
        m.latency_ms.p50.unwrap() <= 55.0,
        "median {} ms",
        m.latency_ms.p50.unwrap()
    );
    assert!(
        m.latency_ms.p99.unwrap() <= 260.0,
        "p99 {} ms",
        m.latency_ms.p99.unwrap()
    );
    // About one answered request per client per event: ~1 event/s × 40 clients.
    assert!(
        m.requests_per_second > 30.0 && m.requests_per_second < 45.0,
        "{}",
        m.requests_per_second
    );
    assert_eq!(m.lost, 0);
}

#[test]
fn polling_clients_poll_at_every_phase_not_in_lockstep() {
    // An event every 2 s exactly and a 4 s poll: had the clients arrived together they would poll in
    // step, and the mean delay would follow the events' phase against that one schedule (2296 ms once).
    // Joining over `client_ramp` with a seeded uniform first-poll phase, the population's mean delay is
    // half the interval plus the one-way latency, as the analysis says — within 5 %.
    let profile = only(&["polling"]).replace("events_per_second = 1.0", "events_per_second = 0.5");
    let profile = profile.replace("arrival = \"poisson\"", "arrival = \"uniform\"");
    let (_, m) = &run(&profile)[0];
    let mean = m.latency_ms.mean.expect("polling delivered events");
    assert!(
        (mean - 2050.0).abs() < 0.05 * 2050.0,
        "mean delay {mean} ms"
    );
    assert_eq!(m.lost, 0);
}
