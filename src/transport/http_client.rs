//! The client side of HTTP/1.1 as a browser's `fetch` speaks it: one keep-alive connection, one
//! request at a time, the answer read by the task that asked for it.
//!
//! Written on the socket rather than through hyper's client. hyper runs each client connection as a
//! task of its own and hands every answer and every body chunk over through channels, so one answer
//! cost three task polls and a dozen allocations; long polling makes a request per event per client,
//! and an SSE client reads a chunk per event. The wire is the same: a request carries the bytes
//! hyper's client sends for it (a unit test compares the two byte for byte), and an answer is read
//! by RFC 9112's rules — the head by `httparse`, the parser hyper uses, the body by `Content-Length`,
//! `chunked` or the connection's close (§6.3) — and the connection is reused only when the answer
//! allows it (§9.3, §9.6).
//!
//! What it must not do: pipeline, speak HTTP/2, follow redirects or decompress. The server half stays
//! on hyper (`crate::server`), which browsers and other real clients talk to in `rtsim serve`.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, Write as _};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::request_timeouts::{TimeLimit, TimedOut};
use super::ClientCtx;
use crate::net::{CountedIo, Purpose};

/// What the client sends with every request, after `Host`, as a browser's `fetch` does.
const USER_AGENT: &str = "rtsim/0.1 (simulated browser)";

/// The most header lines an answer may have, and the longest head and chunk-size line read: beyond
/// them the answer is malformed (hyper's limits are of the same order; no server here comes close).
const MAX_HEADERS: usize = 64;
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_LINE_BYTES: usize = 4 * 1024;

/// How much a read asks the socket for at a time: one event or one polling answer fits.
const READ_CHUNK: usize = 4 * 1024;

thread_local! {
    /// The buffer a request is written into, shared by all the thread's connections: a request is
    /// written at once, so one buffer serves them all (a connection that finds it taken, while
    /// another waits to write, starts a new one). Each connection's own buffer was a cache line out
    /// of cache for every request at 10,000 clients; this one was used by the request just before.
    static SPARE_REQUEST: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };

    /// The last `Host` value a connection was made with (see [`shared_authority`]).
    static LAST_AUTHORITY: std::cell::RefCell<Option<Rc<str>>> = const { std::cell::RefCell::new(None) };
}

/// `authority` as an `Rc<str>`, the same allocation as the previous connection's when they name the
/// same server (every client of a run does): every request writes it, and one copy shared stays in
/// cache where one per connection did not.
fn shared_authority(authority: &str) -> Rc<str> {
    LAST_AUTHORITY.with(|last| {
        let mut last = last.borrow_mut();
        match last.as_ref() {
            Some(shared) if **shared == *authority => shared.clone(),
            _ => {
                let shared: Rc<str> = authority.into();
                *last = Some(shared.clone());
                shared
            }
        }
    })
}

/// A client's keep-alive HTTP/1.1 connection to the server.
pub struct HttpConnection {
    io: CountedIo,
    /// Bytes read from the socket and not yet consumed.
    read: BytesMut,
    /// The `Host` header value, shared by the connections that name the same server (see
    /// [`shared_authority`]).
    authority: Rc<str>,
    /// No further request may go on this connection: the server answered with `Connection: close`
    /// (RFC 9112 §9.6) or without a length, or the connection failed or closed.
    closing: bool,
    /// A request is under way: its answer has not been read to its end.
    busy: bool,
    /// Responses received on this connection so far: a request on a connection that has answered
    /// before is on a reused keep-alive connection, which the server may have closed meanwhile.
    answered: u32,
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum RequestError {
    /// Connecting failed.
    Connect(io::Error),
    /// The connection closed before any answer to the request.
    ClosedBeforeAnswer,
    /// The connection broke, or the answer was malformed or cut short.
    Http(HttpError),
    /// No answer within the client's patience.
    Timeout,
    /// The server (or a middlebox) answered with an error status.
    Status(StatusCode),
}

/// How an exchange broke after the request was written.
#[derive(Debug)]
pub enum HttpError {
    /// Reading or writing the socket failed (a reset, a dead host).
    Io(io::Error),
    /// The answer is not HTTP/1.1 as RFC 9112 defines it.
    Malformed(&'static str),
    /// The connection closed in the middle of the body.
    IncompleteBody,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(error) => write!(f, "connection error: {error}"),
            HttpError::Malformed(what) => write!(f, "malformed answer: {what}"),
            HttpError::IncompleteBody => {
                f.write_str("the connection closed in the middle of the body")
            }
        }
    }
}

