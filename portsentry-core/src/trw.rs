//! [`Trw`]: the response-aware trigger of `SCAN_TRIGGER_MODE="trw"`, a Threshold Random Walk
//! (Jung, Paxson, Berger and Balakrishnan, "Fast Portscan Detection Using Sequential
//! Hypothesis Testing", IEEE S&P 2004) over the outcomes of each source's first contacts
//! with this host's ports.
//!
//! # The walk
//!
//! Each source has a score, the log of the likelihood ratio of "scanner" against "benign".
//! A first contact (a SYN or a UDP datagram to a (protocol, port) the source has not
//! contacted in its window) moves it:
//!
//! * **failure** (the port has no service: one of the monitored ports, which stealth and
//!   advanced modes only choose among ports without a listener; the scanner learns `closed`,
//!   `unreachable` or `filtered`): `+ ln((1 − θ₁) / (1 − θ₀))`;
//! * **success** (a port with a listening socket: the contact may be a real client):
//!   `+ ln(θ₁ / θ₀)`.
//!
//! The source is a scanner once the score reaches `ln η₁ = ln(P_D / P_F)`. It never goes
//! below `ln η₀ = ln((1 − P_D) / (1 − P_F))` (the "benign" bound): a source with a benign
//! history that starts scanning needs at most the few steps from there, rather than being
//! written off as benign for good.
//!
//! | Parameter | Value | Meaning |
//! |---|---|---|
//! | θ₀ | [`THETA_BENIGN`] = 0.8 | chance a benign source's first contact succeeds |
//! | θ₁ | [`THETA_SCANNER`] = 0.2 | chance a scanner's first contact succeeds |
//! | P_D | [`DETECTION`] = 0.99 | wanted detection probability |
//! | P_F | [`FALSE_ALARM`] = 0.01 | tolerated false-alarm probability |
//!
//! With these values a failure adds ln 4 ≈ 1.386 and a success subtracts as much, and the
//! threshold is ln 99 ≈ 4.595: **four failed first contacts** in a row make a scanner, and
//! every successful one costs one more failure. The paper's values; they are constants here,
//! not settings. Contacts to ports that are neither monitored nor listening are not seen
//! (the capture filter drops them), so they count neither way.
//!
//! Scores are kept in fixed point (thousandths) so that every run gives the same result.
//!
//! # Memory
//!
//! A fixed table of [`TRW_SOURCES`] sources (48 bytes each, 3 MiB), in buckets of 8; a new
//! source takes a free or expired slot of its bucket, else the least recently seen one. A
//! source is forgotten `SCAN_WINDOW` after its last first contact. First contacts are told
//! apart by a 64-bit bitmap of port hashes per source: a new port whose bit is taken counts
//! as a repeat, so a scan of many ports needs slightly more probes than the table above says
//! (at most one more for the first dozen ports). Once 32 of its bits are set the bitmap is
//! cleared, so no history of contacts can make later ports look like repeats for good.

use std::net::IpAddr;
use std::time::Duration;

use crate::hash::HashSeed;
use crate::probe::{Protocol, Timestamp};
use crate::tracker::Observation;

/// θ₀: the chance that a benign source's first contact succeeds.
pub const THETA_BENIGN: f64 = 0.8;
/// θ₁: the chance that a scanner's first contact succeeds.
pub const THETA_SCANNER: f64 = 0.2;
/// P_D: the detection probability aimed at.
pub const DETECTION: f64 = 0.99;
/// P_F: the false-alarm probability tolerated.
pub const FALSE_ALARM: f64 = 0.01;
/// The sources the walk keeps at once.
pub const TRW_SOURCES: usize = 65_536;

const WAYS: usize = 8;
/// The bits of a source's port bitmap set before it is cleared.
const PORT_BITS_BEFORE_RESET: u32 = 32;

/// Fixed-point thousandths of a natural log.
fn milli(x: f64) -> i32 {
    // The parameters are constants well inside i32 once scaled; the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let scaled = (x.ln() * 1000.0).round() as i32;
    scaled
}

/// The walk's steps and bounds, in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Steps {
    failure: i32,
    success: i32,
    upper: i32,
    lower: i32,
}

