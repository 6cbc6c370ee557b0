//! Server replicas behind a load balancer (`[server] replicas`, `[scenario.balancer]`): the balancer
//! host, the replicas' own hubs and how events reach them (the backplane), and what each replica
//! carried.
//!
//! The balancer works at the TCP level, as an NLB or HAProxy in `mode tcp` does: it picks a replica
//! for each new client connection by its policy and relays bytes both ways until either side closes,
//! or until the connection has been silent both ways for `idle_timeout` (traffic either way resets
//! the clock, as the proxy's tunnel timeout). A replica that refuses the connection (down) is passed
//! over for the next one, as a health-checked target group does — except a replica a deploy stopped
//! without draining it, while its health check has not failed yet (`health_check`): the balancer
//! still sends it new connections, and the client's is refused.
//!
//! Events are published round the replicas: event `n` is published on replica `(n - 1) % replicas`.
//! With `backplane = "none"` only that replica's history gets it; with `"shared"` every replica's
//! history gets it `backplane_latency` later — the publishing replica too, as a replica subscribed to
//! its own channel hears it, so that every history holds the events in publication order.
//!
//! A scale-out (`[scenario.scale_out]`) adds replicas while running: the balancer knows them from the
//! start and takes them into its rotation when they start ([`Balancer::scale_to`]); their hubs join
//! the backplane then, with no earlier history ([`Backplanes::join`]).
//!
//! This module wires hosts and counts connections; it never decides what a transport does with a
//! missing event (the transports and the recorder measure that).

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use turmoil::net::{TcpListener, TcpStream};

use crate::hub::{Event, Hub};
use crate::metrics::ReplicaMetrics;
use crate::profile::{Backplane, BalancePolicy};
use crate::recorder::{OpenCount, OpenHandle, SharedRecorder};
use crate::scenario::Balancer as BalancerSettings;
use crate::transport::ServerCtx;

/// Host name of the balancer.
pub const BALANCER_HOST: &str = "balancer";
/// Host of the application's publishers (it only schedules events; it carries no traffic).
pub const EVENTS_HOST: &str = "events";

/// Host name of replica `k`.
pub fn replica_host(k: usize) -> String {
    format!("server-{k}")
}

/// What one replica carried. Open connections are counted on the balancer's connections to it: each
/// is one server-side TCP connection for as long as it lives, a WebSocket session's after its upgrade
/// too (which the replica's HTTP server hands on and stops seeing).
#[derive(Default)]
pub struct ReplicaLoad {
    /// The balancer's open connections to this replica.
    pub open: Rc<OpenCount>,
    /// Events published on this replica.
    pub published: Cell<u64>,
    /// Draining or stopped for a deploy: the balancer sends it no new connections.
    pub draining: Cell<bool>,
    /// Stopped without being deregistered, and its health check has not failed yet: the balancer
    /// still sends it new connections, which are refused.
    pub down_unnoticed: Cell<bool>,
    /// Every server context this replica has booted (one per boot): their request counts add up.
    pub contexts: RefCell<Vec<Rc<ServerCtx>>>,
}

impl ReplicaLoad {
    /// A connection was accepted now; the handle counts it closed when dropped (also when the host
    /// crashes and its tasks are dropped).
    pub fn opened(&self, recorder: &SharedRecorder) -> OpenHandle {
        self.open.opened(recorder)
    }

    /// This replica's figures over `[0, end]`, with the open connections at `end`.
    pub fn metrics(&self, replica: usize, end: Duration) -> ReplicaMetrics {
        ReplicaMetrics {
            replica: replica as u32,
            connections: self.open.connections(),
            requests: self
                .contexts
                .borrow()
                .iter()
                .map(|c| c.requests.get())
                .sum(),
            events_published: self.published.get(),
            open_connections_mean: self.open.mean(end),
            open_connections_peak: self.open.peak(),
            open_connections_end: self.open.open(),
        }
    }
}

/// The replicas' hubs and the way events reach them. A scale-out adds hubs while the run goes on
/// ([`Backplanes::join`]); events are published round the replicas running at the time.
pub struct Backplanes {
    pub hubs: RefCell<Vec<Rc<Hub>>>,
    pub loads: Vec<Rc<ReplicaLoad>>,
    pub backplane: Backplane,
    pub latency: Duration,
}

