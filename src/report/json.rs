//! `summary.json`: the machine-readable summary. Its field names are a contract with users' scripts.

use serde::Serialize;

use super::{Exporter, Report, ReportFile, RunResult};

#[derive(Serialize)]
struct Summary<'a> {
    profile: &'a str,
    description: &'a str,
    seed: u64,
    duration_s: f64,
    clients: u32,
    rtsim_version: &'static str,
    runs: &'a [RunResult],
    /// The requirements as evaluated; `assumed` lists the keys the profile left out and how each
    /// was chosen.
    requirements: &'a crate::scenario::Requirements,
    /// The decision: `transport`, `candidate`, `confirmed`, `checks`, `reasons`.
    verdict: &'a crate::decision::Verdict,
}

/// The summary as JSON text (pretty, stable field order, trailing newline).
pub fn summary_json(report: &Report) -> anyhow::Result<String> {
    let summary = Summary {
        profile: &report.plan.name,
        description: &report.plan.description,
        seed: report.plan.seed,
        duration_s: report.plan.duration.as_secs_f64(),
        clients: report.plan.clients,
        rtsim_version: env!("CARGO_PKG_VERSION"),
        runs: &report.runs,
        requirements: &report.plan.requirements,
        verdict: &report.verdict,
    };
    let mut text = serde_json::to_string_pretty(&summary)?;
    text.push('\n');
    Ok(text)
}

/// `summary.json`.
pub struct SummaryJson;

impl Exporter for SummaryJson {
    fn name(&self) -> &'static str {
        "JSON summary"
    }

    fn render(&self, report: &Report) -> anyhow::Result<Vec<ReportFile>> {
        Ok(vec![(
            "summary.json".into(),
            summary_json(report)?.into_bytes(),
        )])
    }
}
