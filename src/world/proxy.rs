//! An HTTP/1.1 reverse proxy between clients and the server, behaving as nginx does by default: it parses
//! each request and response, forwards them, holds response bodies in a buffer until `buffer_bytes` or
//! the end of the response (`proxy_buffering on`), passes a response with `X-Accel-Buffering: no`
//! through unbuffered when told to honour it, cuts an upstream response that stays silent for
//! `read_timeout` (`proxy_read_timeout`), tunnels WebSocket upgrades — or refuses them with 403, as
//! restrictive corporate proxies do.

use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

use crate::recorder::SharedRecorder;
use crate::scenario::Proxy as ProxySettings;

/// The proxy host's configuration and links.
pub struct Proxy {
    pub settings: ProxySettings,
    pub next_hop: (String, u16),
    pub recorder: SharedRecorder,
}

/// Why a proxied exchange stopped.
#[derive(Debug)]
enum Stop {
    /// A peer closed or broke the connection, or spoke something that is not HTTP.
    Closed,
    /// The upstream was silent for `read_timeout`: nginx cuts such a response.
    Timeout,
}

impl Proxy {
    /// Accepts and proxies connections for the rest of the run.
    pub async fn run(self: Rc<Self>, port: u16) -> turmoil::Result {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        loop {
            let (inbound, _peer) = listener.accept().await?;
            let proxy = self.clone();
            tokio::task::spawn_local(async move {
                if let Err(Stop::Timeout) = proxy.serve(inbound).await {
                    proxy
                        .recorder
                        .borrow_mut()
                        .connection_cut("proxy read timeout");
                }
                // Returning drops both connections: each side sees the close.
            });
        }
    }

    async fn serve(&self, inbound: TcpStream) -> Result<(), Stop> {
        let mut client = Buffered::new(inbound);
        let mut upstream: Option<Buffered<TcpStream>> = None;
        loop {
            let request = client.read_head().await?;
            let head = parse_request(&request).ok_or(Stop::Closed)?;
            if head.upgrade_websocket && self.settings.block_websocket {
                let refusal = b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 27\r\nconnection: close\r\n\r\nWebSocket is not permitted\n";
                client
                    .stream
                    .write_all(refusal)
                    .await
                    .map_err(|_| Stop::Closed)?;
                return Ok(());
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

            let timeout = self.settings.read_timeout;
            let response = with_timeout(timeout, server.read_head()).await??;
            let status = parse_response(&response).ok_or(Stop::Closed)?;
            client
                .stream
                .write_all(&response)
                .await
                .map_err(|_| Stop::Closed)?;
            if status.code == 101 {
                return tunnel(client, upstream.take().expect("connected"), timeout).await;
            }
            let buffer_limit = if self.settings.honor_accel_buffering && status.accel_buffering_off
            {
                0
            } else {
                self.settings.buffer_bytes
            };
            let body = if head.method_is_head || status.code == 204 || status.code == 304 {
                BodyFraming::Length(0)
            } else {
                status.framing
            };
            relay_body(server, &mut client.stream, body, buffer_limit, timeout).await?;
            if head.close || status.close || matches!(body, BodyFraming::UntilClose) {
                return Ok(());
            }
        }
    }
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
#[derive(Clone, Copy, Debug, PartialEq)]
enum BodyFraming {
    Length(usize),
    Chunked,
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
        BodyFraming::Chunked
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

/// Relays a response body, holding up to `buffer_limit` bytes before passing them on (0: pass at once).
async fn relay_body<S: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut Buffered<S>,
    to: &mut W,
    framing: BodyFraming,
    buffer_limit: usize,
    timeout: Option<Duration>,
) -> Result<(), Stop> {
    let mut held = Vec::new();
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
        let used = match framing {
            BodyFraming::Chunked => chunked.consume(&bytes),
            _ => bytes.len(),
        };
        if used < bytes.len() {
            // Bytes past the end of this body belong to the next response.
            let mut rest = bytes[used..].to_vec();
            rest.append(&mut from.pending);
            from.pending = rest;
        }
        held.extend_from_slice(&bytes[..used]);
        remaining = match framing {
            BodyFraming::Length(_) => remaining - used,
            BodyFraming::Chunked if chunked.done => 0,
            _ => remaining,
        };
        if held.len() >= buffer_limit || remaining == 0 {
            to.write_all(&held).await.map_err(|_| Stop::Closed)?;
            held.clear();
        }
    }
    if !held.is_empty() {
        to.write_all(&held).await.map_err(|_| Stop::Closed)?;
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

/// After a 101: copy both ways until either side closes or the upstream is silent for `timeout`.
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
    let up = async {
        let mut buffer = vec![0u8; 8192];
        loop {
            match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return Stop::Closed,
                Ok(n) => {
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
            let read = match with_timeout(timeout, server_read.read(&mut buffer)).await {
                Err(stop) => return stop,
                Ok(Ok(0)) | Ok(Err(_)) => return Stop::Closed,
                Ok(Ok(n)) => n,
            };
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return Stop::Closed;
            }
        }
    };
    let stop = tokio::select! {
        // Fixed branch order: tokio's random order is unseeded and would break determinism.
        biased;
        stop = up => stop,
        stop = down => stop,
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
        assert_eq!(sse.framing, BodyFraming::Chunked);
        assert!(sse.accel_buffering_off);
        let json = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n").unwrap();
        assert_eq!(json.framing, BodyFraming::Length(2));
        assert!(!json.accel_buffering_off);
        assert!(parse_request(b"garbage\r\n\r\n").is_none());
    }
}