impl Backplanes {
    /// Takes event `event` published on its replica: into that replica's history (`none`), or onto
    /// the bus (`shared`: `queue` delivers it to every history after the latency).
    pub fn publish(
        &self,
        event: Event,
        queue: &tokio::sync::mpsc::UnboundedSender<(Instant, Event)>,
    ) {
        let hubs = self.hubs.borrow();
        let origin = ((event.id.saturating_sub(1)) % hubs.len() as u64) as usize;
        let load = &self.loads[origin];
        load.published.set(load.published.get() + 1);
        match self.backplane {
            Backplane::None => hubs[origin].push(event),
            Backplane::Shared if self.latency.is_zero() => {
                for hub in hubs.iter() {
                    hub.push(event.clone());
                }
            }
            Backplane::Shared => {
                // The receiver lives as long as the events host: a send cannot fail while it runs.
                let _ = queue.send((Instant::now() + self.latency, event));
            }
        }
    }

    /// The bus: delivers queued events, in the order published, to every replica's history.
    pub async fn deliver(
        self: Rc<Self>,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<(Instant, Event)>,
    ) {
        while let Some((due, event)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            for hub in self.hubs.borrow().iter() {
                hub.push(event.clone());
            }
        }
    }

    /// A scale-out: a new replica's hub joins the backplane and hears the events published from now
    /// on. With `replay` (a Redis Streams-like backplane, read from the oldest entry it holds) it
    /// first gets what the other replicas hold, so it serves the same cursors they do. Without (a
    /// Redis pub/sub subscriber: nothing from before) it starts empty after the newest event any
    /// replica holds, so a client resuming there from an older cursor is told it missed events (a
    /// reset) rather than silently given none.
    pub fn join(&self, capacity: usize, replay: bool) -> Rc<Hub> {
        let hubs = self.hubs.borrow();
        let hub = match hubs.first() {
            Some(first) if replay => {
                let hub = Hub::new(capacity);
                for event in first.since(0).events {
                    hub.push(event);
                }
                hub
            }
            _ => Hub::with_base(capacity, hubs.iter().map(|h| h.latest()).max().unwrap_or(0)),
        };
        drop(hubs);
        self.hubs.borrow_mut().push(hub.clone());
        hub
    }
}

/// The balancer host's configuration and state.
pub struct Balancer {
    pub settings: BalancerSettings,
    /// The replicas, by index.
    pub backends: Vec<(String, u16)>,
    recorder: SharedRecorder,
    /// Connections the balancer has open to each replica (least-connections reads it), and to all.
    loads: Vec<Rc<ReplicaLoad>>,
    total: Rc<ReplicaLoad>,
    next: Cell<usize>,
    /// Replicas running and in the target group: the first `active` backends (a scale-out raises it).
    active: Cell<usize>,
}

impl Balancer {
    pub fn new(
        settings: BalancerSettings,
        backends: Vec<(String, u16)>,
        recorder: SharedRecorder,
        loads: Vec<Rc<ReplicaLoad>>,
        total: Rc<ReplicaLoad>,
    ) -> Self {
        let backends_len = backends.len();
        Self {
            settings,
            backends,
            recorder,
            loads,
            total,
            next: Cell::new(0),
            active: Cell::new(backends_len),
        }
    }

    /// A scale-out: the first `n` backends take connections from now on.
    pub fn scale_to(&self, n: usize) {
        self.active.set(n.min(self.backends.len()));
    }

    /// The replicas to try for a connection from `peer`, the policy's choice first, then the rest in
    /// order (a refused connect moves on to the next).
    fn candidates(&self, peer: SocketAddr) -> Vec<usize> {
        let n = self.active.get().max(1);
        let first = match self.settings.policy {
            BalancePolicy::RoundRobin => {
                let k = self.next.get() % n;
                self.next.set(k + 1);
                k
            }
            BalancePolicy::LeastConnections => {
                let start = self.next.get() % n;
                self.next.set(start + 1);
                // Fewest open; among equals the first after the rotating start, so that ties spread.
                (0..n)
                    .map(|i| (start + i) % n)
                    .min_by_key(|&k| self.loads[k].open.open())
                    .unwrap_or(0)
            }
            BalancePolicy::Sticky => (address_hash(peer.ip()) % n as u64) as usize,
        };
        let order = (0..n).map(|i| (first + i) % n);
        // Draining replicas last: only when every other one refuses.
        let (ready, draining): (Vec<usize>, Vec<usize>) =
            order.partition(|&k| !self.loads[k].draining.get());
        ready.into_iter().chain(draining).collect()
    }

