//! Helpers the unit tests share; compiled for tests only.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use crate::recorder::Clock;

/// Runs `test` as a simulated host runs its software: on a current-thread runtime whose clock is
/// paused (it jumps to the next timer when every task waits), in a `LocalSet`. The runtime is
/// dropped with its tasks when `test` ends.
pub fn on_a_paused_host(test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

/// A recorder's clock that reads what the test set (starting at zero).
#[derive(Default)]
pub struct ManualClock(pub Cell<Duration>);

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.0.get()
    }
}
