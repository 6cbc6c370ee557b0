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

/// A section of the fleet's tables (replicas, restarts) as Markdown.
fn fleet_section(section: &super::table::FleetTable) -> String {
    let mut md = format!("## {}\n\n{}\n\n", section.title, cell(&section.intro));
    let _ = writeln!(md, "| {} |", section.header.join(" | "));
    let align: Vec<&str> = (0..section.header.len())
        .map(|i| {
            if i >= section.first_numeric {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    let _ = writeln!(md, "| {} |", align.join(" | "));
    for row in &section.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md.push('\n');
    md
}

/// The Markdown report.
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

    for section in super::table::fleet_tables(report) {
        md.push_str(&fleet_section(&section));
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
