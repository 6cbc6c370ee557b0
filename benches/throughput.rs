//! Simulation speed: simulated seconds per wall second for one transport, N clients, 10 simulated minutes.
//!
//! `cargo bench --bench throughput` runs SSE and WebSocket at 1,000 clients. Choose others with
//! `cargo bench --bench throughput -- --clients 10000 --transports polling,sse --minutes 10`.
//! Wall-clock time is measured here and only here: it never enters a simulation.

use std::time::Instant;

use rtsim::scenario::Plan;
use rtsim::transport::TransportKind;

fn main() {
    let mut clients = 1000u32;
    let mut minutes = 10u32;
    let mut transports = vec![TransportKind::Sse, TransportKind::Websocket];
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
            // cargo bench passes --bench; ignore flags meant for libtest.
            _ => {}
        }
    }
    println!("transport      clients  simulated  wall      speed (simulated s / wall s)  peak RSS");
    for transport in transports {
        let profile = format!(
            "name = \"bench\"\nduration = \"{minutes}m\"\nclients = {clients}\ntransports = [\"{transport}\"]\n"
        );
        let plan = Plan::from_text("bench.toml", &profile).expect("valid bench profile");
        let started = Instant::now();
        let report = rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).expect("simulation runs");
        let wall = started.elapsed().as_secs_f64();
        let simulated = plan.duration.as_secs_f64();
        let delivered = report.runs[0].metrics.delivered;
        println!(
            "{:<14} {:>7}  {:>7.0} s  {:>6.2} s  {:>8.1}×  ({} deliveries)  {}",
            transport.name(),
            clients,
            simulated,
            wall,
            simulated / wall,
            delivered,
            peak_rss()
        );
    }
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
