//! Why a frame produced no probe, and a fixed-size tally of those reasons.

use std::fmt;

/// Why a frame produced no [`Probe`](crate::Probe).
///
/// Building one is free (it is a one-byte `Copy` value); the CLI and the daemon count them in a
/// [`SkipCounts`] and report the totals instead of logging each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Skip {
    /// The frame ends before the headers the classifier needs (link header, IP header, IPv6
    /// extension header, or the TCP bytes up to the flags / the UDP ports): a capture cut by
    /// its snap length, or a runt frame.
    Truncated,
    /// The headers are present but impossible: IHL below 5, an IP version that disagrees with
    /// the link layer, a hop-by-hop header not first, a TCP data offset below 5, a transport
    /// header longer than the IP packet says it carries.
    Malformed,
    /// The link layer carries something other than IPv4 or IPv6 (ARP, LLDP, 802.3 LLC, an
    /// unknown BSD address family).
    NotIp,
    /// The IP packet carries neither TCP nor UDP (ICMP, ICMPv6, ESP, GRE, ...).
    NotTcpOrUdp,
    /// An IP fragment other than the first: it carries no transport header.
    LaterFragment,
    /// A first IP fragment so short that not even the destination port is in it.
    FragmentWithoutPorts,
    /// A TCP segment with RST set: an answer, never a probe.
    Reset,
    /// Ordinary traffic of a connection: SYN+ACK, an ACK carrying data, PSH+ACK, and every
    /// other combination with ACK except a bare ACK and FIN+ACK without data.
    Established,
    /// A frame this host sent (Linux cooked capture packet type "outgoing", live capture's
    /// `PACKET_OUTGOING`, or a replay's own address as source): an answer or a flow of the
    /// host's own, read by [`HostAnswers`](crate::answers::HostAnswers), never a probe.
    Outgoing,
    /// A datagram or segment answering one of the host's own recent outbound flows (same
    /// peer address and port, same local port): a reply, not a probe.
    Reply,
}

impl Skip {
    /// How many reasons there are (the length of [`Skip::ALL`]).
    pub const COUNT: usize = 10;

    /// Every reason, in the order of [`Skip::index`].
    pub const ALL: [Self; Self::COUNT] = [
        Self::Truncated,
        Self::Malformed,
        Self::NotIp,
        Self::NotTcpOrUdp,
        Self::LaterFragment,
        Self::FragmentWithoutPorts,
        Self::Reset,
        Self::Established,
        Self::Outgoing,
        Self::Reply,
    ];

    /// A dense index in `0..Skip::COUNT`, for tables indexed by reason.
    pub const fn index(self) -> usize {
        match self {
            Self::Truncated => 0,
            Self::Malformed => 1,
            Self::NotIp => 2,
            Self::NotTcpOrUdp => 3,
            Self::LaterFragment => 4,
            Self::FragmentWithoutPorts => 5,
            Self::Reset => 6,
            Self::Established => 7,
            Self::Outgoing => 8,
            Self::Reply => 9,
        }
    }

    /// A short stable name: `truncated`, `malformed`, `not_ip`, `not_tcp_udp`,
    /// `later_fragment`, `fragment_without_ports`, `reset`, `established`, `outgoing`,
    /// `reply`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Malformed => "malformed",
            Self::NotIp => "not_ip",
            Self::NotTcpOrUdp => "not_tcp_udp",
            Self::LaterFragment => "later_fragment",
            Self::FragmentWithoutPorts => "fragment_without_ports",
            Self::Reset => "reset",
            Self::Established => "established",
            Self::Outgoing => "outgoing",
            Self::Reply => "reply",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many frames were skipped, per [`Skip`] reason. A fixed array: counting never allocates.
///
/// # Examples
///
/// ```
/// use portsentry_core::classify::{Skip, SkipCounts};
/// let mut counts = SkipCounts::new();
/// counts.record(Skip::Reset);
/// counts.record(Skip::Reset);
/// counts.record(Skip::NotIp);
/// assert_eq!(counts.get(Skip::Reset), 2);
/// assert_eq!(counts.total(), 3);
/// let nonzero: Vec<_> = counts.nonzero().map(|(s, n)| (s.as_str(), n)).collect();
/// assert_eq!(nonzero, [("not_ip", 1), ("reset", 2)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkipCounts {
    counts: [u64; Skip::COUNT],
}

impl SkipCounts {
    /// All counts zero.
    pub const fn new() -> Self {
        Self {
            counts: [0; Skip::COUNT],
        }
    }

    /// Counts one frame skipped for `reason` (saturating).
    pub const fn record(&mut self, reason: Skip) {
        let slot = &mut self.counts[reason.index()];
        *slot = slot.saturating_add(1);
    }

    /// How many frames were skipped for `reason`.
    pub const fn get(&self, reason: Skip) -> u64 {
        self.counts[reason.index()]
    }

    /// How many frames were skipped for any reason (saturating).
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// Every reason with its count, in the order of [`Skip::ALL`], zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (Skip, u64)> + '_ {
        Skip::ALL
            .into_iter()
            .map(|reason| (reason, self.get(reason)))
    }

    /// The reasons seen at least once, with their counts, in the order of [`Skip::ALL`].
    pub fn nonzero(&self) -> impl Iterator<Item = (Skip, u64)> + '_ {
        self.iter().filter(|(_, n)| *n > 0)
    }

    /// Adds every count of `other` to `self` (saturating), e.g. to merge per-thread tallies.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = mine.saturating_add(theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (position, reason) in Skip::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), position, "{reason}");
        }
    }

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<_> = Skip::ALL.iter().map(|s| s.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Skip::COUNT);
    }

    #[test]
    fn counts_record_merge_and_total() {
        let mut a = SkipCounts::new();
        a.record(Skip::Truncated);
        a.record(Skip::Outgoing);
        let mut b = SkipCounts::default();
        b.record(Skip::Outgoing);
        a.merge(&b);
        assert_eq!(a.get(Skip::Outgoing), 2);
        assert_eq!(a.get(Skip::Truncated), 1);
        assert_eq!(a.get(Skip::Reset), 0);
        assert_eq!(a.total(), 3);
        assert_eq!(a.iter().count(), Skip::COUNT);
        assert_eq!(a.nonzero().count(), 2);
    }

    #[test]
    fn counts_saturate() {
        let mut a = SkipCounts {
            counts: [u64::MAX; Skip::COUNT],
        };
        a.record(Skip::Reset);
        assert_eq!(a.get(Skip::Reset), u64::MAX);
        assert_eq!(a.total(), u64::MAX);
    }
}
