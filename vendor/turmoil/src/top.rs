use crate::envelope::{Envelope, Protocol, SlotHint};
use crate::host::Host;
use crate::rt::Rt;
use crate::{config, TRACING_TARGET};

use crate::fasthash::FastIndexSet;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, Exp};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{Error, ErrorKind, Result};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

/// Describes the network topology.
pub(crate) struct Topology {
    config: config::Link,

    /// Specific configuration overrides between specific hosts.
    links: crate::fasthash::FastIndexMap<Pair, Link>,

    /// Per host, the indexes in `links` of its links, in `links`' order
    /// (rtsim patch: each host's run scanned every link of the full mesh for
    /// the ones it ends; links are only ever added, so indexes stay valid).
    links_of: crate::fasthash::FastIndexMap<IpAddr, Vec<usize>>,

    /// We don't use a Rt for async. Right now, we just use it to tick time
    /// forward in the same way we do it elsewhere. We'd like to represent
    /// network state with async in the future.
    rt: Rt<'static>,

    /// The network clock's instant at the start of the simulation: messages
    /// stamped with their sender's simulated time are placed relative to it.
    origin: Instant,

    /// The network clock (rtsim patch): `rt`'s clock plus `lag`. Ticks of
    /// whole milliseconds move it by arithmetic instead of running `rt`, whose
    /// paused clock would move by exactly as much (its timers have millisecond
    /// resolution and it only ever stops on a millisecond); other ticks run
    /// `rt` as before, after catching it up by `lag`.
    now: Instant,
    lag: Duration,

    /// The part of [`Lookahead`] that only changes with the links and their
    /// configuration, for the tick it was computed for (rtsim patch: it was
    /// rebuilt, with a hashed set, twice per step).
    shape: RefCell<Option<(Duration, Rc<Shape>)>>,
}

/// What [`Topology::lookahead`] keeps between steps.
struct Shape {
    lockstep: Rc<FastIndexSet<IpAddr>>,
    min_latency: Option<Duration>,
    /// Indexes in `links` of the links with an endpoint outside `lockstep`.
    outer: Vec<usize>,
}

/// What bounds a lookahead window (rtsim patch; see `Sim::step_within`).
pub(crate) struct Lookahead {
    /// Hosts joined to another by a link of less than a tick: they step
    /// together, one tick at a time.
    pub(crate) lockstep: Rc<FastIndexSet<IpAddr>>,
    /// The smallest latency of a link that has an endpoint not in `lockstep`.
    pub(crate) min_latency: Option<Duration>,
    /// No message in flight on such a link is due before this, measured from
    /// the start of the simulation.
    pub(crate) next_due: Option<Duration>,
}

/// This type is used as the key in the [`Topology::links`] map. See [`new`]
/// which orders the addrs, such that this type uniquely identifies the link
/// between two hosts on the network.
#[derive(Debug, Clone, Hash, Eq, PartialEq)]
struct Pair(IpAddr, IpAddr);

impl Pair {
    fn new(a: IpAddr, b: IpAddr) -> Pair {
        assert_ne!(a, b);

        if a < b {
            Pair(a, b)
        } else {
            Pair(b, a)
        }
    }
}

/// An iterator for the network topology, providing access to all active links
/// in the simulated network.
pub struct LinksIter<'a> {
    iter: indexmap::map::IterMut<'a, Pair, Link>,
}

/// An iterator for the link, providing access to sent messages that have not
/// yet been delivered.
pub struct LinkIter<'a> {
    a: IpAddr,
    b: IpAddr,
    now: Instant,
    iter: std::iter::Flatten<std::collections::vec_deque::IterMut<'a, Option<Sent>>>,
}

impl LinkIter<'_> {
    /// The [`IpAddr`] pair for the link. Always ordered to uniquely identify
    /// the link.
    pub fn pair(&self) -> (IpAddr, IpAddr) {
        (self.a, self.b)
    }

    /// Schedule all messages on the link for delivery the next time the
    /// simulation steps, consuming the iterator.
    pub fn deliver_all(self) {
        for sent in self {
            sent.deliver();
        }
    }
}

