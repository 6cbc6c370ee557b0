//! The simulated world for one run: a turmoil simulation with the server host, a few client hosts (many
//! simulated users share each, since turmoil's cost follows hosts × steps, not connections), and the
//! middleboxes the scenario puts between them.
//!
//! This is the only module that knows about turmoil. It wires hosts and links, starts the transports'
//! halves on them, steps simulated time to the end and hands back what the recorder saw.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::hub::{self, Hub};
use crate::metrics::RunMetrics;
use crate::net::{BoxIo, Connector, CountingStream};
use crate::recorder::{Clock, Recorder, SharedRecorder};
use crate::scenario::{Plan, RunSpec};
use crate::transport::{transport_for, ClientCtx, ServerCtx, TransportKind};

/// Port the application server listens on.
pub const SERVER_PORT: u16 = 80;
const SERVER_HOST: &str = "server";

/// Simulated time zero is this wall-clock date (2026-01-01T00:00:00Z), so `Date` headers are stable.
pub const EPOCH_UNIX_SECONDS: u64 = 1_767_225_600;

/// Clients start at seeded moments within this window, as real users do not arrive in one instant.
const ARRIVAL_WINDOW: Duration = Duration::from_secs(1);

/// The simulation's single clock: time since the start of the run, the same on every host.
struct SimClock;

impl Clock for SimClock {
    fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }
}

/// A failure of the simulation itself (not of a transport: those are measured, not raised).
#[derive(Debug, thiserror::Error)]
#[error("simulation of {transport} in scenario `{scenario}` failed: {message}")]
pub struct SimError {
    pub scenario: String,
    pub transport: TransportKind,
    pub message: String,
}

/// Derives an independent seed for one purpose from the run's seed (SplitMix64 over both).
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed streams, so that every purpose draws from its own generator.
mod streams {
    pub const TURMOIL: u64 = 1;
    pub const PUBLISHER: u64 = 2;
    pub const ARRIVALS: u64 = 3;
    pub const CLIENT_BASE: u64 = 1 << 32;
}

/// When the server starts publishing: after every client has had time to arrive and connect, so that
/// every published event is owed to every client.
pub fn warmup(plan: &Plan) -> Duration {
    let rtt = (plan.network.latency + plan.network.jitter) * 2;
    ARRIVAL_WINDOW + rtt * 3 + Duration::from_millis(100)
}

/// How long before the end an undelivered event still counts as on its way rather than lost.
pub fn grace(plan: &Plan, transport: TransportKind) -> Duration {
    let rtt = (plan.network.latency + plan.network.jitter) * 2;
    let natural = match transport {
        TransportKind::Polling => plan.settings.polling_interval,
        _ => Duration::ZERO,
    };
    natural + rtt * 2 + Duration::from_secs(1)
}

/// Reaches the server over simulated TCP, counting the client's bytes.
struct SimConnector {
    target: (String, u16),
    client: usize,
    recorder: SharedRecorder,
}

impl Connector for SimConnector {
    fn connect(&self) -> futures_util::future::LocalBoxFuture<'static, std::io::Result<BoxIo>> {
        let target = self.target.clone();
        let client = self.client;
        let recorder = self.recorder.clone();
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect((target.0.as_str(), target.1)).await?;
            Ok(Box::new(CountingStream::new(stream, client, recorder)) as BoxIo)
        })
    }

    fn authority(&self) -> &str {
        SERVER_HOST
    }
}

/// Runs one simulation to its end and returns its metrics. `progress` is told the simulated time now
/// and then (once per simulated second).
pub fn run(
    plan: &Plan,
    spec: &RunSpec,
    progress: &mut dyn FnMut(Duration),
) -> Result<RunMetrics, SimError> {
    let scenario = &plan.scenarios[spec.scenario];
    let fail = |message: String| SimError {
        scenario: scenario.name.clone(),
        transport: spec.transport,
        message,
    };
    let clients = plan.clients as usize;
    let latency = plan.network.latency;

    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(derive_seed(spec.seed, streams::TURMOIL))
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS))
        .simulation_duration(plan.duration + Duration::from_secs(1))
        .tick_duration(plan.simulation.tick)
        .min_message_latency(latency)
        .max_message_latency(latency + plan.network.jitter)
        .ephemeral_ports(1024..=65535)
        // Pending connects beyond this panic inside turmoil ("socket buffer full").
        .tcp_capacity((clients * 4).max(1024));
    let mut sim = builder.build();

    let recorder = Recorder::new(Rc::new(SimClock), clients, plan.settings.radio_tail).shared();
    let settings = Rc::new(plan.settings.clone());
    let workload = Rc::new(plan.workload.clone());

    // The server host: the application server and the event publisher.
    {
        let recorder = recorder.clone();
        let settings = settings.clone();
        let workload = workload.clone();
        let publisher_seed = derive_seed(spec.seed, streams::PUBLISHER);
        let start = warmup(plan);
        sim.host(SERVER_HOST, move || {
            let hub = Hub::new(settings.history);
            let server = Rc::new(ServerCtx {
                hub: hub.clone(),
                settings: settings.clone(),
                recorder: recorder.clone(),
                epoch: SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS),
            });
            let publisher = hub::publish(
                hub,
                recorder.clone(),
                workload.clone(),
                ChaCha8Rng::seed_from_u64(publisher_seed),
                start,
            );
            async move {
                tokio::task::spawn_local(publisher);
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
                loop {
                    let (stream, _peer) = listener.accept().await?;
                    tokio::task::spawn_local(crate::server::serve_connection(
                        stream,
                        server.clone(),
                    ));
                }
            }
        });
    }

    // Client hosts, each carrying its share of the users.
    let hosts = (plan.simulation.client_hosts as usize).min(clients).max(1);
    let mut arrivals = ChaCha8Rng::seed_from_u64(derive_seed(spec.seed, streams::ARRIVALS));
    let starts: Vec<Duration> = (0..clients)
        .map(|_| ARRIVAL_WINDOW.mul_f64(rand::Rng::gen::<f64>(&mut arrivals)))
        .collect();
    let transport = transport_for(spec.transport);
    for host in 0..hosts {
        let members: Vec<usize> = (host..clients).step_by(hosts).collect();
        let recorder = recorder.clone();
        let settings = settings.clone();
        let workload = workload.clone();
        let starts = starts.clone();
        let seed = spec.seed;
        sim.host(format!("clients-{host}"), move || {
            for &id in &members {
                let connector: Rc<dyn Connector> = Rc::new(SimConnector {
                    target: (SERVER_HOST.to_string(), SERVER_PORT),
                    client: id,
                    recorder: recorder.clone(),
                });
                let client = Rc::new(ClientCtx::new(
                    id,
                    derive_seed(seed, streams::CLIENT_BASE + id as u64),
                    settings.clone(),
                    workload.clone(),
                    connector,
                    recorder.clone(),
                ));
                let start = starts[id];
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(start).await;
                    transport.run_client(client).await;
                });
            }
            async { std::future::pending::<turmoil::Result>().await }
        });
    }

    let mut next_report = Duration::ZERO;
    while sim.elapsed() < plan.duration {
        sim.step().map_err(|e| fail(e.to_string()))?;
        if sim.elapsed() >= next_report {
            progress(sim.elapsed());
            next_report += Duration::from_secs(1);
        }
    }
    let metrics = recorder
        .borrow()
        .finish(plan.duration, grace(plan, spec.transport));
    Ok(metrics)
}
