//! The simulated world for one run: a turmoil simulation with the server host, a few client hosts (many
//! simulated users share each, since turmoil's cost follows hosts × steps, not connections), and the
//! middleboxes the scenario puts between them.
//!
//! Topology, first hop first: client hosts → gateway (carrier NAT; two of them, Wi-Fi and cellular,
//! when clients switch networks) → HTTP proxy → server. Each middlebox is present only when the
//! scenario asks for it. The client ↔ first-hop link carries the profile's latency and jitter (the last
//! mile and the internet); links between middleboxes and the server are a data centre's (no latency
//! beyond the 1-tick hop). With `[server] replicas` (or a `[scenario.balancer]`) the server is
//! `server-0` … `server-<n-1>` behind a load balancer, the innermost middlebox, and an `events` host
//! publishes round them (see `world/balancer.rs`). A `[scenario.scale_out]` starts more replica hosts
//! while the run goes on (between steps, at a lookahead barrier) and widens the balancer to them.
//!
//! This is the only module that knows about turmoil. It wires hosts and links, starts the transports'
//! halves on them, steps simulated time to the end and hands back what the recorder saw.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::hub::{self, Hub};
use crate::metrics::RunMetrics;
use crate::net::Connector;
use crate::recorder::{Clock, Recorder};
use crate::scenario::{Plan, RunSpec};
use crate::transport::request_timeouts::RequestTimeouts;
use crate::transport::{transport_for, ClientCtx, ServerCtx, TransportKind};

mod balancer;
mod gateway;
mod probe;
mod proxy;
mod route;

pub use probe::{nat_outcome, trace_response, FirstWriter, NatOutcome, ResponseTrace};

use gateway::Gateway;
use route::{Route, SimConnector};

/// Port the application server (and every middlebox) listens on.
pub const SERVER_PORT: u16 = 80;
const SERVER_HOST: &str = "server";
const PROXY_HOST: &str = "proxy";
/// Gateway hosts: the clients' networks (a NAT, or Wi-Fi and cellular for network switching).
const GATEWAY_HOSTS: [&str; 2] = ["wifi", "cellular"];

/// Simulated time zero is this wall-clock date (2026-01-01T00:00:00Z), so `Date` headers are stable.
pub const EPOCH_UNIX_SECONDS: u64 = 1_767_225_600;

/// The simulation's single clock: time since the start of the run, the same on every host.
///
/// `turmoil::sim_elapsed()` finds the running host by a hashed lookup on every call, and the recorder
/// asks several times per delivered event (for every socket read and write). Each host runs on its own
/// paused tokio clock that only turmoil moves, a whole tick at a time, so that clock stays a fixed
/// distance from simulated time for the life of the host's runtime: the distance is taken once per
/// runtime and reused. The vendored tokio gives the runtime's id and its paused clock's now, in
/// nanoseconds, from one look at the thread's context (`Handle::try_current_paused_clock`), so a
/// reading is integer arithmetic: `Instant` arithmetic and two context lookups were most of its cost.
/// Debug builds (every test) check the shortcut against turmoil on every call.
struct SimClock {
    /// Per host runtime seen so far: its paused clock's nanoseconds and the simulated time at one
    /// moment.
    anchors: RefCell<Vec<(tokio::runtime::Id, u64, Duration)>>,
    /// False when the tick is not a whole number of milliseconds: tokio's timers round it up, so
    /// the tokio clock moves further per tick than simulated time does.
    anchored: bool,
}

