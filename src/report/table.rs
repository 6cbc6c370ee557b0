//! What the terminal shows, and the tables the report page and report.md share.
//!
//! The terminal leads with the decision: the verdict in a few lines, the scenario × transport matrix
//! of ✓/✗ with the failing requirement, then a compact metrics table chosen for the decision, one
//! block per scenario. Everything is laid out for a given width (down to 80 columns) without
//! breaking a number or a word: text wraps at spaces, tables drop their least important columns
//! rather than wrap a cell. `--wide` prints the full comparison table instead of the compact one.
//! Pure text building; the caller finds the width.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::insights::fmt_percent;
use super::{Report, RunResult};
use crate::decision::verdict::{fmt_value, latency_label, short_requirement, Check};

/// A number, or "—" when nothing was measured.
fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("—".to_string(), |v| format!("{v:.decimals$}"))
}

/// `delivered` of `expected` as a percentage that is never rounded up to 100 % while anything was lost.
pub fn delivered_cell(run: &RunResult) -> String {
    let m = &run.metrics;
    if m.expected == 0 {
        "—".to_string()
    } else {
        fmt_percent(m.delivered.min(m.expected), m.expected)
    }
}

/// With repeated seeds, a number with its 95 % interval's half-width: `12.5 ±0.4`.
fn with_interval(run: &RunResult, path: &[&str], value: Option<f64>, decimals: usize) -> String {
    let Some(value) = value else {
        return "—".to_string();
    };
    let half = run.ci95.as_ref().and_then(|ci| {
        let range = path.iter().try_fold(ci, |v, key| v.get(key))?;
        Some((range.get(1)?.as_f64()? - range.get(0)?.as_f64()?) / 2.0)
    });
    match half {
        Some(h) => format!("{value:.decimals$} ±{h:.decimals$}"),
        None => format!("{value:.decimals$}"),
    }
}

/// The full comparison's column headers and cells, one row per run; shared by `--wide`, the report
/// page and report.md. Runs repeated with several seeds show `mean ±half-width` of the 95 % interval.
pub fn comparison_rows(report: &Report) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "scenario",
        "transport",
        "delivered",
        "lost",
        "dup",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "req/s",
        "bytes/event",
        "conns",
        "reconn",
        "detect p50 ms",
        "offline s/client",
        "radio s/client",
        "upstream lost",
    ];
    let clients = report.plan.clients.max(1) as f64;
    let rows = report
        .runs
        .iter()
        .map(|run| {
            let m = &run.metrics;
            let detect = if m.detections == 0 {
                "—".to_string()
            } else {
                opt(m.time_to_detect_ms.p50, 0)
            };
            let upstream = if m.upstream_sent == 0 {
                "—".to_string()
            } else {
                format!("{} of {}", m.upstream_lost, m.upstream_sent)
            };
            vec![
                run.scenario.clone(),
                run.transport.name().to_string(),
                delivered_cell(run),
                with_interval(run, &["lost"], Some(m.lost as f64), 0),
                m.duplicates.to_string(),
                with_interval(run, &["latency_ms", "p50"], m.latency_ms.p50, 1),
                with_interval(run, &["latency_ms", "p95"], m.latency_ms.p95, 1),
                with_interval(run, &["latency_ms", "p99"], m.latency_ms.p99, 1),
                with_interval(
                    run,
                    &["requests_per_second"],
                    Some(m.requests_per_second),
                    1,
                ),
                opt(m.bytes_per_delivery, 0),
                m.connections_opened.to_string(),
                m.reconnects.to_string(),
                detect,
                format!("{:.1}", m.disconnected_s / clients),
                format!("{:.1}", m.radio_active_per_client_s),
                upstream,
            ]
        })
        .collect();
    (header, rows)
}

/// Columns from this one on hold numbers (right-aligned).
pub const FIRST_NUMERIC_COLUMN: usize = 2;

/// Renders the full comparison table (`--wide`; plain text, no colour codes).
pub fn comparison_table(report: &Report) -> String {
    let (header, rows) = comparison_rows(report);
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    for row in rows {
        table.add_row(row.into_iter().enumerate().map(|(i, c)| {
            let cell = Cell::new(c);
            if i >= FIRST_NUMERIC_COLUMN {
                cell.set_alignment(CellAlignment::Right)
            } else {
                cell
            }
        }));
    }
    table.to_string()
}