/// Provides a reference to a message that is currently inflight on the network
/// from one host to another.
pub struct SentRef<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    now: Instant,
    sent: &'a mut Sent,
}

impl SentRef<'_> {
    /// The (src, dst) [`SocketAddr`] pair for the message.
    pub fn pair(&self) -> (SocketAddr, SocketAddr) {
        (self.src, self.dst)
    }

    /// The message [`Protocol`].
    pub fn protocol(&self) -> &Protocol {
        &self.sent.protocol
    }

    /// Schedule the message for delivery the next time the simulation steps,
    /// consuming the item.
    pub fn deliver(self) {
        self.sent.deliver(self.now);
    }
}

impl<'a> Iterator for LinksIter<'a> {
    type Item = LinkIter<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let (pair, link) = self.iter.next()?;

        // A caller may schedule any of these messages for delivery now
        // (`SentRef::deliver`), so the next due time is no longer known, nor
        // does the index of due times still hold.
        link.next_due = Some(link.now);
        link.due_stale = true;

        Some(LinkIter {
            a: pair.0,
            b: pair.1,
            now: link.now,
            iter: link.sent.iter_mut().flatten(),
        })
    }
}

impl<'a> Iterator for LinkIter<'a> {
    type Item = SentRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let sent = self.iter.next()?;

        Some(SentRef {
            src: sent.src,
            dst: sent.dst,
            now: self.now,
            sent,
        })
    }
}

/// A two-way link between two hosts on the network.
struct Link {
    /// The state of the link from node 'a' to node 'b'.
    /// Of the two nodes attached to a link, 'a' is the
    /// one whose ip address sorts smallest.
    state_a_b: State,
    /// The state of the link from node 'b' to node 'a'.
    /// Of the two nodes attached to a link, 'b' is the
    /// one whose ip address sorts greatest.
    state_b_a: State,

    /// Optional, per-link configuration.
    config: config::Link,

    /// Sent messages that are either scheduled for delivery in the future
    /// or are on hold, in the order they were sent; `None` where a message
    /// has left out of turn (rtsim patch). The first slot holds message
    /// number `first_seq`.
    sent: VecDeque<Option<Sent>>,

    /// The number of the message in `sent`'s first slot.
    first_seq: u64,

    /// When each message in `sent` scheduled for delivery falls due, with its
    /// number, earliest first (rtsim patch): what is due is found without
    /// looking at what is not. Rebuilt from `sent` when `due_stale` says a
    /// status changed behind its back.
    due: BinaryHeap<Reverse<(Instant, u64)>>,

    /// `due` no longer matches the statuses in `sent`.
    due_stale: bool,

    /// Numbers of the messages a scan found due, reused between scans.
    due_now: Vec<u64>,

    /// Messages that are ready to be delivered.
    deliverable: crate::fasthash::FastIndexMap<IpAddr, VecDeque<Envelope>>,

    /// How many messages `deliverable` holds in all (rtsim patch): a host's
    /// run asks each of its links, and most have none.
    undelivered: usize,

    /// No message in `sent` is due before this time (`None`: none is due at
    /// all). A lower bound, exact after each scan: it lets
    /// [`Link::process_deliverables`] skip the scan of `sent`, which used to
    /// run on every send and every tick and made a broadcast to N hosts cost
    /// O(N²).
    next_due: Option<Instant>,

    /// An empty queue that [`Link::deliver_messages`] swaps in (rtsim patch).
    spare_deliverable: VecDeque<Envelope>,

    /// The current network time, moved forward with [`Link::tick`].
    now: Instant,
}

/// States that a link between two nodes can be in.
#[derive(Clone, Copy)]
enum State {
    /// The link is healthy.
    Healthy,

    /// The link was explicitly partitioned.
    ExplicitPartition,

    /// The link was randomly partitioned.
    RandPartition,

    /// Messages are being held indefinitely.
    Hold,
}

