//! Server-Sent Events: one long `GET /events` answered with `text/event-stream`. The server writes
//! `retry:` first, then each event as `id:`/`data:` lines, and a comment line (`:`) when the stream has
//! been idle for `heartbeat`. The client parses the stream by the WHATWG rules, resumes with
//! `Last-Event-ID`, waits `retry` (or its backoff, if longer) before reconnecting, and declares a silent
//! stream dead after `client_timeout`. The stream opens with `retry:` and an `id:` of the position it
//! starts from, so even a client that never saw an event can resume without a gap.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::event_stream::EventStreamParser;
use super::http::{self, ChannelBody, HttpConnection, ResponseBody};
use super::{ClientCtx, ServerCtx, Transport, TransportKind};
use crate::net::Purpose;

pub struct Sse;

impl Transport for Sse {
    fn kind(&self) -> TransportKind {
        TransportKind::Sse
    }

    fn path(&self) -> &'static str {
        "/events"
    }

    fn serve(
        &self,
        request: Request<Incoming>,
        server: Rc<ServerCtx>,
    ) -> LocalBoxFuture<'static, Response<ResponseBody>> {
        async move {
            let cursor = match request.headers().get("last-event-id") {
                None => server.hub.latest(),
                Some(value) => match value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    Some(id) => id,
                    None => {
                        return http::error(
                            &server,
                            StatusCode::BAD_REQUEST,
                            "Last-Event-ID must be an event id (digits)",
                        )
                    }
                },
            };
            let (tx, body) = ChannelBody::channel(16);
            let mut response = http::response(
                &server,
                StatusCode::OK,
                "text/event-stream",
                body.boxed_unsync(),
            );
            let headers = response.headers_mut();
            headers.insert("cache-control", HeaderValue::from_static("no-cache"));
            if server.settings.sse_accel_buffering_off {
                headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            }
            tokio::task::spawn_local(stream_events(server, cursor, tx));
            response
        }
        .boxed_local()
    }

    fn run_client(&self, client: Rc<ClientCtx>) -> LocalBoxFuture<'static, ()> {
        async move {
            tokio::task::spawn_local(http::upstream_loop(client.clone()));
            run_event_source(&client).await;
        }
        .boxed_local()
    }
}

/// The server's writer for one stream; ends when the client is gone (the body is dropped).
async fn stream_events(server: Rc<ServerCtx>, mut cursor: u64, tx: mpsc::Sender<Bytes>) {
    let mut updates = server.hub.subscribe();
    // The opening block carries `id:` with the stream's starting point: a client whose connection
    // dies before its first event can still resume with `Last-Event-ID` instead of starting over.
    let retry = format!(
        "retry: {}\nid: {cursor}\n\n",
        server.settings.sse_retry.as_millis()
    );
    if tx.send(Bytes::from(retry)).await.is_err() {
        return;
    }
    loop {
        let backlog = server.hub.since(cursor);
        if let Some(last) = backlog.events.last() {
            cursor = last.id;
            let mut chunk = Vec::new();
            for event in &backlog.events {
                chunk.extend_from_slice(format!("id: {}\ndata: ", event.id).as_bytes());
                chunk.extend_from_slice(&event.payload);
                chunk.extend_from_slice(b"\n\n");
            }
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        let idle = async {
            match server.settings.sse_heartbeat {
                Some(heartbeat) => tokio::time::sleep(heartbeat).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            () = updates.changed() => {}
            () = idle => {
                if tx.send(Bytes::from_static(b":\n\n")).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A browser `EventSource`, for the whole run.
async fn run_event_source(client: &ClientCtx) {
    let mut last_event_id = String::new();
    let mut retry = client.settings.sse_retry;
    let mut failures = 0u32;
    loop {
        if let Some(ended) = one_stream(client, &mut last_event_id, &mut retry).await {
            // The stream worked for a while: start the backoff afresh.
            if ended {
                failures = 0;
            }
        }
        client.lost_session();
        client.wait_before_reconnect(failures, retry).await;
        failures += 1;
    }
}

/// Runs one connection until it fails. Returns `None` when it never got going, `Some(true)` when a
/// stream was open and then ended.
async fn one_stream(
    client: &ClientCtx,
    last_event_id: &mut String,
    retry: &mut Duration,
) -> Option<bool> {
    let mut connection = HttpConnection::open(client, Purpose::Session).await.ok()?;
    let mut headers = vec![
        ("accept", "text/event-stream"),
        ("cache-control", "no-cache"),
    ];
    if !last_event_id.is_empty() {
        headers.push(("last-event-id", last_event_id.as_str()));
    }
    let patience = http::patience(client, Duration::ZERO);
    let response = connection
        .send(Method::GET, "/events", &headers, None, patience)
        .await
        .ok()?;
    client.session_up();
    let mut body = response.into_body();
    let mut parser = EventStreamParser::new();
    let mut events = Vec::new();
    loop {
        let frame = match client.settings.sse_client_timeout {
            Some(limit) => match tokio::time::timeout(limit, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => return Some(true),
            },
            None => body.frame().await,
        };
        let Some(Ok(frame)) = frame else {
            return Some(true);
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        parser.feed(&data, &mut events);
        for event in events.drain(..) {
            if let Ok(id) = event.last_event_id.parse::<u64>() {
                client.deliver(id);
            }
        }
        if !parser.last_event_id.is_empty() {
            last_event_id.clone_from(&parser.last_event_id);
        }
        if let Some(ms) = parser.retry_ms {
            *retry = Duration::from_millis(ms);
        }
    }
}