/// With a `population` larger than the simulated clients: the server-side figures scaled to it, one
/// row per run (scenario, transport, requests/s, bytes/s, peak open connections). `None` without a
/// population.
pub fn scaled_rows(report: &Report) -> Option<(Vec<&'static str>, Vec<Vec<String>>)> {
    report.plan.population?;
    let factor = crate::decision::verdict::scale(&report.plan);
    let seconds = report.plan.duration.as_secs_f64().max(1e-9);
    let header = vec![
        "scenario",
        "transport",
        "req/s (simulated)",
        "req/s (scaled)",
        "bytes/s (scaled)",
        "open conns peak (scaled)",
    ];
    let rows = report
        .runs
        .iter()
        .map(|run| {
            let m = &run.metrics;
            let bytes = (m.bytes_down + m.bytes_up) as f64 / seconds * factor;
            vec![
                run.scenario.clone(),
                run.transport.name().to_string(),
                format!("{:.1}", m.requests_per_second),
                format!("{:.0}", m.requests_per_second * factor),
                format!("{bytes:.0}"),
                // Absent only in results written before it was measured: never shown as zero.
                m.open_connections_peak
                    .map(|peak| format!("{:.0}", peak as f64 * factor))
                    .unwrap_or_else(|| "—".to_string()),
            ]
        })
        .collect();
    Some((header, rows))
}

// ---- the decision ---------------------------------------------------------------------------------

/// One of the fleet's tables (behind a balancer, or round restarts), as data for report.md and the
/// report page alike.
pub struct FleetTable {
    pub title: &'static str,
    /// What the columns mean.
    pub intro: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Columns from this one on are numbers (right-aligned).
    pub first_numeric: usize,
}

/// The fleet's tables, those that have rows: each replica's load, and each restart's figures.
pub fn fleet_tables(report: &Report) -> Vec<FleetTable> {
    [replica_table(report), restart_table(report)]
        .into_iter()
        .flatten()
        .collect()
}

/// Each replica's load behind the balancer, per run, with a total row; `None` without replicas.
fn replica_table(report: &Report) -> Option<FleetTable> {
    let fmt = super::insights::fmt_num;
    let mut rows = Vec::new();
    for run in &report.runs {
        let Some(replicas) = &run.metrics.per_replica else {
            continue;
        };
        for r in replicas {
            rows.push(vec![
                run.scenario.clone(),
                super::label(run.transport).to_string(),
                r.replica.to_string(),
                r.connections.to_string(),
                r.requests.to_string(),
                r.events_published.to_string(),
                r.open_connections_peak.to_string(),
                fmt(r.open_connections_mean),
                r.open_connections_end.to_string(),
            ]);
        }
        let imbalance = match run.metrics.imbalance.flatten() {
            Some(x) => fmt(x),
            None => "—".to_string(),
        };
        rows.push(vec![
            run.scenario.clone(),
            super::label(run.transport).to_string(),
            "all".to_string(),
            String::new(),
            String::new(),
            String::new(),
            run.metrics
                .open_connections_peak
                .map_or("—".to_string(), |p| p.to_string()),
            run.metrics
                .open_connections_mean
                .map_or("—".to_string(), fmt),
            format!("imbalance {imbalance}"),
        ]);
    }
    (!rows.is_empty()).then(|| FleetTable {
        title: "Replicas",
        intro: "Behind the load balancer: each replica's connections (open ones counted on the \
                balancer's connections to it), requests and the events published on it. Imbalance: \
                open connections on the busiest replica over the mean, at the end of the run."
            .to_string(),
        header: vec![
            "scenario",
            "transport",
            "replica",
            "connections",
            "requests",
            "events published",
            "open peak",
            "open mean",
            "open at end",
        ],
        rows,
        first_numeric: 2,
    })
}

