//! CSV exports, for users who plot in their own tools: `runs.csv` (one row per scenario × transport;
//! `runs-by-seed.csv` adds one row per single run when runs are repeated) and
//! the time series the simulation recorded — `timeseries.csv` (per simulated second), `events.csv` (per
//! published event), `latency-cdf.csv` (the latency distribution) and `faults.csv` (fault marks).
//!
//! Column names are a contract, like summary.json's fields: add columns at the end, never rename.
//! Pure text building (RFC 4180 quoting, `\n` line ends); no file access here.

use std::fmt::Write as _;

use super::{Exporter, Report, ReportFile, RunResult};

/// One `runs.csv` column: its header and how to read it from a run.
type Column = (&'static str, fn(&RunResult) -> String);

const RUN_COLUMNS: &[Column] = &[
    ("scenario", |r| r.scenario.clone()),
    ("transport", |r| r.transport.name().to_string()),
    ("seed", |r| r.seed.to_string()),
    ("published", |r| r.metrics.published.to_string()),
    ("expected", |r| r.metrics.expected.to_string()),
    ("delivered", |r| r.metrics.delivered.to_string()),
    ("lost", |r| r.metrics.lost.to_string()),
    ("duplicates", |r| r.metrics.duplicates.to_string()),
    ("latency_mean_ms", |r| opt(r.metrics.latency_ms.mean)),
    ("latency_p50_ms", |r| opt(r.metrics.latency_ms.p50)),
    ("latency_p95_ms", |r| opt(r.metrics.latency_ms.p95)),
    ("latency_p99_ms", |r| opt(r.metrics.latency_ms.p99)),
    ("latency_max_ms", |r| opt(r.metrics.latency_ms.max)),
    ("requests", |r| r.metrics.requests.to_string()),
    ("requests_per_second", |r| {
        r.metrics.requests_per_second.to_string()
    }),
    ("bytes_down", |r| r.metrics.bytes_down.to_string()),
    ("bytes_up", |r| r.metrics.bytes_up.to_string()),
    ("bytes_per_delivery", |r| opt(r.metrics.bytes_per_delivery)),
    ("connections_opened", |r| {
        r.metrics.connections_opened.to_string()
    }),
    ("reconnects", |r| r.metrics.reconnects.to_string()),
    ("fallbacks", |r| r.metrics.fallbacks.to_string()),
    ("detections", |r| r.metrics.detections.to_string()),
    ("time_to_detect_p50_ms", |r| {
        opt(r.metrics.time_to_detect_ms.p50)
    }),
    ("time_to_detect_p95_ms", |r| {
        opt(r.metrics.time_to_detect_ms.p95)
    }),
    ("disconnected_s", |r| r.metrics.disconnected_s.to_string()),
    ("radio_active_s", |r| r.metrics.radio_active_s.to_string()),
    ("radio_active_per_client_s", |r| {
        r.metrics.radio_active_per_client_s.to_string()
    }),
    ("upstream_sent", |r| r.metrics.upstream_sent.to_string()),
    ("upstream_received", |r| {
        r.metrics.upstream_received.to_string()
    }),
    ("upstream_latency_p50_ms", |r| {
        opt(r.metrics.upstream_latency_ms.p50)
    }),
    ("upstream_latency_p95_ms", |r| {
        opt(r.metrics.upstream_latency_ms.p95)
    }),
    ("peak_reconnects_per_second", |r| {
        r.metrics.peak_reconnects_per_second.to_string()
    }),
    ("refused_upgrades", |r| {
        r.metrics.refused_upgrades.to_string()
    }),
    ("silent_deaths", |r| r.metrics.silent_deaths.to_string()),
    ("undetected", |r| r.metrics.undetected.to_string()),
    ("cuts", |r| r.metrics.cuts.to_string()),
    ("resume_resets", |r| r.metrics.resume_resets.to_string()),
    ("upstream_lost", |r| r.metrics.upstream_lost.to_string()),
    ("upload_silent_deaths", |r| {
        r.metrics.upload_silent_deaths.to_string()
    }),
    ("upload_undetected", |r| {
        r.metrics.upload_undetected.to_string()
    }),
];

/// A measured number, or an empty field when nothing was measured (never a zero).
fn opt(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn line(fields: impl IntoIterator<Item = String>) -> String {
    let mut out = fields
        .into_iter()
        .map(|f| field(&f))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

/// `runs.csv`: one row per scenario × transport (the mean over seeds when runs were repeated), every
/// summary metric as a column.
pub fn runs_csv(report: &Report) -> String {
    rows_csv(&report.runs)
}

/// `runs-by-seed.csv` (only with `--seeds`): one row per single run, for users' own statistics.
pub fn runs_by_seed_csv(report: &Report) -> String {
    rows_csv(&report.seed_runs)
}

fn rows_csv(runs: &[RunResult]) -> String {
    let mut out = line(RUN_COLUMNS.iter().map(|(name, _)| name.to_string()));
    for run in runs {
        out.push_str(&line(RUN_COLUMNS.iter().map(|(_, value)| value(run))));
    }
    out
}

/// `timeseries.csv`: per run and simulated second, what the recorder counted.
pub fn timeseries_csv(report: &Report) -> String {
    let mut out = String::from(
        "scenario,transport,second,published,deliveries,mean_latency_ms,requests,connections,reconnects\n",
    );
    for run in &report.runs {
        let (s, t) = (field(&run.scenario), run.transport.name());
        for (second, b) in run.metrics.timeline.buckets.iter().enumerate() {
            let mean = if b.deliveries > 0 {
                format!("{:.3}", b.latency_sum_ms / b.deliveries as f64)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{s},{t},{second},{},{},{mean},{},{},{}",
                b.published, b.deliveries, b.requests, b.connections, b.reconnects
            );
        }
    }
    out
}

/// `events.csv`: per run and published event, its time, mean delay, and the spread of its delay across
/// the clients that received it (5th percentile, median, 95th percentile); delays are empty when no
/// client got the event.
pub fn events_csv(report: &Report) -> String {
    let mut out = String::from(
        "scenario,transport,event,published_s,mean_delay_ms,p5_delay_ms,median_delay_ms,p95_delay_ms\n",
    );
    for run in &report.runs {
        let (s, t) = (field(&run.scenario), run.transport.name());
        let timeline = &run.metrics.timeline;
        for (i, (at, delay)) in timeline.event_delay_ms.iter().enumerate() {
            let delay = delay.map(|d| format!("{d:.3}")).unwrap_or_default();
            let spread = match timeline.event_spread_ms.get(i).copied().flatten() {
                Some(sp) => format!("{:.3},{:.3},{:.3}", sp.p5, sp.p50, sp.p95),
                None => ",,".to_string(),
            };
            let _ = writeln!(out, "{s},{t},{},{at:.6},{delay},{spread}", i + 1);
        }
    }
    out
}

/// `latency-cdf.csv`: per run, the share of deliveries at or below each latency.
pub fn latency_cdf_csv(report: &Report) -> String {
    let mut out = String::from("scenario,transport,latency_ms,share\n");
    for run in &report.runs {
        let (s, t) = (field(&run.scenario), run.transport.name());
        for (ms, q) in &run.metrics.timeline.latency_cdf_ms {
            let _ = writeln!(out, "{s},{t},{ms},{q}");
        }
    }
    out
}

/// `faults.csv`: per run, when each fault struck.
pub fn faults_csv(report: &Report) -> String {
    let mut out = String::from("scenario,transport,at_s,fault\n");
    for run in &report.runs {
        for (at, what) in &run.metrics.timeline.fault_marks {
            out.push_str(&line([
                run.scenario.clone(),
                run.transport.name().to_string(),
                format!("{at:.6}"),
                what.clone(),
            ]));
        }
    }
    out
}

/// The CSV files.
pub struct CsvExport;

impl Exporter for CsvExport {
    fn name(&self) -> &'static str {
        "CSV exports"
    }

    fn render(&self, report: &Report) -> anyhow::Result<Vec<ReportFile>> {
        let mut files = vec![
            ("runs.csv".into(), runs_csv(report).into_bytes()),
            ("timeseries.csv".into(), timeseries_csv(report).into_bytes()),
            ("events.csv".into(), events_csv(report).into_bytes()),
            (
                "latency-cdf.csv".into(),
                latency_cdf_csv(report).into_bytes(),
            ),
            ("faults.csv".into(), faults_csv(report).into_bytes()),
        ];
        if report.plan.seeds > 1 {
            files.push((
                "runs-by-seed.csv".into(),
                runs_by_seed_csv(report).into_bytes(),
            ));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn runs_csv_has_a_header_and_one_row_per_run() {
        let report = fixture::report();
        let text = runs_csv(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + report.runs.len());
        assert!(lines[0].starts_with("scenario,transport,seed,published,expected,delivered,lost,"));
        let columns = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));
        assert!(
            lines[7].starts_with("mobile,sse,7,60,600,550,50,"),
            "{}",
            lines[7]
        );
    }

    #[test]
    fn time_series_cover_every_second_and_event() {
        let report = fixture::report();
        let ts = timeseries_csv(&report);
        assert_eq!(ts.lines().count(), 1 + 8 * 60);
        assert!(
            ts.contains("\nmobile,sse,20,1,0,,1,0,0\n"),
            "a second without deliveries has no mean"
        );
        let events = events_csv(&report);
        assert_eq!(events.lines().count(), 1 + 8 * 60);
        assert!(events.contains("\nmobile,sse,21,20.000000,,,,\n"));
        assert!(faults_csv(&report).contains("mobile,sse,31.000000,NAT mapping dropped\n"));
        assert!(latency_cdf_csv(&report).contains("office,polling,2500,0.5\n"));
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
