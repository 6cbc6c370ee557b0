//! Server-Sent Events: one long `GET /events` answered with `text/event-stream`. The server writes
//! `retry:` first, then each event as `id:`/`data:` lines, and a comment line (`:`) when the stream has
//! been idle for `heartbeat`. The client parses the stream by the WHATWG rules, resumes with
//! `Last-Event-ID`, waits `retry` (or its backoff, if longer) before reconnecting, and declares a silent
//! stream dead after `client_timeout`. The stream opens with `retry:` and an `id:` of the position it
//! starts from, so even a client that never saw an event can resume without a gap.

use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use super::deadline::Deadline;
use super::event_stream::EventStreamParser;
use super::http::{self, HttpConnection, ResponseBody};
use super::{ClientCtx, Reset, ServerCtx, ShutdownWatch, Transport, TransportKind};
use crate::hub::Subscription;
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
        connection: Option<u64>,
    ) -> LocalBoxFuture<'static, Response<ResponseBody>> {
        async move {
            let requested = match request.headers().get("last-event-id") {
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
            let reset = server.resume(requested);
            let stopping = server.shutdown.watch_connection(connection);
            let body = EventStreamBody::new(server.clone(), reset, stopping);
            let mut response =
                http::response(&server, StatusCode::OK, "text/event-stream", Box::pin(body));
            let headers = response.headers_mut();
            headers.insert("cache-control", HeaderValue::from_static("no-cache"));
            if server.settings.sse_accel_buffering_off {
                headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            }
            http::with_reset(response, &reset)
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

/// The response body of one stream, pulled by hyper as fast as the socket takes it: the opening block,
/// then new events as they are published, and a comment line when the stream has been idle for the
/// heartbeat interval. Dropped by hyper when the client goes; ends (between two events, so the
/// chunked stream closes cleanly) when the server shuts down.
struct EventStreamBody {
    server: Rc<ServerCtx>,
    updates: Subscription,
    stopping: ShutdownWatch,
    cursor: u64,
    opening: Option<Bytes>,
    /// Fires at the earliest moment a heartbeat may be due; re-armed lazily (see `poll_frame`).
    heartbeat: Deadline,
    last_sent: Instant,
}

impl EventStreamBody {
    fn new(server: Rc<ServerCtx>, reset: Reset, stopping: ShutdownWatch) -> Self {
        // The opening block carries `id:` with the stream's starting point: a client whose connection
        // dies before its first event can still resume with `Last-Event-ID` instead of starting over.
        let cursor = reset.cursor();
        let mut opening = format!(
            "retry: {}\nid: {cursor}\n\n",
            server.settings.sse_retry.as_millis()
        );
        if !reset.is_exact() {
            // A resume the server cannot honour is said in the stream, as an event of its own type
            // (an `EventSource` page sees it with `addEventListener("reset", …)`, not `onmessage`).
            opening.push_str(&format!("event: reset\ndata: {}\n\n", reset.json()));
        }
        let heartbeat = Deadline::new(
            server
                .settings
                .sse_heartbeat
                .map(|every| Instant::now() + every),
        );
        Self {
            updates: server.hub.subscribe(),
            stopping,
            server,
            cursor,
            opening: Some(Bytes::from(opening)),
            heartbeat,
            last_sent: Instant::now(),
        }
    }

    fn sent(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.last_sent = Instant::now();
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

/// Events in the `text/event-stream` format: `id:` and `data:` lines and a blank line each.
fn encode(events: &[crate::hub::Event]) -> Bytes {
    let mut chunk = Vec::with_capacity(events.iter().map(|e| e.payload.len() + 32).sum());
    for event in events {
        chunk.extend_from_slice(b"id: ");
        chunk.extend_from_slice(event.id.to_string().as_bytes());
        chunk.extend_from_slice(b"\ndata: ");
        chunk.extend_from_slice(&event.payload);
        chunk.extend_from_slice(b"\n\n");
    }
    Bytes::from(chunk)
}

impl Body for EventStreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(opening) = this.opening.take() {
            return this.sent(opening);
        }
        if this.stopping.poll_triggered(cx).is_ready() {
            // Every frame is whole events, so ending here ends the stream on an event boundary.
            return Poll::Ready(None);
        }
        loop {
            let news = this
                .server
                .encoded_since(TransportKind::Sse, this.cursor, encode);
            if let Some((last, bytes)) = news {
                this.cursor = last;
                return this.sent(bytes);
            }
            if this.updates.poll_changed(cx).is_ready() {
                continue;
            }
            let Some(every) = this.server.settings.sse_heartbeat else {
                return Poll::Pending;
            };
            if this.heartbeat.poll_elapsed(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer is re-armed only when it fires, not on every event: one timer operation per
            // heartbeat interval instead of one per event.
            let due = this.last_sent + every;
            if Instant::now() >= due {
                this.heartbeat.set(Some(Instant::now() + every));
                return this.sent(Bytes::from_static(b":\n\n"));
            }
            this.heartbeat.set(Some(due));
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
    // Like a browser's EventSource, the client waits for the response head as long as it waits for any
    // byte of the stream (a buffering proxy holds the head too): its silence limit, not a request
    // timeout.
    let patience = client
        .settings
        .sse_client_timeout
        .unwrap_or(Duration::MAX / 4);
    let mut response = connection
        .send(Method::GET, "/events", &headers, None, patience)
        .await
        .ok()?;
    client.session_up();
    let mut parser = EventStreamParser::new();
    // The silence timer is re-armed only when it fires (to the last byte's time plus the limit), not on
    // every chunk: one timer operation per `client_timeout` instead of one per event.
    let limit = client.settings.sse_client_timeout;
    let mut last_heard = Instant::now();
    let mut silence = Deadline::new(limit.map(|limit| last_heard + limit));
    let deliveries = client.deliveries();
    loop {
        let data = tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            data = response.next_data() => data,
            () = silence.elapsed() => {
                let due = last_heard + limit.expect("an unset deadline never fires");
                if Instant::now() >= due {
                    break;
                }
                silence.set(Some(due));
                continue;
            }
        };
        last_heard = Instant::now();
        let Ok(Some(data)) = data else {
            break;
        };
        parser.feed(data, &mut |event| {
            if event.event_type == "reset" {
                // The server could not resume us from our Last-Event-ID, and said so.
                client.recorder.borrow_mut().resume_reset();
            } else if let Ok(id) = event.last_event_id.parse::<u64>() {
                deliveries.deliver(id);
            }
        });
    }
    // What the next connection resumes with, as an `EventSource` keeps it across reconnections: read
    // once when the stream ends rather than copied after every chunk.
    if !parser.last_event_id.is_empty() {
        last_event_id.clone_from(&parser.last_event_id);
    }
    if let Some(ms) = parser.retry_ms {
        *retry = Duration::from_millis(ms);
    }
    Some(true)
}
