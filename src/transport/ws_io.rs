//! tungstenite's RFC 6455 protocol driven from async code: [`WsStream`] runs tungstenite's
//! `WebSocket` (framing, masking, pings, the close handshake) over a tokio socket, as
//! tokio-tungstenite does, but without its compatibility layer's waker proxies.
//!
//! tokio-tungstenite hands the socket a waker of its own (an `Arc` with two `AtomicWaker`s per
//! direction) and registers the task's waker in them on every poll: four compare-and-swaps on
//! memory of its own, out of cache at 10,000 connections, for every frame read or written. Here the
//! socket is polled with the task's own waker, kept in the stream and replaced only when the task
//! polls with another one (`Waker::clone_from` is a no-op for the same waker).
//!
//! This module only adapts; it must not decide anything about sessions (that is
//! [`super::websocket`]).

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{ClientHandshake, Error, Message, WebSocket};

/// Which of tungstenite's calls is running: its reads and writes are polled with that call's waker.
#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
}

/// The socket as tungstenite sees it: blocking-style `Read`/`Write` that answer `WouldBlock` where
/// the socket is pending. A pending poll has stored the current call's waker in the socket, so the
/// task is woken when the socket is ready.
///
/// Reading and writing keep a waker each, as tokio-tungstenite does, because a caller may read with a
/// waker of its own (the server's read gate) and write with the task's: one slot for both would swap
/// (and reference-count) wakers on every frame. A write made inside a read (tungstenite's automatic
/// pong or close reply) uses the read's waker, so the reader hears when it can go on.
struct Blocking<S> {
    io: S,
    op: Op,
    read_waker: Waker,
    write_waker: Waker,
}

impl<S> Blocking<S> {
    fn new(io: S) -> Self {
        Self {
            io,
            op: Op::Read,
            read_waker: Waker::noop().clone(),
            write_waker: Waker::noop().clone(),
        }
    }

    /// Starts a call of kind `op` from a task polled with `waker`.
    fn enter(&mut self, op: Op, waker: &Waker) {
        self.op = op;
        match op {
            Op::Read => self.read_waker.clone_from(waker),
            Op::Write => self.write_waker.clone_from(waker),
        }
    }

