//! The server's event source: the publisher that creates events on the workload's schedule, and the
//! bounded history that clients resume from.
//!
//! The hub knows nothing of HTTP or WebSocket; transports read from it and decide how to frame events.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::alarm::{AlarmClock, Alarms};
use crate::profile::Arrival;
use crate::recorder::SharedRecorder;
use crate::scenario::Workload;

/// One published event: its id and its JSON payload as sent on the wire.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: u64,
    pub payload: Bytes,
}

/// Events the server still holds, and a signal for new ones.
///
/// The signal is hand-made rather than `tokio::sync::watch`: watch spreads its waiters over shards
/// chosen by tokio's unseeded random generator, so the order in which subscribers wake — and with it
/// every simulation with faults — would change from run to run. Here subscribers wake in the order
/// they subscribed.
pub struct Hub {
    history: RefCell<VecDeque<Event>>,
    capacity: usize,
    latest: Cell<u64>,
    /// Subscribers waiting for the next event, as (subscriber id, waker) in the order they registered;
    /// woken in id order. A list rather than a map: at every event each of thousands of subscribers
    /// registers again, and appending is cheaper than inserting into a tree.
    waiting: RefCell<Vec<(u64, Option<Waker>)>>,
    /// Counts publications: a subscription's place in `waiting` is good only in the round it was made.
    round: Cell<u64>,
    /// Subscribers held until a deadline (long polls) in this round, as (deadline, place in
    /// `waiting`), earliest first; a publication wakes them all and empties it. One timer for all
    /// of them ([`AlarmClock`]) instead of one per request: see [`Subscription::poll_held`].
    holds: RefCell<VecDeque<(Instant, usize)>>,
    hold_clock: AlarmClock,
    next_subscriber: Cell<u64>,
    /// The id before this hub's first event: 0 in simulations, an epoch-based base in `rtsim serve`
    /// (so that ids never repeat across restarts). Cursors at or below it name events this hub never
    /// held.
    base: u64,
    /// Upstream message ids (client, seq) already received: a resent message is dropped, not counted
    /// twice. Kept with the history, so a restarted server still knows them.
    upstream_seen: RefCell<std::collections::BTreeSet<(u64, u64)>>,
}

/// A subscriber's view of the hub: wakes when an event newer than the last one it saw is published.
pub struct Subscription {
    hub: Rc<Hub>,
    id: u64,
    seen: u64,
    /// (round, index in `Hub::waiting`) of this subscription's registration.
    slot: Option<(u64, usize)>,
    /// The round in which this subscription's hold was filed ([`Subscription::poll_held`]).
    held: Option<u64>,
}

impl Subscription {
    /// Waits until an event newer than the last one seen has been published.
    pub async fn changed(&mut self) {
        poll_fn(|cx| self.poll_changed(cx)).await
    }

    /// Ready once an event newer than the last one seen has been published; otherwise registers the
    /// task to be woken by the next one.
    pub fn poll_changed(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let latest = self.hub.latest();
        if latest != self.seen {
            self.seen = latest;
            Poll::Ready(())
        } else {
            self.register(cx);
            Poll::Pending
        }
    }

    /// Registers the task in `cx` to be woken by the next event: once per round in `waiting`, later
    /// polls only renewing a waker that changed. Returns the subscription's place there.
    fn register(&mut self, cx: &mut std::task::Context<'_>) -> usize {
        let round = self.hub.round.get();
        let mut waiting = self.hub.waiting.borrow_mut();
        match self.slot {
            Some((registered, index)) if registered == round => {
                let waker = &mut waiting[index].1;
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                index
            }
            _ => {
                let index = waiting.len();
                self.slot = Some((round, index));
                waiting.push((self.id, Some(cx.waker().clone())));
                index
            }
        }
    }

