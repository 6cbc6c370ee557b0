//! Simulation speed: simulated seconds per wall second for each transport, and rtsim's cost against a
//! bare-turmoil program that moves the same messages over raw TCP (the floor for any turmoil-based
//! simulator).
//!
//! `cargo bench --bench throughput` runs every transport at 1,000 clients for 10 simulated minutes plus
//! the bare-turmoil floor. Choose others with
//! `cargo bench --bench throughput -- --clients 10000 --transports sse,websocket --minutes 10`, or
//! `-- --jobs` to time a multi-run profile with `--jobs 1` and `--jobs 2`, or `-- --replicas 3` for
//! three server replicas behind a round-robin balancer with a shared backplane, or `-- --lookahead` to
//! time each of a set of workloads with `[simulation] lookahead = "auto"` and `"off"` in one process
//! (the ratio of the two is what to quote on a shared machine).
//!
//! Wall time on a shared machine is noisy (the SSE / bare ratio ranged 1.42–1.69 over seven runs of the
//! same binary here); for a stable ratio count instructions instead, one process each:
//! `valgrind --tool=callgrind <bench binary> --minutes 1 --transports sse --no-bare` and
//! `valgrind --tool=callgrind <bench binary> --minutes 1 --bare-only`.
//! Wall-clock time is measured here and only here: it never enters a simulation.

use std::rc::Rc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rtsim::scenario::Plan;
use rtsim::transport::TransportKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The same allocator as the `rtsim` binary (src/main.rs), so the bench times what users run.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The same allocator options as the `rtsim` binary (src/main.rs, `JEMALLOC_OPTIONS`).
#[cfg(all(not(target_env = "msvc"), target_os = "linux"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"thp:always,metadata_thp:always".as_ptr() });

fn main() {
    let mut clients = 1000u32;
    let mut minutes = 10u32;
    let mut transports = TransportKind::ALL.to_vec();
    let mut bare = true;
    let mut jobs = false;
    // `--replicas N`: the same runs with N server replicas behind a round-robin balancer.
    let mut replicas = 1u32;
    let mut lookahead = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--clients" => {
                clients = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--clients N")
            }
            "--minutes" => {
                minutes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--minutes N")
            }
            "--transports" => {
                transports = args
                    .next()
                    .expect("--transports a,b")
                    .split(',')
                    .map(|t| t.parse().expect("a transport name"))
                    .collect()
            }
            "--replicas" => {
                replicas = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--replicas N")
            }
            "--no-bare" => bare = false,
            "--bare-only" => transports.clear(),
            "--jobs" => jobs = true,
            "--lookahead" => lookahead = true,
            // cargo bench passes --bench; ignore flags meant for libtest.
            _ => {}
        }
    }
    if jobs {
        return time_jobs();
    }
    if lookahead {
        return time_lookahead();
    }
    println!(
        "{:<14} {:>7}  {:>9}  {:>8}  {:>10}  {:>12}  {:>9}",
        "what", "clients", "simulated", "wall", "speed", "deliveries", "peak RSS"
    );
    let mut sse_wall = None;
    for transport in transports {
        let mut profile = format!(
            "name = \"bench\"\nduration = \"{minutes}m\"\nclients = {clients}\ntransports = [\"{transport}\"]\n"
        );
        if replicas > 1 {
            profile.push_str(&format!("[server]\nreplicas = {replicas}\n"));
        }
        let plan = Plan::from_text("bench.toml", &profile).expect("valid bench profile");
        let started = Instant::now();
        let report = rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).expect("simulation runs");
        let wall = started.elapsed().as_secs_f64();
        if transport == TransportKind::Sse {
            sse_wall = Some(wall);
        }
        print_row(
            transport.name(),
            clients,
            plan.duration,
            wall,
            report.runs[0].metrics.delivered,
        );
    }
    if bare {
        let started = Instant::now();
        let delivered = bare_turmoil(
            clients as usize,
            Duration::from_secs(60 * u64::from(minutes)),
        );
        let wall = started.elapsed().as_secs_f64();
        print_row(
            "bare turmoil",
            clients,
            Duration::from_secs(60 * u64::from(minutes)),
            wall,
            delivered,
        );
        if let Some(sse) = sse_wall {
            println!(
                "rtsim SSE / bare turmoil, same messages: {:.2}×",
                sse / wall
            );
        }
    }
}

fn print_row(what: &str, clients: u32, simulated: Duration, wall: f64, delivered: u64) {
    println!(
        "{:<14} {:>7}  {:>7.0} s  {:>6.2} s  {:>9.1}×  {:>12}  {:>9}",
        what,
        clients,
        simulated.as_secs_f64(),
        wall,
        simulated.as_secs_f64() / wall,
        delivered,
        peak_rss()
    );
}

/// `--jobs`: a profile of 8 runs timed with one thread and with two.
fn time_jobs() {
    let profile = "name = \"jobs\"\nduration = \"5m\"\nclients = 300\n[[scenario]]\nname = \"a\"\n[[scenario]]\nname = \"b\"\n[scenario.nat]\nidle_timeout = \"30s\"\n";
    let plan = Plan::from_text("jobs.toml", profile).expect("valid profile");
    let mut walls = Vec::new();
    for jobs in [1, 2] {
        let started = Instant::now();
        rtsim::simulate::simulate_with_jobs(&plan, jobs, &mut |_, _, _| {}).expect("runs");
        let wall = started.elapsed().as_secs_f64();
        println!("{} runs with --jobs {jobs}: {wall:.2} s", plan.runs().len());
        walls.push(wall);
    }
    println!(
        "speed-up --jobs 2 over --jobs 1: {:.2}×",
        walls[0] / walls[1]
    );
}

