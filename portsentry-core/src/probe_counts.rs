//! Probes counted by the mode that took them and by their kind (for metrics and status).
//!
//! A fixed table of counters, one per ([`Mode`], [`ScanKind`] name) pair: counting is an
//! array increment, with no allocation, so it can sit on the detection path.

use crate::detector::mode_index;
use crate::mode::Mode;
use crate::probe::ScanKind;

/// The kind names in the order of the table's columns (see [`ScanKind::as_str`]).
pub const KIND_NAMES: [&str; KINDS] = [
    "syn", "fin", "null", "xmas", "maimon", "ack", "other", "fragment", "udp", "connect",
];

const KINDS: usize = 10;
const MODES: usize = Mode::ALL.len();

/// Probes counted per mode and kind; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use portsentry_core::probe_counts::ProbeCounts;
/// use portsentry_core::{Mode, ScanKind};
///
/// let mut counts = ProbeCounts::new();
/// counts.record(Mode::StealthTcp, ScanKind::Syn);
/// counts.record(Mode::StealthTcp, ScanKind::Syn);
/// assert_eq!(counts.get(Mode::StealthTcp, ScanKind::Syn), 2);
/// assert_eq!(counts.total(), 2);
/// let nonzero: Vec<_> = counts.nonzero().collect();
/// assert_eq!(nonzero, [(Mode::StealthTcp, "syn", 2)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeCounts {
    counts: [[u64; KINDS]; MODES],
}

impl ProbeCounts {
    /// All counts zero.
    pub const fn new() -> Self {
        Self {
            counts: [[0; KINDS]; MODES],
        }
    }

    /// Counts one probe of `kind` taken by `mode` (saturating).
    pub const fn record(&mut self, mode: Mode, kind: ScanKind) {
        let slot = &mut self.counts[mode_index(mode)][kind_index(kind)];
        *slot = slot.saturating_add(1);
    }

    /// How many probes of `kind` `mode` took.
    pub const fn get(&self, mode: Mode, kind: ScanKind) -> u64 {
        self.counts[mode_index(mode)][kind_index(kind)]
    }

    /// All probes counted (saturating).
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .flatten()
            .fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// Every (mode, kind name, count) with a count above zero, modes in [`Mode::ALL`] order
    /// and kinds in [`KIND_NAMES`] order.
    pub fn nonzero(&self) -> impl Iterator<Item = (Mode, &'static str, u64)> + '_ {
        Mode::ALL.iter().zip(&self.counts).flat_map(|(&mode, row)| {
            KIND_NAMES
                .iter()
                .zip(row)
                .filter(|(_, n)| **n > 0)
                .map(move |(&kind, &n)| (mode, kind, n))
        })
    }
}

const fn kind_index(kind: ScanKind) -> usize {
    match kind {
        ScanKind::Syn => 0,
        ScanKind::Fin => 1,
        ScanKind::Null => 2,
        ScanKind::Xmas => 3,
        ScanKind::Maimon => 4,
        ScanKind::Ack => 5,
        ScanKind::Other(_) => 6,
        ScanKind::Fragment => 7,
        ScanKind::Udp => 8,
        ScanKind::Connect => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::TcpFlags;

    #[test]
    fn kind_names_match_the_kinds_own_names() {
        let kinds = [
            ScanKind::Syn,
            ScanKind::Fin,
            ScanKind::Null,
            ScanKind::Xmas,
            ScanKind::Maimon,
            ScanKind::Ack,
            ScanKind::Other(TcpFlags(0x03)),
            ScanKind::Fragment,
            ScanKind::Udp,
            ScanKind::Connect,
        ];
        for kind in kinds {
            assert_eq!(KIND_NAMES[kind_index(kind)], kind.as_str());
        }
        for (i, mode) in Mode::ALL.iter().enumerate() {
            assert_eq!(mode_index(*mode), i);
        }
    }

    #[test]
    fn counts_are_per_mode_and_kind_and_saturate() {
        let mut counts = ProbeCounts::new();
        counts.record(Mode::AdvancedUdp, ScanKind::Udp);
        counts.record(Mode::Tcp, ScanKind::Connect);
        counts.record(Mode::Tcp, ScanKind::Connect);
        assert_eq!(counts.get(Mode::AdvancedUdp, ScanKind::Udp), 1);
        assert_eq!(counts.get(Mode::StealthUdp, ScanKind::Udp), 0);
        assert_eq!(
            counts.nonzero().collect::<Vec<_>>(),
            [(Mode::Tcp, "connect", 2), (Mode::AdvancedUdp, "udp", 1)]
        );
        counts.counts[0][9] = u64::MAX;
        counts.record(Mode::Tcp, ScanKind::Connect);
        assert_eq!(counts.get(Mode::Tcp, ScanKind::Connect), u64::MAX);
        assert_eq!(counts.total(), u64::MAX);
    }
}