impl SimClock {
    fn new(tick: Duration) -> Self {
        Self {
            anchors: RefCell::new(Vec::new()),
            anchored: tick.subsec_nanos().is_multiple_of(1_000_000),
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        let exact = || turmoil::sim_elapsed().unwrap_or_default();
        // Outside a host's runtime, or on a clock that is not paused, turmoil's own answer.
        let (runtime, now) = match tokio::runtime::Handle::try_current_paused_clock() {
            Some(clock) if self.anchored => clock,
            _ => return exact(),
        };
        let mut anchors = self.anchors.borrow_mut();
        let (at, simulated) = match anchors.iter().find(|(id, _, _)| *id == runtime) {
            Some(&(_, at, simulated)) => (at, simulated),
            None => {
                let Some(simulated) = turmoil::sim_elapsed() else {
                    return Duration::ZERO;
                };
                anchors.push((runtime, now, simulated));
                (now, simulated)
            }
        };
        let elapsed = simulated + Duration::from_nanos(now.saturating_sub(at));
        debug_assert_eq!(elapsed, exact(), "host clock left simulated time");
        elapsed
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
    pub const SWITCHES: u64 = 4;
    /// engine.io session ids: per server host and boot, `+ (host << 16) + (boot << 8)`.
    pub const SESSIONS: u64 = 5;
    pub const CLIENT_BASE: u64 = 1 << 32;
}

/// Moments no lookahead window may jump past, as the ends of the windows that must stop there.
struct Barriers {
    tick: Duration,
    ends: Vec<Duration>,
}

impl Barriers {
    fn new(tick: Duration) -> Self {
        Self {
            tick,
            ends: Vec::new(),
        }
    }

    fn on_tick(&self, at: Duration, round_up: bool) -> Duration {
        let tick = self.tick.as_nanos().max(1);
        let ticks = if round_up {
            at.as_nanos().div_ceil(tick)
        } else {
            at.as_nanos() / tick
        };
        Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX))
    }

    /// Something a host does at `at` (on a tick boundary or inside a tick): the window holding that
    /// tick ends with it, so hosts stepping in lockstep have not yet run past it, as tick by tick.
    fn end_tick_of(&mut self, at: Duration) {
        let end = self.on_tick(at, false) + self.tick;
        self.ends.push(end);
    }

    /// Something the run loop does between steps, at the first tick boundary at or after `at`.
    fn at_or_after(&mut self, at: Duration) {
        let end = self.on_tick(at, true);
        self.ends.push(end);
    }

    fn sorted(mut self) -> SortedBarriers {
        self.ends.sort_unstable();
        self.ends.dedup();
        SortedBarriers {
            ends: self.ends,
            next: 0,
        }
    }
}

/// [`Barriers`] in time order, consumed as the run passes them.
struct SortedBarriers {
    ends: Vec<Duration>,
    next: usize,
}

impl SortedBarriers {
    /// The first barrier after `now`, or `Duration::MAX`.
    fn next_after(&mut self, now: Duration) -> Duration {
        while self.ends.get(self.next).is_some_and(|&end| end <= now) {
            self.next += 1;
        }
        self.ends.get(self.next).copied().unwrap_or(Duration::MAX)
    }
}

/// A server host's software: the application server on [`SERVER_PORT`], each accepted connection
/// served on its own task until the host stops. When the server's shutdown is triggered (a deploy's
/// drain) it closes its listening socket first, as a server stopping gracefully does (new connects
/// are refused and the balancer moves on), and keeps serving what it has until the host stops.
pub(crate) async fn serve(server: Rc<ServerCtx>) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
    let mut stopping = server.shutdown.watch();
    loop {
        let accepted = tokio::select! {
            // Fixed branch order: tokio's random order is unseeded.
            biased;
            () = stopping.triggered() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = accepted?;
        tokio::task::spawn_local(crate::server::serve_connection(stream, server.clone()));
    }
    drop(listener);
    std::future::pending().await
}

/// When the server starts publishing: after every client has had time to arrive (clients join at
/// seeded, uniform moments over `[workload] client_ramp`, as a real population does) and connect, so
/// that every published event is owed to every client.
pub fn warmup(plan: &Plan) -> Duration {
    let rtt = (plan.network.latency + plan.network.jitter) * 2;
    plan.workload.client_ramp + rtt * 3 + Duration::from_millis(100)
}

