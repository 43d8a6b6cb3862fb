//! The control-socket protocol between `portsentry unblock` and the running detector: one
//! request line, one answer line, both plain text (pure, fuzzed).
//!
//! ```text
//! → unblock 203.0.113.7
//! ← released 203.0.113.7        (the release actions were queued, the block table rewritten)
//! ← not-blocked 203.0.113.7
//! ← error <message>
//! ```
//!
//! A request is at most [`MAX_LINE`] bytes; anything else than `unblock ADDRESS` (one
//! space-separated word each, an IPv4 or IPv6 address) is an error naming what was expected.
//! Who may talk to the socket is the daemon's business (`SO_PEERCRED`); this module only says
//! what the bytes mean.
//!
//! # Examples
//!
//! ```
//! use portsentry_core::control::{Answer, Request, parse_answer, parse_request};
//! let request = parse_request(b"unblock 2001:db8::9\n")?;
//! assert_eq!(request, Request::Unblock("2001:db8::9".parse()?));
//! assert_eq!(request.to_string(), "unblock 2001:db8::9");
//! let answer = Answer::Released("2001:db8::9".parse()?);
//! assert_eq!(parse_answer(&answer.to_string()), answer);
//! assert!(parse_request(b"unblock nobody").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::IpAddr;

/// The longest request or answer line, in bytes (a request line is far shorter).
pub const MAX_LINE: usize = 256;

/// A request to the running detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Lift the block of this address now.
    Unblock(IpAddr),
}

impl fmt::Display for Request {
    /// The request line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unblock(address) => write!(f, "unblock {address}"),
        }
    }
}

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The line is longer than [`MAX_LINE`] bytes.
    #[error("request longer than {MAX_LINE} bytes")]
    TooLong,
    /// The line is not UTF-8 text.
    #[error("request is not text")]
    NotText,
    /// Not `unblock ADDRESS`.
    #[error("unknown request {0:?} (expected: unblock ADDRESS)")]
    Unknown(String),
    /// `unblock` with something that is not an IP address.
    #[error("not an IP address: {0:?}")]
    NotAnAddress(String),
}

/// Parses one request line (a trailing newline, and whitespace around words, are accepted).
///
/// # Errors
///
/// [`RequestError`] saying what is wrong; the message is safe to send back on one line.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_LINE {
        return Err(RequestError::TooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| RequestError::NotText)?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("unblock"), Some(address), None) => address
            .parse::<IpAddr>()
            .map(|a| Request::Unblock(a.to_canonical()))
            .map_err(|_| RequestError::NotAnAddress(address.to_owned())),
        _ => Err(RequestError::Unknown(line.trim().to_owned())),
    }
}

/// The detector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The address was blocked and is released now.
    Released(IpAddr),
    /// The address was not blocked.
    NotBlocked(IpAddr),
    /// The request was refused or could not be served; the message says why.
    Error(String),
}

impl fmt::Display for Answer {
    /// The answer line, without its newline; line breaks in an error message become spaces
    /// so that an answer is always one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Released(address) => write!(f, "released {address}"),
            Self::NotBlocked(address) => write!(f, "not-blocked {address}"),
            Self::Error(message) => {
                write!(f, "error {}", message.replace(['\n', '\r'], " ").trim())
            }
        }
    }
}

/// Reads an answer line; anything that is not `released ADDRESS` or `not-blocked ADDRESS`
/// is an [`Answer::Error`] carrying the text (`error ` removed).
pub fn parse_answer(line: &str) -> Answer {
    let line = line.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let address = rest.parse::<IpAddr>();
    match (word, address) {
        ("released", Ok(address)) => Answer::Released(address),
        ("not-blocked", Ok(address)) => Answer::NotBlocked(address),
        ("error", _) => Answer::Error(rest.trim().to_owned()),
        _ => Answer::Error(line.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            parse_request(b"unblock 203.0.113.7\n"),
            Ok(Request::Unblock(v4))
        );
        assert_eq!(
            parse_request(b"  unblock\t203.0.113.7 "),
            Ok(Request::Unblock(v4))
        );
        // IPv4-mapped IPv6 is the IPv4 address (as the block table keys it).
        assert_eq!(
            parse_request(b"unblock ::ffff:203.0.113.7"),
            Ok(Request::Unblock(v4))
        );
        assert_eq!(
            parse_request(b"unblock nobody"),
            Err(RequestError::NotAnAddress("nobody".to_owned()))
        );
        assert!(matches!(
            parse_request(b"block 203.0.113.7"),
            Err(RequestError::Unknown(_))
        ));
        assert!(parse_request(b"unblock 203.0.113.7 extra").is_err());
        assert_eq!(parse_request(b"unblock \xff"), Err(RequestError::NotText));
        assert_eq!(
            parse_request(&[b' '; MAX_LINE + 1]),
            Err(RequestError::TooLong)
        );
    }

    #[test]
    fn answers_round_trip_on_one_line() {
        let v6: IpAddr = "2001:db8::9".parse().unwrap();
        for answer in [
            Answer::Released(v6),
            Answer::NotBlocked(v6),
            Answer::Error("the detector is stopping".to_owned()),
        ] {
            assert_eq!(parse_answer(&answer.to_string()), answer);
        }
        let multi = Answer::Error("two\nlines".to_owned()).to_string();
        assert_eq!(multi, "error two lines");
        assert_eq!(
            parse_answer("released nonsense"),
            Answer::Error("released nonsense".to_owned())
        );
    }
}