/// Each replica restart's figures (a rolling deploy's phases, a `[scenario.restart]`), when a run
/// had any: what it cost round that restart, and how long until every client was served again.
fn restart_table(report: &Report) -> Option<FleetTable> {
    let fmt = super::insights::fmt_num;
    let count = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
    let mut rows = Vec::new();
    for run in &report.runs {
        let Some(restarts) = &run.metrics.restarts else {
            continue;
        };
        for r in restarts {
            let served = match r.served_again_s {
                Some(s) => format!("{} s", fmt(s)),
                None => format!("{} never", r.unserved),
            };
            rows.push(vec![
                run.scenario.clone(),
                super::label(run.transport).to_string(),
                r.replica
                    .map_or("all (restart)".to_string(), |k| format!("server-{k}")),
                format!(
                    "{} → {} → {}",
                    fmt(r.drain_at_s),
                    fmt(r.stop_at_s),
                    fmt(r.up_at_s)
                ),
                count(r.open_at_drain),
                count(r.open_at_stop),
                r.reconnect_attempts.to_string(),
                r.peak_reconnects_per_second.to_string(),
                r.lost.to_string(),
                r.duplicates.to_string(),
                r.max_latency_ms
                    .map_or("no deliveries".to_string(), |ms| format!("{} ms", fmt(ms))),
                served,
            ]);
        }
        if let Some(peak) = run.metrics.deploy_peak_reconnects_per_second {
            let served = match run.metrics.served_again_s {
                Some(Some(s)) => format!("{} s", fmt(s)),
                _ => "not every client".to_string(),
            };
            let mut row = vec![
                run.scenario.clone(),
                super::label(run.transport).to_string(),
                "whole deploy".to_string(),
            ];
            row.extend(std::iter::repeat_n(String::new(), 4));
            row.push(peak.to_string());
            row.extend(std::iter::repeat_n(String::new(), 3));
            row.push(served);
            rows.push(row);
        }
    }
    (!rows.is_empty()).then(|| FleetTable {
        title: "Restarts",
        intro: format!(
            "Each replica restart's window runs from its drain (its stop when it does not drain) \
             until it is back up plus {} s, cut where the next restart's begins. Reconnects: session \
             connect attempts by clients that had a connection (peak: in one simulated second). Lost: \
             owed deliveries of events published in the window that never arrived. Served again: \
             from the drain until every client had received an event published after it (its floor \
             is the wait for the next event). Open at stop: connections still open when the replica \
             stopped, cut.",
            crate::metrics::RESTART_SETTLE.as_secs()
        ),
        header: vec![
            "scenario",
            "transport",
            "replica",
            "drain → stop → up (s)",
            "open at drain",
            "open at stop",
            "reconnects",
            "peak /s",
            "lost",
            "duplicates",
            "slowest delivery",
            "served again",
        ],
        rows,
        first_numeric: 4,
    })
}

/// The verdict in a few lines for `width` columns: the headline, then what the candidate missed.
pub fn verdict_lines(report: &Report, width: usize, most: usize) -> Vec<String> {
    let v = &report.verdict;
    let mut lines = wrap(&format!("Verdict: {}", v.headline), width, "");
    let details: Vec<&String> = if v.confirmed {
        Vec::new()
    } else {
        v.reasons
            .iter()
            .filter(|r| r.starts_with("In ") || r.starts_with("Mitigation"))
            .collect()
    };
    let mut shown = 0;
    for reason in &details {
        let wrapped = wrap(&format!("- {reason}"), width, "  ");
        if lines.len() + wrapped.len() > most {
            break;
        }
        lines.extend(wrapped);
        shown += 1;
    }
    if shown < details.len() {
        let more = details.len() - shown;
        lines.extend(wrap(
            &format!(
                "- {more} more reason{} in report.md and summary.json.",
                if more == 1 { "" } else { "s" }
            ),
            width,
            "  ",
        ));
    }
    lines
}

/// The requirements as evaluated, in one paragraph, with the assumed ones said.
pub fn requirements_text(report: &Report) -> String {
    requirements_sentence(report, true)
}

/// The requirements as evaluated; `name_assumed`: with the sentence naming the assumed keys (the
/// report page leaves it out because it lists each assumption with its value just below).
pub fn requirements_sentence(report: &Report, name_assumed: bool) -> String {
    let plan = &report.plan;
    let r = &plan.requirements;
    let mut parts = vec![format!(
        "{} latency ≤ {}",
        latency_label(plan),
        fmt_value(
            crate::decision::verdict::LATENCY,
            Some(r.latency.as_secs_f64() * 1000.0)
        )
    )];
    let loss = |limit: f64, what: &str| {
        if limit == 0.0 {
            format!("no {what} lost")
        } else {
            format!(
                "{what} lost ≤ {}",
                fmt_value(crate::decision::verdict::MAX_LOST, Some(limit))
            )
        }
    };
    parts.push(loss(r.max_lost, "deliveries"));
    if plan.workload.upstream_per_minute > 0.0 {
        parts.push(loss(r.max_upstream_lost, "client messages"));
    }
    parts.extend(crate::decision::verdict::budget_phrases(r));
    parts.push(format!(
        "{}, {}",
        if r.bidirectional {
            "bidirectional"
        } else {
            "one-way"
        },
        if r.server_push {
            "server push"
        } else {
            "no server push"
        }
    ));
    let mut text = format!("Requirements: {}.", parts.join("; "));
    if name_assumed && !r.assumed.is_empty() {
        let keys: Vec<&str> = r.assumed.iter().map(|a| a.key).collect();
        text.push_str(&format!(
            " Assumed (not in [requirements]): {}.",
            keys.join(", ")
        ));
    }
    if let Some(population) = plan.population {
        text.push_str(&format!(
            " Scaled: {} simulated clients stand for {population}; requests/s is scaled ×{} in the \
             checks (bytes/s and open connections in the scaled table).",
            plan.clients,
            super::insights::fmt_num(crate::decision::verdict::scale(plan))
        ));
    }
    text
}

