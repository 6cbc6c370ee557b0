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
    axis_font, bold, colour, desc_font, draw_marker, draw_styled_line, encode_png, legend,
    line_look, DrawResult, Extra, GRID, INK, WIDTH,
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

/// Rows and columns of panels: one row per scenario and one column per combination of the other
/// parameters when there are 2–4 combinations; else the report charts' 16:9 grid.
fn layout(sweep: &Sweep, panels: usize) -> (usize, usize) {
    let all = sweep.panels();
    let per_scenario: Vec<usize> = sweep
        .scenarios()
        .iter()
        .map(|s| all.iter().filter(|p| &p.scenario == s).count())
        .collect();
    let combinations = per_scenario.iter().copied().max().unwrap_or(1);
    // Scenarios without the other parameters have one panel: a row each still reads well.
    let rows = per_scenario.len();
    if (2..=4).contains(&combinations) && panels <= MAX_PANELS && rows * combinations <= MAX_PANELS
    {
        (rows, combinations)
    } else {
        crate::report::charts::grid(panels.clamp(1, MAX_PANELS))
    }
}

/// Size in pixels: taller when there are many panels.
pub fn size(sweep: &Sweep) -> (u32, u32) {
    let (rows, _) = layout(sweep, sweep.panels().len());
    (WIDTH, 900.max(160 + 620 * rows as u32))
}

