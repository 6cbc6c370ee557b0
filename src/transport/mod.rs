//! Transports: the four ways to push live data, each a real implementation speaking its real wire
//! protocol, with a client half and a server half behind one trait ([`Transport`]), one file each.
//!
//! Transports see the network only through [`crate::net::Connector`] (client side) and a byte stream
//! handed to [`crate::server`] (server side), so the same code runs over simulated and real TCP. They
//! report what they observe to the recorder; they never compute metrics themselves.
//!
//! Beside the transports, the pieces they share: [`http_client`] (the clients' HTTP/1.1),
//! [`event_stream`] (the `text/event-stream` parser), [`ws_io`] (tungstenite's RFC 6455 on an async
//! socket), [`engine_io`] (the WebSocket fallback's polling sessions) and `deadline` (session timers).
//!
//! Adding a transport: a new file with a type implementing [`Transport`], a variant in
//! [`TransportKind`], and one line in [`transport_for`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::hub::Hub;
use crate::net::{Connector, CountedIo, CountingStream, Purpose};
use crate::recorder::SharedRecorder;
use crate::scenario::{TransportSettings, Workload};
use request_timeouts::RequestTimeouts;

mod deadline;
pub mod engine_io;
pub mod event_stream;
pub mod http;
pub mod http_client;
mod kind;
pub mod long_polling;
pub mod polling;
pub mod request_timeouts;
pub mod sse;
pub mod websocket;
pub mod ws_io;

pub use http::ResponseBody;
pub use kind::TransportKind;

/// One way of pushing live data: how its server answers, and how one client behaves for a whole run.
pub trait Transport {
    fn kind(&self) -> TransportKind;

    /// The request path the server half answers.
    fn path(&self) -> &'static str;

    /// Server half: answers one request routed to [`Transport::path`]. It may hold the request (long
    /// polling), stream the response (SSE) or take over the connection (WebSocket upgrade).
    /// `connection` is the index of the connection it came on, when the server numbers them
    /// ([`crate::server::serve_connection`] does): its watchers share one moment in a spread
    /// shutdown.
    fn serve(
        &self,
        request: Request<Incoming>,
        server: Rc<ServerCtx>,
        connection: Option<u64>,
    ) -> LocalBoxFuture<'static, Response<ResponseBody>>;

    /// Client half: one user, connecting, receiving, noticing failures and reconnecting, until the
    /// simulation stops polling it.
    fn run_client(&self, client: Rc<ClientCtx>) -> LocalBoxFuture<'static, ()>;
}

/// The one list of implementations.
pub fn transport_for(kind: TransportKind) -> &'static dyn Transport {
    match kind {
        TransportKind::Polling => &polling::Polling,
        TransportKind::LongPolling => &long_polling::LongPolling,
        TransportKind::Sse => &sse::Sse,
        TransportKind::Websocket => &websocket::WebSocket,
    }
}

/// What the server half of every transport shares.
pub struct ServerCtx {
    pub hub: Rc<Hub>,
    pub settings: Rc<TransportSettings>,
    pub recorder: SharedRecorder,
    /// Wall-clock date at simulated time zero, for `Date` headers (fixed, so runs are reproducible).
    pub epoch: SystemTime,
    /// The last batch of events a transport encoded, shared by all its connections: a server framing a
    /// broadcast once rather than once per client, as real servers do.
    encoded: RefCell<Option<(EncodedKey, Bytes)>>,
    /// Limits, timeouts and allowed origins.
    pub policy: Policy,
    /// Set when the server is stopping gracefully (`rtsim serve` on Ctrl-C; simulated restarts crash
    /// instead): streams end on an event boundary and WebSocket sessions close with 1001.
    pub shutdown: Rc<Shutdown>,
    /// Requests this server answered (the recorder counts them for the whole run; this is one
    /// replica's share behind a load balancer).
    pub requests: std::cell::Cell<u64>,
    /// Where this server counts its open connections (one simulated server without a balancer; a
    /// balancer counts its replicas' itself, and `rtsim serve` does not count).
    pub open_connections: Option<Rc<crate::recorder::OpenCount>>,
    /// The WebSocket fallback's engine.io sessions this server holds (they die with it).
    pub sessions: RefCell<engine_io::SessionTable>,
    /// Connections [`crate::server::serve_connection`] has numbered (see [`Transport::serve`]).
    pub connections_numbered: std::cell::Cell<u64>,
}

