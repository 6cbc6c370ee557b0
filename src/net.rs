//! The network as the transports see it: a way to open a connection to the server, and byte counting on
//! every client socket.
//!
//! Transports use only this module, never turmoil or tokio's sockets directly, so the same protocol code
//! runs over simulated TCP and real TCP. Nothing here knows which transport is speaking.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::recorder::SharedRecorder;

/// A bidirectional byte stream: a TCP connection, possibly wrapped.
pub trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// A connection of any kind.
pub type BoxIo = Box<dyn Io>;

/// A client's connection as [`crate::transport::ClientCtx::connect`] opens it: counted, and kept by
/// value where it is used rather than boxed once more, so that every read and write follows one
/// pointer fewer (one cache miss fewer per read at 10,000 clients).
pub type CountedIo = CountingStream<BoxIo>;

/// How one client reaches the server.
pub trait Connector {
    /// Opens a TCP connection towards the server (directly or through middleboxes); returns it with the
    /// client-side address, which is how middleboxes and the recorder tell connections apart.
    fn connect(&self) -> LocalBoxFuture<'static, io::Result<(BoxIo, SocketAddr)>>;

    /// The `Host` header value for requests.
    fn authority(&self) -> &str;
}

/// What a client opened a connection for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The connection that carries events to the client (polls, the stream, the WebSocket).
    Session,
    /// A second connection for upstream messages.
    Upstream,
}

/// A client's socket, registered with the recorder while it is open: counts the bytes it carries (which
/// also drive the radio model), and on drop tells the recorder the client has let it go — which is when
/// a silently dead connection counts as noticed.
pub struct CountingStream<S> {
    inner: S,
    client: usize,
    local: SocketAddr,
    recorder: SharedRecorder,
}

impl<S> CountingStream<S> {
    pub fn new(
        inner: S,
        client: usize,
        local: SocketAddr,
        purpose: Purpose,
        recorder: SharedRecorder,
    ) -> Self {
        recorder
            .borrow_mut()
            .connection_opened(client, local, purpose);
        Self {
            inner,
            client,
            local,
            recorder,
        }
    }
}

impl<S> Drop for CountingStream<S> {
    fn drop(&mut self) {
        // Runtimes are torn down after the run, when `finish` may hold the recorder.
        if let Ok(mut recorder) = self.recorder.try_borrow_mut() {
            recorder.connection_closed(self.local);
        }
    }
}

/// Reads from `inner` into `buf`; returns the read's result and how many bytes it added. For wrappers
/// that count what crosses a socket (here and in `rtsim serve`).
pub fn poll_read_counted<S: AsyncRead + Unpin>(
    inner: &mut S,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> (Poll<io::Result<()>>, usize) {
    let before = buf.filled().len();
    let result = Pin::new(inner).poll_read(cx, buf);
    (result, buf.filled().len() - before)
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (result, read) = poll_read_counted(&mut self.inner, cx, buf);
        if read > 0 {
            self.recorder.borrow_mut().bytes(self.client, read, 0);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            if written > 0 {
                self.recorder.borrow_mut().bytes(self.client, 0, written);
            }
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
