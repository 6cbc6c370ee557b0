//! How the recommendation is shown: the design brief's comparison table, its "implementation realities"
//! rows for the middleboxes the user has (both with the recommended transport highlighted), and the
//! recommendation in words.
//!
//! Functions here build tables and strings; they never print and never look at the terminal. Whether to
//! use colour is the caller's decision (`color`), taken from `NO_COLOR` and whether stdout is a terminal.
//! Without colour the recommended transport is still marked with `▶`.

use comfy_table::presets::UTF8_FULL;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};

use super::answers::{Answers, LoadBalancer};
use crate::decision::Recommendation;
use crate::transport::TransportKind;

/// Table width when stdout is not a terminal (pipes, files, CI logs) and `COLUMNS` is not set.
const DEFAULT_WIDTH: u16 = 110;

/// Where the output goes: how wide it may be and whether it is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    /// Columns: `COLUMNS` or the terminal's width; `None` for a pipe or a file (the defaults apply).
    pub columns: Option<usize>,
    /// Highlight the recommended transport with ANSI colour.
    pub color: bool,
}

impl Screen {
    /// Running text's width: the screen's, at most [`TEXT_WIDTH`], at least 40.
    pub fn text_width(self) -> usize {
        self.columns.map_or(TEXT_WIDTH, |c| c.clamp(40, TEXT_WIDTH))
    }
}

/// Should output be coloured? Only on a terminal, and never when `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>).
pub fn use_color(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn new_table(screen: Screen) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let width = screen
        .columns
        .map_or(DEFAULT_WIDTH, |c| c.clamp(40, u16::MAX as usize) as u16);
    table.set_width(width);
    table
}

fn marked(t: TransportKind, chosen: TransportKind) -> String {
    if t == chosen {
        format!("▶ {}", t.title())
    } else {
        t.title().to_string()
    }
}

fn cell(text: &str, highlight: bool, color: bool) -> Cell {
    let cell = Cell::new(text);
    if highlight && color {
        cell.fg(Color::Green).add_attribute(Attribute::Bold)
    } else {
        cell
    }
}

/// Below this many columns a six-column table breaks words apart, so the tables are printed as lists.
pub const NARROW_BELOW: usize = 100;

/// One row of a table printed as a list: its name, then each column's (label, text, is the chosen
/// transport).
type ListRow = (String, Vec<(String, String, bool)>);

/// A table as a list for a narrow screen: each row's name, then one wrapped line per column under it,
/// the chosen transport's lines marked (and coloured) as in the table.
fn as_list(rows: &[ListRow], screen: Screen) -> String {
    let width = screen.text_width();
    let label_width = rows
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(|(label, _, _)| label.chars().count()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, (name, cells)) in rows.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(name);
        out.push('\n');
        for (label, text, chosen) in cells {
            let first = format!("  {label:<label_width$}  ");
            let rest = " ".repeat(first.chars().count());
            let lines = wrap(text, &first, &rest, width);
            if *chosen && screen.color {
                out.push_str(&format!("\u{1b}[1;32m{}\u{1b}[0m\n", lines.trim_end()));
            } else {
                out.push_str(&lines);
            }
        }
    }
    out
}

/// The comparison for this screen: the table, or on a narrow screen the same cells as a list.
pub fn comparison_text(chosen: TransportKind, screen: Screen) -> String {
    if screen.columns.is_some_and(|c| c < NARROW_BELOW) {
        let columns = TransportKind::ALL.map(comparison_row);
        let rows: Vec<ListRow> = ASPECTS
            .iter()
            .enumerate()
            .map(|(i, aspect)| {
                let cells = TransportKind::ALL
                    .iter()
                    .zip(&columns)
                    .map(|(&t, column)| (marked(t, chosen), column[i].to_string(), t == chosen))
                    .collect();
                (aspect.to_string(), cells)
            })
            .collect();
        return as_list(&rows, screen);
    }
    format!("{}\n", comparison_table(chosen, screen))
}

