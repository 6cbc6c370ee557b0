//! The recorder: what happened during one run, written down as it happens, stamped with simulated time.
//!
//! Clients and the server report deliveries, requests, bytes and connection changes here; `finish` turns
//! the record into [`RunMetrics`]. The recorder never decides anything about the simulation and never reads
//! a wall clock: every timestamp comes from the [`Clock`] it is given.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics::{Percentiles, RunMetrics, Timeline};

/// Where "now" comes from: the simulation's clock, or a real one when serving real clients.
pub trait Clock {
    fn now(&self) -> Duration;
}

/// A shared handle to the run's recorder (the simulation is single-threaded).
pub type SharedRecorder = Rc<RefCell<Recorder>>;

/// Per-client bookkeeping.
#[derive(Default)]
struct ClientRecord {
    /// Bit `id` is set once event `id` has been delivered to this client.
    received: Vec<u64>,
    /// The radio model: when the last packet was, and the high-power time so far.
    last_packet: Option<Duration>,
    radio_active: Duration,
    connections: u32,
    /// Since when the client has had no working connection (`None` while connected).
    down_since: Option<Duration>,
    disconnected: Duration,
    /// When the connection the client is using died, if it did (for time-to-detect).
    died_at: Option<Duration>,
}

/// Counters for one second of simulated time (charts and CSV read these).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    pub published: u64,
    pub deliveries: u64,
    pub latency_sum_ms: f64,
    pub requests: u64,
    pub connections: u64,
    pub reconnects: u64,
}

/// Everything observed in one run.
pub struct Recorder {
    clock: Rc<dyn Clock>,
    radio_tail: Duration,
    /// Publish time of event `id` at index `id - 1`.
    published: Vec<Duration>,
    /// Per event: deliveries and summed latency (for the per-event delay series).
    per_event: Vec<(u32, f64)>,
    clients: Vec<ClientRecord>,
    latency_us: Histogram<u64>,
    upstream_latency_us: Histogram<u64>,
    detect_us: Histogram<u64>,
    delivered: u64,
    duplicates: u64,
    requests: u64,
    connections_opened: u64,
    reconnects: u64,
    fallbacks: u64,
    bytes_down: u64,
    bytes_up: u64,
    upstream_sent: u64,
    upstream_received: u64,
    timeline: Vec<Bucket>,
    /// Moments a fault struck (seconds, label), for charts.
    fault_marks: Vec<(f64, String)>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 day at 3 significant figures.
    Histogram::new_with_bounds(1, 86_400_000_000, 3).expect("valid histogram bounds")
}

impl Recorder {
    pub fn new(clock: Rc<dyn Clock>, clients: usize, radio_tail: Duration) -> Self {
        let mut records = Vec::with_capacity(clients);
        records.resize_with(clients, ClientRecord::default);
        Self {
            clock,
            radio_tail,
            published: Vec::new(),
            per_event: Vec::new(),
            clients: records,
            latency_us: histogram(),
            upstream_latency_us: histogram(),
            detect_us: histogram(),
            delivered: 0,
            duplicates: 0,
            requests: 0,
            connections_opened: 0,
            reconnects: 0,
            fallbacks: 0,
            bytes_down: 0,
            bytes_up: 0,
            upstream_sent: 0,
            upstream_received: 0,
            timeline: Vec::new(),
            fault_marks: Vec::new(),
        }
    }

    pub fn shared(self) -> SharedRecorder {
        Rc::new(RefCell::new(self))
    }

    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    fn bucket(&mut self, at: Duration) -> &mut Bucket {
        let index = at.as_secs() as usize;
        if self.timeline.len() <= index {
            self.timeline.resize(index + 1, Bucket::default());
        }
        &mut self.timeline[index]
    }

    /// The server published the next event; returns its id (ids start at 1).
    pub fn published(&mut self) -> u64 {
        let now = self.now();
        self.published.push(now);
        self.per_event.push((0, 0.0));
        self.bucket(now).published += 1;
        self.published.len() as u64
    }

    /// Number of events published so far.
    pub fn published_count(&self) -> u64 {
        self.published.len() as u64
    }

    /// `client` received event `id` (taken off the wire). Returns false for a duplicate.
    pub fn delivered(&mut self, client: usize, id: u64) -> bool {
        let now = self.now();
        let Some(&published) = id.checked_sub(1).and_then(|i| self.published.get(i as usize)) else {
            // An id the server never published: a protocol bug, not a delivery.
            debug_assert!(false, "client {client} received unknown event {id}");
            return false;
        };
        let record = &mut self.clients[client];
        let (word, bit) = ((id / 64) as usize, id % 64);
        if record.received.len() <= word {
            record.received.resize(word + 1, 0);
        }
        if record.received[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return false;
        }
        record.received[word] |= 1 << bit;
        self.delivered += 1;
        let latency = now.saturating_sub(published);
        self.latency_us
            .saturating_record(latency.as_micros().max(1) as u64);
        let latency_ms = latency.as_secs_f64() * 1e3;
        let event = &mut self.per_event[(id - 1) as usize];
        event.0 += 1;
        event.1 += latency_ms;
        let bucket = self.bucket(now);
        bucket.deliveries += 1;
        bucket.latency_sum_ms += latency_ms;
        true
    }