/// Line width per transport: transports drawn first are wider, so a line hidden under an identical one
/// still shows as a coloured edge.
fn line_width(transports: &[TransportKind], transport: TransportKind) -> u32 {
    const WIDTHS: [u32; 4] = [2, 4, 6, 8];
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
    legend::<DB>(&legend_area, &transports, &[Extra::Lines])?;
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
    // The axis holds the error bars too (the ends of 95 % intervals, with `--seeds`).
    let scale = Scale::choose(series.iter().flatten().flat_map(|s| {
        s.values.iter().flatten().copied().chain(
            s.intervals
                .iter()
                .flatten()
                .flat_map(|&(low, high)| [low, high]),
        )
    }));
    let y_range = scale.range();
    let x_desc = if parameter.is_duration() {
        format!("{} (s)", parameter.key)
    } else {
        parameter.key.clone()
    };
    let mut y_desc = match unit(metric) {
        "" => metric.to_string(),
        u => format!("{metric} ({u})"),
    };
    if matches!(scale, Scale::Log { .. }) {
        y_desc.push_str(", log scale");
    }
    let several_scenarios = sweep.scenarios().len() > 1;
    let areas = {
        let (rows, cols) = layout(sweep, shown.len());
        let cells = body.split_evenly((rows, cols));
        if rows == sweep.scenarios().len() && rows * cols >= shown.len() && cols > 1 {
            // One row per scenario: each scenario's panels from the left of its row.
            let names = sweep.scenarios();
            let mut used = vec![0usize; rows];
            shown
                .iter()
                .map(|p| {
                    let row = names.iter().position(|n| *n == p.scenario).unwrap_or(0);
                    used[row] += 1;
                    cells[row * cols + used[row] - 1].clone()
                })
                .collect::<Vec<_>>()
        } else {
            cells.into_iter().take(shown.len()).collect()
        }
    };
    for ((panel, lines), area) in shown.iter().zip(&series).zip(areas) {
        let mut caption: Vec<String> = Vec::new();
        if several_scenarios || panel.fixed.is_empty() {
            caption.push(panel.scenario.clone());
        }
        if !panel.fixed.is_empty() {
            // `scenario.nat.idle_timeout = 30s` reads as `nat.idle_timeout = 30s` in a caption.
            let text = sweep.panel_text(panel);
            caption.push(text.replace("scenario.", ""));
        }
        if !sweep.applies(0, &panel.scenario) {
            caption.push(format!(
                "no {} here: flat",
                parameter.key.replace("scenario.", "")
            ));
        }
        let (panel_width, _) = area.dim_in_pixel();
        // Wrapped at word breaks (and smaller if need be), never cut.
        let inner = crate::report::charts::panel_caption(&area, &caption.join(" · "))?;
        let mut chart = ChartBuilder::on(&inner)
            .margin(10)
            .margin_top(0)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(130)
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
        let y_label = |v: &f64| scale.label(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc.as_str())
            .y_desc(y_desc.as_str())
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID);
        if numeric {
            mesh.x_labels((panel_width / 110).clamp(3, 12) as usize);
        } else {
            mesh.x_labels(axis.xs.len() * 2 + 1);
        }
        if let Scale::Log { low, high } = scale {
            mesh.y_labels((high - low) as usize + 1);
        }
        mesh.draw()?;
        let mut drawn: Vec<(i32, i32)> = Vec::new();
        for line in lines {
            // Each transport's own dash pattern and marker (as on the report's line charts), and
            // lines drawn first wider: two identical lines both stay visible.
            let look = line_look(line.transport);
            let style =
                colour(line.transport).stroke_width(line_width(&transports, line.transport));
            // Drawn on the panel rather than the plotting area, so that a marker on the axis (a zero)
            // or at the ends of the grid is whole, not cut in half by the plot's edge.
            let plot = &inner;
            let (bx, by) = plot.get_base_pixel();
            let pixel = |p: (f64, f64)| {
                let (x, y) = chart.backend_coord(&p);
                (x - bx, y - by)
            };
            // A gap where a value is missing: draw each measured stretch separately.
            let mut stretch: Vec<(i32, i32)> = Vec::new();
            let mut points: Vec<(i32, i32)> = Vec::new();
            for (x, y) in axis.xs.iter().zip(&line.values) {
                match y.and_then(|y| scale.map(y)) {
                    Some(y) => {
                        stretch.push(pixel((*x, y)));
                        points.push(pixel((*x, y)));
                    }
                    _ => {
                        draw_styled_line(plot, std::mem::take(&mut stretch), style, look.dash)?;
                    }
                }
            }
            draw_styled_line(plot, stretch, style, look.dash)?;
            for (x, y) in points {
                // A marker on top of another transport's (identical values) is dodged sideways, so
                // that every transport's marker shows where the lines coincide.
                let dx = [0, -12, 12, -24, 24]
                    .into_iter()
                    .find(|dx| {
                        drawn.iter().all(|&(u, v): &(i32, i32)| {
                            (u - x - dx).abs() >= 12 || (v - y).abs() >= 12
                        })
                    })
                    .unwrap_or(0);
                drawn.push((x + dx, y));
                draw_marker(plot, (x + dx, y), look.marker, colour(line.transport))?;
            }
            // 95 % intervals of repeated runs; a log axis cuts a bar at its floor.
            let floor = y_range.start;
            chart.draw_series(
                axis.xs
                    .iter()
                    .zip(&line.values)
                    .zip(&line.intervals)
                    .filter_map(|((x, y), interval)| {
                        let (low, high) = (*interval)?;
                        let y = scale.map((*y)?)?;
                        let high = scale.map(high)?;
                        let low = scale.map(low).unwrap_or(floor).max(floor);
                        (high > low).then(|| {
                            ErrorBar::new_vertical(
                                *x,
                                low,
                                y,
                                high,
                                colour(line.transport).stroke_width(3),
                                14,
                            )
                        })
                    }),
            )?;
        }
        let meetings = sweep.crossovers.iter().filter(|c| {
            c.metric == metric && c.scenario == panel.scenario && c.fixed == panel.fixed
        });
        for (n, c) in meetings.enumerate() {
            let Some(y) = scale.map(c.meeting.value) else {
                continue;
            };
            let text = match c.meeting.until {
                Some(until) => {
                    format!("{}–{}", fmt_num(c.meeting.at), axis_value(parameter, until))
                }
                None if c.meeting.interpolated => {
                    format!("≈ {}", axis_value(parameter, c.meeting.at))
                }
                None => axis_value(parameter, c.meeting.at),
            };
            // Labels alternate above and below their circle so that neighbours do not overwrite each
            // other, on a white ground so that lines do not run through them.
            let font = (crate::report::fonts::FAMILY, 24).into_font().color(&INK);
            let (w, h) = area.estimate_text_size(&text, &font)?;
            let (w, h) = (w as i32 + 8, h as i32 + 4);
            let top = if n % 2 == 0 { -18 - h } else { 18 };
            chart.draw_series(std::iter::once(
                EmptyElement::at((c.meeting.at, y))
                    + Circle::new((0, 0), 12, INK.stroke_width(3))
                    + Rectangle::new([(-w / 2, top), (w / 2, top + h)], WHITE.mix(0.85).filled())
                    + Text::new(
                        text,
                        (0, top + h / 2),
                        font.pos(Pos::new(HPos::Center, VPos::Center)),
                    ),
            ))?;
        }
    }
    Ok(())
}

