//! `rtsim serve`: the transports the simulations run, serving real clients on real TCP — browsers,
//! `curl`, a team's own client — plus a demo page that shows the four side by side.
//!
//! This module is to real sockets what [`crate::world`] is to turmoil: it owns the listener, the
//! connection limit, the clock and shutdown, and hands every accepted connection to the same router
//! ([`crate::server::route`]) and the same transport code the simulation uses. It holds no protocol code
//! of its own; its extra endpoints (`/`, `/time`, `/stats`) only describe the server. It is the one
//! place where the wall clock is read — never in simulations.
//!
//! State is single-threaded (`Rc`), like the simulation's: a current-thread runtime with a `LocalSet`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures_util::future::LocalBoxFuture;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::hub::{self, Hub};
use crate::net::{BoxIo, Connector};
use crate::recorder::{Clock, Recorder, SharedRecorder};
use crate::scenario::{Plan, TransportSettings, Workload};
use crate::transport::http::{self as wire, ResponseBody};
use crate::transport::{ConnectionGuard, Origins, Policy, ServerCtx, TransportKind};
use clap::Args;

/// `rtsim serve`'s arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The profile whose event stream (rate, size) and transport settings to serve; the built-in
    /// quickstart profile when absent. Clients, duration, network and fault scenarios are not used.
    pub profile: Option<std::path::PathBuf>,
    /// Address to listen on (loopback by default: only this machine can connect).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Most connections served at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Largest request body (POST /messages) accepted, bytes; larger ones are answered 413.
    #[arg(long, value_name = "BYTES", default_value_t = crate::transport::Policy::DEFAULT_MAX_BYTES)]
    pub max_body_bytes: usize,
    /// Largest WebSocket message (and frame) a client may send, bytes; larger ones close the
    /// session with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = crate::transport::Policy::DEFAULT_MAX_BYTES)]
    pub max_message_bytes: usize,
    /// How long a request body may take to arrive after its headers; longer is answered 408.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = crate::duration::parse)]
    pub body_timeout: std::time::Duration,
    /// A browser origin (scheme://host[:port]) allowed to use the server besides the page's own:
    /// CORS headers on the HTTP transports, and the Origin check of /ws. Repeatable; `*` allows
    /// every origin. Clients that send no Origin (curl, native apps) are always served.
    #[arg(long, value_name = "ORIGIN", value_parser = crate::server::parse_origin)]
    pub allow_origin: Vec<String>,
}

pub mod page;
pub mod stats;

use stats::{ConnectionMeter, MeteredStream, Slot, Stats};

/// The profile `rtsim serve` uses when none is given.
const DEFAULT_PROFILE: &str = include_str!("../../profiles/quickstart.toml");

/// How long a client may take to send a request's headers, and how long an idle keep-alive
/// connection is kept before it is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long Ctrl-C waits for open connections to end properly (streams on an event boundary,
/// WebSocket close handshakes) before the server exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The id before this server's first event: microseconds since the Unix epoch at start.
///
/// Ids must never repeat across restarts (a client resuming from an id of the previous run would
/// otherwise be served the wrong events, or nothing, without a word). A counter persisted in a file
/// would do it too, but rtsim serve writes no files, and two servers started from one directory would
/// share it; the clock needs no state. The next run's ids start above this run's as long as the
/// server publishes fewer than a million events a second on average (profiles allow 1,000) and the
/// machine's clock does not go back between runs. The ids stay below 2^53 (exact in JavaScript)
/// until the year 2255.
pub fn epoch_id_base() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// Time since the server started, from the machine's monotonic clock.
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    /// A clock reading zero now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Opens real TCP connections to one server address.
pub struct TcpConnector {
    addr: SocketAddr,
    authority: String,
}

impl TcpConnector {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            authority: addr.to_string(),
        }
    }
}

impl Connector for TcpConnector {
    fn connect(&self) -> LocalBoxFuture<'static, io::Result<(BoxIo, SocketAddr)>> {
        let addr = self.addr;
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let local = stream.local_addr()?;
            Ok((Box::new(stream) as BoxIo, local))
        })
    }

    fn authority(&self) -> &str {
        &self.authority
    }
}

