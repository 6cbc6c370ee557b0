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
            tokio::task::spawn_local(run(Rc::downgrade(owner)));
        } else if self.next.get().is_none_or(|next| at < next) {
            self.next.set(Some(at));
            if let Some(task) = self.task.borrow_mut().take() {
                task.wake();
            }
        }
    }
}

/// The timer task: sleeps until the owner's earliest deadline and asks it to ring; ends with the
/// owner (it holds it weakly) and marks itself gone however it ends (a host's runtime dropped with
/// its tasks), so that the next deadline starts a new one.
async fn run<T: Alarms>(owner: Weak<T>) {
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
    let _running = Running(owner.clone());
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
