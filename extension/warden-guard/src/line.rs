//! One datagram being written: a fixed buffer on the stack, so that a hook never allocates.
//!
//! Strings are cleaned as they go in: TAB, CR and LF become a space (they would split fields or
//! lines on the receiving side), bytes that are not UTF-8 become U+FFFD, and text is cut at a
//! character boundary when the field's cap or the datagram's end is reached.

use core::fmt;

/// The most a datagram may carry.
pub(crate) const MAX_DATAGRAM: usize = 1024;

const REPLACEMENT: &str = "\u{FFFD}";

/// A datagram under construction.
pub(crate) struct Line {
    buf: [u8; MAX_DATAGRAM],
    len: usize,
}

impl Line {
    pub(crate) fn new() -> Line {
        Line {
            buf: [0; MAX_DATAGRAM],
            len: 0,
        }
    }

    /// What has been written.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn room(&self) -> usize {
        MAX_DATAGRAM - self.len
    }

    /// Appends text that is known to be clean (field names, numbers, separators).
    fn push_raw(&mut self, text: &str) {
        let take = floor_boundary(text, self.room());
        self.buf[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
    }

    /// Starts a new field.
    pub(crate) fn tab(&mut self) {
        self.push_raw("\t");
    }

    /// Appends a field separator and then `text` as is (a word of the format).
    pub(crate) fn field(&mut self, text: &str) {
        self.tab();
        self.push_raw(text);
    }

    /// Appends a field separator and a number.
    pub(crate) fn number(&mut self, value: impl fmt::Display) {
        self.tab();
        let _ = fmt::write(self, format_args!("{value}"));
    }

    /// Appends a field separator and then at most `cap` bytes of `bytes`, cleaned.
    pub(crate) fn text(&mut self, bytes: &[u8], cap: usize) {
        self.tab();
        self.clean(bytes, cap);
    }

    /// Appends `bytes` cleaned, at most `cap` bytes of output; returns how many were written.
    pub(crate) fn clean(&mut self, bytes: &[u8], cap: usize) -> usize {
        let start = self.len;
        let end = (self.len + cap).min(MAX_DATAGRAM);
        for chunk in bytes.utf8_chunks() {
            for piece in chunk.valid().split(['\t', '\r', '\n']).enumerate() {
                let (index, text) = piece;
                if index > 0 && !self.push_within(" ", end) {
                    return self.len - start;
                }
                if !self.push_within(text, end) {
                    return self.len - start;
                }
            }
            if !chunk.invalid().is_empty() && !self.push_within(REPLACEMENT, end) {
                return self.len - start;
            }
        }
        self.len - start
    }

    /// Appends as much of `text` as fits before `end`; false when it did not all fit.
    fn push_within(&mut self, text: &str, end: usize) -> bool {
        let room = end.saturating_sub(self.len);
        let take = floor_boundary(text, room);
        self.buf[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        take == text.len()
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push_raw(text);
        Ok(())
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn floor_boundary(text: &str, limit: usize) -> usize {
    if limit >= text.len() {
        return text.len();
    }
    let mut at = limit;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Line)) -> String {
        let mut line = Line::new();
        f(&mut line);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn separators_inside_text_become_spaces() {
        let out = written(|l| l.text(b"a\tb\r\nc", 100));
        assert_eq!(out, "\ta b  c");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let out = written(|l| l.text(b"ab\xffc", 100));
        assert_eq!(out, "\tab\u{FFFD}c");
    }

    #[test]
    fn text_is_cut_at_the_cap_on_a_character_boundary() {
        // "é" is two bytes: a cap of 5 keeps "ab" and one "é", not half of the second.
        let out = written(|l| l.text("abéé".as_bytes(), 5));
        assert_eq!(out, "\tabé");
        let out = written(|l| l.text("abéé".as_bytes(), 3));
        assert_eq!(out, "\tab");
    }

    #[test]
    fn the_datagram_never_exceeds_its_maximum() {
        let long = [b'x'; 3000];
        let mut line = Line::new();
        line.field("exec");
        line.text(&long, 2000);
        line.text(&long, 2000);
        line.number(42u64);
        assert_eq!(line.as_bytes().len(), MAX_DATAGRAM);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let out = written(|l| {
            l.push_raw("1");
            l.number(-7i64);
            l.number(1234u64);
        });
        assert_eq!(out, "1\t-7\t1234");
    }
}
