//! The WebSocket transport's long-polling fallback, as engine.io (Socket.IO's transport layer) runs its
//! `polling` transport (protocol 4; docs/references.md, "engine.io"):
//!
//! - **Handshake**: `GET /socket.io/?EIO=4&transport=polling` opens a session on the server that
//!   answers it and returns its id in an open packet:
//!   `0{"sid":"…","upgrades":[],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`.
//! - **Polls and sends** carry `&sid=…`: a `GET` is held until the session has packets for it; a
//!   `POST` carries the client's packets (`3` pong, `4…` message, `1` close) and is answered `ok`.
//!   Packets in one body are separated by the record separator `\x1e`.
//! - **The session holds the client's pending packets** (events as `4<event JSON>`, pings as `2`) in
//!   its own buffer between polls, filled from the hub as events arrive, as engine.io's `writeBuffer`
//!   is: nothing is replayed from a cursor once the session is open. The server pings every
//!   `pingInterval` and closes a session whose pong is `pingTimeout` late ("ping timeout"), or whose
//!   held poll's connection closes ("poll connection closed prematurely").
//! - **A `sid` this server does not know** is refused as engine.io refuses it: `400` with
//!   `{"code":1,"message":"Session ID unknown"}` (lib/server.ts `verify` and `abortRequest`). The
//!   client's transport errors, and it reconnects with its backoff and handshakes again, as
//!   socket.io-client's Manager does.
//!
//! Simplifications: Socket.IO's own packet layer on top of engine.io (`40`, `42["event",…]`) is left
//! out — a message packet carries the event JSON the other transports carry; the handshake may carry
//! rtsim's `last_event_id` (the WebSocket transport's resume, in the role of Socket.IO's connection
//! state recovery) and the first poll gets a welcome message saying where the session starts; a
//! session is never upgraded to WebSocket (the fallback runs because the upgrade was refused).
//! Without a WebSocket `ping_interval` in the profile the session pings at engine.io's default, 25 s.
//!
//! Sessions live in the server's [`SessionTable`] and die with it: a restarted or different server
//! refuses them. That is why Socket.IO's docs require sticky sessions behind a load balancer.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::http::{self, HttpConnection, ResponseBody};
use super::{ClientCtx, Deliveries, ServerCtx};
use crate::net::Purpose;

/// The path engine.io serves (Socket.IO's default).
pub const PATH: &str = "/socket.io/";
/// engine.io's packet separator in a polling body (protocol 4).
const SEPARATOR: u8 = 0x1e;
/// engine.io's default `pingInterval`, used when the profile sets no WebSocket ping.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// The error engine.io answers for a session it does not hold (`Server.errors.UNKNOWN_SID`).
pub const UNKNOWN_SID_BODY: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

/// The sessions one server holds, by id. Ids are 20 characters from the table's own seeded
/// generator (engine.io: 15 random bytes in base64), so two servers never issue the same one.
pub struct SessionTable {
    rng: ChaCha8Rng,
    sessions: BTreeMap<String, Rc<Session>>,
}

