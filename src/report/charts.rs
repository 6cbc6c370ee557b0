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
    /// Behind a load balancer: open connections on each replica over simulated time, one line per
    /// transport, with the replica's deploy marks and the run's other fault marks (scale-out too).
    /// Not in [`Chart::ALL`]: drawn only for reports with replicas ([`Chart::for_report`]).
    OpenConnections,
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

    /// The charts of `report`, in report order: [`Chart::ALL`], and the open connections per
    /// replica when some run was behind a load balancer (so that reports of one server keep their
    /// files).
    pub fn for_report(report: &Report) -> Vec<Chart> {
        let mut charts = Chart::ALL.to_vec();
        if report
            .runs
            .iter()
            .any(|r| !r.metrics.timeline.open_connections.is_empty())
        {
            charts.push(Chart::OpenConnections);
        }
        charts
    }

    /// File name without extension (`charts/<stem>.svg`, `charts/<stem>.png`).
    pub fn stem(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "latency-cdf",
            Chart::LatencyPercentiles => "latency-percentiles",
            Chart::Deliveries => "deliveries-over-time",
            Chart::EventDelay => "event-delay-over-time",
            Chart::Cost => "cost",
            Chart::Resilience => "resilience",
            Chart::OpenConnections => "open-connections-per-replica",
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
            Chart::OpenConnections => "Open connections per replica over simulated time",
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
                 dashed black line is what was owed (events published × clients). Each transport has \
                 its own dash pattern and marker, so identical lines stay visible. Thin vertical lines \
                 mark faults, one colour per kind."
            }
            Chart::EventDelay => {
                "Time from publication to receipt of each event across the clients that received it: \
                 the marker is the median client, the band runs from the 5th to the 95th percentile \
                 client, so the tail a fault creates shows. × marks events no client received (after \
                 the run's recovery period: lost for good). Thin vertical lines mark faults, one colour \
                 per kind."
            }
            Chart::Cost => "Requests the server answered per second, and bytes on the wire (both \
                 directions, headers included) per delivered event; lower is cheaper.",
            Chart::Resilience => "Deliveries lost, reconnect attempts, and time spent without a working \
                 connection per client; lower is better.",
            Chart::OpenConnections => {
                "Connections the balancer holds open to each replica, one panel per replica, as the \
                 mean over each simulated second: the capacity each server must carry. Thin vertical \
                 lines mark the replica's own deploy phases (drain, stop) and the run's other faults \
                 (a restart, a scale-out), one colour per kind."
            }
        }
    }

    /// Size in pixels for this report (taller when there are many scenario panels).
    pub fn size(self, report: &Report) -> (u32, u32) {
        let panels = match self {
            Chart::Cost => 2,
            Chart::Resilience => 3,
            Chart::OpenConnections => replica_panels(report).len(),
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
        let mut extras: Vec<Extra> = Vec::new();
        if matches!(
            self,
            Chart::LatencyCdf | Chart::Deliveries | Chart::OpenConnections
        ) {
            extras.push(Extra::Lines);
        }
        if self == Chart::OpenConnections {
            for (kind, c) in replica_mark_kinds(report) {
                extras.push(Extra::Fault(kind, c));
            }
        }
        if self == Chart::Deliveries {
            extras.push(Extra::Owed);
        }
        if self == Chart::EventDelay {
            extras.push(Extra::Markers);
        }
        let undelivered = report.runs.iter().any(|r| {
            r.metrics
                .timeline
                .event_delay_ms
                .iter()
                .any(|e| e.1.is_none())
        });
        if self == Chart::EventDelay && undelivered {
            extras.push(Extra::Undelivered);
        }
        if matches!(self, Chart::Deliveries | Chart::EventDelay) {
            for (kind, c) in fault_kinds(report) {
                extras.push(Extra::Fault(kind, c));
            }
        }
        let body = legend_rows(&body, &report.transports(), &extras, true)?;
        // Charts of one run's time series say whose, when runs were repeated with several seeds.
        let body = match (
            self.first_seed_only(),
            &report.runs.first().and_then(|r| r.seeds.clone()),
        ) {
            (true, Some(seeds)) if seeds.len() > 1 => {
                let (note, rest) = body.split_vertically(40);
                let (w, _) = note.dim_in_pixel();
                note.draw(&Text::new(
                    format!(
                        "The first of {} seeds (seed {}) is shown; tables and bar charts average all seeds.",
                        seeds.len(),
                        seeds[0]
                    ),
                    (w as i32 / 2, 4),
                    (FONT, 26).into_font().color(&FAULT).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
                rest
            }
            _ => body,
        };
        let body = body.margin(0, 10, 10, 20);
        match self {
            Chart::LatencyCdf => latency_cdf(report, &body),
            Chart::LatencyPercentiles => latency_percentiles(report, &body),
            Chart::Deliveries => deliveries(report, &body),
            Chart::EventDelay => event_delay(report, &body),
            Chart::Cost => cost(report, &body),
            Chart::Resilience => resilience(report, &body),
            Chart::OpenConnections => open_connections(report, &body),
        }
    }

    /// True for the charts drawn from one run's recorded series, which repeated runs do not average.
    pub fn first_seed_only(self) -> bool {
        matches!(
            self,
            Chart::LatencyCdf | Chart::Deliveries | Chart::EventDelay | Chart::OpenConnections
        )
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

    /// Every text of the chart with its box as laid out for the PNG, and the image size.
    pub fn text_layout(self, report: &Report) -> anyhow::Result<(Vec<fonts::TextBox>, (u32, u32))> {
        let (w, h) = self.size(report);
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        let boxes = std::rc::Rc::default();
        {
            let backend = fonts::TextLayout {
                inner: CrispText(BitMapBackend::with_buffer(&mut pixels, (w, h))),
                boxes: std::rc::Rc::clone(&boxes),
            };
            let root = backend.into_drawing_area();
            self.draw(report, &root)
                .map_err(|e| anyhow!("cannot draw {}: {e}", self.stem()))?;
        }
        let boxes = std::rc::Rc::try_unwrap(boxes)
            .map_or_else(|rc| rc.borrow().clone(), |c| c.into_inner());
        Ok((boxes, (w, h)))
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
        for chart in Chart::for_report(report) {
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
#[derive(Clone)]
pub(crate) enum Extra {
    /// The dashed line of what was owed.
    Owed,
    /// The × of events no client received.
    Undelivered,
    /// Thin vertical lines of one kind of fault, in its colour.
    Fault(String, RGBColor),
    /// The transports are drawn as lines (dash pattern and marker per transport), not as bars.
    Lines,
    /// The transports are drawn as markers on translucent bands (the per-event delay).
    Markers,
}

/// The legend in a row of `area` (one row: the sweep charts' legend has the transports only).
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    transports: &[TransportKind],
    extras: &[Extra],
) -> DrawResult<DB> {
    legend_rows(area, transports, extras, false).map(|_| ())
}

/// Height of one legend row, pixels.
const LEGEND_ROW: i32 = 48;

/// The legend at the top of `body`, in as many centred rows as its entries need; returns the area
/// below it. Without `split`, one row in the middle of `body`, and `body` is returned.
fn legend_rows<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    transports: &[TransportKind],
    extras: &[Extra],
    split: bool,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let font = (FONT, 30).into_font().color(&INK);
    let (w, h) = body.dim_in_pixel();
    let lines = extras.iter().any(|e| matches!(e, Extra::Lines));
    let markers = extras.iter().any(|e| matches!(e, Extra::Markers));
    let swatch = if lines { 56 } else { 28 };
    let gap = 36;
    let mut entries: Vec<(String, Option<TransportKind>, Option<Extra>)> = transports
        .iter()
        .map(|&t| (label(t).to_string(), Some(t), None))
        .collect();
    for extra in extras {
        let text = match extra {
            Extra::Owed => "owed".to_string(),
            Extra::Undelivered => "no client received it".to_string(),
            Extra::Fault(kind, _) => kind.clone(),
            Extra::Lines | Extra::Markers => continue,
        };
        entries.push((text, None, Some(extra.clone())));
    }
    let swatch_of = |extra: &Option<Extra>| {
        if matches!(extra, Some(Extra::Fault(..)) | Some(Extra::Undelivered)) {
            28
        } else {
            swatch
        }
    };
    let widths: Vec<i32> = entries
        .iter()
        .map(|(text, _, extra)| {
            body.estimate_text_size(text, &font)
                .map(|(tw, _)| swatch_of(extra) + 10 + tw as i32)
        })
        .collect::<Result<_, _>>()?;
    // Pack entries into rows no wider than the chart.
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut row_w = 0;
    for (i, &width) in widths.iter().enumerate() {
        let current = rows.last_mut().expect("one row");
        if current.is_empty() {
            current.push(i);
            row_w = width;
        } else if split && row_w + gap + width > w as i32 - 40 {
            rows.push(vec![i]);
            row_w = width;
        } else {
            current.push(i);
            row_w += gap + width;
        }
    }
    let (area, rest) = if split {
        body.split_vertically(LEGEND_ROW * rows.len() as i32 + 8)
    } else {
        (body.clone(), body.clone())
    };
    for (row, members) in rows.iter().enumerate() {
        let total: i32 = members.iter().map(|&i| widths[i]).sum::<i32>()
            + gap * (members.len() as i32 - 1).max(0);
        let mut x = ((w as i32 - total) / 2).max(0);
        let y = if split {
            LEGEND_ROW * row as i32 + LEGEND_ROW / 2
        } else {
            h as i32 / 2
        };
        for &i in members {
            let (text, transport, extra) = &entries[i];
            let sw = swatch_of(extra);
            match (transport, extra) {
                (Some(t), _) if lines => {
                    let look = line_look(*t);
                    let points = vec![(x, y), (x + swatch, y)];
                    draw_styled_line(&area, points, colour(*t).stroke_width(4), look.dash)?;
                    draw_marker(&area, (x + swatch / 2, y), look.marker, colour(*t))?;
                }
                (Some(t), _) if markers => {
                    area.draw(&PathElement::new(
                        vec![(x + swatch / 2, y - 18), (x + swatch / 2, y + 18)],
                        colour(*t).mix(0.45).stroke_width(5),
                    ))?;
                    draw_marker(&area, (x + swatch / 2, y), line_look(*t).marker, colour(*t))?;
                }
                (Some(t), _) => {
                    area.draw(&Rectangle::new(
                        [(x, y - swatch / 2), (x + swatch, y + swatch / 2)],
                        colour(*t).filled(),
                    ))?;
                }
                (None, Some(Extra::Owed)) => {
                    let points = vec![(x, y), (x + swatch, y)];
                    draw_styled_line(&area, points, INK.stroke_width(2), Some((10, 8)))?;
                }
                (None, Some(Extra::Undelivered)) => {
                    area.draw(&Cross::new((x + 14, y), 9, INK.stroke_width(3)))?;
                }
                (None, Some(Extra::Fault(_, c))) => {
                    area.draw(&PathElement::new(
                        vec![(x + 14, y - 16), (x + 14, y + 16)],
                        c.stroke_width(2),
                    ))?;
                }
                _ => {}
            }
            area.draw(&Text::new(
                text.clone(),
                (x + sw + 10, y),
                font.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += widths[i] + gap;
        }
    }
    Ok(rest)
}

/// Marker shapes of the line charts, one per transport.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}

/// How a transport's line looks: dash pattern (dash, gap in px; `None`: solid) and marker. Together
/// with [`line_width`] (lines drawn first are wider) two identical curves both stay visible: the one
/// on top is thinner and broken, so the one below shows through it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LineLook {
    pub dash: Option<(u32, u32)>,
    pub marker: Marker,
}

pub(crate) fn line_look(transport: TransportKind) -> LineLook {
    match transport {
        TransportKind::Polling => LineLook {
            dash: None,
            marker: Marker::Circle,
        },
        TransportKind::LongPolling => LineLook {
            dash: Some((22, 8)),
            marker: Marker::Triangle,
        },
        TransportKind::Sse => LineLook {
            dash: Some((12, 8)),
            marker: Marker::Square,
        },
        TransportKind::Websocket => LineLook {
            dash: Some((5, 7)),
            marker: Marker::Diamond,
        },
    }
}

/// A polyline in pixels on `area`, solid or dashed.
pub(crate) fn draw_styled_line<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: Vec<(i32, i32)>,
    style: ShapeStyle,
    dash: Option<(u32, u32)>,
) -> DrawResult<DB> {
    match dash {
        None => area.draw(&PathElement::new(points, style)),
        Some((size, spacing)) => area.draw(&plotters::element::DashedPathElement::new(
            points, size, spacing, style,
        )),
    }
}

/// A marker centred on pixel `at` of `area`: filled shape with a white rim, so that it reads on lines.
pub(crate) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    marker: Marker,
    colour: RGBColor,
) -> DrawResult<DB> {
    let r = 8;
    let outline = |points: Vec<(i32, i32)>| -> DrawResult<DB> {
        area.draw(&Polygon::new(points.clone(), colour.filled()))?;
        let mut closed = points;
        closed.push(closed[0]);
        area.draw(&PathElement::new(closed, WHITE.stroke_width(2)))
    };
    match marker {
        Marker::Circle => {
            area.draw(&Circle::new((x, y), r, colour.filled()))?;
            area.draw(&Circle::new((x, y), r, WHITE.stroke_width(2)))
        }
        Marker::Triangle => outline(vec![
            (x, y - r - 1),
            (x + r + 1, y + r - 1),
            (x - r - 1, y + r - 1),
        ]),
        Marker::Square => outline(vec![
            (x - r + 1, y - r + 1),
            (x + r - 1, y - r + 1),
            (x + r - 1, y + r - 1),
            (x - r + 1, y + r - 1),
        ]),
        Marker::Diamond => outline(vec![
            (x, y - r - 2),
            (x + r + 2, y),
            (x, y + r + 2),
            (x - r - 2, y),
        ]),
    }
}

/// Draws a transport's line on a chart: its width by drawing order, its dash pattern, and markers at
/// the `marks` (indices into `points`).
fn draw_transport_line<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    report: &Report,
    transport: TransportKind,
    points: &[(X::ValueType, Y::ValueType)],
    marks: &[usize],
) -> DrawResult<DB>
where
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone,
    Y::ValueType: Clone,
{
    let look = line_look(transport);
    let style = colour(transport).stroke_width(line_width(report, transport));
    let pixels: Vec<(i32, i32)> = points.iter().map(|p| chart.backend_coord(p)).collect();
    let area = chart.plotting_area().strip_coord_spec();
    let (bx, by) = area.get_base_pixel();
    let local: Vec<(i32, i32)> = pixels.iter().map(|(x, y)| (x - bx, y - by)).collect();
    draw_styled_line(&area, local.clone(), style, look.dash)?;
    for &i in marks {
        if let Some(&p) = local.get(i) {
            draw_marker(&area, p, look.marker, colour(transport))?;
        }
    }
    Ok(())
}

/// Indices of `n` points at which transport number `slot` of `of` puts its markers: six along the line,
/// shifted per transport so that markers of identical lines fall side by side, not on top of each other.
fn marker_indices(n: usize, slot: usize, of: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let count = 6;
    (0..count)
        .map(|k| {
            let q = (k as f64 + 0.5 + slot as f64 / of.max(1) as f64) / (count as f64 + 1.0);
            ((q * n as f64) as usize).min(n - 1)
        })
        .collect()
}

/// The bold face at `size` (`FontDesc::style` would keep the regular face's glyphs).
pub(crate) fn bold<'a>(size: u32) -> FontDesc<'a> {
    FontDesc::new(FontFamily::SansSerif, size as f64, FontStyle::Bold)
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
    let inner = panel_caption(area, caption)?;
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

/// `text` split where a line may break: after a hyphen, underscore, dot, slash or space (the break
/// character stays on the first line, spaces are dropped), never inside a word.
fn break_points(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c == ' ' {
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current) + " ");
            } else if let Some(last) = pieces.last_mut() {
                // A space after a break character ("a · b") belongs to the piece before it.
                if !last.ends_with(' ') {
                    last.push(' ');
                }
            }
            continue;
        }
        current.push(c);
        if matches!(c, '-' | '_' | '.' | '/' | '·' | ',') {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// `text` wrapped at [`break_points`] into lines no wider than `width` px as measured by `measure`;
/// `None` when a piece alone is too wide or more than `max_lines` lines are needed.
pub(crate) fn wrap(
    text: &str,
    width: f64,
    max_lines: usize,
    measure: &dyn Fn(&str) -> f64,
) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in break_points(text) {
        let candidate = format!("{line}{piece}");
        if measure(candidate.trim_end()) <= width {
            line = candidate;
        } else {
            if measure(piece.trim_end()) > width {
                return None;
            }
            if !line.is_empty() {
                lines.push(line.trim_end().to_string());
            }
            line = piece;
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    (lines.len() <= max_lines).then_some(lines)
}

/// Text width in pixels at `style` on `area` (0 when it cannot be measured).
fn text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
) -> f64 {
    area.estimate_text_size(text, style)
        .map(|(w, _)| w as f64)
        .unwrap_or(0.0)
}

/// A panel's title, fitted to the panel: the bold caption size, smaller if needed (down to 22 px),
/// then wrapped onto two lines at word breaks. Returns the area below it, with room for the top tick
/// label of the plot under it.
pub(crate) fn panel_caption<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, _) = area.dim_in_pixel();
    let width = w as f64 - 20.0;
    let mut chosen = None;
    'sizes: for max_lines in [1, 2] {
        for size in (22..=32).rev().step_by(2) {
            let style = bold(size).color(&INK);
            let measure = |t: &str| text_width(area, t, &style);
            if let Some(lines) = wrap(text, width, max_lines, &measure) {
                chosen = Some((size, lines));
                break 'sizes;
            }
        }
    }
    // A single word wider than the panel at 22 px: the smallest size, unbroken (the overlap test
    // reports it if it ever happens with real names).
    let (size, lines) = chosen.unwrap_or((22, vec![text.to_string()]));
    let style = bold(size)
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    let line_h = size as i32 + 6;
    for (i, line) in lines.iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (w as i32 / 2, 4 + i as i32 * line_h),
            style.clone(),
        ))?;
    }
    let used = 4 + lines.len() as i32 * line_h + 14;
    Ok(area.split_vertically(used).1)
}

