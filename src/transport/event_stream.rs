//! A `text/event-stream` parser that follows the WHATWG HTML rules for server-sent events, as a browser's
//! `EventSource` does: lines end in LF, CR or CRLF (also split across chunks); `data:` lines join with LF;
//! one leading space after the colon is dropped; `retry:` counts only when all ASCII digits; an `id` with
//! NUL is ignored; comment lines start with `:`; an event unfinished at the end of the stream is discarded.
//!
//! Pure: bytes in, events out. No I/O and no knowledge of what the events mean.

/// One dispatched event, lent by the parser for the length of a callback: the parser's buffers are
/// reused from event to event instead of each event owning copies (a client at 10,000 connections
/// paid for those allocations in cache misses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// `event:` field, or `message` when absent.
    pub event_type: &'a str,
    /// The `data:` lines joined with LF, as they came: [`SseEvent::data`] decodes them. Kept
    /// undecoded because a reader that only needs the id (rtsim's client) would otherwise validate
    /// every payload's UTF-8 for nothing.
    pub data_bytes: &'a [u8],
    /// The stream's last event ID when this event was dispatched.
    pub last_event_id: &'a str,
}

impl<'a> SseEvent<'a> {
    /// The event's data decoded as UTF-8, invalid sequences replaced, as a browser decodes the
    /// stream. Line ends are ASCII, so decoding the joined lines is decoding each line.
    pub fn data(&self) -> std::borrow::Cow<'a, str> {
        text(self.data_bytes)
    }
}

/// Incremental parser state for one stream.
#[derive(Debug, Default)]
pub struct EventStreamParser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF in the next chunk belongs to it.
    after_cr: bool,
    bom_checked: bool,
    data: Vec<u8>,
    event_type: String,
    last_event_id_buffer: String,
    /// The last event ID, as `EventSource` would send it in `Last-Event-ID` on reconnect.
    pub last_event_id: String,
    /// The reconnection time the server asked for with `retry:`, milliseconds.
    pub retry_ms: Option<u64>,
    /// Comment lines seen (heartbeats).
    pub comments: u64,
}

