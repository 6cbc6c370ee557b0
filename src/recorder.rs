//! The recorder: what happened during one run, written down as it happens, stamped with simulated time.
//!
//! Clients and the server report deliveries, requests, bytes and connection changes here; `finish` turns
//! the record into [`RunMetrics`]. The recorder never decides anything about the simulation and never reads
//! a wall clock: every timestamp comes from the [`Clock`] it is given.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics::{Percentiles, RunMetrics, Timeline};
use crate::net::Purpose;

/// Where "now" comes from: the simulation's clock, or a real one when serving real clients.
pub trait Clock {
    fn now(&self) -> Duration;
}

/// A shared handle to the run's recorder (the simulation is single-threaded).
pub type SharedRecorder = Rc<RefCell<Recorder>>;

/// Per-client bookkeeping.
#[derive(Default)]
struct ClientRecord {
    /// The radio model: when the last packet was, and the high-power time so far.
    last_packet: Option<Duration>,
    radio_active: Duration,
    connections: u32,
    /// Since when the client has had no working connection (`None` while connected).
    down_since: Option<Duration>,
    disconnected: Duration,
}

/// Which client has received which event: one bit per (event, client), a row of clients per event.
///
/// By event rather than by client because a broadcast delivers one event to every client in turn: the
/// bits it sets lie side by side in one row, where a bitmap per client put each delivery's bit in a
/// block of its own, out of cache at 10,000 clients.
struct Received {
    /// Row `id` holds event `id`'s bits, `words` words of them; rows are added as events are
    /// delivered.
    bits: Vec<u64>,
    words: usize,
}

impl Received {
    fn new(clients: usize) -> Self {
        Self {
            bits: Vec::new(),
            words: clients.div_ceil(64).max(1),
        }
    }

    /// The word and bit of (`client`, `id`); `None` for an id too large to have a row (a middlebox
    /// may name any id; the recorder only marks ids it published).
    fn slot(&self, client: usize, id: u64) -> Option<(usize, u64)> {
        let row = usize::try_from(id).ok()?.checked_mul(self.words)?;
        Some((row.checked_add(client / 64)?, 1 << (client % 64)))
    }

    /// Whether `client` has received event `id`.
    fn has(&self, client: usize, id: u64) -> bool {
        self.slot(client, id)
            .and_then(|(word, bit)| self.bits.get(word).map(|w| w & bit != 0))
            .unwrap_or(false)
    }

    /// Records that `client` received event `id` (one the recorder published); false if it had
    /// already.
    fn mark(&mut self, client: usize, id: u64) -> bool {
        let (word, bit) = self
            .slot(client, id)
            .expect("a published event's id has a row");
        if self.bits.len() <= word {
            let rows = word / self.words + 1;
            self.bits.resize(rows * self.words, 0);
        }
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        fresh
    }
}

/// A client socket that is open, as the recorder knows it.
struct OpenConnection {
    client: usize,
    purpose: Purpose,
    /// When the network killed it silently, if it did.
    died: Option<Duration>,
}

/// Counters for one second of simulated time (charts and CSV read these).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub published: u64,
    pub deliveries: u64,
    pub latency_sum_ms: f64,
    pub requests: u64,
    pub connections: u64,
    /// Session connect attempts by clients that had a session before (the reconnect load).
    pub reconnects: u64,
    /// Connections the network killed silently (NAT expiry, network switch).
    pub silent_deaths: u64,
    /// Connections a proxy cut (read timeout) or a server restart closed.
    pub cuts: u64,
}

/// Everything observed in one run.
pub struct Recorder {
    clock: Rc<dyn Clock>,
    radio_tail: Duration,
    /// Publish time of event `id` at index `id - 1`.
    published: Vec<Duration>,
    /// Per event: deliveries and summed latency (for the per-event delay series).
    per_event: Vec<(u32, f64)>,
    /// Per event: each client's latency, ms (for the spread across clients in the per-event series).
    per_event_latencies: Vec<Vec<f32>>,
    clients: Vec<ClientRecord>,
    /// Who received what (see [`Received`]).
    received: Received,
    /// Open client sockets by client-side address.
    connections: BTreeMap<SocketAddr, OpenConnection>,
    /// The client that last opened a socket from each address (kept after it closes).
    owners: BTreeMap<SocketAddr, usize>,
    /// (client, event) deliveries still held by a middlebox at the end, and which middleboxes held them.
    stranded: std::collections::BTreeSet<(usize, u64)>,
    stranded_in: std::collections::BTreeSet<String>,
    latency_us: Histogram<u64>,
    upstream_latency_us: Histogram<u64>,
    detect_us: Histogram<u64>,
    /// Time to detect a silent death of an upload connection (kept apart from the session's).
    upload_detect_us: Histogram<u64>,
    upload_silent_deaths: u64,
    delivered: u64,
    duplicates: u64,
    requests: u64,
    connections_opened: u64,
    reconnects: u64,
    fallbacks: u64,
    refused_upgrades: u64,
    session_refusals: u64,
    bytes_down: u64,
    bytes_up: u64,
    upstream_sent: u64,
    upstream_received: u64,
    timeline: Vec<Bucket>,
    /// Moments a fault struck (seconds, label), for charts.
    fault_marks: Vec<(f64, String)>,
    /// The end of the measured run: publishing stops, cost counters freeze, and only deliveries (late
    /// ones included) are still recorded while clients recover.
    closed_at: Option<Duration>,
    /// Added to the recorder's event numbers to make the ids on the wire (0 in simulations; the
    /// hub's epoch-based base in `rtsim serve`).
    id_base: u64,
    /// Resumes the server could not honour exactly, as clients were told (gap or ahead).
    resume_resets: u64,
    /// Replica restarts watched for their own figures (see [`Recorder::watch_restart`]).
    restarts: Vec<RestartWatch>,
}