impl std::error::Error for HttpError {}

impl RequestError {
    /// The connection closed before any answer to the request: on a reused keep-alive connection
    /// that is the server closing it while idle (a drain, a keep-alive timeout) as the request
    /// crossed, and a browser resends an idempotent request once on a new connection (RFC 9110
    /// §9.2.2) instead of reporting an error.
    pub fn is_closed_before_answer(&self) -> bool {
        matches!(self, RequestError::ClosedBeforeAnswer)
    }
}

impl From<HttpError> for RequestError {
    fn from(error: HttpError) -> Self {
        RequestError::Http(error)
    }
}

/// How the body of an answer ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`, at this point of the coding.
    Chunked(Chunk),
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
    /// The body has been read to its end (or there was none).
    Done,
}

/// Where a chunked body's reader is (RFC 9112 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes to come.
    Data(u64),
    /// Expecting the line end after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

/// An answer whose head has been read; its body is read through it, from the connection it borrows.
/// Dropped before its body's end, it leaves the connection unusable for another request.
pub struct Response<'c> {
    status: StatusCode,
    /// The cursor of the server's reset header, when it could not resume from the cursor asked for.
    reset: Option<u64>,
    framing: Framing,
    /// Bytes at the front of the read buffer lent out by the last [`Response::next_data`]; consumed
    /// on the next call (the slice borrows the buffer).
    lent: usize,
    connection: &'c mut HttpConnection,
}

impl HttpConnection {
    /// Connects (nothing crosses the wire until the first request).
    pub async fn open(client: &ClientCtx, purpose: Purpose) -> Result<Self, RequestError> {
        let io = client
            .connect(purpose)
            .await
            .map_err(RequestError::Connect)?;
        Ok(Self::over(io, client.connector.authority()))
    }

    /// A connection over a socket already open (and counted), with `authority` as its `Host`.
    pub fn over(io: CountedIo, authority: &str) -> Self {
        Self {
            io,
            read: BytesMut::new(),
            authority: shared_authority(authority),
            closing: false,
            busy: false,
            answered: 0,
        }
    }

    /// False once the connection cannot carry another request. An idle connection the server has
    /// closed (or reset) is noticed here, by a look at the socket that does not wait, where hyper's
    /// connection task noticed it when the FIN arrived: either way the next request opens a new
    /// connection instead of failing on this one.
    pub fn is_open(&mut self) -> bool {
        if self.closing || self.busy {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // EOF, an error, or bytes nobody asked for (an error for hyper's client too) all close it.
        if poll_read_more(&mut self.io, &mut self.read, &mut cx).is_ready() {
            self.closing = true;
        }
        !self.closing
    }

    /// Resolves when the server closes or resets this idle connection (or writes to it unasked):
    /// what hyper's connection task, always reading, noticed the moment it arrived. Never resolves
    /// while a request is under way.
    async fn closed(&mut self) {
        if self.busy {
            return std::future::pending().await;
        }
        if !self.closing {
            poll_fn(|cx| poll_read_more(&mut self.io, &mut self.read, cx).map(|_| ())).await;
            self.closing = true;
        }
    }

    /// True once this connection has carried a response (a further request reuses it).
    pub fn is_reused(&self) -> bool {
        self.answered > 0
    }

    /// Sends a request with the headers a browser's `fetch` would send and reads the answer's head;
    /// any status is an answer. No time limit of its own: callers put one around the exchange.
    pub async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(&[u8], &'static str)>,
    ) -> Result<Response<'_>, RequestError> {
        let mut out = SPARE_REQUEST.take();
        encode_request(
            &mut out,
            &method,
            path_and_query,
            &self.authority,
            extra_headers,
            body,
        );
        // Until the answer has been read to its end; for good if anything fails on the way.
        self.busy = true;
        let written = self.io.write_all(&out).await;
        SPARE_REQUEST.set(out);
        if let Err(error) = written {
            self.closing = true;
            return Err(HttpError::Io(error).into());
        }
        let head = loop {
            match parse_head(&self.read, method == Method::HEAD) {
                Ok(Some(head)) if head.status.is_informational() && head.status.as_u16() != 101 => {
                    // `100 Continue` and the like come before the real answer (RFC 9110 §15.2).
                    self.read.advance(head.length);
                    continue;
                }
                Ok(Some(head)) => break head,
                Ok(None) if self.read.len() < MAX_HEAD_BYTES => {}
                Ok(None) => {
                    self.closing = true;
                    return Err(HttpError::Malformed("response head too long").into());
                }
                Err(error) => {
                    self.closing = true;
                    return Err(error.into());
                }
            }
            match read_more(&mut self.io, &mut self.read).await {
                Ok(0) => {
                    self.closing = true;
                    return Err(RequestError::ClosedBeforeAnswer);
                }
                Ok(_) => {}
                Err(error) => {
                    self.closing = true;
                    return Err(HttpError::Io(error).into());
                }
            }
        };
        self.read.advance(head.length);
        self.answered += 1;
        // After `101 Switching Protocols` the connection no longer speaks HTTP.
        self.closing |= head.close
            || head.framing == Framing::UntilClose
            || head.status == StatusCode::SWITCHING_PROTOCOLS;
        if head.framing == Framing::Done {
            self.busy = false;
        }
        Ok(Response {
            status: head.status,
            reset: head.reset,
            framing: head.framing,
            lent: 0,
            connection: self,
        })
    }
}

