//! HTTP/1.1 plumbing the three HTTP transports share: response building, a streaming body, the
//! upstream `POST /messages` loop, and (from [`super::http_client`]) the clients' keep-alive
//! connection.
//!
//! Real HTTP: hyper serves, the clients speak it on their sockets; every request and response crosses
//! the socket with its headers.

use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{ClientCtx, ServerCtx};
use crate::hub::Event;
use crate::net::Purpose;

/// The body type of every response the server sends. Not `Send`: server state is single-threaded
/// (`Rc`), and a streaming body reads it directly.
pub type ResponseBody = Pin<Box<dyn Body<Data = Bytes, Error = Infallible>>>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Box::pin(Full::new(bytes.into()))
}

/// A response with the headers every answer carries.
pub fn response(
    server: &ServerCtx,
    status: StatusCode,
    content_type: &'static str,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = common_headers(server, content_type);
    response
}

/// The headers [`response`] starts from (`Content-Type`, `Cache-Control`, `Date`, in that order),
/// built once per simulated second and content type and cloned for each answer: an HTTP date has
/// one-second resolution, and long polling answers thousands of requests a second (formatting the
/// date anew was a few allocations per answer, and inserting the three headers one by one cost more
/// than cloning the map). A clone has the same entries in the same order as the map built anew.
fn common_headers(server: &ServerCtx, content_type: &'static str) -> HeaderMap {
    thread_local! {
        /// Per content type: the second (`None` before the Unix epoch: no `Date`) and its headers.
        static CACHED: std::cell::RefCell<Vec<(&'static str, Option<u64>, HeaderMap)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    // What `ServerCtx::http_date` formats, read once.
    let at = server.epoch + server.recorder.borrow().now();
    let second = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        let slot = match cached.iter().position(|(kind, _, _)| *kind == content_type) {
            Some(slot) => slot,
            None => {
                cached.push((content_type, None, HeaderMap::new()));
                cached.len() - 1
            }
        };
        let (_, cached_second, headers) = &mut cached[slot];
        if *cached_second != second || headers.is_empty() {
            let mut fresh = HeaderMap::new();
            fresh.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            fresh.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if second.is_some() {
                if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
                    fresh.insert(header::DATE, date);
                }
            }
            *cached_second = second;
            *headers = fresh;
        }
        headers.clone()
    })
}

/// Adds the [`super::RESET_HEADER`] when the resume was not exact (exact resumes carry nothing, so
/// the bytes on the wire are unchanged for them).
pub fn with_reset(
    mut response: Response<ResponseBody>,
    reset: &super::Reset,
) -> Response<ResponseBody> {
    if !reset.is_exact() {
        if let Ok(value) = HeaderValue::from_str(&reset.header_value()) {
            response.headers_mut().insert(super::RESET_HEADER, value);
        }
    }
    response
}

/// A plain-text error answer.
pub fn error(server: &ServerCtx, status: StatusCode, message: &str) -> Response<ResponseBody> {
    response(
        server,
        status,
        "text/plain; charset=utf-8",
        full(format!("{message}\n")),
    )
}

/// The JSON array the polling transports answer with: the events' payloads, as published.
pub fn events_json(events: &[Event]) -> Bytes {
    if events.is_empty() {
        return Bytes::from_static(b"[]");
    }
    let mut body =
        Vec::with_capacity(2 + events.iter().map(|e| e.payload.len() + 1).sum::<usize>());
    body.push(b'[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&event.payload);
    }
    body.push(b']');
    Bytes::from(body)
}

/// The value of query parameter `name` in a request URI.
pub fn query_param<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// The `since` cursor of a polling request: absent means 0; anything but digits is a client error.
pub fn cursor(request: &Request<Incoming>, name: &str) -> Result<u64, String> {
    match query_param(request, name) {
        None | Some("") => Ok(0),
        Some(value) => value
            .parse()
            .map_err(|_| format!("`{name}` must be an event id (digits), got `{value}`")),
    }
}

pub use super::http_client::{idle, usable, HttpConnection, HttpError, RequestError};

/// How long a client waits for an answer beyond what the exchange is meant to take.
pub fn patience(client: &ClientCtx, held_for: Duration) -> Duration {
    held_for + client.settings.request_timeout
}