/// What the server accepts from clients: body and message sizes, how long a body may take, and
/// which browser origins may use it.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Largest request body (`POST /messages`), bytes; more is answered 413.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive once its headers have; longer is answered 408.
    pub body_timeout: Duration,
    /// Largest WebSocket message (and frame) a client may send, bytes; more closes with 1009.
    pub max_message_bytes: usize,
    /// Browser origins allowed besides the server's own (`Origin` matching `Host`).
    pub origins: Origins,
}

/// Origins allowed to use the server from a browser.
#[derive(Clone, Debug, Default)]
pub enum Origins {
    /// The server's own origin only (and clients that send no `Origin`).
    #[default]
    SameOrigin,
    /// These, besides the server's own (exact `scheme://host[:port]`, compared case-insensitively).
    List(Vec<String>),
    /// Every origin (`--allow-origin '*'`).
    Any,
}

impl Policy {
    /// The limits `rtsim serve` uses unless told otherwise: 64 KiB bodies and messages, 20 s.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(20);

    /// What simulations run with: the same code, with limits that fit any valid profile (upstream
    /// messages may be up to 1 MiB, `scenario::Plan` refuses more).
    pub fn simulation() -> Self {
        Self {
            max_body_bytes: 2 << 20,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            max_message_bytes: 2 << 20,
            origins: Origins::SameOrigin,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BYTES,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            max_message_bytes: Self::DEFAULT_MAX_BYTES,
            origins: Origins::SameOrigin,
        }
    }
}

/// A one-way "stop now" signal for the server's streams. Hand-made, like the hub's: waiters are
/// woken in the order they registered (never `tokio::sync::watch`, see [`crate::hub::Hub`]).
///
/// With a close spread (a deploy's `close_spread`, as HAProxy's `close-spread-time`) each simulated
/// connection's watchers fire at their connection's own moment within the spread instead of all at
/// once: the moment is a fixed share of the spread per connection index (the golden-ratio sequence,
/// evenly spread and the same in every run), counted from when the host first saw the trigger.
#[derive(Default)]
pub struct Shutdown {
    triggered: std::cell::Cell<bool>,
    waiting: RefCell<Waiters>,
    next: std::cell::Cell<u64>,
    /// Over how long the connections' closes are spread (zero: all at once).
    spread: std::cell::Cell<Duration>,
    /// When a watcher on the server's host first saw the trigger (the host's clock, not the world's).
    observed: std::cell::Cell<Option<tokio::time::Instant>>,
}

impl Shutdown {
    /// Starts the shutdown with the connections' closes spread over `spread` (see [`Shutdown`]).
    pub fn trigger_spread(&self, spread: Duration) {
        self.spread.set(spread);
        self.trigger();
    }

    /// Starts the shutdown: every watcher is woken.
    pub fn trigger(&self) {
        self.triggered.set(true);
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        let mut waiting: Vec<(u64, std::task::Waker)> =
            waiting.slots.into_iter().flatten().collect();
        // In the order the watchers were made, whatever slots they took.
        waiting.sort_unstable_by_key(|(id, _)| *id);
        for (_, waker) in waiting {
            waker.wake();
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.get()
    }

    /// A watcher to poll or await, ready as soon as the shutdown is triggered.
    pub fn watch(self: &Rc<Self>) -> ShutdownWatch {
        self.watch_connection(None)
    }

    /// A watcher for connection `index` (see [`Transport::serve`]): ready at that connection's moment
    /// in a spread shutdown, at once otherwise (and always at once without an index).
    pub fn watch_connection(self: &Rc<Self>, index: Option<u64>) -> ShutdownWatch {
        let id = self.next.get();
        self.next.set(id + 1);
        ShutdownWatch {
            shutdown: self.clone(),
            id,
            slot: None,
            index,
            delay: None,
        }
    }

    /// When connection `index`'s watchers fire, once the shutdown has been seen on this host.
    fn due(&self, index: u64) -> tokio::time::Instant {
        let start = match self.observed.get() {
            Some(at) => at,
            None => {
                let now = tokio::time::Instant::now();
                self.observed.set(Some(now));
                now
            }
        };
        // The golden-ratio sequence: consecutive indices land far apart and fill the spread evenly.
        let share = ((index + 1) as f64 * 0.618_033_988_749_895).fract();
        start + self.spread.get().mul_f64(share)
    }
}

/// The wakers of the watchers waiting for a [`Shutdown`], each in a slot its watcher keeps: a
/// connection polls its watcher on every poll of the connection, and finding its slot by index is
/// cheaper than a map lookup keyed by the watcher's id (which only orders the wake-ups).
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<(u64, std::task::Waker)>>,
    /// Slots free for reuse.
    free: Vec<usize>,
}