impl HttpConnection {
    /// [`HttpConnection::request`] with the answer's head awaited within `patience`, and an error
    /// status as [`RequestError::Status`] (a `101` is an answer too). The body is the caller's to
    /// read.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(Bytes, &'static str)>,
        patience: Duration,
    ) -> Result<Response<'_>, RequestError> {
        let body = body.as_ref().map(|(bytes, kind)| (&bytes[..], *kind));
        success(
            within(
                patience,
                self.request(method, path_and_query, extra_headers, body),
            )
            .await?,
        )
    }

    /// A request whose answer, whatever its status, is read whole within `patience` (engine.io's
    /// refusals carry their reason in a JSON body). One timer limits head and body together.
    pub async fn exchange(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Option<(Bytes, &'static str)>,
        patience: Duration,
    ) -> Result<(StatusCode, Bytes), RequestError> {
        let body = body.as_ref().map(|(bytes, kind)| (&bytes[..], *kind));
        let exchange = async {
            let response = self.request(method, path_and_query, &[], body).await?;
            let status = response.status();
            Ok((status, response.read_to_end().await?))
        };
        within(patience, exchange).await
    }

    /// A GET whose whole body is read within `limit`, with the cursor of the server's reset
    /// header when it could not resume from the cursor asked for.
    pub async fn get_body_and_reset(
        &mut self,
        path_and_query: &str,
        limit: &TimeLimit,
    ) -> Result<(Bytes, Option<u64>), RequestError> {
        // Pinned where it is made: handed on by value, the whole state machine (a request and its
        // body) was copied twice per exchange into the time limit's, for nothing.
        let exchange = std::pin::pin!(async {
            let response = success(self.request(Method::GET, path_and_query, &[], None).await?)?;
            let reset = response.reset_cursor();
            Ok((response.read_to_end().await?, reset))
        });
        limit
            .run(exchange)
            .await
            .map_err(|TimedOut| RequestError::Timeout)?
    }
}

/// `exchange`, or [`RequestError::Timeout`] when it is not done within `patience`.
async fn within<T>(
    patience: Duration,
    exchange: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    tokio::time::timeout(patience, exchange)
        .await
        .map_err(|_| RequestError::Timeout)?
}

/// Waits for `until` while watching the idle connection in `slot`, and lets the connection go
/// (drops it, which closes the socket) as soon as the server closes or resets it, as a connection
/// task that is always reading would: an idle keep-alive connection is noticed closed when that
/// happens, not when the next request needs it.
pub async fn idle<T>(slot: &mut Option<HttpConnection>, until: impl Future<Output = T>) -> T {
    let mut until = std::pin::pin!(until);
    if let Some(open) = slot.as_mut() {
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded.
            biased;
            value = until.as_mut() => return value,
            () = open.closed() => {}
        }
        *slot = None;
    }
    until.await
}