    /// Accepts and relays connections for the rest of the run.
    pub async fn run(self: Rc<Self>, port: u16) -> turmoil::Result {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        loop {
            let (inbound, peer) = listener.accept().await?;
            let balancer = self.clone();
            tokio::task::spawn_local(async move {
                for k in balancer.candidates(peer) {
                    let (host, port) = &balancer.backends[k];
                    let Ok(upstream) = TcpStream::connect((host.as_str(), *port)).await else {
                        if balancer.loads[k].down_unnoticed.get() {
                            // Still a healthy target to the balancer: as an NLB forwards the SYN,
                            // the client's connection is refused rather than sent elsewhere.
                            balancer
                                .recorder
                                .borrow_mut()
                                .connection_cut("balancer sent it to a stopped replica");
                            return;
                        }
                        continue;
                    };
                    let guards = (
                        balancer.loads[k].opened(&balancer.recorder),
                        balancer.total.opened(&balancer.recorder),
                    );
                    let timed_out = relay(inbound, upstream, balancer.settings.idle_timeout).await;
                    drop(guards);
                    if timed_out {
                        balancer
                            .recorder
                            .borrow_mut()
                            .connection_cut("balancer idle timeout");
                    }
                    return;
                }
                // No replica took it: dropping the client's connection closes it.
            });
        }
    }
}

/// FNV-1a over the address's bytes: the same client address always picks the same replica.
fn address_hash(ip: IpAddr) -> u64 {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Relays bytes both ways until a side closes or both have been silent for `idle`; true when the
/// idle timeout closed it. Returning drops both connections: each side sees the close.
async fn relay(client: TcpStream, server: TcpStream, idle: Duration) -> bool {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let last_traffic = Cell::new(Instant::now());
    let up = async {
        let mut buffer = vec![0u8; 8192];
        loop {
            match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    last_traffic.set(Instant::now());
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        return false;
                    }
                }
            }
        }
    };
    let down = async {
        let mut buffer = vec![0u8; 8192];
        loop {
            match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    last_traffic.set(Instant::now());
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return false;
                    }
                }
            }
        }
    };
    let silence = async {
        loop {
            let deadline = last_traffic.get() + idle;
            tokio::time::sleep_until(deadline).await;
            if last_traffic.get() + idle <= Instant::now() {
                return true;
            }
        }
    };
    tokio::select! {
        // Fixed branch order: tokio's random order is unseeded and would break determinism.
        biased;
        closed = up => closed,
        closed = down => closed,
        timed_out = silence => timed_out,
    }
}

/// A rolling deploy in progress: replica `k` drains at `at + k × every`, stops `drain` later and is
/// back `down` after that. Driven by the simulation loop between steps.
pub struct Rollout {
    /// Per replica: (drain at, stop at, up at) and how far it got (0 to 3 phases done).
    plan: Vec<([Duration; 3], usize)>,
    /// Without a drain the balancer learns of a stopped replica only from its health check, this
    /// long after the stop (zero: at once, as when it deregisters it first).
    unnoticed_for: Duration,
    /// Over how long a draining replica's connection closes are spread.
    close_spread: Duration,
    loads: Vec<Rc<ReplicaLoad>>,
    hosts: Vec<String>,
}

impl Rollout {
    pub fn new(
        deploy: &crate::scenario::Deploy,
        health_check: Duration,
        loads: Vec<Rc<ReplicaLoad>>,
        hosts: Vec<String>,
    ) -> Self {
        // A drain deregisters the replica first; without one only the health check tells.
        let unnoticed_for = if deploy.drain.is_zero() {
            health_check
        } else {
            Duration::ZERO
        };
        let plan = (0..hosts.len())
            .map(|k| {
                let drain_at = deploy.at + deploy.every * k as u32;
                let stop_at = drain_at + deploy.drain;
                ([drain_at, stop_at, stop_at + deploy.down], 0)
            })
            .collect();
        Self {
            plan,
            unnoticed_for,
            loads,
            hosts,
            close_spread: deploy.close_spread,
        }
    }