/// The matrix cell of one scenario × transport: `✓`, `✗ p95,lost`, `? lost` (inconclusive).
pub fn matrix_cell(checks: &[&Check]) -> String {
    if checks.is_empty() {
        return "—".to_string();
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.pass == Some(false))
        .map(|c| short_requirement(c.requirement))
        .collect();
    let unsure: Vec<&str> = checks
        .iter()
        .filter(|c| c.pass.is_none())
        .map(|c| short_requirement(c.requirement))
        .collect();
    if !failed.is_empty() {
        format!("✗ {}", failed.join(","))
    } else if !unsure.is_empty() {
        format!("? {}", unsure.join(","))
    } else {
        "✓".to_string()
    }
}

/// The scenario × transport matrix: header (scenario, then the transports) and one row per scenario.
pub fn matrix_rows(report: &Report) -> (Vec<String>, Vec<Vec<String>>) {
    let transports = report.transports();
    let mut header = vec!["scenario".to_string()];
    header.extend(transports.iter().map(|t| t.name().to_string()));
    let rows = report
        .plan
        .scenarios
        .iter()
        .map(|s| {
            let mut row = vec![s.name.clone()];
            for &t in &transports {
                let checks: Vec<&Check> = report.verdict.checks_of(&s.name, t).collect();
                row.push(matrix_cell(&checks));
            }
            row
        })
        .collect();
    (header, rows)
}

/// What the matrix's marks mean, for `report`'s requirements.
pub fn matrix_legend(report: &Report) -> String {
    let mut names = vec![format!("latency at {}", latency_label(&report.plan))];
    names.push("lost deliveries".into());
    if report.plan.workload.upstream_per_minute > 0.0 {
        names.push("up-lost client messages".into());
    }
    if report.plan.requirements.max_requests_per_second.is_some() {
        names.push("req/s request budget".into());
    }
    if report
        .plan
        .requirements
        .max_open_connections_per_server
        .is_some()
    {
        names.push("conns open connections per server".into());
    }
    if report.plan.requirements.max_reconnects_per_second.is_some() {
        names.push("storm reconnects/s during a deploy".into());
    }
    if report.plan.requirements.max_served_again.is_some() {
        names.push("recovery time until every client is served again".into());
    }
    format!(
        "✓ meets every requirement · ✗ misses the one named ({}) · ? inconclusive",
        names.join(", ")
    )
}

/// The compact table for one scenario: the columns the decision rests on.
pub fn compact_rows(report: &Report, runs: &[&RunResult]) -> (Vec<String>, Vec<Vec<String>>) {
    let pct = report.plan.requirements.latency_percentile;
    let upstream = report.plan.workload.upstream_per_minute > 0.0;
    let mut header: Vec<String> = vec![
        "transport".into(),
        "delivered".into(),
        "lost".into(),
        format!("p{pct} ms"),
    ];
    if upstream {
        header.push("up-lost".into());
    }
    header.extend(["req/s".to_string(), "B/event".to_string(), "ok".to_string()]);
    let rows = runs
        .iter()
        .map(|run| {
            let m = &run.metrics;
            let key = format!("p{pct}");
            let mut row = vec![
                run.transport.name().to_string(),
                delivered_cell(run),
                m.lost.to_string(),
                with_interval(run, &["latency_ms", &key], m.latency_ms.at(pct), 0),
            ];
            if upstream {
                row.push(if m.upstream_sent == 0 {
                    "—".to_string()
                } else {
                    m.upstream_lost.to_string()
                });
            }
            row.push(format!("{:.1}", m.requests_per_second));
            row.push(opt(m.bytes_per_delivery, 0));
            let checks: Vec<&Check> = report
                .verdict
                .checks_of(&run.scenario, run.transport)
                .collect();
            row.push(matrix_cell(&checks));
            row
        })
        .collect();
    (header, rows)
}

