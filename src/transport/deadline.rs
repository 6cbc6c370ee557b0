//! A session's timer that moves instead of being made anew: [`Deadline`] keeps one tokio timer for
//! as long as a session lives, may be unset, and is not polled again before its instant once it has
//! registered the task's waker. Sessions run for every event, and tokio timers made, polled and
//! cancelled per event touched wheel entries that, at 10,000 connections, are out of cache.
//!
//! Only timing lives here; what a deadline means (a ping, a silence, a heartbeat) is the
//! transport's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Where an unset [`Deadline`] parks its timer: far beyond any simulated run.
const NEVER: Duration = Duration::from_secs(86_400 * 365);

/// A deadline that may be unset, kept in one timer for a whole session: [`Deadline::set`] moves the
/// timer only when the instant changes, and an unset deadline never fires.
///
/// Once the timer has been polled and registered the task's waker, it is not polled again before
/// its instant: the session's loop runs for every frame, and polling a timer that cannot be due
/// touched its entry (out of cache at 10,000 connections) only to learn that. Reading the clock is
/// cheaper, and the registered timer wakes the task when the instant comes.
pub struct Deadline {
    at: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// The timer holds the task's waker for `at`: polled to `Pending` since the last move.
    armed: bool,
}

impl Deadline {
    pub fn new(at: Option<Instant>) -> Self {
        // An unset deadline keeps a timer that is never polled (so never registered): `elapsed`
        // does not look at it.
        let timer = Box::pin(tokio::time::sleep_until(at.unwrap_or_else(Instant::now)));
        Self {
            at,
            timer,
            armed: false,
        }
    }

    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    pub fn set(&mut self, at: Option<Instant>) {
        if at != self.at {
            // Unset, the timer is moved far out rather than left where it was: a registered timer
            // left in place would still wake the task at its old instant. Moving a timer later only
            // records the new instant; tokio re-files it when the old one comes round, without a
            // wake.
            self.timer
                .as_mut()
                .reset(at.unwrap_or_else(|| Instant::now() + NEVER));
            self.at = at;
            self.armed = false;
        }
    }

    /// Completes at the deadline; pending for ever while it is unset.
    pub async fn elapsed(&mut self) {
        std::future::poll_fn(|cx| self.poll_elapsed(cx)).await
    }

    /// [`Deadline::elapsed`] for a hand-written `poll` (the event stream's body).
    pub fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.at else {
            return Poll::Pending;
        };
        if self.armed && Instant::now() < at {
            return Poll::Pending;
        }
        // Out of tokio's budget the timer answers `Pending` without registering a waker.
        let registers = tokio::task::coop::has_budget_remaining();
        let polled = self.timer.as_mut().poll(cx);
        self.armed = polled.is_pending() && registers;
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::Deadline;

    /// A registered deadline is not polled before its instant, yet still fires at it; moving it
    /// re-arms it at the new instant.
    #[test]
    fn a_gated_deadline_still_fires_at_its_instant() {
        use std::time::Duration;

        use tokio::time::Instant;

        crate::test_support::on_a_paused_host(async {
            let start = Instant::now();
            let mut deadline = Deadline::new(Some(start + Duration::from_millis(10)));
            // Frames keep the task busy before the instant: each poll is pending.
            for _ in 0..3 {
                let early =
                    tokio::time::timeout(Duration::from_millis(3), deadline.elapsed()).await;
                assert!(early.is_err(), "fired before its instant");
            }
            deadline.elapsed().await;
            assert_eq!(Instant::now() - start, Duration::from_millis(10));
            // Moved on, it fires at the new instant.
            deadline.set(Some(start + Duration::from_millis(25)));
            deadline.elapsed().await;
            assert_eq!(Instant::now() - start, Duration::from_millis(25));
            // Unset, it never fires.
            deadline.set(None);
            let never = tokio::time::timeout(Duration::from_secs(60), deadline.elapsed()).await;
            assert!(never.is_err());
        });
    }
}
