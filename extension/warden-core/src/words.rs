//! Small helpers over command-line words that redaction and the detector's command shapes
//! share, so that both read a command line the same way.

/// The last path component of a word: `/usr/bin/mysql` → `mysql`.
pub fn base_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Byte offsets of the authority (`user:pw@host:port`) of the first URL in `text` at or after
/// `from`: from just after `://` to the first `/`, whitespace, quote or end.
pub fn url_authority(text: &str, from: usize) -> Option<(usize, usize)> {
    let start = text.get(from..)?.find("://")? + from + 3;
    let end = text[start..]
        .find(|c: char| c == '/' || c.is_ascii_whitespace() || matches!(c, '"' | '\''))
        .map_or(text.len(), |i| start + i);
    Some((start, end))
}

/// Words of `text` split on ASCII whitespace, with the byte offset where each starts.
pub fn words_at(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| c.is_ascii_whitespace())
        .scan(0usize, |pos, w| {
            let at = *pos;
            *pos += w.len() + 1;
            Some((at, w))
        })
        .filter(|(_, w)| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_offsets() {
        let text = "a  bc\td";
        let got: Vec<(usize, &str)> = words_at(text).collect();
        assert_eq!(got, vec![(0, "a"), (3, "bc"), (6, "d")]);
    }

    #[test]
    fn authority_of_a_url() {
        let text = "curl https://u:p@h.example:8443/x";
        let (s, e) = url_authority(text, 0).unwrap();
        assert_eq!(&text[s..e], "u:p@h.example:8443");
        assert_eq!(url_authority("no url", 0), None);
        assert_eq!(base_name("/usr/bin/mysql"), "mysql");
    }
}
