//! What a replay remembers per source, in memory that does not grow with the number of
//! sources.
//!
//! * Before its first alert, a source has a small fixed-size [`Early`] record (probe count and
//!   up to [`EARLY_PAIRS`] pairs) in a set-associative table of [`EARLY_SETS`] sets of
//!   [`EARLY_WAYS`] records (256 KiB, so that it stays in the processor's cache): a new source
//!   takes the least recently used record of its set. A source's early record therefore
//!   survives at least `EARLY_WAYS − 1` newer sources and, with sources spread evenly by the
//!   keyed mix, usually thousands.
//! * From its first alert on, a source has a full [`Tally`] (every pair), for at most the
//!   list limit of sources; alerts of sources beyond it are only counted.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::event::{Alert, Event};
use crate::probe::{Probe, Protocol};

/// Sets of the early table.
pub(super) const EARLY_SETS: usize = 1024;
/// Records per set of the early table.
pub(super) const EARLY_WAYS: usize = 4;
/// Pairs kept per source before its first alert.
pub(super) const EARLY_PAIRS: usize = 8;

/// Bit of a packed pair: UDP.
const UDP: u32 = 1 << 16;
/// Bit of a packed pair: counted by the detector.
const COUNTED: u32 = 1 << 17;

/// True when the detector counted the probe that gave `event`.
fn counted(event: &Event) -> bool {
    matches!(
        event,
        Event::Alert(_)
            | Event::BelowTrigger { .. }
            | Event::AlreadyAlerted(_)
            | Event::AlreadyBlocked(_)
    )
}

fn pack(probe: &Probe) -> u32 {
    let proto = match probe.protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => UDP,
    };
    proto | u32::from(probe.destination_port)
}

fn unpack(pair: u32) -> (Protocol, u16) {
    let protocol = if pair & UDP == 0 {
        Protocol::Tcp
    } else {
        Protocol::Udp
    };
    (protocol, pair as u16)
}

/// A source's probes before its first alert: fixed size (one cache line), no allocation.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
pub(super) struct Early {
    /// The source's address bits (IPv4 as its mapped IPv6 form).
    addr: u128,
    /// Use order: the table's counter at the record's latest use; 0 for a free record.
    stamp: u64,
    probes: u32,
    pairs: [u32; EARLY_PAIRS],
    len: u8,
    /// More distinct pairs came than `EARLY_PAIRS`.
    overflowed: bool,
}

impl Early {
    fn add(&mut self, probe: &Probe, event: &Event) {
        self.probes = self.probes.saturating_add(1);
        let pair = pack(probe);
        let flag = if counted(event) { COUNTED } else { 0 };
        let len = usize::from(self.len);
        if let Some(p) = self.pairs[..len]
            .iter_mut()
            .find(|p| **p & !COUNTED == pair)
        {
            *p |= flag;
        } else if len < EARLY_PAIRS {
            self.pairs[len] = pair | flag;
            self.len += 1;
        } else {
            self.overflowed = true;
        }
    }
}

/// A source's every probe from its first alert on (and its early record before).
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) probes: u64,
    pub(super) probed: BTreeSet<(Protocol, u16)>,
    pub(super) counted: BTreeSet<(Protocol, u16)>,
    pub(super) alerts: Vec<Alert>,
    /// Everything before the first alert is known.
    pub(super) exact: bool,
}

impl Tally {
    /// A tally starting from `early` (`None` when the early record was forgotten) and the
    /// pairs the detector counted towards the first alert.
    fn start(early: Option<Early>, counted_pairs: &[(Protocol, u16)]) -> Self {
        let mut tally = Self {
            exact: early.is_some_and(|e| !e.overflowed),
            ..Self::default()
        };
        if let Some(early) = early {
            tally.probes = u64::from(early.probes);
            for &pair in &early.pairs[..usize::from(early.len)] {
                tally.probed.insert(unpack(pair));
                if pair & COUNTED != 0 {
                    tally.counted.insert(unpack(pair));
                }
            }
        }
        for &pair in counted_pairs {
            tally.probed.insert(pair);
            tally.counted.insert(pair);
        }
        tally
    }

