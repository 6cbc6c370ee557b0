//! Metrics of one run: the numbers users compare, as computed by the recorder from what the simulation
//! observed. Pure data and small pure functions; no simulation here.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::recorder::{round3, Bucket};

/// Latency percentiles in milliseconds (0 when nothing was measured).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Mean, milliseconds.
    pub mean: f64,
    /// Median, milliseconds.
    pub p50: f64,
    /// 95th percentile, milliseconds.
    pub p95: f64,
    /// 99th percentile, milliseconds.
    pub p99: f64,
    /// Largest value seen, milliseconds.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Self {
            mean: round3(h.mean() / 1000.0),
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// What happened over simulated time, for charts and CSV exports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// One bucket per simulated second.
    pub buckets: Vec<Bucket>,
    /// Per published event: (publish time in seconds, mean delivery delay in ms if anyone got it).
    pub event_delay_ms: Vec<(f64, Option<f64>)>,
    /// Moments a fault struck: (seconds, what).
    pub fault_marks: Vec<(f64, String)>,
}

/// The measured outcome of one run (one scenario × one transport × one seed).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunMetrics {
    /// Events the server published during the run.
    pub published: u64,
    /// Event deliveries owed: published × clients.
    pub expected: u64,
    /// Distinct (event, client) deliveries.
    pub delivered: u64,
    /// Deliveries owed that never arrived, not even while clients recovered after the run.
    pub lost: u64,
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
    /// (bytes_down + bytes_up) / delivered.
    pub bytes_per_delivery: f64,
    /// TCP connections the clients opened.
    pub connections_opened: u64,
    /// Times a client set out to reconnect after losing its connection.
    pub reconnects: u64,
    /// WebSocket clients that fell back to another transport after a refused upgrade.
    pub fallbacks: u64,
    /// WebSocket upgrades answered with an HTTP error instead of 101.
    pub refused_upgrades: u64,
    /// From a connection dying silently to its client noticing, milliseconds.
    pub time_to_detect_ms: Percentiles,
    /// Silent deaths that clients noticed (by letting the connection go).
    pub detections: u64,
    /// Silent deaths still unnoticed when the run ended.
    pub undetected: u64,
    /// Connections the network killed silently (NAT expiry, network switch).
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
    /// Upstream messages the server received.
    pub upstream_received: u64,
    /// Upstream message latency, send to server receipt, milliseconds.
    pub upstream_latency_ms: Percentiles,
    /// Most session reconnect attempts (connects by clients that had a session before) in any one
    /// simulated second: the load a mass disconnect throws at the server.
    pub peak_reconnects_per_second: u64,
    /// Time series, exported separately (CSV, charts).
    #[serde(skip)]
    pub timeline: Timeline,
}
