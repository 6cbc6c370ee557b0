//! `rtsim sweep`: run a profile over a grid of values of one or more of its keys and show how each
//! metric moves with them — one line per transport — and where two transports swap places.
//!
//! The pipeline: `--vary` arguments ([`vary`]) → one edited profile per grid point ([`apply`]),
//! each validated like any profile → every point's runs in one pool on all cores
//! ([`crate::runner::run_each`]; results do not depend on `--jobs`) → a [`Sweep`] → crossovers
//! ([`crossover`]) → `sweep.json`, `sweep.csv`, `sweep.md` ([`export`]) and charts ([`chart`]),
//! written atomically into the sweep folder.
//!
//! This module orchestrates and models; it simulates nothing itself (that is `world`), and the builders
//! of files are pure. Output order is fixed by the parameters and the plans, never by a hash map.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value as Json;

use crate::metrics::RunMetrics;
use crate::profile::{Profile, Source};
use crate::report::{label, Report, RunResult};
use crate::runner;
use crate::scenario::{Plan, RunSpec};
use crate::simulate::{plan_from_source, Overrides};
use crate::transport::TransportKind;

pub mod apply;
pub mod chart;
pub mod crossover;
pub mod export;
pub mod vary;

use crossover::{Higher, Kind, Meeting};
use vary::Parameter;

/// The metrics charted when no `--metric` is given.
pub const DEFAULT_METRICS: [&str; 4] = [
    "latency_ms.p50",
    "requests_per_second",
    "lost",
    "bytes_per_delivery",
];

/// One grid point, ready to run: the parameters' values and the validated plan they give.
#[derive(Clone, Debug)]
pub struct PointPlan {
    /// Index into each parameter's values.
    pub indices: Vec<usize>,
    pub plan: Plan,
}

/// One grid point's results.
#[derive(Clone, Debug)]
pub struct Point {
    /// Index into each parameter's values.
    pub indices: Vec<usize>,
    /// One result per scenario × transport, as in `summary.json` (means over seeds with `--seeds`).
    pub runs: Vec<RunResult>,
}

/// Two transports meeting on one metric in one panel (a scenario and values of the other parameters).
#[derive(Clone, Debug)]
pub struct Crossover {
    pub metric: String,
    pub scenario: String,
    /// The other parameters' values in this panel: (parameter index, value index).
    pub fixed: Vec<(usize, usize)>,
    /// The pair, in the order the report lists transports.
    pub transports: [TransportKind; 2],
    pub meeting: Meeting,
    /// The meeting in one sentence.
    pub text: String,
}

/// A whole sweep's results.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The profile's name.
    pub profile: String,
    pub description: String,
    /// The seed of the first grid point's plan (the profile's, or `--seed`).
    pub seed: u64,
    /// Seeds per run (`--seeds`).
    pub seeds: u32,
    /// Clients and simulated time of the first grid point's runs (the same in all unless varied).
    pub clients: u32,
    pub duration: Duration,
    pub parameters: Vec<Parameter>,
    /// The metrics charted and searched for crossovers (dotted paths into a run of `summary.json`).
    pub metrics: Vec<String>,
    /// Grid points, the first parameter outermost.
    pub points: Vec<Point>,
    pub crossovers: Vec<Crossover>,
    /// (parameter index, scenario name) pairs where the parameter changes nothing in the scenario — a
    /// `scenario.nat.idle_timeout` in a scenario without a NAT: its panels are drawn once, captioned
    /// so, and not labelled with a value they do not have.
    pub unaffected: Vec<(usize, String)>,
}

/// A chart panel: one scenario and one combination of the parameters after the first.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub scenario: String,
    /// (parameter index, value index) for parameters 2, 3, …
    pub fixed: Vec<(usize, usize)>,
}

