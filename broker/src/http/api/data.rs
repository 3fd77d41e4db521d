//! How the bytes of a key, value or header are shown in JSON: as UTF-8 text when they are
//! valid UTF-8, as pretty-printed JSON when that text is a JSON object or array, else as
//! base64 (the console shows binary as hex or base64 from it). Cut to a byte budget.

use base64::Engine;
use serde::Serialize;

/// One key, value or header value.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Data {
    /// `json` (pretty-printed), `utf8`, or `base64`.
    encoding: &'static str,
    /// The bytes as `encoding` says.
    text: String,
    /// Bytes as stored.
    size: usize,
    /// Only the first bytes are in `text` (the response's byte budget ran out).
    truncated: bool,
}

impl Data {
    /// `bytes`, of which at most `budget` are shown.
    pub(crate) fn new(bytes: &[u8], budget: usize) -> Self {
        let size = bytes.len();
        let shown = bytes.get(..budget.min(size)).unwrap_or(bytes);
        let truncated = shown.len() < size;
        match std::str::from_utf8(shown) {
            Ok(text) => Self {
                encoding: "utf8",
                text: text.to_owned(),
                size,
                truncated,
            }
            .pretty_json(),
            // Cut inside a character: the valid part is text.
            Err(err) if truncated && err.error_len().is_none() => Self {
                encoding: "utf8",
                text: String::from_utf8_lossy(&shown[..err.valid_up_to()]).into_owned(),
                size,
                truncated,
            },
            Err(_) => Self {
                encoding: "base64",
                text: base64::engine::general_purpose::STANDARD.encode(shown),
                size,
                truncated,
            },
        }
    }

    /// Whole UTF-8 text that is a JSON object or array, re-indented (keys kept in their
    /// order, numbers and strings as written).
    fn pretty_json(self) -> Self {
        let looks_like_json =
            matches!(self.text.trim_start().as_bytes().first(), Some(b'{' | b'['));
        if self.truncated
            || !looks_like_json
            || serde_json::from_str::<serde::de::IgnoredAny>(&self.text).is_err()
        {
            return self;
        }
        Self {
            encoding: "json",
            text: reindent(&self.text),
            ..self
        }
    }
}

/// Valid JSON `text` with two spaces per level, one member or element per line.
fn reindent(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
                if let Some(close) = chars.next_if(|&n| n == '}' || n == ']') {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_json_and_binary_are_told_apart() {
        let text = Data::new(b"hello", 100);
        assert_eq!((text.encoding, text.text.as_str()), ("utf8", "hello"));
        let json = Data::new(br#"{"a":[1,2]}"#, 100);
        assert_eq!(json.encoding, "json");
        assert_eq!(json.text, "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        // Keys keep their order; strings keep their spaces, escapes and brackets.
        let ordered = Data::new(br#"{ "z" : "a, {b}\"" , "a":{}, "e":[ ] }"#, 100);
        assert_eq!(
            ordered.text,
            "{\n  \"z\": \"a, {b}\\\"\",\n  \"a\": {},\n  \"e\": []\n}"
        );
        // A number is valid JSON but shown as the text it is.
        assert_eq!(Data::new(b"42", 100).encoding, "utf8");
        let binary = Data::new(&[0xff, 0x00, 0x01], 100);
        assert_eq!((binary.encoding, binary.text.as_str()), ("base64", "/wAB"));
        assert_eq!(binary.size, 3);
    }

    #[test]
    fn the_budget_cuts_and_says_so() {
        let cut = Data::new(b"abcdef", 3);
        assert_eq!(
            (cut.text.as_str(), cut.truncated, cut.size),
            ("abc", true, 6)
        );
        // Cut JSON is not pretty-printed: it no longer parses.
        let json = Data::new(br#"{"a":1}"#, 4);
        assert_eq!((json.encoding, json.truncated), ("utf8", true));
        // Cut inside a two-byte character: the whole characters before it.
        let accented = Data::new("aé".as_bytes(), 2);
        assert_eq!((accented.encoding, accented.text.as_str()), ("utf8", "a"));
        assert!(!Data::new(b"", 0).truncated);
    }
}
