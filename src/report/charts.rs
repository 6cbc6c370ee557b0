//! Charts: pure functions from a [`Report`] to a drawing on any plotters [`DrawingBackend`], and the
//! exporter that renders each as SVG and PNG into `charts/`.
//!
//! Every chart uses the same colour per transport ([`colour`], Okabe–Ito, colour-blind friendly), a title,
//! axis titles with units and one legend row. Text is laid out and rasterised with the DejaVu Sans font
//! embedded in the binary ([`super::fonts`]): nothing depends on system fonts or libraries, and the same
//! report gives byte-identical files. The charts only read the report: they never reconstruct a series the
//! simulation did not record.

use std::ops::Range;

use anyhow::anyhow;
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::fonts::{self, CrispText};
use super::insights::fmt_num;
use super::{label, Exporter, Report, ReportFile, RunResult};
use crate::transport::TransportKind;

/// Width of every chart, pixels: a 16:9 slide at 1600×900.
pub const WIDTH: u32 = 1600;

const FONT: &str = super::fonts::FAMILY;
pub(crate) const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub(crate) const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
pub(crate) const FAULT: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The colour of a transport in every chart (and in the report page's table).
pub fn colour(transport: TransportKind) -> RGBColor {
    // Okabe & Ito, "Color Universal Design": distinguishable with every common colour-vision deficiency.
    match transport {
        TransportKind::Polling => RGBColor(0xE6, 0x9F, 0x00), // orange
        TransportKind::LongPolling => RGBColor(0xCC, 0x79, 0xA7), // reddish purple
        TransportKind::Sse => RGBColor(0x00, 0x9E, 0x73),     // bluish green
        TransportKind::Websocket => RGBColor(0x00, 0x72, 0xB2), // blue
    }
}

/// A transport's colour as `#rrggbb`.
pub fn colour_hex(transport: TransportKind) -> String {
    let RGBColor(r, g, b) = colour(transport);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The charts of a report, in the order the report page shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    /// Latency distribution per transport (CDF, log time axis), one panel per scenario.
    LatencyCdf,
    /// p50 / p95 / p99 latency per transport, grouped bars, one panel per scenario.
    LatencyPercentiles,
    /// Events delivered per second over simulated time, with fault marks, one panel per scenario.
    Deliveries,
    /// Mean delay of each published event over simulated time, with fault marks.
    EventDelay,
    /// Requests per second at the server and bytes on the wire per delivered event.
    Cost,
    /// Lost deliveries, reconnects and time disconnected.
    Resilience,
}

impl Chart {
    /// Every chart, in report order.
    pub const ALL: [Chart; 6] = [
        Chart::LatencyCdf,
        Chart::LatencyPercentiles,
        Chart::Deliveries,
        Chart::EventDelay,
        Chart::Cost,
        Chart::Resilience,
    ];

    /// File name without extension (`charts/<stem>.svg`, `charts/<stem>.png`).
    pub fn stem(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "latency-cdf",
            Chart::LatencyPercentiles => "latency-percentiles",
            Chart::Deliveries => "deliveries-over-time",
            Chart::EventDelay => "event-delay-over-time",
            Chart::Cost => "cost",
            Chart::Resilience => "resilience",
        }
    }

    /// The chart's title.
    pub fn title(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "Delivery latency distribution",
            Chart::LatencyPercentiles => "Delivery latency percentiles",
            Chart::Deliveries => "Events delivered over simulated time",
            Chart::EventDelay => "Delay of each event over simulated time",
            Chart::Cost => "Cost",
            Chart::Resilience => "Resilience",
        }
    }

    /// How to read the chart, one sentence (for the report page).
    pub fn caption(self) -> &'static str {
        match self {
            Chart::LatencyCdf => {
                "Share of deliveries that arrived within a given time after publication; further left \
                 and steeper is better. The time axis is logarithmic."
            }
            Chart::LatencyPercentiles => {
                "Median, 95th and 99th percentile delivery latency; lower is better. Logarithmic axis."
            }
            Chart::Deliveries => {
                "Deliveries per second of simulated time, all clients together, as a moving average; the \
                 dashed line is what was owed (events published × clients). Vertical lines mark faults."
            }
            Chart::EventDelay => {
                "Mean time from publication to receipt of each event; × marks events no client received \
                 (after the run's recovery period: lost for good). Vertical lines mark faults."
            }
            Chart::Cost => "Requests the server answered per second, and bytes on the wire (both \
                 directions, headers included) per delivered event; lower is cheaper.",
            Chart::Resilience => "Deliveries lost, reconnect attempts, and time spent without a working \
                 connection per client; lower is better.",
        }
    }

    /// Size in pixels for this report (taller when there are many scenario panels).
    pub fn size(self, report: &Report) -> (u32, u32) {
        let panels = match self {
            Chart::Cost => 2,
            Chart::Resilience => 3,
            _ => report.plan.scenarios.len(),
        };
        let (rows, _) = grid(panels);
        (WIDTH, 900.max(160 + 620 * rows as u32))
    }

    /// Draws the chart on `root`.
    pub fn draw<DB: DrawingBackend>(
        self,
        report: &Report,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        fonts::register();
        root.fill(&WHITE)?;
        let root = root.margin(14, 0, 0, 0);
        let body = root.titled(self.title(), bold(46).color(&INK))?;
        let (legend_area, body) = body.split_vertically(56);
        let extras: &[Extra] = match self {
            Chart::Deliveries => &[Extra::Owed, Extra::Fault],
            Chart::EventDelay => &[Extra::Undelivered, Extra::Fault],
            _ => &[],
        };
        legend(&legend_area, &report.transports(), extras)?;
        let body = body.margin(0, 10, 10, 20);
        match self {
            Chart::LatencyCdf => latency_cdf(report, &body),
            Chart::LatencyPercentiles => latency_percentiles(report, &body),
            Chart::Deliveries => deliveries(report, &body),
            Chart::EventDelay => event_delay(report, &body),
            Chart::Cost => cost(report, &body),
            Chart::Resilience => resilience(report, &body),
        }
    }

    /// The chart as SVG text.
    pub fn svg(self, report: &Report) -> anyhow::Result<String> {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, self.size(report)).into_drawing_area();
            self.draw(report, &root)
                .map_err(|e| anyhow!("cannot draw {}: {e}", self.stem()))?;
            root.present()
                .map_err(|e| anyhow!("cannot draw {}: {e}", self.stem()))?;
        }
        Ok(text)
    }

    /// The chart as a PNG image (8-bit RGB).
    pub fn png(self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let (w, h) = self.size(report);
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        {
            let backend = CrispText(BitMapBackend::with_buffer(&mut pixels, (w, h)));
            let root = backend.into_drawing_area();
            self.draw(report, &root)
                .map_err(|e| anyhow!("cannot draw {}: {e}", self.stem()))?;
            root.present()
                .map_err(|e| anyhow!("cannot draw {}: {e}", self.stem()))?;
        }
        encode_png(&pixels, w, h)
    }
}

