//! A gateway: the first hop of a client's network — a carrier NAT, or the Wi-Fi or cellular network of
//! a phone. It forwards TCP byte for byte to the next hop, and it can forget a connection: after
//! `idle_timeout` without traffic (a NAT mapping expiring), or when the client leaves the network (a
//! switch). Neither end is told when a mapping is forgotten — no FIN, no RST — as on real networks
//! (RFC 5382 asks for 2 h 4 min of idle tolerance; carriers give 30–60 s). What happens when traffic
//! comes again is the NAT's `expired` behaviour, as measured on a Linux NAT (docs/references.md):
//! `drop` swallows it both ways for ever; `reset` resets whichever side wrote; `remap` lets a client
//! write re-create the mapping and resets a server that writes. A client that left the network is
//! never heard from on it again: its mappings always drop.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::{TcpListener, TcpStream};

use crate::profile::NatExpiry;
use crate::recorder::SharedRecorder;

/// One forwarded connection's state.
struct Mapping {
    last_activity: Cell<Instant>,
    forgotten: Cell<bool>,
    /// The client left this network (a switch): nothing it sent could arrive here again.
    left: Cell<bool>,
    /// The server's side was reset: a re-created mapping would lead nowhere.
    server_gone: Cell<bool>,
    /// Wakes the expiry timer when a client write re-creates the mapping.
    remapped: tokio::sync::Notify,
}

/// A forwarding host with NAT-like memory.
pub struct Gateway {
    pub idle_timeout: Option<Duration>,
    pub expired: NatExpiry,
    pub next_hop: (String, u16),
    pub recorder: SharedRecorder,
    mappings: RefCell<BTreeMap<SocketAddr, Rc<Mapping>>>,
    /// The gateway's own address towards the next hop → the client-side address it stands for.
    origins: RefCell<BTreeMap<SocketAddr, SocketAddr>>,
}

/// Which way a pump copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    FromClient,
    FromServer,
}

impl Gateway {
    pub fn new(
        idle_timeout: Option<Duration>,
        expired: NatExpiry,
        next_hop: (String, u16),
        recorder: SharedRecorder,
    ) -> Rc<Self> {
        Rc::new(Self {
            idle_timeout,
            expired,
            next_hop,
            recorder,
            mappings: RefCell::new(BTreeMap::new()),
            origins: RefCell::new(BTreeMap::new()),
        })
    }

    /// The client-side address a connection from this gateway's `local` address stands for.
    pub fn origin_of(&self, local: SocketAddr) -> Option<SocketAddr> {
        self.origins.borrow().get(&local).copied()
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
            mapping.left.set(true);
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
            left: Cell::new(false),
            server_gone: Cell::new(false),
            remapped: tokio::sync::Notify::new(),
        });
        let outbound_local = outbound.local_addr().ok();
        if let Some(local) = outbound_local {
            self.origins.borrow_mut().insert(local, peer);
        }
        self.mappings.borrow_mut().insert(peer, mapping.clone());
        let (client_read, client_write) = inbound.into_split();
        let (server_read, server_write) = outbound.into_split();
        let pumps = futures_util::future::join(
            self.pump(
                client_read,
                server_write,
                &mapping,
                peer,
                Direction::FromClient,
            ),
            self.pump(
                server_read,
                client_write,
                &mapping,
                peer,
                Direction::FromServer,
            ),
        );
        tokio::pin!(pumps);
        let expiry = async {
            let Some(idle) = self.idle_timeout else {
                return std::future::pending().await;
            };
            loop {
                if mapping.left.get() {
                    return;
                }
                if mapping.forgotten.get() {
                    mapping.remapped.notified().await;
                    continue;
                }
                let deadline = mapping.last_activity.get() + idle;
                tokio::time::sleep_until(deadline).await;
                if !mapping.forgotten.get() && mapping.last_activity.get() + idle <= Instant::now()
                {
                    mapping.forgotten.set(true);
                    self.recorder
                        .borrow_mut()
                        .connection_died(peer, "NAT expiry");
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
        if let Some(local) = outbound_local {
            self.origins.borrow_mut().remove(&local);
        }
    }

    /// Copies bytes one way while the mapping is remembered. On a forgotten mapping, traffic is
    /// swallowed (`drop`), or the writer's connection reset (a RST: turmoil sends one when a socket is
    /// dropped with data unread), or — a client write under `remap` — the mapping re-created. An end of
    /// stream is passed on only while remembered: a forgotten connection never closes, it goes quiet.
    async fn pump(
        &self,
        mut from: OwnedReadHalf,
        mut to: OwnedWriteHalf,
        mapping: &Mapping,
        peer: SocketAddr,
        direction: Direction,
    ) {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match from.peek(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if mapping.forgotten.get() {
                let expired = if mapping.left.get() {
                    NatExpiry::Drop
                } else {
                    self.expired
                };
                let reset = match (expired, direction) {
                    (NatExpiry::Drop, _) => false,
                    (NatExpiry::Reset, _) => true,
                    (NatExpiry::Remap, Direction::FromServer) => true,
                    (NatExpiry::Remap, Direction::FromClient) => mapping.server_gone.get(),
                };
                if reset {
                    if direction == Direction::FromServer {
                        mapping.server_gone.set(true);
                    }
                    // Dropping the read half with the peeked bytes unread resets the writer.
                    drop(from);
                    std::future::pending::<()>().await;
                    return;
                }
                if expired == NatExpiry::Remap {
                    // A client write from the same address: the NAT maps it anew and it goes through.
                    mapping.forgotten.set(false);
                    mapping.last_activity.set(Instant::now());
                    self.recorder.borrow_mut().connection_revived(peer);
                    mapping.remapped.notify_one();
                } else {
                    let _ = from.read(&mut buffer).await;
                    continue;
                }
            }
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
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
}
