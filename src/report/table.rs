//! The comparison table printed on the terminal: one row per scenario × transport.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::Report;

/// The comparison's column headers and cells, one row per run; shared by the terminal table, the report
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
    ];
    let clients = report.plan.clients.max(1) as f64;
    let rows = report
        .runs
        .iter()
        .map(|run| {
            let m = &run.metrics;
            let delivered = if m.expected == 0 {
                "-".to_string()
            } else {
                format!("{:.2}%", 100.0 * m.delivered as f64 / m.expected as f64)
            };
            let detect = if m.detections == 0 {
                "-".to_string()
            } else {
                format!("{:.0}", m.time_to_detect_ms.p50)
            };
            // With repeated seeds, the headline numbers carry their 95 % interval's half-width.
            let pm = |path: &[&str], value: f64, decimals: usize| {
                let half = run.ci95.as_ref().and_then(|ci| {
                    let range = path.iter().try_fold(ci, |v, key| v.get(key))?;
                    Some((range.get(1)?.as_f64()? - range.get(0)?.as_f64()?) / 2.0)
                });
                match half {
                    Some(h) => format!("{value:.decimals$} ±{h:.decimals$}"),
                    None => format!("{value:.decimals$}"),
                }
            };
            vec![
                run.scenario.clone(),
                run.transport.name().to_string(),
                delivered,
                pm(&["lost"], m.lost as f64, 0),
                m.duplicates.to_string(),
                pm(&["latency_ms", "p50"], m.latency_ms.p50, 1),
                pm(&["latency_ms", "p95"], m.latency_ms.p95, 1),
                pm(&["latency_ms", "p99"], m.latency_ms.p99, 1),
                pm(&["requests_per_second"], m.requests_per_second, 1),
                format!("{:.0}", m.bytes_per_delivery),
                m.connections_opened.to_string(),
                m.reconnects.to_string(),
                detect,
                format!("{:.1}", m.disconnected_s / clients),
                format!("{:.1}", m.radio_active_per_client_s),
            ]
        })
        .collect();
    (header, rows)
}

/// Columns from this one on hold numbers (right-aligned).
pub const FIRST_NUMERIC_COLUMN: usize = 2;

/// Renders the comparison table (plain text, no colour codes).
pub fn comparison_table(report: &Report) -> String {
    let (header, rows) = comparison_rows(report);
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
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