/// The result of drawing on backend `DB`.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(crate) fn encode_png(rgb: &[u8], w: u32, h: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// `charts/<stem>.svg` and `charts/<stem>.png` for every chart.
pub struct ChartExport;

impl Exporter for ChartExport {
    fn name(&self) -> &'static str {
        "charts"
    }

    fn render(&self, report: &Report) -> anyhow::Result<Vec<ReportFile>> {
        let mut files = Vec::new();
        for chart in Chart::ALL {
            files.push((
                format!("charts/{}.svg", chart.stem()),
                chart.svg(report)?.into_bytes(),
            ));
            files.push((format!("charts/{}.png", chart.stem()), chart.png(report)?));
        }
        Ok(files)
    }
}

// ---------------------------------------------------------------------------------------------------
// Layout helpers

/// Rows and columns for `n` panels on a 16:9 page.
pub(crate) fn grid(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (1, 2),
        3 => (1, 3),
        4 => (2, 2),
        n => (n.div_ceil(3), 3),
    }
}

/// One area per panel, row by row.
fn panels<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    n: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    let (rows, cols) = grid(n);
    body.split_evenly((rows, cols))
        .into_iter()
        .take(n)
        .collect()
}

/// Legend entries besides the transports.
#[derive(Clone, Copy)]
pub(crate) enum Extra {
    Owed,
    Undelivered,
    Fault,
}

pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    transports: &[TransportKind],
    extras: &[Extra],
) -> DrawResult<DB> {
    let font = (FONT, 30).into_font().color(&INK);
    let (w, h) = area.dim_in_pixel();
    let swatch = 28;
    let gap = 36;
    let mut entries: Vec<(String, Option<TransportKind>, Option<Extra>)> = transports
        .iter()
        .map(|&t| (label(t).to_string(), Some(t), None))
        .collect();
    for &extra in extras {
        let text = match extra {
            Extra::Owed => "owed",
            Extra::Undelivered => "no client received it",
            Extra::Fault => "fault",
        };
        entries.push((text.to_string(), None, Some(extra)));
    }
    let widths: Vec<i32> = entries
        .iter()
        .map(|(text, _, _)| {
            area.estimate_text_size(text, &font)
                .map(|(tw, _)| swatch + 10 + tw as i32)
        })
        .collect::<Result<_, _>>()?;
    let total: i32 = widths.iter().sum::<i32>() + gap * (entries.len() as i32 - 1).max(0);
    let mut x = ((w as i32 - total) / 2).max(0);
    let y = h as i32 / 2;
    for ((text, transport, extra), width) in entries.iter().zip(widths) {
        match (transport, extra) {
            (Some(t), _) => {
                area.draw(&Rectangle::new(
                    [(x, y - swatch / 2), (x + swatch, y + swatch / 2)],
                    colour(*t).filled(),
                ))?;
            }
            (None, Some(Extra::Owed)) => {
                for dx in (0..swatch).step_by(10) {
                    area.draw(&PathElement::new(
                        vec![(x + dx, y), (x + (dx + 6).min(swatch), y)],
                        INK.stroke_width(2),
                    ))?;
                }
            }
            (None, Some(Extra::Undelivered)) => {
                area.draw(&Cross::new((x + swatch / 2, y), 9, INK.stroke_width(3)))?;
            }
            (None, Some(Extra::Fault)) => {
                for dy in (-swatch / 2..swatch / 2).step_by(8) {
                    area.draw(&PathElement::new(
                        vec![(x + swatch / 2, y + dy), (x + swatch / 2, y + dy + 5)],
                        FAULT.stroke_width(2),
                    ))?;
                }
            }
            (None, None) => {}
        }
        area.draw(&Text::new(
            text.clone(),
            (x + swatch + 10, y),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += width + gap;
    }
    Ok(())
}

/// The bold face at `size` (`FontDesc::style` would keep the regular face's glyphs).
pub(crate) fn bold<'a>(size: u32) -> FontDesc<'a> {
    FontDesc::new(FontFamily::SansSerif, size as f64, FontStyle::Bold)
}

fn caption_font<'a>() -> TextStyle<'a> {
    bold(32).color(&INK)
}

pub(crate) fn axis_font<'a>() -> TextStyle<'a> {
    (FONT, 24).into_font().color(&INK)
}

pub(crate) fn desc_font<'a>() -> TextStyle<'a> {
    (FONT, 26).into_font().color(&INK)
}

/// Line width for `transport`: the first transports drawn are a little wider, so that a line hidden
/// under an identical one (SSE and WebSocket often coincide) still shows as a coloured edge.
fn line_width(report: &Report, transport: TransportKind) -> u32 {
    const WIDTHS: [u32; 4] = [2, 4, 5, 7];
    let order = report.transports();
    let behind = order.len() - 1 - order.iter().position(|t| *t == transport).unwrap_or(0);
    WIDTHS[behind.min(WIDTHS.len() - 1)]
}

/// "No data" text in the middle of a panel that has nothing to show.
fn empty_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    why: &str,
) -> DrawResult<DB> {
    let inner = area.titled(caption, caption_font())?;
    let (w, h) = inner.dim_in_pixel();
    inner.draw(&Text::new(
        why.to_string(),
        (w as i32 / 2, h as i32 / 2),
        (FONT, 28)
            .into_font()
            .color(&FAULT)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}

/// A log range covering `values` (positive ones), padded to whole decades.
fn log_range(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let lo = 10f64.powf(lo.log10().floor());
    let mut hi = 10f64.powf(hi.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    Some(lo..hi)
}

/// Axis label for milliseconds on a log axis: "1", "10", "100", "1 s", "10 s", "1 min"…
fn ms_label(ms: f64) -> String {
    // Whole minutes read as minutes; 100 s stays "100 s" rather than "1.67 min".
    if ms >= 60_000.0 && (ms / 60_000.0).fract() == 0.0 {
        format!("{} min", fmt_num(ms / 60_000.0))
    } else if ms >= 1000.0 {
        format!("{} s", fmt_num(ms / 1000.0))
    } else {
        format!("{} ms", fmt_num(ms))
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// Only the powers of ten are labelled on a log axis (the minor ticks stay unlabelled).
fn is_decade(v: f64) -> bool {
    v > 0.0 && (v.log10() - v.log10().round()).abs() < 1e-9
}

/// Fault marks of a scenario's runs: unique times (to 0.1 s) with their labels, in time order.
fn fault_marks(runs: &[&RunResult]) -> Vec<(f64, String, Vec<TransportKind>)> {
    let mut marks: Vec<(f64, String, Vec<TransportKind>)> = Vec::new();
    for run in runs {
        for (at, what) in &run.metrics.timeline.fault_marks {
            let at = (at * 10.0).round() / 10.0;
            match marks.iter_mut().find(|(t, w, _)| *t == at && w == what) {
                Some((_, _, who)) if !who.contains(&run.transport) => who.push(run.transport),
                Some(_) => {}
                None => marks.push((at, what.clone(), vec![run.transport])),
            }
        }
    }
    marks.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    marks
}

/// Above this many distinct fault moments in a panel, faults are shown as a rug, not as lines.
const MAX_FAULT_LINES: usize = 12;

/// Draws fault marks on a time chart: dashed vertical lines labelled once per kind when they are few, a
/// rug of ticks along the top, one lane per transport in its colour, when they are many.
fn draw_faults<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    runs: &[&RunResult],
    y_bottom: Y::ValueType,
    y_top: Y::ValueType,
) -> DrawResult<DB>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let marks = fault_marks(runs);
    if marks.is_empty() {
        return Ok(());
    }
    let label_font = (FONT, 22).into_font().color(&INK);
    let distinct_times = {
        let mut times: Vec<f64> = marks.iter().map(|m| m.0).collect();
        times.dedup();
        times
    };
    if distinct_times.len() <= MAX_FAULT_LINES {
        let mut labelled: Vec<&str> = Vec::new();
        for (i, &at) in distinct_times.iter().enumerate() {
            chart.draw_series(DashedLineSeries::new(
                vec![(at, y_bottom.clone()), (at, y_top.clone())],
                8,
                6,
                FAULT.stroke_width(2),
            ))?;
            let names: Vec<&str> = marks
                .iter()
                .filter(|m| m.0 == at && !labelled.contains(&m.1.as_str()))
                .map(|m| m.1.as_str())
                .collect();
            if !names.is_empty() {
                labelled.extend(&names);
                // Stagger labels so that two close faults do not print over each other.
                let dy = 6 + 26 * (i as i32 % 2);
                chart.draw_series(std::iter::once(
                    EmptyElement::at((at, y_top.clone()))
                        + Text::new(
                            format!(" {}", names.join(", ")),
                            (4, dy),
                            label_font.clone(),
                        ),
                ))?;
            }
        }
    } else {
        let transports: Vec<TransportKind> = runs.iter().map(|r| r.transport).collect();
        for (lane, &t) in transports.iter().enumerate() {
            let style = colour(t).stroke_width(2);
            let ticks: Vec<f64> = marks
                .iter()
                .filter(|m| m.2.contains(&t))
                .map(|m| m.0)
                .collect();
            chart.draw_series(ticks.into_iter().map(|at| {
                EmptyElement::at((at, y_top.clone()))
                    + PathElement::new(
                        vec![(0, 4 + 8 * lane as i32), (0, 10 + 8 * lane as i32)],
                        style,
                    )
            }))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// The charts

/// Latency CDF per transport, one panel per scenario, shared log time axis.
pub fn latency_cdf<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let scenarios = report.by_scenario();
    let all = report
        .runs
        .iter()
        .flat_map(|r| r.metrics.timeline.latency_cdf_ms.iter().map(|p| p.0));
    let Some(x_range) = log_range(all) else {
        for ((scenario, _), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
            empty_panel(&area, &scenario.name, "no deliveries")?;
        }
        return Ok(());
    };
    for ((scenario, runs), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
        if runs
            .iter()
            .all(|r| r.metrics.timeline.latency_cdf_ms.is_empty())
        {
            empty_panel(&area, &scenario.name, "no deliveries")?;
            continue;
        }
        let mut chart = ChartBuilder::on(&area)
            .caption(&scenario.name, caption_font())
            .margin(10)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(105)
            .build_cartesian_2d(x_range.clone().log_scale(), 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_desc("delivery latency (log scale)")
            .y_desc("deliveries within (%)")
            .x_label_formatter(&|v| {
                if is_decade(*v) {
                    ms_label(*v)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .draw()?;
        for run in runs {
            let points = &run.metrics.timeline.latency_cdf_ms;
            if points.is_empty() {
                continue;
            }
            let path = points
                .iter()
                .map(|&(ms, q)| (ms.max(x_range.start), q * 100.0));
            let width = line_width(report, run.transport);
            chart.draw_series(LineSeries::new(
                path,
                colour(run.transport).stroke_width(width),
            ))?;
        }
    }
    Ok(())
}

/// Grouped bars: one group per category, one bar per transport, a value label on each bar if it fits.
struct Bars<'a> {
    caption: &'a str,
    y_desc: &'a str,
    groups: Vec<String>,
    /// Per transport, a value per group (`None`: not run).
    series: Vec<(TransportKind, Vec<Option<f64>>)>,
    log: bool,
    value_label: fn(f64) -> String,
    /// Shared y range (across panels), or `None` to fit this panel.
    y_range: Option<Range<f64>>,
    /// 95 % confidence intervals in `series`' shape, drawn as error bars (empty: one seed, none).
    intervals: Vec<Vec<Option<(f64, f64)>>>,
}

/// A run's 95 % interval for the metric at `path` in summary.json (repeated runs only), times `scale`.
pub(crate) fn interval(run: &RunResult, path: &[&str], scale: f64) -> Option<(f64, f64)> {
    let mut value = run.ci95.as_ref()?;
    for key in path {
        value = value.get(key)?;
    }
    Some((
        value.get(0)?.as_f64()? * scale,
        value.get(1)?.as_f64()? * scale,
    ))
}

/// Per transport, per scenario: the interval of the metric at `path` (empty when runs were not repeated).
fn per_scenario_intervals(
    report: &Report,
    path: &[&str],
    scale: f64,
) -> Vec<Vec<Option<(f64, f64)>>> {
    if report.runs.iter().all(|r| r.ci95.is_none()) {
        return Vec::new();
    }
    let scenarios = report.by_scenario();
    report
        .transports()
        .into_iter()
        .map(|t| {
            scenarios
                .iter()
                .map(|(_, runs)| {
                    runs.iter()
                        .find(|r| r.transport == t)
                        .and_then(|r| interval(r, path, scale))
                })
                .collect()
        })
        .collect()
}

fn bar_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bars: &Bars<'_>) -> DrawResult<DB> {
    let values = || {
        bars.series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
    };
    let y_range = match (&bars.y_range, bars.log) {
        (Some(r), _) => r.clone(),
        (None, true) => log_range(values()).unwrap_or(1.0..10.0),
        (None, false) => {
            let max = values().fold(0.0f64, f64::max);
            0.0..if max > 0.0 { max * 1.18 } else { 1.0 }
        }
    };
    if values().all(|v| v == 0.0) && !bars.log {
        return empty_panel(area, bars.caption, "none in any run");
    }
    // Group `i` spans i-0.5..i+0.5, so that the axis' whole-number ticks fall on the group centres.
    let n = bars.groups.len();
    let x_axis = -0.5..n as f64 - 0.5;
    let groups = bars.groups.clone();
    // Group names share the axis: shorten them to their slot (about 13 px a character at this size).
    let slot_chars =
        ((area.dim_in_pixel().0 as f64 * 0.8 / n.max(1) as f64) / 13.0).max(3.0) as usize;
    let x_fmt = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            let name = groups.get(i as usize).cloned().unwrap_or_default();
            shorten(&name, slot_chars)
        } else {
            String::new()
        }
    };
    let k = bars.series.len().max(1) as f64;
    let bar_w = 0.8 / k;
    let label_font = (FONT, 20).into_font().color(&INK);
    let builder = |area| {
        let mut b = ChartBuilder::on(area);
        b.caption(bars.caption, caption_font())
            .margin(10)
            .margin_right(20)
            .x_label_area_size(50)
            .y_label_area_size(105);
        b
    };
    macro_rules! draw_bars {
        ($chart:expr, $bottom:expr) => {{
            let chart = $chart;
            for (j, (t, vals)) in bars.series.iter().enumerate() {
                let style = colour(*t).filled();
                chart.draw_series(vals.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    let x0 = i as f64 - 0.4 + j as f64 * bar_w;
                    let top = if bars.log { v.max(y_range.start) } else { v };
                    Some(Rectangle::new(
                        [(x0, $bottom), (x0 + bar_w * 0.92, top)],
                        style,
                    ))
                }))?;
                // 95 % confidence intervals of repeated runs, as whiskers over the bars.
                if let Some(intervals) = bars.intervals.get(j) {
                    chart.draw_series(vals.iter().zip(intervals).enumerate().filter_map(
                        |(i, (v, ci))| {
                            let (v, (low, high)) = ((*v)?, (*ci)?);
                            // Identical runs have nothing to show (and zeros would clutter the axis).
                            if high - low <= f64::EPSILON * high.abs().max(1.0) {
                                return None;
                            }
                            let floor = if bars.log { y_range.start } else { f64::MIN };
                            let x = i as f64 - 0.4 + (j as f64 + 0.46) * bar_w;
                            Some(ErrorBar::new_vertical(
                                x,
                                low.max(floor),
                                v.max(floor),
                                high.max(floor),
                                INK.stroke_width(2),
                                10,
                            ))
                        },
                    ))?;
                }
                // Value labels above the bars, when the bar is wide enough for them.
                let px_per_unit = area.dim_in_pixel().0 as f64 * 0.85 / n as f64;
                chart.draw_series(vals.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    let text = (bars.value_label)(v);
                    if text.is_empty() {
                        return None;
                    }
                    let fits = area
                        .estimate_text_size(&text, &label_font)
                        .map(|(w, _)| (w as f64) < bar_w * px_per_unit * 1.3)
                        .unwrap_or(false);
                    let top = if bars.log { v.max(y_range.start) } else { v };
                    fits.then(|| {
                        EmptyElement::at((i as f64 - 0.4 + (j as f64 + 0.46) * bar_w, top))
                            + Text::new(
                                text,
                                (0, -4),
                                label_font.clone().pos(Pos::new(HPos::Center, VPos::Bottom)),
                            )
                    })
                }))?;
            }
        }};
    }
    if bars.log {
        let mut chart =
            builder(area).build_cartesian_2d(x_axis.clone(), y_range.clone().log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&x_fmt)
            .y_desc(bars.y_desc)
            .y_label_formatter(&|v| {
                if is_decade(*v) {
                    ms_label(*v)
                } else {
                    String::new()
                }
            })
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .draw()?;
        draw_bars!(&mut chart, y_range.start);
    } else {
        let mut chart = builder(area).build_cartesian_2d(x_axis, y_range.clone())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&x_fmt)
            .y_desc(bars.y_desc)
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .draw()?;
        draw_bars!(&mut chart, 0.0);
    }
    Ok(())
}

/// p50 / p95 / p99 per transport, one panel per scenario, shared log axis.
pub fn latency_percentiles<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let scenarios = report.by_scenario();
    fn delivered(r: &&RunResult) -> bool {
        r.metrics.delivered > 0
    }
    let all = report
        .runs
        .iter()
        .filter(delivered)
        .flat_map(|r| [r.metrics.latency_ms.p50, r.metrics.latency_ms.p99])
        .flatten();
    let y_range = log_range(all);
    for ((scenario, runs), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
        let Some(y_range) = y_range.clone().filter(|_| runs.iter().any(delivered)) else {
            empty_panel(&area, &scenario.name, "no deliveries")?;
            continue;
        };
        let series = report
            .transports()
            .into_iter()
            .map(|t| {
                let run = runs
                    .iter()
                    .find(|r| r.transport == t)
                    .filter(|r| delivered(r));
                let l = run.map(|r| &r.metrics.latency_ms);
                (
                    t,
                    vec![
                        l.and_then(|l| l.p50),
                        l.and_then(|l| l.p95),
                        l.and_then(|l| l.p99),
                    ],
                )
            })
            .collect();
        let intervals = report
            .transports()
            .into_iter()
            .map(|t| {
                let run = runs
                    .iter()
                    .find(|r| r.transport == t)
                    .filter(|r| delivered(r));
                ["p50", "p95", "p99"]
                    .iter()
                    .map(|p| run.and_then(|r| interval(r, &["latency_ms", p], 1.0)))
                    .collect()
            })
            .collect();
        bar_panel(
            &area,
            &Bars {
                caption: &scenario.name,
                y_desc: "delivery latency (log scale)",
                groups: vec!["p50".into(), "p95".into(), "p99".into()],
                series,
                log: true,
                value_label: |ms| {
                    if ms >= 1000.0 {
                        format!("{}s", fmt_num(ms / 1000.0))
                    } else {
                        fmt_num(ms)
                    }
                },
                y_range: Some(y_range.start..y_range.end * 1.6),
                intervals,
            },
        )?;
    }
    Ok(())
}

