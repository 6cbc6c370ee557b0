//! `index.html`: the report page. One self-contained file that opens in a browser from disk — inline CSS,
//! no script, no server, no network — showing the profile in brief, the comparison table, every chart
//! (the SVGs of `charts/`, with links to the PNGs), "what this means" per scenario, and how to reproduce.
//!
//! Pure text building; every piece of user text is escaped here.

use std::fmt::Write as _;

use super::charts::{colour_hex, Chart};
use super::insights::insights;
use super::table::{
    comparison_rows, matrix_legend, matrix_rows, requirements_sentence, FIRST_NUMERIC_COLUMN,
};
use super::{brief, label, reproduce_command, Exporter, Report, ReportFile};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#222;background:#fff}
main{max-width:1280px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:2rem;margin:.2em 0}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.lede{font-size:1.15rem;color:#444}
dl.brief{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1.2em}dl.brief dt{font-weight:600}dl.brief dd{margin:0}
table{border-collapse:collapse;font-size:.92rem;font-variant-numeric:tabular-nums}
th,td{padding:.35em .6em;border-bottom:1px solid #e4e4e4;text-align:left;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}td.n{text-align:right}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.4em;vertical-align:-.1em}
.scroll{overflow-x:auto}
figure{margin:2em 0}figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;margin-top:.4em}
.verdict{border:2px solid #2a7;border-radius:6px;padding:.8em 1.2em;margin:1.2em 0;background:#f3fbf6}
.verdict.open{border-color:#c83;background:#fdf7f0}.verdict h2{border:0;margin:.1em 0 .4em;font-size:1.4rem}
.verdict ul{margin:.4em 0}.matrix td{text-align:center}.matrix td.pass{color:#176}.matrix td.fail{color:#b31;font-weight:600}
.matrix td.unsure{color:#a60}.assumed{color:#555}
.insight{margin:1.2em 0}.insight h3{margin-bottom:.2em}.insight .conditions{color:#555;margin:.2em 0}
code,pre{font-family:ui-monospace,Menlo,Consolas,'DejaVu Sans Mono',monospace;background:#f4f4f4;border-radius:3px}
pre{padding:.8em 1em;overflow-x:auto}
footer{margin-top:3em;color:#777;font-size:.9rem}
";

/// The report page.
pub fn index_html(report: &Report) -> String {
    let plan = &report.plan;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — rtsim report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&plan.name)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&plan.name));
    if !plan.description.is_empty() {
        let _ = writeln!(h, "<p class=\"lede\">{}</p>", escape(&plan.description));
    }

    // The decision first: it is what the meeting came for.
    h.push_str(&verdict_html(report));

    // What was simulated.
    h.push_str("<dl class=\"brief\">\n");
    for (what, value) in brief(plan) {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", escape(what), escape(&value));
    }
    let found = insights(report);
    for insight in &found {
        let _ = writeln!(
            h,
            "<dt>Scenario {}</dt><dd>{}</dd>",
            escape(&insight.scenario),
            escape(&insight.summary())
        );
    }
    h.push_str("</dl>\n");

    // What this means, first: it is what the room reads.
    h.push_str("<h2 id=\"meaning\">What this means</h2>\n");
    for insight in &found {
        let _ = writeln!(
            h,
            "<section class=\"insight\">\n<h3>{}</h3>",
            escape(&insight.scenario)
        );
        let _ = writeln!(
            h,
            "<p class=\"conditions\">{}</p>\n<ul>",
            escape(&insight.summary())
        );
        for sentence in &insight.sentences {
            let _ = writeln!(h, "<li>{}</li>", escape(sentence));
        }
        h.push_str("</ul>\n</section>\n");
    }

    // The comparison table.
    h.push_str("<h2 id=\"comparison\">Comparison</h2>\n<div class=\"scroll\"><table>\n<thead><tr>");
    let (header, rows) = comparison_rows(report);
    for column in &header {
        let _ = write!(h, "<th>{}</th>", escape(column));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (row, run) in rows.iter().zip(&report.runs) {
        h.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 1 {
                let _ = write!(
                    h,
                    "<td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>",
                    colour_hex(run.transport),
                    escape(label(run.transport))
                );
            } else if i >= FIRST_NUMERIC_COLUMN {
                let _ = write!(h, "<td class=\"n\">{}</td>", escape(cell));
            } else {
                let _ = write!(h, "<td>{}</td>", escape(cell));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
    h.push_str(
        "<p>Latency runs from publication to receipt. <em>lost</em>: deliveries owed that never arrived; \
         <em>detect</em>: time for a client to notice a silently dead connection; <em>offline</em>: time \
         without a working connection; <em>radio</em>: time a phone's radio stays in its high-power state.</p>\n",
    );

    if let Some((header, rows)) = super::table::scaled_rows(report) {
        let _ = writeln!(
            h,
            "<h2 id=\"scaled\">Scaled to {} clients</h2>\n<p>{} clients were simulated; the server-side \
             figures below are scaled ×{} to the population the profile names (<code>population</code>). \
             Client-side figures (latency, losses) are the simulated clients' own.</p>",
            plan.population.unwrap_or_default(),
            plan.clients,
            escape(&super::insights::fmt_num(crate::decision::verdict::scale(plan)))
        );
        h.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
        for column in &header {
            let _ = write!(h, "<th>{}</th>", escape(column));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for row in &rows {
            h.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                let class = if i >= FIRST_NUMERIC_COLUMN {
                    " class=\"n\""
                } else {
                    ""
                };
                let _ = write!(h, "<td{class}>{}</td>", escape(c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table></div>\n");
    }

    // Behind a balancer: each replica's load, and what each restart cost.
    for section in super::table::fleet_tables(report) {
        let _ = writeln!(
            h,
            "<h2 id=\"{}\">{}</h2>\n<p>{}</p>\n<div class=\"scroll\"><table>\n<thead><tr>",
            section.title.to_lowercase(),
            escape(section.title),
            escape(&section.intro)
        );
        for column in &section.header {
            let _ = write!(h, "<th>{}</th>", escape(column));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for row in &section.rows {
            h.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                let class = if i >= section.first_numeric {
                    " class=\"n\""
                } else {
                    ""
                };
                let _ = write!(h, "<td{class}>{}</td>", escape(c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table></div>\n");
    }

    // Every chart.
    h.push_str("<h2 id=\"charts\">Charts</h2>\n");
    for chart in Chart::for_report(report) {
        let stem = chart.stem();
        let _ = writeln!(
            h,
            "<figure id=\"{stem}\">\n<img src=\"charts/{stem}.svg\" alt=\"{}\">\n\
             <figcaption><strong>{}.</strong> {} <a href=\"charts/{stem}.png\">PNG</a> · \
             <a href=\"charts/{stem}.svg\">SVG</a></figcaption>\n</figure>",
            escape(chart.title()),
            escape(chart.title()),
            escape(chart.caption())
        );
    }

    // Data and reproduction.
    h.push_str("<h2 id=\"reproduce\">Data and reproduction</h2>\n");
    h.push_str(
        "<p>Data: <a href=\"summary.json\">summary.json</a> · <a href=\"runs.csv\">runs.csv</a> · \
         <a href=\"timeseries.csv\">timeseries.csv</a> · <a href=\"events.csv\">events.csv</a> · \
         <a href=\"latency-cdf.csv\">latency-cdf.csv</a> · <a href=\"faults.csv\">faults.csv</a> · \
         <a href=\"report.md\">report.md</a></p>\n",
    );
    let _ = writeln!(
        h,
        "<p>Seed <code>{}</code>, rtsim {}. The same profile, seed and version give the same report, \
         byte for byte:</p>\n<pre><code>{}</code></pre>",
        plan.seed,
        env!("CARGO_PKG_VERSION"),
        escape(&reproduce_command(plan))
    );
    let _ = writeln!(
        h,
        "<footer>Generated by rtsim {} from deterministic simulations of real implementations.</footer>",
        env!("CARGO_PKG_VERSION")
    );
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// The verdict, the requirements and the scenario × transport matrix, for the top of the page.
pub fn verdict_html(report: &Report) -> String {
    let v = &report.verdict;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<section id=\"verdict\" class=\"verdict{}\">\n<h2>Verdict: {}</h2>\n<p><strong>{}</strong></p>\n<ul>",
        if v.confirmed { "" } else { " open" },
        escape(label(v.transport)),
        escape(&v.headline)
    );
    for reason in &v.reasons {
        let _ = writeln!(h, "<li>{}</li>", escape(reason));
    }
    h.push_str("</ul>\n");
    // The matrix straight after the reasons and the requirements it checks; the assumptions, each with
    // its value, below it: a reader sees the decision and its evidence before the fine print.
    let _ = writeln!(
        h,
        "<p>{}</p>",
        escape(&requirements_sentence(report, false))
    );
    let (header, rows) = matrix_rows(report);
    h.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr>");
    for (i, column) in header.iter().enumerate() {
        let name = if i == 0 {
            escape(column)
        } else {
            report
                .transports()
                .get(i - 1)
                .map(|t| {
                    format!(
                        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
                        colour_hex(*t),
                        escape(label(*t))
                    )
                })
                .unwrap_or_default()
        };
        let _ = write!(h, "<th>{name}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &rows {
        h.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(h, "<th>{}</th>", escape(cell));
            } else {
                let class = if cell.starts_with('✓') {
                    "pass"
                } else if cell.starts_with('✗') {
                    "fail"
                } else {
                    "unsure"
                };
                // `✗ latency,lost` reads better on a page with a space after each comma.
                let _ = write!(
                    h,
                    "<td class=\"{class}\">{}</td>",
                    escape(&cell.replace(',', ", "))
                );
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
    let _ = writeln!(
        h,
        "<p class=\"assumed\">{}</p>",
        escape(&matrix_legend(report))
    );
    let assumed = &report.plan.requirements.assumed;
    if !assumed.is_empty() {
        h.push_str("<p class=\"assumed\">Assumed (not in <code>[requirements]</code>):</p>\n");
        h.push_str("<ul class=\"assumed\">\n");
        for a in assumed {
            let _ = writeln!(
                h,
                "<li><code>{}</code>: {}</li>",
                escape(a.key),
                escape(&a.how)
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
    h
}

/// `index.html`.
pub struct HtmlPage;

impl Exporter for HtmlPage {
    fn name(&self) -> &'static str {
        "report page"
    }

    fn render(&self, report: &Report) -> anyhow::Result<Vec<ReportFile>> {
        Ok(vec![("index.html".into(), index_html(report).into_bytes())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn the_fleet_tables_are_on_the_page_and_in_report_md_only_with_a_fleet() {
        let plain = fixture::report();
        assert!(!index_html(&plain).contains("id=\"replicas\""));
        let mut report = fixture::report();
        let metrics = &mut report.runs[0].metrics;
        metrics.per_replica = Some(
            (0..2u32)
                .map(|k| crate::metrics::ReplicaMetrics {
                    replica: k,
                    connections: 5,
                    requests: 9,
                    events_published: 3,
                    open_connections_peak: 5,
                    open_connections_mean: 4.5,
                    open_connections_end: 4 + u64::from(k),
                })
                .collect(),
        );
        metrics.imbalance = Some(Some(1.11));
        metrics.restarts = Some(vec![crate::metrics::RestartMetrics {
            replica: Some(1),
            cause: "deploy".into(),
            drain_at_s: 10.0,
            stop_at_s: 14.0,
            up_at_s: 16.0,
            window_end_s: 21.0,
            reconnects: 4,
            reconnect_attempts: 5,
            peak_reconnects_per_second: 3,
            lost: 0,
            duplicates: 0,
            max_latency_ms: None,
            served_again_s: None,
            unserved: 2,
            open_at_drain: Some(5),
            open_at_stop: Some(0),
        }]);
        metrics.deploy_peak_reconnects_per_second = Some(3);
        metrics.served_again_s = Some(None);
        let page = index_html(&report);
        for expected in [
            "<h2 id=\"replicas\">Replicas</h2>",
            "<td class=\"n\">imbalance 1.11</td>",
            "<h2 id=\"restarts\">Restarts</h2>",
            "<td>server-1</td>",
            "<td>10 → 14 → 16</td>",
            "<td class=\"n\">no deliveries</td>",
            "<td class=\"n\">2 never</td>",
            "<td class=\"n\">not every client</td>",
        ] {
            assert!(page.contains(expected), "{expected} in the page");
        }
        let md = crate::report::markdown::report_md(&report);
        assert!(md.contains("## Replicas"), "{md}");
        assert!(
            md.contains(
                "| server-1 | 10 → 14 → 16 | 5 | 0 | 5 | 3 | 0 | 0 | no deliveries | 2 never |"
            ),
            "{md}"
        );
    }

    #[test]
    fn the_page_references_every_chart_and_needs_no_network() {
        let page = index_html(&fixture::report());
        for chart in Chart::ALL {
            assert!(
                page.contains(&format!("src=\"charts/{}.svg\"", chart.stem())),
                "{}",
                chart.stem()
            );
            assert!(
                page.contains(&format!("href=\"charts/{}.png\"", chart.stem())),
                "{}",
                chart.stem()
            );
        }
        assert!(
            !page.contains("http://") && !page.contains("https://") && !page.contains("<script")
        );
        assert!(page.contains("SSE lost 50 of 600 owed deliveries"));
        assert!(page.contains("--seed 7"));
        assert!(page.contains(env!("CARGO_PKG_VERSION")));
        // The comparison (header + 8 runs) and the matrix (header + 2 scenarios).
        assert_eq!(page.matches("<tr>").count(), 1 + 8 + 1 + 2);
        let verdict = page.find("id=\"verdict\"").unwrap();
        assert!(
            verdict < page.find("id=\"meaning\"").unwrap(),
            "the verdict comes first"
        );
        assert!(
            page.contains("<td class=\"fail\">✗ lost</td>"),
            "SSE's loss in the matrix"
        );
    }

    #[test]
    fn the_verdict_box_puts_the_matrix_before_the_assumptions_and_says_each_once() {
        let mut report = fixture::report();
        report.plan.requirements.assumed = vec![crate::scenario::Assumption {
            key: "latency",
            how: "1s, a typical budget".into(),
        }];
        let page = index_html(&report);
        let at = |what: &str| {
            page.find(what)
                .unwrap_or_else(|| panic!("{what} in the page"))
        };
        // Verdict, requirements, matrix, assumptions, then the run's facts.
        assert!(at("id=\"verdict\"") < at("Requirements: "));
        assert!(at("Requirements: ") < at("class=\"matrix\""));
        assert!(at("class=\"matrix\"") < at("Assumed (not in"));
        assert!(at("Assumed (not in") < at("<code>latency</code>: 1s, a typical budget"));
        assert!(at("</section>") < at("Simulated time"));
        // The assumed key is listed with its value, not also named in the requirements sentence.
        assert_eq!(page.matches("Assumed (not in").count(), 1);
    }

    #[test]
    fn user_text_is_escaped() {
        let mut report = fixture::report();
        report.plan.description = "<script>alert('x')</script> & more".into();
        let page = index_html(&report);
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
        assert!(!page.contains("<script>"));
    }
}
