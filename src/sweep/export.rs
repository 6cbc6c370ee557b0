//! The sweep's files: `sweep.json` (the contract with users' scripts), `sweep.csv` (one row per grid
//! point × scenario × transport), `sweep.md` (crossovers and a table) and the charts; and the short
//! summary printed on the terminal.
//!
//! Pure text building: nothing here touches the file system or the terminal.

use std::fmt::Write as _;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

use super::{metric_names, metric_value, Crossover, Sweep};
use crate::report::insights::fmt_num;
use crate::report::{label, ReportFile, RunResult};

/// A parameter → value map that keeps the parameters' order.
struct Ordered(Vec<(String, Json)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct JsonPoint<'a> {
    values: Ordered,
    runs: &'a [RunResult],
}

#[derive(serde::Serialize)]
struct JsonCrossover<'a> {
    metric: &'a str,
    scenario: &'a str,
    /// The first parameter: the one the meeting is placed on.
    parameter: &'a str,
    /// The other parameters' values in this panel.
    fixed: Ordered,
    transports: [&'static str; 2],
    kind: super::crossover::Kind,
    /// Where they meet, in the parameter's unit (seconds for durations).
    at: f64,
    /// With equality over several grid points: the last of them.
    until: Option<f64>,
    /// `"s"` for durations, else null.
    unit: Option<&'static str>,
    /// Whether `at` was interpolated between grid points.
    interpolated: bool,
    /// The metric's value where they meet.
    value: f64,
    /// The transport higher below `at`, and above it.
    higher_below: &'static str,
    higher_above: &'static str,
    text: &'a str,
}

#[derive(serde::Serialize)]
struct JsonSweep<'a> {
    profile: &'a str,
    description: &'a str,
    seed: u64,
    seeds: u32,
    rtsim_version: &'static str,
    parameters: Vec<&'a str>,
    metrics: &'a [String],
    points: Vec<JsonPoint<'a>>,
    crossovers: Vec<JsonCrossover<'a>>,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn fixed(sweep: &Sweep, fixed: &[(usize, usize)]) -> Ordered {
    Ordered(
        fixed
            .iter()
            .map(|&(p, v)| {
                let parameter = &sweep.parameters[p];
                (parameter.key.clone(), parameter.values[v].json())
            })
            .collect(),
    )
}

fn json_crossover<'a>(sweep: &'a Sweep, c: &'a Crossover) -> JsonCrossover<'a> {
    let parameter = &sweep.parameters[0];
    let transport = |h| match h {
        super::crossover::Higher::A => c.transports[0].name(),
        super::crossover::Higher::B => c.transports[1].name(),
    };
    JsonCrossover {
        metric: &c.metric,
        scenario: &c.scenario,
        parameter: &parameter.key,
        fixed: fixed(sweep, &c.fixed),
        transports: [c.transports[0].name(), c.transports[1].name()],
        kind: c.meeting.kind,
        at: round6(c.meeting.at),
        until: c.meeting.until.map(round6),
        unit: parameter.is_duration().then_some("s"),
        interpolated: c.meeting.interpolated,
        value: round6(c.meeting.value),
        higher_below: transport(c.meeting.before),
        higher_above: transport(c.meeting.after),
        text: &c.text,
    }
}

