//! Long polling: `GET /long-poll?since=<last id>` is held by the server until an event arrives or `hold`
//! expires (then it answers `[]`); the client re-polls at once.
//!
//! Near-push latency over plain HTTP, at the price of a request per event burst and a held request per
//! client; every answer re-sends full HTTP headers.

use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::http::{self, ResponseBody};
use super::polling::{poll_loop, Schedule};
use super::{ClientCtx, ServerCtx, Transport, TransportKind};

pub struct LongPolling;

impl Transport for LongPolling {
    fn kind(&self) -> TransportKind {
        TransportKind::LongPolling
    }

    fn path(&self) -> &'static str {
        "/long-poll"
    }

    fn serve(
        &self,
        request: Request<Incoming>,
        server: Rc<ServerCtx>,
        connection: Option<u64>,
    ) -> LocalBoxFuture<'static, Response<ResponseBody>> {
        // Read here rather than in the future: the request's head shares hyper's read buffer, and
        // held for the whole hold it would make hyper allocate a new buffer for the connection's
        // next request (see `crate::server::route`).
        let since = match http::cursor(&request, "since") {
            Ok(since) => since,
            Err(message) => {
                let refusal = http::error(&server, StatusCode::BAD_REQUEST, &message);
                return std::future::ready(refusal).boxed_local();
            }
        };
        drop(request);
        async move {
            // Subscribe before looking, so an event published in between still wakes us.
            let mut updates = server.hub.subscribe();
            let reset = server.resume(since);
            let encoded = |server: &ServerCtx| {
                server.encoded_since(
                    TransportKind::LongPolling,
                    reset.cursor(),
                    http::events_json,
                )
            };
            let mut news = encoded(&server);
            let mut stopping = server.shutdown.watch_connection(connection);
            // A reset is answered at once (the client must learn its new cursor), and so is a
            // request arriving while the server stops (its connection's moment, in a spread drain).
            if news.is_none() && reset.is_exact() && !stopping.is_due() {
                let until = Instant::now() + server.settings.long_poll_hold;
                // In this order, as `tokio::time::timeout` around a biased select would: an event,
                // then a drain, then the end of the hold.
                let woken = std::future::poll_fn(|cx| {
                    if updates.poll_changed(cx).is_ready() || stopping.poll_triggered(cx).is_ready()
                    {
                        return Poll::Ready(true);
                    }
                    updates.poll_held(cx, until).map(|()| false)
                })
                .await;
                // Woken by an event, or by a drain: a drained poll is answered with what is
                // pending (`[]` if nothing), and its connection closes after it.
                if woken {
                    news = encoded(&server);
                }
            }
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
            run_long_poll_client(&client).await;
        }
        .boxed_local()
    }
}

/// The long-polling client loop (also the WebSocket client's fallback).
pub async fn run_long_poll_client(client: &ClientCtx) {
    let schedule = Schedule {
        path: LongPolling.path(),
        held: client.settings.long_poll_hold,
        interval: Duration::ZERO,
    };
    poll_loop(client, schedule).await;
}
