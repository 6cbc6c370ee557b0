//! WebSocket (RFC 6455): `GET /ws` with the `Upgrade` handshake, then text frames carrying events (the
//! same JSON payloads as the other transports, so the event id travels in each frame). The server pings
//! every `ping_interval` and drops a client whose pong is `ping_timeout` late; the client declares the
//! connection dead after `ping_interval + ping_timeout` of silence. Each session opens with a welcome
//! frame (`{"type":"welcome","last_event_id":N}`) telling the client where it starts. A reconnecting client with `resume`
//! asks for `?last_event_id=<id>` and the server replays from its history. When the upgrade is refused
//! (a restrictive proxy), a client with `fallback = "long-polling"` switches to long polling, as
//! Socket.IO and SignalR do: engine.io's polling sessions (see [`super::engine_io`]).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::Message;

use super::deadline::Deadline;
use super::engine_io;
use super::http::{self, ResponseBody};
use super::ws_io::WsStream;
use super::{ClientCtx, ConnectionGuard, Reset, ServerCtx, Transport, TransportKind};
use crate::net::Purpose;
use crate::profile::Fallback;

pub struct WebSocket;

impl Transport for WebSocket {
    fn kind(&self) -> TransportKind {
        TransportKind::Websocket
    }

    fn path(&self) -> &'static str {
        "/ws"
    }

    fn serve(
        &self,
        mut request: Request<Incoming>,
        server: Rc<ServerCtx>,
        connection: Option<u64>,
    ) -> LocalBoxFuture<'static, Response<ResponseBody>> {
        async move {
            let key = match check_upgrade(&request) {
                Ok(key) => key,
                Err(refusal) => return refusal.answer(&server),
            };
            let requested = match http::query_param(&request, "last_event_id") {
                None => server.hub.latest(),
                Some(value) => match value.parse::<u64>() {
                    Ok(id) => id,
                    Err(_) => {
                        return http::error(
                            &server,
                            StatusCode::BAD_REQUEST,
                            "last_event_id must be an event id (digits)",
                        )
                    }
                },
            };
            let reset = server.resume(requested);
            // The connection's slot (rtsim serve) goes with the session, which outlives the request.
            let guard = request.extensions_mut().remove::<ConnectionGuard>();
            let on_upgrade = hyper::upgrade::on(&mut request);
            let session_server = server.clone();
            tokio::task::spawn_local(async move {
                let _guard = guard;
                if let Ok(upgraded) = on_upgrade.await {
                    // The connection's own count ended when hyper handed it over: the session's
                    // starts here, so the socket is counted once for as long as it lives.
                    let _open = session_server.connection_opened();
                    let socket = TokioIo::new(upgraded);
                    let config = server_config(&session_server);
                    let ws = WsStream::from_raw_socket(socket, Role::Server, config);
                    serve_socket(ws, session_server, reset, connection).await;
                }
            });
            let mut response = http::response(
                &server,
                StatusCode::SWITCHING_PROTOCOLS,
                "text/plain",
                http::full(""),
            );
            let headers = response.headers_mut();
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CACHE_CONTROL);
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(accept) = HeaderValue::from_str(&key) {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
            response
        }
        .boxed_local()
    }

    fn run_client(&self, client: Rc<ClientCtx>) -> LocalBoxFuture<'static, ()> {
        run_websocket_client(client).boxed_local()
    }
}

/// Socket buffers sized for small messages: tungstenite's 128 KiB defaults cost 256 KiB per connection
/// pair (274 MB at 1,000 clients) and a 128 KiB read per frame. Messages larger than the buffer still
/// work; the buffer grows. The read buffer is 512 bytes because tungstenite zeroes up to its size
/// before every read, even one that finds nothing: 4 KiB took a fifth of a 1,000-client run's
/// instructions (and 36 MB at 10,000 clients).
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
}