/// Width of a y label area that holds the axis title (rotated) and tick labels as wide as `widest`.
fn y_area<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, widest: &[String]) -> u32 {
    let font = axis_font();
    let labels = widest
        .iter()
        .map(|t| text_width(area, t, &font))
        .fold(0.0f64, f64::max);
    // Axis title (26 px font, rotated), a gap, the labels, the tick mark and its padding.
    (34.0 + 12.0 + labels + 16.0).ceil() as u32
}

/// The labels a log axis over `range` may show: its decades as [`ms_label`]s.
fn decade_labels(range: &Range<f64>) -> Vec<String> {
    let mut labels = Vec::new();
    let mut v = range.start;
    while v <= range.end * 1.0001 {
        labels.push(ms_label(v));
        v *= 10.0;
    }
    labels
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

/// Colours of fault lines, by kind in order of first appearance: greys and hues no transport uses.
const FAULT_COLOURS: [RGBColor; 4] = [
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0xD5, 0x5E, 0x00), // vermillion (Okabe–Ito)
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x56, 0xB4, 0xE9), // sky blue (Okabe–Ito)
];

/// The kinds of fault marked anywhere in the report, in order of first appearance (scenario order,
/// then time), each with its colour: one legend entry per kind actually present.
pub(crate) fn fault_kinds(report: &Report) -> Vec<(String, RGBColor)> {
    let mut kinds: Vec<String> = Vec::new();
    for (_, runs) in report.by_scenario() {
        for (_, what, _) in fault_marks(&runs) {
            if !kinds.contains(&what) {
                kinds.push(what);
            }
        }
    }
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, FAULT_COLOURS[i % FAULT_COLOURS.len()]))
        .collect()
}