    /// Ready once `until` has come, for a subscriber that holds a request open until then (a long
    /// poll); until then the hub wakes it at `until` (and, as [`Subscription::poll_changed`] does, at
    /// the next event).
    ///
    /// Why not a tokio timer per held request: at 10,000 long-polling clients each request made and
    /// cancelled one, and that cost 4–6 % of the run (side by side, against no hold timer at all):
    /// the wheel's entries are linked to their neighbours, out of cache by the time the request
    /// ends. Here a hold is a (deadline, place) pair appended to the hub's list for the round, which
    /// nobody touches again unless the hold runs out before the next event.
    pub fn poll_held(&mut self, cx: &mut std::task::Context<'_>, until: Instant) -> Poll<()> {
        if Instant::now() >= until {
            return Poll::Ready(());
        }
        let round = self.hub.round.get();
        // Registered in this round already (by `poll_changed`, polled first): nothing to renew.
        let index = match self.slot {
            Some((registered, index)) if registered == round => index,
            _ => self.register(cx),
        };
        if self.held != Some(round) {
            self.held = Some(round);
            self.hub.hold(until, index);
        }
        Poll::Pending
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some((registered, index)) = self.slot {
            if registered == self.hub.round.get() {
                self.hub.waiting.borrow_mut()[index].1 = None;
            }
        }
    }
}

impl Alarms for Hub {
    fn clock(&self) -> &AlarmClock {
        &self.hold_clock
    }

    /// Wakes the subscribers whose holds ran out, in the order the holds end.
    fn ring_due(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut holds = self.holds.borrow_mut();
            let mut waiting = self.waiting.borrow_mut();
            while let Some(&(until, index)) = holds.front() {
                if until > now {
                    break;
                }
                holds.pop_front();
                due.extend(waiting[index].1.take());
            }
            holds.front().map(|&(until, _)| until)
        };
        for waker in due {
            waker.wake();
        }
        next
    }
}

/// Whether the server can resume a client from its cursor exactly, and where it resumes it if not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Every event after the cursor is still held (or none has been published yet).
    Exact,
    /// Events after the cursor have left the history (or were published before this server
    /// started): the client resumes after `resumes_after`, missing the events in between.
    Gap { resumes_after: u64 },
    /// The cursor is ahead of the newest event (a cursor from another server, or made up): the
    /// client resumes after the newest event, `resumes_after`.
    Ahead { resumes_after: u64 },
}

impl Resume {
    /// The cursor the server actually serves from.
    pub fn cursor(self, requested: u64) -> u64 {
        match self {
            Resume::Exact => requested,
            Resume::Gap { resumes_after } | Resume::Ahead { resumes_after } => resumes_after,
        }
    }

    /// `gap` or `ahead`; `None` when the resume is exact.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Resume::Exact => None,
            Resume::Gap { .. } => Some("gap"),
            Resume::Ahead { .. } => Some("ahead"),
        }
    }
}

/// What a client asking for events after a cursor gets.
#[derive(Debug)]
pub struct Backlog {
    pub events: Vec<Event>,
    /// Events after the cursor had already left the history: they cannot be replayed.
    pub gap: bool,
}

impl Hub {
    pub fn new(capacity: usize) -> Rc<Self> {
        Self::with_base(capacity, 0)
    }

    /// A hub whose first event will be `base + 1`.
    pub fn with_base(capacity: usize, base: u64) -> Rc<Self> {
        Rc::new(Self {
            history: RefCell::new(VecDeque::new()),
            capacity,
            latest: Cell::new(base),
            waiting: RefCell::new(Vec::new()),
            round: Cell::new(0),
            holds: RefCell::new(VecDeque::new()),
            hold_clock: AlarmClock::default(),
            next_subscriber: Cell::new(0),
            base,
            upstream_seen: RefCell::new(std::collections::BTreeSet::new()),
        })
    }

    /// The id before this hub's first event.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Takes note of upstream message (client, seq); false when it was received before (a resend).
    pub fn accept_upstream(&self, client: u64, seq: u64) -> bool {
        self.upstream_seen.borrow_mut().insert((client, seq))
    }

    /// The newest event id (the base before the first event).
    pub fn latest(&self) -> u64 {
        self.latest.get()
    }

    /// A subscription that wakes whenever an event is published from now on.
    pub fn subscribe(self: &Rc<Self>) -> Subscription {
        let id = self.next_subscriber.get();
        self.next_subscriber.set(id + 1);
        Subscription {
            hub: self.clone(),
            id,
            seen: self.latest(),
            slot: None,
            held: None,
        }
    }