impl Topology {
    pub(crate) fn new(config: config::Link) -> Topology {
        let rt = Rt::no_software();
        let origin = rt.now();
        Topology {
            config,
            links: Default::default(),
            links_of: Default::default(),
            origin,
            rt,
            now: origin,
            lag: Duration::ZERO,
            shape: RefCell::new(None),
        }
    }

    /// Register a link between two hosts
    pub(crate) fn register(&mut self, a: IpAddr, b: IpAddr) {
        let pair = Pair::new(a, b);
        let (index, previous) = self.links.insert_full(pair, Link::new(self.now));
        assert!(previous.is_none());
        self.links_of.entry(a).or_default().push(index);
        self.links_of.entry(b).or_default().push(index);
        self.reshape();
    }

    /// The links or their latencies changed: [`Shape`] must be computed anew.
    fn reshape(&mut self) {
        *self.shape.get_mut() = None;
    }

    pub(crate) fn set_max_message_latency(&mut self, value: Duration) {
        self.reshape();
        self.config.latency_mut().max_message_latency = value;
    }

    pub(crate) fn set_link_message_latency(&mut self, a: IpAddr, b: IpAddr, value: Duration) {
        self.reshape();
        let pair = Pair::new(a, b);
        let latency = self
            .links
            .get_mut(&pair)
            .unwrap_or_else(|| panic!("unable to find link between {pair:?}"))
            .latency(self.config.latency());
        latency.min_message_latency = value;
        latency.max_message_latency = value;
    }

    pub(crate) fn set_link_max_message_latency(&mut self, a: IpAddr, b: IpAddr, value: Duration) {
        self.reshape();
        let pair = Pair::new(a, b);
        self.links
            .get_mut(&pair)
            .unwrap_or_else(|| panic!("unable to find link between {pair:?}"))
            .latency(self.config.latency())
            .max_message_latency = value;
    }

    pub(crate) fn set_message_latency_curve(&mut self, value: f64) {
        self.config.latency_mut().latency_distribution = Exp::new(value).unwrap();
    }

    pub(crate) fn set_fail_rate(&mut self, value: f64) {
        self.config.message_loss_mut().fail_rate = value;
    }

    pub(crate) fn set_link_fail_rate(&mut self, a: IpAddr, b: IpAddr, value: f64) {
        let pair = Pair::new(a, b);
        self.links
            .get_mut(&pair)
            .unwrap_or_else(|| panic!("unable to find link between {pair:?}"))
            .message_loss(self.config.message_loss())
            .fail_rate = value;
    }

    // Send a `message` from `src` to `dst`. This method returns immediately,
    // and message delivery happens at a later time (or never, if the link is
    // broken).
    pub(crate) fn enqueue_message(
        &mut self,
        rand: &mut dyn RngCore,
        src: SocketAddr,
        dst: SocketAddr,
        message: Protocol,
        slot: SlotHint,
        sent_at: Option<Duration>,
    ) -> Result<()> {
        let sent_at = sent_at.map(|at| self.origin + at);
        if let Some(link) = self.links.get_mut(&Pair::new(src.ip(), dst.ip())) {
            link.enqueue_message(&self.config, rand, src, dst, message, slot, sent_at)
        } else {
            Err(Error::new(
                ErrorKind::ConnectionRefused,
                "Connection refused",
            ))
        }
    }

    // Move messages from any network links to the `dst` host.
    //
    // `replies_at`, when given, is the simulated time at which `dst` sends
    // the replies that refused messages provoke (rtsim patch: with lookahead,
    // the network clock may be ahead of `dst`).
    pub(crate) fn deliver_messages(
        &mut self,
        rand: &mut dyn RngCore,
        dst: &mut Host,
        replies_at: Option<Duration>,
    ) {
        let replies_at = replies_at.map(|at| self.origin + at);
        let Some(indexes) = self.links_of.get(&dst.addr) else {
            return;
        };
        for &index in indexes {
            let (_, link) = self.links.get_index_mut(index).expect("a registered link");
            link.deliver_messages(&self.config, rand, dst, replies_at);
        }
    }

