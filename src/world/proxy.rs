//! An HTTP/1.1 reverse proxy between clients and the server, behaving as the real ones were measured to
//! (docs/references.md, "nginx"): it parses each request and response and forwards them.
//!
//! - `upstream_http = "1.0"` (nginx's default `proxy_http_version`): the response, head *and* body, is
//!   held until `buffer_bytes` have gathered or the response ends, and released in pieces of exactly
//!   `buffer_bytes`, splitting events. `"1.1"`: a streamed (chunked) response passes as it comes.
//!   A response with `X-Accel-Buffering: no` passes at once when the proxy honours it.
//! - `read_timeout` (`proxy_read_timeout`): a request whose answer has not begun gets a `504` (the
//!   `cloudflare` preset: a `524`) on a client connection that stays open; a response that has begun and then goes silent is cut; a
//!   tunnel is closed after that long without a byte either way.
//! - An upstream that closes mid-response gets its held bytes flushed and the response ended cleanly.
//! - WebSocket: refused with a 403 of the proxy's own (`block_websocket`), passed and tunnelled
//!   (`pass_upgrade`), or — as nginx without the `proxy_set_header Upgrade/Connection` lines — stripped
//!   of `Upgrade`/`Connection`, so the server answers the plain GET itself (400).
//!
//! Bytes still held when the run ends are registered in [`Proxy::held`], so that the run can count
//! their events as stranded rather than lost. The proxy never inspects what it relays beyond HTTP
//! framing (the ids in held bytes are read only by [`held_event_ids`], after the run).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use turmoil::net::{TcpListener, TcpStream};

use crate::profile::UpstreamHttp;
use crate::recorder::SharedRecorder;
use crate::scenario::Proxy as ProxySettings;

/// What a proxy holds for one client connection (shared with the run, which reads what is left).
#[derive(Default)]
pub struct HeldBytes {
    pub bytes: RefCell<Vec<u8>>,
    /// The last event id in bytes already released: that event may have gone out only in part, its
    /// end still held.
    pub last_id_out: Cell<Option<u64>>,
}

pub type Held = Rc<HeldBytes>;

/// The proxy host's configuration and links.
pub struct Proxy {
    pub settings: ProxySettings,
    pub next_hop: (String, u16),
    pub recorder: SharedRecorder,
    /// Per open client connection (numbered in accept order): the client-side peer and its held bytes.
    pub held: RefCell<BTreeMap<u64, (SocketAddr, Held)>>,
    accepted: Cell<u64>,
}

/// Why a proxied exchange stopped.
#[derive(Debug)]
enum Stop {
    /// A peer closed or broke the connection, or spoke something that is not HTTP.
    Closed,
    /// The upstream was silent for `read_timeout`: nginx cuts such a response.
    Timeout,
}

/// The answer to a request whose upstream did not answer within the read timeout: Cloudflare's own
/// status for it (524, "A timeout occurred"; docs/references.md) for the `cloudflare` preset, nginx's
/// 504 page (so that byte counts are realistic) for every other proxy. The 524 page is shortened: only
/// its status line and `Server` header follow Cloudflare; clients treat both as a failed request.
fn gateway_timeout(like: Option<crate::profile::ProxyPreset>) -> &'static [u8] {
    match like {
        Some(crate::profile::ProxyPreset::Cloudflare) => CLOUDFLARE_TIMEOUT,
        _ => GATEWAY_TIMEOUT,
    }
}

const CLOUDFLARE_TIMEOUT: &[u8] = b"HTTP/1.1 524 A timeout occurred\r\nServer: cloudflare\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 16\r\nConnection: keep-alive\r\n\r\nerror code: 524\n";

/// nginx's 504 page, as nginx 1.22.1 sends it.
const GATEWAY_TIMEOUT: &[u8] = b"HTTP/1.1 504 Gateway Time-out\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 167\r\nConnection: keep-alive\r\n\r\n<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n";

impl Proxy {
    pub fn new(settings: ProxySettings, next_hop: (String, u16), recorder: SharedRecorder) -> Self {
        Self {
            settings,
            next_hop,
            recorder,
            held: RefCell::new(BTreeMap::new()),
            accepted: Cell::new(0),
        }
    }