impl Waiters {
    fn insert(&mut self, id: u64, waker: std::task::Waker) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some((id, waker));
                slot
            }
            None => {
                self.slots.push(Some((id, waker)));
                self.slots.len() - 1
            }
        }
    }

    /// Whether watcher `id` still holds `slot` (a trigger empties every slot).
    fn holds(&self, slot: usize, id: u64) -> bool {
        self.slots
            .get(slot)
            .is_some_and(|entry| entry.as_ref().is_some_and(|(held_by, _)| *held_by == id))
    }

    /// Frees `slot` if watcher `id` still holds it.
    fn remove(&mut self, slot: usize, id: u64) {
        if self.holds(slot, id) {
            self.slots[slot] = None;
            self.free.push(slot);
        }
    }
}

/// One stream's view of [`Shutdown`].
pub struct ShutdownWatch {
    shutdown: Rc<Shutdown>,
    /// Orders the wake-ups: watchers are woken in the order they were made.
    id: u64,
    /// Its slot in [`Waiters`], once it has waited, and the waker it left there: a poll by the same
    /// task compares against this copy and leaves the slot alone (with thousands of connections the
    /// slab is rarely in cache, and this was a miss on every poll of every connection).
    slot: Option<(usize, std::task::Waker)>,
    /// The connection this watcher serves, in a spread shutdown.
    index: Option<u64>,
    /// Its connection's moment, once the shutdown has been triggered and is spread.
    delay: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl ShutdownWatch {
    /// True once this watcher's moment has come (for a check in passing: nothing stays registered
    /// before the shutdown, and a spread moment's timer is polled again when awaited).
    pub fn is_due(&mut self) -> bool {
        if !self.shutdown.is_triggered() {
            return false;
        }
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        self.poll_triggered(&mut cx).is_ready()
    }

    /// Ready once the shutdown has been triggered (and, spread, this watcher's connection's moment
    /// has come).
    pub fn poll_triggered(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.shutdown.is_triggered() {
            let spread = !self.shutdown.spread.get().is_zero();
            let Some(index) = self.index.filter(|_| spread) else {
                return std::task::Poll::Ready(());
            };
            let shutdown = &self.shutdown;
            let delay = self
                .delay
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(shutdown.due(index))));
            return std::future::Future::poll(delay.as_mut(), cx);
        }
        // Polled again by the same task (every poll of a connection): the slot keeps its waker.
        if let Some((_, waker)) = &self.slot {
            if waker.will_wake(cx.waker()) {
                return std::task::Poll::Pending;
            }
        }
        let mut waiting = self.shutdown.waiting.borrow_mut();
        let waker = cx.waker().clone();
        let held = self.slot.as_ref().map(|(slot, _)| *slot);
        let slot = match held.filter(|&slot| waiting.holds(slot, self.id)) {
            // Polled by another task: the slot takes its waker.
            Some(slot) => {
                waiting.slots[slot] = Some((self.id, waker.clone()));
                slot
            }
            None => waiting.insert(self.id, waker.clone()),
        };
        self.slot = Some((slot, waker));
        std::task::Poll::Pending
    }

    pub async fn triggered(&mut self) {
        std::future::poll_fn(|cx| self.poll_triggered(cx)).await
    }
}

impl Drop for ShutdownWatch {
    fn drop(&mut self) {
        if let Some((slot, _)) = &self.slot {
            self.shutdown.waiting.borrow_mut().remove(*slot, self.id);
        }
    }
}