/// The connection in `slot` if it can carry a request; one that cannot is dropped first, so its
/// socket closes before a new one opens.
pub fn usable(slot: &mut Option<HttpConnection>) -> Option<&mut HttpConnection> {
    if slot.as_mut().is_some_and(|open| !open.is_open()) {
        *slot = None;
    }
    slot.as_mut()
}

/// The response, or [`RequestError::Status`] for an error status (a `101` is an answer too).
fn success(response: Response<'_>) -> Result<Response<'_>, RequestError> {
    let status = response.status();
    if !status.is_success() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Err(RequestError::Status(status));
    }
    Ok(response)
}

impl Response<'_> {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `resumes-after` cursor of the server's reset header, if it sent one.
    pub fn reset_cursor(&self) -> Option<u64> {
        self.reset
    }

    /// The next piece of the body as it arrives (never empty), or `None` at its end.
    pub async fn next_data(&mut self) -> Result<Option<&[u8]>, RequestError> {
        let connection = &mut *self.connection;
        connection.read.advance(std::mem::take(&mut self.lent));
        let length = loop {
            let buffered = connection.read.len() as u64;
            match self.framing {
                Framing::Done => return Ok(None),
                Framing::Length(rest) if buffered > 0 => {
                    let take = rest.min(buffered);
                    self.framing = if take == rest {
                        Framing::Done
                    } else {
                        Framing::Length(rest - take)
                    };
                    break take as usize;
                }
                Framing::Chunked(Chunk::Data(rest)) if buffered > 0 => {
                    let take = rest.min(buffered);
                    self.framing = Framing::Chunked(if take == rest {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(rest - take)
                    });
                    break take as usize;
                }
                Framing::UntilClose if buffered > 0 => break connection.read.len(),
                Framing::Chunked(chunk @ (Chunk::Size | Chunk::DataEnd | Chunk::Trailers)) => {
                    match line_end(&connection.read) {
                        Err(error) => return Err(connection.broke(error)),
                        Ok(None) => {}
                        Ok(Some((length, consumed))) => {
                            let line = &connection.read[..length];
                            let next = match chunk {
                                Chunk::Size => match chunk_size(line) {
                                    Some(0) => Ok(Framing::Chunked(Chunk::Trailers)),
                                    Some(size) => Ok(Framing::Chunked(Chunk::Data(size))),
                                    None => Err(HttpError::Malformed("invalid chunk size")),
                                },
                                Chunk::DataEnd if line.is_empty() => {
                                    Ok(Framing::Chunked(Chunk::Size))
                                }
                                Chunk::DataEnd => {
                                    Err(HttpError::Malformed("chunk data longer than its size"))
                                }
                                _ if line.is_empty() => Ok(Framing::Done),
                                // A trailer field: nothing here reads trailers.
                                _ => Ok(Framing::Chunked(Chunk::Trailers)),
                            };
                            let next = next.map_err(|error| connection.broke(error))?;
                            connection.read.advance(consumed);
                            self.framing = next;
                            if self.framing == Framing::Done {
                                connection.busy = false;
                                return Ok(None);
                            }
                            continue;
                        }
                    }
                }
                Framing::Length(_) | Framing::Chunked(Chunk::Data(_)) | Framing::UntilClose => {}
            }
            // Nothing to hand out yet: wait for the socket.
            match read_more(&mut connection.io, &mut connection.read).await {
                Ok(0) if self.framing == Framing::UntilClose => {
                    self.framing = Framing::Done;
                    return Ok(None);
                }
                Ok(0) => return Err(connection.broke(HttpError::IncompleteBody)),
                Ok(_) => {}
                Err(error) => return Err(connection.broke(HttpError::Io(error))),
            }
        };
        if self.framing == Framing::Done {
            connection.busy = false;
        }
        self.lent = length;
        Ok(Some(&connection.read[..length]))
    }

    /// The whole body.
    pub async fn read_to_end(mut self) -> Result<Bytes, RequestError> {
        let mut body = match self.framing {
            Framing::Length(length) => Vec::with_capacity(length.min(1 << 20) as usize),
            _ => Vec::new(),
        };
        while let Some(data) = self.next_data().await? {
            body.extend_from_slice(data);
        }
        Ok(Bytes::from(body))
    }
}