    /// Files a hold: the subscriber at `index` in `waiting` is woken at `until` unless an event
    /// comes first.
    fn hold(self: &Rc<Self>, until: Instant, index: usize) {
        {
            let mut holds = self.holds.borrow_mut();
            // Holds of one length begin in time order, so they end in it and appending keeps the
            // list sorted; a shorter one is put in its place.
            if holds.back().is_some_and(|&(last, _)| last > until) {
                let at = holds.partition_point(|&(deadline, _)| deadline <= until);
                holds.insert(at, (until, index));
            } else {
                holds.push_back((until, index));
            }
        }
        self.hold_clock.ring_by(until, self);
    }

    /// Adds an event, forgetting the oldest beyond capacity.
    pub fn push(&self, event: Event) {
        let id = event.id;
        {
            let mut history = self.history.borrow_mut();
            history.push_back(event);
            while history.len() > self.capacity {
                history.pop_front();
            }
        }
        self.latest.set(id);
        self.round.set(self.round.get() + 1);
        // Every subscriber is woken below, the held ones included: their holds are over.
        self.holds.borrow_mut().clear();
        let mut waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        // Subscribers mostly register in id order already, which this sort detects in one pass.
        waiting.sort_unstable_by_key(|(subscriber, _)| *subscriber);
        for waker in waiting.drain(..).filter_map(|(_, waker)| waker) {
            waker.wake();
        }
        // Keep the allocation for the next round, unless a waker registered someone meanwhile.
        let mut next_round = self.waiting.borrow_mut();
        if next_round.is_empty() {
            *next_round = waiting;
        }
    }

    /// The ids of the first and last held events after `cursor`, if any (no copying).
    pub fn span_after(&self, cursor: u64) -> Option<(u64, u64)> {
        let history = self.history.borrow();
        let oldest = history.front()?.id;
        let newest = history.back()?.id;
        // A cursor at u64::MAX has nothing after it (and `cursor + 1` would wrap to the oldest).
        let first = cursor.checked_add(1)?.max(oldest);
        (first <= newest).then_some((first, newest))
    }

    /// Whether a client at `cursor` can be resumed exactly. Cursor 0 means "everything this server
    /// has": it is a gap only if this server has forgotten some of its own events.
    pub fn resume(&self, cursor: u64) -> Resume {
        let latest = self.latest();
        if cursor > latest {
            return Resume::Ahead {
                resumes_after: latest,
            };
        }
        let history = self.history.borrow();
        // The oldest event a client could still be given: the oldest held, or the next one.
        let oldest = history
            .front()
            .map_or_else(|| latest.saturating_add(1), |e| e.id);
        let forgotten_own = oldest > self.base.saturating_add(1);
        let missing = cursor.saturating_add(1) < oldest;
        if missing && (cursor != 0 || forgotten_own) {
            Resume::Gap {
                resumes_after: oldest - 1,
            }
        } else {
            Resume::Exact
        }
    }

    /// Events with an id greater than `cursor`, oldest first.
    pub fn since(&self, cursor: u64) -> Backlog {
        let mut events = Vec::new();
        let gap = self.since_into(cursor, &mut events);
        Backlog { events, gap }
    }

    /// [`Hub::since`] into a vector the caller keeps (cleared first), so that a session sending
    /// every event allocates none; returns the backlog's `gap`.
    pub fn since_into(&self, cursor: u64, events: &mut Vec<Event>) -> bool {
        events.clear();
        let history = self.history.borrow();
        let Some(oldest) = history.front().map(|e| e.id) else {
            return false;
        };
        let gap = cursor.saturating_add(1) < oldest && cursor < self.latest();
        // Ids rise but need not be consecutive: a replica without a backplane holds only its own.
        let skip = history.partition_point(|e| e.id <= cursor);
        events.extend(history.iter().skip(skip).cloned());
        gap
    }
}

