//! `rtsim simulate`: profile → plan → one simulation per scenario × transport → report.
//!
//! The orchestration only: loading and validation live in `profile`/`scenario`, the simulation in
//! `world`, the outputs in `report`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::profile::{Profile, Source};
use crate::report::{self, Report};
use crate::runner;
use crate::scenario::Plan;
use crate::shard;
use crate::transport::TransportKind;
use clap::Args;
use std::path::PathBuf;

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
    pub fn overrides(&self) -> Overrides {
        Overrides {
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
    /// Print the full comparison table (every metric) after the verdict and the matrix.
    #[arg(long)]
    pub wide: bool,
    /// For CI: exit with status 1, naming each failure, when TRANSPORT misses any requirement in any
    /// scenario (or cannot be judged); 0 when it meets them all.
    #[arg(long, value_name = "TRANSPORT")]
    pub check: Option<TransportKind>,
}

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
/// time shrinks with it only if it would otherwise outlast the run. A rolling deploy that would not be
/// over before the shorter run ends is moved the same way (its start and spacing scaled, its drain and
/// down time too only if it still would not fit), and so is a scale-out. Returns one note per fault
/// moved, naming the scenario and both times, for the terminal.
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
        let at = same_point(restart.at, original, duration);
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
    let share = duration.as_secs_f64() / original.as_secs_f64().max(1e-9);
    // Whole milliseconds keep moved times readable and the run deterministic.
    let scaled =
        |d: Duration| Duration::from_millis((d.as_secs_f64() * share * 1000.0).round() as u64);
    let replicas = plan.servers.replicas;
    for scenario in &mut plan.scenarios {
        if let Some(deploy) = scenario.deploy.as_mut() {
            if deploy.last_up(replicas) >= duration {
                let before = deploy.clone();
                deploy.at = scaled(deploy.at).max(Duration::from_millis(1));
                deploy.every = scaled(deploy.every).max(Duration::from_millis(1));
                if deploy.last_up(replicas) >= duration {
                    deploy.drain = scaled(deploy.drain);
                    deploy.close_spread = scaled(deploy.close_spread).min(deploy.drain);
                    deploy.down = scaled(deploy.down).max(Duration::from_millis(1));
                }
                notes.push(format!(
                    "note: --duration {} ends before {}'s rolling deploy does (its last replica is \
                     back at {}): it starts at {} instead, one replica every {} ({} drain, {} down), \
                     the same points of the run; run without --duration for the profile's timing",
                    crate::duration::format(duration),
                    scenario.name,
                    crate::duration::format(before.last_up(replicas)),
                    crate::duration::format(deploy.at),
                    crate::duration::format(deploy.every),
                    crate::duration::format(deploy.drain),
                    crate::duration::format(deploy.down),
                ));
            }
        }
        if let Some(scale_out) = scenario.scale_out.as_mut() {
            if scale_out.at >= duration {
                let at = same_point(scale_out.at, original, duration);
                notes.push(format!(
                    "note: --duration {} ends before {}'s scale-out at {}: it happens at {} instead, \
                     the same point of the run",
                    crate::duration::format(duration),
                    scenario.name,
                    crate::duration::format(scale_out.at),
                    crate::duration::format(at),
                ));
                scale_out.at = at;
            }
        }
    }
    notes
}

/// The moment `at` of a run `original` long, at the same point of a run `duration` long (at most
/// 90 % of the way in, so that its effect is seen), in whole milliseconds: readable, deterministic.
fn same_point(at: Duration, original: Duration, duration: Duration) -> Duration {
    let share = at.as_secs_f64() / original.as_secs_f64().max(1e-9);
    let ms = (duration.as_secs_f64() * share.min(0.9) * 1000.0)
        .round()
        .max(1.0);
    Duration::from_millis(ms as u64)
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
            // Wrapped to the terminal like the rest of the output.
            for line in report::table::wrap(&note, terminal_width(), "  ") {
                eprintln!("{line}");
            }
        }
    }
    if let Some(t) = args.check {
        anyhow::ensure!(
            plan.transports.contains(&t),
            "--check {t}: {t} is not among the transports this run simulates"
        );
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
    finish_report_with(
        &dir,
        &report,
        &Output {
            json: args.json,
            wide: args.wide,
            check: args.check,
        },
    )
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

/// What to print after a run.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// summary.json on stdout instead of the terminal summary.
    pub json: bool,
    /// The full comparison table after the matrix.
    pub wide: bool,
    /// Exit 1 when this transport misses a requirement anywhere.
    pub check: Option<TransportKind>,
}