    /// Accepts and proxies connections for the rest of the run.
    pub async fn run(self: Rc<Self>, port: u16) -> turmoil::Result {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        loop {
            let (inbound, peer) = listener.accept().await?;
            let proxy = self.clone();
            let number = self.accepted.get();
            self.accepted.set(number + 1);
            let held: Held = Rc::default();
            self.held.borrow_mut().insert(number, (peer, held.clone()));
            tokio::task::spawn_local(async move {
                if let Err(Stop::Timeout) = proxy.serve(inbound, &held).await {
                    proxy
                        .recorder
                        .borrow_mut()
                        .connection_cut("proxy read timeout");
                }
                proxy.held.borrow_mut().remove(&number);
                // Returning drops both connections: each side sees the close.
            });
        }
    }

    async fn serve(&self, inbound: TcpStream, held: &Held) -> Result<(), Stop> {
        let settings = &self.settings;
        let mut client = Buffered::new(inbound);
        let mut upstream: Option<Buffered<TcpStream>> = None;
        loop {
            let mut request = client.read_head().await?;
            let head = parse_request(&request).ok_or(Stop::Closed)?;
            if head.upgrade_websocket && settings.block_websocket {
                let refusal = b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 27\r\nconnection: close\r\n\r\nWebSocket is not permitted\n";
                client
                    .stream
                    .write_all(refusal)
                    .await
                    .map_err(|_| Stop::Closed)?;
                return Ok(());
            }
            let tunnel_allowed = head.upgrade_websocket && settings.pass_upgrade;
            if head.upgrade_websocket && !settings.pass_upgrade {
                request = strip_upgrade(&request);
            }
            if upstream.is_none() {
                let (host, port) = &self.next_hop;
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|_| Stop::Closed)?;
                upstream = Some(Buffered::new(stream));
            }
            let server = upstream.as_mut().expect("connected above");
            server
                .stream
                .write_all(&request)
                .await
                .map_err(|_| Stop::Closed)?;
            relay_exact(&mut client, &mut server.stream, head.content_length).await?;

            let timeout = settings.read_timeout;
            let response = match with_timeout(timeout, server.read_head()).await {
                Ok(Ok(response)) => response,
                Ok(Err(stop)) => return Err(stop),
                Err(_) => {
                    // nginx answers 504 itself and keeps the client's connection; the upstream one
                    // is given up.
                    self.recorder
                        .borrow_mut()
                        .connection_cut("proxy read timeout");
                    client
                        .stream
                        .write_all(gateway_timeout(settings.like))
                        .await
                        .map_err(|_| Stop::Closed)?;
                    upstream = None;
                    if head.close {
                        return Ok(());
                    }
                    continue;
                }
            };
            let status = parse_response(&response).ok_or(Stop::Closed)?;
            if status.code == 101 && tunnel_allowed {
                client
                    .stream
                    .write_all(&response)
                    .await
                    .map_err(|_| Stop::Closed)?;
                return tunnel(client, upstream.take().expect("connected"), timeout).await;
            }
            let body = if head.method_is_head || status.code == 204 || status.code == 304 {
                BodyFraming::Length(0)
            } else {
                status.framing
            };
            let unbuffered = settings.honor_accel_buffering && status.accel_buffering_off;
            let streamed = settings.upstream_http == UpstreamHttp::Http11
                && matches!(body, BodyFraming::Chunked(_));
            let limit = if unbuffered || streamed {
                0
            } else {
                settings.buffer_bytes
            };
            let mut release = Release::new(
                &mut client.stream,
                held,
                limit,
                matches!(body, BodyFraming::Chunked(_)),
            );
            release.push_head(&response).await?;
            match relay_body(server, &mut release, body.clone(), timeout).await {
                Ok(()) => release.flush().await?,
                // The upstream went away: what was held goes out, and the response is ended cleanly
                // if its framing allows (else the close ends it).
                Err(Stop::Closed) => {
                    release.flush().await?;
                    return match body {
                        BodyFraming::Chunked(Some(at_boundary)) if at_boundary.get() => client
                            .stream
                            .write_all(b"0\r\n\r\n")
                            .await
                            .map_err(|_| Stop::Closed),
                        _ => Ok(()),
                    };
                }
                Err(Stop::Timeout) => {
                    release.abandon().await?;
                    return Err(Stop::Timeout);
                }
            }
            if head.close || status.close || matches!(body, BodyFraming::UntilClose) {
                return Ok(());
            }
        }
    }
}