/// Sends the client's upstream messages as `POST /messages` on a connection of their own (a browser
/// would use a second pooled connection while the first is busy polling or streaming).
///
/// Without `upstream_acks`, a message is tried on the open connection and, if that fails, once more on
/// a new one; a message written into a connection that died silently is lost, as it would be. With
/// `upstream_acks` the messages wait in the client's outbox until the server's answer acknowledges
/// them, and are resent (after a backoff) until it does.
pub async fn upstream_loop(client: Rc<ClientCtx>) {
    if client.workload.upstream_acks {
        return outbox_loop(client).await;
    }
    let mut connection: Option<HttpConnection> = None;
    while let Some(gap) = client.next_upstream_gap() {
        idle(&mut connection, tokio::time::sleep(gap)).await;
        let message = Bytes::from(client.upstream_message().1);
        for _attempt in 0..2 {
            if usable(&mut connection).is_none() {
                connection = HttpConnection::open(&client, Purpose::Upstream).await.ok();
            }
            let Some(open) = connection.as_mut() else {
                break;
            };
            let answered = match open
                .send(
                    Method::POST,
                    "/messages",
                    &[],
                    Some((message.clone(), "application/json")),
                    patience(&client, Duration::ZERO),
                )
                .await
            {
                Ok(response) => {
                    let _ = response.read_to_end().await;
                    true
                }
                Err(_) => false,
            };
            if answered {
                break;
            }
            connection = None;
        }
    }
}

/// The outbox: a writer adds messages on the workload's schedule whatever the network does; the
/// sender posts the oldest unacknowledged one until the server's `204` acknowledges it.
async fn outbox_loop(client: Rc<ClientCtx>) {
    let writer = client.clone();
    tokio::task::spawn_local(async move {
        while let Some(gap) = writer.next_upstream_gap() {
            tokio::time::sleep(gap).await;
            writer.upstream_message();
        }
    });
    let mut connection: Option<HttpConnection> = None;
    let mut failures = 0u32;
    loop {
        let Some((seq, text)) = client.oldest_unacknowledged() else {
            idle(&mut connection, client.outbox_changed.notified()).await;
            continue;
        };
        if usable(&mut connection).is_none() {
            connection = HttpConnection::open(&client, Purpose::Upstream).await.ok();
        }
        let answered = match connection.as_mut() {
            Some(open) => match open
                .send(
                    Method::POST,
                    "/messages",
                    &[],
                    Some((Bytes::from(text), "application/json")),
                    patience(&client, Duration::ZERO),
                )
                .await
            {
                Ok(response) => {
                    let _ = response.read_to_end().await;
                    true
                }
                Err(_) => false,
            },
            None => false,
        };
        if answered {
            client.acknowledged(seq);
            failures = 0;
        } else {
            connection = None;
            client.wait_before_reconnect(failures, Duration::ZERO).await;
            failures += 1;
        }
    }
}

/// Server side of upstream messages: records the message's latency from the send time it carries.
/// The body is read up to the policy's size limit (413 beyond it, before reading anything when
/// `Content-Length` says so) and within its timeout (408 when it stalls), so a client can neither
/// make the server buffer without bound nor hold its connection with a body that never comes.
pub async fn receive_upstream(
    request: Request<Incoming>,
    server: Rc<ServerCtx>,
) -> Response<ResponseBody> {
    let limit = server.policy.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return too_large(&server, limit);
    }
    let body = http_body_util::Limited::new(request.into_body(), limit);
    let body = match tokio::time::timeout(server.policy.body_timeout, body.collect()).await {
        Err(_) => {
            return closing(error(
                &server,
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            ))
        }
        Ok(Err(broken)) if broken.is::<http_body_util::LengthLimitError>() => {
            return too_large(&server, limit)
        }
        Ok(Err(_)) => {
            return closing(error(
                &server,
                StatusCode::BAD_REQUEST,
                "the request body broke off",
            ))
        }
        Ok(Ok(body)) => body.to_bytes(),
    };
    match super::upstream_header(&body) {
        Some(header) => {
            // A resent message is acknowledged again but counted once.
            super::receive_upstream_message(&server, &header);
            let mut answer = response(&server, StatusCode::NO_CONTENT, "text/plain", full(""));
            answer.headers_mut().remove(header::CONTENT_TYPE);
            answer
        }
        None => error(
            &server,
            StatusCode::BAD_REQUEST,
            "expected a JSON message with `sent_us`",
        ),
    }
}

fn too_large(server: &ServerCtx, limit: usize) -> Response<ResponseBody> {
    closing(error(
        server,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("a message may be at most {limit} bytes"),
    ))
}

/// The answer with `Connection: close`: the rest of the request is not read, so the connection
/// cannot carry another one.
pub fn closing(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
