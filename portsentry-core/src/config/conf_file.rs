//! The `portsentry.conf` tokenizer: text in, `KEY="value"` entries with line numbers out.
//!
//! This is the pure first half of configuration loading: no file is opened, nothing is
//! interpreted, every line is looked at once and every syntax error is collected (the fuzz
//! target drives exactly this function). Values are validated by [`Config`](super::Config).
//!
//! # The grammar
//!
//! The union of what PortSentry 1.2 and 2.0 accept, without their accidents:
//!
//! * Lines end with `\n` or `\r\n`; the last line needs no newline.
//! * A line that is empty, only whitespace, or whose first non-blank character is `#`, is skipped.
//! * Any other line is `KEY = "VALUE"`: the key is a run of ASCII letters, digits and `_`
//!   (starting with a letter or `_`), spaces or tabs may surround `=`, and the value is
//!   everything between the first `"` after `=` and the next `"`. There are no escapes: `\%c`,
//!   `$TARGET$` and `#` inside the quotes are kept exactly as written.
//! * After the closing quote only whitespace or a `#` comment may follow. (A `"` inside a value
//!   therefore shows up as an error instead of silently cutting the value short.)
//! * Leading whitespace before the key is accepted.
//!
//! Keys are not checked against the known ones here, and duplicates are all returned in order.

/// One `KEY="value"` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The 1-based line number.
    pub line: usize,
    /// The key, exactly as written (keys are case-sensitive).
    pub key: &'a str,
    /// The text between the quotes, verbatim.
    pub value: &'a str,
}

/// What is wrong with a line that is not a comment, a blank or a `KEY="value"` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxErrorKind {
    /// The line does not start with a key (letters, digits and `_`, not starting with a digit).
    #[error("expected a setting like KEY=\"value\"")]
    NoKey,
    /// The key is not followed by `=`.
    #[error("expected `=` after the key, like KEY=\"value\"")]
    MissingEquals,
    /// The value after `=` does not start with a double quote.
    #[error("the value must be in double quotes, like KEY=\"value\"")]
    MissingOpeningQuote,
    /// The value has an opening `"` but no closing one on the same line.
    #[error("missing closing double quote")]
    MissingClosingQuote,
    /// Something other than whitespace or a `#` comment follows the closing quote.
    #[error(
        "unexpected text after the closing quote (a value cannot contain `\"`; comments start with `#`)"
    )]
    TrailingText,
}

/// A syntax error: the line, the key when one was read, and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError<'a> {
    /// The 1-based line number.
    pub line: usize,
    /// The key, when the line started with one.
    pub key: Option<&'a str>,
    /// What is wrong.
    pub kind: SyntaxErrorKind,
}

/// The tokenized file: every entry in file order and every syntax error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfFile<'a> {
    /// The well-formed `KEY="value"` lines, in file order (duplicates included).
    pub entries: Vec<Entry<'a>>,
    /// Every malformed line, in file order.
    pub errors: Vec<SyntaxError<'a>>,
}

/// Splits `text` into entries and syntax errors. Pure: no I/O, no panics on any input.
///
/// # Examples
///
/// ```
/// use portsentry_core::config::conf_file::parse;
/// let file = parse("# comment\nRESOLVE_HOST = \"0\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY \\%c\"\n");
/// assert!(file.errors.is_empty());
/// assert_eq!(file.entries[0].key, "RESOLVE_HOST");
/// assert_eq!(file.entries[0].line, 2);
/// assert_eq!(file.entries[1].value, "ALL: $TARGET$ : DENY \\%c");
/// ```
pub fn parse(text: &str) -> ConfFile<'_> {
    let mut file = ConfFile::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        match parse_line(content) {
            Line::Skip => {}
            Line::Entry { key, value } => file.entries.push(Entry { line, key, value }),
            Line::Error { key, kind } => file.errors.push(SyntaxError { line, key, kind }),
        }
    }
    file
}

