//! Reports: the results of all runs of a plan, and the files and tables made from them.
//!
//! Building a report is pure (results in, bytes out); writing it is the only I/O, and it is atomic: the
//! report folder is built beside its final place and renamed over it, so a failed run leaves the previous
//! report whole.
//!
//! One [`Exporter`] per format, one file each: [`json`] (`summary.json`), [`csv`] (`runs.csv` and the
//! time series), [`charts`] (SVG and PNG), [`html`] (`index.html`), [`markdown`] (`report.md`). The
//! terminal [`table`] and the "what this means" sentences ([`insights`]) are pure text builders the
//! exporters share. No exporter touches the file system, the clock or the terminal.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::metrics::RunMetrics;
use crate::scenario::{Plan, RunSpec};
use crate::transport::TransportKind;

pub mod charts;
pub mod csv;
#[cfg(test)]
pub(crate) mod fixture;
pub mod folder;
pub mod fonts;
pub mod html;
pub mod insights;
pub mod json;
pub mod markdown;
pub mod table;

/// The outcome of one run, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// The scenario's name.
    pub scenario: String,
    /// The transport run.
    pub transport: TransportKind,
    /// The seed this run used (the first seed, when the run was repeated).
    pub seed: u64,
    /// What the run measured (the mean over seeds, when the run was repeated).
    #[serde(flatten)]
    pub metrics: RunMetrics,
    /// When the run was repeated with several seeds: the seeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Vec<u64>>,
    /// When the run was repeated: a 95 % confidence interval `[low, high]` for every metric, in the
    /// metrics' own shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<serde_json::Value>,
}

/// Everything a report shows.
#[derive(Clone, Debug)]
pub struct Report {
    /// The plan that was run.
    pub plan: Plan,
    /// One result per scenario × transport, in the plan's order (scenario-major); the mean over seeds
    /// when runs were repeated.
    pub runs: Vec<RunResult>,
    /// Every single run, one per seed (the same as `runs` with one seed).
    pub seed_runs: Vec<RunResult>,
    /// The decision made from `runs` against the plan's requirements.
    pub verdict: crate::decision::Verdict,
}

impl Report {
    /// Pairs each run of `specs` with its metrics; repeated runs (several seeds) are averaged.
    pub fn new(plan: Plan, specs: &[RunSpec], metrics: Vec<RunMetrics>) -> Self {
        let seed_runs: Vec<RunResult> = specs
            .iter()
            .zip(metrics)
            .map(|(spec, metrics)| RunResult {
                scenario: plan.scenarios[spec.scenario].name.clone(),
                transport: spec.transport,
                seed: spec.seed,
                metrics,
                seeds: None,
                ci95: None,
            })
            .collect();
        let runs = if plan.seeds <= 1 {
            seed_runs.clone()
        } else {
            seed_runs
                .chunks(plan.seeds as usize)
                .map(|repeats| {
                    let all: Vec<&RunMetrics> = repeats.iter().map(|r| &r.metrics).collect();
                    let (mean, interval) = crate::stats::mean_metrics(&all);
                    RunResult {
                        scenario: repeats[0].scenario.clone(),
                        transport: repeats[0].transport,
                        seed: repeats[0].seed,
                        metrics: mean,
                        seeds: Some(repeats.iter().map(|r| r.seed).collect()),
                        ci95: Some(interval),
                    }
                })
                .collect()
        };
        let verdict = crate::decision::decide(&plan, &measured(&runs));
        Self {
            plan,
            runs,
            seed_runs,
            verdict,
        }
    }

    /// The scenarios in plan order, each with its runs in transport order.
    pub fn by_scenario(&self) -> Vec<(&crate::scenario::Scenario, Vec<&RunResult>)> {
        self.plan
            .scenarios
            .iter()
            .map(|s| {
                (
                    s,
                    self.runs.iter().filter(|r| r.scenario == s.name).collect(),
                )
            })
            .collect()
    }

