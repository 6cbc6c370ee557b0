//! Lookahead windows and skipped idle runs (rtsim patches): the same messages arrive at the same
//! simulated instants whether the simulation steps tick by tick or in windows, and whether a host with
//! nothing to do is run or skipped.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};
use turmoil::Builder;

type Log = Rc<RefCell<Vec<(String, Duration)>>>;

/// A server that sends a numbered line at irregular moments and echoes what it reads; a client that
/// sends on its own timer and logs every byte's arrival with its simulated time.
fn run(
    lookahead: bool,
    skip_idle: bool,
    jitter: Duration,
    inner: bool,
) -> (Vec<(String, Duration)>, usize, u64) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sim = Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(20))
        .max_message_latency(Duration::from_millis(20) + jitter)
        .simulation_duration(Duration::from_secs(30))
        .host_rng_streams(true)
        .lookahead(lookahead)
        .skip_idle_runs(skip_idle)
        .build();

    let server_log = log.clone();
    sim.host("server", move || {
        let log = server_log.clone();
        async move {
            let listener = TcpListener::bind(("0.0.0.0", 9000)).await?;
            let (mut stream, _) = listener.accept().await?;
            let mut buf = [0u8; 64];
            let mut next = Duration::from_millis(333);
            for i in 0..40u32 {
                tokio::select! {
                    biased;
                    n = stream.read(&mut buf) => {
                        let n = n?;
                        if n == 0 { break; }
                        log.borrow_mut().push((format!("server read {n}"), turmoil::sim_elapsed().unwrap()));
                        stream.write_all(&buf[..n]).await?;
                    }
                    _ = tokio::time::sleep(next) => {
                        stream.write_all(format!("event {i}\n").as_bytes()).await?;
                        next = Duration::from_micros(97_531 * u64::from(i % 7 + 1));
                    }
                }
            }
            Ok(())
        }
    });
    if inner {
        // A relay next to the server (a zero-latency link): the two step in lockstep.
        sim.host("relay", || async {
            let listener = TcpListener::bind(("0.0.0.0", 9001)).await?;
            let (mut down, _) = listener.accept().await?;
            let mut up = TcpStream::connect(("server", 9000)).await?;
            tokio::io::copy_bidirectional(&mut down, &mut up).await?;
            Ok(())
        });
        sim.set_link_latency("server", "relay", Duration::ZERO);
    }
    let client_log = log.clone();
    sim.client("client", async move {
        let target = if inner {
            ("relay", 9001)
        } else {
            ("server", 9000)
        };
        let mut stream = TcpStream::connect(target).await?;
        let mut buf = [0u8; 256];
        let start = tokio::time::Instant::now();
        let mut ping = 0u32;
        while start.elapsed() < Duration::from_secs(20) {
            tokio::select! {
                biased;
                n = stream.read(&mut buf) => {
                    let n = n?;
                    if n == 0 { break; }
                    client_log.borrow_mut().push((
                        format!("client read {:?}", String::from_utf8_lossy(&buf[..n])),
                        turmoil::sim_elapsed().unwrap(),
                    ));
                }
                _ = tokio::time::sleep(Duration::from_micros(1_234_567)) => {
                    ping += 1;
                    stream.write_all(format!("ping {ping}").as_bytes()).await?;
                }
            }
        }
        Ok(())
    });
    sim.run().unwrap();
    let steps = sim.steps();
    let skipped = sim.skipped_runs();
    let log = log.borrow().clone();
    (log, steps, skipped)
}

#[test]
fn windows_deliver_at_the_same_instants_as_ticks() {
    for jitter in [Duration::ZERO, Duration::from_millis(15)] {
        for inner in [false, true] {
            let (ticks, tick_steps, none_skipped) = run(false, false, jitter, inner);
            let (windows, window_steps, _) = run(true, false, jitter, inner);
            assert_eq!(none_skipped, 0, "nothing is skipped unless asked");
            assert!(
                ticks.len() >= 30,
                "the scenario exchanges messages ({} logged)",
                ticks.len()
            );
            assert_eq!(ticks, windows, "jitter {jitter:?}, relay {inner}");
            // 15 s or more of one-way 20 ms links: at most one window per 20 ms plus the ticks that deliveries
            // pin; tick by tick is one step per millisecond.
            assert!(tick_steps >= 10_000, "{tick_steps} ticks");
            assert!(
                window_steps * 4 < tick_steps,
                "windows took {window_steps} steps, ticks {tick_steps}"
            );
        }
    }
}

#[test]
fn skipped_idle_runs_deliver_at_the_same_instants() {
    for jitter in [Duration::ZERO, Duration::from_millis(15)] {
        for inner in [false, true] {
            let (ticks, tick_steps, _) = run(false, false, jitter, inner);
            for lookahead in [false, true] {
                let (skipping, _, skipped) = run(lookahead, true, jitter, inner);
                assert_eq!(
                    ticks, skipping,
                    "jitter {jitter:?}, relay {inner}, lookahead {lookahead}"
                );
                // Every host is idle most of the time here: a message every ~100 ms, a tick per ms.
                let floor = if lookahead { 1_000 } else { tick_steps as u64 };
                assert!(
                    skipped > floor,
                    "only {skipped} runs skipped (lookahead {lookahead}, {tick_steps} ticks)"
                );
            }
        }
    }
}

/// The patched tokio's `Runtime::try_skip_idle_run`, which `skip_idle_runs` calls: it skips only a run
/// in which no task is ready, no runtime task exists and no timer is due up to the run's end.
#[test]
fn an_idle_run_is_skipped_only_when_nothing_is_due() {
    use std::cell::Cell;
    use tokio::time::{sleep, Instant};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let tick = Duration::from_millis(1);
    let run = |local: &tokio::task::LocalSet| {
        rt.block_on(async {
            local.run_until(sleep(tick)).await;
            Instant::now()
        })
    };
    let start = run(&local);

    // Nothing to do: the clock moves on by the tick.
    let now = rt
        .try_skip_idle_run(&local, tick)
        .expect("an idle run is skipped");
    assert_eq!(now - start, tick);

    // A task spawned but not yet polled is ready: the run is made.
    let fired = Rc::new(Cell::new(None));
    let task_fired = fired.clone();
    local.spawn_local(async move {
        sleep(Duration::from_millis(3)).await;
        task_fired.set(Some(Instant::now()));
    });
    assert!(rt.try_skip_idle_run(&local, tick).is_none(), "a ready task");
    // The task's first poll, at start + 1 ms, arms its timer for start + 4 ms.
    assert_eq!(run(&local) - start, tick * 2);

    // Its timer is not due in the next run: skipped, and the task does not run.
    let now = rt
        .try_skip_idle_run(&local, tick)
        .expect("no timer due before start + 3 ms");
    assert_eq!(now - start, tick * 3);
    assert_eq!(fired.get(), None);
    // It is due in the next: the run is made, and the timer fires at its instant.
    assert!(rt.try_skip_idle_run(&local, tick).is_none(), "a timer due");
    run(&local);
    run(&local);
    assert_eq!(fired.get().map(|at| at - start), Some(tick * 4));

    // A runtime task (`tokio::spawn`), even a pending one, keeps every run.
    let _pending = rt.spawn(std::future::pending::<()>());
    assert!(
        rt.try_skip_idle_run(&local, tick).is_none(),
        "a runtime task"
    );
}
