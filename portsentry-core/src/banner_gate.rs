//! [`BannerGate`]: at most one `PORT_BANNER` per source per window, so that forged datagrams
//! cannot turn the detector into an amplifier.
//!
//! In the `udp` connect mode a 29-byte datagram with a forged source used to earn a
//! `PORT_BANNER` reply of up to a kilobyte to that forged address, every time. The engine now
//! sends a banner only with an alert ([`Event::Alert`](crate::Event::Alert): never to an
//! ignored, protected, below-trigger, already-alerted or blocked source) and only when this
//! gate admits the source: once per source per `SCAN_WINDOW`. Sans-IO: time is the probe's.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] sources are remembered; when that many sent a
//! probe inside the window, expired entries are dropped (at most once a second), and a new
//! source that still finds no room gets no banner (failing closed: silence is always safe).
//!
//! ```
//! use std::time::Duration;
//! use portsentry_core::banner_gate::BannerGate;
//! use portsentry_core::Timestamp;
//! let mut gate = BannerGate::new(Duration::from_secs(300));
//! let forged = "198.51.100.9".parse()?;
//! assert!(gate.admit(forged, Timestamp::from_secs(10)));
//! assert!(!gate.admit(forged, Timestamp::from_secs(11))); // once per window
//! assert!(gate.admit(forged, Timestamp::from_secs(310))); // a new window
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::Timestamp;

/// How many sources the gate remembers at most (about 3 MiB).
pub const MAX_SOURCES: usize = 65_536;
/// How often, at most, a full gate drops expired entries.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Remembers when each source was last sent a banner.
#[derive(Debug, Clone)]
pub struct BannerGate {
    window: Duration,
    capacity: usize,
    sent: HashMap<IpAddr, Timestamp>,
    last_prune: Option<Timestamp>,
    refused_full: u64,
}

impl BannerGate {
    /// A gate admitting each source once per `window` (normally `SCAN_WINDOW`).
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, MAX_SOURCES)
    }

    /// As [`BannerGate::new`], remembering at most `capacity` sources.
    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            sent: HashMap::new(),
            last_prune: None,
            refused_full: 0,
        }
    }

    /// Changes the window (after a reload); what was sent is remembered.
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// True when `source` may be sent a banner at `now` (and records that it is); false when
    /// it got one less than a window ago, or when the gate is full.
    pub fn admit(&mut self, source: IpAddr, now: Timestamp) -> bool {
        let source = source.to_canonical();
        if let Some(&last) = self.sent.get(&source) {
            if now.saturating_duration_since(last) < self.window {
                return false;
            }
        } else if self.sent.len() >= self.capacity && !self.prune(now) {
            self.refused_full += 1;
            return false;
        }
        self.sent.insert(source, now);
        true
    }

    /// Drops expired entries unless that was done less than a second ago; true when there is
    /// room afterwards.
    fn prune(&mut self, now: Timestamp) -> bool {
        let recent = self
            .last_prune
            .is_some_and(|at| now.saturating_duration_since(at) < PRUNE_EVERY);
        if !recent {
            self.last_prune = Some(now);
            let window = self.window;
            self.sent
                .retain(|_, &mut last| now.saturating_duration_since(last) < window);
        }
        self.sent.len() < self.capacity
    }

    /// How many sources are remembered now.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// True when no source is remembered.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// How many banners were refused because the gate was full.
    pub const fn refused_full(&self) -> u64 {
        self.refused_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn once_per_source_per_window() {
        let mut gate = BannerGate::new(Duration::from_secs(60));
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        let replies = (0..50).filter(|i| gate.admit(a, at(100 + i / 10))).count();
        assert_eq!(replies, 1, "50 datagrams, one banner");
        assert!(gate.admit(b, at(101)));
        // The IPv4-mapped spelling is the same source.
        assert!(!gate.admit("::ffff:203.0.113.7".parse().unwrap(), at(102)));
        assert!(!gate.admit(a, at(159)));
        assert!(gate.admit(a, at(160)));
        gate.set_window(Duration::from_secs(600));
        assert!(!gate.admit(a, at(700)));
        assert_eq!(gate.len(), 2);
    }

    #[test]
    fn a_full_gate_refuses_new_sources_and_frees_expired_ones() {
        let mut gate = BannerGate::with_capacity(Duration::from_secs(10), 3);
        for i in 1..=3u8 {
            assert!(gate.admit(IpAddr::from([198, 51, 100, i]), at(0)));
        }
        let newcomer = IpAddr::from([198, 51, 100, 9]);
        assert!(!gate.admit(newcomer, at(5)), "full: silence");
        assert!(!gate.admit(newcomer, at(5)));
        assert_eq!(gate.refused_full(), 2);
        // After the window, pruning makes room.
        assert!(gate.admit(newcomer, at(11)));
        assert_eq!(gate.len(), 1);
        assert!(!gate.is_empty());
    }
}