    /// The server answered an HTTP request (a WebSocket handshake counts as one).
    pub fn request(&mut self) {
        self.requests += 1;
        let now = self.now();
        self.bucket(now).requests += 1;
    }

    /// `client` opened a connection (TCP connect succeeded).
    pub fn connection_opened(&mut self, client: usize) {
        self.connections_opened += 1;
        let now = self.now();
        self.bucket(now).connections += 1;
        self.clients[client].connections += 1;
    }

    /// `client` has a working session again (stream open, first response seen).
    pub fn session_up(&mut self, client: usize) {
        let now = self.now();
        let record = &mut self.clients[client];
        if let Some(since) = record.down_since.take() {
            record.disconnected += now.saturating_sub(since);
        }
    }

    /// `client` lost its session and will reconnect. `detected` is true when the client noticed a silent
    /// death by itself (heartbeat or read timeout) rather than being told (close, error).
    pub fn session_down(&mut self, client: usize) {
        let now = self.now();
        let record = &mut self.clients[client];
        if record.down_since.is_none() {
            record.down_since = Some(now);
        }
    }

    /// `client` starts a reconnect attempt after losing a session.
    pub fn reconnect(&mut self, client: usize) {
        let _ = client;
        self.reconnects += 1;
        let now = self.now();
        self.bucket(now).reconnects += 1;
    }

    /// The network killed `client`'s connection silently now (a fault, seen only by the simulation).
    pub fn connection_died(&mut self, client: usize) {
        let now = self.now();
        let record = &mut self.clients[client];
        if record.died_at.is_none() {
            record.died_at = Some(now);
        }
    }

    /// `client` noticed that its connection is dead (timeout, error or close).
    pub fn death_noticed(&mut self, client: usize) {
        let now = self.now();
        if let Some(died) = self.clients[client].died_at.take() {
            let waited = now.saturating_sub(died);
            self.detect_us
                .saturating_record(waited.as_micros().max(1) as u64);
            // The client was without a working connection from the death, not from the noticing.
            let record = &mut self.clients[client];
            if record.down_since.is_none_or(|since| since > died) {
                record.down_since = Some(died);
            }
        }
    }

    /// A WebSocket client gave up on the upgrade and fell back to another transport.
    pub fn fallback(&mut self) {
        self.fallbacks += 1;
    }

    /// `client`'s socket carried bytes; `down` is server-to-client. Feeds the radio model too.
    pub fn bytes(&mut self, client: usize, down: usize, up: usize) {
        self.bytes_down += down as u64;
        self.bytes_up += up as u64;
        let now = self.now();
        let tail = self.radio_tail;
        let record = &mut self.clients[client];
        if let Some(last) = record.last_packet {
            record.radio_active += now.saturating_sub(last).min(tail);
        }
        record.last_packet = Some(now);
    }

    /// A client sent an upstream message.
    pub fn upstream_sent(&mut self) {
        self.upstream_sent += 1;
    }

    /// The server received an upstream message that was sent at `sent` (carried in the message).
    pub fn upstream_received(&mut self, sent: Duration) {
        self.upstream_received += 1;
        let latency = self.now().saturating_sub(sent);
        self.upstream_latency_us
            .saturating_record(latency.as_micros().max(1) as u64);
    }

    /// A fault struck now (for charts); `label` says which.
    pub fn mark_fault(&mut self, label: impl Into<String>) {
        let at = self.now().as_secs_f64();
        self.fault_marks.push((at, label.into()));
    }