/// A centred moving average of a per-second series over `window` seconds, at most `max` points:
/// (time at the middle of the second, mean per second). Random arrivals make raw per-second counts
/// jump between 0 and several times the mean; the average shows the trend and the dips faults cause.
fn moving_average(values: &[f64], window: usize, max: usize) -> Vec<(f64, f64)> {
    let step = values.len().div_ceil(max.max(1)).max(1);
    let half = window / 2;
    (0..values.len())
        .step_by(step)
        .map(|i| {
            let from = i.saturating_sub(half);
            let to = (i + window - half).min(values.len());
            let slice = &values[from..to];
            (
                i as f64 + 0.5,
                slice.iter().sum::<f64>() / slice.len().max(1) as f64,
            )
        })
        .collect()
}

/// The averaging window of the deliveries chart, seconds: 5 s, or 1 % of a long run.
fn smoothing_window(duration_s: f64) -> usize {
    ((duration_s / 100.0).ceil() as usize).max(5)
}

/// At most this many points per line on time charts (keeps SVGs small for long runs).
const MAX_TIME_POINTS: usize = 600;

/// Events delivered per second per transport, with the owed rate and fault marks.
pub fn deliveries<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let scenarios = report.by_scenario();
    let duration = report.plan.duration.as_secs_f64();
    let clients = report.plan.clients as f64;
    let seconds = duration.ceil() as usize;
    let window = smoothing_window(duration);
    let series = |run: &RunResult, f: &dyn Fn(&crate::recorder::Bucket) -> f64| {
        let buckets = &run.metrics.timeline.buckets;
        let values: Vec<f64> = (0..seconds)
            .map(|s| buckets.get(s).map_or(0.0, f))
            .collect();
        moving_average(&values, window, MAX_TIME_POINTS)
    };
    let y_max = report
        .runs
        .iter()
        .flat_map(|r| {
            let delivered = series(r, &|b| b.deliveries as f64);
            let owed = series(r, &|b| b.published as f64 * clients);
            delivered.into_iter().chain(owed).map(|p| p.1)
        })
        .fold(0.0f64, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.25 } else { 1.0 };
    for ((scenario, runs), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
        let mut chart = ChartBuilder::on(&area)
            .caption(&scenario.name, caption_font())
            .margin(10)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(105)
            .build_cartesian_2d(0.0..duration, 0.0..y_top)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc(format!("deliveries per second ({window} s average)"))
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .draw()?;
        for run in runs {
            let line = series(run, &|b| b.deliveries as f64);
            let width = line_width(report, run.transport);
            chart.draw_series(LineSeries::new(
                line,
                colour(run.transport).stroke_width(width),
            ))?;
        }
        // The same events are published in every run of a scenario (same seed); the owed rate goes on top.
        if let Some(first) = runs.first() {
            let owed = series(first, &|b| b.published as f64 * clients);
            chart.draw_series(DashedLineSeries::new(owed, 10, 8, INK.stroke_width(2)))?;
        }
        draw_faults(&mut chart, runs, 0.0, y_top)?;
    }
    Ok(())
}