impl Steps {
    fn paper() -> Self {
        Self {
            failure: milli((1.0 - THETA_SCANNER) / (1.0 - THETA_BENIGN)),
            success: milli(THETA_SCANNER / THETA_BENIGN),
            upper: milli(DETECTION / FALSE_ALARM),
            lower: milli((1.0 - DETECTION) / (1.0 - FALSE_ALARM)),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    address: [u8; 16],
    family: u8,
    contacts: u16,
    score: i32,
    ports: u64,
    /// Last first contact, micros + 1 (0: free).
    seen: u64,
    /// When the source crossed, micros + 1 (0: not in its quiet window).
    alerted: u64,
}

/// The Threshold Random Walk of every source; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use portsentry_core::trw::Trw;
/// use portsentry_core::{HashSeed, Observation, Protocol, Timestamp};
/// use std::time::Duration;
///
/// let mut trw = Trw::new(Duration::from_secs(300), HashSeed::FIXED);
/// let scanner = "203.0.113.9".parse().unwrap();
/// let at = Timestamp::from_secs(1);
/// for port in [1, 7, 9] {
///     assert!(matches!(trw.failure(scanner, Protocol::Tcp, port, at), Observation::Below { .. }));
/// }
/// assert!(matches!(trw.failure(scanner, Protocol::Tcp, 11, at), Observation::Crossed { distinct_ports: 4 }));
/// ```
#[derive(Debug, Clone)]
pub struct Trw {
    slots: Box<[Slot]>,
    buckets: usize,
    window: Duration,
    seed: HashSeed,
    steps: Steps,
}

impl Trw {
    /// An empty walk; sources are forgotten `window` after their last first contact.
    pub fn new(window: Duration, seed: HashSeed) -> Self {
        Self {
            slots: vec![Slot::default(); TRW_SOURCES].into_boxed_slice(),
            buckets: TRW_SOURCES / WAYS,
            window,
            seed,
            steps: Steps::paper(),
        }
    }

    /// A first contact of `source` with a port that has no service (a monitored port).
    pub fn failure(
        &mut self,
        source: IpAddr,
        protocol: Protocol,
        port: u16,
        at: Timestamp,
    ) -> Observation {
        self.step(source, protocol, port, at, self.steps.failure)
    }

    /// A contact of `source` with a port that has a listening socket.
    pub fn success(&mut self, source: IpAddr, protocol: Protocol, port: u16, at: Timestamp) {
        let _ = self.step(source, protocol, port, at, self.steps.success);
    }

    /// The bytes the table holds (fixed).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of::<Self>()
    }

    fn step(
        &mut self,
        source: IpAddr,
        protocol: Protocol,
        port: u16,
        at: Timestamp,
        delta: i32,
    ) -> Observation {
        let now = at.as_micros().saturating_add(1);
        let window = u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX);
        let (address, family) = match source.to_canonical() {
            IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), 4u8),
            IpAddr::V6(a) => (a.octets(), 6u8),
        };
        let hash = self.seed.hash_addr(source.to_canonical());
        let bucket = usize::try_from(hash >> 32).unwrap_or(0) % self.buckets * WAYS;
        let slots = &mut self.slots[bucket..bucket + WAYS];
        let live = |s: &Slot| s.seen != 0 && now < s.seen.saturating_add(window);
        let index = match slots
            .iter()
            .position(|s| live(s) && s.address == address && s.family == family)
        {
            Some(i) => i,
            None => {
                let i = slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| if live(s) { s.seen } else { 0 })
                    .map_or(0, |(i, _)| i);
                slots[i] = Slot {
                    address,
                    family,
                    ..Slot::default()
                };
                i
            }
        };
        let slot = &mut slots[index];
        if slot.alerted != 0 {
            if now < slot.alerted.saturating_add(window) {
                slot.seen = now;
                return Observation::Quiet;
            }
            *slot = Slot {
                address,
                family,
                ..Slot::default()
            };
        }
        let protocol_bit = match protocol {
            Protocol::Tcp => 0,
            Protocol::Udp => 1,
        };
        let bit = 1u64
            << ((u64::from(port) * 2 + protocol_bit).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58);
        slot.seen = now;
        if slot.ports.count_ones() >= PORT_BITS_BEFORE_RESET {
            // A nearly full bitmap would take every new port for a repeat: start afresh
            // (a port contacted before may then count once more).
            slot.ports = 0;
        }
        if slot.ports & bit != 0 {
            return Observation::Below {
                distinct_ports: u32::from(slot.contacts),
            };
        }
        slot.ports |= bit;
        slot.contacts = slot.contacts.saturating_add(1);
        slot.score = (slot.score + delta).max(self.steps.lower);
        if slot.score >= self.steps.upper {
            slot.alerted = now;
            Observation::Crossed {
                distinct_ports: u32::from(slot.contacts),
            }
        } else {
            Observation::Below {
                distinct_ports: u32::from(slot.contacts),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_papers_parameters_give_four_failures() {
        let steps = Steps::paper();
        assert_eq!(steps.failure, 1386);
        assert_eq!(steps.success, -1386);
        assert_eq!(steps.upper, 4595);
        assert_eq!(steps.lower, -4595);
        let mut trw = Trw::new(Duration::from_secs(300), HashSeed::FIXED);
        let scanner = addr("198.51.100.1");
        let t = Timestamp::from_secs(10);
        let seen: Vec<Observation> = (1..=4)
            .map(|port| trw.failure(scanner, Protocol::Udp, port, t))
            .collect();
        assert_eq!(
            seen,
            [
                Observation::Below { distinct_ports: 1 },
                Observation::Below { distinct_ports: 2 },
                Observation::Below { distinct_ports: 3 },
                Observation::Crossed { distinct_ports: 4 },
            ]
        );
        // Quiet for the window, then a fresh walk.
        assert_eq!(
            trw.failure(scanner, Protocol::Udp, 9, t),
            Observation::Quiet
        );
        let later = t.saturating_add(Duration::from_secs(301));
        assert_eq!(
            trw.failure(scanner, Protocol::Udp, 9, later),
            Observation::Below { distinct_ports: 1 }
        );
    }

    #[test]
    fn successes_hold_a_client_back_and_repeats_do_not_count() {
        let mut trw = Trw::new(Duration::from_secs(300), HashSeed::FIXED);
        let client = addr("2001:db8::5");
        let t = Timestamp::from_secs(10);
        // A client of the web server who also knocks at three closed ports: no alarm.
        trw.success(client, Protocol::Tcp, 443, t);
        for port in [1, 2, 3] {
            assert!(matches!(
                trw.failure(client, Protocol::Tcp, port, t),
                Observation::Below { .. }
            ));
        }
        // Retransmissions to the same ports change nothing.
        for _ in 0..10 {
            assert_eq!(
                trw.failure(client, Protocol::Tcp, 3, t),
                Observation::Below { distinct_ports: 4 }
            );
        }
        // Two more distinct failures cross (1 success = 1 failure back).
        assert!(matches!(
            trw.failure(client, Protocol::Tcp, 4, t),
            Observation::Below { .. }
        ));
        assert!(matches!(
            trw.failure(client, Protocol::Tcp, 5, t),
            Observation::Crossed { .. }
        ));
    }

    #[test]
    fn a_benign_history_is_bounded() {
        let mut trw = Trw::new(Duration::from_secs(300), HashSeed::FIXED);
        let source = addr("192.0.2.7");
        let t = Timestamp::from_secs(1);
        for port in 1000..1100 {
            trw.success(source, Protocol::Tcp, port, t);
        }
        // From the lower bound (-4595) it takes 7 failures to reach +4595.
        let crossed = (1..=20)
            .position(|port| {
                matches!(
                    trw.failure(source, Protocol::Udp, port, t),
                    Observation::Crossed { .. }
                )
            })
            .unwrap();
        assert!(crossed <= 8, "{crossed}");
    }

    #[test]
    fn memory_is_fixed() {
        let mut trw = Trw::new(Duration::from_secs(300), HashSeed::FIXED);
        let before = trw.memory_bytes();
        assert!(before <= 48 * TRW_SOURCES + 256, "{before}");
        for i in 0..300_000u32 {
            let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = trw.failure(source, Protocol::Tcp, 1, Timestamp::from_secs(1));
        }
        assert_eq!(trw.memory_bytes(), before);
    }
}