impl SessionTable {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            sessions: BTreeMap::new(),
        }
    }

    /// Opens a session whose events start after `cursor`.
    pub fn open(&mut self, cursor: u64) -> Rc<Session> {
        let sid = loop {
            const DIGITS: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let sid: String = (0..20)
                .map(|_| DIGITS[self.rng.gen_range(0..64)] as char)
                .collect();
            if !self.sessions.contains_key(&sid) {
                break sid;
            }
        };
        let session = Rc::new(Session {
            sid: sid.clone(),
            packets: RefCell::new(VecDeque::new()),
            cursor: Cell::new(cursor),
            closed: Cell::new(false),
            polling: Cell::new(false),
            ponged: Cell::new(false),
            ready: Notify::new(),
            attention: Notify::new(),
        });
        self.sessions.insert(sid, session.clone());
        session
    }

    pub fn get(&self, sid: &str) -> Option<Rc<Session>> {
        self.sessions.get(sid).cloned()
    }

    /// Closes and forgets a session: a held poll is answered with a close packet, and later
    /// requests for it are refused. Closing twice does nothing.
    pub fn close(&mut self, sid: &str) {
        if let Some(session) = self.sessions.remove(sid) {
            session.closed.set(true);
            session.ready.notify_one();
            session.attention.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

impl Default for SessionTable {
    fn default() -> Self {
        Self::new(0)
    }
}

/// One client's session: the packets waiting for its next poll.
pub struct Session {
    pub sid: String,
    packets: RefCell<VecDeque<Bytes>>,
    /// The last event moved into `packets`.
    cursor: Cell<u64>,
    closed: Cell<bool>,
    /// A poll is being held.
    polling: Cell<bool>,
    /// A pong arrived since the heartbeat last looked.
    ponged: Cell<bool>,
    /// Wakes the held poll (packets or close).
    ready: Notify,
    /// Wakes the session's heartbeat task (pong or close).
    attention: Notify,
}

impl Session {
    /// Queues one packet for the next poll.
    pub fn push(&self, packet: Bytes) {
        self.packets.borrow_mut().push_back(packet);
        self.ready.notify_one();
    }

    /// Moves the hub's events after the session's cursor into its buffer, as message packets.
    pub fn collect(&self, hub: &crate::hub::Hub) {
        let backlog = hub.since(self.cursor.get());
        for event in &backlog.events {
            let mut packet = Vec::with_capacity(event.payload.len() + 1);
            packet.push(b'4');
            packet.extend_from_slice(&event.payload);
            self.push(Bytes::from(packet));
            self.cursor.set(event.id);
        }
    }

    /// Everything buffered, as one polling body; `None` when nothing waits.
    pub fn take_payload(&self) -> Option<Bytes> {
        let mut packets = self.packets.borrow_mut();
        if packets.is_empty() {
            return None;
        }
        let mut body = Vec::with_capacity(packets.iter().map(|p| p.len() + 1).sum());
        for (i, packet) in packets.drain(..).enumerate() {
            if i > 0 {
                body.push(SEPARATOR);
            }
            body.extend_from_slice(&packet);
        }
        Some(Bytes::from(body))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Packets waiting.
    pub fn pending(&self) -> usize {
        self.packets.borrow().len()
    }
}

/// The packets of a polling body.
pub fn packets(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == SEPARATOR).filter(|p| !p.is_empty())
}

/// The heartbeat a server runs: its interval and the pong's allowance.
fn timing(server: &ServerCtx) -> (Duration, Duration) {
    let interval = server
        .settings
        .ws_ping_interval
        .unwrap_or(DEFAULT_PING_INTERVAL);
    (interval, server.settings.ws_ping_timeout)
}

/// A JSON error answer as engine.io's `abortRequest` writes it.
fn refuse(server: &ServerCtx, code: u8, message: &str) -> Response<ResponseBody> {
    http::response(
        server,
        StatusCode::BAD_REQUEST,
        "application/json",
        http::full(format!("{{\"code\":{code},\"message\":\"{message}\"}}")),
    )
}

/// The server half: handshake, polls and sends.
pub fn serve(
    request: Request<Incoming>,
    server: Rc<ServerCtx>,
) -> LocalBoxFuture<'static, Response<ResponseBody>> {
    async move {
        if http::query_param(&request, "transport") != Some("polling") {
            return refuse(&server, 0, "Transport unknown");
        }
        if http::query_param(&request, "EIO") != Some("4") {
            return refuse(&server, 5, "Unsupported protocol version");
        }
        let Some(sid) = http::query_param(&request, "sid").map(str::to_string) else {
            if request.method() != Method::GET {
                return refuse(&server, 2, "Bad handshake method");
            }
            return handshake(&request, &server);
        };
        let Some(session) = server.sessions.borrow().get(&sid) else {
            return refuse(&server, 1, "Session ID unknown");
        };
        if request.method() == Method::POST {
            receive(request, &server, &session).await
        } else {
            poll(&server, &session).await
        }
    }
    .boxed_local()
}

fn handshake(request: &Request<Incoming>, server: &Rc<ServerCtx>) -> Response<ResponseBody> {
    let requested = match http::query_param(request, "last_event_id") {
        None => server.hub.latest(),
        Some(value) => match value.parse::<u64>() {
            Ok(id) => id,
            Err(_) => return refuse(server, 3, "Bad request"),
        },
    };
    let reset = server.resume(requested);
    let session = server.sessions.borrow_mut().open(reset.cursor());
    let (interval, timeout) = timing(server);
    // A resume the server cannot honour is said first, then where the session starts.
    if !reset.is_exact() {
        session.push(Bytes::from(format!("4{}", reset.json())));
    }
    session.push(Bytes::from(format!(
        "4{{\"type\":\"welcome\",\"last_event_id\":{}}}",
        reset.cursor()
    )));
    tokio::task::spawn_local(heartbeat(server.clone(), session.clone()));
    let open = format!(
        "0{{\"sid\":\"{}\",\"upgrades\":[],\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
        session.sid,
        interval.as_millis(),
        timeout.as_millis(),
        server.policy.max_body_bytes
    );
    http::response(
        server,
        StatusCode::OK,
        "text/plain; charset=UTF-8",
        http::full(open),
    )
}

/// A session's life on the server: events into its buffer as they are published, a ping every
/// interval, and the close when a pong is late or the server stops.
async fn heartbeat(server: Rc<ServerCtx>, session: Rc<Session>) {
    let (interval, timeout) = timing(&server);
    let mut updates = server.hub.subscribe();
    let mut stopping = server.shutdown.watch();
    let mut next_ping = Some(Instant::now() + interval);
    let mut pong_deadline: Option<Instant> = None;
    loop {
        if session.is_closed() {
            return;
        }
        if session.ponged.replace(false) {
            pong_deadline = None;
            next_ping = Some(Instant::now() + interval);
        }
        session.collect(&server.hub);
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            () = stopping.triggered() => {
                // A graceful stop closes the session: the held poll gets the close packet.
                session.push(Bytes::from_static(b"1"));
                server.sessions.borrow_mut().close(&session.sid);
                return;
            }
            () = session.attention.notified() => {}
            () = updates.changed() => {}
            () = sleep_until_option(next_ping) => {
                session.push(Bytes::from_static(b"2"));
                next_ping = None;
                pong_deadline = Some(Instant::now() + timeout);
            }
            () = sleep_until_option(pong_deadline) => {
                // engine.io: "ping timeout".
                server.sessions.borrow_mut().close(&session.sid);
                return;
            }
        }
    }
}