/// Marks of one kind closer than this many pixels are drawn as one span: a fault that hits each
/// client in turn (a NAT expiring per mapping, an upgrade refused per client) would otherwise be a wall
/// of lines that hides the data under it.
const FAULT_MERGE_PX: i32 = 8;

/// Groups the times of marks (sorted) into spans (first, last) whose neighbours are at most
/// `max_gap` apart, after mapping each time to a pixel with `px`.
fn fault_spans(times: &[f64], px: impl Fn(f64) -> i32, max_gap: i32) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for &t in times {
        match spans.last_mut() {
            Some(span) if px(t) - px(span.1) <= max_gap => span.1 = t,
            _ => spans.push((t, t)),
        }
    }
    spans
}

/// Draws a scenario's fault marks as thin vertical lines over the whole plot height, in the colour of
/// their kind (the legend names the kinds). Marks of a kind that crowd together become one lightly
/// shaded span with a line at each end, so the chart shows when faults happen without a wall of lines.
fn draw_faults<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    kinds: &[(String, RGBColor)],
    runs: &[&RunResult],
    y_bottom: Y::ValueType,
    y_top: Y::ValueType,
) -> DrawResult<DB>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let marks = fault_marks(runs);
    for (kind, c) in kinds {
        let times: Vec<f64> = marks.iter().filter(|m| &m.1 == kind).map(|m| m.0).collect();
        let px = |t: f64| chart.backend_coord(&(t, y_bottom.clone())).0;
        let spans = fault_spans(&times, px, FAULT_MERGE_PX);
        for (from, to) in spans {
            if to > from {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(from, y_bottom.clone()), (to, y_top.clone())],
                    c.mix(0.12).filled(),
                )))?;
            }
            let ends = if to > from {
                vec![from, to]
            } else {
                vec![from]
            };
            for at in ends {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(at, y_bottom.clone()), (at, y_top.clone())],
                    c.mix(0.8).stroke_width(1),
                )))?;
            }
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
        let inner = panel_caption(&area, &scenario.name)?;
        let mut chart = ChartBuilder::on(&inner)
            .margin(10)
            .margin_top(0)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(Y_AREA)
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
        let order = report.transports();
        for run in runs {
            let points = &run.metrics.timeline.latency_cdf_ms;
            if points.is_empty() {
                continue;
            }
            let path: Vec<(f64, f64)> = points
                .iter()
                .map(|&(ms, q)| (ms.max(x_range.start), q * 100.0))
                .collect();
            // Markers at shares of deliveries (not at point indices, which crowd in the tail).
            let slot = order.iter().position(|t| *t == run.transport).unwrap_or(0);
            let marks: Vec<usize> = marker_indices(100, slot, order.len())
                .into_iter()
                .filter_map(|q| path.iter().position(|p| p.1 >= q as f64))
                .collect();
            draw_transport_line(&mut chart, report, run.transport, &path, &marks)?;
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
    /// Groups are labelled by key letter (A, B, …), the chart draws the key.
    keyed: bool,
    /// In `series`' shape: true where the run exists but has no value because it delivered nothing.
    /// Such a slot is labelled "no deliveries" instead of being left blank (or drawn as a zero bar,
    /// which would read as the fastest or cheapest). Empty: no such slot.
    nothing: Vec<Vec<bool>>,
}

