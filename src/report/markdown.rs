//! `report.md`: the same findings as the report page in Markdown, for pasting into a design document —
//! the profile in brief, "what this means", the comparison table and the PNG charts (relative links).
//!
//! Pure text building; table cells are escaped so a `|` in a name cannot break the table.

use std::fmt::Write as _;

use super::charts::Chart;
use super::insights::insights;
use super::table::{
    comparison_rows, matrix_legend, matrix_rows, requirements_text, FIRST_NUMERIC_COLUMN,
};
use super::{brief, reproduce_command, Exporter, Report, ReportFile};

/// Escapes text for a Markdown table cell or a list item.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// The Markdown report.
/// `## Replicas`: each replica's load behind the balancer, per run; `None` without replicas.
fn replicas_section(report: &Report) -> Option<String> {
    let mut md = String::new();
    for run in &report.runs {
        let Some(replicas) = &run.metrics.per_replica else {
            continue;
        };
        if md.is_empty() {
            md.push_str(
                "## Replicas\n\nBehind the load balancer: each replica's connections (open ones counted \
                 on the balancer's connections to it), requests and the events published on it. \
                 Imbalance: open connections on the busiest replica over the mean, at the end of \
                 the run.\n\n| scenario | transport | replica | connections | requests | events \
                 published | open peak | open mean | open at end |\n| --- | --- | ---: | ---: | ---: \
                 | ---: | ---: | ---: | ---: |\n",
            );
        }
        for r in replicas {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&run.scenario),
                cell(super::label(run.transport)),
                r.replica,
                r.connections,
                r.requests,
                r.events_published,
                r.open_connections_peak,
                super::insights::fmt_num(r.open_connections_mean),
                r.open_connections_end
            );
        }
        let imbalance = match run.metrics.imbalance.flatten() {
            Some(x) => super::insights::fmt_num(x),
            None => "—".to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | all | | | | {} | {} | imbalance {imbalance} |",
            cell(&run.scenario),
            cell(super::label(run.transport)),
            run.metrics
                .open_connections_peak
                .map_or("—".to_string(), |p| p.to_string()),
            run.metrics
                .open_connections_mean
                .map_or("—".to_string(), super::insights::fmt_num),
        );
    }
    (!md.is_empty()).then(|| md + "\n")
}

/// Each replica restart's figures (a rolling deploy's phases, a `[scenario.restart]`), when a run
/// had any: what it cost round that restart, and how long until every client was served again.
fn restarts_section(report: &Report) -> Option<String> {
    let mut md = String::new();
    let fmt = super::insights::fmt_num;
    for run in &report.runs {
        let Some(restarts) = &run.metrics.restarts else {
            continue;
        };
        if md.is_empty() {
            md.push_str(&format!(
                "## Restarts

Each replica restart's window runs from its drain (its stop when it does \
                 not drain) until it is back up plus {} s, cut where the next restart's begins. \
                 Reconnects: session connect attempts by clients that had a connection (peak: in one \
                 simulated second). Lost: owed deliveries of events published in the window that \
                 never arrived. Served again: from the drain until every client had received an \
                 event published after it (its floor is the wait for the next event). Open at stop: \
                 connections still open when the replica stopped, cut.\n\n| scenario | transport \
                 | replica | drain → stop → up (s) | open at drain | open at stop | reconnects | \
                 peak /s | lost | duplicates | slowest delivery | served again |\n| --- | --- | --- \
                 | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
                crate::metrics::RESTART_SETTLE.as_secs()
            ));
        }
        let count = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
        for r in restarts {
            let served = match r.served_again_s {
                Some(s) => format!("{} s", fmt(s)),
                None => format!("{} never", r.unserved),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} → {} → {} | {} | {} | {} | {} | {} | {} | {} | {served} |",
                cell(&run.scenario),
                cell(super::label(run.transport)),
                r.replica
                    .map_or("all (restart)".to_string(), |k| format!("server-{k}")),
                fmt(r.drain_at_s),
                fmt(r.stop_at_s),
                fmt(r.up_at_s),
                count(r.open_at_drain),
                count(r.open_at_stop),
                r.reconnect_attempts,
                r.peak_reconnects_per_second,
                r.lost,
                r.duplicates,
                r.max_latency_ms
                    .map_or("no deliveries".to_string(), |ms| format!("{} ms", fmt(ms))),
            );
        }
        if let Some(peak) = run.metrics.deploy_peak_reconnects_per_second {
            let served = match run.metrics.served_again_s {
                Some(Some(s)) => format!("{} s", fmt(s)),
                _ => "not every client".to_string(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | whole deploy | | | | | {peak} | | | | {served} |",
                cell(&run.scenario),
                cell(super::label(run.transport)),
            );
        }
    }
    (!md.is_empty()).then(|| md + "\n")
}

