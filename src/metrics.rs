//! Metrics of one run: the numbers users compare, as computed by the recorder from what the simulation
//! observed. Pure data and small pure functions; no simulation here.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::recorder::{round3, Bucket};

/// Latency percentiles in milliseconds; every field is `None` (JSON `null`) when nothing was measured —
/// a number not measured is never shown as zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Mean, milliseconds.
    pub mean: Option<f64>,
    /// Median, milliseconds.
    pub p50: Option<f64>,
    /// 95th percentile, milliseconds.
    pub p95: Option<f64>,
    /// 99th percentile, milliseconds.
    pub p99: Option<f64>,
    /// Largest value seen, milliseconds.
    pub max: Option<f64>,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| Some(round3(us as f64 / 1000.0));
        Self {
            mean: Some(round3(h.mean() / 1000.0)),
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }

    /// The percentile `p` (50, 95 or 99; anything else reads the largest value), if measured.
    pub fn at(&self, p: u32) -> Option<f64> {
        match p {
            50 => self.p50,
            95 => self.p95,
            99 => self.p99,
            _ => self.max,
        }
    }
}

/// Percentiles drawn from fewer published events than this carry a sample-size warning.
pub const MIN_EVENTS_FOR_PERCENTILES: u64 = 30;

/// What happened over simulated time, for charts and CSV exports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// One bucket per simulated second.
    pub buckets: Vec<Bucket>,
    /// Per published event: (publish time in seconds, mean delivery delay in ms if anyone got it).
    pub event_delay_ms: Vec<(f64, Option<f64>)>,
    /// Per published event, in the same order: how its delay spread across the clients that received
    /// it (`None` if none did). Empty in shard files written before it existed.
    #[serde(default)]
    pub event_spread_ms: Vec<Option<Spread>>,
    /// Moments a fault struck: (seconds, what).
    pub fault_marks: Vec<(f64, String)>,
    /// The delivery latency distribution: (latency in ms, share of deliveries at or below it, 0–1),
    /// ascending; see [`cdf_points`].
    pub latency_cdf_ms: Vec<(f64, f64)>,
    /// Behind a load balancer: per replica, its open connections in each simulated second (the
    /// time-weighted mean over that second). Empty for one server and in older shard files.
    #[serde(default)]
    pub open_connections: Vec<Vec<f64>>,
}

/// How one event's delivery delay spread across the clients that received it, milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// 5th percentile over clients.
    pub p5: f64,
    /// Median over clients.
    pub p50: f64,
    /// 95th percentile over clients.
    pub p95: f64,
}

impl Spread {
    /// Nearest-rank percentiles of `latencies` (ms), rounded to µs; `None` for no latencies.
    pub fn of(latencies: &[f32]) -> Option<Self> {
        if latencies.is_empty() {
            return None;
        }
        let mut sorted = latencies.to_vec();
        sorted.sort_by(f32::total_cmp);
        let at = |q: f64| {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            round3(f64::from(sorted[rank - 1]))
        };
        Some(Self {
            p5: at(0.05),
            p50: at(0.50),
            p95: at(0.95),
        })
    }
}

/// Quantiles at which [`cdf_points`] samples a distribution: every 1 % and a finer tail up to 99.9 %.
const CDF_QUANTILES: usize = 100;
const CDF_TAIL: [f64; 9] = [
    0.991, 0.992, 0.993, 0.994, 0.995, 0.996, 0.997, 0.998, 0.999,
];

/// A compact cumulative distribution of a histogram of microseconds: (milliseconds, quantile) pairs,
/// ascending in both, at most ~110 points (empty when nothing was recorded).
pub fn cdf_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut quantiles: Vec<f64> = (0..=CDF_QUANTILES)
        .map(|i| i as f64 / CDF_QUANTILES as f64)
        .collect();
    quantiles.extend(CDF_TAIL);
    quantiles.sort_by(f64::total_cmp);
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(quantiles.len());
    for q in quantiles {
        let ms = round3(h.value_at_quantile(q) as f64 / 1000.0);
        match points.last_mut() {
            // Keep one point per latency: the highest share reached at it.
            Some(last) if last.0 == ms => last.1 = q,
            _ => points.push((ms, q)),
        }
    }
    points
}