/// Mean delay of each event (binned when there are many), with undelivered events and fault marks.
pub fn event_delay<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let scenarios = report.by_scenario();
    let duration = report.plan.duration.as_secs_f64();
    let binned: Vec<Vec<EventBin>> = report
        .runs
        .iter()
        .map(|r| event_bins(&r.metrics.timeline.event_delay_ms, duration))
        .collect();
    let all = binned.iter().flatten().filter_map(|b| b.delay_ms);
    let Some(range) = log_range(all) else {
        for ((scenario, _), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
            empty_panel(&area, &scenario.name, "no deliveries")?;
        }
        return Ok(());
    };
    // Room at the top for the "no client received it" marks and fault labels.
    let y_range = range.start..range.end * 8.0;
    let lost_y = range.end * 2.5;
    for ((scenario, runs), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
        let mut chart = ChartBuilder::on(&area)
            .caption(&scenario.name, caption_font())
            .margin(10)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(105)
            .build_cartesian_2d(0.0..duration, y_range.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("publication time (simulated s)")
            .y_desc("delay (log scale)")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| {
                if is_decade(*v) && *v <= range.end {
                    ms_label(*v)
                } else {
                    String::new()
                }
            })
            .label_style(axis_font())
            .axis_desc_style(desc_font())
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
            .draw()?;
        for run in runs {
            let index = report
                .runs
                .iter()
                .position(|r| std::ptr::eq(r, *run))
                .unwrap_or(0);
            let bins = &binned[index];
            // One dot per event (or bin of events): a line through such noisy data draws miter spikes
            // in plotters' bitmap backend at every sharp turn, and suggests a continuity there is not.
            let dot = colour(run.transport).filled();
            chart.draw_series(
                bins.iter()
                    .filter_map(|bin| bin.delay_ms.map(|d| (bin.at, d.max(range.start))))
                    .map(|point| Circle::new(point, 3, dot)),
            )?;
            // The run drains after the last publication, so an event nobody received is lost for good.
            chart.draw_series(
                bins.iter()
                    .filter(|b| b.undelivered > 0)
                    .map(|b| Cross::new((b.at, lost_y), 7, colour(run.transport).stroke_width(3))),
            )?;
        }
        let any_undelivered = runs.iter().any(|r| {
            r.metrics
                .timeline
                .event_delay_ms
                .iter()
                .any(|e| e.1.is_none())
        });
        if any_undelivered {
            chart.draw_series(std::iter::once(
                EmptyElement::at((duration, lost_y))
                    + Text::new(
                        "not received ",
                        (0, -16),
                        (FONT, 20)
                            .into_font()
                            .color(&FAULT)
                            .pos(Pos::new(HPos::Right, VPos::Bottom)),
                    ),
            ))?;
        }
        draw_faults(&mut chart, runs, y_range.start, y_range.end)?;
    }
    Ok(())
}

