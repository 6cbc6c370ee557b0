//! Transports: the four ways to push live data, each a real implementation speaking its real wire
//! protocol, with a client half and a server half behind one trait ([`Transport`]), one file each.
//!
//! Transports see the network only through [`crate::net::Connector`] (client side) and a byte stream
//! handed to [`crate::server`] (server side), so the same code runs over simulated and real TCP. They
//! report what they observe to the recorder; they never compute metrics themselves.
//!
//! Adding a transport: a new file with a type implementing [`Transport`], a variant in
//! [`TransportKind`], and one line in [`transport_for`].

use std::cell::RefCell;
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
use crate::net::{BoxIo, Connector, CountingStream, Purpose};
use crate::recorder::SharedRecorder;
use crate::scenario::{TransportSettings, Workload};

pub mod event_stream;
pub mod http;
mod kind;
pub mod long_polling;
pub mod polling;
pub mod sse;
pub mod websocket;

pub use http::ResponseBody;
pub use kind::TransportKind;

/// One way of pushing live data: how its server answers, and how one client behaves for a whole run.
pub trait Transport {
    fn kind(&self) -> TransportKind;

    /// The request path the server half answers.
    fn path(&self) -> &'static str;

    /// Server half: answers one request routed to [`Transport::path`]. It may hold the request (long
    /// polling), stream the response (SSE) or take over the connection (WebSocket upgrade).
    fn serve(
        &self,
        request: Request<Incoming>,
        server: Rc<ServerCtx>,
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
}

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
        }
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

    /// The HTTP `Date` for now: the epoch plus simulated time.
    pub fn http_date(&self) -> String {
        let now = self.recorder.borrow().now();
        httpdate::fmt_http_date(self.epoch + now)
    }
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
        }
    }

    /// Opens a connection to the server, registered and counted for this client. Gives up after the
    /// request timeout: a SYN into a dead network gets no answer at all.
    pub async fn connect(&self, purpose: Purpose) -> io::Result<BoxIo> {
        self.recorder.borrow_mut().connect_attempt(self.id, purpose);
        let patience = self.settings.request_timeout;
        let (io, local) = tokio::time::timeout(patience, self.connector.connect())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(Box::new(CountingStream::new(
            io,
            self.id,
            local,
            purpose,
            self.recorder.clone(),
        )))
    }

    /// A uniform random number in [0, 1) from this client's own seeded generator.
    pub fn random(&self) -> f64 {
        self.rng.borrow_mut().gen()
    }

    /// Delay before reconnect attempt `attempt` (0-based), exponential with jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.settings.reconnect.delay(attempt, self.random())
    }

    /// An event arrived; false when it was a duplicate.
    pub fn deliver(&self, id: u64) -> bool {
        self.recorder.borrow_mut().delivered(self.id, id)
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

    /// An upstream message: JSON carrying the send time, padded to the workload's size.
    pub fn upstream_message(&self, seq: u64) -> String {
        self.recorder.borrow_mut().upstream_sent();
        upstream_payload(self.id, seq, self.now(), self.workload.upstream_bytes)
    }
}

/// The JSON of an upstream message, padded to `bytes`.
pub fn upstream_payload(client: usize, seq: u64, sent: Duration, bytes: usize) -> String {
    let head = format!(
        "{{\"client\":{client},\"seq\":{seq},\"sent_us\":{},\"text\":\"",
        sent.as_micros()
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

/// Ids of the events in a JSON array as the polling transports send it.
pub fn event_ids(body: &[u8]) -> Result<Vec<u64>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct EventId {
        id: u64,
    }
    let events: Vec<EventId> = serde_json::from_slice(body)?;
    Ok(events.into_iter().map(|e| e.id).collect())
}

/// The id of one event payload (SSE data, WebSocket text).
pub fn event_id(payload: &[u8]) -> Option<u64> {
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
    fn upstream_payload_has_its_size_and_time() {
        let text = upstream_payload(3, 9, Duration::from_millis(1234), 120);
        assert_eq!(text.len(), 120);
        assert_eq!(
            upstream_sent_at(text.as_bytes()),
            Some(Duration::from_millis(1234))
        );
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
}
