//! Helpers the unit tests share; compiled for tests only.

use std::future::Future;

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
