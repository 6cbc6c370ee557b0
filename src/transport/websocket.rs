//! WebSocket (RFC 6455): `GET /ws` with the `Upgrade` handshake, then text frames carrying events (the
//! same JSON payloads as the other transports, so the event id travels in each frame). The server pings
//! every `ping_interval` and drops a client whose pong is `ping_timeout` late; the client declares the
//! connection dead after `ping_interval + ping_timeout` of silence. Each session opens with a welcome
//! frame (`{"type":"welcome","last_event_id":N}`) telling the client where it starts. A reconnecting client with `resume`
//! asks for `?last_event_id=<id>` and the server replays from its history. When the upgrade is refused
//! (a restrictive proxy), a client with `fallback = "long-polling"` switches to long polling, as
//! Socket.IO and SignalR do.

use std::rc::Rc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::http::{self, ResponseBody};
use super::long_polling::run_long_poll_client;
use super::{ClientCtx, ServerCtx, Transport, TransportKind};
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
    ) -> LocalBoxFuture<'static, Response<ResponseBody>> {
        async move {
            let key = match check_upgrade(&request) {
                Ok(key) => key,
                Err(message) => return http::error(&server, StatusCode::BAD_REQUEST, message),
            };
            let cursor = match http::query_param(&request, "last_event_id") {
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
            let on_upgrade = hyper::upgrade::on(&mut request);
            let session_server = server.clone();
            tokio::task::spawn_local(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let socket = TokioIo::new(upgraded);
                    let ws = WebSocketStream::from_raw_socket(socket, Role::Server, Some(config()))
                        .await;
                    serve_socket(ws, session_server, cursor).await;
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
/// work; the buffer grows.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Checks the RFC 6455 opening handshake; returns the `Sec-WebSocket-Accept` value.
fn check_upgrade(request: &Request<Incoming>) -> Result<String, &'static str> {
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    if request.method() != hyper::Method::GET
        || !has(header::UPGRADE, "websocket")
        || !has(header::CONNECTION, "upgrade")
    {
        return Err("this path speaks WebSocket: send a GET with `Upgrade: websocket`");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key is missing")?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// The server side of one WebSocket session.
async fn serve_socket<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    server: Rc<ServerCtx>,
    mut cursor: u64,
) {
    let mut updates = server.hub.subscribe();
    // First frame: where this session starts, so that a client can resume even before its first event.
    let welcome = format!("{{\"type\":\"welcome\",\"last_event_id\":{cursor}}}");
    if ws.send(Message::text(welcome)).await.is_err() {
        return;
    }
    let ping_interval = server.settings.ws_ping_interval;
    let ping_timeout = server.settings.ws_ping_timeout;
    let mut next_ping = ping_interval.map(|every| Instant::now() + every);
    let mut pong_deadline: Option<Instant> = None;
    loop {
        let backlog = server.hub.since(cursor);
        for event in &backlog.events {
            // Payloads are JSON the hub wrote: valid UTF-8, shared without a copy.
            let Ok(text) = Utf8Bytes::try_from(event.payload.clone()) else {
                continue;
            };
            if ws.feed(Message::Text(text)).await.is_err() {
                return;
            }
            cursor = event.id;
        }
        if !backlog.events.is_empty() && ws.flush().await.is_err() {
            return;
        }
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            () = updates.changed() => {}
            message = ws.next() => match message {
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
                Some(Ok(Message::Pong(_))) => pong_deadline = None,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            () = sleep_until_option(next_ping) => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                let now = Instant::now();
                next_ping = ping_interval.map(|every| now + every);
                pong_deadline.get_or_insert(now + ping_timeout);
            }
            () = sleep_until_option(pong_deadline) => return,
        }
    }
}

async fn sleep_until_option(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
                tokio::task::spawn_local(http::upstream_loop(client.clone()));
                run_long_poll_client(&client).await;
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
    let mut ws = match tokio::time::timeout(
        patience,
        tokio_tungstenite::client_async_with_config(url, io, Some(config())),
    )
    .await
    {
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
    let mut last_heard = Instant::now();
    let mut next_upstream = client.next_upstream_gap().map(|gap| Instant::now() + gap);
    // With upstream_acks: what the last session left unacknowledged goes again, oldest first.
    for (_, text) in client.unacknowledged() {
        if ws.send(Message::text(text)).await.is_err() {
            return Session::Ended;
        }
    }
    loop {
        let silent_until = silence_limit.map(|limit| last_heard + limit);
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            message = ws.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(id) = super::event_id(text.as_bytes()) {
                            client.deliver(id);
                            *last_id = (*last_id).max(id);
                        } else if let Some(seq) = super::acked_seq(text.as_bytes()) {
                            client.acknowledged(seq);
                        } else if let Some(start) = welcome_cursor(text.as_bytes()) {
                            *last_id = (*last_id).max(start);
                        }
                        *resumable = true;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Session::Ended,
                    // Pings are answered by tungstenite on the next read.
                    Some(Ok(_)) => {}
                }
            }
            () = sleep_until_option(next_upstream) => {
                let (_, message) = client.upstream_message();
                if ws.send(Message::text(message)).await.is_err() {
                    return Session::Ended;
                }
                next_upstream = client.next_upstream_gap().map(|gap| Instant::now() + gap);
            }
            () = sleep_until_option(silent_until) => return Session::Ended,
        }
    }
}