/// Held by a connection for as long as it is served, and handed on to a WebSocket session when the
/// connection is upgraded (`rtsim serve` puts its connection-slot permit in one as a request
/// extension), so an upgraded session keeps its slot.
#[derive(Clone)]
pub struct ConnectionGuard(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

/// Which events, framed by which transport.
type EncodedKey = (TransportKind, u64, u64);

impl ServerCtx {
    pub fn new(
        hub: Rc<Hub>,
        settings: Rc<TransportSettings>,
        recorder: SharedRecorder,
        epoch: SystemTime,
    ) -> Self {
        Self {
            hub,
            settings,
            recorder,
            epoch,
            encoded: RefCell::new(None),
            policy: Policy::simulation(),
            shutdown: Rc::new(Shutdown::default()),
            requests: std::cell::Cell::new(0),
            open_connections: None,
            sessions: RefCell::new(engine_io::SessionTable::default()),
            connections_numbered: std::cell::Cell::new(0),
        }
    }

    /// The same server, counting its open connections in `count`.
    pub fn counting_connections(mut self, count: Rc<crate::recorder::OpenCount>) -> Self {
        self.open_connections = Some(count);
        self
    }

    /// The same server issuing engine.io session ids from `seed`: every server (replica, boot) of
    /// a run gets its own, so no two issue the same id.
    pub fn with_session_seed(self, seed: u64) -> Self {
        *self.sessions.borrow_mut() = engine_io::SessionTable::new(seed);
        self
    }

    /// Counts one connection open while the handle lives (nothing when this server does not count).
    pub fn connection_opened(&self) -> Option<crate::recorder::OpenHandle> {
        self.open_connections
            .as_ref()
            .map(|count| count.opened(&self.recorder))
    }

    /// The same server with other limits and origins (`rtsim serve`'s flags).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The events after `cursor`, framed by `transport`, with the last one's id; `None` when there
    /// are none. Encoded once per batch: connections asking for the same events share the bytes
    /// without copying the events again.
    pub fn encoded_since(
        &self,
        transport: TransportKind,
        cursor: u64,
        encode: impl FnOnce(&[crate::hub::Event]) -> Bytes,
    ) -> Option<(u64, Bytes)> {
        let (first, last) = self.hub.span_after(cursor)?;
        let key = (transport, first, last);
        if let Some((cached, bytes)) = &*self.encoded.borrow() {
            if *cached == key {
                return Some((last, bytes.clone()));
            }
        }
        let bytes = encode(&self.hub.since(cursor).events);
        *self.encoded.borrow_mut() = Some((key, bytes.clone()));
        Some((last, bytes))
    }

    /// Where a client asking for events after `requested` is served from, and whether that is the
    /// resume it asked for. Never silent: a transport that gets anything but [`Resume::Exact`] tells
    /// its client (see [`Reset`]).
    pub fn resume(&self, requested: u64) -> Reset {
        let resume = self.hub.resume(requested);
        Reset {
            requested,
            resume,
            latest: self.hub.latest(),
        }
    }

    /// The HTTP `Date` for now: the epoch plus simulated time.
    pub fn http_date(&self) -> String {
        let now = self.recorder.borrow().now();
        httpdate::fmt_http_date(self.epoch + now)
    }
}

/// A resume as the server will serve it; how each transport tells its client when it is not exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reset {
    /// The cursor the client sent.
    pub requested: u64,
    pub resume: crate::hub::Resume,
    /// The newest event id when the client asked.
    pub latest: u64,
}

/// The response header polling answers carry when the resume was not exact.
pub const RESET_HEADER: &str = "rtsim-reset";

impl Reset {
    /// The cursor the server serves from.
    pub fn cursor(&self) -> u64 {
        self.resume.cursor(self.requested)
    }

    /// True when the client gets exactly what it asked for.
    pub fn is_exact(&self) -> bool {
        self.resume == crate::hub::Resume::Exact
    }

    /// The JSON sent in-band (WebSocket text frame, SSE `event: reset`):
    /// `{"type":"reset","reason":"gap"|"ahead","requested":R,"resumes_after":X,"latest":L}`.
    pub fn json(&self) -> String {
        format!(
            "{{\"type\":\"reset\",\"reason\":\"{}\",\"requested\":{},\"resumes_after\":{},\"latest\":{}}}",
            self.resume.reason().unwrap_or("exact"),
            self.requested,
            self.cursor(),
            self.latest
        )
    }

    /// The value of the [`RESET_HEADER`]: `gap; requested=R; resumes-after=X; latest=L`.
    pub fn header_value(&self) -> String {
        format!(
            "{}; requested={}; resumes-after={}; latest={}",
            self.resume.reason().unwrap_or("exact"),
            self.requested,
            self.cursor(),
            self.latest
        )
    }
}

/// The `resumes-after` cursor in a [`RESET_HEADER`] value, as a client reads it.
pub fn reset_header_cursor(value: &str) -> Option<u64> {
    value
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| *key == "resumes-after")
        .and_then(|(_, v)| v.parse().ok())
}

/// The `resumes_after` cursor of an in-band reset message (WebSocket, SSE `event: reset`).
pub fn reset_message_cursor(text: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct ResetMessage {
        #[serde(rename = "type")]
        kind: String,
        resumes_after: u64,
    }
    serde_json::from_slice::<ResetMessage>(text)
        .ok()
        .filter(|m| m.kind == "reset")
        .map(|m| m.resumes_after)
}

