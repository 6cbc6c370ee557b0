//! `rtsim simulate`: profile → plan → one simulation per scenario × transport → report.
//!
//! The orchestration only: loading and validation live in `profile`/`scenario`, the simulation in
//! `world`, the outputs in `report`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::SimulateArgs;
use crate::profile::Profile;
use crate::report::{self, Report};
use crate::scenario::Plan;
use crate::transport::TransportKind;

/// Command-line overrides of a profile's settings.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub seed: Option<u64>,
    pub transports: Option<Vec<TransportKind>>,
    pub clients: Option<u32>,
    pub duration: Option<Duration>,
}

/// Loads and validates a profile, applying overrides.
pub fn load_plan(path: &Path, overrides: &Overrides) -> anyhow::Result<Plan> {
    let (profile, source) = Profile::load(path)?;
    let mut plan = Plan::from_profile(&profile, &source)?;
    if let Some(seed) = overrides.seed {
        plan.seed = seed;
    }
    if let Some(clients) = overrides.clients {
        anyhow::ensure!(
            (1..=100_000).contains(&clients),
            "--clients must be between 1 and 100000"
        );
        plan.clients = clients;
    }
    if let Some(duration) = overrides.duration {
        anyhow::ensure!(!duration.is_zero(), "--duration must be longer than zero");
        plan.duration = duration;
        let late = plan
            .scenarios
            .iter()
            .filter_map(|s| s.restart.as_ref())
            .any(|r| r.at >= duration);
        anyhow::ensure!(
            !late,
            "--duration ends the run before a scenario's server restart"
        );
    }
    if let Some(transports) = &overrides.transports {
        anyhow::ensure!(!transports.is_empty(), "--transports lists no transport");
        plan.transports = Vec::new();
        for &t in transports {
            if !plan.transports.contains(&t) {
                plan.transports.push(t);
            }
        }
    }
    Ok(plan)
}

/// Runs every simulation of a plan, in order. `progress` hears (run index, runs, simulated time).
pub fn simulate(
    plan: &Plan,
    progress: &mut dyn FnMut(usize, usize, Duration),
) -> anyhow::Result<Report> {
    let specs = plan.runs();
    let mut metrics = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let mut tick = |at: Duration| progress(index, specs.len(), at);
        metrics.push(crate::world::run(plan, spec, &mut tick)?);
    }
    Ok(Report::new(plan.clone(), &specs, metrics))
}

/// The `simulate` subcommand.
pub fn run_cli(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        seed: args.seed,
        transports: args.transports.clone(),
        clients: args.clients,
        duration: args.duration,
    };
    let plan = load_plan(&args.profile, &overrides)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| report::default_dir(&plan));
    let visible = !args.quiet && std::io::stderr().is_terminal();
    let colour = crate::progress::colour_allowed(std::env::var_os("NO_COLOR").as_deref());
    let names = plan
        .runs()
        .iter()
        .map(|spec| {
            format!(
                "{} × {}",
                plan.scenarios[spec.scenario].name, spec.transport
            )
        })
        .collect();
    let mut progress = crate::progress::Progress::new(visible, colour, names, plan.duration);
    let report = simulate(&plan, &mut |index, _total, at| progress.update(index, at))?;
    drop(progress);
    report::write_report(&dir, &report)
        .with_context(|| format!("while writing the report for `{}`", plan.name))?;
    if args.json {
        print!("{}", report::json::summary_json(&report)?);
    } else {
        println!("{}", report::table::comparison_table(&report));
        println!("Report written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