/// The measured outcome of one run (one scenario × one transport × one seed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// Events the server published during the run.
    pub published: u64,
    /// Event deliveries owed: published × clients.
    pub expected: u64,
    /// Distinct (event, client) deliveries.
    pub delivered: u64,
    /// Deliveries owed that never arrived, not even while clients recovered after the run, and that no
    /// middlebox still held at the end (those are `stranded`).
    pub lost: u64,
    /// Deliveries owed that a middlebox (a buffering proxy) still held when the run and its drain ended:
    /// they would arrive once it released them, so they depend on the run's length, unlike `lost`.
    #[serde(default)]
    pub stranded: u64,
    /// The middleboxes that held the stranded events (e.g. `proxy (nginx)`).
    #[serde(default)]
    pub stranded_in: Vec<String>,
    /// Copies of events a client had already received.
    pub duplicates: u64,
    /// Delivery latency, publish to receipt, milliseconds.
    pub latency_ms: Percentiles,
    /// HTTP requests the server answered (a WebSocket handshake counts as one).
    pub requests: u64,
    /// Requests per second of simulated time at the server.
    pub requests_per_second: f64,
    /// Bytes from server to clients on the clients' sockets, HTTP headers and framing included.
    pub bytes_down: u64,
    /// Bytes from clients to the server on the clients' sockets.
    pub bytes_up: u64,
    /// (bytes_down + bytes_up) / delivered; `None` when nothing was delivered.
    pub bytes_per_delivery: Option<f64>,
    /// TCP connections the clients opened.
    pub connections_opened: u64,
    /// Times a client set out to reconnect after losing its connection.
    pub reconnects: u64,
    /// WebSocket clients that fell back to another transport after a refused upgrade.
    pub fallbacks: u64,
    /// WebSocket upgrades answered with an HTTP error instead of 101.
    pub refused_upgrades: u64,
    /// From a session connection dying silently to its client noticing, milliseconds.
    pub time_to_detect_ms: Percentiles,
    /// Silent deaths of session connections that clients noticed (by letting the connection go).
    pub detections: u64,
    /// Silent deaths of session connections still unnoticed when the run ended.
    pub undetected: u64,
    /// Session connections the network killed silently (NAT expiry, network switch).
    pub silent_deaths: u64,
    /// Connections cut openly by a proxy's read timeout or a server restart.
    pub cuts: u64,
    /// Total time, summed over clients, spent without a working connection, seconds.
    pub disconnected_s: f64,
    /// Total time, summed over clients, the radio spent in its high-power state, seconds.
    pub radio_active_s: f64,
    /// radio_active_s per client, seconds.
    pub radio_active_per_client_s: f64,
    /// Upstream messages clients sent.
    pub upstream_sent: u64,
    /// Distinct upstream messages the server received (duplicates of a resent message dropped).
    pub upstream_received: u64,
    /// Upstream messages sent that the server never received: `upstream_sent - upstream_received`.
    pub upstream_lost: u64,
    /// Upload connections (the HTTP transports' second connection for `POST /messages`) the network
    /// killed silently; apart from `silent_deaths`, which describe the session's channel.
    pub upload_silent_deaths: u64,
    /// Upload connections' silent deaths the clients noticed.
    pub upload_detections: u64,
    /// Upload connections' silent deaths still unnoticed when the run ended.
    pub upload_undetected: u64,
    /// From an upload connection dying silently to its client noticing, milliseconds.
    pub upload_time_to_detect_ms: Percentiles,
    /// Upstream message latency, send to server receipt, milliseconds.
    pub upstream_latency_ms: Percentiles,
    /// Most session reconnect attempts (connects by clients that had a session before) in any one
    /// simulated second: the load a mass disconnect throws at the server.
    pub peak_reconnects_per_second: u64,
    /// Resumes the server could not honour (events gone from its history, or a cursor ahead of its
    /// newest event), each signalled to the client and counted by it.
    #[serde(default)]
    pub resume_resets: u64,
    /// Open connections at the server side, most at any moment (all replicas together): counted on
    /// the balancer's connections to the replicas, or by a lone server on its own sockets (a WebSocket
    /// session's after its upgrade too). Absent only for runs written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_connections_peak: Option<u64>,
    /// Open connections at the server side, time-weighted mean over the run (all replicas together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_connections_mean: Option<f64>,
    /// Open connections on the busiest replica over the mean per replica, at the end of the run;
    /// `null` when no replica had any open.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub imbalance: Option<Option<f64>>,
    /// Each replica's own figures, in replica order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_replica: Option<Vec<ReplicaMetrics>>,
    /// Requests of the WebSocket fallback's engine.io sessions refused with `400 {"code":1,"message":
    /// "Session ID unknown"}` (the session lives on another replica, or died with a restarted server),
    /// as the clients saw them during the measured run. Present when any client fell back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_refusals: Option<u64>,
    /// Each replica restart (a rolling deploy's phase or a `[scenario.restart]`), in time order,
    /// with what happened around it; absent when the scenario restarts nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<Vec<RestartMetrics>>,
    /// Most session reconnect attempts in any one simulated second from the deploy's first drain to
    /// the end of its last restart's window; absent without a `[scenario.deploy]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_peak_reconnects_per_second: Option<u64>,
    /// The longest any restart's `served_again_s` (see [`RestartMetrics`]); `null` when some client
    /// was not served again after some restart; absent when the scenario restarts nothing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub served_again_s: Option<Option<f64>>,
    /// Time series, exported separately (CSV, charts).
    #[serde(skip)]
    pub timeline: Timeline,
}

