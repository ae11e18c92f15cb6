//! Bounds on what a server's event stream may make the client hold. The SSE
//! parser keeps an unfinished line, and an unfinished event, in memory until
//! it ends: a server that never ends a line (or streams `data:` lines with
//! no blank line between events) would grow them for as long as it sends,
//! and the stall timer never fires while bytes flow. [`LineLimit`] watches
//! the bytes before they reach the parser and stops the stream, with a
//! classified failure, once a line or an event passes its bound.

/// The longest line accepted. A streamed chunk is a few hundred bytes; a
/// megabyte is no reply any server sends.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The longest event (its lines together) accepted.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Why a stream was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("a line longer than {MAX_LINE_BYTES} bytes without an end")]
    Line,
    #[error("an event longer than {MAX_EVENT_BYTES} bytes without a blank line")]
    Event,
}

/// Lengths of the current line and event across the body's pieces.
#[derive(Debug, Default, Clone)]
pub struct LineLimit {
    line: usize,
    event: usize,
    /// The current line so far is exactly "\r" (a CRLF split between pieces).
    line_is_cr: bool,
}

impl LineLimit {
    /// Accounts for the next piece of the body, in order.
    pub fn check(&mut self, piece: &[u8]) -> Result<(), LimitExceeded> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