/// The label of a bar slot whose run delivered nothing.
pub(crate) const NO_DELIVERIES: &str = "no deliveries";

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
            0.0..if max > 0.0 { max * 1.25 } else { 1.0 }
        }
    };
    if values().next().is_none() && bars.nothing.iter().flatten().any(|n| *n) {
        return empty_panel(area, bars.caption, NO_DELIVERIES);
    }
    if values().all(|v| v == 0.0) && !bars.log {
        return empty_panel(area, bars.caption, "none in any run");
    }
    let inner = panel_caption(area, bars.caption)?;
    // Group `i` spans i-0.5..i+0.5, so that the axis' whole-number ticks fall on the group centres.
    let n = bars.groups.len();
    let x_axis = -0.5..n as f64 - 0.5;
    let k = bars.series.len().max(1) as f64;
    let bar_w = 0.8 / k;
    let label_font = (FONT, 20).into_font().color(&INK);
    let nothing_font = (FONT, 18)
        .into_font()
        .color(&FAULT)
        .transform(FontTransform::Rotate270);
    let tick_labels = if bars.log {
        decade_labels(&y_range)
    } else {
        vec![fmt_num(y_range.end), fmt_num(y_range.end / 7.0)]
    };
    let y_label_area = y_area(&inner, &tick_labels);
    // Group names are drawn by `group_labels` below the axis: up to two lines, or a key letter.
    let x_label_area = if bars.keyed { 44 } else { 78 };
    let builder = |area| {
        let mut b = ChartBuilder::on(area);
        b.margin(10)
            .margin_top(0)
            .margin_right(20)
            .x_label_area_size(x_label_area)
            .y_label_area_size(y_label_area);
        b
    };
    // Value labels: placed after every bar, above their bar, never over another label.
    let mut labels: Vec<(String, (i32, i32))> = Vec::new();
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
                let mut whisker_tops = vec![None; vals.len()];
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
                            whisker_tops[i] = Some(high.max(floor));
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
                for (i, v) in vals.iter().enumerate() {
                    let Some(v) = *v else { continue };
                    let text = (bars.value_label)(v);
                    if text.is_empty() {
                        continue;
                    }
                    let top = if bars.log { v.max(y_range.start) } else { v };
                    let top = whisker_tops[i].map_or(top, |w: f64| w.max(top));
                    let at = chart.backend_coord(&(i as f64 - 0.4 + (j as f64 + 0.46) * bar_w, top));
                    labels.push((text, at));
                }
            }
            let (x_px, y_px) = chart.plotting_area().get_pixel_range();
            let mut occupied = Vec::new();
            for (j, flags) in bars.nothing.iter().enumerate() {
                for (i, _) in flags.iter().enumerate().filter(|(_, f)| **f) {
                    let x = i as f64 - 0.4 + (j as f64 + 0.46) * bar_w;
                    let at = chart.backend_coord(&(x, $bottom));
                    occupied.push(no_deliveries_label(area, at, &nothing_font)?);
                }
            }
            place_value_labels(area, &labels, &label_font, (x_px, y_px.clone()), &occupied)?;
            let centres: Vec<i32> = (0..n)
                .map(|i| chart.backend_coord(&(i as f64, $bottom)).0)
                .collect();
            group_labels(area, bars, &centres, y_px.end + 8)?;
        }};
    }
    if bars.log {
        let mut chart =
            builder(&inner).build_cartesian_2d(x_axis.clone(), y_range.clone().log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|_| String::new())
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
        let mut chart = builder(&inner).build_cartesian_2d(x_axis, y_range.clone())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|_| String::new())
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

/// Draws value labels (text, backend pixel of the bar's top centre) on `area`: each centred over its
/// bar, lifted a line at a time while it would overlap a label already placed (at most twice), and left
/// out when it still would or when it would leave the plot. Greedy in drawing order, so the outcome is
/// deterministic.
fn place_value_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[(String, (i32, i32))],
    font: &TextStyle,
    (x_px, y_px): (Range<i32>, Range<i32>),
    occupied: &[(i32, i32, i32, i32)],
) -> DrawResult<DB> {
    let (bx, by) = area.get_base_pixel();
    let mut placed: Vec<(i32, i32, i32, i32)> = occupied.to_vec();
    for (text, (x, y)) in labels {
        let Ok((w, h)) = area.estimate_text_size(text, font) else {
            continue;
        };
        let (w, h) = (w as i32, h as i32);
        let left = (x - w / 2).clamp(x_px.start + 2, (x_px.end - w - 2).max(x_px.start + 2));
        for lift in 0..3 {
            let bottom = y - 4 - lift * (h + 3);
            let rect = (left, bottom - h, left + w, bottom);
            if rect.1 < y_px.start {
                break;
            }
            let clear = placed
                .iter()
                .all(|p| rect.2 + 3 <= p.0 || p.2 + 3 <= rect.0 || rect.3 <= p.1 || p.3 <= rect.1);
            if clear {
                placed.push(rect);
                area.draw(&Text::new(
                    text.clone(),
                    (left - bx, bottom - by),
                    font.clone().pos(Pos::new(HPos::Left, VPos::Bottom)),
                ))?;
                break;
            }
        }
    }
    Ok(())
}