    /// The metrics of the run, which ended at `end`. Events published less than `grace` before the end
    /// are not counted as lost when undelivered (they may still be on their way).
    pub fn finish(&self, end: Duration, grace: Duration) -> RunMetrics {
        let clients = self.clients.len() as u64;
        let published = self.published.len() as u64;
        let cutoff = end.saturating_sub(grace);
        let settled: Vec<u64> = (1..=published)
            .filter(|&id| self.published[(id - 1) as usize] <= cutoff)
            .collect();
        let mut lost = 0u64;
        let mut radio = Duration::ZERO;
        let mut disconnected = Duration::ZERO;
        for record in &self.clients {
            for &id in &settled {
                let (word, bit) = ((id / 64) as usize, id % 64);
                let got = record.received.get(word).is_some_and(|w| w & (1 << bit) != 0);
                if !got {
                    lost += 1;
                }
            }
            radio += match record.last_packet {
                Some(last) => record.radio_active + end.saturating_sub(last).min(self.radio_tail),
                None => Duration::ZERO,
            };
            disconnected += record.disconnected
                + record.down_since.map_or(Duration::ZERO, |since| end.saturating_sub(since));
        }
        let expected = published * clients;
        let duration_s = end.as_secs_f64();
        let timeline = Timeline {
            buckets: self.timeline.clone(),
            event_delay_ms: self
                .per_event
                .iter()
                .zip(&self.published)
                .map(|(&(count, sum), at)| {
                    (at.as_secs_f64(), (count > 0).then(|| sum / count as f64))
                })
                .collect(),
            fault_marks: self.fault_marks.clone(),
            latency_cdf_ms: crate::metrics::cdf_points(&self.latency_us),
        };
        RunMetrics {
            published,
            expected,
            delivered: self.delivered,
            lost,
            in_flight: expected.saturating_sub(self.delivered).saturating_sub(lost),
            duplicates: self.duplicates,
            latency_ms: Percentiles::from_histogram(&self.latency_us),
            requests: self.requests,
            requests_per_second: per_second(self.requests, duration_s),
            bytes_down: self.bytes_down,
            bytes_up: self.bytes_up,
            bytes_per_delivery: if self.delivered == 0 {
                0.0
            } else {
                round3((self.bytes_down + self.bytes_up) as f64 / self.delivered as f64)
            },
            connections_opened: self.connections_opened,
            reconnects: self.reconnects,
            fallbacks: self.fallbacks,
            time_to_detect_ms: Percentiles::from_histogram(&self.detect_us),
            detections: self.detect_us.len(),
            disconnected_s: round3(disconnected.as_secs_f64()),
            radio_active_s: round3(radio.as_secs_f64()),
            radio_active_per_client_s: if clients == 0 {
                0.0
            } else {
                round3(radio.as_secs_f64() / clients as f64)
            },
            upstream_sent: self.upstream_sent,
            upstream_received: self.upstream_received,
            upstream_latency_ms: Percentiles::from_histogram(&self.upstream_latency_us),
            peak_reconnects_per_second: self.timeline.iter().map(|b| b.reconnects).max().unwrap_or(0),
            timeline,
        }
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        round3(count as f64 / seconds)
    } else {
        0.0
    }
}

/// Rounds to three decimals so that reports stay readable and byte-stable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct ManualClock(Cell<Duration>);
    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
    }

    fn at(clock: &ManualClock, ms: u64) {
        clock.0.set(Duration::from_millis(ms));
    }

    #[test]
    fn deliveries_duplicates_and_losses_are_counted() {
        let clock = Rc::new(ManualClock(Cell::new(Duration::ZERO)));
        let mut r = Recorder::new(clock.clone(), 2, Duration::from_secs(10));
        at(&clock, 1000);
        let first = r.published();
        at(&clock, 2000);
        let second = r.published();
        at(&clock, 9_000);
        let late = r.published();
        at(&clock, 1050);
        assert!(r.delivered(0, first));
        at(&clock, 1100);
        assert!(!r.delivered(0, first), "second copy is a duplicate");
        at(&clock, 2150);
        assert!(r.delivered(1, second));
        let m = r.finish(Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(m.published, 3);
        assert_eq!(m.expected, 6);
        assert_eq!(m.delivered, 2);
        assert_eq!(m.duplicates, 1);
        // first→client 1 and second→client 0 never arrived; `late` is within the grace period.
        assert_eq!(m.lost, 2);
        assert_eq!(m.in_flight, 2);
        assert_eq!(late, 3);
        assert!((m.latency_ms.max - 150.0).abs() < 1.0, "{:?}", m.latency_ms);
        assert!((m.latency_ms.mean - 100.0).abs() < 1.0, "{:?}", m.latency_ms);
    }

    #[test]
    fn radio_time_follows_packets_with_a_tail() {
        let clock = Rc::new(ManualClock(Cell::new(Duration::ZERO)));
        let mut r = Recorder::new(clock.clone(), 1, Duration::from_secs(10));
        // Packets at 0 s and 2 s (one burst: 2 s of activity), then at 30 s (tail 10 s in between).
        at(&clock, 0);
        r.bytes(0, 10, 0);
        at(&clock, 2000);
        r.bytes(0, 10, 0);
        at(&clock, 30_000);
        r.bytes(0, 0, 10);
        // Run ends at 35 s: 5 s of tail after the last packet.
        let m = r.finish(Duration::from_secs(35), Duration::ZERO);
        assert_eq!(m.radio_active_s, 2.0 + 10.0 + 5.0);
        assert_eq!(m.bytes_down, 20);
        assert_eq!(m.bytes_up, 10);
    }

    #[test]
    fn detection_time_runs_from_death_to_noticing() {
        let clock = Rc::new(ManualClock(Cell::new(Duration::ZERO)));
        let mut r = Recorder::new(clock.clone(), 1, Duration::from_secs(10));
        at(&clock, 1000);
        r.connection_died(0);
        at(&clock, 31_000);
        r.death_noticed(0);
        r.reconnect(0);
        at(&clock, 32_000);
        r.session_up(0);
        let m = r.finish(Duration::from_secs(40), Duration::ZERO);
        assert_eq!(m.detections, 1);
        assert!((m.time_to_detect_ms.p50 - 30_000.0).abs() < 50.0, "{:?}", m.time_to_detect_ms);
        assert_eq!(m.disconnected_s, 31.0);
        assert_eq!(m.reconnects, 1);
    }
}