/// What one client knows and owns.
pub struct ClientCtx {
    /// Index of the client in the run, 0-based.
    pub id: usize,
    pub settings: Rc<TransportSettings>,
    pub workload: Rc<Workload>,
    pub connector: Rc<dyn Connector>,
    pub recorder: SharedRecorder,
    rng: RefCell<ChaCha8Rng>,
    /// The last upstream message number used: ids are unique per client across sessions, so the
    /// server can drop a resent duplicate by (client, seq).
    upstream_seq: Cell<u64>,
    /// With `upstream_acks`: messages sent but not yet acknowledged, oldest first, as (seq, JSON).
    outbox: RefCell<VecDeque<(u64, String)>>,
    /// Wakes the upload loop when a message joins the outbox (one waiter; FIFO, no random order).
    pub outbox_changed: tokio::sync::Notify,
    /// The request timeouts of the client's host (its own unless [`ClientCtx::on_host`] shares them).
    pub request_timeouts: Rc<RequestTimeouts>,
}

/// What a session records on every event (deliveries, and a session up after each long poll), held
/// by the session itself: recording through the [`ClientCtx`] read the client's context for every
/// event, a cache line of its own, out of cache by the time the next event comes at 10,000 clients
/// (3 % of a 10,000-client WebSocket run, perf).
pub struct Deliveries {
    recorder: SharedRecorder,
    client: usize,
}

impl Deliveries {
    /// An event arrived; false when it was a duplicate.
    pub fn deliver(&self, id: u64) -> bool {
        self.recorder.borrow_mut().delivered(self.client, id)
    }

    /// [`ClientCtx::session_up`].
    pub fn session_up(&self) {
        self.recorder.borrow_mut().session_up(self.client);
    }
}

impl ClientCtx {
    pub fn new(
        id: usize,
        seed: u64,
        settings: Rc<TransportSettings>,
        workload: Rc<Workload>,
        connector: Rc<dyn Connector>,
        recorder: SharedRecorder,
    ) -> Self {
        Self {
            id,
            settings,
            workload,
            connector,
            recorder,
            rng: RefCell::new(ChaCha8Rng::seed_from_u64(seed)),
            upstream_seq: Cell::new(0),
            outbox: RefCell::new(VecDeque::new()),
            outbox_changed: tokio::sync::Notify::new(),
            request_timeouts: RequestTimeouts::new(),
        }
    }

    /// The client with the request timeouts of the host it runs on, shared with the host's other
    /// clients (one timer for all their requests; see [`RequestTimeouts`]).
    pub fn on_host(self, request_timeouts: Rc<RequestTimeouts>) -> Self {
        Self {
            request_timeouts,
            ..self
        }
    }

    /// Opens a connection to the server, registered and counted for this client. Gives up after the
    /// request timeout: a SYN into a dead network gets no answer at all.
    pub async fn connect(&self, purpose: Purpose) -> io::Result<CountedIo> {
        self.recorder.borrow_mut().connect_attempt(self.id, purpose);
        let patience = self.settings.request_timeout;
        let (io, local) = tokio::time::timeout(patience, self.connector.connect())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(CountingStream::new(
            io,
            self.id,
            local,
            purpose,
            self.recorder.clone(),
        ))
    }

    /// A uniform random number in [0, 1) from this client's own seeded generator.
    pub fn random(&self) -> f64 {
        self.rng.borrow_mut().gen()
    }