    pub(crate) fn hold(&mut self, a: IpAddr, b: IpAddr) {
        self.get_link_mut(&Pair::new(a, b)).hold();
    }

    pub(crate) fn release(&mut self, a: IpAddr, b: IpAddr) {
        self.get_link_mut(&Pair::new(a, b)).release();
    }

    pub(crate) fn partition(&mut self, a: IpAddr, b: IpAddr) {
        self.get_link_mut(&Pair::new(a, b)).explicit_partition();
    }

    pub(crate) fn partition_oneway(&mut self, a: IpAddr, b: IpAddr) {
        let link = &mut self.get_link_mut(&Pair::new(a, b));
        link.partition_oneway(a, b);
    }

    pub(crate) fn repair(&mut self, a: IpAddr, b: IpAddr) {
        self.get_link_mut(&Pair::new(a, b)).explicit_repair();
    }

    pub(crate) fn repair_oneway(&mut self, a: IpAddr, b: IpAddr) {
        let link = &mut self.get_link_mut(&Pair::new(a, b));
        link.repair_oneway(a, b);
    }

    pub(crate) fn tick_by(&mut self, duration: Duration) {
        if duration.subsec_nanos() % 1_000_000 == 0 {
            self.lag += duration;
            self.now += duration;
        } else {
            if !self.lag.is_zero() {
                let _ = self.rt.tick(std::mem::take(&mut self.lag));
            }
            let _ = self.rt.tick(duration);
            self.now = self.rt.now();
        }
        for link in self.links.values_mut() {
            link.tick(self.now);
        }
    }

    /// What bounds the next lookahead window: see [`Lookahead`].
    pub(crate) fn lookahead(&self, tick: Duration) -> Lookahead {
        let shape = self.shape(tick);
        let mut next_due: Option<Instant> = None;
        for &index in &shape.outer {
            // Messages already moved to `deliverable` are taken by their host at
            // the start of its next turn (a crashed host's when it is bounced),
            // so only those still in `sent` bound the window.
            if let Some(due) = self.links[index].next_due {
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
            }
        }
        Lookahead {
            lockstep: shape.lockstep.clone(),
            min_latency: shape.min_latency,
            next_due: next_due.map(|due| due.saturating_duration_since(self.origin)),
        }
    }

    /// The lockstep group, the smallest latency out of it and the links that
    /// leave it, computed once for as long as the links do not change.
    fn shape(&self, tick: Duration) -> Rc<Shape> {
        if let Some((at, shape)) = &*self.shape.borrow() {
            if *at == tick {
                return shape.clone();
            }
        }
        let min_latency_of = |link: &Link| {
            link.config
                .latency
                .as_ref()
                .unwrap_or_else(|| self.config.latency())
                .min_message_latency
        };
        let mut lockstep = FastIndexSet::default();
        for (pair, link) in &self.links {
            if min_latency_of(link) < tick {
                lockstep.insert(pair.0);
                lockstep.insert(pair.1);
            }
        }
        let mut min_latency: Option<Duration> = None;
        let mut outer = Vec::new();
        for (index, (pair, link)) in self.links.iter().enumerate() {
            if lockstep.contains(&pair.0) && lockstep.contains(&pair.1) {
                continue;
            }
            let latency = min_latency_of(link);
            min_latency = Some(min_latency.map_or(latency, |m| m.min(latency)));
            outer.push(index);
        }
        let shape = Rc::new(Shape {
            lockstep: Rc::new(lockstep),
            min_latency,
            outer,
        });
        *self.shape.borrow_mut() = Some((tick, shape.clone()));
        shape
    }

    pub(crate) fn iter_mut(&mut self) -> LinksIter<'_> {
        LinksIter {
            iter: self.links.iter_mut(),
        }
    }

    #[inline]
    fn get_link_mut(&mut self, pair: &Pair) -> &mut Link {
        self.links
            .get_mut(pair)
            .unwrap_or_else(|| panic!("unable to find link between {pair:?}"))
    }
}

