//! Text from the input (object names, annotation values, file names, parser messages) made inert
//! before it is printed: one escaping function for every place that shows such text (diagnostics,
//! errors, `diff`, `explain`, logs), so that no object can forge an output line, move the cursor
//! or reorder what a reviewer sees, and a bounded quote so that a 10 MB annotation is not a 10 MB
//! log line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// At most this many characters of a value are quoted in a diagnostic or an error.
pub const QUOTE_CHARS: usize = 64;
/// At most this many characters of a message built by a parser are kept.
pub const MESSAGE_CHARS: usize = 512;

/// Whether `c` must not reach a terminal or a log as it is: control characters (C0, DEL, C1,
/// newlines included), the line and paragraph separators, and the invisible format characters
/// (Unicode category Cf: bidi embeddings, overrides and isolates, zero-width characters, the
/// byte order mark, soft hyphen, tag characters).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// `s` with every unsafe character written as an escape (`\n`, `\r`, `\t`, `\u{202e}`). Text
/// without such characters is returned as it is, without a copy. The result holds no unsafe
/// character, so escaping it again changes nothing.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` escaped and cut to at most `max` characters of the original, with the size of what was
/// left out: `abc… (10485760 bytes)`.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (taken, c) in s.chars().enumerate() {
        if taken == max {
            let _ = write!(out, "… ({} bytes)", s.len());
            return out;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// A value from the input, quoted for a message: escaped, at most [`QUOTE_CHARS`] characters
/// (a little more for a value already cut by [`keep`], whose marker stays whole).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", clip(s, QUOTE_CHARS + 32))
}

/// A message that may hold text from the input (a parser's message), escaped and bounded.
pub fn message(s: &str) -> String {
    clip(s, MESSAGE_CHARS)
}

/// A value kept in memory to be quoted later: at most [`QUOTE_CHARS`] characters of it, so that
/// a huge value costs nothing while it waits for its diagnostic.
pub fn keep(s: &str) -> Box<str> {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => s.into(),
        // Cut at a character boundary; the marker says something was left out.
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("web-1.ns"), "web-1.ns");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("web\n  no-op\r\t\u{1b}[31m\u{202e}x\u{2066}\u{200b}\u{feff}\u{85}"),
            "web\\n  no-op\\r\\t\\u{1b}[31m\\u{202e}x\\u{2066}\\u{200b}\\u{feff}\\u{85}"
        );
        // Printable non-ASCII text stays readable.
        assert_eq!(escape("café ü 日本"), "café ü 日本");
        let once = escape("a\nb\u{202e}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn long_values_are_cut_with_their_size() {
        let big = "x".repeat(10 << 20);
        let q = quote(&big);
        assert!(q.len() < 130, "{q}");
        assert!(q.ends_with("… (10485760 bytes)\""), "{q}");
        assert_eq!(quote("short"), "\"short\"");
        assert_eq!(clip("ab\ncd", 3), "ab\\n… (5 bytes)");
        assert_eq!(
            &*keep(&"é".repeat(100)),
            format!("{}… (200 bytes)", "é".repeat(64))
        );
        assert_eq!(&*keep("fe80::5"), "fe80::5");
    }
}