    /// Delay before reconnect attempt `attempt` (0-based), exponential with jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.settings.reconnect.delay(attempt, self.random())
    }

    /// The client's handle for what a session records on every event, to keep in the session's own
    /// state (see [`Deliveries`]).
    pub fn deliveries(&self) -> Deliveries {
        Deliveries {
            recorder: self.recorder.clone(),
            client: self.id,
        }
    }

    pub fn now(&self) -> Duration {
        self.recorder.borrow().now()
    }

    /// The session broke and was noticed (error, close or timeout): mark the client down and count
    /// the reconnect it is about to make.
    pub fn lost_session(&self) {
        let mut recorder = self.recorder.borrow_mut();
        recorder.session_down(self.id);
        recorder.reconnect(self.id);
    }

    /// The client has a working session (again).
    pub fn session_up(&self) {
        self.recorder.borrow_mut().session_up(self.id);
    }

    /// Waits the backoff for `attempt`, or the floor given, whichever is longer.
    pub async fn wait_before_reconnect(&self, attempt: u32, floor: Duration) {
        tokio::time::sleep(self.backoff(attempt).max(floor)).await;
    }

    /// Time until the next upstream message, exponential around the workload's rate; `None` when the
    /// client sends nothing.
    pub fn next_upstream_gap(&self) -> Option<Duration> {
        let per_minute = self.workload.upstream_per_minute;
        if per_minute <= 0.0 {
            return None;
        }
        let mean = 60.0 / per_minute;
        Some(Duration::from_secs_f64(-mean * (1.0 - self.random()).ln()))
    }

    /// A new upstream message: JSON carrying its id and send time, padded to the workload's size. With
    /// `upstream_acks` it also joins the outbox, where it stays until the server acknowledges it.
    pub fn upstream_message(&self) -> (u64, String) {
        self.recorder.borrow_mut().upstream_sent();
        let seq = self.upstream_seq.get() + 1;
        self.upstream_seq.set(seq);
        let acks = self.workload.upstream_acks;
        let text =
            upstream_payload_with(self.id, seq, self.now(), self.workload.upstream_bytes, acks);
        if acks {
            self.outbox.borrow_mut().push_back((seq, text.clone()));
            self.outbox_changed.notify_one();
        }
        (seq, text)
    }

    /// The messages still waiting for an acknowledgement, oldest first.
    pub fn unacknowledged(&self) -> Vec<(u64, String)> {
        self.outbox.borrow().iter().cloned().collect()
    }

    /// The oldest message waiting for an acknowledgement.
    pub fn oldest_unacknowledged(&self) -> Option<(u64, String)> {
        self.outbox.borrow().front().cloned()
    }

    /// The server acknowledged message `seq`: it leaves the outbox.
    pub fn acknowledged(&self, seq: u64) {
        self.outbox.borrow_mut().retain(|(s, _)| *s != seq);
    }
}

/// The JSON of an upstream message, padded to `bytes`.
pub fn upstream_payload(client: usize, seq: u64, sent: Duration, bytes: usize) -> String {
    upstream_payload_with(client, seq, sent, bytes, false)
}

/// The JSON of an upstream message, padded to `bytes`; `ack` asks the server to acknowledge it (the
/// HTTP answer does that anyway; over WebSocket the server answers `{"type":"ack","seq":N}`).
pub fn upstream_payload_with(
    client: usize,
    seq: u64,
    sent: Duration,
    bytes: usize,
    ack: bool,
) -> String {
    let head = format!(
        "{{\"client\":{client},\"seq\":{seq},\"sent_us\":{}{},\"text\":\"",
        sent.as_micros(),
        if ack { ",\"ack\":true" } else { "" }
    );
    let filler = bytes.saturating_sub(head.len() + 2);
    let mut text = head;
    text.extend(std::iter::repeat_n('x', filler));
    text.push_str("\"}");
    text
}

/// The send time carried by an upstream message, if it is one.
pub fn upstream_sent_at(body: &[u8]) -> Option<Duration> {
    #[derive(serde::Deserialize)]
    struct Upstream {
        sent_us: u64,
    }
    serde_json::from_slice::<Upstream>(body)
        .ok()
        .map(|m| Duration::from_micros(m.sent_us))
}

/// What the server reads from an upstream message: its send time, its id (client, seq) when it has
/// one — a browser's own message may not — and whether the client wants an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamHeader {
    pub sent: Duration,
    pub id: Option<(u64, u64)>,
    pub ack: bool,
}

/// The header of an upstream message, if the bytes are one.
pub fn upstream_header(body: &[u8]) -> Option<UpstreamHeader> {
    #[derive(serde::Deserialize)]
    struct Upstream {
        sent_us: u64,
        client: Option<u64>,
        seq: Option<u64>,
        #[serde(default)]
        ack: bool,
    }
    let m = serde_json::from_slice::<Upstream>(body).ok()?;
    Some(UpstreamHeader {
        sent: Duration::from_micros(m.sent_us),
        id: m.client.zip(m.seq),
        ack: m.ack,
    })
}

/// The server half's handling of an upstream message: recorded once, however often it was resent.
pub fn receive_upstream_message(server: &ServerCtx, header: &UpstreamHeader) {
    let fresh = header
        .id
        .is_none_or(|(client, seq)| server.hub.accept_upstream(client, seq));
    if fresh {
        server.recorder.borrow_mut().upstream_received(header.sent);
    }
}