/// Represents a message sent between two hosts on the network.
struct Sent {
    src: SocketAddr,
    dst: SocketAddr,
    status: DeliveryStatus,
    protocol: Protocol,
    slot: SlotHint,
}

impl Sent {
    fn deliver(&mut self, now: Instant) {
        self.status = DeliveryStatus::DeliverAfter(now);
    }
}

enum DeliveryStatus {
    DeliverAfter(Instant),
    Hold,
}

impl Link {
    fn new(now: Instant) -> Link {
        Link {
            state_a_b: State::Healthy,
            state_b_a: State::Healthy,
            config: config::Link::default(),
            sent: VecDeque::new(),
            first_seq: 0,
            due: BinaryHeap::new(),
            due_stale: false,
            due_now: Vec::new(),
            deliverable: Default::default(),
            undelivered: 0,
            next_due: None,
            spare_deliverable: VecDeque::new(),
            now,
        }
    }

    fn enqueue_message(
        &mut self,
        global_config: &config::Link,
        rand: &mut dyn RngCore,
        src: SocketAddr,
        dst: SocketAddr,
        message: Protocol,
        slot: SlotHint,
        sent_at: Option<Instant>,
    ) -> Result<()> {
        tracing::trace!(target: TRACING_TARGET, ?src, ?dst, protocol = %message, "Send");

        self.rand_partition_or_repair(global_config, rand);
        let result = self.enqueue(global_config, rand, src, dst, message, slot, sent_at);
        self.process_deliverables();
        result
    }

    fn get_state_for_message(&self, src: IpAddr, dst: IpAddr) -> State {
        // Between each pair of ip-addresses there can exist a link.
        // A link between two such pairs can be constructed as
        // Pair::new(x,y) or Pair::new(y,x). These two expressions create
        // the exact same link. We denote one of the ends of the link as 'a',
        // and the other 'b'. 'a' is always the one that compares smaller, i.e,
        // `a < b` holds.
        if src < dst {
            self.state_a_b
        } else {
            self.state_b_a
        }
    }

    // src -> link -> dst
    //        ^-- you are here!
    //
    // Messages may be dropped, sit on the link for a while (due to latency, or
    // because the link has stalled), or be delivered immediately.
    // Link will return an Err(()) if the socket buffer is full.
    fn enqueue(
        &mut self,
        global_config: &config::Link,
        rand: &mut dyn RngCore,
        src: SocketAddr,
        dst: SocketAddr,
        message: Protocol,
        slot: SlotHint,
        sent_at: Option<Instant>,
    ) -> Result<()> {
        let state = self.get_state_for_message(src.ip(), dst.ip());
        let status = match state {
            State::Healthy => {
                let delay = self.delay(global_config.latency(), rand);
                DeliveryStatus::DeliverAfter(sent_at.unwrap_or(self.now) + delay)
            }
            // Only A->B is blocked, so B can send, so we can send if src is B
            State::Hold => {
                tracing::trace!(target: TRACING_TARGET,?src, ?dst, protocol = %message, "Hold");
                DeliveryStatus::Hold
            }
            _ => {
                tracing::trace!(target: TRACING_TARGET,?src, ?dst, protocol = %message, "Drop");
                return Ok(());
            }
        };

        if let DeliveryStatus::DeliverAfter(time) = status {
            self.lower_next_due(time);
            let seq = self.first_seq + self.sent.len() as u64;
            self.due.push(Reverse((time, seq)));
        }
        let sent = Sent {
            src,
            dst,
            status,
            protocol: message,
            slot,
        };

        self.sent.push_back(Some(sent));
        Ok(())
    }

    fn tick(&mut self, now: Instant) {
        self.now = now;
        self.process_deliverables();
    }

    fn lower_next_due(&mut self, time: Instant) {
        self.next_due = Some(self.next_due.map_or(time, |due| due.min(time)));
    }

