//! A gateway: the first hop of a client's network — a carrier NAT, or the Wi-Fi or cellular network of
//! a phone. It forwards TCP byte for byte to the next hop, and it can forget a connection: after
//! `idle_timeout` without traffic (a NAT mapping expiring), or when the client leaves the network (a
//! switch). A forgotten connection is silently dropped both ways — no FIN, no RST — so neither end learns
//! of it except by its own timers, exactly as on real carrier networks (RFC 5382 asks for 2 h 4 min of
//! idle tolerance; carriers give 30–60 s).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::{TcpListener, TcpStream};

use crate::recorder::SharedRecorder;

/// One forwarded connection's state.
struct Mapping {
    last_activity: Cell<Instant>,
    forgotten: Cell<bool>,
}

/// A forwarding host with NAT-like memory.
pub struct Gateway {
    pub idle_timeout: Option<Duration>,
    pub next_hop: (String, u16),
    pub recorder: SharedRecorder,
    mappings: RefCell<BTreeMap<SocketAddr, Rc<Mapping>>>,
}

impl Gateway {
    pub fn new(
        idle_timeout: Option<Duration>,
        next_hop: (String, u16),
        recorder: SharedRecorder,
    ) -> Rc<Self> {
        Rc::new(Self {
            idle_timeout,
            next_hop,
            recorder,
            mappings: RefCell::new(BTreeMap::new()),
        })
    }

    /// Accepts and forwards connections for the rest of the run.
    pub async fn run(self: Rc<Self>, port: u16) -> turmoil::Result {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        loop {
            let (inbound, peer) = listener.accept().await?;
            tokio::task::spawn_local(self.clone().forward(inbound, peer));
        }
    }

    /// Forgets the connection from `peer` (the client's side): from now on it is a black hole.
    pub fn forget(&self, peer: SocketAddr) {
        if let Some(mapping) = self.mappings.borrow().get(&peer) {
            mapping.forgotten.set(true);
        }
    }

    async fn forward(self: Rc<Self>, inbound: TcpStream, peer: SocketAddr) {
        let (host, port) = &self.next_hop;
        let Ok(outbound) = TcpStream::connect((host.as_str(), *port)).await else {
            // Nothing behind us: dropping the client's connection closes it, as a refused connect would.
            return;
        };
        let mapping = Rc::new(Mapping {
            last_activity: Cell::new(Instant::now()),
            forgotten: Cell::new(false),
        });
        self.mappings.borrow_mut().insert(peer, mapping.clone());
        let (client_read, client_write) = inbound.into_split();
        let (server_read, server_write) = outbound.into_split();
        let pumps = futures_util::future::join(
            pump(client_read, server_write, mapping.clone()),
            pump(server_read, client_write, mapping.clone()),
        );
        tokio::pin!(pumps);
        let expiry = async {
            let Some(idle) = self.idle_timeout else {
                return std::future::pending().await;
            };
            loop {
                let deadline = mapping.last_activity.get() + idle;
                tokio::time::sleep_until(deadline).await;
                if mapping.forgotten.get() {
                    return;
                }
                if mapping.last_activity.get() + idle <= Instant::now() {
                    mapping.forgotten.set(true);
                    self.recorder
                        .borrow_mut()
                        .connection_died(peer, "NAT expiry");
                    return;
                }
            }
        };
        tokio::select! {
            // Fixed branch order: tokio's random order is unseeded and would break determinism.
            biased;
            _ = &mut pumps => {}
            () = expiry => {
                pumps.await;
            }
        }
        self.mappings.borrow_mut().remove(&peer);
    }
}

/// Copies bytes one way while the mapping is remembered; once forgotten, swallows them. An end of stream
/// is passed on only while remembered: a forgotten connection never closes, it just goes quiet.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mapping: Rc<Mapping>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if mapping.forgotten.get() {
            continue;
        }
        mapping.last_activity.set(Instant::now());
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    if mapping.forgotten.get() {
        // Dropping `to` would send a FIN the real network never would: keep it open and silent.
        std::future::pending::<()>().await;
    }
    let _ = to.shutdown().await;
}