impl EventStreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk of the stream; `on_event` is called with each event it completes, in order.
    pub fn feed(&mut self, mut chunk: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        if !self.bom_checked {
            // The BOM may arrive split over chunks only in pathological streams; check the first bytes.
            if chunk.is_empty() {
                return;
            }
            self.bom_checked = true;
            if let Some(rest) = chunk.strip_prefix("\u{feff}".as_bytes()) {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            if self.after_cr {
                // A CR ended the last line; an LF right after it belongs to the same line end.
                self.after_cr = false;
                if chunk[0] == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) else {
                self.line.extend_from_slice(chunk);
                return;
            };
            self.after_cr = chunk[end] == b'\r';
            if self.line.is_empty() {
                // The whole line is in this chunk: parse it where it lies.
                self.process_line(&chunk[..end], on_event);
            } else {
                self.line.extend_from_slice(&chunk[..end]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, on_event);
                self.line = line;
                self.line.clear();
            }
            chunk = &chunk[end + 1..];
        }
    }

    /// One complete line (without its terminator). Line ends are ASCII, so decoding UTF-8 line by line
    /// is the same as decoding the stream first.
    fn process_line(&mut self, line: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&text(value));
            }
            b"data" => {
                // One allocation per event for the usual single `data:` line, not one per push.
                self.data.reserve(value.len() + 1);
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"id" if !value.contains(&0) => {
                self.last_event_id_buffer.clear();
                self.last_event_id_buffer.push_str(&text(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits but too large for u64 is still not a usable delay: ignore it.
                if let Ok(ms) = text(value).parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        self.last_event_id.clone_from(&self.last_event_id_buffer);
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        on_event(SseEvent {
            event_type: match self.event_type.as_str() {
                "" => "message",
                named => named,
            },
            data_bytes: self.data.strip_suffix(b"\n").unwrap_or(&self.data),
            last_event_id: &self.last_event_id,
        });
        self.data.clear();
        self.event_type.clear();
    }
}

/// A field value decoded as UTF-8, invalid sequences replaced (as a browser decodes the stream). Valid
/// UTF-8 is borrowed, without the slower replacing decoder.
fn text(value: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(text) => text.into(),
        Err(_) => String::from_utf8_lossy(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An [`SseEvent`] kept after its callback.
    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        event_type: String,
        data: String,
        last_event_id: String,
    }

    fn parse_chunks(chunks: &[&[u8]]) -> (Vec<Owned>, EventStreamParser) {
        let mut parser = EventStreamParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut |event| {
                out.push(Owned {
                    event_type: event.event_type.to_owned(),
                    data: event.data().into_owned(),
                    last_event_id: event.last_event_id.to_owned(),
                })
            });
        }
        (out, parser)
    }

    fn parse(text: &str) -> (Vec<Owned>, EventStreamParser) {
        parse_chunks(&[text.as_bytes()])
    }

    #[test]
    fn multi_line_data_joins_with_lf() {
        let (events, _) = parse("data: first\ndata:second\ndata:  third\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "first\nsecond\n third");
        assert_eq!(events[0].event_type, "message");
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines_even_across_chunks() {
        let (events, _) = parse("id: 1\rdata: a\r\rid: 2\r\ndata: b\r\n\r\nid: 3\ndata: c\n\n");
        let ids: Vec<_> = events.iter().map(|e| e.last_event_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        // CRLF split between chunks must not produce an extra blank line.
        let (events, _) = parse_chunks(&[b"data: x\r", b"\ndata: y\r\n\r", b"\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "x\ny");
    }

    #[test]
    fn retry_counts_only_when_all_digits() {
        let (_, parser) = parse("retry: 2500\n\n");
        assert_eq!(parser.retry_ms, Some(2500));
        let (_, parser) = parse("retry: 2500\nretry: 3s\nretry: -1\nretry: 1e3\nretry:\n\n");
        assert_eq!(
            parser.retry_ms,
            Some(2500),
            "non-digit retry values are ignored"
        );
    }

    #[test]
    fn unterminated_event_is_discarded() {
        let (events, parser) = parse("id: 1\ndata: done\n\nid: 2\ndata: half");
        assert_eq!(events.len(), 1);
        assert_eq!(parser.last_event_id, "1");
    }

    #[test]
    fn comments_are_counted_and_not_dispatched() {
        let (events, parser) = parse(": heartbeat\n\n:\n\ndata: real\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(parser.comments, 2);
    }

    #[test]
    fn id_with_nul_is_ignored_and_id_persists() {
        let (events, _) = parse("id: 7\ndata: a\n\nid: 8\0x\ndata: b\n\ndata: c\n\n");
        let ids: Vec<_> = events.iter().map(|e| e.last_event_id.as_str()).collect();
        assert_eq!(ids, ["7", "7", "7"]);
    }

    #[test]
    fn event_type_field_and_fields_without_colon() {
        let (events, _) = parse("event: score\ndata\ndata: 1\n\n");
        assert_eq!(events[0].event_type, "score");
        assert_eq!(events[0].data, "\n1");
    }

    #[test]
    fn id_only_block_updates_last_event_id_without_dispatch() {
        let (events, parser) = parse("id: 9\n\n");
        assert!(events.is_empty());
        assert_eq!(parser.last_event_id, "9");
    }

    #[test]
    fn lines_split_anywhere_across_chunks_parse_the_same() {
        let text =
            "retry: 1500\nid: 41\ndata: héllo\r\ndata: wörld\n\n: hb\n\nid: 42\ndata: two\n\n";
        let (whole, whole_parser) = parse(text);
        for split in 1..text.len() {
            let (a, b) = text.as_bytes().split_at(split);
            let (events, parser) = parse_chunks(&[a, b]);
            assert_eq!(events, whole, "split at {split}");
            assert_eq!(parser.retry_ms, whole_parser.retry_ms);
            assert_eq!(parser.comments, 1);
        }
        assert_eq!(whole[0].data, "héllo\nwörld");
        assert_eq!(whole[1].last_event_id, "42");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let (events, _) = parse_chunks(&[b"id: 5\xff\ndata: a\xc3\ndata: \xc3\xa9\n\n"]);
        assert_eq!(events[0].data, "a\u{fffd}\n\u{e9}");
        assert_eq!(events[0].last_event_id, "5\u{fffd}");
    }

    #[test]
    fn leading_bom_is_skipped() {
        let (events, _) = parse("\u{feff}data: hi\n\n");
        assert_eq!(events[0].data, "hi");
    }
}
