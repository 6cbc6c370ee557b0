//! Sweep charts: one per metric, the metric (y) against the first varied parameter (x), one line per
//! transport in the report's colours, one panel per scenario and combination of the other parameters,
//! crossovers circled and labelled with where they fall.
//!
//! Pure drawing on any plotters backend, with the report charts' fonts, colours and legend
//! ([`crate::report::charts`]); the same sweep gives byte-identical SVG and PNG files.

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{axis_value, Sweep};
use crate::report::charts::{
    axis_font, bold, caption_font, colour, desc_font, encode_png, legend, panels, DrawResult, Extra,
    GRID, INK, WIDTH,
};
use crate::report::fonts::{self, CrispText};
use crate::report::insights::fmt_num;
use crate::transport::TransportKind;

/// Most panels one chart draws; `sweep.csv` and `sweep.json` hold every one.
pub const MAX_PANELS: usize = 24;

/// `sweep-<metric>.<ext>`, the chart's file name in `charts/`.
pub fn file_name(metric: &str, ext: &str) -> String {
    format!("sweep-{metric}.{ext}")
}

/// The unit of a metric, for the axis title ("" for counts).
fn unit(metric: &str) -> &'static str {
    let field = metric.split('.').next().unwrap_or(metric);
    match field {
        "requests_per_second" => "requests / s",
        "bytes_per_delivery" => "bytes / delivered event",
        "bytes_down" | "bytes_up" => "bytes",
        f if f.ends_with("_ms") => "ms",
        f if f.ends_with("_s") => "s",
        _ => "",
    }
}

/// Size in pixels: taller when there are many panels.
pub fn size(sweep: &Sweep) -> (u32, u32) {
    let n = sweep.panels().len().clamp(1, MAX_PANELS);
    let (rows, _) = crate::report::charts::grid(n);
    (WIDTH, 900.max(160 + 620 * rows as u32))
}

/// Line width per transport: transports drawn first are wider, so a line hidden under an identical one
/// still shows as a coloured edge.
fn line_width(transports: &[TransportKind], transport: TransportKind) -> u32 {
    const WIDTHS: [u32; 4] = [3, 5, 7, 9];
    let position = transports.iter().position(|t| *t == transport).unwrap_or(0);
    WIDTHS[(transports.len() - 1 - position).min(WIDTHS.len() - 1)]
}

