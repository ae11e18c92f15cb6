//! Bounds on what a server's event stream may make the client hold. The SSE
//! parser keeps an unfinished line, and an unfinished event, in memory until
//! it ends: a server that never ends a line (or streams `data:` lines with
//! no blank line between events) would grow them for as long as it sends,
//! and the stall timer never fires while bytes flow. The parser
//! ([`EventParser`]) measures each piece against its bounds before reading
//! it, and stops the stream, with a classified failure, once a line or an
//! event passes them.

/// The longest line accepted. A streamed chunk is a few hundred bytes; a
/// megabyte is no reply any server sends.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The longest event (its lines together) accepted.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Why a stream was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// A line passed [`MAX_LINE_BYTES`] before its end.
    #[error("a line longer than {MAX_LINE_BYTES} bytes without an end")]
    Line,
    /// An event's lines together passed [`MAX_EVENT_BYTES`] before the
    /// blank line that ends it.
    #[error("an event longer than {MAX_EVENT_BYTES} bytes without a blank line")]
    Event,
}

/// Lengths of the current line and event across the body's pieces.
#[derive(Debug, Default, Clone)]
struct LineLimit {
    line: usize,
    event: usize,
    /// The current line so far is exactly "\r" (a CRLF split between pieces).
    line_is_cr: bool,
}

impl LineLimit {
    /// Accounts for the next piece of the body, in order.
    fn check(&mut self, piece: &[u8]) -> Result<(), LimitExceeded> {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', piece) {
            let content = &piece[start..end];
            let length = self.line + content.len();
            let blank = length == 0
                || (length == 1 && (content == b"\r" || (content.is_empty() && self.line_is_cr)));
            if length > MAX_LINE_BYTES {
                return Err(LimitExceeded::Line);
            }
            self.event = if blank { 0 } else { self.event + length };
            if self.event > MAX_EVENT_BYTES {
                return Err(LimitExceeded::Event);
            }
            self.line = 0;
            self.line_is_cr = false;
            start = end + 1;
        }
        let rest = &piece[start..];
        if !rest.is_empty() {
            self.line_is_cr = self.line == 0 && rest == b"\r";
            self.line += rest.len();
        }
        if self.line > MAX_LINE_BYTES {
            return Err(LimitExceeded::Line);
        }
        if self.event + self.line > MAX_EVENT_BYTES {
            return Err(LimitExceeded::Event);
        }
        Ok(())
    }
}

/// One dispatched event, borrowing the parser's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field; empty for the default type ("message").
    pub event: &'a [u8],
    /// The `data:` lines, joined by `\n`.
    pub data: &'a [u8],
}

/// An event-stream parser (the WHATWG `text/event-stream` rules: lines end
/// in LF, CRLF or CR, `data:` lines join, `:` starts a comment, a blank line
/// dispatches) that copies only what a piece leaves unfinished: a complete
/// line inside a piece is read where it lies, and the buffers are kept
/// from event to event, so a streamed chunk costs no allocation. Each piece
/// is measured against [`MAX_LINE_BYTES`] and [`MAX_EVENT_BYTES`] when it is
/// first seen, which bounds those buffers.
#[derive(Debug, Default, Clone)]
pub struct EventParser {
    /// The unfinished line a piece ended with.
    partial: Vec<u8>,
    data: Vec<u8>,
    event: Vec<u8>,
    has_data: bool,
    /// The last line ended in CR: an LF first in the next piece belongs to it.
    after_cr: bool,
    /// The previous call returned an event: clear it before going on.
    dispatched: bool,
    started: bool,
    limit: LineLimit,
}