impl Drop for Response<'_> {
    fn drop(&mut self) {
        self.connection.read.advance(self.lent);
        if self.framing != Framing::Done {
            // The rest of the body would come before the next answer: as hyper does, give the
            // connection up rather than read what nobody wants.
            self.connection.closing = true;
        }
    }
}

impl HttpConnection {
    /// The exchange failed: the connection can carry nothing more.
    fn broke(&mut self, error: HttpError) -> RequestError {
        self.closing = true;
        error.into()
    }
}

/// What the head of an answer says.
struct Head {
    /// Its length in bytes, the blank line included.
    length: usize,
    status: StatusCode,
    framing: Framing,
    /// The server closes the connection after this answer.
    close: bool,
    reset: Option<u64>,
}

/// Parses a response head at the front of `buffer`; `None` while it is incomplete.
fn parse_head(buffer: &[u8], head_request: bool) -> Result<Option<Head>, HttpError> {
    if buffer.is_empty() {
        return Ok(None);
    }
    // Uninitialised: zeroing 64 header slots cost more than parsing the head.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buffer,
        &mut headers,
    );
    let length = match parsed {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Malformed("invalid response head")),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(HttpError::Malformed("invalid status code"))?;
    // HTTP/1.0 closes after the answer unless it says otherwise (RFC 9112 §9.3).
    let http10 = response.version == Some(0);
    let (mut close, mut keep_alive) = (false, false);
    let mut content_length: Option<u64> = None;
    let mut transfer_coded = false;
    let mut chunked = false;
    let mut reset = None;
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(HttpError::Malformed("invalid Content-Length"))?;
            if content_length.is_some_and(|seen| seen != value) {
                return Err(HttpError::Malformed("conflicting Content-Length values"));
            }
            content_length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only when it is the last coding (RFC 9112 §6.3).
            transfer_coded = true;
            chunked = header
                .value
                .split(|&b| b == b',')
                .next_back()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(super::RESET_HEADER) {
            reset = std::str::from_utf8(header.value)
                .ok()
                .and_then(super::reset_header_cursor);
        }
    }
    let code = status.as_u16();
    let framing = if head_request || status.is_informational() || code == 204 || code == 304 {
        Framing::Done
    } else if transfer_coded {
        if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::UntilClose
        }
    } else {
        match content_length {
            Some(0) => Framing::Done,
            Some(length) => Framing::Length(length),
            None => Framing::UntilClose,
        }
    };
    Ok(Some(Head {
        length,
        status,
        framing,
        close: close || (http10 && !keep_alive),
        reset,
    }))
}

/// The first line in `buffer`: its length without the CRLF or LF that ends it, and with it; `None`
/// until a whole line is there. Read in place: the caller advances past it.
fn line_end(buffer: &[u8]) -> Result<Option<(usize, usize)>, HttpError> {
    match memchr::memchr(b'\n', buffer) {
        Some(end) => {
            let length = if end > 0 && buffer[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            Ok(Some((length, end + 1)))
        }
        None if buffer.len() > MAX_LINE_BYTES => Err(HttpError::Malformed("chunk line too long")),
        None => Ok(None),
    }
}

/// The size on a chunk-size line: hex digits, then optional extensions (RFC 9112 §7.1.1).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line[digits..].trim_ascii_start();
    if digits == 0 || digits > 15 || !(rest.is_empty() || rest[0] == b';') {
        return None;
    }
    // At most 15 hex digits: no overflow.
    Some(line[..digits].iter().fold(0u64, |size, &digit| {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        size << 4 | u64::from(value)
    }))
}

