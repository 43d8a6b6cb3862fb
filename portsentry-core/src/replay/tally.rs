//! What a replay remembers per source, in memory that does not grow with the number of
//! sources.
//!
//! * Before its first alert, a source has a small fixed-size [`Early`] record (probe count and
//!   up to [`EARLY_PAIRS`] pairs) in a two-generation table: the current generation takes new
//!   sources until it holds [`EARLY_SOURCES`], then the older one is emptied and takes its
//!   place. A source's early record therefore survives at least `EARLY_SOURCES` newer sources.
//! * From its first alert on, a source has a full [`Tally`] (every pair), for at most the
//!   list limit of sources; alerts of sources beyond it are only counted.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::event::{Alert, Event};
use crate::probe::{Probe, Protocol};

/// Sources per generation of the early table.
pub(super) const EARLY_SOURCES: usize = 16_384;
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

/// A source's probes before its first alert: fixed size, no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Early {
    probes: u64,
    pairs: [u32; EARLY_PAIRS],
    len: u8,
    /// More distinct pairs came than `EARLY_PAIRS`.
    overflowed: bool,
}

impl Early {
    fn add(&mut self, probe: &Probe, event: &Event) {
        self.probes += 1;
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
            tally.probes = early.probes;
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

/// Per-source records of a replay; see the module docs.
#[derive(Debug)]
pub(super) struct Tallies {
    current: HashMap<IpAddr, Early>,
    previous: HashMap<IpAddr, Early>,
    alerted: HashMap<IpAddr, Tally>,
    max_listed: usize,
    /// Alerts of sources beyond the list limit.
    pub(super) unlisted_alerts: u64,
}

impl Tallies {
    /// Empty records listing at most `max_listed` alerting sources in detail.
    pub(super) fn new(max_listed: usize) -> Self {
        Self {
            current: HashMap::with_capacity(EARLY_SOURCES),
            previous: HashMap::with_capacity(EARLY_SOURCES),
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
        let early = self
            .current
            .remove(&source)
            .or_else(|| self.previous.remove(&source));
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

    fn early(&mut self, source: IpAddr) -> &mut Early {
        if !self.current.contains_key(&source) {
            let moved = self.previous.remove(&source);
            if self.current.len() >= EARLY_SOURCES {
                std::mem::swap(&mut self.current, &mut self.previous);
                self.current.clear();
            }
            return self
                .current
                .entry(source)
                .or_insert(moved.unwrap_or_default());
        }
        self.current.entry(source).or_default()
    }

    /// The alerting sources' tallies.
    pub(super) fn into_alerted(self) -> impl Iterator<Item = (IpAddr, Tally)> {
        self.alerted.into_iter()
    }
}