/// Events grouped by publication time for the delay chart.
#[derive(Clone, Debug, PartialEq)]
struct EventBin {
    /// Middle of the bin (or the event's time), seconds.
    at: f64,
    /// Mean delay of the events in it that someone received, ms.
    delay_ms: Option<f64>,
    /// Events in it that no client received.
    undelivered: usize,
}

fn event_bins(events: &[(f64, Option<f64>)], duration: f64) -> Vec<EventBin> {
    if events.len() <= MAX_TIME_POINTS {
        return events
            .iter()
            .map(|&(at, d)| EventBin {
                at,
                delay_ms: d,
                undelivered: usize::from(d.is_none()),
            })
            .collect();
    }
    let width = duration.max(1e-9) / MAX_TIME_POINTS as f64;
    let mut bins: Vec<(f64, usize, usize)> = vec![(0.0, 0, 0); MAX_TIME_POINTS];
    for &(at, d) in events {
        let bin = &mut bins[((at / width) as usize).min(MAX_TIME_POINTS - 1)];
        match d {
            Some(d) => {
                bin.0 += d;
                bin.1 += 1;
            }
            None => bin.2 += 1,
        }
    }
    bins.into_iter()
        .enumerate()
        .filter(|(_, (_, n, lost))| n + lost > 0)
        .map(|(i, (sum, n, lost))| EventBin {
            at: (i as f64 + 0.5) * width,
            delay_ms: (n > 0).then(|| sum / n as f64),
            undelivered: lost,
        })
        .collect()
}

