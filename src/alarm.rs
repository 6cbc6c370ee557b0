//! One timer for many deadlines: an [`AlarmClock`] runs a single task on the current runtime that
//! sleeps until the earliest instant its owner asks for, then lets the owner wake whatever came due.
//!
//! Used where thousands of connections each wait with a deadline (a client's request patience, a
//! server's long-poll hold) and a tokio timer per wait cost more than the wait: each timer is an
//! entry in tokio's wheel, linked to its neighbours, and at 10,000 connections making and cancelling
//! one per request touched lines out of cache every time (4–6 % of a long-polling run per timer,
//! measured side by side). The owner keeps its deadlines as plain data in its own order and wakes
//! the due ones itself; this module only keeps the one timer at the earliest.
//!
//! It must not know what the deadlines mean: that is the owner's ([`Alarms`]).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use tokio::time::{Instant, Sleep};

/// The owner of an [`AlarmClock`]: keeps the deadlines and wakes what comes due.
pub trait Alarms: 'static {
    /// The clock this owner keeps its deadlines with.
    fn clock(&self) -> &AlarmClock;

    /// Wakes what is due at `now`; returns the earliest deadline still to come, if any.
    fn ring_due(&self, now: Instant) -> Option<Instant>;
}

/// The timer task's bookkeeping, kept in its owner.
#[derive(Default)]
pub struct AlarmClock {
    /// The task exists (on the runtime that was current when it was started).
    running: Cell<bool>,
    /// When the task will next look: `None` while it waits for a deadline to be asked for.
    next: Cell<Option<Instant>>,
    /// The task's waker, while it sleeps or waits.
    task: RefCell<Option<Waker>>,
}

impl AlarmClock {
    /// Makes sure `owner` is asked to ring at `at` or before: starts the timer task on the current
    /// runtime's `LocalSet` if there is none, and moves its timer earlier if it sleeps past `at`.
    pub fn ring_by<T: Alarms>(&self, at: Instant, owner: &Rc<T>) {
        if !self.running.get() {
            self.running.set(true);
            self.next.set(Some(at));
            tokio::task::spawn_local(run(Running(Rc::downgrade(owner))));
        } else if self.next.get().is_none_or(|next| at < next) {
            self.next.set(Some(at));
            if let Some(task) = self.task.borrow_mut().take() {
                task.wake();
            }
        }
    }
}

/// Marks the timer task gone however it ends, so that the next deadline starts a new one: a host's
/// runtime dropped with its tasks, even before the task first ran (hence a parameter of [`run`],
/// dropped with the future, rather than a local made in its body).
struct Running<T: Alarms>(Weak<T>);

impl<T: Alarms> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(owner) = self.0.upgrade() {
            let clock = owner.clock();
            clock.running.set(false);
            clock.task.borrow_mut().take();
        }
    }
}

/// The timer task: sleeps until the owner's earliest deadline and asks it to ring; ends with the
/// owner (it holds it weakly).
async fn run<T: Alarms>(running: Running<T>) {
    let owner = &running.0;
    let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(Instant::now()));
    let mut sleeping_until: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        let Some(owner) = owner.upgrade() else {
            return Poll::Ready(());
        };
        let clock = owner.clock();
        loop {
            if let Some(at) = sleeping_until {
                // Not yet, and nothing earlier was asked for since: sleep on.
                if timer.as_mut().poll(cx).is_pending() && clock.next.get() == Some(at) {
                    *clock.task.borrow_mut() = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
            let next = owner.ring_due(Instant::now());
            clock.next.set(next);
            match next {
                Some(at) => {
                    if sleeping_until != Some(at) {
                        timer.as_mut().reset(at);
                        sleeping_until = Some(at);
                    }
                }
                None => {
                    sleeping_until = None;
                    *clock.task.borrow_mut() = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{AlarmClock, Alarms};
    use crate::test_support::on_a_paused_host;

    /// An owner that counts the deadlines that rang.
    #[derive(Default)]
    struct Counter {
        clock: AlarmClock,
        deadlines: RefCell<Vec<Instant>>,
        rung: Cell<usize>,
    }

    impl Counter {
        fn ring_at(self: &Rc<Self>, at: Instant) {
            self.deadlines.borrow_mut().push(at);
            self.clock.ring_by(at, self);
        }
    }

    impl Alarms for Counter {
        fn clock(&self) -> &AlarmClock {
            &self.clock
        }

        fn ring_due(&self, now: Instant) -> Option<Instant> {
            let mut deadlines = self.deadlines.borrow_mut();
            let before = deadlines.len();
            deadlines.retain(|&at| at > now);
            self.rung.set(self.rung.get() + before - deadlines.len());
            deadlines.iter().min().copied()
        }
    }

    /// Deadlines asked for out of order ring at their instants; a runtime dropped before its
    /// timer task ever ran (a host restarted in the same instant) leaves no task marked running,
    /// so the next runtime's deadlines still ring.
    #[test]
    fn deadlines_ring_and_a_dropped_runtime_leaves_no_stale_task() {
        let counter = Rc::new(Counter::default());
        on_a_paused_host(async {
            counter.ring_at(Instant::now() + Duration::from_secs(1));
        });
        assert!(
            !counter.clock.running.get(),
            "the unpolled task was dropped"
        );
        counter.deadlines.borrow_mut().clear();
        on_a_paused_host(async {
            let start = Instant::now();
            counter.ring_at(start + Duration::from_secs(3));
            counter.ring_at(start + Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            assert_eq!(counter.rung.get(), 1);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(counter.rung.get(), 2);
        });
    }
}