/// One watched restart: its window and what has been counted in it so far.
struct RestartWatch {
    figures: crate::metrics::RestartMetrics,
    start: Duration,
    end: Duration,
    /// Per client: when it first received an event published at or after `start`.
    served: Vec<Option<Duration>>,
    /// Reconnect attempts per second of the window (index 0 = the second `start` falls in).
    attempts: Vec<u64>,
    max_latency: Option<Duration>,
}

/// A restart to watch (see [`Recorder::watch_restart`]).
#[derive(Clone, Debug)]
pub struct RestartPlan {
    /// `None` for a `[scenario.restart]` (every replica, or the lone server).
    pub replica: Option<u32>,
    /// `"deploy"` or `"restart"`.
    pub cause: &'static str,
    pub drain_at: Duration,
    pub stop_at: Duration,
    pub up_at: Duration,
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
            per_event_latencies: Vec::new(),
            clients: records,
            received: Received::new(clients),
            connections: BTreeMap::new(),
            owners: BTreeMap::new(),
            stranded: Default::default(),
            stranded_in: Default::default(),
            latency_us: histogram(),
            upstream_latency_us: histogram(),
            detect_us: histogram(),
            upload_detect_us: histogram(),
            upload_silent_deaths: 0,
            delivered: 0,
            duplicates: 0,
            requests: 0,
            connections_opened: 0,
            reconnects: 0,
            fallbacks: 0,
            refused_upgrades: 0,
            session_refusals: 0,
            bytes_down: 0,
            bytes_up: 0,
            upstream_sent: 0,
            upstream_received: 0,
            timeline: Vec::new(),
            fault_marks: Vec::new(),
            closed_at: None,
            id_base: 0,
            resume_resets: 0,
            restarts: Vec::new(),
        }
    }

    /// Watches these restarts for their own figures: each gets the window from its drain to its
    /// return plus [`crate::metrics::RESTART_SETTLE`], cut where the next one's begins.
    pub fn watch_restarts(&mut self, mut plans: Vec<RestartPlan>) {
        plans.sort_by_key(|p| (p.drain_at, p.replica));
        let starts: Vec<Duration> = plans.iter().map(|p| p.drain_at).collect();
        let clients = self.clients.len();
        self.restarts = plans
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let mut end = p.up_at + crate::metrics::RESTART_SETTLE;
                if let Some(&next) = starts[i + 1..].iter().find(|&&s| s > p.drain_at) {
                    end = end.min(next);
                }
                RestartWatch {
                    figures: crate::metrics::RestartMetrics {
                        replica: p.replica,
                        cause: p.cause.to_string(),
                        drain_at_s: round3(p.drain_at.as_secs_f64()),
                        stop_at_s: round3(p.stop_at.as_secs_f64()),
                        up_at_s: round3(p.up_at.as_secs_f64()),
                        window_end_s: round3(end.as_secs_f64()),
                        reconnects: 0,
                        reconnect_attempts: 0,
                        peak_reconnects_per_second: 0,
                        lost: 0,
                        duplicates: 0,
                        max_latency_ms: None,
                        served_again_s: None,
                        unserved: 0,
                        open_at_drain: None,
                        open_at_stop: None,
                    },
                    start: p.drain_at,
                    end,
                    served: vec![None; clients],
                    attempts: Vec::new(),
                    max_latency: None,
                }
            })
            .collect();
    }

    /// The watched restart of `replica` by `cause` that is due at `at` counted `open` connections at
    /// its drain (`stopping` false) or its stop.
    pub fn restart_open(
        &mut self,
        (replica, cause): (Option<u32>, &str),
        at: Duration,
        stopping: bool,
        open: u64,
    ) {
        let watch = self.restarts.iter_mut().find(|w| {
            let f = &w.figures;
            let due = if stopping { f.stop_at_s } else { f.drain_at_s };
            f.replica == replica && f.cause == cause && due <= round3(at.as_secs_f64()) && {
                let slot = if stopping {
                    f.open_at_stop
                } else {
                    f.open_at_drain
                };
                slot.is_none()
            }
        });
        if let Some(w) = watch {
            let slot = if stopping {
                &mut w.figures.open_at_stop
            } else {
                &mut w.figures.open_at_drain
            };
            *slot = Some(open);
        }
    }

    /// The watched restarts whose window holds `at`.
    fn windows_at(&mut self, at: Duration) -> impl Iterator<Item = &mut RestartWatch> {
        self.restarts
            .iter_mut()
            .filter(move |w| w.start <= at && at < w.end)
    }

    /// Event ids on the wire are `base + n` for the recorder's event `n` (see `id_base`).
    pub fn set_id_base(&mut self, base: u64) {
        self.id_base = base;
    }

    /// A client was told the server could not resume it from its cursor (a gap or a cursor ahead).
    pub fn resume_reset(&mut self) {
        self.resume_resets += 1;
    }

    /// Ends the measured run at `at` (see `closed_at`).
    pub fn close(&mut self, at: Duration) {
        self.closed_at = Some(at);
    }

    /// True once the measured run is over: the publisher and scheduled faults stop.
    pub fn is_closed(&self) -> bool {
        self.closed_at.is_some()
    }

    /// True while cost counters still count.
    fn measuring(&self, now: Duration) -> bool {
        self.closed_at.is_none_or(|closed| now <= closed)
    }

    /// Every published event has reached every client.
    pub fn all_delivered(&self) -> bool {
        self.delivered >= self.published.len() as u64 * self.clients.len() as u64
    }

    /// Every upstream message sent during the measured run has reached the server.
    pub fn upstream_settled(&self) -> bool {
        self.upstream_received >= self.upstream_sent
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
        self.per_event_latencies.push(Vec::new());
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
        let Some(id) = id.checked_sub(self.id_base) else {
            debug_assert!(false, "client {client} received unknown event {id}");
            return false;
        };
        let Some(&published) = id
            .checked_sub(1)
            .and_then(|i| self.published.get(i as usize))
        else {
            // An id the server never published: a protocol bug, not a delivery.
            debug_assert!(false, "client {client} received unknown event {id}");
            return false;
        };
        if !self.received.mark(client, id) {
            self.duplicates += 1;
            for w in self.windows_at(now) {
                w.figures.duplicates += 1;
            }
            return false;
        }
        self.delivered += 1;
        let latency = now.saturating_sub(published);
        for w in &mut self.restarts {
            if published >= w.start {
                w.served[client].get_or_insert(now);
                if published < w.end {
                    w.max_latency = w.max_latency.max(Some(latency));
                }
            }
        }
        self.latency_us
            .saturating_record(latency.as_micros().max(1) as u64);
        let latency_ms = latency.as_secs_f64() * 1e3;
        let event = &mut self.per_event[(id - 1) as usize];
        event.0 += 1;
        event.1 += latency_ms;
        self.per_event_latencies[(id - 1) as usize].push(latency_ms as f32);
        let bucket = self.bucket(now);
        bucket.deliveries += 1;
        bucket.latency_sum_ms += latency_ms;
        true
    }

    /// The server answered an HTTP request (a WebSocket handshake counts as one).
    pub fn request(&mut self) {
        let now = self.now();
        if self.measuring(now) {
            self.requests += 1;
            self.bucket(now).requests += 1;
        }
    }

    /// `client` opened a connection (TCP connect succeeded) from `local`.
    pub fn connection_opened(&mut self, client: usize, local: SocketAddr, purpose: Purpose) {
        let now = self.now();
        if self.measuring(now) {
            self.connections_opened += 1;
            self.bucket(now).connections += 1;
        }
        self.clients[client].connections += 1;
        self.owners.insert(local, client);
        self.connections.insert(
            local,
            OpenConnection {
                client,
                purpose,
                died: None,
            },
        );
    }

    /// The client let go of its connection from `local`. If the network had killed it silently, this is
    /// when the client noticed: the wait is the time to detect.
    pub fn connection_closed(&mut self, local: SocketAddr) {
        let Some(connection) = self.connections.remove(&local) else {
            return;
        };
        if let Some(died) = connection.died {
            let waited = self.now().saturating_sub(died);
            let histogram = match connection.purpose {
                Purpose::Session => &mut self.detect_us,
                Purpose::Upstream => &mut self.upload_detect_us,
            };
            histogram.saturating_record(waited.as_micros().max(1) as u64);
        }
    }

    /// The network killed the connection from `local` silently (a fault only the simulation sees).
    /// Returns the client it belonged to.
    pub fn connection_died(&mut self, local: SocketAddr, cause: &'static str) -> Option<usize> {
        let now = self.now();
        self.mark_fault_at(now, cause);
        let connection = self.connections.get_mut(&local)?;
        if connection.died.is_some() {
            return Some(connection.client);
        }
        connection.died = Some(now);
        let (client, purpose) = (connection.client, connection.purpose);
        if purpose == Purpose::Session {
            // The client is without a working session from now, whenever it notices.
            let record = &mut self.clients[client];
            if record.down_since.is_none() {
                record.down_since = Some(now);
            }
            self.bucket(now).silent_deaths += 1;
        } else {
            // An upload connection's death is the upload channel's, not the session's.
            self.upload_silent_deaths += 1;
        }
        Some(client)
    }

    /// A connection reported dead came back to life (a NAT re-created its mapping before anything was
    /// lost on it): its death is taken back.
    pub fn connection_revived(&mut self, local: SocketAddr) {
        let Some(connection) = self.connections.get_mut(&local) else {
            return;
        };
        let Some(died) = connection.died.take() else {
            return;
        };
        let client = connection.client;
        if self.clients[client].down_since == Some(died) {
            self.clients[client].down_since = None;
        }
        let bucket = self.bucket(died);
        bucket.silent_deaths = bucket.silent_deaths.saturating_sub(1);
    }

    /// After the run: `middlebox` still holds events `ids` for the client connection from `local`.
    /// Those the client never received are stranded, not lost.
    pub fn strand(&mut self, local: SocketAddr, ids: &[u64], middlebox: &str) {
        let Some(&client) = self.owners.get(&local) else {
            return;
        };
        for &id in ids {
            if !self.received.has(client, id) && id >= 1 && id <= self.published.len() as u64 {
                self.stranded.insert((client, id));
                self.stranded_in.insert(middlebox.to_string());
            }
        }
    }

    /// A middlebox or the server cut a connection openly (the client sees it close).
    pub fn connection_cut(&mut self, cause: &'static str) {
        let now = self.now();
        self.mark_fault_at(now, cause);
        self.bucket(now).cuts += 1;
    }

    /// The client-side addresses of `client`'s open connections, in address order.
    pub fn connections_of(&self, client: usize) -> Vec<SocketAddr> {
        self.connections
            .iter()
            .filter(|(_, c)| c.client == client)
            .map(|(addr, _)| *addr)
            .collect()
    }

    /// `client` has a working session again (stream open, first response seen).
    pub fn session_up(&mut self, client: usize) {
        let upto = self
            .closed_at
            .map_or(self.now(), |closed| self.now().min(closed));
        let record = &mut self.clients[client];
        if let Some(since) = record.down_since.take() {
            record.disconnected += upto.saturating_sub(since);
        }
    }

    /// `client` lost its session and will reconnect.
    pub fn session_down(&mut self, client: usize) {
        let now = self.now();
        let record = &mut self.clients[client];
        if record.down_since.is_none() {
            record.down_since = Some(now);
        }
    }

    /// `client` set out to reconnect after losing a session.
    pub fn reconnect(&mut self, client: usize) {
        let _ = client;
        let now = self.now();
        if self.measuring(now) {
            self.reconnects += 1;
            for w in self.windows_at(now) {
                w.figures.reconnects += 1;
            }
        }
    }

    /// `client` tries to open a connection for `purpose`. Session attempts by a client that has had a
    /// connection before are the reconnect load the server sees (a storm after a mass disconnect).
    pub fn connect_attempt(&mut self, client: usize, purpose: Purpose) {
        let now = self.now();
        if purpose == Purpose::Session
            && self.clients[client].connections > 0
            && self.measuring(now)
        {
            self.bucket(now).reconnects += 1;
            for w in self.windows_at(now) {
                w.figures.reconnect_attempts += 1;
                let second = (now.as_secs() - w.start.as_secs()) as usize;
                if w.attempts.len() <= second {
                    w.attempts.resize(second + 1, 0);
                }
                w.attempts[second] += 1;
            }
        }
    }

    /// A WebSocket upgrade was answered with an HTTP error (refused by a proxy or the server).
    pub fn upgrade_refused(&mut self) {
        self.refused_upgrades += 1;
        let now = self.now();
        self.mark_fault_at(now, "upgrade refused");
    }

    /// A fallback (engine.io) request was refused: the server did not know its session. Counted
    /// over the measured run, as reconnects are.
    pub fn session_refused(&mut self) {
        if self.measuring(self.now()) {
            self.session_refusals += 1;
        }
    }

    /// A WebSocket client gave up on the upgrade and fell back to another transport.
    pub fn fallback(&mut self) {
        self.fallbacks += 1;
    }

    /// `client`'s socket carried bytes; `down` is server-to-client. Feeds the radio model too.
    pub fn bytes(&mut self, client: usize, down: usize, up: usize) {
        let now = self.now();
        if !self.measuring(now) {
            return;
        }
        self.bytes_down += down as u64;
        self.bytes_up += up as u64;
        let tail = self.radio_tail;
        let record = &mut self.clients[client];
        if let Some(last) = record.last_packet {
            record.radio_active += now.saturating_sub(last).min(tail);
        }
        record.last_packet = Some(now);
    }

    /// A client sent an upstream message.
    pub fn upstream_sent(&mut self) {
        if self.measuring(self.now()) {
            self.upstream_sent += 1;
        }
    }

    /// The server received an upstream message that was sent at `sent` (carried in the message); the
    /// server calls this once per distinct message (it drops resent duplicates by message id).
    pub fn upstream_received(&mut self, sent: Duration) {
        if !self.measuring(sent) {
            return;
        }
        self.upstream_received += 1;
        let latency = self.now().saturating_sub(sent);
        self.upstream_latency_us
            .saturating_record(latency.as_micros().max(1) as u64);
    }

    /// A fault struck now (for charts); `label` says which.
    pub fn mark_fault(&mut self, label: impl Into<String>) {
        let now = self.now();
        self.mark_fault_at(now, label);
    }

    /// A fault struck at `at` (for the world, which marks faults between steps, outside any host).
    /// Faults that strike many connections at once are marked once per kind and simulated second.
    pub fn mark_fault_at(&mut self, at: Duration, label: impl Into<String>) {
        let label = label.into();
        let second = at.as_secs() as f64;
        let repeated = self
            .fault_marks
            .iter()
            .rev()
            .take_while(|(t, _)| t.floor() >= second)
            .any(|(_, l)| *l == label);
        if !repeated {
            self.fault_marks.push((at.as_secs_f64(), label));
        }
    }

    /// The metrics of the run. Cost figures cover the measured run (up to `close`, or `end` if the run
    /// was never closed); deliveries include late ones made while clients recovered after it, so `lost`
    /// counts only what never arrived at all.
    pub fn finish(&self, end: Duration) -> RunMetrics {
        let end = self.closed_at.unwrap_or(end);
        let clients = self.clients.len() as u64;
        let published = self.published.len() as u64;
        let mut radio = Duration::ZERO;
        let mut disconnected = Duration::ZERO;
        for record in &self.clients {
            radio += match record.last_packet {
                Some(last) => record.radio_active + end.saturating_sub(last).min(self.radio_tail),
                None => Duration::ZERO,
            };
            disconnected += record.disconnected
                + record
                    .down_since
                    .map_or(Duration::ZERO, |since| end.saturating_sub(since));
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
            event_spread_ms: self
                .per_event_latencies
                .iter()
                .map(|latencies| crate::metrics::Spread::of(latencies))
                .collect(),
            fault_marks: self.fault_marks.clone(),
            latency_cdf_ms: crate::metrics::cdf_points(&self.latency_us),
            open_connections: Vec::new(),
        };
        RunMetrics {
            published,
            expected,
            delivered: self.delivered,
            lost: expected.saturating_sub(self.delivered + self.stranded.len() as u64),
            stranded: self.stranded.len() as u64,
            stranded_in: self.stranded_in.iter().cloned().collect(),
            duplicates: self.duplicates,
            latency_ms: Percentiles::from_histogram(&self.latency_us),
            requests: self.requests,
            requests_per_second: per_second(self.requests, duration_s),
            bytes_down: self.bytes_down,
            bytes_up: self.bytes_up,
            bytes_per_delivery: (self.delivered > 0)
                .then(|| round3((self.bytes_down + self.bytes_up) as f64 / self.delivered as f64)),
            connections_opened: self.connections_opened,
            reconnects: self.reconnects,
            fallbacks: self.fallbacks,
            refused_upgrades: self.refused_upgrades,
            time_to_detect_ms: Percentiles::from_histogram(&self.detect_us),
            detections: self.detect_us.len(),
            undetected: self.undetected(Purpose::Session),
            silent_deaths: self.timeline.iter().map(|b| b.silent_deaths).sum(),
            cuts: self.timeline.iter().map(|b| b.cuts).sum(),
            disconnected_s: round3(disconnected.as_secs_f64()),
            radio_active_s: round3(radio.as_secs_f64()),
            radio_active_per_client_s: if clients == 0 {
                0.0
            } else {
                round3(radio.as_secs_f64() / clients as f64)
            },
            upstream_sent: self.upstream_sent,
            upstream_received: self.upstream_received,
            upstream_lost: self.upstream_sent.saturating_sub(self.upstream_received),
            upload_silent_deaths: self.upload_silent_deaths,
            upload_detections: self.upload_detect_us.len(),
            upload_undetected: self.undetected(Purpose::Upstream),
            upload_time_to_detect_ms: Percentiles::from_histogram(&self.upload_detect_us),
            upstream_latency_ms: Percentiles::from_histogram(&self.upstream_latency_us),
            resume_resets: self.resume_resets,
            peak_reconnects_per_second: self
                .timeline
                .iter()
                .map(|b| b.reconnects)
                .max()
                .unwrap_or(0),
            open_connections_peak: None,
            open_connections_mean: None,
            imbalance: None,
            per_replica: None,
            session_refusals: (self.fallbacks > 0).then_some(self.session_refusals),
            restarts: (!self.restarts.is_empty()).then(|| self.restart_figures()),
            deploy_peak_reconnects_per_second: self.deploy_peak(),
            served_again_s: (!self.restarts.is_empty()).then(|| {
                let served: Option<Vec<f64>> = self
                    .restart_figures()
                    .iter()
                    .map(|r| r.served_again_s)
                    .collect();
                served.and_then(|s| s.into_iter().reduce(f64::max))
            }),
            timeline,
        }
    }

    /// The watched restarts' figures, in time order.
    fn restart_figures(&self) -> Vec<crate::metrics::RestartMetrics> {
        let clients = self.clients.len() as u64;
        self.restarts
            .iter()
            .map(|w| {
                let mut f = w.figures.clone();
                f.peak_reconnects_per_second = w.attempts.iter().copied().max().unwrap_or(0);
                f.max_latency_ms = w.max_latency.map(|l| round3(l.as_secs_f64() * 1e3));
                // Owed deliveries of the events published in the window, less those that arrived
                // or that a middlebox still holds.
                let owed: u64 = self
                    .published
                    .iter()
                    .zip(&self.per_event)
                    .filter(|(at, _)| w.start <= **at && **at < w.end)
                    .map(|(_, (count, _))| clients.saturating_sub(u64::from(*count)))
                    .sum();
                let stranded = self
                    .stranded
                    .iter()
                    .filter(|(_, id)| {
                        self.published
                            .get((*id as usize).wrapping_sub(1))
                            .is_some_and(|at| w.start <= *at && *at < w.end)
                    })
                    .count() as u64;
                f.lost = owed.saturating_sub(stranded);
                f.unserved = w.served.iter().filter(|s| s.is_none()).count() as u64;
                f.served_again_s = (f.unserved == 0)
                    .then(|| w.served.iter().flatten().max().copied())
                    .flatten()
                    .map(|last| round3(last.saturating_sub(w.start).as_secs_f64()));
                f
            })
            .collect()
    }

    /// The most reconnect attempts in one second from the first deploy drain to the end of the last
    /// deploy window (whole seconds, as the timeline counts them).
    fn deploy_peak(&self) -> Option<u64> {
        let deploys: Vec<&RestartWatch> = self
            .restarts
            .iter()
            .filter(|w| w.figures.cause == "deploy")
            .collect();
        let first = deploys.iter().map(|w| w.start).min()?;
        let last = deploys.iter().map(|w| w.end).max()?;
        let from = first.as_secs() as usize;
        let to = (last.as_secs_f64().ceil() as usize).max(from + 1);
        Some(
            self.timeline
                .iter()
                .take(to)
                .skip(from)
                .map(|b| b.reconnects)
                .max()
                .unwrap_or(0),
        )
    }
}