/// The acknowledgement frame a WebSocket server sends for message `seq`.
pub fn ack_frame(seq: u64) -> String {
    format!("{{\"type\":\"ack\",\"seq\":{seq}}}")
}

/// The message number an acknowledgement frame acknowledges.
pub fn acked_seq(text: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Ack {
        #[serde(rename = "type")]
        kind: String,
        seq: u64,
    }
    serde_json::from_slice::<Ack>(text)
        .ok()
        .filter(|a| a.kind == "ack")
        .map(|a| a.seq)
}

/// Ids of the events in a JSON array as the polling transports send it.
pub fn event_ids(body: &[u8]) -> Result<Vec<u64>, serde_json::Error> {
    // Every polling answer is read here, and serde's general path was ~4% of a long-polling run.
    if let Some(ids) = published_event_ids(body) {
        return Ok(ids);
    }
    #[derive(serde::Deserialize)]
    struct EventId {
        id: u64,
    }
    let events: Vec<EventId> = serde_json::from_slice(body)?;
    Ok(events.into_iter().map(|e| e.id).collect())
}

/// The ids of a JSON array of events exactly as [`crate::hub::event_payload`] writes them
/// (`{"id":N,"published_us":T,"data":"..."}`, no whitespace, printable ASCII data without escapes),
/// or `None` for anything else, which [`event_ids`] then reads with serde. Everything accepted is
/// JSON that serde reads to the same ids, so the two paths cannot disagree.
fn published_event_ids(body: &[u8]) -> Option<Vec<u64>> {
    let mut rest = body.strip_prefix(b"[")?;
    let mut ids = Vec::new();
    if rest == b"]" {
        return Some(ids);
    }
    loop {
        let (id, after) = published_event(rest)?;
        ids.push(id);
        match after {
            [b']'] => return Some(ids),
            [b',', more @ ..] => rest = more,
            _ => return None,
        }
    }
}