/// The implementation realities for this screen: the table, or on a narrow screen a list; `None`
/// when the answers name no middlebox.
pub fn realities_text(a: &Answers, chosen: TransportKind, screen: Screen) -> Option<String> {
    if screen.columns.is_some_and(|c| c < NARROW_BELOW) {
        let rows: Vec<ListRow> = realities_rows(a)
            .iter()
            .map(|row| {
                let mut cells = vec![("What it does".to_string(), row[1].to_string(), false)];
                cells.extend(
                    TransportKind::ALL
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| (marked(t, chosen), row[i + 2].to_string(), t == chosen)),
                );
                (row[0].to_string(), cells)
            })
            .collect();
        return (!rows.is_empty()).then(|| as_list(&rows, screen));
    }
    realities_table(a, chosen, screen).map(|t| format!("{t}\n"))
}

/// The design brief's comparison of the four transports: one row per aspect, one column per transport,
/// the recommended column highlighted.
pub fn comparison_table(chosen: TransportKind, screen: Screen) -> Table {
    let color = screen.color;
    let mut table = new_table(screen);
    let mut header = vec![Cell::new("")];
    header.extend(TransportKind::ALL.map(|t| cell(&marked(t, chosen), t == chosen, color)));
    table.set_header(header);
    let columns = TransportKind::ALL.map(comparison_row);
    for (i, aspect) in ASPECTS.iter().enumerate() {
        let mut row = vec![Cell::new(aspect)];
        for (t, column) in TransportKind::ALL.iter().zip(&columns) {
            row.push(cell(column[i], *t == chosen, color));
        }
        table.add_row(row);
    }
    table
}

/// The comparison's rows, as the design brief names them.
pub const ASPECTS: [&str; 6] = [
    "Direction",
    "Protocol",
    "Latency",
    "Server load",
    "Auto-reconnect",
    "Proxy / firewall",
];

fn comparison_row(t: TransportKind) -> [&'static str; 6] {
    match t {
        TransportKind::Polling => [
            "client asks, server answers",
            "HTTP requests on a timer",
            "up to one polling interval",
            "high: a request per client per interval, mostly empty",
            "not needed: every poll is new",
            "passes everything; cacheable",
        ],
        TransportKind::LongPolling => [
            "client asks, server answers when there is news",
            "HTTP requests held open",
            "about one round trip after a change",
            "medium: a held request per client, a new one per event",
            "client re-polls; backoff is the app's job",
            "passes; a held request meets 30–60 s idle timeouts",
        ],
        TransportKind::Sse => [
            "server → client (client sends with ordinary requests)",
            "one long HTTP response (text/event-stream)",
            "low: pushed as it happens",
            "low: one open connection per client",
            "built in: EventSource reconnects and sends Last-Event-ID",
            "plain HTTP; buffering proxies hold it back without `X-Accel-Buffering: no`",
        ],
        TransportKind::Websocket => [
            "both ways, full duplex",
            "HTTP Upgrade, then WebSocket frames (RFC 6455)",
            "lowest: pushed as it happens",
            "low: one open connection per client",
            "none: the app or its library reconnects",
            "proxies may refuse the upgrade: needs a fallback",
        ],
    }
}

/// One "implementation realities" row: the middlebox, what it does, then its effect on each transport
/// in `TransportKind::ALL` order.
pub fn realities_rows(a: &Answers) -> Vec<[&'static str; 6]> {
    let mut rows = Vec::new();
    if a.mobile_share > 0.0 {
        rows.push([
            "Mobile carrier NAT",
            "forgets TCP mappings idle for 30–60 s",
            "unaffected: each poll is short",
            "a request held over 30 s is lost: hold ≤ 20 s",
            "an idle stream dies silently: heartbeat every 15 s",
            "an idle socket dies silently: ping every 20 s",
        ]);
        rows.push([
            "Wi-Fi ↔ cellular switch",
            "every TCP connection dies; seconds offline",
            "next poll succeeds; state is pulled",
            "re-poll with a cursor to get missed events",
            "EventSource reconnects with Last-Event-ID; server keeps history",
            "reconnect and resume from the last id (the app's job)",
        ]);
    }
    if a.corporate_proxies {
        rows.push([
            "Corporate proxy",
            "may buffer responses, refuse `Upgrade`, close idle connections",
            "passes",
            "passes: responses are complete",
            "buffered stream arrives late: HTTPS or a long-polling fallback",
            "upgrade refused: fall back to long polling",
        ]);
    }
    if a.cdn {
        rows.push([
            "CDN / reverse proxy",
            "buffers 4–8 KiB (nginx); cuts silent responses at 60 s (nginx) or 100 s (Cloudflare)",
            "passes; responses can be cached",
            "hold under the read timeout",
            "`X-Accel-Buffering: no`; heartbeat under the timeout; some CDNs lack SSE (Azure Front Door)",
            "enable WebSocket at the edge; ping under the idle timeout",
        ]);
    }
    match a.load_balancer {
        LoadBalancer::None => {}
        LoadBalancer::RoundRobin => rows.push([
            "Load balancer (round-robin)",
            "each request to any server; idle timeout 60 s (AWS ALB)",
            "fine if servers are stateless",
            "needs sticky sessions or shared state",
            "a stream stays on one server; heartbeat under 60 s",
            "a socket stays on one server; its long-polling fallback needs stickiness",
        ]),
        LoadBalancer::Sticky => rows.push([
            "Load balancer (sticky)",
            "keeps a client on one server; idle timeout 60 s (AWS ALB)",
            "fine",
            "fine; hold under 60 s",
            "heartbeat under 60 s",
            "ping under 60 s",
        ]),
    }
    rows
}

