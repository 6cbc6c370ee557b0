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
use crate::profile::{Profile, Source};
use crate::report::{self, Report};
use crate::runner;
use crate::scenario::Plan;
use crate::shard;
use crate::transport::TransportKind;

/// Command-line overrides of a profile's settings.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    pub seed: Option<u64>,
    pub transports: Option<Vec<TransportKind>>,
    pub clients: Option<u32>,
    #[serde(with = "optional_duration")]
    pub duration: Option<Duration>,
    pub seeds: Option<u32>,
}

/// `Option<Duration>` as an optional "30s"-style string.
mod optional_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&crate::duration::format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| crate::duration::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Loads and validates a profile, applying overrides.
pub fn load_plan(path: &Path, overrides: &Overrides) -> anyhow::Result<Plan> {
    let source = Source::read(path)?;
    plan_from_source(&source, overrides)
}

/// Validates profile text, applying overrides (also used to rebuild a plan from a shard file).
pub fn plan_from_source(source: &Source, overrides: &Overrides) -> anyhow::Result<Plan> {
    let profile: Profile = source.parse()?;
    let mut plan = Plan::from_profile(&profile, source)?;
    if let Some(seeds) = overrides.seeds {
        anyhow::ensure!(
            (1..=1000).contains(&seeds),
            "--seeds must be between 1 and 1000"
        );
        plan.seeds = seeds;
    }
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
        let _ = shorten_run(&mut plan, duration);
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

/// Sets the run's length to `duration` (`--duration`). A server restart the shorter run would end
/// before is moved to the same point of the run — a restart at 5 min of 10 min happens at 1 min of a
/// 2 min quick look — rather than refusing the quick look or dropping the fault; the restart's down
/// time shrinks with it only if it would otherwise outlast the run. Returns one note per restart moved,
/// naming the scenario and both times, for the terminal.
pub fn shorten_run(plan: &mut Plan, duration: Duration) -> Vec<String> {
    let original = plan.duration;
    plan.duration = duration;
    let mut notes = Vec::new();
    for scenario in &mut plan.scenarios {
        let Some(restart) = scenario.restart.as_mut() else {
            continue;
        };
        if restart.at < duration {
            continue;
        }
        let share = restart.at.as_secs_f64() / original.as_secs_f64().max(1e-9);
        // Whole milliseconds keep the moved time readable and the run deterministic.
        let at_ms = (duration.as_secs_f64() * share.min(0.9) * 1000.0)
            .round()
            .max(1.0);
        let at = Duration::from_millis(at_ms as u64);
        let room = duration.saturating_sub(at);
        let down = if restart.down * 2 > room {
            Duration::from_millis((room.as_millis() / 2).max(1) as u64)
        } else {
            restart.down
        };
        notes.push(format!(
            "note: --duration {} ends before {}'s server restart at {}: it restarts at {} instead \
             ({} down), the same point of the run; run without --duration for the profile's timing",
            crate::duration::format(duration),
            scenario.name,
            crate::duration::format(restart.at),
            crate::duration::format(at),
            crate::duration::format(down),
        ));
        restart.at = at;
        restart.down = down;
    }
    notes
}

/// Runs every simulation of a plan on one thread, in order. `progress` hears (run index, runs,
/// simulated time).
pub fn simulate(
    plan: &Plan,
    progress: &mut dyn FnMut(usize, usize, Duration),
) -> anyhow::Result<Report> {
    simulate_with_jobs(plan, 1, progress)
}

/// Runs every simulation of a plan on up to `jobs` threads. The report is the same for any `jobs`.
pub fn simulate_with_jobs(
    plan: &Plan,
    jobs: usize,
    progress: &mut dyn FnMut(usize, usize, Duration),
) -> anyhow::Result<Report> {
    let specs = plan.runs();
    let total = specs.len();
    let metrics = runner::run_all(plan, &specs, jobs, &mut |index, at| {
        progress(index, total, at)
    })?;
    Ok(Report::new(plan.clone(), &specs, metrics))
}

/// Parses `K/N` (1-based shard K of N).
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not K/N (e.g. 2/8)"))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| format!("`{k}` in `{text}` is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` in `{text}` is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("`{text}`: K must be between 1 and N"));
    }
    Ok((k, n))
}

/// The `simulate` subcommand.
pub fn run_cli(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let overrides = args.run.overrides();
    let plan = load_plan(&args.profile, &overrides)?;
    if let Some(duration) = overrides.duration {
        // The same move `load_plan` made, said once on the terminal.
        let mut original = load_plan(
            &args.profile,
            &Overrides {
                duration: None,
                ..overrides.clone()
            },
        )?;
        for note in shorten_run(&mut original, duration) {
            eprintln!("{note}");
        }
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| report::default_dir(&plan));
    let jobs = args.run.jobs();
    anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
    let specs = plan.runs();
    let visible = !args.quiet && std::io::stderr().is_terminal();
    let colour = crate::progress::colour_allowed(std::env::var_os("NO_COLOR").as_deref());

    if let Some((k, n)) = args.shard {
        report::folder::check_file_place(&dir, &shard::file_name(k, n))?;
        let chosen: Vec<usize> = shard::indices(specs.len(), k, n);
        let chosen_specs: Vec<_> = chosen.iter().map(|&i| specs[i].clone()).collect();
        let names = chosen_specs
            .iter()
            .map(|spec| run_name(&plan, spec))
            .collect();
        let mut progress = crate::progress::Progress::new(visible, colour, names, plan.duration);
        let metrics = runner::run_all(&plan, &chosen_specs, jobs, &mut |i, at| {
            progress.update(i, at)
        })?;
        drop(progress);
        let source = std::fs::read_to_string(&args.profile)
            .with_context(|| format!("cannot read {}", args.profile.display()))?;
        let file = shard::write(
            &dir,
            &args.profile,
            &source,
            &overrides,
            (k, n),
            specs.len(),
            &chosen,
            metrics,
        )?;
        println!(
            "Shard {k}/{n}: {} of {} runs written to {}",
            chosen.len(),
            specs.len(),
            file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    // Before the first run: a bad --out costs milliseconds, not the whole simulation.
    report::folder::check(&dir)?;
    let names = specs.iter().map(|spec| run_name(&plan, spec)).collect();
    let mut progress = crate::progress::Progress::new(visible, colour, names, plan.duration);
    let report = simulate_with_jobs(&plan, jobs, &mut |index, _total, at| {
        progress.update(index, at)
    })?;
    drop(progress);
    finish_report(&dir, &report, args.json)
}

/// "scenario × transport" (with the seed when runs are repeated), for progress.
fn run_name(plan: &Plan, spec: &crate::scenario::RunSpec) -> String {
    let base = format!(
        "{} × {}",
        plan.scenarios[spec.scenario].name, spec.transport
    );
    if plan.seeds > 1 {
        format!("{base} (seed {})", spec.seed)
    } else {
        base
    }
}

/// Writes the report folder and prints the table (or the summary as JSON).
pub fn finish_report(dir: &Path, report: &Report, json: bool) -> anyhow::Result<ExitCode> {
    report::write_report(dir, report)
        .with_context(|| format!("while writing the report for `{}`", report.plan.name))?;
    if json {
        print!("{}", report::json::summary_json(report)?);
    } else {
        println!("{}", report::table::comparison_table(report));
        println!("Report written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_look_moves_a_late_restart_to_the_same_point_of_the_run_and_says_so() {
        let source = Source {
            path: "p.toml".into(),
            text: r#"
name = "p"
duration = "10m"
clients = 2
[[scenario]]
name = "deploy"
restart = { at = "5m", down = "5s" }
[[scenario]]
name = "early"
restart = { at = "30s", down = "5s" }
"#
            .to_string(),
        };
        let profile: Profile = source.parse().unwrap();
        let mut plan = Plan::from_profile(&profile, &source).unwrap();
        let notes = shorten_run(&mut plan, Duration::from_secs(120));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("deploy") && notes[0].contains("5m") && notes[0].contains("1m"),
            "{}",
            notes[0]
        );
        let restart = |i: usize| plan.scenarios[i].restart.clone().unwrap();
        assert_eq!(restart(0).at, Duration::from_secs(60));
        assert_eq!(
            restart(1).at,
            Duration::from_secs(30),
            "an early restart stays"
        );
        let overrides = Overrides {
            duration: Some(Duration::from_secs(120)),
            ..Overrides::default()
        };
        assert!(plan_from_source(&source, &overrides).is_ok());
    }
}