    /// The transports that were run, in the order tables and charts show them.
    pub fn transports(&self) -> Vec<TransportKind> {
        TransportKind::ALL
            .into_iter()
            .filter(|t| self.runs.iter().any(|r| r.transport == *t))
            .collect()
    }
}

/// The runs as the decision reads them.
pub fn measured(runs: &[RunResult]) -> Vec<crate::decision::verdict::Measured<'_>> {
    runs.iter()
        .map(|r| crate::decision::verdict::Measured {
            scenario: &r.scenario,
            transport: r.transport,
            metrics: &r.metrics,
            ci95: r.ci95.as_ref(),
        })
        .collect()
}

/// A transport's short name in reports ("Short polling", "SSE").
pub fn label(transport: TransportKind) -> &'static str {
    crate::decision::verdict::short(transport)
}

/// The profile in brief, as (what, value) lines for the report page and report.md.
pub fn brief(plan: &Plan) -> Vec<(&'static str, String)> {
    use crate::duration::format;
    let w = &plan.workload;
    let mut lines = vec![
        ("Simulated time", format(plan.duration)),
        ("Clients", plan.clients.to_string()),
        (
            "Workload",
            format!(
                "{} of {}, {}",
                insights::counted(w.events_per_second, "event/s", "events/s"),
                insights::counted(w.event_bytes as f64, "byte", "bytes"),
                match w.arrival {
                    crate::profile::Arrival::Poisson => "random arrivals (Poisson)",
                    crate::profile::Arrival::Uniform => "evenly spaced",
                }
            ),
        ),
        (
            "Network",
            format!(
                "{} latency ± {} jitter",
                format(plan.network.latency),
                format(plan.network.jitter)
            ),
        ),
        (
            "Transports",
            plan.transports
                .iter()
                .map(|t| label(*t))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    if let Some(population) = plan.population {
        lines.push((
            "Population",
            format!(
                "{population} real clients, {} simulated: server-side figures scaled ×{}",
                plan.clients,
                insights::fmt_num(crate::decision::verdict::scale(plan))
            ),
        ));
    }
    if w.upstream_per_minute > 0.0 {
        lines.push((
            "Upstream",
            format!(
                "{} per client of {}",
                insights::counted(w.upstream_per_minute, "message/min", "messages/min"),
                insights::counted(w.upstream_bytes as f64, "byte", "bytes")
            ),
        ));
        if w.upstream_acks {
            lines.push((
                "Upstream acks",
                "on: an outbox keeps each message until the server acknowledges it".to_string(),
            ));
        }
    }
    lines
}

/// The command that reproduces this report, byte for byte, from the same profile file: the profile
/// as it was named (folder included) and every setting a command-line option can change.
pub fn reproduce_command(plan: &Plan) -> String {
    let transports: Vec<&str> = plan.transports.iter().map(|t| t.name()).collect();
    let path = plan.profile_path.to_string_lossy();
    let path = if path.is_empty() {
        format!("{}.toml", plan.name)
    } else if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        path.into_owned()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    };
    let mut command = format!(
        "rtsim simulate {path} --seed {} --transports {} --clients {} --duration {}",
        plan.seed,
        transports.join(","),
        plan.clients,
        crate::duration::format(plan.duration)
    );
    if plan.seeds > 1 {
        command.push_str(&format!(" --seeds {}", plan.seeds));
    }
    command
}

/// A file of a report: its path inside the report folder (`/`-separated) and its bytes.
pub type ReportFile = (String, Vec<u8>);

/// One output format made from a report; it may produce several files.
pub trait Exporter {
    /// What the format is, for error messages (`"charts"`).
    fn name(&self) -> &'static str;
    /// The format's files, in a fixed order.
    fn render(&self, report: &Report) -> anyhow::Result<Vec<ReportFile>>;
}

/// Every format a report folder holds.
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::SummaryJson),
        Box::new(csv::CsvExport),
        Box::new(charts::ChartExport),
        Box::new(html::HtmlPage),
        Box::new(markdown::MarkdownReport),
    ]
}