/// The JSON payload of event `id`, padded with filler to `bytes` (never shorter than its fields).
pub fn event_payload(id: u64, published: Duration, bytes: usize) -> Bytes {
    let head = format!(
        "{{\"id\":{id},\"published_us\":{},\"data\":\"",
        published.as_micros()
    );
    let filler = bytes.saturating_sub(head.len() + 2);
    let mut text = String::with_capacity(head.len() + filler + 2);
    text.push_str(&head);
    text.extend(std::iter::repeat_n('x', filler));
    text.push_str("\"}");
    Bytes::from(text)
}

/// The gap before the next event.
pub fn next_gap(workload: &Workload, rng: &mut ChaCha8Rng) -> Duration {
    let mean = 1.0 / workload.events_per_second;
    let seconds = match workload.arrival {
        Arrival::Uniform => mean,
        // Inverse transform of the exponential distribution; 1 - u is in (0, 1].
        Arrival::Poisson => -mean * (1.0 - rng.gen::<f64>()).ln(),
    };
    Duration::from_secs_f64(seconds)
}

/// Publishes events from `start` until the recorder closes the run, on the workload's schedule.
pub async fn publish(
    hub: Rc<Hub>,
    recorder: SharedRecorder,
    workload: Rc<Workload>,
    rng: ChaCha8Rng,
    start: Duration,
) {
    let base = hub.base();
    publish_with(recorder, workload, rng, start, base, move |event| {
        hub.push(event)
    })
    .await
}