    // Moves every message due by now, in the order they were sent, from
    // `sent` to `deliverable`. The index of due times finds them (rtsim patch:
    // this was one pass over all of `sent`, moving every message still in
    // flight to a new queue, at every tick in which anything fell due: with
    // 10,000 clients a sixth of a run's instructions), and nothing at all
    // happens while nothing is due.
    fn process_deliverables(&mut self) {
        match self.next_due {
            Some(due) if due <= self.now => {}
            _ => return,
        }
        if self.due_stale {
            self.rebuild_due();
        }
        let now = self.now;
        let mut due_now = std::mem::take(&mut self.due_now);
        while let Some(&Reverse((time, seq))) = self.due.peek() {
            if time > now {
                break;
            }
            self.due.pop();
            due_now.push(seq);
        }
        // In the order they were sent, as the pass over `sent` found them.
        due_now.sort_unstable();
        for seq in due_now.drain(..) {
            let slot = (seq - self.first_seq) as usize;
            let sent = self.sent[slot]
                .take()
                .expect("an indexed message is in flight");
            let envelope = Envelope {
                src: sent.src,
                dst: sent.dst,
                message: sent.protocol,
                slot: sent.slot,
            };
            self.deliverable
                .entry(envelope.dst.ip())
                .or_default()
                .push_back(envelope);
            self.undelivered += 1;
        }
        self.due_now = due_now;
        while let Some(None) = self.sent.front() {
            self.sent.pop_front();
            self.first_seq += 1;
        }
        self.next_due = self.due.peek().map(|&Reverse((time, _))| time);
    }

    /// Indexes the due times of the messages in `sent` anew, after statuses
    /// changed or messages left without it.
    fn rebuild_due(&mut self) {
        let first_seq = self.first_seq;
        let entries: Vec<_> = self
            .sent
            .iter()
            .enumerate()
            .filter_map(|(slot, sent)| match sent {
                Some(Sent {
                    status: DeliveryStatus::DeliverAfter(time),
                    ..
                }) => Some(Reverse((*time, first_seq + slot as u64))),
                _ => None,
            })
            .collect();
        self.due = BinaryHeap::from(entries);
        self.due_stale = false;
    }

    /// Drops every message in flight.
    fn clear_sent(&mut self) {
        self.first_seq += self.sent.len() as u64;
        self.sent.clear();
        self.due.clear();
        self.due_stale = false;
    }

    // FIXME: This implementation does not respect message delivery order. If
    // host A and host B are ordered (by addr), and B sends before A, then this
    // method will deliver A's message before B's.
    fn deliver_messages(
        &mut self,
        global_config: &config::Link,
        rand: &mut dyn RngCore,
        host: &mut Host,
        replies_at: Option<Instant>,
    ) {
        // Taken whole, swapped with a spare queue (rtsim patch: it was
        // collected into a new Vec, and an empty queue inserted for a host
        // that had none, on every call). Messages that fall due meanwhile (a
        // reply's enqueue moves them) go to the spare, as they went to the
        // drained queue before.
        if self.undelivered == 0 {
            return;
        }
        let mut deliverable = match self.deliverable.get_mut(&host.addr) {
            Some(queue) if !queue.is_empty() => {
                std::mem::replace(queue, std::mem::take(&mut self.spare_deliverable))
            }
            _ => return,
        };
        self.undelivered -= deliverable.len();

        for message in deliverable.drain(..) {
            let (src, dst) = (message.src, message.dst);
            if let Err(message) = host.receive_from_network(message) {
                let _ = self.enqueue_message(
                    global_config,
                    rand,
                    dst,
                    src,
                    message,
                    SlotHint::NONE,
                    replies_at,
                );
            }
        }
        self.spare_deliverable = deliverable;
    }

    // Randomly break or repair this link.
    fn rand_partition_or_repair(&mut self, global_config: &config::Link, rand: &mut dyn RngCore) {
        let do_rand = self.rand_partition(global_config.message_loss(), rand);
        match (self.state_a_b, self.state_b_a) {
            (State::Healthy, _) | (_, State::Healthy) if do_rand => {
                self.state_a_b = State::RandPartition;
                self.state_b_a = State::RandPartition;

                self.clear_sent();
            }
            (State::RandPartition, _) | (_, State::RandPartition)
                if self.rand_repair(global_config.message_loss(), rand) =>
            {
                self.release();
            }
            _ => {}
        }
    }