async fn sleep_until_option(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Closes the session if a held poll goes away unanswered (its connection closed).
struct HeldPoll {
    server: Rc<ServerCtx>,
    session: Rc<Session>,
    answered: bool,
}

impl Drop for HeldPoll {
    fn drop(&mut self) {
        self.session.polling.set(false);
        if !self.answered {
            // engine.io: "poll connection closed prematurely".
            if let Ok(mut sessions) = self.server.sessions.try_borrow_mut() {
                sessions.close(&self.session.sid);
            }
        }
    }
}

async fn poll(server: &Rc<ServerCtx>, session: &Rc<Session>) -> Response<ResponseBody> {
    if session.polling.get() {
        // engine.io: "overlap from client" — the session errors and the request gets a bare 400.
        server.sessions.borrow_mut().close(&session.sid);
        return http::response(
            server,
            StatusCode::BAD_REQUEST,
            "text/plain",
            http::full(""),
        );
    }
    session.polling.set(true);
    let mut held = HeldPoll {
        server: server.clone(),
        session: session.clone(),
        answered: false,
    };
    let body = loop {
        if let Some(body) = session.take_payload() {
            break body;
        }
        if session.is_closed() {
            break Bytes::from_static(b"1");
        }
        session.ready.notified().await;
    };
    held.answered = true;
    drop(held);
    http::response(
        server,
        StatusCode::OK,
        "text/plain; charset=UTF-8",
        http::full(body),
    )
}

async fn receive(
    request: Request<Incoming>,
    server: &Rc<ServerCtx>,
    session: &Rc<Session>,
) -> Response<ResponseBody> {
    let limit = server.policy.max_body_bytes;
    let body = http_body_util::Limited::new(request.into_body(), limit);
    let body = match tokio::time::timeout(server.policy.body_timeout, body.collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        // engine.io answers an oversized body 413 and a broken one by closing the session.
        Ok(Err(broken)) if broken.is::<http_body_util::LengthLimitError>() => {
            return http::closing(http::error(
                server,
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload too large",
            ))
        }
        _ => {
            server.sessions.borrow_mut().close(&session.sid);
            return http::closing(refuse(server, 3, "Bad request"));
        }
    };
    for packet in packets(&body) {
        match packet[0] {
            b'3' => {
                session.ponged.set(true);
                session.attention.notify_one();
            }
            b'4' => {
                if let Some(header) = super::upstream_header(&packet[1..]) {
                    super::receive_upstream_message(server, &header);
                }
            }
            b'1' => server.sessions.borrow_mut().close(&session.sid),
            _ => {}
        }
    }
    // engine.io answers a data request with `ok` as text/html (lib/transports/polling.ts).
    http::response(server, StatusCode::OK, "text/html", http::full("ok"))
}

/// The fallback client for the rest of the run, starting from what the WebSocket client knew: a
/// session per handshake, reconnecting with backoff whenever the transport errors.
pub async fn run_client(client: &ClientCtx, mut last_id: u64, mut resumable: bool) {
    let mut failures = 0u32;
    loop {
        if one_session(client, &mut last_id, &mut resumable).await {
            // socket.io-client's Manager resets its backoff once a connection opens.
            failures = 0;
        }
        client.lost_session();
        client.wait_before_reconnect(failures, Duration::ZERO).await;
        failures += 1;
    }
}

/// The open packet's contents the client uses.
#[derive(serde::Deserialize)]
struct Open {
    sid: String,
    #[serde(rename = "pingInterval")]
    ping_interval: u64,
    #[serde(rename = "pingTimeout")]
    ping_timeout: u64,
}

/// A request's answer: status and whole body.
type Answer = Result<(StatusCode, Bytes), http::RequestError>;

/// Counts an answer that refused the session as unknown.
fn note_refusal(client: &ClientCtx, status: StatusCode, body: &[u8]) {
    #[derive(serde::Deserialize)]
    struct EngineError {
        code: u8,
    }
    let unknown = serde_json::from_slice::<EngineError>(body).is_ok_and(|e| e.code == 1);
    if status == StatusCode::BAD_REQUEST && unknown {
        client.recorder.borrow_mut().session_refused();
    }
}

/// One engine.io session, handshake to error; true when the handshake opened it.
async fn one_session(client: &ClientCtx, last_id: &mut u64, resumable: &mut bool) -> bool {
    let Ok(mut polls) = HttpConnection::open(client, Purpose::Session).await else {
        return false;
    };
    let resume = if client.settings.ws_resume && *resumable {
        format!("&last_event_id={last_id}")
    } else {
        String::new()
    };
    let patience = client.settings.request_timeout;
    let answer: Answer = polls
        .exchange(
            Method::GET,
            &format!("{PATH}?EIO=4&transport=polling{resume}"),
            None,
            patience,
        )
        .await;
    let open = match answer {
        Ok((StatusCode::OK, body)) => body
            .strip_prefix(b"0")
            .and_then(|json| serde_json::from_slice::<Open>(json).ok()),
        Ok((status, body)) => {
            note_refusal(client, status, &body);
            None
        }
        Err(_) => None,
    };
    let Some(open) = open else {
        return false;
    };
    client.session_up();
    let deliveries = client.deliveries();
    let session = format!("{PATH}?EIO=4&transport=polling&sid={}", open.sid);
    // The client's heartbeat check: a poll unanswered for a ping interval and timeout is dead.
    let silence =
        Duration::from_millis(open.ping_interval) + Duration::from_millis(open.ping_timeout);
    // Packets to send, with the upstream message number an `ok` acknowledges.
    let outgoing: RefCell<VecDeque<(Option<u64>, String)>> = RefCell::new(
        client
            .unacknowledged()
            .into_iter()
            .map(|(seq, text)| (Some(seq), format!("4{text}")))
            .collect(),
    );
    let wake = Notify::new();
    let reader = async {
        loop {
            let answer: Answer = polls
                .exchange(Method::GET, &session, None, silence + patience)
                .await;
            let body = match answer {
                Ok((StatusCode::OK, body)) => body,
                Ok((status, body)) => return note_refusal(client, status, &body),
                Err(_) => return,
            };
            for packet in packets(&body) {
                match packet[0] {
                    b'4' => receive_message(client, &deliveries, &packet[1..], last_id, resumable),
                    b'2' => {
                        outgoing.borrow_mut().push_back((None, "3".to_string()));
                        wake.notify_one();
                    }
                    // The server closed the session.
                    b'1' => return,
                    _ => {}
                }
            }
        }
    };
    let writer = async {
        let mut sends: Option<HttpConnection> = None;
        let mut next_upstream = client.next_upstream_gap().map(|gap| Instant::now() + gap);
        loop {
            if outgoing.borrow().is_empty() {
                tokio::select! {
                    // Fixed branch order: tokio's random order is unseeded.
                    biased;
                    () = wake.notified() => {}
                    () = sleep_until_option(next_upstream) => {
                        let (seq, text) = client.upstream_message();
                        let acked = client.workload.upstream_acks.then_some(seq);
                        outgoing.borrow_mut().push_back((acked, format!("4{text}")));
                        next_upstream = client.next_upstream_gap().map(|gap| Instant::now() + gap);
                    }
                    // The idle sending connection closed by the server is let go of at once.
                    () = http::idle(&mut sends, std::future::pending::<()>()) => {}
                }
                continue;
            }
            let batch: Vec<(Option<u64>, String)> = outgoing.borrow_mut().drain(..).collect();
            let mut body = Vec::new();
            for (i, (_, packet)) in batch.iter().enumerate() {
                if i > 0 {
                    body.push(SEPARATOR);
                }
                body.extend_from_slice(packet.as_bytes());
            }
            // A browser sends while the poll is held: on a second pooled connection.
            if http::usable(&mut sends).is_none() {
                match HttpConnection::open(client, Purpose::Upstream).await {
                    Ok(open) => sends = Some(open),
                    Err(_) => return,
                }
            }
            let connection = sends.as_mut().expect("opened above");
            let answer: Answer = connection
                .exchange(
                    Method::POST,
                    &session,
                    Some((Bytes::from(body), "text/plain;charset=UTF-8")),
                    patience,
                )
                .await;
            match answer {
                Ok((StatusCode::OK, _)) => {
                    for seq in batch.iter().filter_map(|(seq, _)| *seq) {
                        client.acknowledged(seq);
                    }
                }
                Ok((status, body)) => return note_refusal(client, status, &body),
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        // Fixed branch order: tokio's random order is unseeded.
        biased;
        () = reader => {}
        () = writer => {}
    }
    true
}

/// A message packet's contents: an event, a reset, or the welcome.
fn receive_message(
    client: &ClientCtx,
    deliveries: &Deliveries,
    text: &[u8],
    last_id: &mut u64,
    resumable: &mut bool,
) {
    if let Some(id) = super::event_id(text) {
        deliveries.deliver(id);
        *last_id = (*last_id).max(id);
    } else if super::reset_message_cursor(text).is_some() {
        client.recorder.borrow_mut().resume_reset();
    } else if let Some(start) = welcome_cursor(text) {
        *last_id = start;
    }
    *resumable = true;
}

fn welcome_cursor(text: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Welcome {
        #[serde(rename = "type")]
        kind: String,
        last_event_id: u64,
    }
    serde_json::from_slice::<Welcome>(text)
        .ok()
        .filter(|w| w.kind == "welcome")
        .map(|w| w.last_event_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_with(ids: std::ops::RangeInclusive<u64>) -> Rc<crate::hub::Hub> {
        let hub = crate::hub::Hub::new(100);
        for id in ids {
            hub.push(crate::hub::Event {
                id,
                payload: crate::hub::event_payload(id, Duration::ZERO, 40),
            });
        }
        hub
    }

    #[test]
    fn tables_issue_distinct_ids_and_forget_closed_sessions() {
        let mut a = SessionTable::new(1);
        let mut b = SessionTable::new(2);
        let one = a.open(0);
        let two = a.open(0);
        let other = b.open(0);
        assert_eq!(one.sid.len(), 20);
        assert_ne!(one.sid, two.sid);
        assert_ne!(one.sid, other.sid, "two servers never share an id");
        assert!(
            a.get(&other.sid).is_none(),
            "a session is known only where it was opened"
        );
        assert_eq!(a.len(), 2);
        a.close(&one.sid);
        assert!(one.is_closed());
        assert!(a.get(&one.sid).is_none());
        a.close(&one.sid);
        assert_eq!(a.len(), 1);
        // The same seed gives the same ids: runs are reproducible.
        assert_eq!(SessionTable::new(1).open(0).sid, one.sid);
    }

    #[test]
    fn a_session_buffers_events_after_its_start_until_polled() {
        let hub = hub_with(1..=5);
        let mut table = SessionTable::new(7);
        let session = table.open(3);
        assert!(session.take_payload().is_none());
        session.collect(&hub);
        session.push(Bytes::from_static(b"2"));
        assert_eq!(session.pending(), 3);
        let body = session.take_payload().unwrap();
        let got: Vec<&[u8]> = packets(&body).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0][0], b'4');
        assert_eq!(crate::transport::event_id(&got[0][1..]), Some(4));
        assert_eq!(crate::transport::event_id(&got[1][1..]), Some(5));
        assert_eq!(got[2], b"2");
        // Taken once: the buffer is empty, and collecting again adds only what is new.
        assert!(session.take_payload().is_none());
        session.collect(&hub);
        assert!(session.take_payload().is_none());
        hub.push(crate::hub::Event {
            id: 6,
            payload: crate::hub::event_payload(6, Duration::ZERO, 40),
        });
        session.collect(&hub);
        assert_eq!(session.pending(), 1);
    }

    #[test]
    fn welcome_and_refusal_bodies_are_read_as_the_client_reads_them() {
        assert_eq!(
            welcome_cursor(br#"{"type":"welcome","last_event_id":9}"#),
            Some(9)
        );
        assert_eq!(
            welcome_cursor(br#"{"type":"reset","last_event_id":9}"#),
            None
        );
        let parsed: serde_json::Value = serde_json::from_str(UNKNOWN_SID_BODY).unwrap();
        assert_eq!(parsed["code"], 1);
        assert_eq!(parsed["message"], "Session ID unknown");
        assert_eq!(packets(b"2\x1e41\x1e").count(), 2);
    }
}
