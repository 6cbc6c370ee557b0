//! Runs many independent simulations at once: one turmoil simulation per thread (each is single-threaded
//! and owns all its state), `jobs` threads pulling runs from a shared list. Results come back in the
//! list's order whatever the number of threads or the order they finish in, so reports are identical
//! for any `--jobs`.
//!
//! Scheduling only: what a run is and how it is simulated belong to `scenario` and `world`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::metrics::RunMetrics;
use crate::scenario::{Plan, RunSpec};
use crate::world::{self, SimError};

/// Messages from the worker threads to the caller's thread.
enum Message {
    Progress(usize, Duration),
    Done(usize, Box<Result<RunMetrics, SimError>>),
}

/// The number of threads to use by default: the machine's cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `specs` of `plan` on up to `jobs` threads. `progress` hears (position in `specs`, simulated
/// time) on the calling thread. The first failure (in list order) is returned once running runs end.
pub fn run_all(
    plan: &Plan,
    specs: &[RunSpec],
    jobs: usize,
    progress: &mut dyn FnMut(usize, Duration),
) -> Result<Vec<RunMetrics>, SimError> {
    let jobs = jobs.clamp(1, specs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<Option<Result<RunMetrics, SimError>>> = Vec::new();
    results.resize_with(specs.len(), || None);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Message>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, failed) = (&next, &failed);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= specs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let mut tick = |at: Duration| {
                    let _ = tx.send(Message::Progress(index, at));
                };
                let result = world::run(plan, &specs[index], &mut tick);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                if tx.send(Message::Done(index, Box::new(result))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for message in rx {
            match message {
                Message::Progress(index, at) => progress(index, at),
                Message::Done(index, result) => results[index] = Some(*result),
            }
        }
    });
    let mut metrics = Vec::with_capacity(specs.len());
    for result in results {
        match result {
            Some(Ok(m)) => metrics.push(m),
            Some(Err(e)) => return Err(e),
            // Skipped after another run failed; that failure comes first in list order or is reported
            // below.
            None => {}
        }
    }
    if metrics.len() == specs.len() {
        Ok(metrics)
    } else {
        Err(SimError {
            scenario: String::new(),
            transport: specs[metrics.len()].transport,
            message: "stopped after another run failed".into(),
        })
    }
}

/// Runs simulations of several plans on up to `jobs` threads: each item is a plan and one of its runs
/// (a sweep runs every grid point's plan in one pool). Like [`run_all`], results come back in the list's
/// order whatever `jobs` is; `progress` hears (position in `runs`, simulated time).
pub fn run_each(
    runs: &[(&Plan, RunSpec)],
    jobs: usize,
    progress: &mut dyn FnMut(usize, Duration),
) -> Result<Vec<RunMetrics>, SimError> {
    let jobs = jobs.clamp(1, runs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<Option<Result<RunMetrics, SimError>>> = Vec::new();
    results.resize_with(runs.len(), || None);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Message>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, failed) = (&next, &failed);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= runs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let mut tick = |at: Duration| {
                    let _ = tx.send(Message::Progress(index, at));
                };
                let (plan, spec) = &runs[index];
                let result = world::run(plan, spec, &mut tick);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                if tx.send(Message::Done(index, Box::new(result))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for message in rx {
            match message {
                Message::Progress(index, at) => progress(index, at),
                Message::Done(index, result) => results[index] = Some(*result),
            }
        }
    });
    let mut metrics = Vec::with_capacity(runs.len());
    for result in results {
        match result {
            Some(Ok(m)) => metrics.push(m),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if metrics.len() == runs.len() {
        Ok(metrics)
    } else {
        Err(SimError {
            scenario: String::new(),
            transport: runs[metrics.len()].1.transport,
            message: "stopped after another run failed".into(),
        })
    }
}