/// One transport's values of a metric across the first parameter, in axis order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub transport: TransportKind,
    /// One per axis position; `None` where the run or the metric is missing.
    pub values: Vec<Option<f64>>,
    /// The 95 % confidence interval `(low, high)` of each value, where runs were repeated (`--seeds`).
    pub intervals: Vec<Option<(f64, f64)>>,
}

/// The x axis: the first parameter's values in drawing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Value indices of the first parameter, in drawing order (ascending when numeric).
    pub order: Vec<usize>,
    /// Position of each (numbers; seconds for durations; 0, 1, 2… for other values).
    pub xs: Vec<f64>,
    /// Label of each.
    pub labels: Vec<String>,
    /// Whether positions are the values themselves (else categories).
    pub numeric: bool,
}

impl Sweep {
    /// The first parameter's axis.
    pub fn axis(&self) -> Axis {
        let Some(first) = self.parameters.first() else {
            return Axis {
                order: Vec::new(),
                xs: Vec::new(),
                labels: Vec::new(),
                numeric: false,
            };
        };
        let numeric = first.is_numeric();
        let mut order: Vec<usize> = (0..first.values.len()).collect();
        if numeric {
            order.sort_by(|&a, &b| {
                let x = |i: usize| first.values[i].number().unwrap_or(0.0);
                x(a).total_cmp(&x(b))
            });
        }
        let xs = order
            .iter()
            .enumerate()
            .map(|(position, &i)| {
                if numeric {
                    first.values[i].number().unwrap_or(0.0)
                } else {
                    position as f64
                }
            })
            .collect();
        let labels = order.iter().map(|&i| first.values[i].to_string()).collect();
        Axis {
            order,
            xs,
            labels,
            numeric,
        }
    }

    /// The scenarios run, in plan order (the first point's).
    pub fn scenarios(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for point in &self.points {
            for run in &point.runs {
                if !names.contains(&run.scenario) {
                    names.push(run.scenario.clone());
                }
            }
        }
        names
    }

    /// The transports run, in report order.
    pub fn transports(&self) -> Vec<TransportKind> {
        TransportKind::ALL
            .into_iter()
            .filter(|t| {
                self.points
                    .iter()
                    .any(|p| p.runs.iter().any(|r| r.transport == *t))
            })
            .collect()
    }