    /// The socket, and the waker of the call that is running.
    fn parts(&mut self) -> (Pin<&mut S>, Context<'_>)
    where
        S: Unpin,
    {
        let waker = match self.op {
            Op::Read => &self.read_waker,
            Op::Write => &self.write_waker,
        };
        (Pin::new(&mut self.io), Context::from_waker(waker))
    }
}

fn would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl<S: AsyncRead + Unpin> Read for Blocking<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        let (io, mut cx) = self.parts();
        would_block(io.poll_read(&mut cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl<S: AsyncWrite + Unpin> Write for Blocking<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (io, mut cx) = self.parts();
        would_block(io.poll_write(&mut cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        let (io, mut cx) = self.parts();
        would_block(io.poll_flush(&mut cx))
    }
}

/// A `WouldBlock` from the socket is `Pending`; anything else is the call's result.
fn pending_if_blocked<T>(result: Result<T, Error>) -> Poll<Result<T, Error>> {
    match result {
        Err(Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

/// A WebSocket session on an async socket: read with [`WsStream::next`] (or as a `Stream`), write
/// with [`WsStream::feed`] / [`WsStream::send`] / [`WsStream::flush`], end with
/// [`WsStream::close`]. Its calls behave as tokio-tungstenite's `WebSocketStream` (`Stream` and
/// `Sink`) do.
pub struct WsStream<S> {
    ws: WebSocket<Blocking<S>>,
    /// The connection closed or broke: reading gives `None` from now on.
    ended: bool,
    /// False while a written frame waits in tungstenite's buffer for the socket.
    ready: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// A session on a socket whose opening handshake is done (the server's side, after hyper's
    /// upgrade).
    pub fn from_raw_socket(io: S, role: Role, config: WebSocketConfig) -> Self {
        Self::new(WebSocket::from_raw_socket(
            Blocking::new(io),
            role,
            Some(config),
        ))
    }

    fn new(ws: WebSocket<Blocking<S>>) -> Self {
        Self {
            ws,
            ended: false,
            ready: true,
        }
    }

    /// The client's opening handshake (RFC 6455 §4.1) on `io`, by tungstenite: the `GET` with
    /// `Upgrade`, then the server's `101` checked. An HTTP answer other than `101` is
    /// `Error::Http`.
    pub async fn connect(
        request: impl IntoClientRequest,
        io: S,
        config: WebSocketConfig,
    ) -> Result<(Self, Response), Error> {
        let request = request.into_client_request()?;
        // Starting only prepares the request's bytes; the rounds below write and read.
        let mut mid = Some(ClientHandshake::start(
            Blocking::new(io),
            request,
            Some(config),
        )?);
        let finished = poll_fn(|cx| {
            let mut handshake = mid
                .take()
                .expect("the handshake is polled after it finished");
            handshake.get_mut().get_mut().enter(Op::Read, cx.waker());
            match handshake.handshake() {
                Ok(done) => Poll::Ready(Ok(done)),
                Err(HandshakeError::Interrupted(handshake)) => {
                    mid = Some(handshake);
                    Poll::Pending
                }
                Err(HandshakeError::Failure(error)) => Poll::Ready(Err(error)),
            }
        })
        .await?;
        let (ws, response) = finished;
        Ok((Self::new(ws), response))
    }

    /// The socket underneath, for the last steps of a close (shutdown, drain).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.ws.get_mut().io
    }

    fn poll_read_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        self.ws.get_mut().enter(Op::Read, cx.waker());
        match pending_if_blocked(self.ws.read()) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(Err(Error::AlreadyClosed | Error::ConnectionClosed)) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(error)) => {
                self.ended = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    /// The next message; `None` once the connection has closed (and after an error).
    pub async fn next(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_read_message(cx)).await
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.ws.get_mut().enter(Op::Write, cx.waker());
        let flushed = std::task::ready!(pending_if_blocked(self.ws.flush()));
        self.ready = true;
        match flushed {
            // The connection has just closed: flushing is done, not failed.
            Err(Error::ConnectionClosed) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }

    /// Queues `message`, first waiting for the socket to take what an earlier call left queued.
    /// The frame may stay in tungstenite's buffer until [`WsStream::flush`].
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        if !self.ready {
            self.flush().await?;
        }
        // `ready` is true here: the wait above (or nothing queued) left it so.
        match self.ws.write(message) {
            // Accepted and queued: the next call flushes it.
            Err(Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                self.ready = false;
                Ok(())
            }
            other => other,
        }
    }

    /// Writes out every queued frame.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// [`WsStream::feed`] then [`WsStream::flush`].
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Starts the closing handshake with `frame` (§7.1.2): sends the Close.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        self.send(Message::Close(frame)).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_util::Stream for WsStream<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_read_message(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::duplex;
    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
    use tungstenite::Message;

    use super::WsStream;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A client and a server on a pipe of `room` bytes each way.
    fn pair(
        room: usize,
    ) -> (
        WsStream<tokio::io::DuplexStream>,
        WsStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = duplex(room);
        // As the simulation configures it: every frame is written at once (no write buffer), so
        // a full pipe makes `feed` leave a frame queued, and a small read buffer.
        let config = WebSocketConfig::default()
            .read_buffer_size(512)
            .write_buffer_size(0);
        (
            WsStream::from_raw_socket(a, Role::Client, config),
            WsStream::from_raw_socket(b, Role::Server, config),
        )
    }

    #[test]
    fn messages_cross_a_pipe_too_small_for_them_in_order() {
        runtime().block_on(async {
            // 16 bytes: most frames fill the pipe, so both sides wait for each other, and only
            // wakers bring them back.
            let (mut client, mut server) = pair(16);
            let texts: Vec<String> = (0..20)
                .map(|i| format!("event {i} {}", "x".repeat(i * 7)))
                .collect();
            let sent = texts.clone();
            let writer = async move {
                // How often a frame stayed queued because the pipe was full.
                let mut queued = 0;
                for text in sent {
                    server.feed(Message::text(text)).await.unwrap();
                    queued += usize::from(!server.ready);
                }
                server.flush().await.unwrap();
                queued
            };
            let reader = async {
                let mut got = Vec::new();
                while got.len() < texts.len() {
                    match client.next().await {
                        Some(Ok(Message::Text(text))) => got.push(text.as_str().to_owned()),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                got
            };
            let (queued, got) = tokio::join!(writer, reader);
            assert_eq!(got, texts);
            assert!(
                queued > 0,
                "the pipe never filled: the test waits for nothing"
            );
        });
    }

    #[test]
    fn a_ping_is_answered_and_a_close_ends_both_sides() {
        runtime().block_on(async {
            // Room for every frame: the steps below run one after the other.
            let (mut client, mut server) = pair(4096);
            server
                .send(Message::Ping(b"are you there".to_vec().into()))
                .await
                .unwrap();
            // The client sees the ping, and tungstenite queues the pong, sent on its next call.
            match client.next().await {
                Some(Ok(Message::Ping(data))) => assert_eq!(&data[..], b"are you there"),
                other => panic!("unexpected {other:?}"),
            }
            client.flush().await.unwrap();
            match server.next().await {
                Some(Ok(Message::Pong(data))) => assert_eq!(&data[..], b"are you there"),
                other => panic!("unexpected {other:?}"),
            }
            // The server closes; the client sees the Close and its reply goes back.
            let going = CloseFrame {
                code: CloseCode::Away,
                reason: "bye".into(),
            };
            server.close(Some(going)).await.unwrap();
            match client.next().await {
                Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
                other => panic!("unexpected {other:?}"),
            }
            client.flush().await.unwrap();
            // The server reads the client's reply, and then the session is over on its side.
            match server.next().await {
                Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
                other => panic!("unexpected {other:?}"),
            }
            assert!(server.next().await.is_none());
            // Once ended, a stream keeps saying so.
            assert!(server.next().await.is_none());
        });
    }

    #[test]
    fn a_dropped_peer_ends_the_stream() {
        runtime().block_on(async {
            let (mut client, server) = pair(4096);
            drop(server);
            // A connection gone without a Close is an error once, then the end.
            assert!(matches!(client.next().await, Some(Err(_))));
            assert!(client.next().await.is_none());
        });
    }
}
