//! What each transport costs on the real server's sockets: requests, and bytes in both directions
//! counted where they cross the socket (HTTP headers, chunking and WebSocket framing included; TCP/IP
//! headers not), attributed to the transport whose request the connection is serving.
//!
//! Attribution follows HTTP/1.1's one-request-at-a-time rule: a connection belongs to the transport of
//! the request it last routed. Bytes a client sends are held as "pending" until the server has read
//! enough to route the request they belong to; after a WebSocket upgrade they go straight to it.
//!
//! Also guards the real socket against a client that stops reading: a write that makes no progress
//! for [`WRITE_STALL_LIMIT`] fails, which ends that connection and frees its slot. Counting only; this
//! module never answers a request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::transport::TransportKind;

/// How long a write may wait for a client that does not read before the connection is dropped.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Counters of one slot (a transport, or everything else).
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
}

/// What a request is for, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A transport's endpoint.
    Transport(TransportKind),
    /// The page, `/time`, `/stats`, `/messages`, unknown paths and garbage.
    Other,
}

impl Slot {
    const COUNT: usize = TransportKind::ALL.len() + 1;

    /// The slot of a request path.
    pub fn of_path(path: &str) -> Slot {
        TransportKind::ALL
            .into_iter()
            .find(|&kind| crate::transport::transport_for(kind).path() == path)
            .map_or(Slot::Other, Slot::Transport)
    }

    fn index(self) -> usize {
        match self {
            Slot::Transport(kind) => TransportKind::ALL
                .iter()
                .position(|&k| k == kind)
                .unwrap_or(TransportKind::ALL.len()),
            Slot::Other => TransportKind::ALL.len(),
        }
    }
}

/// Server-wide counters, per slot, since the server started.
#[derive(Debug, Default)]
pub struct Stats {
    slots: [Counters; Slot::COUNT],
}

/// One slot's counters as `/stats` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlotSnapshot {
    /// HTTP requests routed to the slot (a WebSocket handshake is one).
    pub requests: u64,
    /// Bytes the server wrote to clients for it.
    pub bytes_down: u64,
    /// Bytes the server read from clients for it.
    pub bytes_up: u64,
}

impl Stats {
    /// Counts a request routed to `slot`.
    pub fn request(&self, slot: Slot) {
        self.slots[slot.index()]
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }

    fn down(&self, slot: usize, bytes: u64) {
        self.slots[slot]
            .bytes_down
            .fetch_add(bytes, Ordering::Relaxed);
    }

    fn up(&self, slot: usize, bytes: u64) {
        self.slots[slot]
            .bytes_up
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counters of `slot` now.
    pub fn snapshot(&self, slot: Slot) -> SlotSnapshot {
        let c = &self.slots[slot.index()];
        SlotSnapshot {
            requests: c.requests.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
        }
    }
}

/// One connection's attribution state. Shared between the socket wrapper and the request router
/// (atomics because hyper's upgrade machinery wants a `Send` socket).
#[derive(Debug)]
pub struct ConnectionMeter {
    stats: Arc<Stats>,
    owner: AtomicUsize,
    pending_up: AtomicU64,
    direct_reads: AtomicBool,
}

impl ConnectionMeter {
    pub fn new(stats: Arc<Stats>) -> Arc<Self> {
        Arc::new(Self {
            stats,
            owner: AtomicUsize::new(Slot::Other.index()),
            pending_up: AtomicU64::new(0),
            direct_reads: AtomicBool::new(false),
        })
    }

    /// The connection now serves a request for `slot`: the bytes read so far were that request's.
    pub fn route(&self, slot: Slot) {
        self.stats.request(slot);
        let index = slot.index();
        self.owner.store(index, Ordering::Relaxed);
        self.stats
            .up(index, self.pending_up.swap(0, Ordering::Relaxed));
        // After a WebSocket handshake, what the client sends is frames of that session.
        self.direct_reads.store(
            slot == Slot::Transport(TransportKind::Websocket),
            Ordering::Relaxed,
        );
    }

    fn read(&self, bytes: u64) {
        if self.direct_reads.load(Ordering::Relaxed) {
            self.stats.up(self.owner.load(Ordering::Relaxed), bytes);
        } else {
            self.pending_up.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn wrote(&self, bytes: u64) {
        self.stats.down(self.owner.load(Ordering::Relaxed), bytes);
    }
}

impl Drop for ConnectionMeter {
    fn drop(&mut self) {
        // Whatever was read but never routed (a half request, garbage) belongs to the last owner.
        let pending = self.pending_up.swap(0, Ordering::Relaxed);
        self.stats.up(self.owner.load(Ordering::Relaxed), pending);
    }
}

/// A server-side socket that counts its bytes into a [`ConnectionMeter`] and fails writes that stall.
pub struct MeteredStream<S> {
    inner: S,
    meter: Arc<ConnectionMeter>,
    stall: Option<Pin<Box<Sleep>>>,
}

impl<S> MeteredStream<S> {
    pub fn new(inner: S, meter: Arc<ConnectionMeter>) -> Self {
        Self {
            inner,
            meter,
            stall: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MeteredStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (result, read) = crate::net::poll_read_counted(&mut self.inner, cx, buf);
        if read > 0 {
            self.meter.read(read as u64);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MeteredStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                self.stall = None;
                self.meter.wrote(written as u64);
                Poll::Ready(Ok(written))
            }
            Poll::Pending => {
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_LIMIT)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn paths_map_to_slots() {
        assert_eq!(
            Slot::of_path("/events"),
            Slot::Transport(TransportKind::Sse)
        );
        assert_eq!(
            Slot::of_path("/long-poll"),
            Slot::Transport(TransportKind::LongPolling)
        );
        assert_eq!(Slot::of_path("/"), Slot::Other);
        assert_eq!(Slot::of_path("/nope"), Slot::Other);
    }

    #[tokio::test]
    async fn bytes_follow_the_request_being_served() {
        let stats = Arc::new(Stats::default());
        let meter = ConnectionMeter::new(stats.clone());
        let (client, server) = tokio::io::duplex(1024);
        let mut server = MeteredStream::new(server, meter.clone());
        let mut client = client;
        let mut buf = [0u8; 64];

        // A poll request arrives, is routed, and is answered.
        client
            .write_all(b"GET /poll HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let n = server.read(&mut buf).await.unwrap();
        meter.route(Slot::of_path("/poll"));
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let polling = stats.snapshot(Slot::Transport(TransportKind::Polling));
        assert_eq!(polling.requests, 1);
        assert_eq!(polling.bytes_up, n as u64);
        assert_eq!(polling.bytes_down, 19);

        // The next request on the same connection belongs to the stats page, not to polling.
        client
            .write_all(b"GET /stats HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let n = server.read(&mut buf).await.unwrap();
        meter.route(Slot::of_path("/stats"));
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert_eq!(
            stats.snapshot(Slot::Transport(TransportKind::Polling)),
            polling
        );
        let other = stats.snapshot(Slot::Other);
        assert_eq!((other.requests, other.bytes_up), (1, n as u64));
    }
}
