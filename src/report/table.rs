//! The comparison table printed on the terminal: one row per scenario × transport.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::Report;

/// Renders the comparison table (plain text, no colour codes).
pub fn comparison_table(report: &Report) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
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
        ]);
    let clients = report.plan.clients.max(1) as f64;
    for run in &report.runs {
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
        let row = vec![
            Cell::new(&run.scenario),
            Cell::new(run.transport.name()),
            Cell::new(delivered),
            Cell::new(m.lost),
            Cell::new(m.duplicates),
            Cell::new(format!("{:.1}", m.latency_ms.p50)),
            Cell::new(format!("{:.1}", m.latency_ms.p95)),
            Cell::new(format!("{:.1}", m.latency_ms.p99)),
            Cell::new(format!("{:.1}", m.requests_per_second)),
            Cell::new(format!("{:.0}", m.bytes_per_delivery)),
            Cell::new(m.connections_opened),
            Cell::new(m.reconnects),
            Cell::new(detect),
            Cell::new(format!("{:.1}", m.disconnected_s / clients)),
            Cell::new(format!("{:.1}", m.radio_active_per_client_s)),
        ];
        table.add_row(row.into_iter().enumerate().map(|(i, c)| {
            if i >= 2 {
                c.set_alignment(CellAlignment::Right)
            } else {
                c
            }
        }));
    }
    table.to_string()
}
