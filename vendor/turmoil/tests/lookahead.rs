//! Lookahead windows (rtsim patch): the same messages arrive at the same simulated instants whether the
//! simulation steps tick by tick or in windows.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};
use turmoil::Builder;

type Log = Rc<RefCell<Vec<(String, Duration)>>>;

/// A server that sends a numbered line at irregular moments and echoes what it reads; a client that
/// sends on its own timer and logs every byte's arrival with its simulated time.
fn run(lookahead: bool, jitter: Duration, inner: bool) -> (Vec<(String, Duration)>, usize) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sim = Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(20))
        .max_message_latency(Duration::from_millis(20) + jitter)
        .simulation_duration(Duration::from_secs(30))
        .host_rng_streams(true)
        .lookahead(lookahead)
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
        let target = if inner { ("relay", 9001) } else { ("server", 9000) };
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
    let log = log.borrow().clone();
    (log, steps)
}

#[test]
fn windows_deliver_at_the_same_instants_as_ticks() {
    for jitter in [Duration::ZERO, Duration::from_millis(15)] {
        for inner in [false, true] {
            let (ticks, tick_steps) = run(false, jitter, inner);
            let (windows, window_steps) = run(true, jitter, inner);
            assert!(ticks.len() >= 30, "the scenario exchanges messages ({} logged)", ticks.len());
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