/// Writes what the proxy releases to the client: everything at once (`limit` 0), or — as nginx's
/// buffers do — nothing until `limit` bytes of body data are held, then exactly those (with the head
/// and the chunk framing around them, which nginx does not count: it re-frames the body itself).
struct Release<'a, W> {
    to: &'a mut W,
    held: &'a Held,
    limit: usize,
    /// Body data bytes held so far.
    counted: usize,
    /// Bytes of the response head at the front of `held` (0 once released).
    head: usize,
    /// For a chunked body: where its data bytes are.
    chunks: Option<DataCounter>,
}

impl<'a, W: AsyncWrite + Unpin> Release<'a, W> {
    fn new(to: &'a mut W, held: &'a Held, limit: usize, chunked: bool) -> Self {
        Self {
            to,
            held,
            limit,
            counted: 0,
            head: 0,
            chunks: chunked.then(DataCounter::default),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        self.to.write_all(bytes).await.map_err(|_| Stop::Closed)
    }

    /// The response head: held with the body (nginx sends neither until a buffer is full).
    async fn push_head(&mut self, head: &[u8]) -> Result<(), Stop> {
        if self.limit == 0 {
            return self.write(head).await;
        }
        self.held.bytes.borrow_mut().extend_from_slice(head);
        self.head = head.len();
        Ok(())
    }

    async fn push(&mut self, mut bytes: &[u8]) -> Result<(), Stop> {
        if self.limit == 0 {
            return self.write(bytes).await;
        }
        while !bytes.is_empty() {
            let want = self.limit - self.counted;
            let (taken, data) = match &mut self.chunks {
                Some(counter) => counter.advance(bytes, want),
                None => {
                    let n = want.min(bytes.len());
                    (n, n)
                }
            };
            self.held
                .bytes
                .borrow_mut()
                .extend_from_slice(&bytes[..taken]);
            self.counted += data;
            bytes = &bytes[taken..];
            if self.counted == self.limit {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// The response ended (or its upstream went away): release what is held.
    async fn flush(&mut self) -> Result<(), Stop> {
        let rest = std::mem::take(&mut *self.held.bytes.borrow_mut());
        self.counted = 0;
        self.head = 0;
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(&id) = held_event_ids(&rest).last() {
            self.held.last_id_out.set(Some(id));
        }
        self.write(&rest).await
    }

    /// The upstream timed out mid-response: nginx sends the head if it still held it and drops the
    /// held body (measured: a silent SSE stream behind nginx gets its headers and then the close).
    async fn abandon(&mut self) -> Result<(), Stop> {
        let mut held = std::mem::take(&mut *self.held.bytes.borrow_mut());
        held.truncate(self.head);
        self.counted = 0;
        self.head = 0;
        if held.is_empty() {
            return Ok(());
        }
        self.write(&held).await
    }
}

/// Tells the data bytes of a chunked body from its framing, across pieces.
#[derive(Debug, Default)]
struct DataCounter {
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Data bytes left in the current chunk.
    Data(usize),
    /// The CRLF after a chunk's data, bytes left.
    Crlf(usize),
    /// The last chunk was seen: trailers and the end, none of it data.
    Done,
}

impl DataCounter {
    /// Walks `bytes` until `want` data bytes are counted or the bytes end; returns how many bytes were
    /// walked and how many of them were data.
    fn advance(&mut self, bytes: &[u8], want: usize) -> (usize, usize) {
        let (mut i, mut data) = (0, 0);
        while i < bytes.len() && data < want {
            match self.state {
                ChunkState::Size => {
                    let byte = bytes[i];
                    i += 1;
                    if byte != b'\n' {
                        self.line.push(byte);
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    let size = line.trim_end_matches('\r').split(';').next().unwrap_or("");
                    self.state = match usize::from_str_radix(size.trim(), 16) {
                        Ok(0) => ChunkState::Done,
                        Ok(n) => ChunkState::Data(n),
                        // Not a size line (a blank line between chunks): keep looking.
                        Err(_) => ChunkState::Size,
                    };
                }
                ChunkState::Data(left) => {
                    let n = left.min(bytes.len() - i).min(want - data);
                    i += n;
                    data += n;
                    self.state = if n == left {
                        ChunkState::Crlf(2)
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::Crlf(left) => {
                    let n = left.min(bytes.len() - i);
                    i += n;
                    self.state = if n == left {
                        ChunkState::Size
                    } else {
                        ChunkState::Crlf(left - n)
                    };
                }
                ChunkState::Done => i = bytes.len(),
            }
        }
        (i, data)
    }
}

/// Removes `Upgrade` and `Connection` from a request head, as nginx does unless told to pass them.
fn strip_upgrade(request: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(request);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive("\r\n") {
        let name = line.split(':').next().unwrap_or("").trim();
        if line.contains(':')
            && (name.eq_ignore_ascii_case("upgrade") || name.eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

/// The event ids in bytes a proxy still holds: the `id:` lines of an event stream (JSON answers are
/// released whole when they end, so they are never held at the end of a run).
pub fn held_event_ids(bytes: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(bytes);
    let mut ids = Vec::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        // The last line may be cut off mid-number by a release boundary: only whole lines count.
        if lines.peek().is_none() {
            break;
        }
        if let Some(value) = line.trim_end_matches('\r').strip_prefix("id:") {
            if let Ok(id) = value.trim_start_matches(' ').parse() {
                ids.push(id);
            }
        }
    }
    ids
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    future: impl std::future::Future<Output = T>,
) -> Result<T, Stop> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .map_err(|_| Stop::Timeout),
        None => Ok(future.await),
    }
}

/// A stream with the bytes read past the last parsed head.
struct Buffered<S> {
    stream: S,
    pending: Vec<u8>,
}

impl<S: AsyncRead + Unpin> Buffered<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Reads up to the blank line that ends an HTTP head; returns the head's bytes.
    async fn read_head(&mut self) -> Result<Vec<u8>, Stop> {
        loop {
            if let Some(end) = find(&self.pending, b"\r\n\r\n") {
                let rest = self.pending.split_off(end + 4);
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            if self.pending.len() > 64 * 1024 {
                return Err(Stop::Closed);
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into `pending`.
    async fn fill(&mut self) -> Result<(), Stop> {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => Err(Stop::Closed),
            Ok(read) => {
                self.pending.extend_from_slice(&chunk[..read]);
                Ok(())
            }
        }
    }

    /// Takes up to `max` bytes, reading if nothing is pending.
    async fn take(&mut self, max: usize) -> Result<Vec<u8>, Stop> {
        if self.pending.is_empty() {
            self.fill().await?;
        }
        let n = max.min(self.pending.len());
        let rest = self.pending.split_off(n);
        Ok(std::mem::replace(&mut self.pending, rest))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What the proxy needs to know of a request.
#[derive(Debug, PartialEq)]
struct RequestHead {
    content_length: usize,
    upgrade_websocket: bool,
    close: bool,
    method_is_head: bool,
}

/// How a response body ends.
#[derive(Clone, Debug, PartialEq)]
enum BodyFraming {
    Length(usize),
    /// Chunked; once relayed, whether the bytes so far end at a chunk boundary.
    Chunked(Option<Rc<Cell<bool>>>),
    UntilClose,
}

#[derive(Debug, PartialEq)]
struct ResponseHead {
    code: u16,
    framing: BodyFraming,
    accel_buffering_off: bool,
    close: bool,
}

fn header_has(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .any(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case(token))
        })
}

fn content_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
}

fn parse_request(bytes: &[u8]) -> Option<RequestHead> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !request.parse(bytes).ok()?.is_complete() {
        return None;
    }
    let headers = request.headers;
    Some(RequestHead {
        content_length: content_length(headers).unwrap_or(0),
        upgrade_websocket: header_has(headers, "upgrade", "websocket"),
        close: header_has(headers, "connection", "close"),
        method_is_head: request.method == Some("HEAD"),
    })
}

fn parse_response(bytes: &[u8]) -> Option<ResponseHead> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    if !response.parse(bytes).ok()?.is_complete() {
        return None;
    }
    let headers = response.headers;
    let framing = if header_has(headers, "transfer-encoding", "chunked") {
        BodyFraming::Chunked(Some(Rc::new(Cell::new(true))))
    } else if let Some(length) = content_length(headers) {
        BodyFraming::Length(length)
    } else {
        BodyFraming::UntilClose
    };
    Some(ResponseHead {
        code: response.code?,
        framing,
        accel_buffering_off: header_has(headers, "x-accel-buffering", "no"),
        close: header_has(headers, "connection", "close"),
    })
}

/// Copies exactly `length` request-body bytes from the client upstream.
async fn relay_exact<S: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut Buffered<S>,
    to: &mut W,
    mut length: usize,
) -> Result<(), Stop> {
    while length > 0 {
        let bytes = from.take(length).await?;
        length -= bytes.len();
        to.write_all(&bytes).await.map_err(|_| Stop::Closed)?;
    }
    Ok(())
}

/// Relays a response body through `release` until it ends.
async fn relay_body<S: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut Buffered<S>,
    release: &mut Release<'_, W>,
    framing: BodyFraming,
    timeout: Option<Duration>,
) -> Result<(), Stop> {
    let mut chunked = ChunkedEnd::default();
    let mut remaining = match framing {
        BodyFraming::Length(length) => length,
        _ => usize::MAX,
    };
    while remaining > 0 {
        let bytes = match with_timeout(timeout, from.take(remaining)).await? {
            Ok(bytes) => bytes,
            Err(Stop::Closed) if framing == BodyFraming::UntilClose => break,
            Err(stop) => return Err(stop),
        };
        let used = match &framing {
            BodyFraming::Chunked(boundary) => {
                let used = chunked.consume(&bytes);
                if let Some(boundary) = boundary {
                    boundary.set(chunked.at_boundary());
                }
                used
            }
            _ => bytes.len(),
        };
        if used < bytes.len() {
            // Bytes past the end of this body belong to the next response.
            let mut rest = bytes[used..].to_vec();
            rest.append(&mut from.pending);
            from.pending = rest;
        }
        release.push(&bytes[..used]).await?;
        remaining = match framing {
            BodyFraming::Length(_) => remaining - used,
            BodyFraming::Chunked(_) if chunked.done => 0,
            _ => remaining,
        };
    }
    Ok(())
}

/// Finds the end of a chunked body (the zero-size chunk and the blank line after its trailers).
#[derive(Debug, Default)]
struct ChunkedEnd {
    line: Vec<u8>,
    /// Data bytes (plus their CRLF) still to skip in the current chunk.
    skip: usize,
    in_trailers: bool,
    done: bool,
}

impl ChunkedEnd {
    /// The bytes consumed so far end between two chunks (a clean place to end the body).
    fn at_boundary(&self) -> bool {
        self.skip == 0 && self.line.is_empty() && !self.in_trailers
    }

    /// Consumes body bytes; returns how many belong to the body (less than given once it ends).
    fn consume(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() && !self.done {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() - i);
                self.skip -= n;
                i += n;
                continue;
            }
            let byte = bytes[i];
            i += 1;
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\r');
            if self.in_trailers {
                if line.is_empty() {
                    self.done = true;
                }
                continue;
            }
            let size_text = line.split(';').next().unwrap_or("").trim();
            match usize::from_str_radix(size_text, 16) {
                Ok(0) => self.in_trailers = true,
                Ok(size) => self.skip = size + 2,
                Err(_) => {}
            }
        }
        i
    }
}

/// After a 101: copy both ways until either side closes or nothing has moved either way for `timeout`
/// (nginx resets `proxy_read_timeout` on traffic in either direction of a tunnel).
async fn tunnel(
    client: Buffered<TcpStream>,
    server: Buffered<TcpStream>,
    timeout: Option<Duration>,
) -> Result<(), Stop> {
    let (mut client_read, mut client_write) = client.stream.into_split();
    let (mut server_read, mut server_write) = server.stream.into_split();
    if !client.pending.is_empty() {
        server_write
            .write_all(&client.pending)
            .await
            .map_err(|_| Stop::Closed)?;
    }
    if !server.pending.is_empty() {
        client_write
            .write_all(&server.pending)
            .await
            .map_err(|_| Stop::Closed)?;
    }
    let last_traffic = Cell::new(Instant::now());
    let up = async {
        let mut buffer = vec![0u8; 8192];
        loop {
            match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return Stop::Closed,
                Ok(n) => {
                    last_traffic.set(Instant::now());
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        return Stop::Closed;
                    }
                }
            }
        }
    };
    let down = async {
        let mut buffer = vec![0u8; 8192];
        loop {
            match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return Stop::Closed,
                Ok(n) => {
                    last_traffic.set(Instant::now());
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return Stop::Closed;
                    }
                }
            }
        }
    };
    let idle = async {
        let Some(limit) = timeout else {
            return std::future::pending().await;
        };
        loop {
            let deadline = last_traffic.get() + limit;
            tokio::time::sleep_until(deadline).await;
            if last_traffic.get() + limit <= Instant::now() {
                return Stop::Timeout;
            }
        }
    };
    let stop = tokio::select! {
        // Fixed branch order: tokio's random order is unseeded and would break determinism.
        biased;
        stop = up => stop,
        stop = down => stop,
        stop = idle => stop,
    };
    match stop {
        Stop::Timeout => Err(Stop::Timeout),
        Stop::Closed => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_answers_are_whole_responses_with_the_vendor_status() {
        for (like, code) in [
            (None, 504),
            (Some(crate::profile::ProxyPreset::Nginx), 504),
            (Some(crate::profile::ProxyPreset::AwsAlb), 504),
            (Some(crate::profile::ProxyPreset::Cloudflare), 524),
        ] {
            let answer = gateway_timeout(like);
            let head = parse_response(answer).expect("a complete head");
            assert_eq!(head.code, code, "{like:?}");
            let body_at = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let BodyFraming::Length(length) = head.framing else {
                panic!("{like:?}: a timeout answer has a Content-Length");
            };
            assert_eq!(answer.len() - body_at, length, "{like:?}");
            assert!(!head.close, "{like:?}: the client connection is kept");
        }
    }

    #[test]
    fn chunked_end_is_found_across_pieces() {
        let body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let mut end = ChunkedEnd::default();
        let mut used = 0;
        for piece in body.chunks(4) {
            used += end.consume(piece);
            if end.done {
                break;
            }
        }
        assert!(end.done);
        assert_eq!(&body[used..], b"NEXT");
    }

    /// A writer that keeps each write as one piece.
    #[derive(Default)]
    struct Pieces(Vec<Vec<u8>>);

    impl AsyncWrite for Pieces {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.0.push(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// When the tunnel of a client that writes every second for `writing` (and then nothing), to a
    /// server that never writes, is closed by a 3 s `read_timeout`: simulated seconds since connect.
    fn tunnel_closed_after(writing: Duration) -> f64 {
        let closed = Rc::new(Cell::new(None::<f64>));
        let mut sim = turmoil::Builder::new()
            .simulation_duration(Duration::from_secs(60))
            .min_message_latency(Duration::ZERO)
            .max_message_latency(Duration::ZERO)
            .build();
        sim.host("server", || async {
            let listener = TcpListener::bind(("0.0.0.0", 80)).await?;
            let (mut stream, _) = listener.accept().await?;
            let mut sink = vec![0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok(())
        });
        sim.host("proxy", || async {
            let listener = TcpListener::bind(("0.0.0.0", 80)).await?;
            let (client, _) = listener.accept().await?;
            let server = TcpStream::connect(("server", 80)).await?;
            let stop = tunnel(
                Buffered::new(client),
                Buffered::new(server),
                Some(Duration::from_secs(3)),
            )
            .await;
            assert!(matches!(stop, Err(Stop::Timeout)), "{stop:?}");
            Ok(())
        });
        let seen = closed.clone();
        sim.client("client", async move {
            let start = Instant::now();
            let mut stream = TcpStream::connect(("proxy", 80)).await?;
            while start.elapsed() < writing {
                stream.write_all(b"x").await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut buffer = [0u8; 16];
            // The server never writes: the read ends only when the proxy closes the tunnel.
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            assert_eq!(n, 0);
            seen.set(Some(start.elapsed().as_secs_f64()));
            Ok(())
        });
        sim.run().unwrap();
        closed.get().expect("the tunnel was closed")
    }

    #[test]
    fn a_tunnel_timeout_is_reset_by_client_traffic_alone() {
        // Real nginx (docs/references.md, measured): a WebSocket client sending every 2 s through a
        // tunnel whose server is silent is never cut; a silent one is cut after proxy_read_timeout.
        let silent = tunnel_closed_after(Duration::ZERO);
        assert!(
            (3.0..3.1).contains(&silent),
            "silent client cut at {silent} s"
        );
        let talking = tunnel_closed_after(Duration::from_secs(10));
        assert!(
            (12.0..12.1).contains(&talking),
            "a client writing every second from 0 to 9 s is cut 3 s after its last byte, not at \
             {talking} s"
        );
    }

    fn chunk(data: &[u8]) -> Vec<u8> {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn a_full_buffer_releases_exactly_its_size_in_body_data_with_the_head_first() {
        let mut out = Pieces::default();
        let held = Held::default();
        let event = [b'x'; 216];
        block_on(async {
            let mut release = Release::new(&mut out, &held, 1000, true);
            release.push_head(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            for _ in 0..10 {
                release.push(&chunk(&event)).await.unwrap();
            }
        });
        // 2160 data bytes: two releases of exactly 1000, 160 still held.
        assert_eq!(out.0.len(), 2);
        assert!(out.0[0].starts_with(b"HTTP/1.1 200 OK"));
        let mut counter = DataCounter::default();
        let head = b"HTTP/1.1 200 OK\r\n\r\n".len();
        assert_eq!(counter.advance(&out.0[0][head..], usize::MAX).1, 1000);
        assert_eq!(counter.advance(&out.0[1], usize::MAX).1, 1000);
        // The rest, 160 data bytes, is still held (it starts mid-chunk: no framing of its own).
        assert_eq!(counter.advance(&held.bytes.borrow(), usize::MAX).1, 160);
    }

    #[test]
    fn a_timed_out_response_keeps_only_its_head() {
        let mut out = Pieces::default();
        let held = Held::default();
        block_on(async {
            let mut release = Release::new(&mut out, &held, 4096, true);
            release.push_head(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            release.push(&chunk(b"retry: 3000\n\n")).await.unwrap();
            release.abandon().await.unwrap();
        });
        assert_eq!(out.0, vec![b"HTTP/1.1 200 OK\r\n\r\n".to_vec()]);
        assert!(held.bytes.borrow().is_empty());
    }

    #[test]
    fn upgrade_headers_are_stripped_and_held_ids_read() {
        let stripped = strip_upgrade(
            b"GET /ws HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
        );
        assert_eq!(
            String::from_utf8(stripped).unwrap(),
            "GET /ws HTTP/1.1\r\nHost: s\r\nSec-WebSocket-Key: k\r\n\r\n"
        );
        let held = b"HTTP/1.1 200 OK\r\n\r\nd8\r\nid: 7\ndata: {}\n\n\r\nd8\r\nid: 8\ndata: {}\n\n\r\nd8\r\nid: 9";
        assert_eq!(held_event_ids(held), vec![7, 8]);
    }

    #[test]
    fn heads_are_parsed_for_what_the_proxy_needs() {
        let request = parse_request(
            b"GET /ws HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap();
        assert!(request.upgrade_websocket);
        assert_eq!(request.content_length, 0);
        let post = parse_request(b"POST /messages HTTP/1.1\r\ncontent-length: 12\r\n\r\n").unwrap();
        assert_eq!(post.content_length, 12);
        let sse = parse_response(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-accel-buffering: no\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert!(matches!(sse.framing, BodyFraming::Chunked(_)));
        assert!(sse.accel_buffering_off);
        let json = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n").unwrap();
        assert_eq!(json.framing, BodyFraming::Length(2));
        assert!(!json.accel_buffering_off);
        assert!(parse_request(b"garbage\r\n\r\n").is_none());
    }
}
