//! HTTP/1.1 plumbing the three HTTP transports share: response building, a streaming body, a keep-alive
//! client connection, and the upstream `POST /messages` loop.
//!
//! Real HTTP through hyper: every request and response crosses the socket with its headers.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

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

/// A client's keep-alive HTTP/1.1 connection to the server.
pub struct HttpConnection {
    sender: SendRequest<Full<Bytes>>,
    /// The `Host` header, encoded once per connection rather than per request.
    authority: HeaderValue,
    /// The server answered with `Connection: close` (a draining server does): no further request
    /// may go on this connection (RFC 9112 §9.6), even before hyper has seen it close.
    closing: bool,
    /// Responses received on this connection so far: a request on a connection that has answered
    /// before is on a reused keep-alive connection, which the server may have closed meanwhile.
    answered: u32,
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum RequestError {
    /// Connecting failed.
    Connect(io::Error),
    /// The connection broke or the answer was malformed.
    Http(hyper::Error),
    /// No answer within the client's patience.
    Timeout,
    /// The server (or a middlebox) answered with an error status.
    Status(StatusCode),
}

impl HttpConnection {
    /// Connects and performs the HTTP/1.1 handshake (nothing crosses the wire until the first request).
    pub async fn open(client: &ClientCtx, purpose: Purpose) -> Result<Self, RequestError> {
        let io = client
            .connect(purpose)
            .await
            .map_err(RequestError::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(RequestError::Http)?;
        tokio::task::spawn_local(async move {
            // Ends when the connection closes or breaks; the sender sees the error.
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            authority: HeaderValue::from_str(client.connector.authority())
                .map_err(|e| RequestError::Connect(io::Error::other(e)))?,
            closing: false,
            answered: 0,
        })
    }

    /// False once the connection has closed.
    pub fn is_open(&self) -> bool {
        !self.closing && !self.sender.is_closed()
    }

    /// True once this connection has carried a response (a further request reuses it).
    pub fn is_reused(&self) -> bool {
        self.answered > 0
    }

    /// Sends a request with the headers a browser's `fetch` would send; any status is an answer.
    pub async fn send_any(
        &mut self,
        method: Method,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(Bytes, &'static str)>,
        patience: Duration,
    ) -> Result<Response<Incoming>, RequestError> {
        tokio::time::timeout(
            patience,
            self.request(method, path_and_query, extra_headers, body),
        )
        .await
        .map_err(|_| RequestError::Timeout)?
    }

    /// [`HttpConnection::send_any`] without a time limit of its own: for callers that limit the whole
    /// exchange, head and body, with one timer (a timer per phase cost a registration and a
    /// cancellation in the timer wheel each, per request).
    async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Response<Incoming>, RequestError> {
        // Built in place rather than with `Request::builder()`, which moves the request's parts
        // through every `.header()` call: the same request (headers in the same order), for a
        // fraction of the copying.
        let (body, content_type) = match body {
            Some((bytes, content_type)) => (Full::new(bytes), Some(content_type)),
            None => (Full::new(Bytes::new()), None),
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = path_and_query.parse().expect("a valid request path");
        let headers = request.headers_mut();
        headers.append(header::HOST, self.authority.clone());
        headers.append(
            header::USER_AGENT,
            HeaderValue::from_static("rtsim/0.1 (simulated browser)"),
        );
        headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        for (name, value) in extra_headers {
            let name = header::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            headers.append(name, HeaderValue::from_str(value).expect("a header value"));
        }
        if let Some(content_type) = content_type {
            headers.append(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).expect("a content type"),
            );
        }
        self.sender.ready().await.map_err(RequestError::Http)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(RequestError::Http)?;
        let close = response
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"));
        self.closing |= close;
        self.answered += 1;
        Ok(response)
    }

    /// [`HttpConnection::send_any`], with an error status as [`RequestError::Status`].
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(Bytes, &'static str)>,
        patience: Duration,
    ) -> Result<Response<Incoming>, RequestError> {
        let response = self
            .send_any(method, path_and_query, extra_headers, body, patience)
            .await?;
        success(response)
    }

    /// A request whose answer, whatever its status, is read whole within `patience` (engine.io's
    /// refusals carry their reason in a JSON body).
    pub async fn exchange(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
        patience: Duration,
    ) -> Result<(StatusCode, Bytes), RequestError> {
        let exchange = async {
            let response = self.request(method, path_and_query, &[], body).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(RequestError::Http)?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(patience, exchange)
            .await
            .map_err(|_| RequestError::Timeout)?
    }

    /// A GET whose whole body is read within `patience`, with the cursor of the server's reset
    /// header when it could not resume from the cursor asked for.
    pub async fn get_body_and_reset(
        &mut self,
        path_and_query: &str,
        patience: Duration,
    ) -> Result<(Bytes, Option<u64>), RequestError> {
        let exchange = async {
            let response = success(self.request(Method::GET, path_and_query, &[], None).await?)?;
            let reset = response
                .headers()
                .get(super::RESET_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(super::reset_header_cursor);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(RequestError::Http)?;
            Ok((body.to_bytes(), reset))
        };
        tokio::time::timeout(patience, exchange)
            .await
            .map_err(|_| RequestError::Timeout)?
    }
}

/// The response, or [`RequestError::Status`] for an error status (a `101` is an answer too).
fn success(response: Response<Incoming>) -> Result<Response<Incoming>, RequestError> {
    if !response.status().is_success() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(RequestError::Status(response.status()));
    }
    Ok(response)
}

impl RequestError {
    /// The connection closed before any answer to the request: on a reused keep-alive connection
    /// that is the server closing it while idle (a drain, a keep-alive timeout) as the request
    /// crossed, and a browser resends an idempotent request once on a new connection (RFC 9110
    /// §9.2.2) instead of reporting an error.
    pub fn is_closed_before_answer(&self) -> bool {
        matches!(self, RequestError::Http(e) if e.is_incomplete_message())
    }
}

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
        tokio::time::sleep(gap).await;
        let message = Bytes::from(client.upstream_message().1);
        for attempt in 0..2 {
            if connection.as_ref().is_none_or(|c| !c.is_open()) {
                connection = HttpConnection::open(&client, Purpose::Upstream).await.ok();
            }
            let Some(open) = connection.as_mut() else {
                break;
            };
            let sent = open
                .send(
                    Method::POST,
                    "/messages",
                    &[],
                    Some((message.clone(), "application/json")),
                    patience(&client, Duration::ZERO),
                )
                .await;
            match sent {
                Ok(response) => {
                    let _ = response.into_body().collect().await;
                    break;
                }
                Err(_) if attempt == 0 => connection = None,
                Err(_) => connection = None,
            }
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
            client.outbox_changed.notified().await;
            continue;
        };
        if connection.as_ref().is_none_or(|c| !c.is_open()) {
            connection = HttpConnection::open(&client, Purpose::Upstream).await.ok();
        }
        let sent = match connection.as_mut() {
            Some(open) => {
                open.send(
                    Method::POST,
                    "/messages",
                    &[],
                    Some((Bytes::from(text), "application/json")),
                    patience(&client, Duration::ZERO),
                )
                .await
            }
            None => Err(RequestError::Timeout),
        };
        match sent {
            Ok(response) => {
                let _ = response.into_body().collect().await;
                client.acknowledged(seq);
                failures = 0;
            }
            Err(_) => {
                connection = None;
                client.wait_before_reconnect(failures, Duration::ZERO).await;
                failures += 1;
            }
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