/// Draws "no deliveries" upright in a bar's slot, reading upwards from the axis at backend pixel
/// `(x, bottom)`; returns its box in backend pixels (left, top, right, bottom).
fn no_deliveries_label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, bottom): (i32, i32),
    font: &TextStyle,
) -> Result<(i32, i32, i32, i32), DrawingAreaErrorKind<DB::ErrorType>> {
    let (bx, by) = area.get_base_pixel();
    let (w, h) = area.estimate_text_size(NO_DELIVERIES, font)?;
    // Rotated, the text is h wide and w tall: its left edge at x - h/2, its foot 6 px above the axis.
    let (w, h) = (w as i32, h as i32);
    let rect = (x - h / 2, bottom - 6 - w, x - h / 2 + h, bottom - 6);
    // Under Rotate270 the anchor (the text's top-left before rotation) lands at the box's bottom-left.
    area.draw(&Text::new(
        NO_DELIVERIES.to_string(),
        (rect.0 - bx, rect.3 - by),
        font.clone().pos(Pos::new(HPos::Left, VPos::Top)),
    ))?;
    Ok(rect)
}

/// Group names under a bar panel's axis at the pixel `centres`, starting at pixel row `top`: wrapped
/// onto two lines at word breaks, or — in a keyed chart — the key letter of each group.
fn group_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bars: &Bars<'_>,
    centres: &[i32],
    top: i32,
) -> DrawResult<DB> {
    let (bx, by) = area.get_base_pixel();
    let font = axis_font();
    let slot = slot_width(centres);
    for (i, (name, &x)) in bars.groups.iter().zip(centres).enumerate() {
        let lines = if bars.keyed {
            vec![key_letter(i)]
        } else {
            wrap(name, slot, 2, &|t| text_width(area, t, &font))
                .unwrap_or_else(|| vec![key_letter(i)])
        };
        for (l, line) in lines.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (x - bx, top - by + l as i32 * 27),
                font.clone().pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
    }
    Ok(())
}

/// The room for one group's name: the distance between group centres, less a gap.
fn slot_width(centres: &[i32]) -> f64 {
    match centres {
        [a, b, ..] => (b - a) as f64 - 12.0,
        _ => 400.0,
    }
}

/// "A", "B", … for the scenario key of crowded bar charts.
fn key_letter(i: usize) -> String {
    let letters: Vec<char> = ('A'..='Z').collect();
    if i < letters.len() {
        letters[i].to_string()
    } else {
        format!("S{}", i + 1)
    }
}

/// True when scenario `names` cannot be written under the bars of a panel `panel_w` pixels wide
/// (two lines each, at word breaks): the chart then labels groups A, B, … with a key.
fn needs_key<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    names: &[String],
    panel_w: f64,
) -> bool {
    let font = axis_font();
    // The plot is the panel less its y label area (~130 px) and margins.
    let slot = (panel_w - 170.0) / names.len().max(1) as f64 - 12.0;
    names
        .iter()
        .any(|n| wrap(n, slot, 2, &|t| text_width(body, t, &font)).is_none())
}

