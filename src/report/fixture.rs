//! A hand-made report for the exporters' unit tests: two scenarios × four transports with metrics
//! chosen to exercise every chart and sentence (losses, reconnects, fault marks, an empty run).
//! Test-only; nothing here is simulated.

use std::path::PathBuf;

use crate::metrics::{Percentiles, RunMetrics, Spread, Timeline};
use crate::profile::{Profile, Source};
use crate::recorder::Bucket;
use crate::scenario::Plan;
use crate::transport::TransportKind;

use super::Report;

/// The profile behind [`report`].
pub const PROFILE: &str = r#"
name = "fixture"
description = "Live scores for a stadium app"
seed = 7
duration = "60s"
clients = 10

[[scenario]]
name = "office"

[[scenario]]
name = "mobile"
description = "Phones behind a carrier NAT"
nat = { idle_timeout = "30s" }
switch = { every = "20s", outage = "3s" }
"#;

/// The validated plan of [`PROFILE`].
pub fn plan() -> Plan {
    let source = Source {
        path: PathBuf::from("fixture.toml"),
        text: PROFILE.to_string(),
    };
    let profile: Profile = source.parse().expect("the fixture parses");
    Plan::from_profile(&profile, &source).expect("the fixture is valid")
}

fn percentiles(p50: f64) -> Percentiles {
    Percentiles {
        mean: Some(p50 * 1.1),
        p50: Some(p50),
        p95: Some(p50 * 2.0),
        p99: Some(p50 * 3.0),
        max: Some(p50 * 4.0),
    }
}

/// Metrics of one made-up run: `p50` sets the latency scale, `rps` the server load, `lost` the losses,
/// `faults` the marks.
pub fn metrics(
    p50: f64,
    rps: f64,
    lost: u64,
    reconnects: u64,
    faults: &[(f64, &str)],
) -> RunMetrics {
    let clients = 10;
    let published = 60;
    let buckets = (0..60)
        .map(|s| Bucket {
            published: 1,
            deliveries: if (20..25).contains(&s) && lost > 0 {
                0
            } else {
                clients
            },
            latency_sum_ms: p50 * clients as f64,
            requests: rps.ceil() as u64,
            connections: u64::from(s == 0) * clients,
            reconnects: u64::from(s == 21) * reconnects,
            silent_deaths: u64::from(s == 20 && lost > 0) * clients,
            cuts: 0,
        })
        .collect();
    let event_delay_ms = (0..published)
        .map(|i| {
            let at = i as f64;
            let delay = if (20.0..25.0).contains(&at) && lost > 0 {
                None
            } else {
                Some(p50)
            };
            (at, delay)
        })
        .collect::<Vec<_>>();
    // The spread across clients: wide while the fault lasts, narrow otherwise.
    let event_spread_ms = event_delay_ms
        .iter()
        .map(|&(at, delay): &(f64, Option<f64>)| {
            delay.map(|d| Spread {
                p5: d * 0.8,
                p50: d,
                p95: if (25.0..30.0).contains(&at) {
                    d * 20.0
                } else {
                    d * 1.5
                },
            })
        })
        .collect();
    let latency_cdf_ms = [0.0, 0.5, 0.95, 0.99, 1.0]
        .iter()
        .zip([p50 * 0.5, p50, p50 * 2.0, p50 * 3.0, p50 * 4.0])
        .map(|(&q, ms)| (ms, q))
        .collect();
    let expected = published * clients;
    RunMetrics {
        published,
        expected,
        delivered: expected - lost,
        lost,
        latency_ms: percentiles(p50),
        requests: (60.0 * rps) as u64,
        requests_per_second: rps,
        bytes_down: 100_000,
        bytes_up: 20_000,
        bytes_per_delivery: Some(120_000.0 / (expected - lost) as f64),
        connections_opened: clients + reconnects,
        reconnects,
        detections: u64::from(lost > 0) * 3,
        time_to_detect_ms: if lost > 0 {
            percentiles(30_000.0)
        } else {
            Percentiles::default()
        },
        disconnected_s: lost as f64 * 0.5,
        radio_active_s: 300.0,
        radio_active_per_client_s: 30.0,
        open_connections_peak: None,
        open_connections_mean: None,
        imbalance: None,
        per_replica: None,
        session_refusals: None,
        restarts: None,
        deploy_peak_reconnects_per_second: None,
        served_again_s: None,
        timeline: Timeline {
            buckets,
            event_delay_ms,
            event_spread_ms,
            fault_marks: faults
                .iter()
                .map(|&(at, what)| (at, what.to_string()))
                .collect(),
            latency_cdf_ms,
            open_connections: Vec::new(),
        },
        ..RunMetrics::default()
    }
}

