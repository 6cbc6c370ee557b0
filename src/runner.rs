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

/// A rough relative cost of a run, for ordering only: simulated steps plus deliveries, with long
/// polling's request per event per client weighing about three times a streamed event (measured with
/// `cargo bench --bench throughput`).
fn estimated_cost(plan: &Plan, spec: &RunSpec) -> f64 {
    let seconds = plan.duration.as_secs_f64();
    let steps = seconds / plan.simulation.tick.as_secs_f64();
    let deliveries = seconds * plan.workload.events_per_second * f64::from(plan.clients);
    let weight = match spec.transport {
        crate::transport::TransportKind::LongPolling => 3.0,
        _ => 1.0,
    };
    steps * 4.5e-6 + deliveries * weight * 3.5e-6
}

/// The number of threads to use by default: the machine's cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `specs` of `plan` on up to `jobs` threads (see [`run_each`]).
pub fn run_all(
    plan: &Plan,
    specs: &[RunSpec],
    jobs: usize,
    progress: &mut dyn FnMut(usize, Duration),
) -> Result<Vec<RunMetrics>, SimError> {
    let runs: Vec<(&Plan, RunSpec)> = specs.iter().map(|spec| (plan, spec.clone())).collect();
    run_each(&runs, jobs, progress)
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
    // Longest runs first, so that no long run starts last and leaves the other threads idle; results
    // still land at their place in the list.
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        estimated_cost(runs[b].0, &runs[b].1).total_cmp(&estimated_cost(runs[a].0, &runs[a].1))
    });
    let order = &order;
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
                let position = next.fetch_add(1, Ordering::SeqCst);
                if position >= runs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let index = order[position];
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
    // Runs skipped after a failure are `None`; the failure itself (first in list order) is the answer.
    if let Some(position) = results.iter().position(|r| matches!(r, Some(Err(_)))) {
        if let Some(Err(e)) = results.swap_remove(position) {
            return Err(e);
        }
    }
    Ok(results
        .into_iter()
        .map(|r| match r {
            Some(Ok(metrics)) => metrics,
            _ => unreachable!("every run finishes unless one failed"),
        })
        .collect())
}