/// `sweep.json` (pretty, stable field order, trailing newline).
pub fn sweep_json(sweep: &Sweep) -> anyhow::Result<String> {
    let document = JsonSweep {
        profile: &sweep.profile,
        description: &sweep.description,
        seed: sweep.seed,
        seeds: sweep.seeds,
        rtsim_version: env!("CARGO_PKG_VERSION"),
        parameters: sweep.parameters.iter().map(|p| p.key.as_str()).collect(),
        metrics: &sweep.metrics,
        points: sweep
            .points
            .iter()
            .map(|point| JsonPoint {
                values: fixed(
                    sweep,
                    &point
                        .indices
                        .iter()
                        .copied()
                        .enumerate()
                        .collect::<Vec<_>>(),
                ),
                runs: &point.runs,
            })
            .collect(),
        crossovers: sweep
            .crossovers
            .iter()
            .map(|c| json_crossover(sweep, c))
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    Ok(text)
}

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `sweep.csv`: the parameters' values as written (`5s`), the scenario and the transport, then every
/// numeric field of the run as in `summary.json` (dotted names, alphabetical). Unmeasured values are
/// empty.
pub fn sweep_csv(sweep: &Sweep) -> String {
    let metrics = metric_names();
    let mut header: Vec<String> = sweep.parameters.iter().map(|p| p.key.clone()).collect();
    header.extend(["scenario".to_string(), "transport".to_string()]);
    header.extend(metrics.iter().cloned());
    let mut out = header
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for point in &sweep.points {
        let values: Vec<String> = sweep
            .parameters
            .iter()
            .zip(&point.indices)
            .map(|(p, &v)| field(&p.values[v].to_string()))
            .collect();
        for run in &point.runs {
            let mut row = values.clone();
            row.push(field(&run.scenario));
            row.push(run.transport.name().to_string());
            for metric in &metrics {
                row.push(metric_value(run, metric).map_or(String::new(), |v| v.to_string()));
            }
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

/// `sweep.md`: what was varied, the crossovers, the charts and a table of the chosen metrics.
pub fn sweep_md(sweep: &Sweep) -> String {
    let mut out = format!("# Sweep of {}\n\n", sweep.profile);
    if !sweep.description.is_empty() {
        let _ = writeln!(out, "{}\n", sweep.description);
    }
    for parameter in &sweep.parameters {
        let values: Vec<String> = parameter.values.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(out, "- `{}`: {}", parameter.key, values.join(", "));
    }
    let varied = |key: &str| sweep.parameters.iter().any(|p| p.key == key);
    if !varied("clients") {
        let _ = writeln!(out, "- {} clients", sweep.clients);
    }
    if !varied("duration") {
        let _ = writeln!(
            out,
            "- {} of simulated time per run",
            crate::duration::format(sweep.duration)
        );
    }
    let _ = writeln!(
        out,
        "- {} grid points, seed {}{}\n",
        sweep.points.len(),
        sweep.seed,
        if sweep.seeds > 1 {
            format!(", {} seeds per run (means)", sweep.seeds)
        } else {
            String::new()
        }
    );
    out.push_str("## Crossovers\n\n");
    out.push_str(super::crossover::Threshold::EXPLAINED);
    out.push_str("\n\n");
    if sweep.crossovers.is_empty() {
        if sweep.axis().numeric {
            out.push_str(
                "None: no two transports swap places on the charted metrics over this range.\n\n",
            );
        } else {
            out.push_str(
                "None searched: the first varied parameter is not a number or a duration.\n\n",
            );
        }
    } else {
        for c in &sweep.crossovers {
            let _ = writeln!(out, "- {}", c.text);
        }
        out.push('\n');
    }
    out.push_str("## Charts\n\n");
    for metric in &sweep.metrics {
        let _ = writeln!(
            out,
            "![{metric}](charts/{})\n",
            super::chart::file_name(metric, "svg")
        );
    }
    out.push_str("## Results\n\n");
    let mut header: Vec<String> = sweep
        .parameters
        .iter()
        .map(|p| format!("`{}`", p.key))
        .collect();
    header.extend(["scenario".into(), "transport".into()]);
    header.extend(sweep.metrics.iter().map(|m| format!("`{m}`")));
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i < sweep.parameters.len() + 2 {
                "---|"
            } else {
                "---:|"
            })
            .collect::<String>()
    );
    for point in &sweep.points {
        for run in &point.runs {
            let mut row: Vec<String> = sweep
                .parameters
                .iter()
                .zip(&point.indices)
                .map(|(p, &v)| p.values[v].to_string())
                .collect();
            row.push(run.scenario.replace('|', "\\|"));
            row.push(label(run.transport).to_string());
            for metric in &sweep.metrics {
                row.push(metric_value(run, metric).map_or("–".to_string(), fmt_num));
            }
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
    }
    out
}

/// What the terminal shows after a sweep: the grid and the crossovers.
pub fn terminal_summary(sweep: &Sweep) -> String {
    let runs: usize = sweep.points.iter().map(|p| p.runs.len()).sum();
    let keys: Vec<&str> = sweep.parameters.iter().map(|p| p.key.as_str()).collect();
    let mut out = format!(
        "Swept {} over {} points ({runs} runs).\n",
        keys.join(" × "),
        sweep.points.len()
    );
    if sweep.crossovers.is_empty() {
        out.push_str("No crossovers on the charted metrics.\n");
    } else {
        out.push_str("Crossovers:\n");
        for c in &sweep.crossovers {
            let _ = writeln!(out, "  {}", c.text);
        }
    }
    out
}

/// Every file of the sweep folder, in a fixed order.
pub fn files(sweep: &Sweep) -> anyhow::Result<Vec<ReportFile>> {
    let mut files = vec![
        ("sweep.json".to_string(), sweep_json(sweep)?.into_bytes()),
        ("sweep.csv".to_string(), sweep_csv(sweep).into_bytes()),
        ("sweep.md".to_string(), sweep_md(sweep).into_bytes()),
    ];
    for metric in &sweep.metrics {
        files.push((
            format!("charts/{}", super::chart::file_name(metric, "svg")),
            super::chart::svg(sweep, metric)?.into_bytes(),
        ));
        files.push((
            format!("charts/{}", super::chart::file_name(metric, "png")),
            super::chart::png(sweep, metric)?,
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_parameter_order_and_names_crossovers() {
        let sweep = crate::sweep::tests::fake_sweep();
        let json: Json = serde_json::from_str(&sweep_json(&sweep).unwrap()).unwrap();
        assert_eq!(json["parameters"], serde_json::json!(["polling.interval"]));
        assert_eq!(json["points"][2]["values"]["polling.interval"], "5s");
        assert_eq!(json["points"][0]["runs"][0]["transport"], "polling");
        assert_eq!(json["points"][0]["runs"][0]["requests_per_second"], 10.0);
        let c = &json["crossovers"][0];
        assert_eq!(c["metric"], "requests_per_second");
        assert_eq!(c["at"], 5.0);
        assert_eq!(c["unit"], "s");
        assert_eq!(c["higher_below"], "polling");
        assert_eq!(c["higher_above"], "sse");
    }

    #[test]
    fn csv_has_one_row_per_point_and_run() {
        let sweep = crate::sweep::tests::fake_sweep();
        let text = sweep_csv(&sweep);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 4 * 2);
        assert!(
            lines[0].starts_with("polling.interval,scenario,transport,"),
            "{}",
            lines[0]
        );
        let columns = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));
        let rps = lines[0]
            .split(',')
            .position(|h| h == "requests_per_second")
            .unwrap();
        assert_eq!(lines[5].split(',').nth(rps), Some("2"), "{}", lines[5]);
        assert!(lines[5].starts_with("5s,baseline,polling,"), "{}", lines[5]);
    }

    #[test]
    fn markdown_lists_crossovers_and_a_row_per_run() {
        let sweep = crate::sweep::tests::fake_sweep();
        let md = sweep_md(&sweep);
        assert!(
            md.contains("- Short polling matches SSE's requests_per_second"),
            "{md}"
        );
        assert!(
            md.contains("| 5s | baseline | Short polling | 2 | 0 |"),
            "{md}"
        );
        assert!(md.contains("charts/sweep-requests_per_second.svg"), "{md}");
    }
}
