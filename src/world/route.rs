//! A client's way into the network: which first hop (gateway, proxy or the server itself) its
//! connections go to, whether it has a network at all right now, and the network switches that change
//! both (a phone moving from Wi-Fi to cellular: every connection dies, then nothing works for the
//! outage, then the client comes back through another network with another address).
//!
//! At a switch the server learns nothing (the old network just goes quiet). The client is told by
//! default — a browser aborts its requests and sockets with `net::ERR_NETWORK_CHANGED` and mobile OSes
//! close the sockets of a lost network — so its connections fail at once with an error; with
//! `notify = false` they die silently for the client too.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use futures_util::future::LocalBoxFuture;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::gateway::Gateway;
use crate::net::{BoxIo, Connector};
use crate::recorder::SharedRecorder;

/// The first hops a client can use, one per network it may be on, and which one it is on now.
pub struct Route {
    hops: Vec<(String, u16)>,
    current: Cell<usize>,
    offline: Cell<bool>,
    authority: String,
    /// The client's open connections, so that a switch can fail them.
    open: RefCell<Vec<Weak<Severance>>>,
}

impl Route {
    pub fn new(hops: Vec<(String, u16)>, authority: &str) -> Rc<Self> {
        assert!(!hops.is_empty(), "a route needs a first hop");
        Rc::new(Self {
            hops,
            current: Cell::new(0),
            offline: Cell::new(false),
            authority: authority.to_string(),
            open: RefCell::new(Vec::new()),
        })
    }
}

/// Opens simulated TCP connections along a client's current route.
pub struct SimConnector {
    pub route: Rc<Route>,
    /// Whether a switch can fail this client's connections for it (a switch scenario that notifies the
    /// client). Without one nothing ever severs them, so they are not wrapped: the check costs a few
    /// per cent of every socket operation.
    pub severable: bool,
}

impl Connector for SimConnector {
    fn connect(&self) -> LocalBoxFuture<'static, io::Result<(BoxIo, SocketAddr)>> {
        let offline = self.route.offline.get();
        let (host, port) = self.route.hops[self.route.current.get()].clone();
        let route = self.route.clone();
        let severable = self.severable;
        Box::pin(async move {
            if offline {
                return Err(io::Error::new(
                    io::ErrorKind::NetworkUnreachable,
                    "no network",
                ));
            }
            let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
            let local = stream.local_addr()?;
            if !severable {
                return Ok((Box::new(stream) as BoxIo, local));
            }
            let severance = Rc::new(Severance::default());
            let mut open = route.open.borrow_mut();
            open.retain(|s| s.strong_count() > 0);
            open.push(Rc::downgrade(&severance));
            Ok((
                Box::new(Severable {
                    inner: stream,
                    severance,
                }) as BoxIo,
                local,
            ))
        })
    }

    fn authority(&self) -> &str {
        &self.route.authority
    }
}

/// A flag that fails a connection for its client (the OS or browser was told the network went away).
#[derive(Default)]
pub struct Severance {
    severed: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Severance {
    fn sever(&self) {
        self.severed.set(true);
        for waker in self.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// An error once severed; otherwise remembers who to wake.
    fn check(&self, cx: &Context<'_>) -> Option<io::Error> {
        if self.severed.get() {
            return Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "network changed",
            ));
        }
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        None
    }
}

/// A client's simulated socket that fails at once when the client's network changes under it.
struct Severable<S> {
    inner: S,
    severance: Rc<Severance>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Severable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(error) = self.severance.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Severable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.severance.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.severance.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.severance.severed.get() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a switch treats the client's side of its connections.
#[derive(Clone, Copy)]
pub struct SwitchPlan {
    pub outage: Duration,
    /// The client is told: its connections fail at once (otherwise they die silently).
    pub notify: bool,
}

/// When one client's network switches happen, from the start of the run: exponentially distributed
/// gaps (mean `every`) between the end of one outage and the next switch, each switch on a tick boundary
/// (simulated time has tick resolution anyway), none at or after `until` (the end of the measured run).
/// Computed before the run so that the simulation can end a lookahead window at each switch: the switch
/// changes a gateway's state from the client's host.
pub fn switch_times(
    rng: &mut ChaCha8Rng,
    every: Duration,
    outage: Duration,
    tick: Duration,
    until: Duration,
) -> Vec<Duration> {
    let tick_ns = tick.as_nanos().max(1);
    let mut at = Duration::ZERO;
    let mut times = Vec::new();
    loop {
        let gap = -every.as_secs_f64() * (1.0 - rng.gen::<f64>()).ln();
        let due = (at + Duration::from_secs_f64(gap)).as_nanos();
        let on_tick = due.div_ceil(tick_ns) * tick_ns;
        at = Duration::from_nanos(u64::try_from(on_tick).unwrap_or(u64::MAX));
        if at >= until {
            return times;
        }
        times.push(at);
        at += outage;
    }
}

/// Moves one client between its networks at the given moments (from [`switch_times`]): every
/// connection it has dies on the network it leaves — silently for the server, and for the client too
/// unless it is notified — it has no network for `outage`, then it continues on the next network.
pub async fn switch_networks(
    client: usize,
    route: Rc<Route>,
    gateways: Rc<Vec<Rc<Gateway>>>,
    recorder: SharedRecorder,
    plan: SwitchPlan,
    times: Vec<Duration>,
) {
    let SwitchPlan { outage, notify } = plan;
    // Spawned when the client host starts, at the start of the run.
    let origin = tokio::time::Instant::now();
    for at in times {
        tokio::time::sleep_until(origin + at).await;
        if recorder.borrow().is_closed() {
            return;
        }
        let leaving = route.current.get();
        let connections = recorder.borrow().connections_of(client);
        for local in connections {
            gateways[leaving].forget(local);
            if notify {
                recorder.borrow_mut().connection_cut("network switch");
            } else {
                recorder
                    .borrow_mut()
                    .connection_died(local, "network switch");
            }
        }
        if notify {
            let open = std::mem::take(&mut *route.open.borrow_mut());
            for severance in open.iter().filter_map(Weak::upgrade) {
                severance.sever();
            }
        }
        route.offline.set(true);
        tokio::time::sleep(outage).await;
        route.current.set((leaving + 1) % route.hops.len());
        route.offline.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn switch_times_fall_on_ticks_apart_by_the_outage_and_stop_before_the_end() {
        let tick = Duration::from_millis(1);
        let outage = Duration::from_secs(2);
        let until = Duration::from_secs(600);
        let draw = |seed| {
            switch_times(
                &mut ChaCha8Rng::seed_from_u64(seed),
                Duration::from_secs(30),
                outage,
                tick,
                until,
            )
        };
        let times = draw(3);
        // About 600 s / (30 s + 2 s) switches.
        assert!((8..40).contains(&times.len()), "{}", times.len());
        for pair in times.windows(2) {
            assert!(pair[1] >= pair[0] + outage, "{pair:?}");
        }
        for at in &times {
            assert_eq!(at.as_nanos() % tick.as_nanos(), 0, "{at:?}");
            assert!(*at < until);
        }
        assert_eq!(times, draw(3), "seeded: the same times again");
        assert_ne!(times, draw(4));
    }
}
