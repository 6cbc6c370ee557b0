//! Fidelity probes: the simulated middleboxes driven the way the real-thing tests drive real nginx and a
//! real Linux NAT (tests/fidelity.rs), so that both give outcomes that can be compared.
//!
//! They use the same server, proxy and gateway code as [`super::run`], on a small turmoil world of their
//! own; they only observe (bytes and their arrival times, resets), they do not measure transports.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::gateway::Gateway;
use super::{derive_seed, proxy, streams, SimClock, EPOCH_UNIX_SECONDS, SERVER_HOST, SERVER_PORT};
use crate::hub::{self, Hub};
use crate::profile::NatExpiry;
use crate::recorder::Recorder;
use crate::scenario::Plan;
use crate::transport::ServerCtx;

/// What a raw client saw of one response through a scenario's proxy: each read, with the simulated
/// time since the request was sent, and whether the connection ended within the probe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResponseTrace {
    pub reads: Vec<(Duration, Vec<u8>)>,
    pub closed_at: Option<Duration>,
}

/// Sends `GET path` through scenario `scenario`'s proxy (if it has one) at `connect_at` simulated time,
/// and records what comes back for `watch`. The server publishes the profile's workload from time zero.
pub fn trace_response(
    plan: &Plan,
    scenario: usize,
    path: &str,
    connect_at: Duration,
    watch: Duration,
) -> Result<ResponseTrace, String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(derive_seed(plan.seed, streams::TURMOIL))
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS))
        .simulation_duration(connect_at + watch + Duration::from_secs(1))
        .tick_duration(plan.simulation.tick)
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::ZERO)
        .build();
    let recorder = Recorder::new(
        Rc::new(SimClock::new(plan.simulation.tick)),
        1,
        Duration::ZERO,
    )
    .shared();
    let settings = Rc::new(plan.settings.clone());
    let workload = Rc::new(plan.workload.clone());
    let hub = Hub::new(settings.history);
    {
        let recorder = recorder.clone();
        let seed = plan.seed;
        sim.host(SERVER_HOST, move || {
            let server = Rc::new(ServerCtx::new(
                hub.clone(),
                settings.clone(),
                recorder.clone(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS),
            ));
            let publisher = hub::publish(
                hub.clone(),
                recorder.clone(),
                workload.clone(),
                ChaCha8Rng::seed_from_u64(derive_seed(seed, streams::PUBLISHER)),
                Duration::ZERO,
            );
            async move {
                tokio::task::spawn_local(publisher);
                super::serve(server).await
            }
        });
    }
    let mut first_hop = SERVER_HOST.to_string();
    if let Some(settings) = &plan.scenarios[scenario].proxy {
        let proxy = Rc::new(proxy::Proxy::new(
            settings.clone(),
            (SERVER_HOST.to_string(), SERVER_PORT),
            recorder.clone(),
        ));
        sim.host("proxy", move || proxy.clone().run(SERVER_PORT));
        first_hop = "proxy".to_string();
    }
    let trace = Rc::new(RefCell::new(ResponseTrace::default()));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {SERVER_HOST}\r\nAccept: text/event-stream\r\n\r\n");
    {
        let trace = trace.clone();
        sim.client("probe", async move {
            tokio::time::sleep(connect_at).await;
            let mut stream =
                turmoil::net::TcpStream::connect((first_hop.as_str(), SERVER_PORT)).await?;
            stream.write_all(request.as_bytes()).await?;
            let sent = turmoil::sim_elapsed().unwrap_or_default();
            let mut buffer = vec![0u8; 64 * 1024];
            let stop = tokio::time::sleep(watch);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    // Fixed branch order: tokio's random order is unseeded and would break determinism.
                    biased;
                    () = &mut stop => break,
                    read = stream.read(&mut buffer) => {
                        let at = turmoil::sim_elapsed().unwrap_or_default().saturating_sub(sent);
                        match read {
                            Ok(0) | Err(_) => {
                                trace.borrow_mut().closed_at = Some(at);
                                break;
                            }
                            Ok(n) => trace.borrow_mut().reads.push((at, buffer[..n].to_vec())),
                        }
                    }
                }
            }
            Ok(())
        });
    }
    sim.run().map_err(|e| e.to_string())?;
    let trace = trace.borrow().clone();
    Ok(trace)
}