/// The key of a keyed chart ("A baseline · B mobile-nat …"), wrapped to the chart's width, at the
/// bottom of `body`; returns the area above it.
fn draw_key<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    names: &[String],
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let font = desc_font();
    let (w, h) = body.dim_in_pixel();
    let entries: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} = {n}", key_letter(i)))
        .collect();
    let mut lines: Vec<String> = Vec::new();
    for entry in entries {
        match lines.last_mut() {
            Some(line)
                if text_width(body, &format!("{line}    {entry}"), &font) < w as f64 - 40.0 =>
            {
                line.push_str("    ");
                line.push_str(&entry);
            }
            _ => lines.push(entry),
        }
    }
    let line_h = 34;
    let height = line_h * lines.len() as i32 + 16;
    let (above, strip) = body.split_vertically(h as i32 - height);
    for (i, line) in lines.iter().enumerate() {
        strip.draw(&Text::new(
            line.clone(),
            (w as i32 / 2, 8 + i as i32 * line_h),
            font.clone().pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    Ok(above)
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
                keyed: false,
                nothing: report
                    .transports()
                    .into_iter()
                    .map(|t| {
                        let silent = runs
                            .iter()
                            .any(|r| r.transport == t && r.metrics.delivered == 0);
                        vec![silent; 3]
                    })
                    .collect(),
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

/// The averaging window of the deliveries chart, seconds: 10 s, or 1/30 of a long run — wide enough
/// that random arrivals do not turn four lines into a tangle, narrow enough to show a fault's dip.
fn smoothing_window(duration_s: f64) -> usize {
    ((duration_s / 30.0).ceil() as usize).max(10)
}

/// Labels on a time axis: few enough that "1800" and "2000" do not touch in a third of the width.
const TIME_LABELS: usize = 5;

/// The y label area of the line charts: room for the axis title and labels up to "10 min" / "10000".
const Y_AREA: u32 = 140;

/// At most this many points per line on time charts (keeps SVGs small for long runs).
const MAX_TIME_POINTS: usize = 600;

/// The panels of the open-connections chart: (scenario, replica, the scenario's runs), for every
/// replica of every scenario whose runs were behind a balancer.
fn replica_panels(report: &Report) -> Vec<(String, usize, Vec<&RunResult>)> {
    let mut out = Vec::new();
    for (scenario, runs) in report.by_scenario() {
        let replicas = runs
            .iter()
            .map(|r| r.metrics.timeline.open_connections.len())
            .max()
            .unwrap_or(0);
        for k in 0..replicas {
            out.push((scenario.name.clone(), k, runs.clone()));
        }
    }
    out
}

/// The host a fault mark names (`server-<k>`), if it names one.
fn mark_replica(label: &str) -> Option<usize> {
    let rest = &label[label.find("server-")? + "server-".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A fault mark's kind on the open-connections chart: the label with the replica it names replaced
/// by "replica" (every replica's drain is one kind).
fn mark_kind(label: &str) -> String {
    match (label.find("server-"), mark_replica(label)) {
        (Some(at), Some(k)) => format!(
            "{}replica{}",
            &label[..at],
            &label[at + "server-".len() + k.to_string().len()..]
        ),
        _ => label.to_string(),
    }
}

/// The kinds of fault mark on the open-connections chart, in order of first appearance, with colours.
fn replica_mark_kinds(report: &Report) -> Vec<(String, RGBColor)> {
    let mut kinds: Vec<String> = Vec::new();
    for (_, runs) in report.by_scenario() {
        if runs
            .iter()
            .all(|r| r.metrics.timeline.open_connections.is_empty())
        {
            continue;
        }
        for (_, what, _) in fault_marks(&runs) {
            let kind = mark_kind(&what);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, FAULT_COLOURS[i % FAULT_COLOURS.len()]))
        .collect()
}

/// Open connections on each replica over time, one panel per replica, a line per transport, with
/// the marks of that replica's deploy phases and of faults that name no replica.
pub fn open_connections<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let panels_of = replica_panels(report);
    if panels_of.is_empty() {
        return empty_panel(body, "Open connections", "no run behind a load balancer");
    }
    let duration = report.plan.duration.as_secs_f64();
    let several = panels_of
        .iter()
        .map(|p| &p.0)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let y_max = report
        .runs
        .iter()
        .flat_map(|r| r.metrics.timeline.open_connections.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let y_top = if y_max > 0.0 { y_max * 1.2 } else { 1.0 };
    let kinds = replica_mark_kinds(report);
    let order = report.transports();
    for ((scenario, k, runs), area) in panels_of.iter().zip(panels(body, panels_of.len())) {
        let caption = if several {
            format!("{scenario} · server-{k}")
        } else {
            format!("server-{k}")
        };
        let inner = panel_caption(&area, &caption)?;
        let mut chart = time_axes(&inner, duration, y_top, "open connections")?;
        // This replica's marks and those naming no replica, each once.
        for (at, what, _) in fault_marks(runs) {
            if mark_replica(&what).is_some_and(|r| r != *k) {
                continue;
            }
            let kind = mark_kind(&what);
            let Some((_, c)) = kinds.iter().find(|(name, _)| *name == kind) else {
                continue;
            };
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(at, 0.0), (at, y_top)],
                c.mix(0.8).stroke_width(2),
            )))?;
        }
        for run in runs {
            let Some(values) = run.metrics.timeline.open_connections.get(*k) else {
                continue;
            };
            let line = moving_average(values, 1, MAX_TIME_POINTS);
            let slot = order.iter().position(|t| *t == run.transport).unwrap_or(0);
            let marks = marker_indices(line.len(), slot, order.len());
            draw_transport_line(&mut chart, report, run.transport, &line, &marks)?;
        }
    }
    Ok(())
}

/// A panel over simulated time in seconds, linear counts up.
type TimeChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A panel's axes for a count over simulated time: 0 to `duration` seconds across, 0 to `y_top` up,
/// with the mesh drawn.
fn time_axes<'a, DB: DrawingBackend>(
    inner: &'a DrawingArea<DB, Shift>,
    duration: f64,
    y_top: f64,
    y_desc: &str,
) -> Result<TimeChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(inner)
        .margin(10)
        .margin_top(0)
        .margin_right(30)
        .x_label_area_size(60)
        .y_label_area_size(Y_AREA)
        .build_cartesian_2d(0.0..duration, 0.0..y_top)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .x_labels(TIME_LABELS)
        .y_desc(y_desc)
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style(axis_font())
        .axis_desc_style(desc_font())
        .light_line_style(GRID.mix(0.5))
        .bold_line_style(GRID)
        .draw()?;
    Ok(chart)
}

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
    let kinds = fault_kinds(report);
    for ((scenario, runs), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
        let inner = panel_caption(&area, &scenario.name)?;
        let mut chart = time_axes(
            &inner,
            duration,
            y_top,
            &format!("deliveries per second ({window} s average)"),
        )?;
        draw_faults(&mut chart, &kinds, runs, 0.0, y_top)?;
        let order = report.transports();
        for run in runs {
            let line = series(run, &|b| b.deliveries as f64);
            let slot = order.iter().position(|t| *t == run.transport).unwrap_or(0);
            let marks = marker_indices(line.len(), slot, order.len());
            draw_transport_line(&mut chart, report, run.transport, &line, &marks)?;
        }
        // The same events are published in every run of a scenario (same seed); the owed rate goes on top.
        if let Some(first) = runs.first() {
            let owed = series(first, &|b| b.published as f64 * clients);
            chart.draw_series(DashedLineSeries::new(owed, 10, 8, INK.stroke_width(2)))?;
        }
    }
    Ok(())
}