/// Writes every exporter's files into `dir`, replacing what was there only once all are written.
pub fn write_report(dir: &Path, report: &Report) -> anyhow::Result<()> {
    write_report_with(dir, report, &exporters())
}

/// Renders `exporters` and writes their files into `dir`; if any fails, `dir` is left as it was.
pub fn write_report_with(
    dir: &Path,
    report: &Report,
    exporters: &[Box<dyn Exporter>],
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for exporter in exporters {
        let rendered = exporter
            .render(report)
            .with_context(|| format!("cannot render the {}", exporter.name()))?;
        files.extend(rendered);
    }
    write_atomically(dir, &files)
}

/// Writes `files` into a fresh folder beside `dir`, then swaps it into place (see [`folder`]).
pub fn write_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    folder::write_atomically(dir, files)
}

/// The default report folder for a plan: `reports/<name>/`.
pub fn default_dir(plan: &Plan) -> PathBuf {
    Path::new("reports").join(&plan.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reproduce_keeps_the_profiles_folder_and_the_overrides() {
        let mut plan = fixture::plan();
        plan.profile_path = PathBuf::from("profiles/quickstart.toml");
        plan.seeds = 3;
        assert_eq!(
            reproduce_command(&plan),
            "rtsim simulate profiles/quickstart.toml --seed 7 --transports \
             polling,long-polling,sse,websocket --clients 10 --duration 1m --seeds 3"
        );
        plan.profile_path = PathBuf::from("my profiles/it's.toml");
        assert!(reproduce_command(&plan).contains("'my profiles/it'\\''s.toml'"));
    }

    #[test]
    fn atomic_write_replaces_the_folder_whole() {
        let root = std::env::temp_dir().join(format!("rtsim-report-test-{}", std::process::id()));
        let dir = root.join("r");
        write_atomically(&dir, &[("a.txt".into(), b"one".to_vec())]).unwrap();
        write_atomically(&dir, &[("b.txt".into(), b"two".to_vec())]).unwrap();
        assert!(
            !dir.join("a.txt").exists(),
            "the old report is replaced, not merged"
        );
        assert_eq!(fs::read(dir.join("b.txt")).unwrap(), b"two");
        assert!(!root.join(".r.partial").exists() && !root.join(".r.old").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    struct Failing;

    impl Exporter for Failing {
        fn name(&self) -> &'static str {
            "failing format"
        }

        fn render(&self, _: &Report) -> anyhow::Result<Vec<ReportFile>> {
            anyhow::bail!("out of ink")
        }
    }

    #[test]
    fn a_failing_exporter_keeps_the_previous_report() {
        let root = std::env::temp_dir().join(format!("rtsim-report-fail-{}", std::process::id()));
        let dir = root.join("r");
        let report = fixture::report();
        write_report_with(&dir, &report, &[Box::new(json::SummaryJson)]).unwrap();
        let before = fs::read(dir.join("summary.json")).unwrap();
        let exporters: Vec<Box<dyn Exporter>> = vec![Box::new(csv::CsvExport), Box::new(Failing)];
        let err = write_report_with(&dir, &report, &exporters).unwrap_err();
        assert_eq!(err.to_string(), "cannot render the failing format");
        assert_eq!(fs::read(dir.join("summary.json")).unwrap(), before);
        assert!(
            !dir.join("runs.csv").exists(),
            "nothing of the failed report is written"
        );
        assert!(!root.join(".r.partial").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn every_exporter_renders_the_fixture_into_distinct_files() {
        let report = fixture::report();
        let mut names: Vec<String> = exporters()
            .iter()
            .flat_map(|e| e.render(&report).unwrap())
            .map(|(name, bytes)| {
                assert!(!bytes.is_empty(), "{name} is empty");
                name
            })
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "two exporters write the same file");
        assert!(
            names.contains(&"index.html".to_string())
                && names.contains(&"charts/cost.png".to_string())
        );
    }
}