enum Line<'a> {
    Skip,
    Entry {
        key: &'a str,
        value: &'a str,
    },
    Error {
        key: Option<&'a str>,
        kind: SyntaxErrorKind,
    },
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Blank characters accepted before the key: also a stray carriage return (2.0 skips lines
/// that start with one).
fn is_leading_blank(c: char) -> bool {
    is_blank(c) || c == '\r'
}

fn parse_line(content: &str) -> Line<'_> {
    let rest = content.trim_start_matches(is_leading_blank);
    if rest.is_empty() || rest.starts_with('#') {
        return Line::Skip;
    }
    let key_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (key, rest) = rest.split_at(key_len);
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        return Line::Error {
            key: None,
            kind: SyntaxErrorKind::NoKey,
        };
    }
    let error = |kind| Line::Error {
        key: Some(key),
        kind,
    };
    let Some(rest) = rest.trim_start_matches(is_blank).strip_prefix('=') else {
        return error(SyntaxErrorKind::MissingEquals);
    };
    let Some(rest) = rest.trim_start_matches(is_blank).strip_prefix('"') else {
        return error(SyntaxErrorKind::MissingOpeningQuote);
    };
    let Some((value, after)) = rest.split_once('"') else {
        return error(SyntaxErrorKind::MissingClosingQuote);
    };
    let after = after.trim_start();
    if after.is_empty() || after.starts_with('#') {
        Line::Entry { key, value }
    } else {
        error(SyntaxErrorKind::TrailingText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one_error(line: &str) -> SyntaxErrorKind {
        let file = parse(line);
        assert!(file.entries.is_empty(), "{line:?} gave {:?}", file.entries);
        assert_eq!(file.errors.len(), 1, "{line:?}");
        file.errors[0].kind
    }

    fn one_entry(line: &str) -> (&str, &str) {
        let file = parse(line);
        assert!(file.errors.is_empty(), "{line:?} gave {:?}", file.errors);
        assert_eq!(file.entries.len(), 1, "{line:?}");
        (file.entries[0].key, file.entries[0].value)
    }

    #[test]
    fn both_spacing_styles() {
        assert_eq!(one_entry("RESOLVE_HOST = \"0\""), ("RESOLVE_HOST", "0"));
        assert_eq!(one_entry("RESOLVE_HOST=\"0\""), ("RESOLVE_HOST", "0"));
        assert_eq!(one_entry("RESOLVE_HOST\t=\t\"0\"  "), ("RESOLVE_HOST", "0"));
        assert_eq!(one_entry("  SCAN_TRIGGER=\"2\""), ("SCAN_TRIGGER", "2"));
    }

    #[test]
    fn values_are_verbatim() {
        assert_eq!(
            one_entry(r#"KILL_HOSTS_DENY="ALL: $TARGET$ : DENY \%c \%h""#).1,
            r"ALL: $TARGET$ : DENY \%c \%h"
        );
        assert_eq!(one_entry(r#"PORT_BANNER="a # b""#).1, "a # b");
        assert_eq!(one_entry("PORT_BANNER=\"tab\there\"").1, "tab\there");
        assert_eq!(one_entry(r#"KILL_RUN_CMD="""#).1, "");
        assert_eq!(
            one_entry(r#"KILL_ROUTE="/sbin/ipchains -I input -s $TARGET$ -j DENY -l""#).1,
            "/sbin/ipchains -I input -s $TARGET$ -j DENY -l"
        );
    }

    #[test]
    fn comments_blanks_and_line_endings() {
        let text = "# c\n\n   \n\t# indented comment\r\nA=\"1\" # trailing\r\n\rB=\"2\"";
        let file = parse(text);
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        let got: Vec<_> = file
            .entries
            .iter()
            .map(|e| (e.line, e.key, e.value))
            .collect();
        assert_eq!(
            got,
            [(5, "A", "1"), (6, "B", "2")].map(|(l, k, v)| (l, k, v))
        );
    }

    #[test]
    fn lone_carriage_return_line_is_blank() {
        let file = parse("\r\nA=\"1\"\n");
        assert!(file.errors.is_empty());
        assert_eq!(file.entries[0].line, 2);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(one_error("TCP_PORTS"), SyntaxErrorKind::MissingEquals);
        assert_eq!(one_error("TCP_PORTS \"1\""), SyntaxErrorKind::MissingEquals);
        assert_eq!(
            one_error("TCP_PORTS=1"),
            SyntaxErrorKind::MissingOpeningQuote
        );
        assert_eq!(
            one_error("TCP_PORTS="),
            SyntaxErrorKind::MissingOpeningQuote
        );
        assert_eq!(
            one_error("TCP_PORTS=\"1"),
            SyntaxErrorKind::MissingClosingQuote
        );
        assert_eq!(
            one_error(r#"KILL_ROUTE="iptables -s "$TARGET$" -j DROP""#),
            SyntaxErrorKind::TrailingText
        );
        assert_eq!(one_error("=\"1\""), SyntaxErrorKind::NoKey);
        assert_eq!(one_error("9KEY=\"1\""), SyntaxErrorKind::NoKey);
        assert_eq!(one_error("[section]"), SyntaxErrorKind::NoKey);
    }

    #[test]
    fn errors_carry_key_and_line_and_all_are_reported() {
        let file = parse("A=\"1\"\nBLOCK_TCP=1\nB=\"2\"\nC=\"3\nD=\"4\"");
        assert_eq!(file.entries.len(), 3);
        let got: Vec<_> = file.errors.iter().map(|e| (e.line, e.key)).collect();
        assert_eq!(got, [(2, Some("BLOCK_TCP")), (4, Some("C"))]);
    }

    proptest! {
        #[test]
        fn never_panics_and_lines_are_in_range(text in "[ -~\t\r\n\"#=]{0,200}") {
            let file = parse(&text);
            let lines = text.split('\n').count();
            for e in &file.entries {
                prop_assert!(e.line >= 1 && e.line <= lines);
                prop_assert!(!e.value.contains('"'));
            }
            for e in &file.errors {
                prop_assert!(e.line >= 1 && e.line <= lines);
            }
        }

        #[test]
        fn well_formed_lines_round_trip(
            entries in proptest::collection::vec(("[A-Z_][A-Z0-9_]{0,20}", "[^\"\n\r]{0,40}", 0usize..3), 0..20)
        ) {
            let spacing = ["=", " = ", "\t=  "];
            let text: String = entries
                .iter()
                .map(|(k, v, s)| format!("{k}{}\"{v}\"\n", spacing[*s]))
                .collect();
            let file = parse(&text);
            prop_assert!(file.errors.is_empty());
            let got: Vec<_> = file.entries.iter().map(|e| (e.key.to_owned(), e.value.to_owned())).collect();
            let want: Vec<_> = entries.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