impl Recorder {
    /// Connections for `purpose` that died silently and are still held by their clients.
    fn undetected(&self, purpose: Purpose) -> u64 {
        self.connections
            .values()
            .filter(|c| c.died.is_some() && c.purpose == purpose)
            .count() as u64
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        round3(count as f64 / seconds)
    } else {
        0.0
    }
}

/// Connections open at one place (a server, a replica, a whole fleet), followed over simulated time:
/// the most at once and the time-weighted mean. Each open connection holds an [`OpenHandle`];
/// dropping it — also when a crash drops the host's tasks — counts the connection closed.
#[derive(Default)]
pub struct OpenCount {
    open: std::cell::Cell<u64>,
    peak: std::cell::Cell<u64>,
    /// Open connections × seconds, up to `changed`.
    integral: std::cell::Cell<f64>,
    changed: std::cell::Cell<Duration>,
    connections: std::cell::Cell<u64>,
    /// Open connections × seconds within each simulated second, up to `changed` (the chart's
    /// series: sampled where the count changes, never by a timer, so it is the same however the
    /// simulation steps).
    per_second: RefCell<Vec<f64>>,
}

impl OpenCount {
    fn advance(&self, now: Duration) {
        let from = self.changed.get();
        let since = now.saturating_sub(from);
        let open = self.open.get() as f64;
        self.integral
            .set(self.integral.get() + open * since.as_secs_f64());
        if open > 0.0 && !since.is_zero() {
            let mut seconds = self.per_second.borrow_mut();
            let mut at = from;
            while at < now {
                let second = at.as_secs();
                let until = now.min(Duration::from_secs(second + 1));
                let index = second as usize;
                if seconds.len() <= index {
                    seconds.resize(index + 1, 0.0);
                }
                seconds[index] += open * (until - at).as_secs_f64();
                at = until;
            }
        }
        self.changed.set(now.max(from));
    }