/// The "implementation realities" rows for the user's middleboxes, the recommended column highlighted;
/// `None` when the answers name no middlebox.
pub fn realities_table(a: &Answers, chosen: TransportKind, screen: Screen) -> Option<Table> {
    let color = screen.color;
    let rows = realities_rows(a);
    if rows.is_empty() {
        return None;
    }
    let mut table = new_table(screen);
    let mut header = vec![Cell::new("Middlebox"), Cell::new("What it does")];
    header.extend(TransportKind::ALL.map(|t| cell(&marked(t, chosen), t == chosen, color)));
    table.set_header(header);
    for row in rows {
        let mut cells = vec![Cell::new(row[0]), Cell::new(row[1])];
        for (i, t) in TransportKind::ALL.into_iter().enumerate() {
            cells.push(cell(row[i + 2], t == chosen, color));
        }
        table.add_row(cells);
    }
    Some(table)
}

/// The recommendation in words: transport, path, runner-up, mitigations with reasons and sources, notes.
pub fn recommendation_text(rec: &Recommendation, width: usize) -> String {
    let mut out = format!(
        "Recommendation: {} ({})\n\nPath through the decision tree:\n",
        rec.transport.title(),
        rec.transport.name()
    );
    for line in &rec.path {
        out.push_str(&wrap(line, "  ", "     ", width));
    }
    out.push('\n');
    out.push_str(&wrap(
        &format!(
            "Runner-up: {}, {}.",
            rec.runner_up.transport.title(),
            rec.runner_up.when
        ),
        "",
        "",
        width,
    ));
    if rec.mitigations.is_empty() {
        out.push_str("\nNo mitigations needed in this environment.\n");
    } else {
        out.push_str("\nWhat this environment demands:\n");
        for (i, m) in rec.mitigations.iter().enumerate() {
            out.push_str(&wrap(&m.title, &format!("  {}. ", i + 1), "     ", width));
            out.push_str(&wrap(
                &format!("Why: {}", m.reason),
                "     ",
                "     ",
                width,
            ));
            out.push_str(&wrap(
                &format!("Source: {}", m.source),
                "     ",
                "     ",
                width,
            ));
        }
    }
    for note in &rec.notes {
        out.push('\n');
        out.push_str(&wrap(&format!("Note: {note}"), "", "", width));
    }
    out
}

/// Width of running text in the recommendation.
pub const TEXT_WIDTH: usize = 100;

