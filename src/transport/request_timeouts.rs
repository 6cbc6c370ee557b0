//! The request timeouts of one host's clients under a single timer: [`RequestTimeouts`] hands out
//! [`TimeLimit`]s, and a [`TimeLimit`] runs an exchange or gives up on it at `patience` after it
//! began, at the same instant `tokio::time::timeout` would.
//!
//! Why not a tokio timer per request: at 10,000 long-polling clients, the timer each request made
//! and cancelled cost about 5 % of the run (perf: `clear_entry`, the `Timeout`'s drop,
//! re-registering). The cost is not the wheel's arithmetic but its entries: linked to their
//! neighbours, out of cache by the time a request ends, touched to unlink one. A queue of deadlines
//! with an entry per request, marked when its request ends, was tried and was no faster: that entry
//! is as cold by then.
//!
//! So a request touches nothing outside its own limit while a wake-up already filed comes no later
//! than its deadline. A [`TimeLimit`] files an *alarm* (an instant and its task's waker) only when it
//! has none pending early enough; an alarm that comes due wakes its task, which looks at its own
//! deadline and files a new alarm if it still waits. A client whose requests end in time files
//! about one alarm per patience rather than one timer per request, and is woken once for it (a
//! wake-up that finds nothing to do).
//!
//! What differs from tokio's timers: requests that time out in the same instant are woken in the
//! order of their alarms (deadline, then filing), by the timer task, rather than in the order of
//! tokio's wheel. The instants are the same; the order in which those requests then act on the
//! network in that instant is not, and a fault profile in which many requests time out at once can
//! give results a few milliseconds apart from a build with tokio's timers (README, "Performance").
//!
//! Only the timing lives here: what a request is and what a timeout means is the caller's.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::alarm::{AlarmClock, Alarms};

/// The alarms of the clients on one host (one tokio runtime: the timer is that runtime's). Shared by
/// the host's clients through an `Rc`; one timer task rings them ([`AlarmClock`]).
#[derive(Default)]
pub struct RequestTimeouts {
    /// Alarms not yet rung, earliest first (then in the order filed: deterministic).
    alarms: RefCell<BinaryHeap<Reverse<Alarm>>>,
    filed: Cell<u64>,
    clock: AlarmClock,
    /// Wakers of alarms that came due, collected while the heap is borrowed and woken after.
    due: RefCell<Vec<Waker>>,
}

struct Alarm {
    at: Instant,
    order: u64,
    waker: Waker,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

impl RequestTimeouts {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// A limit of `patience` for the requests of one task on this host (a client's request loop).
    pub fn limit(self: &Rc<Self>, patience: Duration) -> TimeLimit {
        TimeLimit {
            timeouts: self.clone(),
            patience,
            alarm: Cell::new(None),
            alarm_wakes: RefCell::new(None),
        }
    }

    /// Files an alarm: `waker` is woken at `at`.
    fn file(self: &Rc<Self>, at: Instant, waker: Waker) {
        let order = self.filed.get();
        self.filed.set(order + 1);
        self.alarms
            .borrow_mut()
            .push(Reverse(Alarm { at, order, waker }));
        self.clock.ring_by(at, self);
    }
}

impl Alarms for RequestTimeouts {
    fn clock(&self) -> &AlarmClock {
        &self.clock
    }