    /// Open connections in each second of `[0, end)`: the time-weighted mean over that second. A
    /// last, partial second is left out once the count has changed after `end` (its sum would hold
    /// time past `end`).
    pub fn series(&self, end: Duration) -> Vec<f64> {
        let later = self.changed.get() > end;
        self.advance(end);
        let seconds = self.per_second.borrow();
        let whole = end.as_secs() as usize;
        let partial = end.as_secs_f64() - whole as f64;
        let count = whole + usize::from(partial > 0.0 && !later);
        (0..count)
            .map(|i| {
                let sum = seconds.get(i).copied().unwrap_or(0.0);
                let length = if i < whole { 1.0 } else { partial };
                round3(sum / length)
            })
            .collect()
    }

    /// A connection was accepted now; the handle counts it closed when dropped.
    pub fn opened(self: &Rc<Self>, recorder: &SharedRecorder) -> OpenHandle {
        self.advance(recorder.borrow().now());
        self.open.set(self.open.get() + 1);
        self.peak.set(self.peak.get().max(self.open.get()));
        self.connections.set(self.connections.get() + 1);
        OpenHandle {
            count: self.clone(),
            recorder: recorder.clone(),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.get()
    }

    /// The most open at once so far.
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.get()
    }

    /// The time-weighted mean of open connections over `[0, end]`.
    pub fn mean(&self, end: Duration) -> f64 {
        self.advance(end);
        let seconds = end.as_secs_f64();
        if seconds > 0.0 {
            round3(self.integral.get() / seconds)
        } else {
            0.0
        }
    }
}