pub fn report_md(report: &Report) -> String {
    let plan = &report.plan;
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", cell(&plan.name));
    if !plan.description.is_empty() {
        let _ = writeln!(md, "{}\n", cell(&plan.description));
    }
    // The decision first: verdict, requirements, matrix.
    let v = &report.verdict;
    let _ = writeln!(md, "## Verdict: {}\n", cell(super::label(v.transport)));
    let _ = writeln!(md, "**{}**\n", cell(&v.headline));
    for reason in &v.reasons {
        let _ = writeln!(md, "- {}", cell(reason));
    }
    let _ = writeln!(md, "\n{}\n", cell(&requirements_text(report)));
    for a in &plan.requirements.assumed {
        let _ = writeln!(md, "- Assumed `{}`: {}", a.key, cell(&a.how));
    }
    if !plan.requirements.assumed.is_empty() {
        md.push('\n');
    }
    let (header, rows) = matrix_rows(report);
    let _ = writeln!(
        md,
        "| {} |",
        header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|{}", " --- |".repeat(header.len()));
    for row in rows {
        let _ = writeln!(
            md,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    let _ = writeln!(md, "\n{}\n", cell(&matrix_legend(report)));

    md.push_str("## The profile\n\n");
    for (what, value) in brief(plan) {
        let _ = writeln!(md, "- **{what}:** {}", cell(&value));
    }
    md.push('\n');

    md.push_str("## What this means\n\n");
    for insight in insights(report) {
        let _ = writeln!(
            md,
            "### {}\n\n{}\n",
            cell(&insight.scenario),
            cell(&insight.summary())
        );
        for sentence in &insight.sentences {
            let _ = writeln!(md, "- {}", cell(sentence));
        }
        md.push('\n');
    }

    md.push_str("## Comparison\n\n");
    let (header, rows) = comparison_rows(report);
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let rule: Vec<&str> = (0..header.len())
        .map(|i| {
            if i >= FIRST_NUMERIC_COLUMN {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    let _ = writeln!(md, "| {} |", rule.join(" | "));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md.push('\n');

    if let Some((header, rows)) = super::table::scaled_rows(report) {
        let _ = writeln!(
            md,
            "## Scaled to {} clients\n\n{} clients were simulated; the server-side figures below are \
             scaled ×{} to the population the profile names (`population`). Client-side figures \
             (latency, losses) are the simulated clients' own.\n",
            plan.population.unwrap_or_default(),
            plan.clients,
            super::insights::fmt_num(crate::decision::verdict::scale(plan))
        );
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", " ---: |".repeat(header.len()));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        md.push('\n');
    }

    if let Some(section) = replicas_section(report) {
        md.push_str(&section);
    }
    if let Some(section) = restarts_section(report) {
        md.push_str(&section);
    }

    md.push_str("## Charts\n\n");
    for chart in Chart::for_report(report) {
        let _ = writeln!(
            md,
            "![{}](charts/{}.png)\n\n*{}*\n",
            chart.title(),
            chart.stem(),
            chart.caption()
        );
    }

    md.push_str("## Reproduce\n\n");
    let _ = writeln!(
        md,
        "Seed {}, rtsim {}. The same profile, seed and version give the same report:\n\n```sh\n{}\n```",
        plan.seed,
        env!("CARGO_PKG_VERSION"),
        reproduce_command(plan)
    );
    md
}

/// `report.md`.
pub struct MarkdownReport;

impl Exporter for MarkdownReport {
    fn name(&self) -> &'static str {
        "Markdown report"
    }

    fn render(&self, report: &Report) -> anyhow::Result<Vec<ReportFile>> {
        Ok(vec![("report.md".into(), report_md(report).into_bytes())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn the_markdown_has_the_table_and_every_png() {
        let md = report_md(&fixture::report());
        assert!(md.contains("| scenario | transport | delivered |"));
        assert!(md.contains("| ---: |"));
        assert_eq!(
            md.lines()
                .filter(|l| l.starts_with("| office") || l.starts_with("| mobile"))
                .count(),
            2 + 8,
            "the matrix's two scenarios and the comparison's eight runs"
        );
        for chart in Chart::ALL {
            assert!(md.contains(&format!("(charts/{}.png)", chart.stem())));
        }
        assert!(md.contains("--seed 7"));
        assert!(md.find("## Verdict: ").unwrap() < md.find("## What this means").unwrap());
        assert!(
            md.contains("| mobile | ✗ latency | ✓ | ✗ lost | ✓ |"),
            "{md}"
        );
    }

    #[test]
    fn pipes_in_names_do_not_break_the_table() {
        assert_eq!(cell("a|b"), "a\\|b");
    }
}