/// What the real server runs with: the profile's event stream and transport settings.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The profile's name, shown on the page.
    pub name: String,
    pub settings: TransportSettings,
    pub workload: Workload,
    /// Seed of the publisher's arrival times.
    pub seed: u64,
    /// The id before the first event (see [`epoch_id_base`]).
    pub id_base: u64,
    /// Limits, timeouts and allowed origins.
    pub policy: Policy,
}

impl ServeConfig {
    /// The parts of a validated profile that apply to a real server (clients, duration, network and
    /// fault scenarios are the simulation's).
    pub fn from_plan(plan: &Plan) -> Self {
        Self {
            name: plan.name.clone(),
            settings: plan.settings.clone(),
            workload: plan.workload.clone(),
            seed: plan.seed,
            id_base: epoch_id_base(),
            policy: Policy::default(),
        }
    }
}

/// A running server's shared state.
pub struct Live {
    /// What the transports' server halves share — the same type the simulation builds.
    pub server: Rc<ServerCtx>,
    pub stats: Arc<Stats>,
    config: ServeConfig,
    page: String,
}

impl Live {
    /// A server publishing into `recorder`'s clock and counters. Serving alone, the recorder has no
    /// clients; a test may share it with rtsim's own clients.
    pub fn new(config: ServeConfig, recorder: SharedRecorder) -> Rc<Self> {
        let epoch = SystemTime::now() - recorder.borrow().now();
        recorder.borrow_mut().set_id_base(config.id_base);
        let server = Rc::new(
            ServerCtx::new(
                Hub::with_base(config.settings.history, config.id_base),
                Rc::new(config.settings.clone()),
                recorder,
                epoch,
            )
            .with_policy(config.policy.clone())
            // engine.io session ids from the epoch-based id base: a restarted server never
            // reissues an id a browser still holds.
            .with_session_seed(config.id_base),
        );
        Rc::new(Self {
            page: page::render(&config),
            server,
            stats: Arc::new(Stats::default()),
            config,
        })
    }

    /// Publishes events and serves connections from `listener` until `shutdown` completes, at most
    /// `max_connections` at a time (more are answered 503 and closed; a WebSocket session keeps its
    /// connection's slot). Then stops accepting, ends every stream and session properly and waits
    /// up to [`SHUTDOWN_GRACE`] for them. Must run inside a `LocalSet`.
    pub async fn run(
        self: Rc<Self>,
        listener: TcpListener,
        max_connections: usize,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let publisher = tokio::task::spawn_local(hub::publish(
            self.server.hub.clone(),
            self.server.recorder.clone(),
            Rc::new(self.config.workload.clone()),
            ChaCha8Rng::seed_from_u64(self.config.seed),
            Duration::ZERO,
        ));
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let permits = Arc::new(Semaphore::new(max_connections));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, _peer) = match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before accept: keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let live = self.clone();
                    tokio::task::spawn_local(live.serve_connection(stream, Arc::new(permit)));
                }
                Err(_) => {
                    tokio::task::spawn_local(refuse(stream));
                }
            }
        }
        drop(listener);
        publisher.abort();
        self.server.shutdown.trigger();
        let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
    }

    /// One real connection: the simulation's router behind the page and stats routes, with the
    /// timeouts a real network needs.
    async fn serve_connection(self: Rc<Self>, stream: TcpStream, slot: Arc<OwnedSemaphorePermit>) {
        let meter = ConnectionMeter::new(self.stats.clone());
        let io = MeteredStream::new(stream, meter.clone());
        let mut stopping = self.server.shutdown.watch();
        let guard = ConnectionGuard(slot);
        let service = service_fn(move |mut request: Request<Incoming>| {
            let live = self.clone();
            let meter = meter.clone();
            // Handed to a WebSocket session if this request upgrades the connection.
            request.extensions_mut().insert(guard.clone());
            async move { Ok::<_, Infallible>(live.handle(request, &meter).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .auto_date_header(false)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        // Errors are clients that vanished, stalled or spoke garbage (hyper has answered 400 where it
        // could): nothing to do but drop the connection.
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            biased;
            _ = connection.as_mut() => return,
            () = stopping.triggered() => {}
        }
        // Stopping: finish the response in flight (streams end at an event boundary), then close.
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }

    async fn handle(
        &self,
        request: Request<Incoming>,
        meter: &ConnectionMeter,
    ) -> Response<ResponseBody> {
        let path = request.uri().path().to_string();
        meter.route(Slot::of_path(&path));
        let server = &self.server;
        let own = matches!(path.as_str(), "/" | "/index.html" | "/time" | "/stats");
        if !own {
            return crate::server::route(request, server.clone(), None).await;
        }
        let cors = match crate::server::admit(&request, server, "GET, HEAD, OPTIONS") {
            Ok(cors) => cors,
            Err(answer) => return *answer,
        };
        let response = match path.as_str() {
            "/" | "/index.html" => wire::response(
                server,
                StatusCode::OK,
                "text/html; charset=utf-8",
                wire::full(self.page.clone()),
            ),
            "/time" => json(server, &self.time()),
            _ => json(server, &self.stats_json()),
        };
        crate::server::with_cors(response, cors)
    }

    fn time(&self) -> serde_json::Value {
        serde_json::json!({
            "now_us": self.server.recorder.borrow().now().as_micros() as u64,
            "latest_id": self.server.hub.latest(),
            "id_base": self.server.hub.base(),
        })
    }

    fn stats_json(&self) -> serde_json::Value {
        let mut transports = serde_json::Map::new();
        for kind in TransportKind::ALL {
            transports.insert(
                kind.name().to_string(),
                serde_json::json!(self.stats.snapshot(Slot::Transport(kind))),
            );
        }
        serde_json::json!({
            "now_us": self.server.recorder.borrow().now().as_micros() as u64,
            "published": self.server.hub.latest() - self.server.hub.base(),
            "transports": transports,
            "other": self.stats.snapshot(Slot::Other),
        })
    }
}

fn json(server: &ServerCtx, value: &serde_json::Value) -> Response<ResponseBody> {
    wire::response(
        server,
        StatusCode::OK,
        "application/json",
        wire::full(value.to_string()),
    )
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
        content-length: 25\r\nretry-after: 5\r\nconnection: close\r\n\r\ntoo many connections, sorry";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await
    })
    .await;
}

