//! [`PortState`]: what a scanner learned about the port its alerting probe reached.

use std::fmt;

/// What the host's answer to a probe told the prober about the port.
///
/// Decided from the host's own frames ([`HostAnswers`](crate::answers::HostAnswers)): the
/// first answer to the probe that crossed the trigger, or none within
/// [`ANSWER_WAIT`](crate::answers::ANSWER_WAIT).
///
/// # Examples
///
/// ```
/// use portsentry_core::PortState;
/// assert_eq!(PortState::Closed.as_str(), "closed");
/// assert_eq!(PortState::ALL.len(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum PortState {
    /// The host reset the probe (TCP RST): nothing listens.
    Closed,
    /// The host accepted it (TCP SYN+ACK, a UDP reply, a completed connect-mode handshake).
    Open,
    /// The host sent an ICMP or ICMPv6 destination unreachable.
    Unreachable,
    /// The host sent nothing within the answer wait (a firewall dropped the probe, or the
    /// probe kind gets no answer from an open port).
    Filtered,
    /// The host's answers were not heard: a capture without its own frames, a replay without
    /// own addresses, a capture that ended before the wait, or too many alerts waiting.
    #[default]
    Unknown,
}

impl PortState {
    /// How many states there are.
    pub const COUNT: usize = 5;

    /// Every state, in the order of [`PortState::index`].
    pub const ALL: [Self; Self::COUNT] = [
        Self::Closed,
        Self::Open,
        Self::Unreachable,
        Self::Filtered,
        Self::Unknown,
    ];

    /// A dense index in `0..PortState::COUNT`, for counters.
    pub const fn index(self) -> usize {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::Unreachable => 2,
            Self::Filtered => 3,
            Self::Unknown => 4,
        }
    }

    /// The stable name used in JSON and `status`: `closed`, `open`, `unreachable`,
    /// `filtered`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::Unreachable => "unreachable",
            Self::Filtered => "filtered",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_all_and_names_are_unique() {
        for (i, state) in PortState::ALL.into_iter().enumerate() {
            assert_eq!(state.index(), i);
            assert_eq!(state.to_string(), state.as_str());
        }
        let mut names: Vec<_> = PortState::ALL.iter().map(|s| s.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), PortState::COUNT);
    }
}