/// How the y axis maps values: linear from zero, or logarithmic when positive values span decades.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scale {
    /// A linear axis over `low..high`.
    Linear { low: f64, high: f64 },
    /// log10 of the values on a linear axis over whole decades `low..high` (exponents).
    Log { low: f64, high: f64 },
}

impl Scale {
    /// Logarithmic when every value is positive and the largest is at least 50 times the smallest (a
    /// 50 ms line beside 20 s ones would lie flat on zero); else linear, including zero.
    fn choose(values: impl Iterator<Item = f64>) -> Scale {
        let values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.is_empty() {
            return Scale::Linear {
                low: 0.0,
                high: 1.0,
            };
        }
        if lo > 0.0 && hi / lo >= 50.0 {
            let low = lo.log10().floor();
            let high = hi.log10().ceil().max(low + 1.0);
            return Scale::Log { low, high };
        }
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if hi > lo {
            Scale::Linear {
                low: lo * 1.1,
                high: hi * 1.15,
            }
        } else {
            Scale::Linear {
                low: 0.0,
                high: 1.0,
            }
        }
    }

    fn range(self) -> std::ops::Range<f64> {
        match self {
            Scale::Linear { low, high } | Scale::Log { low, high } => low..high,
        }
    }

    /// Where a value goes on the axis (`None` for values a log axis cannot show).
    fn map(self, value: f64) -> Option<f64> {
        match self {
            _ if !value.is_finite() => None,
            Scale::Linear { .. } => Some(value),
            Scale::Log { .. } if value > 0.0 => Some(value.log10()),
            Scale::Log { .. } => None,
        }
    }

    /// A tick label: the value, or on a log axis the power of ten (other ticks unlabelled).
    fn label(self, v: f64) -> String {
        match self {
            Scale::Linear { .. } => fmt_num(v),
            Scale::Log { .. } if (v - v.round()).abs() < 1e-9 => fmt_num(10f64.powf(v.round())),
            Scale::Log { .. } => String::new(),
        }
    }
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
        assert!(
            a.contains("polling.interval (s)"),
            "the axis names the parameter"
        );
        assert!(a.contains("requests_per_second (requests / s)"));
        let png = png(&sweep, "lost").unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(unit("latency_ms.p50"), "ms");
        assert_eq!(unit("disconnected_s"), "s");
        assert_eq!(unit("lost"), "");
    }

    #[test]
    fn repeated_runs_draw_error_bars_sized_by_their_intervals() {
        let plain = crate::sweep::tests::fake_sweep();
        let mut repeated = plain.clone();
        for run in repeated.points.iter_mut().flat_map(|p| p.runs.iter_mut()) {
            let rps = run.metrics.requests_per_second;
            run.ci95 = Some(serde_json::json!({ "requests_per_second": [rps * 0.8, rps * 1.25] }));
        }
        let panel = &repeated.panels()[0];
        let series = repeated.series(panel, "requests_per_second");
        assert_eq!(series[0].intervals[0], Some((8.0, 12.5)), "polling at 1 s");
        assert!(plain.series(panel, "requests_per_second")[0].intervals[0].is_none());
        // Each bar is a vertical line and two whiskers: three more lines per point than without.
        let lines = |svg: &str| svg.matches("<line").count() + svg.matches("<polyline").count();
        let with = svg(&repeated, "requests_per_second").unwrap();
        let without = svg(&plain, "requests_per_second").unwrap();
        assert!(
            lines(&with) >= lines(&without) + 3 * 8,
            "{} vs {}",
            lines(&with),
            lines(&without)
        );
    }

    #[test]
    fn the_y_axis_goes_logarithmic_only_over_decades_of_positive_values() {
        let log = Scale::choose([50.0, 60.0, 18_000.0].into_iter());
        assert_eq!(
            log,
            Scale::Log {
                low: 1.0,
                high: 5.0
            }
        );
        assert_eq!(log.map(100.0), Some(2.0));
        assert_eq!(log.map(0.0), None);
        assert_eq!(
            (log.label(3.0), log.label(3.5)),
            ("1000".to_string(), String::new())
        );
        assert!(matches!(
            Scale::choose([0.0, 5.0, 18_000.0].into_iter()),
            Scale::Linear { .. }
        ));
        assert_eq!(
            Scale::choose(std::iter::empty()),
            Scale::Linear {
                low: 0.0,
                high: 1.0
            }
        );
    }
}