/// Writes the report folder and prints the terminal summary (or the summary as JSON).
pub fn finish_report(dir: &Path, report: &Report, json: bool) -> anyhow::Result<ExitCode> {
    finish_report_with(
        dir,
        report,
        &Output {
            json,
            ..Output::default()
        },
    )
}

/// `COLUMNS`, when it is set to a positive number.
pub fn columns_from_env() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
}

/// The terminal's width: `COLUMNS` when set, else the terminal's (stdout's, stderr's or stdin's),
/// else 80.
pub fn terminal_width() -> usize {
    columns_from_env()
        .or_else(|| terminal_size::terminal_size().map(|(w, _)| w.0 as usize))
        .unwrap_or(80)
}

/// Writes the report folder, prints what `output` asks for, and gives `--check`'s exit status.
pub fn finish_report_with(
    dir: &Path,
    report: &Report,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    report::write_report(dir, report)
        .with_context(|| format!("while writing the report for `{}`", report.plan.name))?;
    let width = terminal_width();
    if output.json {
        print!("{}", report::json::summary_json(report)?);
    } else {
        print!("{}", report::table::terminal(report, width, output.wide));
        println!("\nReport written to {}", dir.display());
    }
    let Some(t) = output.check else {
        return Ok(ExitCode::SUCCESS);
    };
    let problems = report.verdict.problems(t);
    if problems.is_empty() {
        eprintln!(
            "check {t}: meets every requirement in every scenario ({} checks)",
            report
                .verdict
                .checks
                .iter()
                .filter(|c| c.transport == t)
                .count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "check {t}: FAILED — {} of its checks did not pass:",
        problems.len()
    );
    for c in problems {
        for line in report::table::wrap(
            &format!(
                "- {}",
                crate::decision::verdict::failure_sentence(&report.plan, c)
            ),
            width,
            "  ",
        ) {
            eprintln!("{line}");
        }
    }
    Ok(ExitCode::from(1))
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

    #[test]
    fn a_shorter_run_moves_a_rolling_deploy_and_a_scale_out_inside_it() {
        let source = Source {
            path: "p.toml".into(),
            text: r#"
name = "p"
duration = "10m"
clients = 2
[server]
replicas = 3
[[scenario]]
name = "fleet"
[scenario.deploy]
at = "4m"
every = "1m"
drain = "10s"
[scenario.scale_out]
at = "8m"
add = 1
"#
            .to_string(),
        };
        let profile: Profile = source.parse().unwrap();
        let mut plan = Plan::from_profile(&profile, &source).unwrap();
        let notes = shorten_run(&mut plan, Duration::from_secs(120));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("rolling deploy"), "{}", notes[0]);
        assert!(notes[1].contains("scale-out at 8m"), "{}", notes[1]);
        let deploy = plan.scenarios[0].deploy.clone().unwrap();
        // The same points of the run: 4m of 10m is 48s of 2m; the last replica is back inside it.
        assert_eq!(deploy.at, Duration::from_secs(48));
        assert_eq!(deploy.every, Duration::from_secs(12));
        assert!(deploy.last_up(3) < Duration::from_secs(120), "{deploy:?}");
        assert_eq!(
            plan.scenarios[0].scale_out.as_ref().unwrap().at,
            Duration::from_secs(96)
        );
    }
}