/// The publisher's schedule and numbering, handing each event to `deliver` (several replicas'
/// hubs, or a backplane, rather than one hub). Ids start after `base`.
pub async fn publish_with(
    recorder: SharedRecorder,
    workload: Rc<Workload>,
    mut rng: ChaCha8Rng,
    start: Duration,
    base: u64,
    mut deliver: impl FnMut(Event),
) {
    tokio::time::sleep(start).await;
    loop {
        tokio::time::sleep(next_gap(&workload, &mut rng)).await;
        let (id, now) = {
            let mut recorder = recorder.borrow_mut();
            if recorder.is_closed() {
                return;
            }
            // The recorder numbers events from 1; the hub's ids start after its base.
            let id = base.saturating_add(recorder.published());
            (id, recorder.now())
        };
        deliver(Event {
            id,
            payload: event_payload(id, now, workload.event_bytes),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn event(id: u64) -> Event {
        Event {
            id,
            payload: Bytes::from_static(b"{}"),
        }
    }

    /// Long polls held on the hub: each ends at its own deadline unless an event comes first, held
    /// ones of many subscribers end in deadline order, and an event ends every hold of its round.
    #[test]
    fn holds_end_at_their_deadline_or_at_the_next_event() {
        crate::test_support::on_a_paused_host(async {
            let hub = Hub::new(10);
            let start = tokio::time::Instant::now();
            // A poll begun at `begin` ms, held for `hold` ms: (event or not, when it ended in ms).
            let held_poll = |begin: u64, hold: u64| {
                let hub = hub.clone();
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(Duration::from_millis(begin)).await;
                    let mut updates = hub.subscribe();
                    let until = tokio::time::Instant::now() + Duration::from_millis(hold);
                    let event = poll_fn(|cx| {
                        if updates.poll_changed(cx).is_ready() {
                            return Poll::Ready(true);
                        }
                        updates.poll_held(cx, until).map(|()| false)
                    })
                    .await;
                    (event, (tokio::time::Instant::now() - start).as_millis())
                })
            };
            let polls = [
                held_poll(0, 1_000),
                held_poll(100, 1_000),
                // A shorter hold begun later ends first.
                held_poll(200, 300),
                // Held past the event at 2,000 ms: ended by it.
                held_poll(1_500, 1_000),
                held_poll(1_900, 1_000),
                // Begun after the event: held to its end.
                held_poll(2_100, 500),
            ];
            tokio::time::sleep(Duration::from_millis(2_000)).await;
            hub.push(event(1));
            let mut outcomes = Vec::new();
            for poll in polls {
                outcomes.push(poll.await.unwrap());
            }
            assert_eq!(
                outcomes,
                vec![
                    (false, 1_000),
                    (false, 1_100),
                    (false, 500),
                    (true, 2_000),
                    (true, 2_000),
                    (false, 2_600),
                ]
            );
        });
    }

    #[test]
    fn history_is_bounded_and_reports_gaps() {
        let hub = Hub::new(3);
        for id in 1..=5 {
            hub.push(event(id));
        }
        assert_eq!(hub.latest(), 5);
        let ids = |b: Backlog| b.events.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(hub.since(3)), vec![4, 5]);
        assert!(!hub.since(2).gap, "event 3 is still held");
        let backlog = hub.since(1);
        assert!(backlog.gap, "event 2 has been forgotten");
        assert_eq!(ids(backlog), vec![3, 4, 5]);
        assert!(hub.since(5).events.is_empty());
        assert!(!hub.since(5).gap);
        assert_eq!(
            hub.span_after(1),
            Some((3, 5)),
            "from the oldest still held"
        );
        assert_eq!(hub.span_after(3), Some((4, 5)));
        assert_eq!(hub.span_after(5), None);
    }

    /// Property test over arbitrary u64 cursors (a seeded generator: the same cases every run): for
    /// hubs with any base, capacity and number of events, `span_after`, `since` and `resume` agree
    /// with a model written the obvious way, and never panic or wrap (debug builds check overflow).
    #[test]
    fn cursor_arithmetic_holds_for_arbitrary_u64_cursors() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for case in 0..400 {
            let base = match case % 4 {
                0 => 0,
                1 => rng.gen_range(0..1u64 << 60),
                2 => u64::MAX - rng.gen_range(0..64),
                _ => rng.gen(),
            };
            let capacity = rng.gen_range(1..12);
            let room = u64::MAX - base;
            let published = rng.gen_range(0..30u64).min(room);
            let hub = Hub::with_base(capacity, base);
            for n in 1..=published {
                hub.push(event(base + n));
            }
            let latest = base + published;
            let held: Vec<u64> = (1..=published)
                .map(|n| base + n)
                .skip(published.saturating_sub(capacity as u64) as usize)
                .collect();
            let near = |x: u64, rng: &mut ChaCha8Rng| {
                let d = rng.gen_range(0..4);
                if rng.gen() {
                    x.saturating_add(d)
                } else {
                    x.saturating_sub(d)
                }
            };
            for _ in 0..60 {
                let cursor = match rng.gen_range(0..6) {
                    0 => rng.gen(),
                    1 => near(u64::MAX, &mut rng),
                    2 => near(0, &mut rng),
                    3 => near(base, &mut rng),
                    4 => near(latest, &mut rng),
                    _ => near(held.first().copied().unwrap_or(latest), &mut rng),
                };
                let after: Vec<u64> = held.iter().copied().filter(|&id| id > cursor).collect();
                let got: Vec<u64> = hub.since(cursor).events.iter().map(|e| e.id).collect();
                assert_eq!(got, after, "since({cursor}) base {base} latest {latest}");
                let span = after.first().map(|&first| (first, *after.last().unwrap()));
                assert_eq!(hub.span_after(cursor), span, "span_after({cursor})");
                let oldest = held.first().copied().unwrap_or(latest.saturating_add(1));
                let expected = if cursor > latest {
                    Resume::Ahead {
                        resumes_after: latest,
                    }
                } else if cursor.saturating_add(1) < oldest
                    && (cursor != 0 || oldest > base.saturating_add(1))
                {
                    Resume::Gap {
                        resumes_after: oldest - 1,
                    }
                } else {
                    Resume::Exact
                };
                let resume = hub.resume(cursor);
                assert_eq!(
                    resume, expected,
                    "resume({cursor}) base {base} held {held:?}"
                );
                // Served from where the resume says, a client gets exactly the held events after it.
                let from = resume.cursor(cursor);
                assert!(from <= latest);
                let served: Vec<u64> = hub.since(from).events.iter().map(|e| e.id).collect();
                if resume == Resume::Exact {
                    assert_eq!(served, after);
                } else {
                    assert!(served.iter().all(|id| held.contains(id)));
                    assert_eq!(
                        served.first().copied(),
                        held.iter().copied().find(|&id| id > from)
                    );
                }
            }
        }
    }

    #[test]
    fn a_replica_without_a_backplane_serves_its_own_non_consecutive_ids() {
        // Replica 1 of 3: events 2, 5, 8, 11 were published on it.
        let hub = Hub::new(3);
        for id in [2, 5, 8, 11] {
            hub.push(event(id));
        }
        let ids = |b: Backlog| b.events.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(hub.since(5)), vec![8, 11]);
        assert_eq!(
            ids(hub.since(6)),
            vec![8, 11],
            "a cursor from another replica"
        );
        assert_eq!(ids(hub.since(0)), vec![5, 8, 11]);
        assert!(hub.since(11).events.is_empty());
        assert_eq!(hub.resume(12), Resume::Ahead { resumes_after: 11 });
    }

    #[test]
    fn a_cursor_at_u64_max_gets_nothing_and_poisons_nothing() {
        let hub = Hub::new(4);
        for id in 1..=3 {
            hub.push(event(id));
        }
        assert_eq!(hub.span_after(u64::MAX), None);
        assert!(hub.since(u64::MAX).events.is_empty());
        assert_eq!(hub.resume(u64::MAX), Resume::Ahead { resumes_after: 3 });
        assert_eq!(hub.since(0).events.len(), 3, "the backlog is still whole");
        // Cursor 0 on a fresh epoch-based hub is "everything this server has", not a gap; a cursor
        // from an earlier run (below the base) is one.
        let hub = Hub::with_base(4, 1_000);
        hub.push(event(1_001));
        assert_eq!(hub.resume(0), Resume::Exact);
        assert_eq!(
            hub.resume(52),
            Resume::Gap {
                resumes_after: 1_000
            }
        );
        assert_eq!(hub.resume(1_000), Resume::Exact);
    }

    /// A waker that records which subscriber it woke.
    struct Named(u64, std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

    impl std::task::Wake for Named {
        fn wake(self: std::sync::Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn subscribers_wake_once_per_registration_in_subscription_order() {
        let hub = Hub::new(8);
        let woken = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut subscriptions: Vec<Subscription> = (0..3).map(|_| hub.subscribe()).collect();
        let poll = |subscription: &mut Subscription, name: u64| {
            let waker = Waker::from(std::sync::Arc::new(Named(name, woken.clone())));
            subscription.poll_changed(&mut std::task::Context::from_waker(&waker))
        };
        // Register out of order, one twice (its newer waker replaces the older one).
        assert!(poll(&mut subscriptions[2], 2).is_pending());
        assert!(poll(&mut subscriptions[0], 99).is_pending());
        assert!(poll(&mut subscriptions[0], 0).is_pending());
        assert!(poll(&mut subscriptions[1], 1).is_pending());
        drop(subscriptions.remove(1));
        hub.push(event(1));
        assert_eq!(*woken.lock().unwrap(), [0, 2], "dropped ones are not woken");
        assert!(poll(&mut subscriptions[0], 0).is_ready());
        assert!(poll(&mut subscriptions[0], 0).is_pending());
        // A subscription dropped after its round ended must not clear anyone else's registration.
        drop(subscriptions.remove(1));
        hub.push(event(2));
        assert_eq!(
            *woken.lock().unwrap(),
            [0, 2, 0],
            "only re-registered ones wake"
        );
    }

    #[test]
    fn payload_has_the_requested_size_and_parses() {
        let payload = event_payload(42, Duration::from_millis(1500), 200);
        assert_eq!(payload.len(), 200);
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value["id"], 42);
        assert_eq!(value["published_us"], 1_500_000);
    }

    #[test]
    fn poisson_gaps_average_to_the_rate() {
        let workload = Workload {
            events_per_second: 4.0,
            event_bytes: 100,
            arrival: Arrival::Poisson,
            upstream_per_minute: 0.0,
            upstream_bytes: 100,
            client_ramp: std::time::Duration::ZERO,
            upstream_acks: false,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let total: f64 = (0..n)
            .map(|_| next_gap(&workload, &mut rng).as_secs_f64())
            .sum();
        assert!(
            (total / n as f64 - 0.25).abs() < 0.01,
            "mean gap {}",
            total / n as f64
        );
        let uniform = Workload {
            arrival: Arrival::Uniform,
            ..workload
        };
        assert_eq!(next_gap(&uniform, &mut rng), Duration::from_millis(250));
    }
}
