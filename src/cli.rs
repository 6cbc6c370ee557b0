//! The command line: clap definitions and the dispatch to library entry points.
//!
//! This layer parses and prints; it holds no simulation or decision logic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::transport::TransportKind;

const AFTER_HELP: &str = "\
Examples:
  rtsim simulate profiles/live-scores.toml
  rtsim simulate my.toml --seed 7 --out /tmp/r --transports sse,websocket
  rtsim simulate profiles/dashboard.toml --json > summary.json
  rtsim sweep profiles/quickstart.toml --vary polling.interval=1s..30s:1s
  rtsim wizard
  rtsim wizard --answers answers.toml --json
  rtsim serve        # the demo page on http://127.0.0.1:8080/

Examples are never wrapped: a long one continues on the next line after a `\\`,
so each pastes as it is.";

/// Decide how a web app should push live data — polling, long polling, SSE or WebSockets — and prove it
/// in deterministic network simulations.
#[derive(Debug, Parser)]
#[command(name = "rtsim", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate every transport in every scenario of a profile and report the comparison.
    #[command(after_help = "Examples:
  # table on stdout, files in reports/live-scores/
  rtsim simulate profiles/live-scores.toml
  rtsim simulate my.toml --seed 7 --out /tmp/r --transports sse,websocket
  # summary.json on stdout instead of the table
  rtsim simulate profiles/dashboard.toml --json
  # a quick look: a restart after the end moves to the same point of the run
  rtsim simulate profiles/live-scores.toml --clients 50 --duration 2m")]
    Simulate(SimulateArgs),
    /// Walk the decision tree, get a recommendation and a profile that `simulate` can run.
    #[command(after_help = "Examples:
  rtsim wizard                                  # interactive
  rtsim wizard --answers answers.toml --json    # scripted, no prompts
  rtsim wizard --answers profiles/answers/team-chat.toml \\
      --profile-out /tmp/chat.toml")]
    Wizard(WizardArgs),
    /// Combine the shards of a sharded `simulate --shard K/N` into one report.
    #[command(after_help = "Examples:
  rtsim simulate p.toml --shard 1/2 --out shards/a    # on one machine
  rtsim simulate p.toml --shard 2/2 --out shards/b    # on another
  # byte-identical to an unsharded run
  rtsim merge shards/a shards/b --out reports/p")]
    Merge(MergeArgs),
    /// Serve the four transports to real clients on real TCP, with a demo page comparing them live.
    #[command(after_help = "Examples:
  # built-in quickstart profile, http://127.0.0.1:8080/
  rtsim serve
  rtsim serve profiles/live-scores.toml --bind 127.0.0.1:9000
  # any free port; the URL is printed on stdout
  rtsim serve --bind 127.0.0.1:0
  # let a page on another origin use it (CORS)
  rtsim serve --allow-origin https://app.example")]
    Serve(ServeArgs),
    /// Run a profile over a grid of values of its keys; chart each metric against them and name where
    /// transports cross.
    #[command(after_help = "Examples:
  rtsim sweep profiles/quickstart.toml --vary polling.interval=1s..30s:1s \\
      --transports polling,sse
  rtsim sweep profiles/mobile-chat.toml --vary sse.heartbeat=5s..60s:5s \\
      --vary scenario.nat.idle_timeout=30s,45s,60s
  rtsim sweep my.toml --vary clients=100..1000:100 \\
      --metric requests_per_second --metric latency_ms.p99
  rtsim sweep my.toml --vary scenario[1].proxy.buffer_bytes=0,4096,16384 \\
      --json > sweep.json

VALUES is START..END:STEP (5s..60s:5s, 100..1000:100, 0.1..0.5:0.1; the end
is included when it is on the grid) or a comma list (30s,45s,60s · 0.1,0.5 ·
true,false · off,15s). `scenario.KEY` sets KEY in every scenario that has
KEY's table; `scenario[i].KEY` in scenario i only.")]
    Sweep(SweepArgs),
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The profile to sweep (TOML).
    pub profile: PathBuf,
    /// A profile key and the values to give it, KEY=VALUES; repeat to sweep a grid of several keys.
    /// The first one is the charts' x axis.
    #[arg(long, required = true, value_name = "KEY=VALUES", value_parser = crate::sweep::vary::parse_vary)]
    pub vary: Vec<crate::sweep::vary::Parameter>,
    /// A metric to chart and search for crossovers: a numeric field of a run in summary.json, dotted
    /// (`latency_ms.p99`). Repeatable. Default: latency_ms.p50, requests_per_second, lost,
    /// bytes_per_delivery.
    #[arg(long, value_name = "NAME")]
    pub metric: Vec<String>,
    /// Sweep folder (default: `reports/<profile name>-sweep/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunOptions,
    /// Print sweep.json on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Folders (or files) holding `shard-K-of-N.json` files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Report folder (default: `reports/<profile name>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print summary.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// How to run a profile's simulations: the options `simulate` and `sweep` share.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// Seed for every random choice in the simulation (overrides the profile's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these transports, comma-separated (overrides the profile's `transports`).
    #[arg(long, value_delimiter = ',')]
    pub transports: Option<Vec<TransportKind>>,
    /// Simulate this many clients instead of the profile's `clients` (a quick look).
    #[arg(long)]
    pub clients: Option<u32>,
    /// Simulate this long instead of the profile's `duration`, e.g. `30s` (a quick look).
    #[arg(long, value_parser = crate::duration::parse)]
    pub duration: Option<std::time::Duration>,
    /// Repeat every run with this many seeds and report means with 95 % confidence intervals.
    #[arg(long)]
    pub seeds: Option<u32>,
    /// Simulations to run at once (default: the number of cores). Results do not depend on it.
    #[arg(long, short)]
    pub jobs: Option<usize>,
}

impl RunOptions {
    /// The profile settings these options override.
    pub fn overrides(&self) -> crate::simulate::Overrides {
        crate::simulate::Overrides {
            seed: self.seed,
            transports: self.transports.clone(),
            clients: self.clients,
            duration: self.duration,
            seeds: self.seeds,
        }
    }

    /// Threads to use: `--jobs`, or the machine's cores.
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(crate::runner::default_jobs)
    }
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The profile to run (TOML).
    pub profile: PathBuf,
    /// Report folder (default: `reports/<profile name>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunOptions,
    /// Run only slice K of N of the run list and write `shard-K-of-N.json` into the report folder;
    /// `rtsim merge` combines the slices into the report an unsharded run would write.
    #[arg(long, value_name = "K/N", value_parser = crate::simulate::parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Print summary.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct WizardArgs {
    /// Answers file (TOML): run without prompts.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// With --answers: print the recommendation as JSON.
    #[arg(long, requires = "answers")]
    pub json: bool,
    /// Where to write the profile (default: `profiles/<name>.toml`).
    #[arg(long)]
    pub profile_out: Option<PathBuf>,
    /// With --answers: overwrite an existing profile that differs (interactively the wizard asks).
    #[arg(long, requires = "answers")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The profile whose event stream (rate, size) and transport settings to serve; the built-in
    /// quickstart profile when absent. Clients, duration, network and fault scenarios are not used.
    pub profile: Option<PathBuf>,
    /// Address to listen on (loopback by default: only this machine can connect).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
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

/// Runs a parsed command line; the error chain is printed by `main`.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Simulate(args) => crate::simulate::run_cli(args),
        Command::Wizard(args) => crate::wizard::run_cli(args),
        Command::Merge(args) => crate::shard::merge_cli(args),
        Command::Serve(args) => crate::serve::run_cli(args),
        Command::Sweep(args) => crate::sweep::run_cli(args),
    }
}