/// The longest a client may take to notice a broken connection and be back after the measured run:
/// the drain period during which late deliveries still count (the run stops earlier once every event
/// has reached every client). Events still missing after it are lost.
pub fn recovery_horizon(
    plan: &Plan,
    scenario: &crate::scenario::Scenario,
    transport: TransportKind,
) -> Duration {
    let s = &plan.settings;
    let rtt = (plan.network.latency + plan.network.jitter) * 2;
    let long_poll = s.long_poll_hold + s.request_timeout;
    let detect = match transport {
        TransportKind::Polling => s.polling_interval + s.request_timeout,
        TransportKind::LongPolling => long_poll,
        TransportKind::Sse => s
            .sse_client_timeout
            .unwrap_or_default()
            .max(s.request_timeout),
        TransportKind::Websocket => {
            let silence = s
                .ws_ping_interval
                .map(|p| p + s.ws_ping_timeout)
                .unwrap_or_default();
            // The fallback's engine.io poll is held up to a ping interval, its silence check adds
            // the ping timeout.
            let fallback = match s.ws_fallback {
                crate::profile::Fallback::LongPolling => s
                    .ws_ping_interval
                    .unwrap_or(crate::transport::engine_io::DEFAULT_PING_INTERVAL)
                    .saturating_add(s.ws_ping_timeout + s.request_timeout)
                    .max(long_poll),
                _ => long_poll,
            };
            silence.max(s.request_timeout) + fallback
        }
    };
    let outage = scenario
        .switch
        .as_ref()
        .map(|x| x.outage)
        .unwrap_or_default();
    let backoff = s.reconnect.max.mul_f64(1.0 + s.reconnect.jitter);
    detect + outage + backoff + s.sse_retry + rtt * 4 + Duration::from_secs(1)
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
    let drain = recovery_horizon(plan, scenario, spec.transport);

    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(derive_seed(spec.seed, streams::TURMOIL))
        .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS))
        .simulation_duration(plan.duration + drain + Duration::from_secs(1))
        .tick_duration(plan.simulation.tick)
        // Latencies drawn per sending host: the same whether hosts step tick by tick or in windows.
        .host_rng_streams(true)
        .lookahead(plan.simulation.lookahead)
        // A host with no task ready and no timer due is not entered for the tick: the same run, cheaper.
        .skip_idle_runs(plan.simulation.lookahead)
        .min_message_latency(latency)
        .max_message_latency(latency + plan.network.jitter)
        .ephemeral_ports(1024..=65535)
        // Pending connects beyond this panic inside turmoil ("socket buffer full").
        .tcp_capacity((clients * 4).max(1024));
    let mut sim = builder.build();

    let recorder = Recorder::new(
        Rc::new(SimClock::new(plan.simulation.tick)),
        clients,
        plan.settings.radio_tail,
    )
    .shared();
    let settings = Rc::new(plan.settings.clone());
    let workload = Rc::new(plan.workload.clone());

    // Middleboxes, from the server outwards: each knows its next hop.
    let mut next_hop = (SERVER_HOST.to_string(), SERVER_PORT);
    let mut inner_hosts = vec![SERVER_HOST.to_string()];
    // Replicas behind a load balancer: the balancer is the first middlebox in front of them.
    let mut server_hosts = vec![SERVER_HOST.to_string()];
    let mut fleet = None;
    // With a scale-out the balancer knows the added replicas from the start but sends them nothing
    // until they run.
    let mut scale_out = None;
    if let Some(settings) = &scenario.balancer {
        let replicas = plan.servers.replicas as usize;
        let added = scenario.scale_out.as_ref().map_or(0, |s| s.add as usize);
        server_hosts = (0..replicas).map(balancer::replica_host).collect();
        let backends = (0..replicas + added)
            .map(|k| (balancer::replica_host(k), SERVER_PORT))
            .collect();
        let loads: Vec<Rc<balancer::ReplicaLoad>> =
            (0..replicas + added).map(|_| Rc::default()).collect();
        let total: Rc<balancer::ReplicaLoad> = Rc::default();
        let running = Rc::new(balancer::Balancer::new(
            settings.clone(),
            backends,
            recorder.clone(),
            loads.clone(),
            total.clone(),
        ));
        running.scale_to(replicas);
        if let Some(s) = &scenario.scale_out {
            scale_out = Some((s.clone(), running.clone()));
        }
        fleet = Some(Fleet { loads, total });
        sim.host(balancer::BALANCER_HOST, move || {
            running.clone().run(SERVER_PORT)
        });
        next_hop = (balancer::BALANCER_HOST.to_string(), SERVER_PORT);
        inner_hosts = server_hosts.clone();
        inner_hosts.push(balancer::BALANCER_HOST.to_string());
        inner_hosts.push(balancer::EVENTS_HOST.to_string());
    }
    let mut proxies: Vec<Rc<proxy::Proxy>> = Vec::new();
    if let Some(settings) = &scenario.proxy {
        let proxy = Rc::new(proxy::Proxy::new(
            settings.clone(),
            next_hop.clone(),
            recorder.clone(),
        ));
        proxies.push(proxy.clone());
        sim.host(PROXY_HOST, move || proxy.clone().run(SERVER_PORT));
        next_hop = (PROXY_HOST.to_string(), SERVER_PORT);
        inner_hosts.push(PROXY_HOST.to_string());
    }
    let networks = match (&scenario.nat, &scenario.switch) {
        (_, Some(_)) => 2,
        (Some(_), None) => 1,
        (None, None) => 0,
    };
    let gateways: Rc<Vec<Rc<Gateway>>> = Rc::new(
        GATEWAY_HOSTS[..networks]
            .iter()
            .map(|&name| {
                let gateway = Gateway::new(
                    scenario.nat.as_ref().map(|n| n.idle_timeout),
                    scenario.nat.as_ref().map(|n| n.expired).unwrap_or_default(),
                    next_hop.clone(),
                    recorder.clone(),
                );
                let running = gateway.clone();
                sim.host(name, move || running.clone().run(SERVER_PORT));
                inner_hosts.push(name.to_string());
                gateway
            })
            .collect(),
    );
    let first_hops: Vec<(String, u16)> = if networks == 0 {
        vec![next_hop]
    } else {
        GATEWAY_HOSTS[..networks]
            .iter()
            .map(|h| (h.to_string(), SERVER_PORT))
            .collect()
    };

    // The server host: the application server and the event publisher. The hub lives outside the
    // host's software so that a restart keeps the history (as a real deployment's store would).
    let hub = Hub::new(settings.history);
    let boots = Rc::new(std::cell::Cell::new(0u64));
    // One server without a balancer counts its own open connections (a balancer counts its fleet's).
    let server_open: Rc<crate::recorder::OpenCount> = Rc::default();
    let mut backplanes = None;
    if let Some(fleet) = &fleet {
        backplanes = Some(replicas(
            &mut sim,
            plan,
            spec.seed,
            (&server_hosts, fleet),
            &recorder,
            &settings,
            &workload,
        ));
    } else {
        let recorder = recorder.clone();
        let settings = settings.clone();
        let workload = workload.clone();
        let start = warmup(plan);
        let seed = spec.seed;
        let open = server_open.clone();
        sim.host(SERVER_HOST, move || {
            let boot = boots.get();
            boots.set(boot + 1);
            let server = Rc::new(
                ServerCtx::new(
                    hub.clone(),
                    settings.clone(),
                    recorder.clone(),
                    SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS),
                )
                .counting_connections(open.clone())
                .with_session_seed(derive_seed(seed, streams::SESSIONS + (boot << 8))),
            );
            let publisher = hub::publish(
                hub.clone(),
                recorder.clone(),
                workload.clone(),
                ChaCha8Rng::seed_from_u64(derive_seed(seed, streams::PUBLISHER + (boot << 8))),
                if boot == 0 { start } else { Duration::ZERO },
            );
            async move {
                tokio::task::spawn_local(publisher);
                serve(server).await
            }
        });
    }

    // Client hosts, each carrying its share of the users.
    let hosts = (plan.simulation.client_hosts as usize).min(clients).max(1);
    let mut arrivals = ChaCha8Rng::seed_from_u64(derive_seed(spec.seed, streams::ARRIVALS));
    let ramp = plan.workload.client_ramp;
    let starts: Vec<Duration> = (0..clients)
        .map(|_| ramp.mul_f64(rand::Rng::gen::<f64>(&mut arrivals)))
        .collect();
    let transport = transport_for(spec.transport);
    let switch = scenario.switch.clone();
    // Moments something outside the network acts on the simulation: no lookahead window may jump past
    // one (each ends the window of the tick it falls in).
    let mut barriers = Barriers::new(plan.simulation.tick);
    let switch_times: Rc<Vec<Vec<Duration>>> = Rc::new(
        (0..clients)
            .map(|id| match &switch {
                Some(switch) => {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(
                        spec.seed,
                        streams::SWITCHES + ((id as u64) << 8),
                    ));
                    let times = route::switch_times(
                        &mut rng,
                        switch.every,
                        switch.outage,
                        plan.simulation.tick,
                        plan.duration,
                    );
                    for &at in &times {
                        barriers.end_tick_of(at);
                    }
                    times
                }
                None => Vec::new(),
            })
            .collect(),
    );
    if let Some(r) = &scenario.restart {
        barriers.at_or_after(r.at);
        barriers.at_or_after(r.at + r.down);
    }
    for host in 0..hosts {
        let members: Vec<usize> = (host..clients).step_by(hosts).collect();
        let recorder = recorder.clone();
        let settings = settings.clone();
        let workload = workload.clone();
        let starts = starts.clone();
        let first_hops = first_hops.clone();
        let gateways = gateways.clone();
        let switch = switch.clone();
        let switch_times = switch_times.clone();
        let seed = spec.seed;
        sim.host(format!("clients-{host}"), move || {
            // Made here, not outside: a host whose software starts again gets new ones.
            let request_timeouts = RequestTimeouts::new();
            for &id in &members {
                let route = Route::new(first_hops.clone(), SERVER_HOST);
                let connector: Rc<dyn Connector> = Rc::new(SimConnector {
                    route: route.clone(),
                    severable: switch.as_ref().is_some_and(|s| s.notify),
                });
                let client = Rc::new(
                    ClientCtx::new(
                        id,
                        derive_seed(seed, streams::CLIENT_BASE + id as u64),
                        settings.clone(),
                        workload.clone(),
                        connector,
                        recorder.clone(),
                    )
                    .on_host(request_timeouts.clone()),
                );
                let start = starts[id];
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(start).await;
                    transport.run_client(client).await;
                });
                if let Some(switch) = &switch {
                    tokio::task::spawn_local(route::switch_networks(
                        id,
                        route,
                        gateways.clone(),
                        recorder.clone(),
                        route::SwitchPlan {
                            outage: switch.outage,
                            notify: switch.notify,
                        },
                        switch_times[id].clone(),
                    ));
                }
            }
            async { std::future::pending::<turmoil::Result>().await }
        });
    }

    // Links inside the data centre carry no extra latency: the profile's latency is the clients' path.
    let data_centre = inner_hosts.clone();
    for (i, a) in inner_hosts.iter().enumerate() {
        for b in &inner_hosts[i + 1..] {
            sim.set_link_latency(a.as_str(), b.as_str(), Duration::ZERO);
        }
    }

    let restart = scenario.restart.clone();
    let mut deploy = match (&scenario.deploy, &fleet) {
        (Some(d), Some(f)) => Some(balancer::Rollout::new(
            d,
            scenario
                .balancer
                .as_ref()
                .map_or(Duration::ZERO, |b| b.health_check),
            f.loads.clone(),
            server_hosts.clone(),
        )),
        _ => None,
    };
    // A rolling deploy's phases are taken by the run loop between steps, like a restart.
    for at in deploy.iter().flat_map(balancer::Rollout::moments) {
        barriers.at_or_after(at);
    }
    // A scale-out is taken by the run loop between steps too.
    if let Some((s, _)) = &scale_out {
        barriers.at_or_after(s.at);
    }
    // Each replica restart's own figures: the recorder watches a window round each.
    let mut restart_plans: Vec<crate::recorder::RestartPlan> = deploy
        .iter()
        .flat_map(balancer::Rollout::restart_plans)
        .collect();
    if let Some(r) = &restart {
        restart_plans.push(crate::recorder::RestartPlan {
            replica: None,
            cause: "restart",
            drain_at: r.at,
            stop_at: r.at,
            up_at: r.at + r.down,
        });
    }
    if !restart_plans.is_empty() {
        recorder.borrow_mut().watch_restarts(restart_plans);
    }
    let mut barriers = barriers.sorted();
    let mut restarted = false;
    let mut next_report = Duration::ZERO;
    while sim.elapsed() < plan.duration {
        let until = barriers.next_after(sim.elapsed()).min(plan.duration);
        sim.step_within(until - sim.elapsed())
            .map_err(|e| fail(e.to_string()))?;
        if let Some(r) = &restart {
            // Behind a balancer the whole fleet restarts at once (a rolling deploy is not this).
            if !restarted && sim.elapsed() >= r.at {
                let open = match &fleet {
                    Some(f) => f.total.open.open(),
                    None => server_open.open(),
                };
                for stopping in [false, true] {
                    recorder.borrow_mut().restart_open(
                        (None, "restart"),
                        sim.elapsed(),
                        stopping,
                        open,
                    );
                }
                for host in &server_hosts {
                    sim.crash(host.as_str());
                }
                recorder
                    .borrow_mut()
                    .mark_fault_at(sim.elapsed(), "server restart");
                restarted = true;
            }
            for (k, host) in server_hosts.iter().enumerate() {
                // A replica a rolling deploy holds down stays down until the deploy brings it back.
                let held = deploy.as_ref().is_some_and(|d| d.holds_down(k));
                if restarted
                    && !held
                    && sim.elapsed() >= r.at + r.down
                    && !sim.is_host_running(host.as_str())
                {
                    sim.bounce(host.as_str());
                }
            }
        }
        if let Some(rollout) = &mut deploy {
            rollout.step(&mut sim, &recorder);
        }
        if let (Some((s, running)), Some(fleet), Some(bus)) = (&scale_out, &fleet, &backplanes) {
            if sim.elapsed() >= s.at {
                let first = server_hosts.len();
                let mut linked = data_centre.clone();
                for k in first..first + s.add as usize {
                    let host = balancer::replica_host(k);
                    let replay = s.history == crate::profile::ScaleOutHistory::Backplane;
                    let hub = bus.join(settings.history, replay);
                    start_replica(
                        &mut sim,
                        (k, &host),
                        (hub, fleet.loads[k].clone()),
                        &recorder,
                        &settings,
                        spec.seed,
                    );
                    for other in &linked {
                        sim.set_link_latency(host.as_str(), other.as_str(), Duration::ZERO);
                    }
                    linked.push(host.clone());
                    server_hosts.push(host);
                }
                running.scale_to(first + s.add as usize);
                recorder
                    .borrow_mut()
                    .mark_fault_at(sim.elapsed(), format!("scale-out: +{} replicas", s.add));
                scale_out = None;
            }
        }
        if sim.elapsed() >= next_report {
            progress(sim.elapsed());
            next_report += Duration::from_secs(1);
        }
    }
    // The replicas' load is taken at the end of the measured run (imbalance is "at the end").
    let fleet_figures = fleet.as_ref().map(|f| f.figures(sim.elapsed()));
    // Each replica's open connections per second, for the chart (taken before clients recover).
    let fleet_series: Option<Vec<Vec<f64>>> = fleet.as_ref().map(|f| {
        f.loads
            .iter()
            .map(|l| l.open.series(plan.duration))
            .collect()
    });
    let server_figures = fleet
        .is_none()
        .then(|| (server_open.peak(), server_open.mean(sim.elapsed())));
    // The measured run is over: no more events or scheduled faults. Let clients recover so that late
    // deliveries count as late, not lost.
    recorder.borrow_mut().close(plan.duration);
    let deadline = plan.duration + drain;
    // With an outbox, clients are still resending what the network swallowed: wait for that too.
    let settled = |r: &crate::recorder::Recorder| {
        r.all_delivered() && (!plan.workload.upstream_acks || r.upstream_settled())
    };
    while sim.elapsed() < deadline && !settled(&recorder.borrow()) {
        sim.step_within(deadline - sim.elapsed())
            .map_err(|e| fail(e.to_string()))?;
    }
    // Events a middlebox still holds are stranded there, not lost: name the middlebox and the client.
    for proxy in &proxies {
        let name = match proxy.settings.like {
            Some(like) => format!("proxy ({})", like.as_str()),
            None => "proxy".to_string(),
        };
        for (peer, held) in proxy.held.borrow().values() {
            let bytes = held.bytes.borrow();
            if bytes.is_empty() {
                continue;
            }
            // The event released last may have gone out only in part: its end is held too.
            let mut ids: Vec<u64> = held.last_id_out.get().into_iter().collect();
            ids.extend(proxy::held_event_ids(&bytes));
            let client_side = gateways
                .iter()
                .find_map(|g| g.origin_of(*peer))
                .unwrap_or(*peer);
            recorder.borrow_mut().strand(client_side, &ids, &name);
        }
    }
    let mut metrics = recorder.borrow().finish(plan.duration);
    if let Some(figures) = fleet_figures {
        figures.fill(&mut metrics);
    }
    if let Some(series) = fleet_series {
        metrics.timeline.open_connections = series;
    }
    if let Some((peak, mean)) = server_figures {
        metrics.open_connections_peak = Some(peak);
        metrics.open_connections_mean = Some(mean);
    }
    Ok(metrics)
}

