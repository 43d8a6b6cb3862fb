//! Errors and warnings of configuration loading.

use std::path::PathBuf;

use super::conf_file::SyntaxErrorKind;
use crate::located::Located;
use crate::ports::PortListError;

/// One invalid line of a configuration file: `file:line: KEY: message` when displayed.
pub type ConfigProblem = Located<ProblemKind>;

/// One warning about a configuration file: `file:line: KEY: message` when displayed.
pub type ConfigWarning = Located<WarningKind>;

/// What is wrong with a line (an error: the configuration is not used).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The line is not a comment, a blank or `KEY="value"`.
    #[error(transparent)]
    Syntax(#[from] SyntaxErrorKind),
    /// The value is `""` but this key needs one.
    #[error("empty value: expected {expected}")]
    EmptyValue {
        /// What the key takes.
        expected: &'static str,
    },
    /// A port list with bad entries (port 0, above 65535, reversed range, non-number, empty).
    #[error(transparent)]
    Ports(#[from] PortListError),
    /// The value is not a decimal whole number.
    #[error("`{value}` is not a whole number: expected {expected}")]
    NotANumber {
        /// The value as written.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A number outside the accepted range (negative or too large; never wrapped around).
    #[error("{value} is out of range: expected {expected}")]
    OutOfRange {
        /// The value as written.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A switch that is neither `0` nor `1`.
    #[error("`{value}` is not a switch: expected 0 (off) or 1 (on)")]
    NotASwitch {
        /// The value as written.
        value: String,
    },
    /// `BLOCK_TCP` / `BLOCK_UDP` outside 0, 1, 2.
    #[error(
        "`{value}` is not a block mode: expected 0 (log only), 1 (run the blocking actions) or 2 (run KILL_RUN_CMD only)"
    )]
    NotABlockMode {
        /// The value as written.
        value: String,
    },
    /// `KILL_ROUTE` or `KILL_HOSTS_DENY` without the `$TARGET$` token.
    #[error("must contain $TARGET$ (replaced by the scanner's address), or it would block nobody")]
    MissingTarget,
    /// `BLOCK_x="1"` but none of `KILL_ROUTE`, `KILL_HOSTS_DENY`, `NFT_SET`, `KILL_RUN_CMD` is set.
    #[error(
        "is 1 (block) but no blocking action is set: set KILL_ROUTE, KILL_HOSTS_DENY, NFT_SET, CROWDSEC_CREDENTIALS or KILL_RUN_CMD, or use 0 (log only)"
    )]
    BlockWithoutAction,
    /// `BLOCK_x="2"` but `KILL_RUN_CMD` is not set.
    #[error("is 2 (run KILL_RUN_CMD only) but KILL_RUN_CMD is not set")]
    RunWithoutCommand,
    /// `HISTORY_FORMAT` outside `classic`, `v2`, `json`.
    #[error("`{value}` is not a history format: expected classic, v2 or json")]
    NotAHistoryFormat {
        /// The value as written.
        value: String,
    },
    /// `CONTROL_GROUP` is neither a group name nor a number.
    #[error(
        "`{value}` is not a group: expected a group name (letters, digits, `_`, `.`, `-`, at most 32) or a number"
    )]
    NotAGroup {
        /// The value as written.
        value: String,
    },
    /// `NFT_SET` is not `FAMILY TABLE SET` with a valid family and names.
    #[error("`{value}` is not an nftables set: {reason}")]
    NotAnNftSet {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value holds bytes that are not UTF-8 text (seen only by [`Config::load`](super::Config::load)).
    #[error("the value holds bytes that are not UTF-8 text")]
    NotUtf8,
    /// A path containing a control character (a NUL, a tab, a newline...).
    #[error("the path contains a control character")]
    ControlCharacterInPath,
}

/// Something suspicious that does not stop the configuration from being used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// A key this implementation does not know; the line is ignored.
    #[error("unknown key, line ignored{}", suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownKey {
        /// A known key it resembles.
        suggestion: Option<&'static str>,
    },
    /// The key was already set; this later line wins.
    #[error("set again: this line overrides line {previous_line} (the last one wins)")]
    Duplicate {
        /// The line of the earlier setting.
        previous_line: usize,
    },
    /// The setting cannot change anything, given the rest of the file.
    #[error("has no effect: {reason}")]
    NoEffect {
        /// Why.
        reason: &'static str,
    },
    /// Neither `TCP_PORTS` nor `UDP_PORTS` is set.
    #[error(
        "neither TCP_PORTS nor UDP_PORTS is set: only the advanced modes (atcp, audp) watch any port"
    )]
    NoPortLists,
    /// Blocking is on and `SCAN_TRIGGER` is below 2: one forged packet blocks a host.
    #[error(
        "is below 2 while blocking is on: one packet with a forged source blocks that source; use 2 or more"
    )]
    ForgeableTrigger,
    /// Blocking is on and `BLOCK_TIMEOUT` is 0: blocks, forged ones included, never end.
    #[error(
        "is 0 (blocks never expire) while blocking is on: blocks made by forged packets stay until removed by hand"
    )]
    BlocksNeverExpire,
}

/// The error of [`Config::load`](super::Config::load) and
/// [`Config::parse_str`](super::Config::parse_str).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read: missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds more than [`MAX_INPUT_BYTES`](crate::permissions::MAX_INPUT_BYTES)
    /// (1 MiB); it was not read further.
    #[error("{} is larger than {limit} bytes: refused (a configuration file is far smaller)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file has one or more invalid lines. All of them are listed (in line order), and
    /// the warnings found on the way too.
    #[error("{file}: {} error(s) in the configuration; first: {}", problems.len(), problems.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        /// The file name as given (or the label of a string).
        file: String,
        /// Every invalid line, in line order.
        problems: Vec<ConfigProblem>,
        /// Every warning, in line order.
        warnings: Vec<ConfigWarning>,
    },
}
