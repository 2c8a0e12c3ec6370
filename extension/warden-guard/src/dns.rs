//! The name a DNS query asks for, read from a UDP payload without allocating.

use crate::line::Line;

const HEADER_LEN: usize = 12;
const MAX_LABEL: usize = 63;
const MAX_NAME: usize = 253;
/// The QR bit of the flags: set in answers, clear in queries.
const QR_ANSWER: u8 = 0x80;

/// Writes the first question's QNAME of `payload` in dotted form into `line` as one field, or
/// `-` when the payload is not a DNS query with a plain (uncompressed) first name.
pub(crate) fn write_qname(line: &mut Line, payload: &[u8]) {
    let mut name = [0u8; MAX_NAME];
    match first_qname(payload, &mut name) {
        Some(len) => line.text(&name[..len], MAX_NAME),
        None => line.field("-"),
    }
}

/// Copies the first question's name into `out` (dotted, no trailing dot; the root is `.`) and
/// returns its length.
fn first_qname(payload: &[u8], out: &mut [u8; MAX_NAME]) -> Option<usize> {
    let header = payload.get(..HEADER_LEN)?;
    let question_count = u16::from_be_bytes([header[4], header[5]]);
    if header[2] & QR_ANSWER != 0 || question_count == 0 {
        return None;
    }
    let mut at = HEADER_LEN;
    let mut len = 0;
    loop {
        let label_len = usize::from(*payload.get(at)?);
        at += 1;
        if label_len == 0 {
            break;
        }
        // A query's first name is never compressed; longer labels are malformed.
        if label_len > MAX_LABEL {
            return None;
        }
        let label = payload.get(at..at + label_len)?;
        at += label_len;
        let dot = usize::from(len > 0);
        if len + dot + label_len > MAX_NAME {
            return None;
        }
        if dot == 1 {
            out[len] = b'.';
        }
        out[len + dot..len + dot + label_len].copy_from_slice(label);
        len += dot + label_len;
    }
    // QTYPE and QCLASS must follow the name.
    payload.get(at..at + 4)?;
    if len == 0 {
        out[0] = b'.';
        len = 1;
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[&str]) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    fn qname(payload: &[u8]) -> String {
        let mut line = Line::new();
        write_qname(&mut line, payload);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_query_gives_its_dotted_name() {
        assert_eq!(
            qname(&query(&["evil", "example", "com"])),
            "\tevil.example.com"
        );
    }

    #[test]
    fn the_root_name_is_a_dot() {
        assert_eq!(qname(&query(&[])), "\t.");
    }

    #[test]
    fn answers_truncated_or_compressed_names_are_not_queries() {
        let mut answer = query(&["example", "com"]);
        answer[2] |= QR_ANSWER;
        assert_eq!(qname(&answer), "\t-");
        let whole = query(&["example", "com"]);
        assert_eq!(qname(&whole[..whole.len() - 3]), "\t-");
        let mut pointer = query(&["example"]);
        pointer[HEADER_LEN] = 0xC0;
        assert_eq!(qname(&pointer), "\t-");
        assert_eq!(qname(b"not dns"), "\t-");
    }

    #[test]
    fn separators_in_labels_are_cleaned() {
        assert_eq!(qname(&query(&["a\tb", "com"])), "\ta b.com");
    }
}
