//! [`Located`]: a problem together with where it was found (file, line, key).

use std::fmt;

/// A problem `kind` found at a place in a text file: the file, the line and, for
/// `portsentry.conf`, the key.
///
/// It displays as `file:line: KEY: message`, the shape compilers and PortSentry users know;
/// parts that are unknown are left out (`file: message` for a whole-file problem).
///
/// # Examples
///
/// ```
/// use portsentry_core::located::Located;
/// let problem = Located {
///     file: "portsentry.conf".to_owned(),
///     line: Some(12),
///     key: Some("BLOCK_TCP".to_owned()),
///     kind: "expected 0, 1 or 2",
/// };
/// assert_eq!(problem.to_string(), "portsentry.conf:12: BLOCK_TCP: expected 0, 1 or 2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<K> {
    /// The file name as the user gave it (or a label such as `<built-in default>`).
    pub file: String,
    /// The 1-based line number, when the problem belongs to one line.
    pub line: Option<usize>,
    /// The configuration key the problem is about, when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: K,
}

impl<K: fmt::Display> fmt::Display for Located<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl<K: fmt::Display + fmt::Debug> std::error::Error for Located<K> {}