/// Which end writes first on a connection whose NAT mapping has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstWriter {
    Client,
    Server,
}

/// What each end saw after the first write on an expired mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatOutcome {
    /// The written bytes reached the other end (the connection works again).
    pub delivered: bool,
    /// The writer's connection was reset.
    pub writer_reset: bool,
    /// The other end's connection was reset (it learnt of the loss).
    pub other_reset: bool,
}

/// Opens a connection through a simulated NAT with `idle` expiry and `expired` behaviour, exchanges a
/// byte each way, waits past the expiry, lets `first` write and watches both ends for `watch`.
pub fn nat_outcome(
    expired: NatExpiry,
    idle: Duration,
    first: FirstWriter,
    watch: Duration,
) -> Result<NatOutcome, String> {
    let tick = Duration::from_millis(1);
    let mut sim = turmoil::Builder::new()
        .rng_seed(1)
        .simulation_duration(idle * 2 + watch + Duration::from_secs(5))
        .tick_duration(tick)
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::ZERO)
        .build();
    let recorder = Recorder::new(Rc::new(SimClock::new(tick)), 1, Duration::ZERO).shared();
    let outcome = Rc::new(RefCell::new(NatOutcome {
        delivered: false,
        writer_reset: false,
        other_reset: false,
    }));
    let wait = idle + Duration::from_secs(1);
    let reset = |r: &io::Result<usize>| r.as_ref().is_err();
    {
        let outcome = outcome.clone();
        sim.host(SERVER_HOST, move || {
            let outcome = outcome.clone();
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
                let (mut stream, _) = listener.accept().await?;
                let mut byte = [0u8; 16];
                stream.read_exact(&mut byte[..1]).await?;
                stream.write_all(b"s").await?;
                tokio::time::sleep(wait).await;
                if first == FirstWriter::Server {
                    stream.write_all(b"late").await?;
                }
                let read = tokio::time::timeout(watch, stream.read(&mut byte)).await;
                let mut o = outcome.borrow_mut();
                match read {
                    Ok(Ok(n)) if n > 0 => o.delivered |= first == FirstWriter::Client,
                    Ok(r) => {
                        let was_reset = reset(&r);
                        if first == FirstWriter::Server {
                            o.writer_reset |= was_reset;
                        } else {
                            o.other_reset |= was_reset;
                        }
                    }
                    Err(_) => {}
                }
                Ok(())
            }
        });
    }
    let gateway = Gateway::new(
        Some(idle),
        expired,
        (SERVER_HOST.to_string(), SERVER_PORT),
        recorder.clone(),
    );
    sim.host("nat", move || gateway.clone().run(SERVER_PORT));
    {
        let outcome = outcome.clone();
        sim.client("client", async move {
            let mut stream = turmoil::net::TcpStream::connect(("nat", SERVER_PORT)).await?;
            let local = stream.local_addr()?;
            recorder
                .borrow_mut()
                .connection_opened(0, local, crate::net::Purpose::Session);
            let mut byte = [0u8; 16];
            stream.write_all(b"c").await?;
            stream.read_exact(&mut byte[..1]).await?;
            tokio::time::sleep(wait).await;
            if first == FirstWriter::Client {
                stream.write_all(b"late").await?;
            }
            let read = tokio::time::timeout(watch, stream.read(&mut byte)).await;
            let mut o = outcome.borrow_mut();
            match read {
                Ok(Ok(n)) if n > 0 => o.delivered |= first == FirstWriter::Server,
                Ok(r) => {
                    let was_reset = reset(&r);
                    if first == FirstWriter::Client {
                        o.writer_reset |= was_reset;
                    } else {
                        o.other_reset |= was_reset;
                    }
                }
                Err(_) => {}
            }
            Ok(())
        });
    }
    sim.run().map_err(|e| e.to_string())?;
    let outcome = *outcome.borrow();
    Ok(outcome)
}