/// The replicas behind a balancer and what they carried.
struct Fleet {
    loads: Vec<Rc<balancer::ReplicaLoad>>,
    /// All replicas together.
    total: Rc<balancer::ReplicaLoad>,
}

/// A fleet's figures at the end of the measured run.
struct FleetFigures {
    per_replica: Vec<crate::metrics::ReplicaMetrics>,
    total: crate::metrics::ReplicaMetrics,
}

impl Fleet {
    fn figures(&self, end: Duration) -> FleetFigures {
        FleetFigures {
            per_replica: self
                .loads
                .iter()
                .enumerate()
                .map(|(k, l)| l.metrics(k, end))
                .collect(),
            total: self.total.metrics(0, end),
        }
    }
}

impl FleetFigures {
    fn fill(self, metrics: &mut RunMetrics) {
        let ends: Vec<u64> = self
            .per_replica
            .iter()
            .map(|r| r.open_connections_end)
            .collect();
        let mean = ends.iter().sum::<u64>() as f64 / ends.len().max(1) as f64;
        let busiest = ends.iter().copied().max().unwrap_or(0) as f64;
        metrics.open_connections_peak = Some(self.total.open_connections_peak);
        metrics.open_connections_mean = Some(self.total.open_connections_mean);
        metrics.imbalance = Some((mean > 0.0).then(|| (busiest / mean * 1000.0).round() / 1000.0));
        metrics.per_replica = Some(self.per_replica);
    }
}

