//! `PROBE_EVENTS`: a log line for single probes, for fleet-wide horizontal-scan detection.
//!
//! A horizontal scan touches one or two ports on each of many hosts; no host sees enough
//! ports to alert. With `PROBE_EVENTS="N"` each host logs a `probe:` line (JSON `"event":
//! "probe"`) for a source's *first* monitored port in the scan window, at most N lines per
//! second of capture time; the fleet's CrowdSec agent reads them from syslog and its
//! horizontal-scan scenario (`contrib/crowdsec/`) counts the distinct hosts reporting each
//! source. The limit is counted by the probes' own times (no clock read), so a flood of new
//! sources costs at most N lines a second, and what it suppressed is counted.
//!
//! Stealth probes can be forged: a spoofer can make hosts report any address. Keep the
//! fleet's own infrastructure in each host's ignore file and in CrowdSec's whitelists.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::event::Event;
use crate::probe::Probe;

/// The largest accepted `PROBE_EVENTS` value (lines per second).
pub const MAX_PER_SECOND: u32 = 10_000;

/// Which below-trigger probes become probe events; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use portsentry_core::respond::probe_events::ProbeEventLimit;
/// use portsentry_core::{Event, Probe, Protocol, ScanKind, Timestamp};
///
/// let probe = Probe {
///     at: Timestamp::from_secs(100),
///     source: "192.0.2.7".parse().unwrap(),
///     destination: "198.51.100.1".parse().unwrap(),
///     protocol: Protocol::Tcp,
///     source_port: 40000,
///     destination_port: 22,
///     kind: ScanKind::Syn,
///     ip_options: false,
/// };
/// let first = Event::BelowTrigger { probe, distinct_ports: 1, trigger: 3 };
/// let limit = ProbeEventLimit::new(1);
/// assert_eq!(limit.admit(&first), Some(probe));
/// assert_eq!(limit.admit(&first), None, "one line a second");
/// assert_eq!(limit.suppressed(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ProbeEventLimit {
    per_second: u32,
    second: AtomicU64,
    used: AtomicU32,
    suppressed: AtomicU64,
}

impl ProbeEventLimit {
    /// At most `per_second` events per second of probe time; 0 turns them off.
    pub const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            second: AtomicU64::new(0),
            used: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// True when probe events are on.
    pub const fn is_enabled(&self) -> bool {
        self.per_second > 0
    }

    /// The probe of `event` when it becomes a probe event: a below-trigger probe to its
    /// source's first distinct port, within this second's budget.
    pub fn admit(&self, event: &Event) -> Option<Probe> {
        let Event::BelowTrigger {
            probe,
            distinct_ports: 1,
            ..
        } = event
        else {
            return None;
        };
        if !self.is_enabled() {
            return None;
        }
        let second = probe.at.as_secs();
        if self.second.swap(second, Ordering::Relaxed) != second {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(*probe)
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Probe events left out by the limit so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{ScanKind, Timestamp};
    use crate::respond::test_support::probe;

    fn below(source: &str, at: u64, distinct_ports: u32) -> Event {
        let mut p = probe(source, 22, ScanKind::Syn);
        p.at = Timestamp::from_secs(at);
        Event::BelowTrigger {
            probe: p,
            distinct_ports,
            trigger: 3,
        }
    }

    #[test]
    fn only_first_ports_within_the_budget_per_second() {
        let limit = ProbeEventLimit::new(2);
        assert!(limit.admit(&below("192.0.2.1", 10, 1)).is_some());
        assert!(
            limit.admit(&below("192.0.2.1", 10, 2)).is_none(),
            "a second port of the same source is no new report"
        );
        assert!(limit.admit(&below("192.0.2.2", 10, 1)).is_some());
        assert!(
            limit.admit(&below("192.0.2.3", 10, 1)).is_none(),
            "budget spent"
        );
        assert!(
            limit.admit(&below("192.0.2.4", 11, 1)).is_some(),
            "next second"
        );
        assert_eq!(limit.suppressed(), 1);
        let alert_or_other = Event::AlreadyAlerted(probe("192.0.2.5", 22, ScanKind::Syn));
        assert!(limit.admit(&alert_or_other).is_none());
    }

    #[test]
    fn zero_is_off() {
        let limit = ProbeEventLimit::new(0);
        assert!(!limit.is_enabled());
        assert!(limit.admit(&below("192.0.2.1", 10, 1)).is_none());
        assert_eq!(limit.suppressed(), 0);
    }
}