/// Loads the profile to serve, or the quickstart profile built in.
pub fn load_config(profile: Option<&Path>) -> anyhow::Result<ServeConfig> {
    let plan = match profile {
        Some(path) => crate::simulate::load_plan(path, &crate::simulate::Overrides::default())?,
        None => Plan::from_text("profiles/quickstart.toml (built in)", DEFAULT_PROFILE)?,
    };
    Ok(ServeConfig::from_plan(&plan))
}

/// The `serve` subcommand: serve until Ctrl-C.
pub fn run_cli(args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.max_connections >= 1,
        "--max-connections must be at least 1"
    );
    anyhow::ensure!(
        args.max_body_bytes >= 1 && args.max_message_bytes >= 1,
        "--max-body-bytes and --max-message-bytes must be at least 1"
    );
    let mut config = load_config(args.profile.as_deref())?;
    config.policy = Policy {
        max_body_bytes: args.max_body_bytes,
        body_timeout: args.body_timeout,
        max_message_bytes: args.max_message_bytes,
        origins: if args.allow_origin.iter().any(|o| o == "*") {
            Origins::Any
        } else if args.allow_origin.is_empty() {
            Origins::SameOrigin
        } else {
            Origins::List(args.allow_origin.clone())
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("could not listen on {}", args.bind))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            eprintln!("note: {addr} is reachable from other machines, not only this one");
        }
        let w = &config.workload;
        eprintln!(
            "rtsim serve: profile `{}`, {} event(s)/s of {} bytes; up to {} connections; Ctrl-C stops",
            config.name, w.events_per_second, w.event_bytes, args.max_connections
        );
        // The first line on stdout is the URL (tests and scripts read it).
        println!("Serving http://{addr}/");
        let recorder = Recorder::new(Rc::new(RealClock::start()), 0, Duration::ZERO).shared();
        let live = Live::new(config, recorder);
        let shutdown = async {
            // If the signal cannot be watched, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        live.run(listener, args.max_connections, shutdown).await;
        eprintln!("rtsim serve: stopped");
        anyhow::Ok(())
    })?;
    // Dropping the runtime ends every open connection.
    Ok(ExitCode::SUCCESS)
}