fn per_scenario(
    report: &Report,
    f: impl Fn(&RunResult) -> f64,
) -> Vec<(TransportKind, Vec<Option<f64>>)> {
    let scenarios = report.by_scenario();
    report
        .transports()
        .into_iter()
        .map(|t| {
            let values = scenarios
                .iter()
                .map(|(_, runs)| runs.iter().find(|r| r.transport == t).map(|r| f(r)))
                .collect();
            (t, values)
        })
        .collect()
}

fn scenario_names(report: &Report) -> Vec<String> {
    report
        .plan
        .scenarios
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

/// Requests per second at the server and bytes on the wire per delivered event.
pub fn cost<DB: DrawingBackend>(report: &Report, body: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let areas = panels(body, 2);
    bar_panel(
        &areas[0],
        &Bars {
            caption: "Requests per second at the server",
            y_desc: "requests / s",
            groups: scenario_names(report),
            series: per_scenario(report, |r| r.metrics.requests_per_second),
            log: false,
            value_label: fmt_num,
            y_range: None,
            intervals: per_scenario_intervals(report, &["requests_per_second"], 1.0),
        },
    )?;
    bar_panel(
        &areas[1],
        &Bars {
            caption: "Bytes on the wire per delivered event",
            y_desc: "bytes / delivered event",
            groups: scenario_names(report),
            series: per_scenario(report, |r| r.metrics.bytes_per_delivery.unwrap_or(f64::NAN))
                .into_iter()
                .map(|(t, v)| {
                    (
                        t,
                        v.into_iter().map(|x| x.filter(|x| x.is_finite())).collect(),
                    )
                })
                .collect(),
            log: false,
            value_label: |b| fmt_num(b.round()),
            y_range: None,
            intervals: per_scenario_intervals(report, &["bytes_per_delivery"], 1.0),
        },
    )
}

/// A bar's value label, none for zero (a row of "0" labels is clutter on a chart of problems).
fn non_zero(v: f64) -> String {
    if v == 0.0 {
        String::new()
    } else {
        fmt_num(v)
    }
}

/// A resilience panel: caption, axis title, the value of a run, its bar label.
/// Caption, axis, value, value label, and (summary.json metric, scale) for its confidence interval.
type ResiliencePanel<'a> = (
    &'a str,
    &'a str,
    Box<dyn Fn(&RunResult) -> f64 + 'a>,
    fn(f64) -> String,
    (&'static str, f64),
);

/// Lost deliveries, reconnects and time disconnected per client.
pub fn resilience<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let areas = panels(body, 3);
    let clients = report.plan.clients.max(1) as f64;
    let panels: [ResiliencePanel; 3] = [
        (
            "Lost deliveries",
            "deliveries never received",
            Box::new(|r| r.metrics.lost as f64),
            non_zero,
            ("lost", 1.0),
        ),
        (
            "Reconnects",
            "reconnect attempts",
            Box::new(|r| r.metrics.reconnects as f64),
            non_zero,
            ("reconnects", 1.0),
        ),
        (
            "Time disconnected",
            "seconds per client",
            Box::new(move |r| r.metrics.disconnected_s / clients),
            non_zero,
            ("disconnected_s", 1.0 / clients),
        ),
    ];
    for ((caption, y_desc, f, value_label, (metric, scale)), area) in panels.into_iter().zip(&areas)
    {
        bar_panel(
            area,
            &Bars {
                caption,
                y_desc,
                groups: scenario_names(report),
                series: per_scenario(report, f),
                log: false,
                value_label,
                y_range: None,
                intervals: per_scenario_intervals(report, &[metric], scale),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn svg(chart: Chart, report: &Report) -> String {
        chart.svg(report).unwrap()
    }

    #[test]
    fn every_chart_has_its_title_a_legend_and_one_colour_per_transport() {
        let report = fixture::report();
        for chart in Chart::ALL {
            let text = svg(chart, &report);
            assert!(text.starts_with("<svg"), "{}", chart.stem());
            assert!(
                text.contains(chart.title()),
                "{} lacks its title",
                chart.stem()
            );
            for t in TransportKind::ALL {
                assert!(
                    text.contains(label(t)),
                    "{}: no legend entry for {t}",
                    chart.stem()
                );
                assert!(
                    text.to_uppercase()
                        .contains(&colour_hex(t)[1..].to_uppercase()),
                    "{}: {t} is never drawn",
                    chart.stem()
                );
            }
        }
    }

    #[test]
    fn panels_are_named_after_scenarios_and_axes_carry_units() {
        let report = fixture::report();
        let cdf = svg(Chart::LatencyCdf, &report);
        assert!(cdf.contains("\noffice\n") && cdf.contains("\nmobile\n"));
        assert!(
            cdf.contains("delivery latency (log scale)") && cdf.contains("deliveries within (%)")
        );
        assert!(
            cdf.contains("100 ms") && cdf.contains("1 s"),
            "decades are labelled with units"
        );
        let bars = svg(Chart::LatencyPercentiles, &report);
        assert!(bars.contains("\np95\n"));
        let cost = svg(Chart::Cost, &report);
        assert!(cost.contains("requests / s") && cost.contains("bytes / delivered event"));
    }

    #[test]
    fn fault_marks_appear_on_the_time_charts_of_their_scenario_only() {
        let report = fixture::report();
        for chart in [Chart::Deliveries, Chart::EventDelay] {
            let text = svg(chart, &report);
            assert_eq!(
                text.matches("network switch").count(),
                1,
                "{}: labelled once",
                chart.stem()
            );
            assert_eq!(
                text.matches("NAT mapping dropped").count(),
                1,
                "{}",
                chart.stem()
            );
        }
        let marks = fault_marks(&report.by_scenario()[1].1);
        assert_eq!(marks.len(), 3);
        assert_eq!(
            marks[0].2.len(),
            4,
            "all four transports saw the switch at 20 s"
        );
        assert!(fault_marks(&report.by_scenario()[0].1).is_empty());
    }

    #[test]
    fn an_empty_run_gives_a_labelled_panel_not_a_blank() {
        let mut report = fixture::report();
        for run in &mut report.runs {
            run.metrics = fixture::metrics(1.0, 0.0, 0, 0, &[]);
            run.metrics.delivered = 0;
            run.metrics.lost = 0;
            run.metrics.timeline.latency_cdf_ms.clear();
            run.metrics
                .timeline
                .event_delay_ms
                .iter_mut()
                .for_each(|e| e.1 = None);
        }
        assert!(svg(Chart::LatencyCdf, &report).contains("no deliveries"));
        assert!(svg(Chart::Resilience, &report).contains("none in any run"));
    }

    #[test]
    fn many_events_are_binned_and_many_faults_become_a_rug() {
        let events: Vec<(f64, Option<f64>)> = (0..6000)
            .map(|i| {
                (
                    i as f64 / 100.0,
                    if i % 1000 == 0 { None } else { Some(50.0) },
                )
            })
            .collect();
        let bins = event_bins(&events, 60.0);
        assert_eq!(bins.len(), MAX_TIME_POINTS);
        assert_eq!(bins.iter().map(|b| b.undelivered).sum::<usize>(), 6);
        assert!(bins.iter().all(|b| b.delay_ms == Some(50.0)));

        let mut report = fixture::report();
        let marks: Vec<(f64, String)> = (0..50)
            .map(|i| (i as f64, "network switch".to_string()))
            .collect();
        report.runs[5].metrics.timeline.fault_marks = marks;
        let text = svg(Chart::Deliveries, &report);
        assert!(
            !text.contains("network switch"),
            "no label per mark when there are many"
        );
    }

    #[test]
    fn png_rendering_is_deterministic_and_decodable() {
        let report = fixture::report();
        let a = Chart::Cost.png(&report).unwrap();
        let b = Chart::Cost.png(&report).unwrap();
        assert_eq!(a, b);
        let decoder = png::Decoder::new(std::io::Cursor::new(&a));
        let reader = decoder.read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            Chart::Cost.size(&report)
        );
    }
}

/// Renders the fixture's charts into `$RTSIM_CHART_PREVIEW` for looking at them by eye:
/// `RTSIM_CHART_PREVIEW=/tmp/preview cargo test --lib preview_fixture_charts -- --ignored`.
#[cfg(test)]
#[test]
#[ignore = "writes files; run by hand to look at the charts"]
fn preview_fixture_charts() {
    let dir = std::path::PathBuf::from(
        std::env::var("RTSIM_CHART_PREVIEW").expect("set RTSIM_CHART_PREVIEW"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let report = super::fixture::report();
    for chart in Chart::ALL {
        std::fs::write(
            dir.join(format!("{}.png", chart.stem())),
            chart.png(&report).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{}.svg", chart.stem())),
            chart.svg(&report).unwrap(),
        )
        .unwrap();
    }
}