/// Starts the replica hosts (each with its own hub) and the events host that publishes round them
/// over the backplane.
fn replicas(
    sim: &mut turmoil::Sim<'_>,
    plan: &Plan,
    seed: u64,
    (hosts, fleet): (&[String], &Fleet),
    recorder: &crate::recorder::SharedRecorder,
    settings: &Rc<crate::scenario::TransportSettings>,
    workload: &Rc<crate::scenario::Workload>,
) -> Rc<balancer::Backplanes> {
    let loads = &fleet.loads;
    let hubs: Vec<Rc<Hub>> = hosts.iter().map(|_| Hub::new(settings.history)).collect();
    for (k, host) in hosts.iter().enumerate() {
        start_replica(
            sim,
            (k, host),
            (hubs[k].clone(), loads[k].clone()),
            recorder,
            settings,
            seed,
        );
    }
    let backplanes = Rc::new(balancer::Backplanes {
        hubs: RefCell::new(hubs),
        loads: loads.clone(),
        backplane: plan.servers.backplane,
        latency: plan.servers.backplane_latency,
    });
    let recorder = recorder.clone();
    let workload = workload.clone();
    let start = warmup(plan);
    let bus = backplanes.clone();
    sim.host(balancer::EVENTS_HOST, move || {
        let backplanes = backplanes.clone();
        let (queue, bus) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_local(backplanes.clone().deliver(bus));
        let publisher = hub::publish_with(
            recorder.clone(),
            workload.clone(),
            ChaCha8Rng::seed_from_u64(derive_seed(seed, streams::PUBLISHER)),
            start,
            0,
            move |event| backplanes.publish(event, &queue),
        );
        async move {
            publisher.await;
            std::future::pending::<turmoil::Result>().await
        }
    });
    bus
}