/// `--lookahead`: each workload with lookahead windows and tick by tick, one after the other.
fn time_lookahead() {
    // (what, clients, simulated minutes, transport, extra profile text)
    let cases: [(&str, u32, u32, &str, &str); 7] = [
        (
            "near-idle SSE",
            1000,
            10,
            "sse",
            // One event in the 10 minutes, no heartbeat: nothing but timers and ticks.
            "[workload]\nevents_per_second = 0.002\narrival = \"uniform\"\n[sse]\nheartbeat = \"off\"\n",
        ),
        ("SSE 1 event/s", 1000, 10, "sse", ""),
        ("WebSocket 1/s", 1000, 10, "websocket", ""),
        ("long poll 1/s", 1000, 10, "long-polling", ""),
        ("SSE 1 event/s", 10000, 2, "sse", ""),
        ("WebSocket 1/s", 10000, 2, "websocket", ""),
        ("long poll 1/s", 10000, 2, "long-polling", ""),
    ];
    println!(
        "{:<14} {:>7}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}",
        "what", "clients", "simulated", "auto wall", "auto", "off wall", "off", "auto/off"
    );
    for (what, clients, minutes, transport, extra) in cases {
        let mut walls = Vec::new();
        let mut delivered = Vec::new();
        let mut simulated = Duration::ZERO;
        for mode in ["auto", "off"] {
            let profile = format!(
                "name = \"bench\"\nduration = \"{minutes}m\"\nclients = {clients}\ntransports = [\"{transport}\"]\n{extra}[simulation]\nlookahead = \"{mode}\"\n"
            );
            let plan = Plan::from_text("bench.toml", &profile).expect("valid bench profile");
            simulated = plan.duration;
            let started = Instant::now();
            let report =
                rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).expect("simulation runs");
            walls.push(started.elapsed().as_secs_f64());
            delivered.push(report.runs[0].metrics.delivered);
        }
        // The two modes must agree (tests/lookahead.rs checks whole reports); a bench that saw them
        // differ would be timing two different simulations.
        assert_eq!(delivered[0], delivered[1], "{what}: deliveries differ");
        let sim = simulated.as_secs_f64();
        println!(
            "{:<14} {:>7}  {:>7.0} s  {:>7.2} s  {:>8.1}×  {:>7.2} s  {:>8.1}×  {:>6.1}×",
            what,
            clients,
            sim,
            walls[0],
            sim / walls[0],
            walls[1],
            sim / walls[1],
            walls[1] / walls[0]
        );
    }
}

/// The floor: one server host and one client host on the same turmoil settings as rtsim (1 ms tick,
/// 50 ms latency with 10 ms jitter), the same event schedule (Poisson, 1 event/s), each event written as
/// an SSE-sized frame to every client over raw TCP and read by a task per client. No HTTP, no parsing,
/// no bookkeeping beyond counting.
fn bare_turmoil(clients: usize, duration: Duration) -> u64 {
    let frame_bytes = rtsim::hub::event_payload(1, Duration::ZERO, 200).len() + 20;
    let mut sim = turmoil::Builder::new()
        .rng_seed(1)
        .simulation_duration(duration + Duration::from_secs(5))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(50))
        .max_message_latency(Duration::from_millis(60))
        .ephemeral_ports(1024..=65535)
        .tcp_capacity((clients * 4).max(1024))
        .build();
    let received = Rc::new(std::cell::Cell::new(0u64));
    sim.host("server", move || async move {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 80)).await?;
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1024);
        let publisher = tx.clone();
        tokio::task::spawn_local(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
            tokio::time::sleep(Duration::from_secs(2)).await;
            loop {
                let gap = -(1.0 - rand::Rng::gen::<f64>(&mut rng)).ln();
                tokio::time::sleep(Duration::from_secs_f64(gap)).await;
                let _ = publisher.send(());
            }
        });
        loop {
            let (mut stream, _) = listener.accept().await?;
            let mut events = tx.subscribe();
            tokio::task::spawn_local(async move {
                let frame = vec![b'x'; frame_bytes];
                while events.recv().await.is_ok() {
                    if stream.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let counter = received.clone();
    sim.host("clients", move || {
        let counter = counter.clone();
        async move {
            for _ in 0..clients {
                let counter = counter.clone();
                tokio::task::spawn_local(async move {
                    let Ok(mut stream) = turmoil::net::TcpStream::connect(("server", 80)).await
                    else {
                        return;
                    };
                    let mut buffer = vec![0u8; 4096];
                    let mut bytes = 0usize;
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 {
                            return;
                        }
                        bytes += n;
                        while bytes >= frame_bytes {
                            bytes -= frame_bytes;
                            counter.set(counter.get() + 1);
                        }
                    }
                });
            }
            std::future::pending::<turmoil::Result>().await
        }
    });
    while sim.elapsed() < duration {
        sim.step().expect("bare simulation steps");
    }
    received.get()
}

/// Peak resident memory of this process so far (Linux), for the record.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}
