//! A client's way into the network: which first hop (gateway, proxy or the server itself) its
//! connections go to, whether it has a network at all right now, and the network switches that change
//! both (a phone moving from Wi-Fi to cellular: every connection dies silently, then nothing works for
//! the outage, then the client comes back through another network with another address).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

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
}

impl Route {
    pub fn new(hops: Vec<(String, u16)>, authority: &str) -> Rc<Self> {
        assert!(!hops.is_empty(), "a route needs a first hop");
        Rc::new(Self {
            hops,
            current: Cell::new(0),
            offline: Cell::new(false),
            authority: authority.to_string(),
        })
    }
}

/// Opens simulated TCP connections along a client's current route.
pub struct SimConnector {
    pub route: Rc<Route>,
}

impl Connector for SimConnector {
    fn connect(&self) -> LocalBoxFuture<'static, io::Result<(BoxIo, SocketAddr)>> {
        let offline = self.route.offline.get();
        let (host, port) = self.route.hops[self.route.current.get()].clone();
        Box::pin(async move {
            if offline {
                return Err(io::Error::new(
                    io::ErrorKind::NetworkUnreachable,
                    "no network",
                ));
            }
            let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
            let local = stream.local_addr()?;
            Ok((Box::new(stream) as BoxIo, local))
        })
    }

    fn authority(&self) -> &str {
        &self.route.authority
    }
}

/// Moves one client between its networks until the measured run ends: at exponentially distributed moments
/// (mean `every`) every connection it has dies silently on the network it leaves, it has no network for
/// `outage`, then it continues on the next network.
pub async fn switch_networks(
    client: usize,
    route: Rc<Route>,
    gateways: Rc<Vec<Rc<Gateway>>>,
    recorder: SharedRecorder,
    every: Duration,
    outage: Duration,
    mut rng: ChaCha8Rng,
) {
    loop {
        let gap = -every.as_secs_f64() * (1.0 - rng.gen::<f64>()).ln();
        tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        if recorder.borrow().is_closed() {
            return;
        }
        let leaving = route.current.get();
        let connections = recorder.borrow().connections_of(client);
        for local in connections {
            gateways[leaving].forget(local);
            recorder
                .borrow_mut()
                .connection_died(local, "network switch");
        }
        route.offline.set(true);
        tokio::time::sleep(outage).await;
        route.current.set((leaving + 1) % route.hops.len());
        route.offline.set(false);
    }
}