/// The server's side: the same buffers, and messages (and frames) from clients limited to the
/// policy's size instead of tungstenite's 64 MiB, so a client cannot make the server hold a huge
/// unfinished message. A larger one closes the session with 1009.
fn server_config(server: &ServerCtx) -> WebSocketConfig {
    let limit = server.policy.max_message_bytes;
    config()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// Why an upgrade request is refused, and how (RFC 6455 §4.2.1–4.2.2).
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// 400 Bad Request.
    Bad(&'static str),
    /// 426 Upgrade Required: a plain GET, or a WebSocket version other than 13.
    UpgradeRequired(&'static str),
}

impl Refusal {
    /// The answer, with `Sec-WebSocket-Version: 13` (the version this server speaks, §4.4).
    fn answer(&self, server: &ServerCtx) -> Response<ResponseBody> {
        let (status, message) = match *self {
            Refusal::Bad(message) => (StatusCode::BAD_REQUEST, message),
            Refusal::UpgradeRequired(message) => (StatusCode::UPGRADE_REQUIRED, message),
        };
        let mut answer = http::error(server, status, message);
        let headers = answer.headers_mut();
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        if status == StatusCode::UPGRADE_REQUIRED {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        }
        answer
    }
}

/// Checks the RFC 6455 opening handshake (§4.2.1); returns the `Sec-WebSocket-Accept` value. The
/// method was checked by [`crate::server::admit`] (GET only).
fn check_upgrade(request: &Request<Incoming>) -> Result<String, Refusal> {
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    if !has(header::UPGRADE, "websocket") {
        return Err(Refusal::UpgradeRequired(
            "this path speaks WebSocket: send a GET with `Upgrade: websocket`",
        ));
    }
    if request.version() != hyper::Version::HTTP_11 {
        // §4.1: the handshake is HTTP/1.1 or later; HTTP/1.0 has no 101.
        return Err(Refusal::Bad("a WebSocket handshake needs HTTP/1.1"));
    }
    if !has(header::CONNECTION, "upgrade") {
        return Err(Refusal::Bad(
            "an upgrade needs `Connection: Upgrade` as well as `Upgrade: websocket`",
        ));
    }
    let versions: Vec<_> = headers
        .get_all(header::SEC_WEBSOCKET_VERSION)
        .iter()
        .collect();
    match versions.as_slice() {
        [] => return Err(Refusal::Bad("Sec-WebSocket-Version is missing (use 13)")),
        [version] if version.as_bytes() == b"13" => {}
        _ => {
            return Err(Refusal::UpgradeRequired(
                "this server speaks WebSocket version 13 only",
            ))
        }
    }
    let keys: Vec<_> = headers.get_all(header::SEC_WEBSOCKET_KEY).iter().collect();
    let [key] = keys.as_slice() else {
        return Err(Refusal::Bad(
            "an upgrade needs exactly one Sec-WebSocket-Key",
        ));
    };
    if !valid_key(key.as_bytes()) {
        return Err(Refusal::Bad(
            "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters)",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// §4.1: the key is a base64-encoded 16-byte value: 22 base64 digits, the last carrying 2 bits only
/// (its low 4 bits zero), then `==`.
fn valid_key(key: &[u8]) -> bool {
    let is_digit = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    key.len() == 24
        && key[..22].iter().all(is_digit)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

/// How long the server spends closing a session properly (sending its Close, waiting for the
/// client's, letting the client's last bytes drain) before it drops the connection anyway.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The close code for a session that broke with `error` — protocol violations (1002), invalid UTF-8
/// (1007) and messages too big (1009) are answered with a Close (RFC 6455 §7.1.7, §7.4.1); a
/// connection that simply went away gets nothing (there is no one to tell).
fn close_code_for(error: &tungstenite::Error) -> Option<(CloseCode, &'static str)> {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        tungstenite::Error::Protocol(_) => Some((CloseCode::Protocol, "protocol violation")),
        tungstenite::Error::Utf8(_) => Some((CloseCode::Invalid, "text is not valid UTF-8")),
        tungstenite::Error::Capacity(_) => Some((CloseCode::Size, "message too big")),
        _ => None,
    }
}

/// Ends a session properly: sends `ours` (or flushes the reply tungstenite queued to the client's
/// Close), waits for the client's Close when we started the handshake and `wait_reply` says so,
/// then closes the TCP connection first, as the server should (§7.1.1), and drains what the client
/// still sends so the close does not turn into a reset that could destroy our Close frame in flight.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WsStream<S>,
    ours: Option<CloseFrame>,
    wait_reply: bool,
) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        match ours {
            Some(frame) => {
                let _ = ws.close(Some(frame)).await;
                if wait_reply {
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_close() {
                            break;
                        }
                    }
                }
            }
            None => {
                let _ = ws.flush().await;
            }
        }
        let io = ws.get_mut();
        let _ = io.shutdown().await;
        let mut scratch = [0u8; 4096];
        while matches!(io.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// An event as a text frame. The hub writes its payloads as JSON from strings, so they are the
/// valid UTF-8 a text frame must carry (RFC 6455 §5.6, checked by the receiving client): they go
/// out as they are, shared without a copy, instead of being checked again for every session.
fn event_frame(payload: Bytes) -> Message {
    debug_assert!(
        std::str::from_utf8(&payload).is_ok(),
        "an event payload is not UTF-8"
    );
    Message::Frame(Frame::message(payload, OpCode::Data(OpData::Text), true))
}

/// The server side of one WebSocket session.
async fn serve_socket<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WsStream<S>,
    server: Rc<ServerCtx>,
    reset: Reset,
    connection: Option<u64>,
) {
    let mut updates = server.hub.subscribe();
    let mut stopping = server.shutdown.watch_connection(connection);
    let mut cursor = reset.cursor();
    // A resume the server cannot honour is said first, before the welcome (never silent).
    if !reset.is_exact() && ws.feed(Message::text(reset.json())).await.is_err() {
        return;
    }
    // Then where this session starts, so that a client can resume even before its first event.
    let welcome = format!("{{\"type\":\"welcome\",\"last_event_id\":{cursor}}}");
    if ws.send(Message::text(welcome)).await.is_err() {
        return;
    }
    let ping_interval = server.settings.ws_ping_interval;
    let ping_timeout = server.settings.ws_ping_timeout;
    // The ping and pong timers live as long as the session and move only when their deadline
    // changes, instead of a timer registered and cancelled per event and connection (cancelling
    // alone was 4 % of a 10,000-client run: a wheel entry's list neighbours are other connections'
    // timers, out of cache).
    let mut ping_timer = Deadline::new(ping_interval.map(|every| Instant::now() + every));
    let mut pong_timer = Deadline::new(None);
    let mut reads = ReadGate::new();
    let mut backlog = Vec::new();
    loop {
        server.hub.since_into(cursor, &mut backlog);
        let sent_from = cursor;
        for event in backlog.drain(..) {
            if ws.feed(event_frame(event.payload)).await.is_err() {
                return;
            }
            cursor = event.id;
        }
        if cursor != sent_from && ws.flush().await.is_err() {
            return;
        }
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            () = stopping.triggered() => {
                let going = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                return finish(ws, Some(going), true).await;
            }
            () = updates.changed() => {}
            message = reads.next(&mut ws) => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(header) = super::upstream_header(text.as_bytes()) {
                        super::receive_upstream_message(&server, &header);
                        if let (true, Some((_, seq))) = (header.ack, header.id) {
                            if ws.send(Message::text(super::ack_frame(seq))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(Ok(Message::Pong(_))) => pong_timer.set(None),
                // tungstenite has queued the reply (echoing the code, or 1002 for a code that may
                // not be sent): it must reach the client before the connection closes.
                Some(Ok(Message::Close(_))) => return finish(ws, None, false).await,
                Some(Err(error)) => {
                    if let Some((code, reason)) = close_code_for(&error) {
                        let frame = CloseFrame { code, reason: reason.into() };
                        finish(ws, Some(frame), false).await;
                    }
                    return;
                }
                None => return,
                Some(Ok(_)) => {}
            },
            () = ping_timer.elapsed() => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                let now = Instant::now();
                ping_timer.set(ping_interval.map(|every| now + every));
                if pong_timer.at().is_none() {
                    pong_timer.set(Some(now + ping_timeout));
                }
            }
            () = pong_timer.elapsed() => return,
        }
    }
}

/// Polls a stream again only once its waker has fired: the server's loop wakes for every event it
/// sends, and polling the socket's read side each time to learn that nothing came touched its buffers
/// (out of cache at 10,000 connections) for nothing. The stream is polled at the first call, again
/// after every item (more may be buffered), and after a wake; in between it could only say `Pending`.
struct ReadGate {
    flag: Arc<WakeFlag>,
    waker: Waker,
}

/// Set by a wake from the stream; wakes the task that last polled the gate.
struct WakeFlag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ReadGate {
    fn new() -> Self {
        let flag = Arc::new(WakeFlag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(flag.clone());
        Self { flag, waker }
    }

    async fn next<S: futures_util::Stream + Unpin>(&mut self, stream: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| {
            self.flag.task.register(cx.waker());
            // Cleared before the poll: a wake during it (a yield for tokio's budget) sets it again.
            if !self.flag.woken.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            let mut gated = Context::from_waker(&self.waker);
            let polled = stream.poll_next_unpin(&mut gated);
            if polled.is_ready() {
                self.flag.woken.store(true, Ordering::Release);
            }
            polled
        })
        .await
    }
}

/// A browser `WebSocket` with a reconnecting wrapper, for the whole run.
async fn run_websocket_client(client: Rc<ClientCtx>) {
    let mut last_id = 0u64;
    // True once a session has told us where we stand (welcome or event): from then on we can resume.
    let mut resumable = false;
    let mut failures = 0u32;
    loop {
        match one_session(&client, &mut last_id, &mut resumable).await {
            Session::Ended => failures = 0,
            Session::Failed => {}
            Session::Refused if client.settings.ws_fallback == Fallback::LongPolling => {
                client.recorder.borrow_mut().fallback();
                // Socket.IO's fallback: engine.io polling sessions, upstream messages included.
                engine_io::run_client(&client, last_id, resumable).await;
                return;
            }
            Session::Refused => {}
        }
        client.lost_session();
        client.wait_before_reconnect(failures, Duration::ZERO).await;
        failures += 1;
    }
}

enum Session {
    /// The connection or handshake failed before the session started.
    Failed,
    /// The upgrade was answered with an HTTP error (refused by a proxy or the server).
    Refused,
    /// A session ran and then ended (closed, broke or fell silent).
    Ended,
}

/// The session's starting point announced in the server's welcome frame.
fn welcome_cursor(text: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Welcome {
        last_event_id: u64,
    }
    serde_json::from_slice::<Welcome>(text)
        .ok()
        .map(|w| w.last_event_id)
}

async fn one_session(client: &ClientCtx, last_id: &mut u64, resumable: &mut bool) -> Session {
    let Ok(io) = client.connect(Purpose::Session).await else {
        return Session::Failed;
    };
    let query = if client.settings.ws_resume && *resumable {
        format!("?last_event_id={last_id}")
    } else {
        String::new()
    };
    let url = format!("ws://{}/ws{query}", client.connector.authority());
    let patience = client.settings.request_timeout;
    let mut ws = match tokio::time::timeout(patience, WsStream::connect(url, io, config())).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(tungstenite::Error::Http(_))) => {
            client.recorder.borrow_mut().upgrade_refused();
            return Session::Refused;
        }
        Ok(Err(_)) | Err(_) => return Session::Failed,
    };
    client.session_up();
    let silence_limit = client
        .settings
        .ws_ping_interval
        .map(|every| every + client.settings.ws_ping_timeout);
    let mut upstream_timer =
        Deadline::new(client.next_upstream_gap().map(|gap| Instant::now() + gap));
    // One silence timer for the session, re-armed only when it fires, to the last frame's time plus
    // the limit (as the SSE client does): a frame only notes the time. Moving the timer on every
    // frame, even later (which tokio records without touching the wheel), cost more than the wake
    // it saves once per limit.
    let mut last_heard = Instant::now();
    let mut silence_timer = Deadline::new(silence_limit.map(|limit| last_heard + limit));
    let deliveries = client.deliveries();
    // With upstream_acks: what the last session left unacknowledged goes again, oldest first.
    for (_, text) in client.unacknowledged() {
        if ws.send(Message::text(text)).await.is_err() {
            return Session::Ended;
        }
    }
    loop {
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            message = ws.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(id) = super::event_id(text.as_bytes()) {
                            deliveries.deliver(id);
                            *last_id = (*last_id).max(id);
                        } else if super::reset_message_cursor(text.as_bytes()).is_some() {
                            // The server could not resume us exactly; its welcome says from where.
                            client.recorder.borrow_mut().resume_reset();
                        } else if let Some(seq) = super::acked_seq(text.as_bytes()) {
                            client.acknowledged(seq);
                        } else if let Some(start) = welcome_cursor(text.as_bytes()) {
                            // Where the server starts this session (after a reset it may be below
                            // our cursor).
                            *last_id = start;
                        }
                        *resumable = true;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Session::Ended,
                    // Pings are answered by tungstenite on the next read.
                    Some(Ok(_)) => {}
                }
            }
            () = upstream_timer.elapsed() => {
                let (_, message) = client.upstream_message();
                if ws.send(Message::text(message)).await.is_err() {
                    return Session::Ended;
                }
                upstream_timer.set(client.next_upstream_gap().map(|gap| Instant::now() + gap));
            }
            () = silence_timer.elapsed() => {
                let due = silence_limit.map(|limit| last_heard + limit);
                if due.is_none_or(|due| Instant::now() >= due) {
                    return Session::Ended;
                }
                silence_timer.set(due);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use super::ReadGate;

    /// A stream that counts its polls, yields what `items` holds, and otherwise stores the waker.
    struct Probe {
        polls: Rc<Cell<u32>>,
        items: Rc<Cell<u32>>,
        waker: Rc<std::cell::RefCell<Option<Waker>>>,
    }

    impl futures_util::Stream for Probe {
        type Item = u32;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls.set(self.polls.get() + 1);
            match self.items.get() {
                0 => {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
                n => {
                    self.items.set(n - 1);
                    Poll::Ready(Some(n))
                }
            }
        }
    }

    #[test]
    fn a_gated_stream_is_polled_only_after_an_item_or_a_wake() {
        let polls = Rc::new(Cell::new(0));
        let items = Rc::new(Cell::new(2));
        let waker = Rc::new(std::cell::RefCell::new(None));
        let mut probe = Probe {
            polls: polls.clone(),
            items: items.clone(),
            waker: waker.clone(),
        };
        let mut gate = ReadGate::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut poll = |gate: &mut ReadGate, probe: &mut Probe| {
            let next = std::pin::pin!(gate.next(probe));
            next.poll(&mut cx)
        };
        // Both buffered items come out, each poll reaching the stream.
        assert_eq!(poll(&mut gate, &mut probe), Poll::Ready(Some(2)));
        assert_eq!(poll(&mut gate, &mut probe), Poll::Ready(Some(1)));
        assert_eq!(poll(&mut gate, &mut probe), Poll::Pending);
        assert_eq!(polls.get(), 3);
        // Without a wake the stream is not polled again, however often the task is.
        for _ in 0..5 {
            assert_eq!(poll(&mut gate, &mut probe), Poll::Pending);
        }
        assert_eq!(polls.get(), 3);
        // Something arrives and the stream wakes its waker: the next poll reaches it.
        items.set(1);
        waker
            .borrow_mut()
            .take()
            .expect("the stream kept a waker")
            .wake();
        assert_eq!(poll(&mut gate, &mut probe), Poll::Ready(Some(1)));
        assert_eq!(polls.get(), 4);
    }
}