    /// Each replica's restart as the recorder watches it (drain, stop, up).
    pub fn restart_plans(&self) -> Vec<crate::recorder::RestartPlan> {
        self.plan
            .iter()
            .enumerate()
            .map(|(k, (times, _))| crate::recorder::RestartPlan {
                replica: Some(k as u32),
                cause: "deploy",
                drain_at: times[0],
                stop_at: times[1],
                up_at: times[2],
            })
            .collect()
    }

    /// True while the deploy holds replica `k` down (stopped, not yet back): a `[scenario.restart]`
    /// must not bring it back early.
    pub fn holds_down(&self, k: usize) -> bool {
        self.plan.get(k).is_some_and(|(_, done)| *done == 2)
    }

    /// Every moment a phase falls due (drain, stop, up, per replica): a lookahead window must end at
    /// each, since [`Rollout::step`] acts between steps.
    pub fn moments(&self) -> impl Iterator<Item = Duration> + '_ {
        let unnoticed_for = self.unnoticed_for;
        self.plan.iter().flat_map(move |(times, _)| {
            let noticed = (!unnoticed_for.is_zero()).then_some(times[1] + unnoticed_for);
            times.iter().copied().chain(noticed)
        })
    }

    /// Takes every phase that is due by now.
    pub fn step(&mut self, sim: &mut turmoil::Sim<'_>, recorder: &SharedRecorder) {
        let now = sim.elapsed();
        // A replica stopped unannounced (phases done: 2) fails its health check `unnoticed_for` after
        // its stop, unless it is back first.
        for (k, (times, done)) in self.plan.iter().enumerate() {
            let load = &self.loads[k];
            if *done == 2 && load.down_unnoticed.get() && times[1] + self.unnoticed_for <= now {
                load.down_unnoticed.set(false);
                load.draining.set(true);
                let host = self.hosts[k].as_str();
                recorder
                    .borrow_mut()
                    .mark_fault_at(now, format!("deploy: {host} fails its health check"));
            }
        }
        for (k, (times, done)) in self.plan.iter_mut().enumerate() {
            while *done < 3 && times[*done] <= now {
                let host = self.hosts[k].as_str();
                // The connections it holds as it drains, and those still open (cut) as it stops.
                if *done < 2 {
                    let open = self.loads[k].open.open();
                    recorder.borrow_mut().restart_open(
                        (Some(k as u32), "deploy"),
                        now,
                        *done == 1,
                        open,
                    );
                }
                match *done {
                    0 => {
                        // Deregistered now, unless the stop comes unannounced.
                        self.loads[k].draining.set(self.unnoticed_for.is_zero());
                        if times[1] > times[0] {
                            // Graceful: streams end, WebSocket sessions close with 1001.
                            if let Some(server) = self.loads[k].contexts.borrow().last() {
                                server.shutdown.trigger_spread(self.close_spread);
                            }
                            recorder
                                .borrow_mut()
                                .mark_fault_at(now, format!("deploy: {host} drains"));
                        }
                    }
                    1 => {
                        self.loads[k]
                            .down_unnoticed
                            .set(!self.unnoticed_for.is_zero());
                        sim.crash(host);
                        recorder
                            .borrow_mut()
                            .mark_fault_at(now, format!("deploy: {host} stops"));
                    }
                    _ => {
                        sim.bounce(host);
                        self.loads[k].draining.set(false);
                        self.loads[k].down_unnoticed.set(false);
                    }
                }
                *done += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_hash_is_stable_and_spreads_addresses() {
        let a: IpAddr = "192.168.0.1".parse().unwrap();
        assert_eq!(address_hash(a), address_hash(a));
        let picks: std::collections::BTreeSet<u64> = (1..=16u8)
            .map(|i| address_hash(IpAddr::from([192, 168, 0, i])) % 3)
            .collect();
        assert_eq!(picks.len(), 3, "16 addresses reach all 3 replicas");
    }
}