    /// Every panel: scenario-major, then the other parameters' combinations in grid order.
    pub fn panels(&self) -> Vec<Panel> {
        let others = self.parameters.get(1..).unwrap_or_default();
        let combinations = vary::grid(others).unwrap_or_default();
        let mut panels = Vec::new();
        for scenario in self.scenarios() {
            for combination in &combinations {
                // A parameter the scenario does not have: one panel, not one per (absent) value.
                let duplicate = combination
                    .iter()
                    .enumerate()
                    .any(|(i, &v)| v != 0 && !self.applies(i + 1, &scenario));
                if duplicate {
                    continue;
                }
                panels.push(Panel {
                    scenario: scenario.clone(),
                    fixed: combination
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| (i + 1, v))
                        .collect(),
                });
            }
        }
        panels
    }

    /// `metric` for each transport across the first parameter, in one panel.
    pub fn series(&self, panel: &Panel, metric: &str) -> Vec<Series> {
        let axis = self.axis();
        let path: Vec<&str> = metric.split('.').collect();
        self.transports()
            .into_iter()
            .map(|transport| {
                let runs: Vec<Option<&RunResult>> = axis
                    .order
                    .iter()
                    .map(|&first| {
                        let point = self.points.iter().find(|p| {
                            p.indices.first() == Some(&first)
                                && panel
                                    .fixed
                                    .iter()
                                    .all(|&(i, v)| p.indices.get(i) == Some(&v))
                        })?;
                        point
                            .runs
                            .iter()
                            .find(|r| r.transport == transport && r.scenario == panel.scenario)
                    })
                    .collect();
                Series {
                    transport,
                    values: runs
                        .iter()
                        .map(|run| metric_value((*run)?, metric))
                        .collect(),
                    intervals: runs
                        .iter()
                        .map(|run| crate::report::charts::interval((*run)?, &path, 1.0))
                        .collect(),
                }
            })
            .collect()
    }

    /// "clients = 10, sse.retry = 3s" for a panel's other parameters (empty with one parameter).
    /// Whether parameter `p` changes anything in `scenario`.
    pub fn applies(&self, p: usize, scenario: &str) -> bool {
        !self
            .unaffected
            .iter()
            .any(|(q, s)| *q == p && s == scenario)
    }

    /// The fixed parameters of a panel as text ("nat.idle_timeout = 30s"); a parameter the panel's
    /// scenario does not have says so instead of naming a value.
    pub fn panel_text(&self, panel: &Panel) -> String {
        panel
            .fixed
            .iter()
            .map(|&(p, v)| {
                let parameter = &self.parameters[p];
                if self.applies(p, &panel.scenario) {
                    format!("{} = {}", parameter.key, parameter.values[v])
                } else {
                    format!("no {} here", parameter.key)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn fixed_text(&self, fixed: &[(usize, usize)]) -> String {
        fixed
            .iter()
            .map(|&(p, v)| {
                let parameter = &self.parameters[p];
                format!("{} = {}", parameter.key, parameter.values[v])
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Finds where each pair of transports meets, for every metric and panel.
    fn find_crossovers(&mut self) {
        let axis = self.axis();
        if !axis.numeric || axis.xs.len() < 2 {
            return;
        }
        let several_scenarios = self.scenarios().len() > 1;
        let mut found = Vec::new();
        for metric in &self.metrics {
            for panel in self.panels() {
                let series = self.series(&panel, metric);
                for (i, a) in series.iter().enumerate() {
                    for b in &series[i + 1..] {
                        let threshold = crossover::Threshold::for_metric(metric);
                        for meeting in
                            crossover::meetings_beyond(&axis.xs, &a.values, &b.values, threshold)
                        {
                            let mut context = Vec::new();
                            if several_scenarios {
                                context.push(format!("in {}", panel.scenario));
                            }
                            if !panel.fixed.is_empty() {
                                context.push(format!("with {}", self.panel_text(&panel)));
                            }
                            let text = describe(
                                metric,
                                &self.parameters[0],
                                [a.transport, b.transport],
                                &meeting,
                                &context.join(" "),
                            );
                            found.push(Crossover {
                                metric: metric.clone(),
                                scenario: panel.scenario.clone(),
                                fixed: panel.fixed.clone(),
                                transports: [a.transport, b.transport],
                                meeting,
                                text,
                            });
                        }
                    }
                }
            }
        }
        self.crossovers = found;
    }
}

/// A parameter value on its axis as text: "38 s" for durations, "0.25" for numbers.
pub fn axis_value(parameter: &Parameter, x: f64) -> String {
    let text = crate::report::insights::fmt_num(x);
    if parameter.is_duration() {
        format!("{text} s")
    } else {
        text
    }
}

/// A meeting in one sentence, e.g. "Short polling matches SSE's requests_per_second at
/// polling.interval ≈ 38 s: higher for Short polling below that, for SSE above."
pub fn describe(
    metric: &str,
    parameter: &Parameter,
    pair: [TransportKind; 2],
    meeting: &Meeting,
    context: &str,
) -> String {
    let name = |h: Higher| match h {
        Higher::A => label(pair[0]),
        Higher::B => label(pair[1]),
    };
    let place = match meeting.until {
        Some(until) => format!(
            "from {} = {} to {}",
            parameter.key,
            axis_value(parameter, meeting.at),
            axis_value(parameter, until)
        ),
        None => format!(
            "at {} {} {}",
            parameter.key,
            if meeting.interpolated { "≈" } else { "=" },
            axis_value(parameter, meeting.at)
        ),
    };
    let prefix = if context.is_empty() {
        String::new()
    } else {
        let mut c = context.to_string();
        if let Some(first) = c.get(..1) {
            let upper = first.to_uppercase();
            c.replace_range(..1, &upper);
        }
        format!("{c}: ")
    };
    let (a, b) = (label(pair[0]), label(pair[1]));
    match meeting.kind {
        Kind::Crossing => format!(
            "{prefix}{a} matches {b}'s {metric} {place}: higher for {} below that, for {} above.",
            name(meeting.before),
            name(meeting.after)
        ),
        Kind::Touch => format!(
            "{prefix}{a} meets {b}'s {metric} {place} without crossing: higher for {} on both sides.",
            name(meeting.before)
        ),
    }
}

/// A metric of a run by its dotted path in `summary.json` (`latency_ms.p50`); `None` when the path
/// names no number (a metric not measured is written as `null`).
pub fn metric_value(run: &RunResult, metric: &str) -> Option<f64> {
    let json = serde_json::to_value(run).ok()?;
    let mut current = &json;
    for part in metric.split('.') {
        current = current.get(part)?;
    }
    current.as_f64()
}

/// Every metric `--metric` accepts: the numeric fields of a run in `summary.json`, as dotted paths.
pub fn metric_names() -> Vec<String> {
    // Measured values everywhere: a number not measured is `null`, and its name must still count.
    let measured = crate::metrics::Percentiles {
        mean: Some(0.0),
        p50: Some(0.0),
        p95: Some(0.0),
        p99: Some(0.0),
        max: Some(0.0),
    };
    let run = RunResult {
        scenario: String::new(),
        transport: TransportKind::Sse,
        seed: 0,
        metrics: RunMetrics {
            latency_ms: measured.clone(),
            time_to_detect_ms: measured.clone(),
            upstream_latency_ms: measured.clone(),
            upload_time_to_detect_ms: measured,
            bytes_per_delivery: Some(0.0),
            ..RunMetrics::default()
        },
        seeds: None,
        ci95: None,
    };
    let mut names = Vec::new();
    if let Ok(json) = serde_json::to_value(&run) {
        collect_numbers(&json, "", &mut names);
    }
    names
}

fn collect_numbers(json: &Json, prefix: &str, out: &mut Vec<String>) {
    match json {
        Json::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect_numbers(value, &path, out);
            }
        }
        Json::Number(_) => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Checks `--metric` names, giving the defaults when none are given.
pub fn check_metrics(chosen: &[String]) -> anyhow::Result<Vec<String>> {
    if chosen.is_empty() {
        return Ok(DEFAULT_METRICS.iter().map(|m| m.to_string()).collect());
    }
    let known = metric_names();
    let mut metrics: Vec<String> = Vec::new();
    for metric in chosen {
        let metric = metric.trim();
        anyhow::ensure!(
            known.iter().any(|k| k == metric),
            "unknown metric `{metric}`: use a numeric field of a run in summary.json, one of {}",
            known.join(", ")
        );
        if !metrics.iter().any(|m| m == metric) {
            metrics.push(metric.to_string());
        }
    }
    Ok(metrics)
}

/// Validates every grid point: the profile text with the point's values written in, then the
/// overrides. An error names the point's values and the key at fault.
pub fn plan_points(
    source: &Source,
    parameters: &[Parameter],
    overrides: &Overrides,
) -> anyhow::Result<Vec<PointPlan>> {
    anyhow::ensure!(
        !parameters.is_empty(),
        "nothing to vary: give --vary KEY=VALUES"
    );
    for (i, p) in parameters.iter().enumerate() {
        anyhow::ensure!(
            !parameters[..i].iter().any(|q| q.key == p.key),
            "`{}` is varied twice",
            p.key
        );
        let clash = match p.key.as_str() {
            "clients" => overrides.clients.is_some().then_some("--clients"),
            "duration" => overrides.duration.is_some().then_some("--duration"),
            "seed" => overrides.seed.is_some().then_some("--seed"),
            "transports" => overrides.transports.is_some().then_some("--transports"),
            _ => None,
        };
        if let Some(flag) = clash {
            anyhow::bail!("{flag} and --vary {} set the same thing: drop one", p.key);
        }
    }
    let document: toml_edit::DocumentMut = source
        .text
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: not valid TOML: {e}", source.path.display()))?;
    let grid = vary::grid(parameters).map_err(anyhow::Error::msg)?;
    let mut points = Vec::with_capacity(grid.len());
    for indices in grid {
        let mut edited = document.clone();
        let mut assignments = Vec::new();
        for (parameter, &v) in parameters.iter().zip(&indices) {
            let value = &parameter.values[v];
            apply::apply(&mut edited, &parameter.key, &parameter.path, value)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("cannot vary {}", parameter.key))?;
            assignments.push(format!("{} = {}", parameter.key, value.toml()));
        }
        let point_source = Source {
            path: source.path.clone(),
            text: edited.to_string(),
        };
        let plan = plan_from_source(&point_source, overrides)
            .with_context(|| format!("with {}", assignments.join(", ")))?;
        points.push(PointPlan { indices, plan });
    }
    Ok(points)
}

/// Runs every point's runs in one pool of `jobs` threads and builds the sweep. `progress` hears
/// (position in the flattened run list, simulated time).
pub fn run_points(
    profile: &Profile,
    parameters: Vec<Parameter>,
    metrics: Vec<String>,
    points: &[PointPlan],
    jobs: usize,
    progress: &mut dyn FnMut(usize, Duration),
) -> anyhow::Result<Sweep> {
    let specs: Vec<Vec<RunSpec>> = points.iter().map(|p| p.plan.runs()).collect();
    let flat: Vec<(&Plan, RunSpec)> = points
        .iter()
        .zip(&specs)
        .flat_map(|(p, s)| s.iter().map(move |spec| (&p.plan, spec.clone())))
        .collect();
    let mut metrics_flat = runner::run_each(&flat, jobs, progress)?.into_iter();
    let results = points
        .iter()
        .zip(&specs)
        .map(|(point, specs)| {
            let metrics: Vec<RunMetrics> = metrics_flat.by_ref().take(specs.len()).collect();
            let report = Report::new(point.plan.clone(), specs, metrics);
            Point {
                indices: point.indices.clone(),
                runs: report.runs,
            }
        })
        .collect();
    Ok(build(profile, parameters, metrics, points, results))
}

/// The sweep from its results, with crossovers found.
pub fn build(
    profile: &Profile,
    parameters: Vec<Parameter>,
    metrics: Vec<String>,
    plans: &[PointPlan],
    points: Vec<Point>,
) -> Sweep {
    let first = plans.first().map(|p| &p.plan);
    let mut sweep = Sweep {
        profile: profile.name.clone(),
        description: profile.description.clone(),
        seed: first.map_or(0, |p| p.seed),
        seeds: first.map_or(1, |p| p.seeds),
        clients: first.map_or(0, |p| p.clients),
        duration: first.map_or(Duration::ZERO, |p| p.duration),
        parameters,
        metrics,
        points,
        crossovers: Vec::new(),
        unaffected: unaffected(plans),
    };
    sweep.find_crossovers();
    sweep
}

/// Which `scenario…` parameters leave which scenarios unchanged: parameter `p` changes some scenario
/// between grid points that differ in `p` alone, but never scenario `s`. (A parameter that changes no
/// scenario at all, `sse.heartbeat`, applies to every one.)
fn unaffected(plans: &[PointPlan]) -> Vec<(usize, String)> {
    let Some(first) = plans.first() else {
        return Vec::new();
    };
    // Pairs of grid points differing in parameter `p` only.
    let pairs = |p: usize| {
        plans.iter().flat_map(move |a| {
            plans.iter().filter_map(move |b| {
                let only_p = a
                    .indices
                    .iter()
                    .zip(&b.indices)
                    .enumerate()
                    .all(|(i, (x, y))| (i == p) != (x == y));
                only_p.then_some((a, b))
            })
        })
    };
    let mut found = Vec::new();
    for p in 0..first.indices.len() {
        if !pairs(p).any(|(a, b)| a.plan.scenarios != b.plan.scenarios) {
            continue;
        }
        for (s, scenario) in first.plan.scenarios.iter().enumerate() {
            if !pairs(p).any(|(a, b)| a.plan.scenarios.get(s) != b.plan.scenarios.get(s)) {
                found.push((p, scenario.name.clone()));
            }
        }
    }
    found
}

/// The default sweep folder: `reports/<name>-sweep/`.
pub fn default_dir(name: &str) -> PathBuf {
    Path::new("reports").join(format!("{name}-sweep"))
}

/// `rtsim sweep`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The profile to sweep (TOML).
    pub profile: std::path::PathBuf,
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
    pub out: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub run: crate::simulate::RunOptions,
    /// Print sweep.json on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The `sweep` subcommand.
pub fn run_cli(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let overrides = args.run.overrides();
    let metrics = check_metrics(&args.metric)?;
    let source = Source::read(&args.profile)?;
    let profile: Profile = source.parse()?;
    let points = plan_points(&source, &args.vary, &overrides)?;
    let jobs = args.run.jobs();
    anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_dir(&profile.name));
    // Before the first run: a bad --out costs milliseconds, not the whole sweep.
    crate::report::folder::check(&dir)?;

    let mut names = Vec::new();
    for (n, point) in points.iter().enumerate() {
        let values: Vec<String> = args
            .vary
            .iter()
            .zip(&point.indices)
            .map(|(p, &v)| format!("{}={}", p.key, p.values[v]))
            .collect();
        for spec in point.plan.runs() {
            names.push(format!(
                "point {}/{} ({}) · {} × {}",
                n + 1,
                points.len(),
                values.join(" "),
                point.plan.scenarios[spec.scenario].name,
                spec.transport
            ));
        }
    }
    let longest = points
        .iter()
        .map(|p| p.plan.duration)
        .max()
        .unwrap_or_default();
    let visible = !args.quiet && std::io::stderr().is_terminal();
    let colour = crate::progress::colour_allowed(std::env::var_os("NO_COLOR").as_deref());
    let mut progress = crate::progress::Progress::new(visible, colour, names, longest);
    let sweep = run_points(
        &profile,
        args.vary.clone(),
        metrics,
        &points,
        jobs,
        &mut |i, at| progress.update(i, at),
    )?;
    drop(progress);

    let files = export::files(&sweep)?;
    crate::report::write_atomically(&dir, &files)
        .with_context(|| format!("while writing the sweep of `{}`", sweep.profile))?;
    if args.json {
        print!("{}", export::sweep_json(&sweep)?);
    } else {
        print!("{}", export::terminal_summary(&sweep));
        println!("Sweep written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            path: "p.toml".into(),
            text: text.to_string(),
        }
    }

    const PROFILE: &str =
        "name = \"t\"\nduration = \"30s\"\nclients = 2\ntransports = [\"polling\", \"sse\"]\n";

    fn params(args: &[&str]) -> Vec<Parameter> {
        args.iter().map(|a| vary::parse_vary(a).unwrap()).collect()
    }

    #[test]
    fn every_grid_point_is_validated_with_its_values_named() {
        let points = plan_points(
            &source(PROFILE),
            &params(&["polling.interval=1s,2s", "clients=1..3:1"]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(points.len(), 6);
        assert_eq!(points[4].indices, [1, 1]);
        assert_eq!(points[4].plan.settings.polling_interval.as_secs(), 2);
        assert_eq!(points[4].plan.clients, 2);

        let e = plan_points(
            &source(PROFILE),
            &params(&["sse.heartbeat=10s,40s"]),
            &Overrides::default(),
        )
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("with sse.heartbeat = \"40s\""), "{text}");
        assert!(text.contains("key `sse.heartbeat`"), "{text}");

        let e = plan_points(
            &source(PROFILE),
            &params(&["sse.heartbeet=10s"]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown field `heartbeet`"),
            "{e:#}"
        );
    }

    #[test]
    fn overrides_that_clash_with_a_varied_key_are_refused() {
        let overrides = Overrides {
            clients: Some(3),
            ..Overrides::default()
        };
        let e = plan_points(&source(PROFILE), &params(&["clients=1,2"]), &overrides).unwrap_err();
        assert!(
            e.to_string().contains("--clients and --vary clients"),
            "{e}"
        );
        let e = plan_points(
            &source(PROFILE),
            &params(&["clients=1,2", "clients=3"]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("varied twice"), "{e}");
    }

    #[test]
    fn metrics_are_dotted_numeric_fields() {
        let names = metric_names();
        for m in DEFAULT_METRICS {
            assert!(names.iter().any(|n| n == m), "{m} in {names:?}");
        }
        assert!(names.iter().any(|n| n == "time_to_detect_ms.p95"));
        assert!(!names.iter().any(|n| n == "scenario" || n == "latency_ms"));
        assert_eq!(check_metrics(&[]).unwrap().len(), 4);
        let e = check_metrics(&["latency_ms.p42".into()]).unwrap_err();
        assert!(
            e.to_string().contains("unknown metric `latency_ms.p42`"),
            "{e}"
        );
    }

    pub(crate) fn fake_sweep() -> Sweep {
        // Polling's request rate falls as 1/interval; SSE's stays at 2 requests/s.
        let parameters = params(&["polling.interval=1s,2s,5s,10s"]);
        let points = (0..4)
            .map(|i| {
                let interval = [1.0, 2.0, 5.0, 10.0][i];
                let run = |transport, rps: f64| RunResult {
                    scenario: "baseline".into(),
                    transport,
                    seed: 1,
                    metrics: RunMetrics {
                        requests_per_second: rps,
                        ..RunMetrics::default()
                    },
                    seeds: None,
                    ci95: None,
                };
                Point {
                    indices: vec![i],
                    runs: vec![
                        run(TransportKind::Polling, 10.0 / interval),
                        run(TransportKind::Sse, 2.0),
                    ],
                }
            })
            .collect();
        let profile: Profile = source(PROFILE).parse().unwrap();
        build(
            &profile,
            parameters,
            vec!["requests_per_second".into(), "lost".into()],
            &[],
            points,
        )
    }

    #[test]
    fn crossovers_are_found_and_phrased() {
        let sweep = fake_sweep();
        assert_eq!(sweep.crossovers.len(), 1, "{:?}", sweep.crossovers);
        let c = &sweep.crossovers[0];
        assert_eq!(c.transports, [TransportKind::Polling, TransportKind::Sse]);
        assert!((c.meeting.at - 5.0).abs() < 1e-9);
        assert_eq!(
            c.text,
            "Short polling matches SSE's requests_per_second at polling.interval = 5 s: higher for \
             Short polling below that, for SSE above."
        );
    }

    #[test]
    fn series_follow_the_axis_order() {
        let mut sweep = fake_sweep();
        sweep.parameters[0] = vary::parse_vary("polling.interval=1s,2s,10s,5s").unwrap();
        let axis = sweep.axis();
        assert_eq!(axis.order, [0, 1, 3, 2]);
        assert_eq!(axis.xs, [1.0, 2.0, 5.0, 10.0]);
        let panel = &sweep.panels()[0];
        let series = sweep.series(panel, "requests_per_second");
        assert_eq!(
            series[0].values,
            [Some(10.0), Some(5.0), Some(1.0), Some(2.0)]
        );
    }
}