/// Held for as long as one connection is open; see [`OpenCount`].
pub struct OpenHandle {
    count: Rc<OpenCount>,
    recorder: SharedRecorder,
}

impl Drop for OpenHandle {
    fn drop(&mut self) {
        // The recorder may be borrowed when a crash drops tasks from inside the simulation loop; the
        // last change is then the moment (the count still falls).
        let now = match self.recorder.try_borrow() {
            Ok(r) => r.now(),
            Err(_) => self.count.changed.get(),
        };
        self.count.advance(now);
        self.count.open.set(self.count.open.get().saturating_sub(1));
    }
}

/// Rounds to three decimals so that reports stay readable and byte-stable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ManualClock;
    use std::cell::Cell;

    /// Each (client, event) pair has its own bit: across the 64-client words of a row, across rows,
    /// and for events delivered out of order; a second delivery is a duplicate.
    #[test]
    fn received_keeps_one_bit_per_client_and_event() {
        let mut received = Received::new(130);
        assert!(!received.has(0, 1));
        assert!(received.mark(129, 3), "a first delivery");
        assert!(!received.mark(129, 3), "a duplicate");
        assert!(received.has(129, 3));
        for (client, id) in [(129, 2), (128, 3), (65, 3), (0, 3), (129, 4)] {
            assert!(!received.has(client, id), "client {client}, event {id}");
        }
        assert!(received.mark(64, 1));
        assert!(received.mark(63, 1));
        assert!(received.has(64, 1) && received.has(63, 1) && !received.has(65, 1));
        // Rows beyond the last delivered event read as not received.
        assert!(!received.has(0, 1_000));
        assert!(!received.has(0, u64::MAX), "an id too large for a row");
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
        at(&clock, 1050);
        assert!(r.delivered(0, first));
        at(&clock, 1100);
        assert!(!r.delivered(0, first), "second copy is a duplicate");
        at(&clock, 2150);
        assert!(r.delivered(1, second));
        r.close(Duration::from_secs(10));
        at(&clock, 10_500);
        // Late, after the close: still a delivery (with its real latency), but no longer a request.
        assert!(r.delivered(1, first));
        r.request();
        let m = r.finish(Duration::from_secs(11));
        assert_eq!(m.published, 2);
        assert_eq!(m.expected, 4);
        assert_eq!(m.delivered, 3);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.requests, 0);
        // second→client 0 never arrived.
        assert_eq!(m.lost, 1);
        // Latencies 50 ms, 150 ms and the late 9,500 ms.
        assert!(
            (m.latency_ms.max.unwrap() - 9500.0).abs() < 10.0,
            "{:?}",
            m.latency_ms
        );
        assert!(
            (m.latency_ms.p50.unwrap() - 150.0).abs() < 1.0,
            "{:?}",
            m.latency_ms
        );
        assert!(
            (m.latency_ms.mean.unwrap() - 3233.3).abs() < 5.0,
            "{:?}",
            m.latency_ms
        );
    }

    #[test]
    fn open_connections_are_sampled_per_second_where_the_count_changes() {
        let clock = Rc::new(ManualClock(Cell::new(Duration::ZERO)));
        let recorder = Recorder::new(clock.clone(), 1, Duration::from_secs(10)).shared();
        let count: Rc<OpenCount> = Rc::default();
        at(&clock, 500);
        let a = count.opened(&recorder);
        at(&clock, 1250);
        let b = count.opened(&recorder);
        at(&clock, 2000);
        drop(a);
        // A partial last second is the mean over the part that was run.
        at(&clock, 2500);
        assert_eq!(
            count.series(Duration::from_millis(2500)),
            vec![0.5, 1.75, 1.0]
        );
        // Second 0: open half of it; second 1: one, then two from 1.25 s; second 2: one.
        assert_eq!(count.series(Duration::from_secs(3)), vec![0.5, 1.75, 1.0]);
        // Asked again for an earlier end: the partial second would hold time past it, so it goes.
        assert_eq!(count.series(Duration::from_millis(2500)), vec![0.5, 1.75]);
        drop(b);
        assert_eq!(count.peak(), 2);
    }

    #[test]
    fn restart_windows_count_what_happened_round_each_restart() {
        let clock = Rc::new(ManualClock(Cell::new(Duration::ZERO)));
        let mut r = Recorder::new(clock.clone(), 2, Duration::from_secs(10));
        let s = Duration::from_secs;
        r.watch_restarts(vec![
            RestartPlan {
                replica: Some(1),
                cause: "deploy",
                drain_at: s(20),
                stop_at: s(22),
                up_at: s(24),
            },
            RestartPlan {
                replica: Some(0),
                cause: "deploy",
                drain_at: s(10),
                stop_at: s(12),
                up_at: s(14),
            },
        ]);
        let addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        r.connection_opened(0, addr, Purpose::Session);
        r.connection_opened(1, addr, Purpose::Session);
        at(&clock, 9_000);
        let early = r.published();
        at(&clock, 11_000);
        let first = r.published();
        // Client 0 reconnects twice in the first window, client 1 once in the second.
        r.connect_attempt(0, Purpose::Session);
        at(&clock, 11_500);
        r.reconnect(0);
        r.connect_attempt(0, Purpose::Session);
        assert!(r.delivered(0, first));
        assert!(r.delivered(0, early));
        at(&clock, 12_000);
        assert!(!r.delivered(0, first), "a duplicate in the first window");
        at(&clock, 16_000);
        assert!(r.delivered(1, first));
        at(&clock, 21_000);
        r.connect_attempt(1, Purpose::Session);
        let second = r.published();
        at(&clock, 21_100);
        assert!(r.delivered(0, second));
        r.close(s(40));
        let m = r.finish(s(40));
        let w = m.restarts.as_ref().unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].replica, w[1].replica), (Some(0), Some(1)));
        // The first window ends where the second begins (14 + 5 s would overlap it).
        assert_eq!((w[0].window_end_s, w[1].window_end_s), (19.0, 29.0));
        assert_eq!((w[0].reconnect_attempts, w[0].reconnects), (2, 1));
        assert_eq!(w[0].peak_reconnects_per_second, 2);
        assert_eq!((w[0].duplicates, w[0].lost), (1, 0));
        assert_eq!(w[0].max_latency_ms, Some(5000.0));
        // Served again: client 0 at 11.5 s, client 1 at 16 s, after the drain at 10 s.
        assert_eq!((w[0].served_again_s, w[0].unserved), (Some(6.0), 0));
        assert_eq!(w[1].reconnect_attempts, 1);
        // Event `second` never reached client 1: lost, in the second window, and it was never served.
        assert_eq!(
            (w[1].lost, w[1].unserved, w[1].served_again_s),
            (1, 1, None)
        );
        assert_eq!(m.served_again_s, Some(None));
        assert_eq!(m.deploy_peak_reconnects_per_second, Some(2));
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
        let m = r.finish(Duration::from_secs(35));
        assert_eq!(m.radio_active_s, 2.0 + 10.0 + 5.0);
        assert_eq!(m.bytes_down, 20);
        assert_eq!(m.bytes_up, 10);
    }

    #[test]
    fn detection_time_runs_from_death_to_letting_go() {
        let clock = Rc::new(ManualClock(Cell::new(Duration::ZERO)));
        let mut r = Recorder::new(clock.clone(), 1, Duration::from_secs(10));
        let session: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let upstream: SocketAddr = "10.0.0.2:4001".parse().unwrap();
        r.connection_opened(0, session, Purpose::Session);
        r.connection_opened(0, upstream, Purpose::Upstream);
        assert_eq!(r.connections_of(0), vec![session, upstream]);
        at(&clock, 1000);
        assert_eq!(r.connection_died(session, "nat expiry"), Some(0));
        r.connection_died(upstream, "nat expiry");
        at(&clock, 31_000);
        r.session_down(0);
        r.reconnect(0);
        r.connection_closed(session);
        at(&clock, 32_000);
        r.session_up(0);
        let m = r.finish(Duration::from_secs(40));
        assert_eq!(m.detections, 1);
        assert_eq!(m.undetected, 0, "the session's death was noticed");
        assert_eq!(m.silent_deaths, 1, "the session's channel only");
        // The upload connection's death is reported apart: never let go, so undetected.
        assert_eq!(m.upload_silent_deaths, 1);
        assert_eq!(m.upload_undetected, 1);
        assert_eq!(m.upload_detections, 0);
        assert_eq!(m.upload_time_to_detect_ms.p50, None);
        assert_eq!(
            m.timeline.fault_marks,
            vec![(1.0, "nat expiry".to_string())],
            "marked once a second"
        );
        assert!(
            (m.time_to_detect_ms.p50.unwrap() - 30_000.0).abs() < 50.0,
            "{:?}",
            m.time_to_detect_ms
        );
        // Down from the death (1 s), not from the noticing (31 s), until the session came back (32 s).
        assert_eq!(m.disconnected_s, 31.0);
        assert_eq!(m.reconnects, 1);
    }
}