/// One event object exactly as [`crate::hub::event_payload`] writes it, at the start of `text`: its
/// id and the bytes after it; `None` for anything else.
fn published_event(text: &[u8]) -> Option<(u64, &[u8])> {
    /// A JSON integer of at most 19 digits (below `u64::MAX`) without a leading zero.
    fn integer(text: &[u8]) -> Option<(u64, &[u8])> {
        let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 || (digits > 1 && text[0] == b'0') {
            return None;
        }
        let value = text[..digits]
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        Some((value, &text[digits..]))
    }
    let (id, after) = integer(text.strip_prefix(br#"{"id":"#)?)?;
    let (_, after) = integer(after.strip_prefix(br#","published_us":"#)?)?;
    let rest = after.strip_prefix(br#","data":""#)?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    let data = &rest[..end];
    // No escape, no control character, ASCII only (so valid UTF-8): a plain JSON string.
    if rest[end] != b'"' || !printable_ascii(data) {
        return None;
    }
    Some((id, rest[end + 1..].strip_prefix(b"}")?))
}

/// Every byte in 0x20..=0x7f. Without an early exit, so that the compiler checks many bytes at
/// once: a byte below 0x20 sets the top bit of `byte - 0x20`, a byte above 0x7f has it set itself.
/// (Checked byte by byte, this was 5 % of a WebSocket run: every event's data passes here.)
fn printable_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(0u8, |bad, &byte| bad | (byte.wrapping_sub(0x20) | byte))
        & 0x80
        == 0
}

/// The id of one event payload (SSE data, WebSocket text).
pub fn event_id(payload: &[u8]) -> Option<u64> {
    // Every WebSocket frame a client receives is read here; serde's general path was 5 % of a
    // 10,000-client run. Anything but a payload exactly as the hub writes it goes to serde.
    if let Some((id, [])) = published_event(payload) {
        return Some(id);
    }
    #[derive(serde::Deserialize)]
    struct EventId {
        id: u64,
    }
    serde_json::from_slice::<EventId>(payload)
        .ok()
        .map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_the_byte_range_for_every_byte() {
        for byte in 0..=255u8 {
            let expected = (0x20..=0x7f).contains(&byte);
            assert_eq!(printable_ascii(&[byte]), expected, "{byte:#x}");
            // Wherever it stands among printable bytes.
            let mut long = vec![b'a'; 37];
            long[29] = byte;
            assert_eq!(printable_ascii(&long), expected, "{byte:#x} among others");
        }
        assert!(printable_ascii(b""));
    }

    #[test]
    fn upstream_payload_has_its_size_and_time() {
        let text = upstream_payload(3, 9, Duration::from_millis(1234), 120);
        assert_eq!(text.len(), 120);
        assert_eq!(
            upstream_sent_at(text.as_bytes()),
            Some(Duration::from_millis(1234))
        );
    }

    #[test]
    fn upstream_messages_carry_their_id_and_acks_name_it() {
        let text = upstream_payload_with(3, 9, Duration::from_millis(5), 120, true);
        assert_eq!(text.len(), 120);
        let h = upstream_header(text.as_bytes()).unwrap();
        assert_eq!(h.id, Some((3, 9)));
        assert!(h.ack);
        let browser = upstream_header(br#"{"sent_us":12}"#).unwrap();
        assert_eq!((browser.id, browser.ack), (None, false));
        assert_eq!(acked_seq(ack_frame(9).as_bytes()), Some(9));
        assert_eq!(acked_seq(br#"{"type":"welcome","last_event_id":3}"#), None);
    }

    #[test]
    fn event_ids_are_read_from_the_wire_format() {
        let a = crate::hub::event_payload(4, Duration::ZERO, 80);
        let b = crate::hub::event_payload(5, Duration::ZERO, 80);
        let body = http::events_json(&[
            crate::hub::Event {
                id: 4,
                payload: a.clone(),
            },
            crate::hub::Event { id: 5, payload: b },
        ]);
        assert_eq!(event_ids(&body).unwrap(), vec![4, 5]);
        assert_eq!(event_ids(b"[]").unwrap(), Vec::<u64>::new());
        assert_eq!(event_id(&a), Some(4));
        assert!(event_ids(b"not json").is_err());
    }

    #[test]
    fn the_fast_reading_of_event_ids_agrees_with_serde() {
        #[derive(serde::Deserialize)]
        struct EventId {
            id: u64,
        }
        let serde = |body: &[u8]| {
            serde_json::from_slice::<Vec<EventId>>(body)
                .ok()
                .map(|v| v.into_iter().map(|e| e.id).collect::<Vec<u64>>())
        };
        let a = crate::hub::event_payload(4, Duration::from_micros(17), 80);
        let b = crate::hub::event_payload(u64::MAX / 10, Duration::ZERO, 64);
        let published = http::events_json(&[
            crate::hub::Event { id: 4, payload: a },
            crate::hub::Event { id: 5, payload: b },
        ]);
        assert!(published_event_ids(&published).is_some());
        let cases: Vec<&[u8]> = vec![
            &published,
            b"[]",
            b"[ ]",
            br#"[{"id":0,"published_us":0,"data":""}]"#,
            br#"[{"id":01,"published_us":0,"data":""}]"#,
            br#"[{"id":12345678901234567890,"published_us":0,"data":""}]"#,
            br#"[{"id":1,"published_us":-3,"data":""}]"#,
            br#"[{"id":1,"published_us":3,"data":"a\"b"}]"#,
            br#"[{"id":1,"published_us":3,"data":"a\u0001"}]"#,
            b"[{\"id\":1,\"published_us\":3,\"data\":\"a\x01\"}]",
            b"[{\"id\":1,\"published_us\":3,\"data\":\"\xc3\xa9\"}]",
            br#"[{"id":1,"published_us":3,"data":"x"},]"#,
            br#"[{"id":1,"published_us":3,"data":"x"}] "#,
            br#"[{"id":1,"published_us":3,"data":"x"}"#,
            br#"[{"id":1,"published_us":3,"data":"x","id":2}]"#,
            br#"[{"id":1.5,"published_us":3,"data":"x"}]"#,
        ];
        for body in cases {
            let fast = published_event_ids(body);
            if fast.is_some() {
                assert_eq!(fast, serde(body), "{}", String::from_utf8_lossy(body));
            }
            assert_eq!(
                event_ids(body).ok(),
                serde(body),
                "{}",
                String::from_utf8_lossy(body)
            );
            // The same objects alone, as a WebSocket frame carries one.
            let Some(object) = body.strip_prefix(b"[").and_then(|b| b.strip_suffix(b"]")) else {
                continue;
            };
            let one = |text: &[u8]| serde_json::from_slice::<EventId>(text).ok().map(|e| e.id);
            if let Some((id, [])) = published_event(object) {
                assert_eq!(Some(id), one(object), "{}", String::from_utf8_lossy(object));
            }
            assert_eq!(
                event_id(object),
                one(object),
                "{}",
                String::from_utf8_lossy(object)
            );
        }
    }
}