    /// Wakes the tasks whose alarms are due, earliest first.
    fn ring_due(&self, now: Instant) -> Option<Instant> {
        let mut due = std::mem::take(&mut *self.due.borrow_mut());
        let next = {
            let mut alarms = self.alarms.borrow_mut();
            while alarms.peek().is_some_and(|Reverse(alarm)| alarm.at <= now) {
                let Reverse(alarm) = alarms.pop().expect("peeked");
                due.push(alarm.waker);
            }
            alarms.peek().map(|Reverse(alarm)| alarm.at)
        };
        for waker in due.drain(..) {
            waker.wake();
        }
        // Keep the vector's allocation for the next round.
        *self.due.borrow_mut() = due;
        next
    }
}

/// The requests of one task on one host, each limited to `patience`: [`TimeLimit::run`] gives up on
/// an exchange that has not ended `patience` after it began.
pub struct TimeLimit {
    timeouts: Rc<RequestTimeouts>,
    patience: Duration,
    /// When the alarm this limit filed last rings, and the task it wakes: while that is still to
    /// come and no later than a request's deadline, the request needs no alarm of its own.
    alarm: Cell<Option<Instant>>,
    alarm_wakes: RefCell<Option<Waker>>,
}

/// The exchange did not end within its patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl TimeLimit {
    /// Runs `exchange` until it ends or `patience` has passed since this call, whichever comes
    /// first; an exchange that is ready at the deadline wins, as with `tokio::time::timeout`.
    pub async fn run<T>(&self, exchange: impl Future<Output = T>) -> Result<T, TimedOut> {
        let deadline = Instant::now() + self.patience;
        let mut exchange = pin!(exchange);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(value) = exchange.as_mut().poll(cx) {
                return Poll::Ready(Ok(value));
            }
            let now = Instant::now();
            if now >= deadline {
                return Poll::Ready(Err(TimedOut));
            }
            self.wake_by(now, deadline, cx);
            Poll::Pending
        })
        .await
    }

    /// Makes sure the task in `cx` is woken at `deadline` or before.
    fn wake_by(&self, now: Instant, deadline: Instant, cx: &mut Context<'_>) {
        // An alarm ringing at `now` may have rung already: only a later one counts.
        let early_enough = self
            .alarm
            .get()
            .is_some_and(|at| now < at && at <= deadline);
        if early_enough
            && self
                .alarm_wakes
                .borrow()
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return;
        }
        self.timeouts.file(deadline, cx.waker().clone());
        self.alarm.set(Some(deadline));
        *self.alarm_wakes.borrow_mut() = Some(cx.waker().clone());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{RequestTimeouts, TimedOut};
    use crate::test_support::on_a_paused_host;

    /// Requests one after another on one limit, answered after the given times: each ends (in time
    /// or timed out) at the same instant as under `tokio::time::timeout`, including the answer that
    /// comes exactly at the deadline (the answer wins) and requests whose alarm was filed by an
    /// earlier one.
    #[test]
    fn a_limit_ends_requests_when_tokio_timeout_would() {
        const PATIENCE: Duration = Duration::from_secs(5);
        let answers_after_ms = [
            100, 2_000, 4_999, 5_000, 5_001, 300, 7_000, 1, 4_000, 4_000, 9_000,
        ];
        let answer = |ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        };
        let mut with_limit = Vec::new();
        on_a_paused_host(async {
            let limit = RequestTimeouts::new().limit(PATIENCE);
            let start = Instant::now();
            for ms in answers_after_ms {
                let outcome = limit.run(answer(ms)).await;
                with_limit.push((outcome.ok(), (Instant::now() - start).as_millis()));
            }
        });
        let mut with_tokio = Vec::new();
        on_a_paused_host(async {
            let start = Instant::now();
            for ms in answers_after_ms {
                let outcome = tokio::time::timeout(PATIENCE, answer(ms)).await;
                with_tokio.push((outcome.ok(), (Instant::now() - start).as_millis()));
            }
        });
        assert_eq!(with_limit, with_tokio);
        assert_eq!(with_limit.iter().filter(|(ok, _)| ok.is_none()).count(), 3);
    }

    /// Many requests in flight on one host's limits of two patiences: each times out at its own
    /// deadline, those answered first do not, and a shorter patience begun later still times out
    /// first.
    #[test]
    fn requests_of_many_tasks_time_out_at_their_own_deadlines() {
        on_a_paused_host(async {
            let timeouts = RequestTimeouts::new();
            let start = Instant::now();
            let mut tasks = Vec::new();
            for i in 0..6u64 {
                let long = i % 2 == 0;
                let limit = timeouts.limit(Duration::from_millis(if long { 1_000 } else { 300 }));
                tasks.push(tokio::task::spawn_local(async move {
                    // Requests begin 100 ms apart; every third, from the second, is answered
                    // after 200 ms.
                    tokio::time::sleep(Duration::from_millis(100 * i)).await;
                    let answer_after = if i % 3 == 1 { 200 } else { 10_000 };
                    let outcome = limit
                        .run(tokio::time::sleep(Duration::from_millis(answer_after)))
                        .await;
                    (outcome.is_ok(), (Instant::now() - start).as_millis())
                }));
            }
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            assert_eq!(
                outcomes,
                vec![
                    (false, 1_000),
                    (true, 300),
                    (false, 1_200),
                    (false, 600),
                    (true, 600),
                    (false, 800),
                ]
            );
        });
    }

    /// A request dropped before its deadline (its task moved on) does not shorten the next one,
    /// and the timer task keeps no host's timeouts alive.
    #[test]
    fn a_dropped_request_does_not_shorten_the_next() {
        on_a_paused_host(async {
            let timeouts = RequestTimeouts::new();
            let limit = timeouts.limit(Duration::from_secs(1));
            let start = Instant::now();
            let dropped = tokio::time::timeout(
                Duration::from_millis(10),
                limit.run(std::future::pending::<()>()),
            )
            .await;
            assert!(dropped.is_err());
            let later = limit.run(std::future::pending::<()>()).await;
            assert_eq!(later, Err(TimedOut));
            assert_eq!(Instant::now() - start, Duration::from_millis(1_010));
            let weak = std::rc::Rc::downgrade(&timeouts);
            drop(limit);
            drop(timeouts);
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert!(weak.upgrade().is_none());
        });
    }
}