/// A field that is present (possibly `null`) is `Some`: absent is `None` by `default`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// One server replica's figures behind a load balancer, counted at its own accept loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaMetrics {
    /// 0-based, as the host `server-<replica>`.
    pub replica: u32,
    /// TCP connections it accepted.
    pub connections: u64,
    /// HTTP requests it answered (a WebSocket handshake counts as one).
    pub requests: u64,
    /// Events published on it (round the replicas).
    pub events_published: u64,
    pub open_connections_peak: u64,
    /// Time-weighted mean over the run.
    pub open_connections_mean: f64,
    /// Open when the measured run ended.
    pub open_connections_end: u64,
}

/// What happened around one replica restart. Its window runs from the moment the replica stops
/// taking connections (its drain, or its stop when it does not drain) until it is back up plus
/// [`RESTART_SETTLE`], cut short where the next restart's window begins (windows never overlap).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartMetrics {
    /// The replica (0-based, host `server-<replica>`); `null` for a `[scenario.restart]`, which
    /// restarts every replica (or the lone server) at once.
    pub replica: Option<u32>,
    /// `"deploy"` or `"restart"`.
    pub cause: String,
    /// When it stopped taking new connections (its drain; its stop without one), seconds.
    pub drain_at_s: f64,
    /// When it stopped (its connections still open were cut), seconds.
    pub stop_at_s: f64,
    /// When it was back up, seconds.
    pub up_at_s: f64,
    /// The end of its window, seconds.
    pub window_end_s: f64,
    /// Times a client set out to reconnect after losing its session, in the window.
    pub reconnects: u64,
    /// Session connect attempts by clients that had a connection before, in the window (the load
    /// the fleet sees; a long poll answered `Connection: close` is one, without a lost session).
    pub reconnect_attempts: u64,
    /// Most reconnect attempts in one simulated second of the window.
    pub peak_reconnects_per_second: u64,
    /// Deliveries owed for events published in the window that never arrived (nor are stranded).
    pub lost: u64,
    /// Copies of events a client already had, received in the window.
    pub duplicates: u64,
    /// The slowest delivery of an event published in the window, milliseconds; `null` if none was
    /// delivered.
    pub max_latency_ms: Option<f64>,
    /// From `drain_at_s` until every client had received an event published at or after it,
    /// seconds: the time until every client is served again. Its floor is the wait for the next
    /// event plus its delivery; `null` when some client never was.
    pub served_again_s: Option<f64>,
    /// Clients never served an event published at or after `drain_at_s`.
    pub unserved: u64,
    /// Connections open on the replica (all replicas for a `[scenario.restart]`) when it began to
    /// drain, and when it stopped: those still open at the stop were cut. `null` where not counted
    /// (a lone server counts its own).
    pub open_at_drain: Option<u64>,
    pub open_at_stop: Option<u64>,
}

/// How long after a restarted replica is back up its window still counts reconnects, losses and
/// duplicates: clients moved by the restart are still arriving (backoff, SSE retry) and the fleet
/// rebalances.
pub const RESTART_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_nearest_rank_over_clients() {
        assert_eq!(Spread::of(&[]), None);
        let one = Spread::of(&[7.0]).unwrap();
        assert_eq!((one.p5, one.p50, one.p95), (7.0, 7.0, 7.0));
        let latencies: Vec<f32> = (1..=100).rev().map(|v| v as f32).collect();
        let s = Spread::of(&latencies).unwrap();
        assert_eq!((s.p5, s.p50, s.p95), (5.0, 50.0, 95.0));
    }

    #[test]
    fn cdf_points_rise_to_one_and_stay_compact() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3).unwrap();
        assert!(cdf_points(&h).is_empty());
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let points = cdf_points(&h);
        assert!(points.len() <= 110, "{}", points.len());
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "{points:?}"
        );
        assert_eq!(points.last().unwrap().1, 1.0);
        let median = points.iter().find(|p| p.1 >= 0.5).unwrap();
        assert!((median.0 - 500.0).abs() < 2.0, "{median:?}");
    }
}