impl EventParser {
    /// The next event that `piece`, from `*pos` on, completes, `None` once
    /// the piece is used up (its unfinished line kept for the next one).
    /// Call it again with the same piece and position until `None`; give
    /// each new piece at position 0, which is when it is measured against
    /// the bounds: past them, the stream cannot go on.
    pub fn next_event<'s>(
        &'s mut self,
        piece: &[u8],
        pos: &mut usize,
    ) -> Result<Option<Event<'s>>, LimitExceeded> {
        if *pos == 0 {
            self.limit.check(piece)?;
        }
        Ok(self.next_checked(piece, pos))
    }

    fn next_checked<'s>(&'s mut self, piece: &[u8], pos: &mut usize) -> Option<Event<'s>> {
        if self.dispatched {
            self.dispatched = false;
            self.data.clear();
            self.event.clear();
            self.has_data = false;
        }
        if !self.started && *pos < piece.len() {
            self.started = true;
            let bom = b"\xEF\xBB\xBF";
            // A BOM split across pieces is rare enough to be read as text.
            if piece[*pos..].starts_with(bom) {
                *pos += bom.len();
            }
        }
        while *pos < piece.len() {
            if self.after_cr {
                self.after_cr = false;
                if piece[*pos] == b'\n' {
                    *pos += 1;
                    continue;
                }
            }
            let rest = &piece[*pos..];
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.partial.extend_from_slice(rest);
                *pos = piece.len();
                return None;
            };
            self.after_cr = rest[end] == b'\r';
            *pos += end + 1;
            let dispatch = if self.partial.is_empty() {
                self.line(&rest[..end])
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                let dispatch = self.line(&line);
                line.clear();
                self.partial = line;
                dispatch
            };
            if dispatch {
                self.dispatched = true;
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                return Some(Event {
                    event: &self.event,
                    data: &self.data,
                });
            }
        }
        None
    }

    /// At the end of the stream: the last event when the server ended it
    /// without its blank line (the rules drop it; a measurement keeps it).
    pub fn finish(&mut self) -> Option<Event<'_>> {
        if self.dispatched {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        if !line.is_empty() {
            self.line(&line);
        }
        if !self.has_data {
            return None;
        }
        self.dispatched = true;
        if self.data.last() == Some(&b'\n') {
            self.data.pop();
        }
        Some(Event {
            event: &self.event,
            data: &self.data,
        })
    }

    /// Takes in one line; true when it is blank and ends an event with data.
    fn line(&mut self, line: &[u8]) -> bool {
        if line.is_empty() {
            if self.has_data {
                return true;
            }
            self.event.clear();
            return false;
        }
        if line[0] == b':' {
            return false;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of `pieces`, as (type, data) strings.
    fn events(pieces: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = EventParser::default();
        let mut out = Vec::new();
        for piece in pieces {
            let mut pos = 0;
            while let Some(e) = parser.next_event(piece, &mut pos).unwrap() {
                out.push((
                    String::from_utf8_lossy(e.event).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ));
            }
        }
        out
    }

    #[test]
    fn events_follow_the_event_stream_rules_however_the_bytes_are_split() {
        let body: &[u8] = b"\xEF\xBB\xBFdata: a\n\n: a comment\ndata:b\ndata:  c\r\n\r\nevent: error\rdata: x\r\rdata\n\nid: 7\nretry: 5\n\nevent: lost\n\ndata: [DONE]\n\ndata: unfinished";
        let expected = vec![
            (String::new(), "a".to_string()),
            (String::new(), "b\n c".to_string()),
            ("error".to_string(), "x".to_string()),
            (String::new(), String::new()),
            (String::new(), "[DONE]".to_string()),
        ];
        assert_eq!(events(&[body]), expected);
        let mut parser = EventParser::default();
        let mut pos = 0;
        while parser.next_event(body, &mut pos).unwrap().is_some() {}
        let last = parser.finish().map(|e| e.data.to_vec());
        assert_eq!(last.as_deref(), Some(&b"unfinished"[..]), "kept at the end");
        assert_eq!(parser.finish(), None);
        for split in 3..=body.len() {
            assert_eq!(
                events(&[&body[..split], &body[split..]]),
                expected,
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(
            events(&bytes[..]).len(),
            4,
            "a BOM split byte by byte is read as text"
        );
        let (first, rest) = body.split_at(3);
        let mut one_by_one = vec![first];
        one_by_one.extend(rest.chunks(1));
        assert_eq!(events(&one_by_one), expected);
    }

    #[test]
    fn ordinary_streams_pass_however_they_are_split() {
        let body = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
        for split in 0..=body.len() {
            let mut l = LineLimit::default();
            l.check(&body[..split]).unwrap();
            l.check(&body[split..]).unwrap();
            assert_eq!((l.line, l.event), (0, 0), "split at {split}");
        }
    }

    #[test]
    fn a_line_without_end_is_stopped_at_the_bound() {
        let mut l = LineLimit::default();
        let piece = vec![b'a'; 64 * 1024];
        let mut fed = 0;
        let e = loop {
            match l.check(&piece) {
                Ok(()) => fed += piece.len(),
                Err(e) => break e,
            }
        };
        assert_eq!(e, LimitExceeded::Line);
        assert!(fed <= MAX_LINE_BYTES, "{fed}");
    }

    #[test]
    fn an_event_of_endless_lines_is_stopped_at_the_bound() {
        let mut l = LineLimit::default();
        let line = b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
        let e = (0..).find_map(|_| l.check(line).err()).expect("stops");
        assert_eq!(e, LimitExceeded::Event);
        // Blank lines end events: the same lines in events pass.
        let mut l = LineLimit::default();
        for _ in 0..200_000 {
            l.check(line).unwrap();
            l.check(b"\n").unwrap();
        }
    }

    #[test]
    fn the_parser_stops_at_the_bound() {
        let mut parser = EventParser::default();
        let piece = vec![b'a'; 64 * 1024];
        let stopped = (0..100).find_map(|_| parser.next_event(&piece, &mut 0).err());
        assert_eq!(stopped, Some(LimitExceeded::Line));
        assert!(parser.partial.len() <= MAX_LINE_BYTES);
    }
}