/// The delay of each event across clients — median with a 5th–95th percentile band — binned when
/// there are many, with undelivered events and fault marks.
pub fn event_delay<DB: DrawingBackend>(
    report: &Report,
    body: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let scenarios = report.by_scenario();
    let duration = report.plan.duration.as_secs_f64();
    let binned: Vec<Vec<EventBin>> = report
        .runs
        .iter()
        .map(|r| event_bins(&r.metrics.timeline, duration))
        .collect();
    let all = binned
        .iter()
        .flatten()
        .filter_map(|b| b.spread)
        .flat_map(|(lo, mid, hi)| [lo, mid, hi]);
    let Some(range) = log_range(all) else {
        for ((scenario, _), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
            empty_panel(&area, &scenario.name, "no deliveries")?;
        }
        return Ok(());
    };
    let kinds = fault_kinds(report);
    // Room at the top for the "no client received it" marks.
    let y_range = range.start..range.end * 8.0;
    let lost_y = range.end * 2.5;
    let order = report.transports();
    for ((scenario, runs), area) in scenarios.iter().zip(panels(body, scenarios.len())) {
        let inner = panel_caption(&area, &scenario.name)?;
        let mut chart = ChartBuilder::on(&inner)
            .margin(10)
            .margin_top(0)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0.0..duration, y_range.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("publication time (simulated s)")
            .x_labels(TIME_LABELS)
            .y_desc("delay across clients (log scale)")
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
        draw_faults(&mut chart, &kinds, runs, y_range.start, y_range.end)?;
        // Bands first (all transports), then the medians, so that no band hides a median.
        let run_bins: Vec<(&RunResult, &Vec<EventBin>)> = runs
            .iter()
            .map(|run| {
                let index = report
                    .runs
                    .iter()
                    .position(|r| std::ptr::eq(r, *run))
                    .unwrap_or(0);
                (*run, &binned[index])
            })
            .collect();
        // Transports side by side within a publication moment: identical spreads stay distinguishable.
        let nudge = duration / 400.0;
        let offset = |t: TransportKind| {
            let slot = order.iter().position(|o| *o == t).unwrap_or(0) as f64;
            (slot - (order.len() as f64 - 1.0) / 2.0) * nudge
        };
        for (run, bins) in &run_bins {
            let c = colour(run.transport);
            let dx = offset(run.transport);
            chart.draw_series(bins.iter().filter_map(|bin| {
                let (lo, _, hi) = bin.spread?;
                (hi > lo).then(|| {
                    PathElement::new(
                        vec![
                            (bin.at + dx, lo.max(range.start)),
                            (bin.at + dx, hi.max(range.start)),
                        ],
                        c.mix(0.45).stroke_width(3),
                    )
                })
            }))?;
        }
        for (run, bins) in &run_bins {
            let c = colour(run.transport);
            let dx = offset(run.transport);
            let marker = line_look(run.transport).marker;
            let area = chart.plotting_area().strip_coord_spec();
            let (bx, by) = area.get_base_pixel();
            for bin in bins.iter() {
                if let Some((_, mid, _)) = bin.spread {
                    let (x, y) = chart.backend_coord(&(bin.at + dx, mid.max(range.start)));
                    draw_small_marker(&area, (x - bx, y - by), marker, c)?;
                }
            }
            // The run drains after the last publication, so an event nobody received is lost for good.
            chart.draw_series(
                bins.iter()
                    .filter(|b| b.undelivered > 0)
                    .map(|b| Cross::new((b.at + dx, lost_y), 7, c.stroke_width(3))),
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
    }
    Ok(())
}

/// A small marker (the per-event medians are many): the transport's shape at half size.
fn draw_small_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    marker: Marker,
    c: RGBColor,
) -> DrawResult<DB> {
    let r = 4;
    match marker {
        Marker::Circle => area.draw(&Circle::new((x, y), r, c.filled())),
        Marker::Triangle => area.draw(&Polygon::new(
            vec![(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)],
            c.filled(),
        )),
        Marker::Square => area.draw(&Rectangle::new(
            [(x - r, y - r), (x + r, y + r)],
            c.filled(),
        )),
        Marker::Diamond => area.draw(&Polygon::new(
            vec![
                (x, y - r - 1),
                (x + r + 1, y),
                (x, y + r + 1),
                (x - r - 1, y),
            ],
            c.filled(),
        )),
    }
}

/// Events grouped by publication time for the delay chart.
#[derive(Clone, Debug, PartialEq)]
struct EventBin {
    /// Middle of the bin (or the event's time), seconds.
    at: f64,
    /// The spread across clients of the events in it that someone received, ms: (p5, median, p95);
    /// for a bin of several events, the lowest p5, the mean median and the highest p95.
    spread: Option<(f64, f64, f64)>,
    /// Events in it that no client received.
    undelivered: usize,
}

fn event_bins(timeline: &crate::metrics::Timeline, duration: f64) -> Vec<EventBin> {
    let events = &timeline.event_delay_ms;
    // Shard files written before the spread existed carry the mean only: a band of zero width.
    let spread =
        |i: usize, mean: Option<f64>| match timeline.event_spread_ms.get(i).copied().flatten() {
            Some(s) => Some((s.p5, s.p50, s.p95)),
            None => mean.map(|m| (m, m, m)),
        };
    if events.len() <= MAX_TIME_POINTS {
        return events
            .iter()
            .enumerate()
            .map(|(i, &(at, d))| EventBin {
                at,
                spread: spread(i, d),
                undelivered: usize::from(d.is_none()),
            })
            .collect();
    }
    let width = duration.max(1e-9) / MAX_TIME_POINTS as f64;
    // Per bin: lowest p5, summed medians, highest p95, events received, events lost.
    let mut bins: Vec<(f64, f64, f64, usize, usize)> =
        vec![(f64::INFINITY, 0.0, 0.0, 0, 0); MAX_TIME_POINTS];
    for (i, &(at, d)) in events.iter().enumerate() {
        let bin = &mut bins[((at / width) as usize).min(MAX_TIME_POINTS - 1)];
        match spread(i, d) {
            Some((lo, mid, hi)) => {
                bin.0 = bin.0.min(lo);
                bin.1 += mid;
                bin.2 = bin.2.max(hi);
                bin.3 += 1;
            }
            None => bin.4 += 1,
        }
    }
    bins.into_iter()
        .enumerate()
        .filter(|(_, b)| b.3 + b.4 > 0)
        .map(|(i, (lo, sum, hi, n, lost))| EventBin {
            at: (i as f64 + 0.5) * width,
            spread: (n > 0).then(|| (lo, sum / n as f64, hi)),
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
    let names = scenario_names(report);
    let keyed = needs_key(body, &names, body.dim_in_pixel().0 as f64 / 2.0);
    let body = if keyed {
        draw_key(body, &names)?
    } else {
        body.clone()
    };
    let areas = panels(&body, 2);
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
            keyed,
            nothing: Vec::new(),
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
            keyed,
            nothing: per_scenario(report, |r| {
                if r.metrics.bytes_per_delivery.is_none() {
                    1.0
                } else {
                    0.0
                }
            })
            .into_iter()
            .map(|(_, v)| v.into_iter().map(|x| x == Some(1.0)).collect())
            .collect(),
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
    let names = scenario_names(report);
    let keyed = needs_key(body, &names, body.dim_in_pixel().0 as f64 / 3.0);
    let body = if keyed {
        draw_key(body, &names)?
    } else {
        body.clone()
    };
    let areas = panels(&body, 3);
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
                keyed,
                nothing: Vec::new(),
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

    /// The fixture with SSE in its last scenario delivering nothing: null latencies and bytes per
    /// delivery, as the metrics give them.
    fn report_with_a_silent_run() -> Report {
        let mut report = fixture::report();
        let last = report.plan.scenarios.last().unwrap().name.clone();
        let run = report
            .runs
            .iter_mut()
            .find(|r| r.scenario == last && r.transport == TransportKind::Sse)
            .unwrap();
        run.metrics.lost = run.metrics.expected;
        run.metrics.delivered = 0;
        run.metrics.latency_ms = Default::default();
        run.metrics.bytes_per_delivery = None;
        run.metrics.timeline.latency_cdf_ms.clear();
        report
    }

    #[test]
    fn a_run_that_delivered_nothing_is_labelled_not_drawn_as_a_zero_bar() {
        let report = report_with_a_silent_run();
        // One label per percentile group in the latency chart, one in the bytes-per-event panel of
        // the cost chart (requests per second are measured, so that panel has a bar).
        for (chart, labels) in [(Chart::LatencyPercentiles, 3), (Chart::Cost, 1)] {
            let (boxes, _) = chart.text_layout(&report).unwrap();
            let found: Vec<_> = boxes.iter().filter(|b| b.0 == NO_DELIVERIES).collect();
            assert_eq!(found.len(), labels, "{}: {found:?}", chart.stem());
            // Upright (taller than wide), standing on the plot's floor: inside the chart, not a caption.
            for (_, (l, t, r, b)) in found {
                assert!(b - t > 3 * (r - l), "{}: not upright", chart.stem());
            }
        }
        // The SVG carries the same words (the page embeds it), and no label collides with another.
        assert!(svg(Chart::LatencyPercentiles, &report).contains(NO_DELIVERIES));
        assert_text_fits(&report, "the fixture with a silent run");
    }

    #[test]
    fn crowded_fault_marks_merge_into_spans_and_lone_ones_stay_lines() {
        // 1 px per second: marks 0..5 s apart merge, a mark 20 s on stands alone.
        let times = [10.0, 14.0, 18.0, 20.0, 40.0, 60.0, 61.0];
        let spans = fault_spans(&times, |t| t as i32, FAULT_MERGE_PX);
        assert_eq!(spans, vec![(10.0, 20.0), (40.0, 40.0), (60.0, 61.0)]);
        assert!(fault_spans(&[], |t| t as i32, FAULT_MERGE_PX).is_empty());
    }

    #[test]
    fn many_events_are_binned_keeping_the_widest_spread() {
        let events: Vec<(f64, Option<f64>)> = (0..6000)
            .map(|i| {
                (
                    i as f64 / 100.0,
                    if i % 1000 == 0 { None } else { Some(50.0) },
                )
            })
            .collect();
        let spread = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.1.map(|m| crate::metrics::Spread {
                    p5: m - 10.0,
                    p50: m,
                    p95: if i == 7 { 900.0 } else { m + 10.0 },
                })
            })
            .collect();
        let timeline = crate::metrics::Timeline {
            event_delay_ms: events,
            event_spread_ms: spread,
            ..Default::default()
        };
        let bins = event_bins(&timeline, 60.0);
        assert_eq!(bins.len(), MAX_TIME_POINTS);
        assert_eq!(bins.iter().map(|b| b.undelivered).sum::<usize>(), 6);
        assert_eq!(
            bins[0].spread,
            Some((40.0, 50.0, 900.0)),
            "the tail survives binning"
        );
        assert!(bins[1..]
            .iter()
            .all(|b| b.spread == Some((40.0, 50.0, 60.0))));
    }

    #[test]
    fn wrapping_breaks_between_words_only() {
        let measure = |t: &str| t.chars().count() as f64;
        assert_eq!(
            wrap("proxy-blocks-websocket", 14.0, 2, &measure),
            Some(vec!["proxy-blocks-".to_string(), "websocket".to_string()])
        );
        assert_eq!(
            wrap("network-switch", 5.0, 2, &measure),
            None,
            "never mid-word"
        );
        assert_eq!(
            wrap("baseline · no nat here", 11.0, 2, &measure),
            Some(vec!["baseline ·".to_string(), "no nat here".to_string()])
        );
    }

    #[test]
    fn legends_name_only_what_the_chart_shows() {
        let report = fixture::report();
        let delay = svg(Chart::EventDelay, &report);
        assert!(
            delay.contains("no client received it"),
            "the fixture loses events"
        );
        let mut clean = fixture::report();
        clean.plan.scenarios.truncate(1);
        clean.runs.retain(|r| r.scenario == "office");
        for chart in [Chart::Deliveries, Chart::EventDelay] {
            let text = svg(chart, &clean);
            for absent in ["fault", "network switch", "no client received it"] {
                assert!(
                    !text.contains(absent),
                    "{}: `{absent}` without any",
                    chart.stem()
                );
            }
        }
        // With many faults, still one legend entry per kind and no label per mark.
        let mut busy = fixture::report();
        busy.runs[5].metrics.timeline.fault_marks = (0..50)
            .map(|i| (i as f64, "network switch".to_string()))
            .collect();
        let text = svg(Chart::Deliveries, &busy);
        assert_eq!(text.matches("network switch").count(), 1);
        assert_eq!(
            fault_kinds(&busy)
                .iter()
                .map(|k| k.0.as_str())
                .collect::<Vec<_>>(),
            ["network switch", "NAT mapping dropped"]
        );
    }

    /// The text-overlap class of bug, from the layout the chart code computed: in every chart, no two
    /// texts overlap and none leaves the image.
    fn assert_text_fits(report: &Report, what: &str) {
        let mut problems = Vec::new();
        for chart in Chart::for_report(report) {
            let (mut boxes, (w, h)) = chart.text_layout(report).unwrap();
            // plotters draws a log axis' label twice when a decade is both a bold and a light grid
            // line: the same text in the same box is one label on the image.
            let mut seen = Vec::new();
            boxes.retain(|b| {
                let fresh = !seen.contains(b);
                seen.push(b.clone());
                fresh
            });
            assert!(!boxes.is_empty(), "{}: no text recorded", chart.stem());
            for (i, (text, (l, t, r, b))) in boxes.iter().enumerate() {
                if *l < 0 || *t < 0 || *r > w as i32 || *b > h as i32 {
                    problems.push(format!(
                        "{}: `{text}` is clipped at {:?}",
                        chart.stem(),
                        (l, t, r, b)
                    ));
                }
                for (other, (l2, t2, r2, b2)) in &boxes[i + 1..] {
                    if l < r2 && l2 < r && t < b2 && t2 < b {
                        problems.push(format!(
                            "{}: `{text}` {:?} overlaps `{other}` {:?}",
                            chart.stem(),
                            (l, t, r, b),
                            (l2, t2, r2, b2)
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    }

    #[test]
    fn no_text_overlaps_or_is_clipped_in_any_chart_of_the_fixture() {
        assert_text_fits(&fixture::report(), "the fixture");
    }

    #[test]
    fn no_text_overlaps_or_is_clipped_in_any_chart_of_a_crowded_report() {
        assert_text_fits(&fixture::crowded_report(), "the crowded fixture");
    }

    #[test]
    fn no_text_overlaps_or_is_clipped_in_the_open_connections_chart_of_a_fleet() {
        let report = fixture::balanced_report();
        assert!(Chart::for_report(&report).contains(&Chart::OpenConnections));
        assert!(!Chart::for_report(&fixture::report()).contains(&Chart::OpenConnections));
        assert_text_fits(&report, "the balanced fixture");
    }

    #[test]
    fn replica_marks_are_grouped_by_kind_and_drawn_on_their_own_replica() {
        assert_eq!(mark_replica("deploy: server-12 drains"), Some(12));
        assert_eq!(mark_replica("server restart"), None);
        assert_eq!(
            mark_kind("deploy: server-12 drains"),
            "deploy: replica drains"
        );
        assert_eq!(mark_kind("server restart"), "server restart");
        let kinds: Vec<String> = replica_mark_kinds(&fixture::balanced_report())
            .into_iter()
            .map(|k| k.0)
            .collect();
        // Every replica's drain is one kind; the fixture's other marks (its mobile scenario) follow.
        assert_eq!(
            kinds,
            [
                "deploy: replica drains",
                "deploy: replica stops",
                "scale-out: replica added",
                "network switch",
                "NAT mapping dropped"
            ]
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
    for (prefix, report) in [
        ("", super::fixture::report()),
        ("crowded-", super::fixture::crowded_report()),
        ("balanced-", super::fixture::balanced_report()),
    ] {
        for chart in Chart::for_report(&report) {
            std::fs::write(
                dir.join(format!("{prefix}{}.png", chart.stem())),
                chart.png(&report).unwrap(),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("{prefix}{}.svg", chart.stem())),
                chart.svg(&report).unwrap(),
            )
            .unwrap();
        }
    }
}