    fn add(&mut self, probe: &Probe, event: &Event) {
        self.probes += 1;
        let pair = (probe.protocol, probe.destination_port);
        self.probed.insert(pair);
        if counted(event) {
            self.counted.insert(pair);
        }
        if let Event::Alert(alert) = event {
            self.alerts.push(*alert);
        }
    }
}

/// The key of an address in the early table.
fn addr_bits(source: IpAddr) -> u128 {
    match source {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

/// Per-source records of a replay; see the module docs.
#[derive(Debug)]
pub(super) struct Tallies {
    early: Vec<Early>,
    /// Uses of the early table so far (the next stamp).
    uses: u64,
    /// The key of the set mix (fixed: a replay is deterministic).
    mix: u64,
    alerted: HashMap<IpAddr, Tally>,
    max_listed: usize,
    /// Alerts of sources beyond the list limit.
    pub(super) unlisted_alerts: u64,
}

impl Tallies {
    /// Empty records listing at most `max_listed` alerting sources in detail.
    pub(super) fn new(max_listed: usize) -> Self {
        Self {
            early: vec![Early::default(); EARLY_SETS * EARLY_WAYS],
            uses: 0,
            mix: 0x9E37_79B9_7F4A_7C15,
            alerted: HashMap::new(),
            max_listed,
            unlisted_alerts: 0,
        }
    }

    /// Records `probe` and the detector's `event` for it. `counted_pairs` is called at a
    /// source's first alert for the pairs the detector counted towards it.
    pub(super) fn add(
        &mut self,
        probe: &Probe,
        event: &Event,
        counted_pairs: impl FnOnce(&mut Vec<(Protocol, u16)>),
    ) {
        let source = probe.source;
        if let Some(tally) = self.alerted.get_mut(&source) {
            tally.add(probe, event);
            return;
        }
        if !matches!(event, Event::Alert(_)) {
            self.early(source).add(probe, event);
            return;
        }
        let early = self.take_early(source);
        if self.alerted.len() >= self.max_listed {
            self.unlisted_alerts += 1;
            return;
        }
        let mut pairs = Vec::new();
        counted_pairs(&mut pairs);
        let mut tally = Tally::start(early, &pairs);
        tally.add(probe, event);
        self.alerted.insert(source, tally);
    }

    /// The first record of `source`'s set, and the key.
    fn set_of(&self, source: IpAddr) -> (usize, u128) {
        let bits = addr_bits(source);
        let folded = (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17);
        let set = (folded.wrapping_mul(self.mix) >> 40) as usize % EARLY_SETS;
        (set * EARLY_WAYS, bits)
    }

    /// The early record of `source`, made (in place of its set's least recently used one)
    /// when it has none.
    fn early(&mut self, source: IpAddr) -> &mut Early {
        let (first, bits) = self.set_of(source);
        self.uses += 1;
        let set = &mut self.early[first..first + EARLY_WAYS];
        let way = match set.iter().position(|e| e.stamp != 0 && e.addr == bits) {
            Some(way) => way,
            None => {
                let way = (0..EARLY_WAYS).min_by_key(|&w| set[w].stamp).unwrap_or(0);
                set[way] = Early {
                    addr: bits,
                    ..Early::default()
                };
                way
            }
        };
        set[way].stamp = self.uses;
        &mut set[way]
    }

    /// Removes and returns the early record of `source`, if it is still held.
    fn take_early(&mut self, source: IpAddr) -> Option<Early> {
        let (first, bits) = self.set_of(source);
        let set = &mut self.early[first..first + EARLY_WAYS];
        let way = set.iter().position(|e| e.stamp != 0 && e.addr == bits)?;
        Some(std::mem::take(&mut set[way]))
    }

    /// The alerting sources' tallies.
    pub(super) fn into_alerted(self) -> impl Iterator<Item = (IpAddr, Tally)> {
        self.alerted.into_iter()
    }
}