/// Word-wraps `text` to `width` columns: the first line starts with `first`, the others with `rest`;
/// ends with a newline. A word longer than a line gets a line of its own.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    // A unit stays with its number: "30–60 s" never breaks before the "s".
    let is_unit = |w: &str| {
        matches!(
            w.trim_end_matches([';', ',', '.', ')', ':']),
            "s" | "ms" | "KiB" | "%" | "h"
        )
    };
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if is_unit(word) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in &words {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::recommend;
    use std::ffi::OsStr;

    #[test]
    fn wrap_keeps_words_and_indent() {
        assert_eq!(wrap("aa bb cc", "  ", "  ", 7), "  aa bb\n  cc\n");
        assert_eq!(wrap("aa bb cc", " 1. ", "   ", 9), " 1. aa bb\n   cc\n");
        assert_eq!(wrap("averylongword x", "", "", 4), "averylongword\nx\n");
        assert_eq!(
            wrap("after 30–60 s; then", "", "", 10),
            "after\n30–60 s;\nthen\n"
        );
    }

    /// Output to a pipe, without colour.
    const PIPE: Screen = Screen {
        columns: None,
        color: false,
    };

    #[test]
    fn the_screen_width_reaches_text_and_tables() {
        let a = Answers {
            mobile_share: 0.7,
            corporate_proxies: true,
            ..Answers::default()
        };
        let rec = recommend(&a.situation());
        for columns in [80, 100] {
            let screen = Screen {
                columns: Some(columns),
                color: false,
            };
            let text = recommendation_text(&rec, screen.text_width());
            let tables = format!(
                "{}{}",
                comparison_text(rec.transport, screen),
                realities_text(&a, rec.transport, screen).unwrap()
            );
            // Narrow screens get lists, whose cells are never broken mid-word.
            assert_eq!(columns < NARROW_BELOW, !tables.contains('┆'), "{tables}");
            assert!(tables.contains("▶ Server-Sent"), "{tables}");
            for line in text.lines().chain(tables.lines()) {
                assert!(
                    line.chars().count() <= columns,
                    "{columns} columns: {line:?} is {} wide",
                    line.chars().count()
                );
            }
        }
        assert_eq!(PIPE.text_width(), TEXT_WIDTH);
    }

    #[test]
    fn color_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }

    #[test]
    fn comparison_marks_the_recommendation_without_colour() {
        let text = comparison_table(TransportKind::Sse, PIPE)
            .set_width(200)
            .to_string();
        assert!(text.contains("▶ Server-Sent Events"), "{text}");
        assert_eq!(text.matches('▶').count(), 1);
        assert!(!text.contains('\u{1b}'), "no escape codes without colour");
        for word in [
            "Direction",
            "Protocol",
            "Latency",
            "Server load",
            "Auto-reconnect",
        ] {
            assert!(text.contains(word), "{word}");
        }
    }

    #[test]
    fn colour_highlights_with_escape_codes() {
        let mut table = comparison_table(
            TransportKind::Websocket,
            Screen {
                color: true,
                ..PIPE
            },
        );
        table.enforce_styling();
        assert!(table.to_string().contains('\u{1b}'));
    }

    #[test]
    fn realities_rows_follow_the_middleboxes() {
        let none = Answers {
            mobile_share: 0.0,
            load_balancer: LoadBalancer::None,
            ..Answers::default()
        };
        assert!(realities_table(&none, TransportKind::Sse, PIPE).is_none());
        let all = Answers {
            mobile_share: 0.5,
            corporate_proxies: true,
            cdn: true,
            ..Answers::default()
        };
        let names: Vec<&str> = realities_rows(&all).iter().map(|r| r[0]).collect();
        assert_eq!(
            names,
            [
                "Mobile carrier NAT",
                "Wi-Fi ↔ cellular switch",
                "Corporate proxy",
                "CDN / reverse proxy",
                "Load balancer (round-robin)"
            ]
        );
        let mut table = realities_table(&all, TransportKind::Websocket, PIPE).unwrap();
        let text = table.set_width(200).to_string();
        assert!(text.contains("▶ WebSocket"), "{text}");
    }

    #[test]
    fn text_lists_path_runner_up_and_sourced_mitigations() {
        let a = Answers {
            mobile_share: 0.7,
            ..Answers::default()
        };
        let text = recommendation_text(&recommend(&a.situation()), TEXT_WIDTH);
        assert!(
            text.starts_with("Recommendation: Server-Sent Events (sse)"),
            "{text}"
        );
        assert!(text.contains(
            "2. Does the server need to push data to the client? yes → Server-Sent Events"
        ));
        assert!(text.contains("Runner-up: WebSocket, if clients start sending"));
        assert!(text.contains("Why: 70% of your clients"), "{text}");
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= TEXT_WIDTH || !l.contains(' ')),
            "{text}"
        );
        assert!(text.contains("Source: docs/references.md"), "{text}");
    }
}
