//! Short polling: the client asks `GET /poll?since=<last id>` every `interval` on a keep-alive
//! connection and the server answers at once with the events after the cursor (a JSON array).
//!
//! Cheap to build and proxy-proof; it pays with half an interval of delay on average and a request per
//! client per interval whether or not anything happened.

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::http::{self, HttpConnection, ResponseBody};
use super::{ClientCtx, ServerCtx, Transport, TransportKind};
use crate::net::Purpose;

pub struct Polling;

impl Transport for Polling {
    fn kind(&self) -> TransportKind {
        TransportKind::Polling
    }

    fn path(&self) -> &'static str {
        "/poll"
    }

    fn serve(
        &self,
        request: Request<Incoming>,
        server: Rc<ServerCtx>,
        _connection: Option<u64>,
    ) -> LocalBoxFuture<'static, Response<ResponseBody>> {
        async move {
            let since = match http::cursor(&request, "since") {
                Ok(since) => since,
                Err(message) => return http::error(&server, StatusCode::BAD_REQUEST, &message),
            };
            let reset = server.resume(since);
            let news =
                server.encoded_since(TransportKind::Polling, reset.cursor(), http::events_json);
            let body = news.map_or_else(|| http::events_json(&[]), |(_, bytes)| bytes);
            let response = http::response(
                &server,
                StatusCode::OK,
                "application/json",
                http::full(body),
            );
            http::with_reset(response, &reset)
        }
        .boxed_local()
    }

    fn run_client(&self, client: Rc<ClientCtx>) -> LocalBoxFuture<'static, ()> {
        async move {
            tokio::task::spawn_local(http::upstream_loop(client.clone()));
            let schedule = Schedule {
                path: Polling.path(),
                held: Duration::ZERO,
                interval: client.settings.polling_interval,
            };
            poll_loop(&client, schedule).await;
        }
        .boxed_local()
    }
}

/// How a polling client paces its requests.
pub(crate) struct Schedule {
    /// The endpoint to poll.
    pub path: &'static str,
    /// How long the server may hold a request (zero for short polling).
    pub held: Duration,
    /// How long from the start of one poll to the start of the next (zero: at once).
    pub interval: Duration,
}

/// The request loop both polling transports run: GET `path?since=cursor`, deliver, wait, repeat, with
/// reconnects and backoff when the connection fails.
pub(crate) async fn poll_loop(client: &ClientCtx, schedule: Schedule) {
    // A real population polls at every phase of the interval, not in step: the first poll waits a
    // seeded, uniform share of it.
    let phase = if schedule.interval.is_zero() {
        Duration::ZERO
    } else {
        schedule.interval.mul_f64(client.random())
    };
    let mut next_poll = Instant::now() + phase;
    let mut cursor = 0u64;
    let mut connection: Option<HttpConnection> = None;
    let mut failures = 0u32;
    // The request in hand was already resent once after a stale connection closed under it.
    let mut resent = false;
    // The request target, rewritten in place for each request.
    let mut target = String::new();
    let limit = client
        .request_timeouts
        .limit(http::patience(client, schedule.held));
    let deliveries = client.deliveries();
    loop {
        // Long polling asks again at once: no timer for an instant already reached.
        if next_poll > Instant::now() {
            http::idle(&mut connection, tokio::time::sleep_until(next_poll)).await;
        }
        if http::usable(&mut connection).is_none() {
            match HttpConnection::open(client, Purpose::Session).await {
                Ok(open) => connection = Some(open),
                Err(_) => {
                    client.lost_session();
                    client.wait_before_reconnect(failures, Duration::ZERO).await;
                    failures += 1;
                    next_poll = Instant::now();
                    continue;
                }
            }
        }
        let open = connection.as_mut().expect("connection was just opened");
        let reused = open.is_reused();
        let started = Instant::now();
        target.clear();
        let _ = write!(target, "{}?since={cursor}", schedule.path);
        let answer = open.get_body_and_reset(&target, &limit).await;
        match answer.map(|(body, reset)| (super::event_ids(&body), reset)) {
            Ok((Ok(ids), reset)) => {
                deliveries.session_up();
                failures = 0;
                resent = false;
                if let Some(resumes_after) = reset {
                    // The server could not resume us from our cursor and said so: count it and
                    // take its cursor (it may be lower than ours, after a restart elsewhere).
                    client.recorder.borrow_mut().resume_reset();
                    cursor = resumes_after;
                }
                for id in ids {
                    deliveries.deliver(id);
                    cursor = cursor.max(id);
                }
                next_poll = started + schedule.interval;
            }
            // A reused connection closed under the request before any answer (the server closed
            // it while idle, as a draining one does): the GET goes again at once on a new
            // connection, once, as a browser resends it; a second failure is a real one.
            Err(error) if reused && !resent && error.is_closed_before_answer() => {
                // Without a working session from now (a resend that works ends it at once); not a
                // reconnect after a lost session, which only a failed resend is.
                client.recorder.borrow_mut().session_down(client.id);
                connection = None;
                resent = true;
                next_poll = Instant::now();
                continue;
            }
            Ok((Err(_), _)) | Err(_) => {
                // A timeout or a broken connection: this connection is no use any more.
                connection = None;
                resent = false;
                client.lost_session();
                client.wait_before_reconnect(failures, Duration::ZERO).await;
                failures += 1;
                next_poll = Instant::now();
            }
        }
    }
}