/// Draws the chart of `metric` on `root`.
pub fn draw<DB: DrawingBackend>(
    sweep: &Sweep,
    metric: &str,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    fonts::register();
    root.fill(&WHITE)?;
    let Some(parameter) = sweep.parameters.first() else {
        return Ok(());
    };
    let all_panels = sweep.panels();
    let shown = &all_panels[..all_panels.len().min(MAX_PANELS)];
    let mut title = format!("{metric} by {}", parameter.key);
    if shown.len() < all_panels.len() {
        title.push_str(&format!(
            " (first {} of {} panels)",
            shown.len(),
            all_panels.len()
        ));
    }
    let root = root.margin(14, 0, 0, 0);
    let body = root.titled(&title, bold(46).color(&INK))?;
    let (legend_area, body) = body.split_vertically(56);
    let transports = sweep.transports();
    legend::<DB>(&legend_area, &transports, &[] as &[Extra])?;
    let body = body.margin(0, 10, 10, 20);

    let axis = sweep.axis();
    let x_range = if axis.numeric {
        let (lo, hi) = axis
            .xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        let pad = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
        (lo - pad)..(hi + pad)
    } else {
        -0.5..(axis.xs.len() as f64 - 0.5)
    };
    let series: Vec<_> = shown.iter().map(|p| sweep.series(p, metric)).collect();
    let values = series
        .iter()
        .flatten()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite());
    let (y_lo, y_hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y_range = if y_hi > y_lo {
        (y_lo * 1.1)..(y_hi * 1.15)
    } else {
        0.0..1.0
    };
    let x_desc = if parameter.is_duration() {
        format!("{} (s)", parameter.key)
    } else {
        parameter.key.clone()
    };
    let y_desc = match unit(metric) {
        "" => metric.to_string(),
        u => format!("{metric} ({u})"),
    };
    let several_scenarios = sweep.scenarios().len() > 1;
    for ((panel, lines), area) in shown
        .iter()
        .zip(&series)
        .zip(panels(&body, shown.len()))
    {
        let mut caption: Vec<String> = Vec::new();
        if several_scenarios || panel.fixed.is_empty() {
            caption.push(panel.scenario.clone());
        }
        if !panel.fixed.is_empty() {
            caption.push(sweep.fixed_text(&panel.fixed));
        }
        let mut chart = ChartBuilder::on(&area)
            .caption(caption.join(" · "), caption_font())
            .margin(10)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range.clone(), y_range.clone())?;
        let labels = axis.labels.clone();
        let numeric = axis.numeric;
        let x_label = move |v: &f64| {
            if numeric {
                fmt_num(*v)
            } else if (v - v.round()).abs() < 1e-6 && *v >= 0.0 {
                labels.get(v.round() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc.as_str())
            .y_desc(y_desc.as_str())
            .x_label_formatter(&x_label)
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID);
        if !numeric {
            mesh.x_labels(axis.xs.len() * 2 + 1);
        }
        mesh.draw()?;
        for line in lines {
            let style = colour(line.transport).stroke_width(line_width(&transports, line.transport));
            // A gap where a value is missing: draw each measured stretch separately.
            let mut stretch: Vec<(f64, f64)> = Vec::new();
            for (x, y) in axis.xs.iter().zip(&line.values) {
                match y {
                    Some(y) if y.is_finite() => stretch.push((*x, *y)),
                    _ => {
                        chart.draw_series(LineSeries::new(stretch.drain(..), style))?;
                    }
                }
            }
            chart.draw_series(LineSeries::new(stretch.drain(..), style))?;
            chart.draw_series(
                axis.xs
                    .iter()
                    .zip(&line.values)
                    .filter_map(|(x, y)| y.filter(|y| y.is_finite()).map(|y| (*x, y)))
                    .map(|p| Circle::new(p, 6, colour(line.transport).filled())),
            )?;
        }
        let meetings = sweep
            .crossovers
            .iter()
            .filter(|c| c.metric == metric && c.scenario == panel.scenario && c.fixed == panel.fixed);
        for c in meetings {
            let at = (c.meeting.at, c.meeting.value);
            let text = format!(
                "{}{}",
                if c.meeting.interpolated { "≈ " } else { "" },
                axis_value(parameter, c.meeting.at)
            );
            chart.draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Circle::new((0, 0), 12, INK.stroke_width(3))
                    + Text::new(
                        text,
                        (0, -18),
                        (crate::report::fonts::FAMILY, 24)
                            .into_font()
                            .color(&INK)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    ),
            ))?;
        }
    }
    Ok(())
}

/// The chart of `metric` as SVG text.
pub fn svg(sweep: &Sweep, metric: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size(sweep)).into_drawing_area();
        draw(sweep, metric, &root).map_err(|e| anyhow!("cannot draw the {metric} chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw the {metric} chart: {e}"))?;
    }
    Ok(text)
}

/// The chart of `metric` as a PNG image (8-bit RGB).
pub fn png(sweep: &Sweep, metric: &str) -> anyhow::Result<Vec<u8>> {
    let (w, h) = size(sweep);
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let backend = CrispText(BitMapBackend::with_buffer(&mut pixels, (w, h)));
        let root = backend.into_drawing_area();
        draw(sweep, metric, &root).map_err(|e| anyhow!("cannot draw the {metric} chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw the {metric} chart: {e}"))?;
    }
    encode_png(&pixels, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_and_are_deterministic() {
        let sweep = crate::sweep::tests::fake_sweep();
        let a = svg(&sweep, "requests_per_second").unwrap();
        assert_eq!(a, svg(&sweep, "requests_per_second").unwrap());
        assert!(a.contains("polling.interval (s)"), "the axis names the parameter");
        assert!(a.contains("requests_per_second (requests / s)"));
        let png = png(&sweep, "lost").unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(unit("latency_ms.p50"), "ms");
        assert_eq!(unit("disconnected_s"), "s");
        assert_eq!(unit("lost"), "");
    }
}