/// The whole made-up report: in `mobile`, SSE loses events to the NAT and polling is slow everywhere.
pub fn report() -> Report {
    let plan = plan();
    let specs = plan.runs();
    let marks: &[(f64, &str)] = &[(20.0, "network switch"), (40.0, "network switch")];
    let metrics = specs
        .iter()
        .map(|spec| {
            let mobile = spec.scenario == 1;
            let faults = if mobile { marks } else { &[] };
            match (spec.transport, mobile) {
                (TransportKind::Polling, _) => metrics(2500.0, 2.0, 0, 0, faults),
                (TransportKind::LongPolling, _) => {
                    metrics(50.0, 10.0, 0, u64::from(mobile) * 4, faults)
                }
                (TransportKind::Sse, true) => {
                    let mut nat = faults.to_vec();
                    nat.push((31.0, "NAT mapping dropped"));
                    metrics(50.0, 0.3, 50, 10, &nat)
                }
                (TransportKind::Sse, false) => metrics(50.0, 0.2, 0, 0, faults),
                (TransportKind::Websocket, _) => {
                    metrics(48.0, 0.17, 0, u64::from(mobile) * 10, faults)
                }
            }
        })
        .collect();
    Report::new(plan, &specs, metrics)
}

/// [`report`] as if behind a load balancer: three replicas deployed one after another (drain 4 s,
/// back 2 s after the stop) and a fourth added at 45 s, with each replica's open connections per
/// second moving as the deploy moves the clients.
pub fn balanced_report() -> Report {
    let mut report = report();
    for run in &mut report.runs {
        let timeline = &mut run.metrics.timeline;
        for k in 0..3u32 {
            let drain = 10.0 + 12.0 * f64::from(k);
            timeline
                .fault_marks
                .push((drain, format!("deploy: server-{k} drains")));
            timeline
                .fault_marks
                .push((drain + 4.0, format!("deploy: server-{k} stops")));
        }
        timeline
            .fault_marks
            .push((45.0, "scale-out: server-3 added".to_string()));
        timeline.fault_marks.sort_by(|a, b| a.0.total_cmp(&b.0));
        timeline.open_connections = (0..4usize)
            .map(|k| {
                (0..60usize)
                    .map(|s| {
                        let drain = 10 + 12 * k;
                        let away = k < 3 && (drain..drain + 6).contains(&s);
                        match (k, s) {
                            (3, s) if s < 45 => 0.0,
                            (3, _) => 1.0,
                            _ if away => 0.0,
                            _ => 3.0 + k as f64 + (s % 7) as f64 / 7.0,
                        }
                    })
                    .collect()
            })
            .collect();
    }
    report
}

/// A profile that crowds the charts: six scenarios with long names, every fault kind.
pub const CROWDED: &str = r#"
name = "crowded"
seed = 7
duration = "1000s"
clients = 10

[[scenario]]
name = "baseline"

[[scenario]]
name = "proxy-blocks-websocket"
proxy = { block_websocket = true }

[[scenario]]
name = "load-balancer-sticky-sessions"

[[scenario]]
name = "mobile-nat"
nat = { idle_timeout = "30s" }

[[scenario]]
name = "network-switch"
switch = { every = "20s", outage = "3s" }

[[scenario]]
name = "goal-rush-restart"
restart = { at = "30s", down = "5s" }
"#;

/// A report on [`CROWDED`] with values that crowd their labels: near-equal latencies in the tens of
/// seconds, long value labels, dozens of fault marks, and SSE and WebSocket on identical curves.
pub fn crowded_report() -> Report {
    let source = Source {
        path: PathBuf::from("crowded.toml"),
        text: CROWDED.to_string(),
    };
    let profile: Profile = source.parse().expect("the crowded fixture parses");
    let plan = Plan::from_profile(&profile, &source).expect("the crowded fixture is valid");
    let specs = plan.runs();
    let switches: Vec<(f64, &str)> = (0..40)
        .map(|i| (i as f64 * 1.4 + 0.3, "network switch"))
        .collect();
    let metrics = specs
        .iter()
        .map(|spec| {
            let faults: Vec<(f64, &str)> = match spec.scenario {
                3 => vec![(31.0, "NAT mapping dropped"), (33.0, "NAT mapping dropped")],
                4 => switches.clone(),
                5 => vec![(30.0, "server restart")],
                _ => Vec::new(),
            };
            let index = TransportKind::ALL
                .iter()
                .position(|t| *t == spec.transport)
                .unwrap_or(0);
            let p50 = [21_600.0, 23_600.0, 21_900.0, 21_900.0][index];
            let lost = [0, 1234, 56_789, 56_789][index] * u64::from(spec.scenario > 2);
            let mut m = metrics(
                p50,
                [12.34, 10.5, 0.42, 0.42][index],
                lost.min(599),
                7,
                &faults,
            );
            m.disconnected_s = [123.4, 98.7, 101.2, 101.2][index];
            m
        })
        .collect();
    Report::new(plan, &specs, metrics)
}
