//! The command line: the subcommands composed into one parser, and the dispatch to them.
//!
//! Each command owns its arguments (`simulate::SimulateArgs`, `sweep::SweepArgs`, …) next to the code
//! that runs it; this module only composes them, so the arrows point one way: `cli` → commands. It
//! holds no simulation or decision logic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::serve::ServeArgs;
use crate::shard::MergeArgs;
use crate::simulate::SimulateArgs;
use crate::sweep::SweepArgs;
use crate::wizard::WizardArgs;

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