/// The bytes of a request, header for header the ones hyper's client writes for it: the request
/// line, `host`, `user-agent`, `accept`, the extra headers, `content-type`, and `content-length`
/// when there is a body, then the body.
fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    path_and_query: &str,
    authority: &str,
    extra_headers: &[(&str, &str)],
    body: Option<(&[u8], &'static str)>,
) {
    out.clear();
    let mut line = |parts: &[&[u8]]| {
        for part in parts {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(b"\r\n");
    };
    line(&[
        method.as_str().as_bytes(),
        b" ",
        path_and_query.as_bytes(),
        b" HTTP/1.1",
    ]);
    line(&[b"host: ", authority.as_bytes()]);
    line(&[b"user-agent: ", USER_AGENT.as_bytes()]);
    line(&[b"accept: */*"]);
    for (name, value) in extra_headers {
        line(&[name.as_bytes(), b": ", value.as_bytes()]);
    }
    if let Some((bytes, content_type)) = body {
        line(&[b"content-type: ", content_type.as_bytes()]);
        let _ = write!(out, "content-length: {}\r\n", bytes.len());
    }
    out.extend_from_slice(b"\r\n");
    if let Some((bytes, _)) = body {
        out.extend_from_slice(bytes);
    }
}

/// Reads whatever the socket has into the spare room of `buffer`, growing it when full. `Ok(0)` is
/// the end of the stream.
async fn read_more(io: &mut CountedIo, buffer: &mut BytesMut) -> io::Result<usize> {
    poll_fn(|cx| poll_read_more(io, buffer, cx)).await
}

fn poll_read_more(
    io: &mut CountedIo,
    buffer: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buffer.capacity() == buffer.len() {
        buffer.reserve(READ_CHUNK);
    }
    // Tokio's `read_buf` fills the spare capacity without zeroing it first.
    std::pin::pin!(io.read_buf(buffer)).poll(cx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::header::{self, HeaderName, HeaderValue};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// The bytes hyper's client writes for a request built as rtsim's client built it with hyper.
    async fn hyper_request_bytes(
        method: Method,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<(&'static [u8], &'static str)>,
    ) -> Vec<u8> {
        let (client_end, mut server_end) = tokio::io::duplex(64 * 1024);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(client_end))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut request = hyper::Request::new(Full::new(Bytes::from_static(
            body.map_or(&b""[..], |(bytes, _)| bytes),
        )));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap();
        let headers = request.headers_mut();
        headers.append(header::HOST, HeaderValue::from_static("server:80"));
        headers.append(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        for (name, value) in extra {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        if let Some((_, content_type)) = body {
            headers.append(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).unwrap(),
            );
        }
        tokio::spawn(async move {
            let _ = sender.send_request(request).await;
        });
        read_request(&mut server_end).await
    }

    /// One request off the wire: its head and, if it declares one, its body.
    async fn read_request(io: &mut DuplexStream) -> Vec<u8> {
        let mut seen = Vec::new();
        loop {
            let mut chunk = [0u8; 1024];
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed mid-request");
            seen.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head) = request.parse(&seen).unwrap() {
                let length = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| {
                        std::str::from_utf8(h.value).unwrap().parse().unwrap()
                    });
                if seen.len() >= head + length {
                    return seen;
                }
            }
        }
    }

    /// A request's method, target, extra headers and body with its type.
    type RequestCase = (
        Method,
        &'static str,
        &'static [(&'static str, &'static str)],
        Option<(&'static [u8], &'static str)>,
    );

    #[tokio::test]
    async fn requests_carry_the_bytes_hyper_sends() {
        let cases: [RequestCase; 4] = [
            (Method::GET, "/long-poll?since=42", &[], None),
            (
                Method::GET,
                "/events",
                &[
                    ("accept", "text/event-stream"),
                    ("cache-control", "no-cache"),
                    ("last-event-id", "17"),
                ],
                None,
            ),
            (
                Method::POST,
                "/messages",
                &[],
                Some((&b"{\"sent_us\":5}"[..], "application/json")),
            ),
            (
                Method::POST,
                "/engine.io/?EIO=4&transport=polling&sid=abc",
                &[],
                Some((&b"4hello\x1e2"[..], "text/plain;charset=UTF-8")),
            ),
        ];
        for (method, path, extra, body) in cases {
            let mut ours = Vec::new();
            encode_request(&mut ours, &method, path, "server:80", extra, body);
            let hypers = hyper_request_bytes(method.clone(), path, extra, body).await;
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&hypers),
                "{method} {path}"
            );
        }
    }

    /// A connection whose server side is the returned end of an in-memory pipe.
    fn connection() -> (HttpConnection, DuplexStream) {
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let clock = Rc::new(crate::test_support::ManualClock::default());
        let recorder = crate::recorder::Recorder::new(clock, 1, Duration::from_secs(10)).shared();
        let io = crate::net::CountingStream::new(
            Box::new(client_end) as crate::net::BoxIo,
            0,
            "192.0.2.1:40000".parse().unwrap(),
            Purpose::Session,
            recorder,
        );
        (HttpConnection::over(io, "server:80"), server_end)
    }

    /// Sends one GET over a fresh connection; the server side writes `answer` in pieces of
    /// `piece` bytes, then closes if `close`. Returns the status, the body, and whether the
    /// connection could carry another request.
    async fn exchange(answer: &[u8], piece: usize, close: bool) -> (StatusCode, Vec<u8>, bool) {
        let (mut client, mut server) = connection();
        let answer = answer.to_vec();
        let writer = tokio::spawn(async move {
            read_request(&mut server).await;
            for part in answer.chunks(piece) {
                server.write_all(part).await.unwrap();
                tokio::task::yield_now().await;
            }
            if close {
                drop(server);
                None
            } else {
                Some(server)
            }
        });
        let mut response = client.request(Method::GET, "/x", &[], None).await.unwrap();
        let status = response.status();
        let mut body = Vec::new();
        while let Some(data) = response.next_data().await.unwrap() {
            assert!(!data.is_empty());
            body.extend_from_slice(data);
        }
        drop(response);
        let _server = writer.await.unwrap();
        tokio::task::yield_now().await;
        (status, body, client.is_open())
    }

    #[tokio::test]
    async fn bodies_are_read_by_their_framing_however_the_bytes_arrive() {
        let cases: [(&[u8], &[u8], bool, bool); 6] = [
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                b"hello",
                false,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\ntrailer: x\r\n\r\n",
                b"hello!",
                false,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                b"ok",
                false,
                false,
            ),
            // No length: the body runs to the close, and the connection is done.
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"until the end", true, false),
            (b"HTTP/1.1 204 No Content\r\n\r\n", b"", false, true),
            // HTTP/1.0 closes unless it says keep-alive.
            (b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx", b"x", false, false),
        ];
        for (answer, body, close, reusable) in cases {
            for piece in [1, 2, 3, 7, answer.len()] {
                let (status, read, open) = exchange(answer, piece, close).await;
                let shown = String::from_utf8_lossy(answer);
                assert_eq!(status.as_u16() / 100, 2, "{shown}");
                assert_eq!(read, body, "{shown} in pieces of {piece}");
                assert_eq!(open, reusable, "{shown} in pieces of {piece}");
            }
        }
    }

    #[tokio::test]
    async fn an_answer_cut_short_is_an_error_and_ends_the_connection() {
        let (mut client, mut server) = connection();
        tokio::spawn(async move {
            read_request(&mut server).await;
            server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
                .await
                .unwrap();
        });
        let mut response = client.request(Method::GET, "/x", &[], None).await.unwrap();
        assert_eq!(response.next_data().await.unwrap(), Some(&b"half"[..]));
        assert!(matches!(
            response.next_data().await,
            Err(RequestError::Http(HttpError::IncompleteBody))
        ));
        drop(response);
        assert!(!client.is_open());
    }

    #[tokio::test]
    async fn a_close_before_the_answer_is_told_apart() {
        let (mut client, mut server) = connection();
        tokio::spawn(async move {
            read_request(&mut server).await;
        });
        let error = client
            .request(Method::GET, "/x", &[], None)
            .await
            .err()
            .expect("no answer");
        assert!(error.is_closed_before_answer());
        assert!(!client.is_open());
    }

    #[tokio::test]
    async fn an_idle_connection_the_server_closed_is_let_go_of() {
        let (client, mut server) = connection();
        let mut slot = Some(client);
        // Open while the server keeps it.
        assert!(usable(&mut slot).is_some());
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            server.shutdown().await.unwrap();
        });
        // Watched while idle: dropped when the close arrives, not when the wait ends.
        idle(&mut slot, async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(slot.is_none());
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_leaves_the_connection_unusable() {
        let (mut client, mut server) = connection();
        tokio::spawn(async move {
            read_request(&mut server).await;
            server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
                .await
                .unwrap();
            std::future::pending::<()>().await;
        });
        let response = client.request(Method::GET, "/x", &[], None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        drop(response);
        assert!(!client.is_open());
    }

    #[test]
    fn chunk_sizes_are_hex_with_optional_extensions() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b"A ; name=value"), Some(10));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"zz"), None);
        assert_eq!(chunk_size(b"12 garbage"), None);
        assert_eq!(chunk_size(b"1234567890abcdef0"), None);
    }
}