/// Everything the terminal shows after a run, for `width` columns; `wide` adds the full table.
pub fn terminal(report: &Report, width: usize, wide: bool) -> String {
    let width = width.max(40);
    let mut out = String::new();
    for line in verdict_lines(report, width, 4) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    for line in wrap(&requirements_text(report), width, "") {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    let (header, rows) = matrix_rows(report);
    // Every transport's column matters here: rather than drop one, list the cells.
    match fit_table_dropping(&header, &rows, usize::MAX, width, false) {
        Some(table) => out.push_str(&table),
        None => {
            // Too wide for the terminal (long scenario names): one wrapped line per scenario.
            for row in &rows {
                let cells: Vec<String> = header
                    .iter()
                    .zip(row)
                    .skip(1)
                    .map(|(t, cell)| format!("{t} {cell}"))
                    .collect();
                // Each "transport mark" stays whole on its line.
                let mut line = format!("{}:", row[0]);
                for (i, cell) in cells.iter().enumerate() {
                    let sep = if i == 0 { " " } else { " · " };
                    if cell_width(&line) + cell_width(sep) + cell_width(cell) > width {
                        out.push_str(&line);
                        out.push('\n');
                        line = format!("    {cell}");
                    } else {
                        line.push_str(sep);
                        line.push_str(cell);
                    }
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    for line in wrap(&matrix_legend(report), width, "") {
        out.push_str(&line);
        out.push('\n');
    }
    if wide {
        out.push('\n');
        out.push_str(&comparison_table(report));
        out.push('\n');
    } else {
        let mut shows_bytes = false;
        for (scenario, runs) in report.by_scenario() {
            if runs.is_empty() {
                continue;
            }
            out.push('\n');
            out.push_str(&format!("{}\n", scenario.name));
            let (header, rows) = compact_rows(report, &runs);
            if let Some(table) = fit_table(&header, &rows, 1, width) {
                shows_bytes |= table.contains("B/event");
                out.push_str(&table);
            }
        }
        // The key names only columns a table shows: a narrow terminal drops B/event first.
        let key = format!(
            "delivered: share of owed deliveries that arrived; lost: deliveries that never did; \
             {}—: nothing measured. --wide shows every column.",
            if shows_bytes {
                "B/event: bytes on the wire per delivered event; "
            } else {
                ""
            }
        );
        for line in wrap(&key, width, "") {
            out.push_str(&line);
            out.push('\n');
        }
    }
    let small = report
        .runs
        .first()
        .map(|r| r.metrics.published)
        .filter(|&p| p < crate::metrics::MIN_EVENTS_FOR_PERCENTILES);
    if let Some(published) = small {
        out.push('\n');
        for line in wrap(
            &format!("Warning: {}", super::insights::small_sample(published)),
            width,
            "",
        ) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

// ---- layout ---------------------------------------------------------------------------------------

/// Display width of a cell (every character here is one column wide: ASCII, `✓✗—±…`).
fn cell_width(text: &str) -> usize {
    text.chars().count()
}

/// A plain table whose cells never wrap: `│`-separated, right-aligned from column `numeric` on.
/// Drops trailing columns (keeping the last one, the ✓/✗ mark) until the table fits `width`; `None`
/// when not even the first two columns fit.
pub fn fit_table(
    header: &[String],
    rows: &[Vec<String>],
    numeric: usize,
    width: usize,
) -> Option<String> {
    fit_table_dropping(header, rows, numeric, width, true)
}

/// [`fit_table`], optionally without dropping columns (`None` when the whole table does not fit).
pub fn fit_table_dropping(
    header: &[String],
    rows: &[Vec<String>],
    numeric: usize,
    width: usize,
    drop: bool,
) -> Option<String> {
    let mut keep: Vec<usize> = (0..header.len()).collect();
    loop {
        let widths: Vec<usize> = keep
            .iter()
            .map(|&i| {
                rows.iter()
                    .map(|r| cell_width(&r[i]))
                    .chain([cell_width(&header[i])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let total = widths.iter().sum::<usize>() + 3 * widths.len() + 1;
        if total <= width {
            return Some(render(header, rows, &keep, &widths, numeric));
        }
        if keep.len() <= 2 || !drop {
            return None;
        }
        // Drop the last column but one: the mark in the last column is what the table is for.
        let last_but_one = keep.len() - 2;
        if last_but_one == 0 {
            return None;
        }
        keep.remove(last_but_one);
    }
}

fn render(
    header: &[String],
    rows: &[Vec<String>],
    keep: &[usize],
    widths: &[usize],
    numeric: usize,
) -> String {
    let rule = |left: &str, mid: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{left}{}{right}\n", parts.join(mid))
    };
    let line = |cells: &[String]| {
        let parts: Vec<String> = keep
            .iter()
            .zip(widths)
            .map(|(&i, &w)| {
                let text = &cells[i];
                let pad = w - cell_width(text);
                if i >= numeric {
                    format!(" {}{text} ", " ".repeat(pad))
                } else {
                    format!(" {text}{} ", " ".repeat(pad))
                }
            })
            .collect();
        format!("│{}│\n", parts.join("│"))
    };
    let mut out = rule("┌", "┬", "┐");
    out.push_str(&line(header));
    out.push_str(&rule("├", "┼", "┤"));
    for row in rows {
        out.push_str(&line(row));
    }
    out.push_str(&rule("└", "┴", "┘"));
    out
}

/// Wraps text at spaces to `width` columns; continuation lines start with `indent`. A word longer
/// than the line stays whole on a line of its own.
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let prefix = if lines.is_empty() { "" } else { indent };
        if current.is_empty() {
            current = format!("{prefix}{word}");
        } else if cell_width(&current) + 1 + cell_width(word) <= width {
            current.push(' ');
            current.push_str(word);
        } else {
            lines.push(std::mem::take(&mut current));
            current = format!("{indent}{word}");
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn scaled_open_connections_are_shown_where_measured_and_a_dash_where_not() {
        let mut report = fixture::report();
        assert!(
            scaled_rows(&report).is_none(),
            "no population: no scaled table"
        );
        report.plan.population = Some(report.plan.clients as u64 * 10);
        report.runs[0].metrics.open_connections_peak = Some(7);
        let (header, rows) = scaled_rows(&report).unwrap();
        let open = header
            .iter()
            .position(|h| h.starts_with("open conns"))
            .unwrap();
        assert_eq!(rows[0][open], "70");
        assert!(rows[1..].iter().all(|row| row[open] == "—"), "{rows:?}");
    }

    #[test]
    fn wrapping_keeps_words_whole_and_lines_short() {
        let lines = wrap("aaa bbb ccc ddd", 7, "  ");
        assert_eq!(lines, vec!["aaa bbb", "  ccc", "  ddd"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5, ""),
            vec!["averyveryverylongword", "x"]
        );
    }

    #[test]
    fn the_terminal_output_fits_80_and_100_columns() {
        let report = fixture::report();
        for width in [80, 100] {
            let text = terminal(&report, width, false);
            assert!(text.starts_with("Verdict: "), "{text}");
            for line in text.lines() {
                assert!(cell_width(line) <= width, "{width}: {line:?}");
            }
            assert!(text.contains("✗ lost"), "{text}");
        }
    }

    #[test]
    fn the_key_under_the_tables_names_only_columns_they_show() {
        let report = fixture::report();
        for width in [40, 60, 80, 100, 160] {
            let text = terminal(&report, width, false);
            let (tables, key) = text.split_at(text.find("delivered: share").unwrap());
            assert_eq!(
                tables.contains("B/event"),
                key.contains("B/event"),
                "{width} columns:\n{text}"
            );
        }
        // A wide terminal shows the column and says what it is.
        assert!(terminal(&report, 160, false).contains("B/event: bytes on the wire"));
    }

    #[test]
    fn nothing_measured_is_a_dash_and_percentages_are_honest() {
        let mut report = fixture::report();
        let run = &mut report.runs[0];
        run.metrics.expected = 165_000;
        run.metrics.delivered = 164_997;
        assert_eq!(delivered_cell(run), "99.998%");
        run.metrics.latency_ms = crate::metrics::Percentiles::default();
        run.metrics.bytes_per_delivery = None;
        let (_, rows) = comparison_rows(&report);
        assert_eq!(rows[0][6], "—");
        assert_eq!(rows[0][9], "—");
    }
}