    fn hold(&mut self) {
        self.state_a_b = State::Hold;
        self.state_b_a = State::Hold;

        for sent in self.sent.iter_mut().flatten() {
            sent.status = DeliveryStatus::Hold;
        }
        self.due.clear();
        self.due_stale = false;
        self.next_due = None;
    }

    // This link becomes healthy, and any held messages are scheduled for delivery.
    fn release(&mut self) {
        self.state_a_b = State::Healthy;
        self.state_b_a = State::Healthy;
        let now = self.now;
        let mut released = false;
        for (slot, sent) in self.sent.iter_mut().enumerate() {
            if let Some(
                sent @ Sent {
                    status: DeliveryStatus::Hold,
                    ..
                },
            ) = sent
            {
                sent.deliver(now);
                self.due.push(Reverse((now, self.first_seq + slot as u64)));
                released = true;
            }
        }
        if released {
            self.lower_next_due(now);
        }
    }

    fn explicit_partition(&mut self) {
        self.state_a_b = State::ExplicitPartition;
        self.state_b_a = State::ExplicitPartition;

        self.clear_sent();
    }

    fn partition_oneway(&mut self, from: IpAddr, to: IpAddr) {
        if from < to {
            self.state_a_b = State::ExplicitPartition;
        } else {
            self.state_b_a = State::ExplicitPartition;
        }

        // Emptied in place: the slots keep the numbers of the messages after them.
        for slot in self.sent.iter_mut() {
            if slot.as_ref().is_some_and(|sent| sent.src.ip() == from) {
                *slot = None;
            }
        }
        self.due_stale = true;
    }

    fn repair_oneway(&mut self, from: IpAddr, to: IpAddr) {
        if from < to {
            self.state_a_b = State::Healthy;
        } else {
            self.state_b_a = State::Healthy;
        }
    }

    // Repair the link, without releasing any held messages.
    fn explicit_repair(&mut self) {
        self.state_a_b = State::Healthy;
        self.state_b_a = State::Healthy;
    }

    /// Should the link be randomly partitioned
    fn rand_partition(&self, global: &config::MessageLoss, rand: &mut dyn RngCore) -> bool {
        let config = self.config.message_loss.as_ref().unwrap_or(global);
        let fail_rate = config.fail_rate;
        fail_rate > 0.0 && rand.random_bool(fail_rate)
    }

    fn rand_repair(&self, global: &config::MessageLoss, rand: &mut dyn RngCore) -> bool {
        let config = self.config.message_loss.as_ref().unwrap_or(global);
        let repair_rate = config.repair_rate;
        repair_rate > 0.0 && rand.random_bool(repair_rate)
    }

    fn delay(&self, global: &config::Latency, rand: &mut dyn RngCore) -> Duration {
        let config = self.config.latency.as_ref().unwrap_or(global);

        let mult = config.latency_distribution.sample(rand);
        let range = (config.max_message_latency - config.min_message_latency).as_millis() as f64;
        let delay = config.min_message_latency + Duration::from_millis((range * mult) as _);

        std::cmp::min(delay, config.max_message_latency)
    }

    fn latency(&mut self, global: &config::Latency) -> &mut config::Latency {
        self.config.latency.get_or_insert_with(|| global.clone())
    }

    fn message_loss(&mut self, global: &config::MessageLoss) -> &mut config::MessageLoss {
        self.config
            .message_loss
            .get_or_insert_with(|| global.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Link;

    use super::*;

    #[test]
    #[should_panic(expected = "unable to find link between Pair(10.0.0.1, 192.168.0.1)")]
    fn link_access_gives_useful_panic_message() {
        let mut topo = Topology::new(Link::default());
        topo.hold("10.0.0.1".parse().unwrap(), "192.168.0.1".parse().unwrap());
    }
}