/// Starts replica `k`'s host: the application server over its own hub, counted in its load, with
/// engine.io session ids of its own per boot.
fn start_replica(
    sim: &mut turmoil::Sim<'_>,
    (k, host): (usize, &str),
    (hub, load): (Rc<Hub>, Rc<balancer::ReplicaLoad>),
    recorder: &crate::recorder::SharedRecorder,
    settings: &Rc<crate::scenario::TransportSettings>,
    seed: u64,
) {
    let recorder = recorder.clone();
    let settings = settings.clone();
    sim.host(host, move || {
        let boot = load.contexts.borrow().len() as u64;
        let sessions = streams::SESSIONS + ((k as u64 + 1) << 16) + (boot << 8);
        let server = Rc::new(
            ServerCtx::new(
                hub.clone(),
                settings.clone(),
                recorder.clone(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECONDS),
            )
            .with_session_seed(derive_seed(seed, sessions)),
        );
        load.contexts.borrow_mut().push(server.clone());
        serve(server)
    });
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored tokio reads a paused clock without its lock (`vendor/tokio/PATCHES.md`), and
    /// every simulated instant [`SimClock`] records comes from it: a paused clock must read exactly
    /// what pausing, advancing and auto-advancing made of it, to the nanosecond, and a clock that
    /// runs again must move with real time.
    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_reads_exactly_what_moved_it() {
        let start = tokio::time::Instant::now();
        assert_eq!(
            tokio::time::Instant::now(),
            start,
            "a paused clock stands still"
        );
        tokio::time::advance(Duration::from_nanos(1_234_567)).await;
        assert_eq!(start.elapsed(), Duration::from_nanos(1_234_567));
        // Auto-advance: nothing else to do, so the clock jumps by whole milliseconds (tokio's
        // timer resolution) to at least the sleep's deadline; nothing is lost on the way.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let slept = start.elapsed();
        let jumped = slept - Duration::from_nanos(1_234_567);
        assert!(jumped >= Duration::from_millis(5), "{slept:?}");
        assert_eq!(jumped.subsec_nanos() % 1_000_000, 0, "{slept:?}");
        assert_eq!(start.elapsed(), slept, "and stands still again");
        tokio::time::resume();
        let resumed = tokio::time::Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            resumed.elapsed() >= Duration::from_millis(2),
            "a running clock moves"
        );
        tokio::time::pause();
        let paused = tokio::time::Instant::now();
        assert_eq!(tokio::time::Instant::now(), paused);
        assert!(paused >= resumed + Duration::from_millis(2));
    }

    #[test]
    fn barriers_end_the_window_of_the_tick_or_the_boundary_at_or_after() {
        let ms = Duration::from_millis;
        let mut b = Barriers::new(ms(1));
        // A switch inside tick [7, 8) ms and one on the boundary 12 ms end those ticks' windows.
        b.end_tick_of(Duration::from_micros(7_400));
        b.end_tick_of(ms(12));
        // A restart at 20.3 ms is done by the run loop at the boundary 21 ms; its return at 25 ms.
        b.at_or_after(Duration::from_micros(20_300));
        b.at_or_after(ms(25));
        b.at_or_after(ms(25));
        let mut sorted = b.sorted();
        assert_eq!(sorted.ends, vec![ms(8), ms(13), ms(21), ms(25)]);
        assert_eq!(sorted.next_after(Duration::ZERO), ms(8));
        assert_eq!(sorted.next_after(ms(8)), ms(13));
        assert_eq!(sorted.next_after(ms(14)), ms(21));
        assert_eq!(sorted.next_after(ms(25)), Duration::MAX);
    }
}
