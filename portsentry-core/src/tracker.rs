//! [`Tracker`]: the bounded threshold tracker behind `SCAN_TRIGGER`.
//!
//! It counts, per source address, the DISTINCT (protocol, port) pairs probed inside a sliding
//! window (`SCAN_WINDOW`). A retransmission to a port already seen refreshes that port's time
//! but does not raise the count; a port probed longer ago than the window no longer counts.
//! When a source's count reaches the trigger the tracker reports [`Observation::Crossed`] once
//! and then keeps the source quiet ([`Observation::Quiet`]) for one window.
//!
//! # Two tiers
//!
//! A source with a single probe so far is indistinguishable from one spoofed packet, and a
//! flood of those is cheap to send. So, when the trigger is 2 or more, such a source costs
//! 8 bytes in a compact **first-probe tier** (a fingerprint of its address hash, the time and
//! the pair probed); only its second distinct pair gives it a **full slot** (a cache line with
//! its hits, in an LRU list). With a trigger of 0 or 1 the first probe alarms, so there is no
//! first-probe tier and every source goes straight to a full slot.
//!
//! # Memory
//!
//! Everything is allocated once, in [`Tracker::new`], and never grows:
//!
//! * an arena of `capacity` full slots of one cache line (64 bytes) each, holding the first
//!   two port hits of the source;
//! * a compact array of `capacity` list links (8 bytes each), so that LRU updates touch it
//!   rather than scattered slots;
//! * `capacity × (trigger − 2)` further packed port hits (8 bytes each) when the trigger is
//!   above 2 (at most [`MAX_SCAN_TRIGGER`]);
//! * an open-addressing index (linear probing, backward-shift deletion, no tombstones) of `u32`
//!   slot numbers, a power of two at least four times the capacity, so the load factor never
//!   exceeds 1/4 and probe sequences stay short, with an occupancy bitmap of one bit per index
//!   position (a lookup whose home position is free ends there);
//! * with a trigger of 2 or more, the first-probe tier: two tables of 8-byte entries, each
//!   `⌈4F/3⌉` entries (rounded up to whole 64-byte buckets) for `F = min(16 × capacity, 2^24)`
//!   first probes per generation ([`FIRST_PROBES_PER_SLOT`], [`MAX_FIRST_PROBES`]).
//!
//! At the default `MAX_TRACKED_SOURCES` of 65,536: 4 MiB of slots, 0.5 MiB of links, 1 MiB of
//! index, 0.5 MiB of further hits per trigger step above 2, and 21.3 MiB of first-probe tier
//! (F = 1,048,576): 28.3 MiB in all at `SCAN_TRIGGER="5"`, at most 32 MiB up to a trigger
//! of 9; 5.5 MiB with the default trigger of 0 (no tier).
//!
//! [`Tracker::memory_bytes`] reports the total (also in [`TrackerStats::memory_bytes`]); it is
//! the same before and after any sequence of calls. Recording a probe allocates nothing. Once
//! per F new one-probe sources the older first-probe table is emptied (an 11 MiB write at the
//! defaults).
//!
//! # Hashing
//!
//! The index is keyed by SipHash-1-3 under a [`HashSeed`]. Every address sits at most
//! [`MAX_PROBE_DISTANCE`] positions from its home position: a new source that would have to sit
//! further away (which needs crafted collisions, hence a known seed) is not tracked and is
//! counted in [`TrackerStats::untracked_collisions`]. Lookups therefore cost at most
//! `MAX_PROBE_DISTANCE + 1` comparisons whatever the input.
//!
//! The first-probe tier keeps 27 bits of the same hash as a fingerprint and picks the bucket
//! with 32 other bits. A new source is taken for another one (a **false merge**) only when
//! both fall in the same bucket neighbourhood and share the fingerprint: about 20 entries are
//! compared per lookup at the tier's fullest, so about 1.5 × 10^-7 per new source (one in
//! 6.7 million) under a secret seed. A merged source inherits the other one's first pair: at
//! worst it counts one pair it did not probe. Times in the tier are kept to `window / 1024`
//! (at least 1 ms), rounded down.
//!
//! # Eviction policy and what it guarantees
//!
//! Full slots live in one of two LRU lists (a segmented LRU):
//!
//! * **probation**: sources with one distinct port inside the window that hold a full slot
//!   (only with a trigger of 1 or less, or sources demoted from protected);
//! * **protected**: sources with two or more distinct ports inside the window, and sources in
//!   their quiet period after an alert. The protected list holds at most
//!   `P = capacity − ⌈capacity / 4⌉` sources; when a promotion overfills it, its least recently
//!   seen source is moved (demoted) to the front of probation.
//!
//! When a source needs a full slot and all `capacity` slots are used, the victim is, in order:
//! the least recently seen protected source if its evidence is stale (last probe older than the
//! window and no quiet period running), otherwise the least recently seen probation source
//! (probation is never empty then, because protected holds at most `P < capacity`).
//!
//! The first-probe tier forgets by generations: a new first probe goes to the current table;
//! when that has taken F insertions, the older table is emptied and becomes current.
//!
//! Guarantees, for a capacity of at least 2:
//!
//! 1. The number of sources in full slots never exceeds `capacity`, the first-probe tier
//!    holds at most `2F` entries, and memory never grows.
//! 2. A source that has probed two or more distinct ports inside the window (or that is quiet
//!    after an alert) cannot be evicted by new sources, however many, as long as fewer than
//!    `7P/8` other sources have entered or been moved to the front of the protected list since
//!    its own last probe. (A probe moves its source to the front of its list unless at most
//!    1/8 of the list is already ahead of it: that saves the relinking for busy sources and
//!    is why the bound is `7P/8` rather than `P`.)
//!    A flood of spoofed sources that each send probes to a single port (any number of packets
//!    each) never gets a full slot, so it can never erase such a source's progress.
//!    To flush it, an attacker needs about `7P/8` or more distinct sources each probing two
//!    distinct monitored ports inside the window after the scanner's last probe.
//! 3. With a trigger of 2 or more, a source with a single probe so far survives at least
//!    `F` newer one-probe sources (1,048,576 at the default capacity), and is forgotten
//!    once `2F` of them have come; it then loses that one port of progress, no more. Its
//!    second distinct pair inside the window gives it a full slot with both pairs (guarantee 2
//!    from then on). A generation also ends when its table has been current for 512 windows;
//!    the first probes it then forgets are all older than the window.
//!    (With a trigger of 1 or less the first probe alarms, and a source then sits in a full
//!    slot, quiet, under guarantee 2.)
//! 4. A source whose probes are all older than the window keeps no evidence and may be
//!    reclaimed first.
//!
//! Without a tracked entry (eviction, collision refusal) a source starts again from one port.

use std::net::IpAddr;
use std::time::Duration;

use crate::hash::HashSeed;
use crate::probe::{Protocol, Timestamp};

mod first_probes;

use first_probes::{FirstProbe, FirstProbes};

/// The largest supported `SCAN_TRIGGER`: per-source state holds up to this many ports.
pub const MAX_SCAN_TRIGGER: u32 = 64;

/// The longest probe sequence of the address index (see the module docs on hashing).
pub const MAX_PROBE_DISTANCE: usize = 32;

/// The largest supported capacity (slot numbers are `u32`, and the index is four times as large).
pub const MAX_CAPACITY: usize = 1 << 28;

/// First probes remembered per generation of the first-probe tier, per full slot: at the
/// default `MAX_TRACKED_SOURCES` of 65,536, 1,048,576.
pub const FIRST_PROBES_PER_SLOT: usize = 16;

/// The most first probes remembered per generation, whatever the capacity (2^24).
pub const MAX_FIRST_PROBES: usize = 1 << 24;

const EMPTY: u32 = u32::MAX;
const NIL: u32 = u32::MAX;
const PROBATION: usize = 0;
const PROTECTED: usize = 1;
/// Low bits of a packed hit: protocol (bit 16) and port (bits 0..16); the time in milliseconds
/// sits above them.
const HIT_KEY_BITS: u32 = 17;
const HIT_KEY_MASK: u64 = (1 << HIT_KEY_BITS) - 1;
const MAX_HIT_MILLIS: u64 = (1 << (64 - HIT_KEY_BITS)) - 1;

/// Why a [`Tracker`] cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// `MAX_TRACKED_SOURCES` is 0 or above [`MAX_CAPACITY`].
    #[error("MAX_TRACKED_SOURCES must be between 1 and {max}, not {capacity}")]
    Capacity {
        /// The capacity asked for.
        capacity: usize,
        /// The largest supported capacity.
        max: usize,
    },
    /// `SCAN_WINDOW` is shorter than one millisecond.
    #[error("SCAN_WINDOW must be at least 1 ms")]
    ZeroWindow,
    /// `SCAN_TRIGGER` is above [`MAX_SCAN_TRIGGER`].
    #[error("SCAN_TRIGGER must be at most {max}, not {trigger}")]
    TriggerTooLarge {
        /// The trigger asked for.
        trigger: u32,
        /// The largest supported trigger.
        max: u32,
    },
}

/// What the tracker concluded about one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Counted; the source has not reached the trigger.
    Below {
        /// Distinct (protocol, port) pairs inside the window, this one included.
        distinct_ports: u32,
    },
    /// This probe made the source reach the trigger; the source is now quiet for one window.
    Crossed {
        /// Distinct (protocol, port) pairs inside the window, this one included (at most the
        /// trigger: the tracker stores no more than that).
        distinct_ports: u32,
    },
    /// The source reached the trigger less than one window ago; the probe was not counted.
    Quiet,
}

/// Counters and sizes of a [`Tracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TrackerStats {
    /// Sources tracked now.
    pub tracked: usize,
    /// Sources in the protected list now.
    pub protected: usize,
    /// The most sources that can be tracked.
    pub capacity: usize,
    /// Sources that started being tracked.
    pub inserted: u64,
    /// Single-port (probation) sources evicted to make room.
    pub evicted_probation: u64,
    /// Protected sources with stale evidence evicted to make room.
    pub evicted_stale: u64,
    /// Protected sources moved back to probation because the protected list was full.
    pub demoted: u64,
    /// Sources dropped by [`Tracker::expire`] or [`Tracker::forget`].
    pub removed: u64,
    /// New sources not tracked because their index neighbourhood was full (crafted collisions).
    pub untracked_collisions: u64,
    /// Probes that made a source cross the trigger.
    pub crossed: u64,
    /// Sources whose single probe so far is remembered in the first-probe tier now.
    pub first_probe_sources: usize,
    /// Newer one-probe sources a first probe survives at least (`F`; 0: no tier, because a
    /// trigger of 0 or 1 alarms on the first probe).
    pub first_probe_capacity: usize,
    /// Generations of the first-probe tier ended so far (each forgets the oldest first probes).
    pub first_probe_generations: u64,
    /// First probes not remembered because their bucket neighbourhood was full.
    pub first_probe_overflows: u64,
    /// Heap bytes the tracker holds (fixed at construction).
    pub memory_bytes: usize,
}

/// A snapshot of one tracked source, for inspection and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceState {
    /// Distinct (protocol, port) pairs stored for the source (some may be older than the
    /// window until its next probe prunes them).
    pub stored_ports: u32,
    /// The time of its latest probe.
    pub last_seen: Timestamp,
    /// If it crossed the trigger: the end of its quiet period.
    pub quiet_until: Option<Timestamp>,
    /// True when it sits in the protected list.
    pub protected: bool,
}

/// One tracked source: one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Slot {
    addr: IpAddr,
    /// The low 32 bits of the address hash (enough for the home position, since the index
    /// has at most 2^30 positions).
    hash: u32,
    /// The value of its list's push counter when it was last moved to the front.
    stamp: u32,
    last_seen: Timestamp,
    /// `Timestamp::ZERO` when no quiet period runs.
    quiet_until: Timestamp,
    /// The first [`INLINE_HITS`] port hits, in the slot's own cache line.
    inline_hits: [u64; INLINE_HITS],
    hit_count: u8,
    /// `PROBATION`, `PROTECTED`, or `FREE`.
    list: u8,
}

const FREE: u8 = 2;

impl Slot {
    const VACANT: Self = Self {
        addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        hash: 0,
        stamp: 0,
        last_seen: Timestamp::ZERO,
        quiet_until: Timestamp::ZERO,
        inline_hits: [0; INLINE_HITS],
        hit_count: 0,
        list: FREE,
    };
}

/// Port hits stored inside the slot itself (the rest, for triggers above this, live in a
/// separate array).
const INLINE_HITS: usize = 2;

/// A slot's place in its list, kept apart from the slots so that relinking touches a compact
/// array rather than three scattered slots.
#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct List {
    /// Most recently seen.
    head: u32,
    /// Least recently seen.
    tail: u32,
    len: usize,
    /// Moves to the front so far (wrapping).
    pushes: u32,
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
        pushes: 0,
    };
}

/// Bounded per-source counter of distinct probed ports inside a sliding window.
///
/// See the [module documentation](self) for the memory layout, the eviction policy and its
/// guarantees.
///
/// # Examples
///
/// ```
/// use std::net::IpAddr;
/// use std::time::Duration;
/// use portsentry_core::{HashSeed, Observation, Protocol, Timestamp, Tracker};
///
/// let mut t = Tracker::new(1000, Duration::from_secs(60), 3, HashSeed::FIXED).unwrap();
/// let src: IpAddr = "203.0.113.5".parse().unwrap();
/// let at = Timestamp::from_secs(100);
/// assert_eq!(t.record(src, Protocol::Tcp, 22, at), Observation::Below { distinct_ports: 1 });
/// // A retransmission does not count twice.
/// assert_eq!(t.record(src, Protocol::Tcp, 22, at), Observation::Below { distinct_ports: 1 });
/// assert_eq!(t.record(src, Protocol::Udp, 22, at), Observation::Below { distinct_ports: 2 });
/// assert_eq!(t.record(src, Protocol::Tcp, 80, at), Observation::Crossed { distinct_ports: 3 });
/// assert_eq!(t.record(src, Protocol::Tcp, 81, at), Observation::Quiet);
/// ```
#[derive(Debug, Clone)]
pub struct Tracker {
    seed: HashSeed,
    window: Duration,
    window_ms: u64,
    trigger: u32,
    ports_per_source: usize,
    capacity: usize,
    protected_max: usize,
    slots: Vec<Slot>,
    links: Vec<Link>,
    /// Port hits per source stored in `hits` (beyond the inline ones).
    spill: usize,
    hits: Vec<u64>,
    index: Vec<u32>,
    /// One bit per index position: set when the position holds a slot number. A lookup whose
    /// home position is free ends here, in a bitmap 32 times smaller than the index, which
    /// stays in the processor's cache (a flood of new sources then costs no index access).
    occupied: Vec<u64>,
    mask: usize,
    lists: [List; 2],
    free_head: u32,
    /// Sources with a single probe so far (only when the trigger is 2 or more).
    first: FirstProbes,
    stats: TrackerStats,
}

impl Tracker {
    /// A tracker for at most `capacity` sources, counting distinct ports inside `window`, that
    /// reports [`Observation::Crossed`] at `trigger` distinct ports (0 and 1: on the first
    /// probe), hashing addresses under `seed`.
    ///
    /// All memory is allocated here.
    ///
    /// # Errors
    ///
    /// [`TrackerError`] when `capacity` is 0 or above [`MAX_CAPACITY`], `window` is under
    /// 1 ms, or `trigger` is above [`MAX_SCAN_TRIGGER`].
    pub fn new(
        capacity: usize,
        window: Duration,
        trigger: u32,
        seed: HashSeed,
    ) -> Result<Self, TrackerError> {
        Self::check(capacity, window, trigger)?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let trigger = trigger.max(1);
        let ports_per_source = trigger as usize;
        let index_len = (capacity * 4).next_power_of_two();
        let slots = vec![Slot::VACANT; capacity];
        let links = (0..capacity)
            .map(|i| Link {
                prev: NIL,
                next: if i + 1 < capacity { i as u32 + 1 } else { NIL },
            })
            .collect();
        let spill = ports_per_source.saturating_sub(INLINE_HITS);
        let first_per_generation = if trigger >= 2 {
            capacity
                .saturating_mul(FIRST_PROBES_PER_SLOT)
                .min(MAX_FIRST_PROBES)
        } else {
            0
        };
        Ok(Self {
            seed,
            window,
            window_ms,
            trigger,
            ports_per_source,
            capacity,
            protected_max: capacity - capacity.div_ceil(4),
            slots,
            links,
            spill,
            hits: vec![0; capacity * spill],
            index: vec![EMPTY; index_len],
            occupied: vec![0; index_len.div_ceil(64)],
            mask: index_len - 1,
            lists: [List::EMPTY; 2],
            free_head: 0,
            first: FirstProbes::new(first_per_generation, window_ms),
            stats: TrackerStats {
                capacity,
                ..TrackerStats::default()
            },
        })
    }

    /// Checks the settings [`Tracker::new`] accepts, without allocating anything.
    ///
    /// # Errors
    ///
    /// As [`Tracker::new`].
    pub fn check(capacity: usize, window: Duration, trigger: u32) -> Result<(), TrackerError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(TrackerError::Capacity {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        if window.as_millis() == 0 {
            return Err(TrackerError::ZeroWindow);
        }
        if trigger > MAX_SCAN_TRIGGER {
            return Err(TrackerError::TriggerTooLarge {
                trigger,
                max: MAX_SCAN_TRIGGER,
            });
        }
        Ok(())
    }

    /// Records one probe from `source` to (`protocol`, `port`) at `at` and says whether the
    /// source is below the trigger, crosses it now, or is quiet after an earlier crossing.
    ///
    /// IPv4-mapped IPv6 sources are tracked as their IPv4 address. Allocates nothing.
    pub fn record(
        &mut self,
        source: IpAddr,
        protocol: Protocol,
        port: u16,
        at: Timestamp,
    ) -> Observation {
        let addr = source.to_canonical();
        let hash = self.seed.hash_addr(addr);
        let key = hit_key(protocol, port);
        let now_ms = millis(at);
        if let Some((_, s)) = self.find(addr, hash) {
            return self.record_known(s as usize, key, at, now_ms);
        }
        if self.first.per_generation() == 0 {
            return self
                .record_new(addr, hash, None, key, at, now_ms)
                .unwrap_or_else(|| self.untracked(1));
        }
        match self.first.find(hash, now_ms) {
            FirstProbe::Seen {
                key: first, place, ..
            } if first == key => {
                // A retransmission of the first probe: refresh its time.
                self.first.insert(hash, key, now_ms, Some(place));
                Observation::Below { distinct_ports: 1 }
            }
            FirstProbe::Seen {
                key: first,
                at_ms,
                place,
            } => {
                // The second distinct pair: the source moves into a full slot.
                let first_hit = (at_ms.min(MAX_HIT_MILLIS) << HIT_KEY_BITS) | first;
                match self.record_new(addr, hash, Some(first_hit), key, at, now_ms) {
                    Some(observation) => {
                        self.first.remove(place);
                        observation
                    }
                    None => self.untracked(2),
                }
            }
            FirstProbe::Expired(place) => {
                self.first.insert(hash, key, now_ms, Some(place));
                Observation::Below { distinct_ports: 1 }
            }
            FirstProbe::Absent => {
                self.first.insert(hash, key, now_ms, None);
                Observation::Below { distinct_ports: 1 }
            }
        }
    }

    /// Reads the memory that recording probes from `sources` will touch first (the
    /// occupancy bit of each home position and the first-probe bucket), so that a caller
    /// holding a batch of probes can have those cache misses overlap instead of paying them
    /// one after the other; `hashes` is scratch space. Changes nothing; the returned value
    /// only keeps the reads from being optimised away (pass it to
    /// [`std::hint::black_box`]).
    pub fn touch(&self, sources: impl IntoIterator<Item = IpAddr>, hashes: &mut Vec<u64>) -> u64 {
        hashes.clear();
        hashes.extend(
            sources
                .into_iter()
                .map(|source| self.seed.hash_addr(source.to_canonical())),
        );
        // A tight loop of independent loads: the processor keeps them all in flight.
        let mut seen = 0;
        for &hash in hashes.iter() {
            let pos = hash as usize & self.mask;
            seen ^= self.occupied[pos / 64] ^ self.first.touch(hash);
        }
        seen
    }

    /// Forgets `source` (for example when its block is released); true if it was tracked
    /// (in a full slot or in the first-probe tier).
    pub fn forget(&mut self, source: IpAddr) -> bool {
        let addr = source.to_canonical();
        let hash = self.seed.hash_addr(addr);
        let first = self.first.forget(hash);
        match self.find(addr, hash) {
            Some((pos, s)) => {
                self.remove(pos, s as usize);
                self.stats.removed += 1;
                true
            }
            None => first,
        }
    }

    /// Ends the quiet period of `source`, so that its next counted probe can cross the trigger
    /// again at once; true if it was tracked.
    pub fn rearm(&mut self, source: IpAddr) -> bool {
        let addr = source.to_canonical();
        let hash = self.seed.hash_addr(addr);
        match self.find(addr, hash) {
            Some((_, s)) => {
                self.slots[s as usize].quiet_until = Timestamp::ZERO;
                true
            }
            None => false,
        }
    }

    /// Drops sources whose latest probe is older than the window at `now` and whose quiet
    /// period is over, starting from the least recently seen; returns how many were dropped.
    ///
    /// Optional housekeeping: eviction reclaims stale sources by itself.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let mut dropped = 0;
        for list in [PROBATION, PROTECTED] {
            loop {
                let tail = self.lists[list].tail;
                if tail == NIL || !self.is_stale(tail as usize, now) {
                    break;
                }
                let slot = self.slots[tail as usize];
                if let Some((pos, _)) = self.find(slot.addr, u64::from(slot.hash)) {
                    self.remove(pos, tail as usize);
                    self.stats.removed += 1;
                    dropped += 1;
                } else {
                    break;
                }
            }
        }
        dropped
    }

    /// The state of `source`, if tracked in a full slot, or if its single probe inside the
    /// window ending at `now` is remembered by the first-probe tier.
    pub fn get_at(&self, source: IpAddr, now: Timestamp) -> Option<SourceState> {
        let addr = source.to_canonical();
        let hash = self.seed.hash_addr(addr);
        if self.find(addr, hash).is_some() {
            return self.get(source);
        }
        match self.first.find(hash, millis(now)) {
            FirstProbe::Seen { at_ms, .. } => Some(SourceState {
                stored_ports: 1,
                last_seen: Timestamp::from_micros(at_ms.saturating_mul(1000)),
                quiet_until: None,
                protected: false,
            }),
            FirstProbe::Expired(_) | FirstProbe::Absent => None,
        }
    }

    /// The state of `source`, if tracked in a full slot (a source with a single probe so far
    /// sits in the first-probe tier when the trigger is 2 or more: see [`Tracker::get_at`]).
    pub fn get(&self, source: IpAddr) -> Option<SourceState> {
        let addr = source.to_canonical();
        let (_, s) = self.find(addr, self.seed.hash_addr(addr))?;
        let slot = &self.slots[s as usize];
        Some(SourceState {
            stored_ports: u32::from(slot.hit_count),
            last_seen: slot.last_seen,
            quiet_until: (slot.quiet_until != Timestamp::ZERO).then_some(slot.quiet_until),
            protected: usize::from(slot.list) == PROTECTED,
        })
    }

    /// The (protocol, port) pairs stored for `source` in its full slot and still inside the
    /// window at `now`, appended to `out` in storage order (nothing when the source has no
    /// full slot). For reports, off the hot path.
    pub fn pairs_at(&self, source: IpAddr, now: Timestamp, out: &mut Vec<(Protocol, u16)>) {
        let addr = source.to_canonical();
        let Some((_, s)) = self.find(addr, self.seed.hash_addr(addr)) else {
            return;
        };
        let s = s as usize;
        let count = usize::from(self.slots[s].hit_count);
        let inline = &self.slots[s].inline_hits[..count.min(INLINE_HITS)];
        let spilled =
            &self.hits[s * self.spill..s * self.spill + count.saturating_sub(INLINE_HITS)];
        let now_ms = millis(now);
        for &hit in inline.iter().chain(spilled) {
            if now_ms.saturating_sub(hit >> HIT_KEY_BITS) < self.window_ms {
                let protocol = if hit & (1 << 16) == 0 {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                };
                out.push((protocol, hit as u16));
            }
        }
    }

    /// The number of sources in full slots now (at most the capacity; sources whose single
    /// probe sits in the first-probe tier are counted in [`TrackerStats::first_probe_sources`]).
    pub fn len(&self) -> usize {
        self.lists[PROBATION].len + self.lists[PROTECTED].len
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most sources this tracker holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most sources the protected list holds (`P` in the module docs).
    pub fn protected_capacity(&self) -> usize {
        self.protected_max
    }

    /// The effective trigger (at least 1).
    pub fn trigger(&self) -> u32 {
        self.trigger
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counters and sizes.
    pub fn stats(&self) -> TrackerStats {
        let first = self.first.counts();
        TrackerStats {
            tracked: self.len(),
            protected: self.lists[PROTECTED].len,
            first_probe_sources: first.live,
            first_probe_capacity: self.first.per_generation(),
            first_probe_generations: first.generations,
            first_probe_overflows: first.overflows,
            memory_bytes: self.memory_bytes(),
            ..self.stats
        }
    }

    /// Bytes of heap memory held (fixed at construction), the first-probe tier included.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.links.capacity() * size_of::<Link>()
            + self.hits.capacity() * size_of::<u64>()
            + self.index.capacity() * size_of::<u32>()
            + self.occupied.capacity() * size_of::<u64>()
            + self.first.memory_bytes()
    }

    fn record_known(&mut self, s: usize, key: u64, at: Timestamp, now_ms: u64) -> Observation {
        let slot = &mut self.slots[s];
        if at > slot.last_seen {
            slot.last_seen = at;
        }
        if at < slot.quiet_until {
            self.place(s, true);
            return Observation::Quiet;
        }
        let distinct = self.add_hit(s, key, now_ms);
        self.conclude(s, distinct, at)
    }

    /// Gives `addr` a full slot holding `first_hit` (a packed hit, if the first-probe tier
    /// had one) and records `key`; `None` when its index neighbourhood is full.
    fn record_new(
        &mut self,
        addr: IpAddr,
        hash: u64,
        first_hit: Option<u64>,
        key: u64,
        at: Timestamp,
        now_ms: u64,
    ) -> Option<Observation> {
        self.free_position(hash)?;
        if self.free_head == NIL {
            self.evict(at);
        }
        // Eviction may have shifted index entries: look for the first free position again.
        let pos = self.free_position(hash)?;
        let s = self.free_head as usize;
        self.free_head = self.links[s].next;
        self.slots[s] = Slot {
            addr,
            hash: hash as u32,
            stamp: 0,
            last_seen: at,
            quiet_until: Timestamp::ZERO,
            inline_hits: inline_with(first_hit),
            hit_count: u8::from(first_hit.is_some()),
            list: FREE,
        };
        self.set_position(pos, s as u32);
        self.stats.inserted += 1;
        let distinct = self.add_hit(s, key, now_ms);
        Some(self.conclude(s, distinct, at))
    }

    /// The observation for a probe whose source cannot get a full slot (its index
    /// neighbourhood is full) with `distinct` pairs so far.
    fn untracked(&mut self, distinct: u32) -> Observation {
        self.stats.untracked_collisions += 1;
        if distinct >= self.trigger {
            self.stats.crossed += 1;
            Observation::Crossed {
                distinct_ports: distinct,
            }
        } else {
            Observation::Below {
                distinct_ports: distinct,
            }
        }
    }

    fn conclude(&mut self, s: usize, distinct: u32, at: Timestamp) -> Observation {
        if distinct >= self.trigger {
            self.slots[s].quiet_until = at.saturating_add(self.window);
            self.stats.crossed += 1;
            self.place(s, true);
            Observation::Crossed {
                distinct_ports: distinct,
            }
        } else {
            self.place(s, distinct >= 2);
            Observation::Below {
                distinct_ports: distinct,
            }
        }
    }

    /// Prunes hits older than the window, adds or refreshes `key`, and returns the number of
    /// distinct hits now stored.
    fn add_hit(&mut self, s: usize, key: u64, now_ms: u64) -> u32 {
        let count = usize::from(self.slots[s].hit_count);
        let mut hits = [0u64; MAX_SCAN_TRIGGER as usize];
        let inline = count.min(INLINE_HITS);
        hits[..inline].copy_from_slice(&self.slots[s].inline_hits[..inline]);
        let base = s * self.spill;
        if count > INLINE_HITS {
            hits[INLINE_HITS..count].copy_from_slice(&self.hits[base..base + count - INLINE_HITS]);
        }
        let fresh = (now_ms << HIT_KEY_BITS) | key;
        let mut kept = 0;
        let mut found = false;
        for j in 0..count {
            let hit = hits[j];
            if now_ms.saturating_sub(hit >> HIT_KEY_BITS) >= self.window_ms {
                continue;
            }
            hits[kept] = if hit & HIT_KEY_MASK == key {
                found = true;
                fresh
            } else {
                hit
            };
            kept += 1;
        }
        if !found {
            if kept < self.ports_per_source {
                hits[kept] = fresh;
                kept += 1;
            } else {
                // Full (only after a crossing): replace the oldest hit.
                let oldest = (0..kept)
                    .min_by_key(|&j| hits[j] >> HIT_KEY_BITS)
                    .unwrap_or(0);
                hits[oldest] = fresh;
            }
        }
        let inline = kept.min(INLINE_HITS);
        self.slots[s].inline_hits[..inline].copy_from_slice(&hits[..inline]);
        if kept > INLINE_HITS {
            self.hits[base..base + kept - INLINE_HITS].copy_from_slice(&hits[INLINE_HITS..kept]);
        }
        // `kept` ≤ ports_per_source ≤ MAX_SCAN_TRIGGER (64), so it fits in a u8.
        self.slots[s].hit_count = kept as u8;
        kept as u32
    }

    fn is_stale(&self, s: usize, now: Timestamp) -> bool {
        let slot = &self.slots[s];
        now >= slot.quiet_until
            && millis(now).saturating_sub(millis(slot.last_seen)) >= self.window_ms
    }

    /// Frees one slot (called only when all slots are used).
    fn evict(&mut self, now: Timestamp) {
        let protected_tail = self.lists[PROTECTED].tail;
        let victim = if protected_tail != NIL && self.is_stale(protected_tail as usize, now) {
            self.stats.evicted_stale += 1;
            protected_tail
        } else if self.lists[PROBATION].tail != NIL {
            self.stats.evicted_probation += 1;
            self.lists[PROBATION].tail
        } else {
            // Unreachable for capacity ≥ 2 (protected holds fewer than `capacity`); with
            // capacity 1 the single protected source gives way.
            self.stats.evicted_stale += 1;
            protected_tail
        };
        let slot = self.slots[victim as usize];
        if let Some((pos, _)) = self.find(slot.addr, u64::from(slot.hash)) {
            self.remove(pos, victim as usize);
        }
    }

    /// Moves slot `s` to the front of probation or protected, demoting if protected overflows.
    fn place(&mut self, s: usize, protect: bool) {
        let target = if protect && self.protected_max > 0 {
            PROTECTED
        } else {
            PROBATION
        };
        let current = usize::from(self.slots[s].list);
        if current == target {
            // Already near the front (at most len/8 sources ahead of it): leave it there. This
            // saves the relinking (two scattered memory accesses) for busy sources.
            let list = &self.lists[target];
            let ahead_at_most = list.pushes.wrapping_sub(self.slots[s].stamp) as usize;
            if ahead_at_most <= list.len / 8 {
                return;
            }
        }
        if current != usize::from(FREE) {
            self.unlink(s);
        }
        self.push_front(target, s);
        if target == PROTECTED && self.lists[PROTECTED].len > self.protected_max {
            let tail = self.lists[PROTECTED].tail as usize;
            self.unlink(tail);
            self.push_front(PROBATION, tail);
            self.stats.demoted += 1;
        }
    }

    fn unlink(&mut self, s: usize) {
        let Link { prev, next } = self.links[s];
        let list = usize::from(self.slots[s].list);
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        self.lists[list].len -= 1;
        self.links[s] = Link {
            prev: NIL,
            next: NIL,
        };
        self.slots[s].list = FREE;
    }

    fn push_front(&mut self, list: usize, s: usize) {
        let head = self.lists[list].head;
        self.lists[list].pushes = self.lists[list].pushes.wrapping_add(1);
        self.links[s] = Link {
            prev: NIL,
            next: head,
        };
        let slot = &mut self.slots[s];
        slot.list = list as u8;
        slot.stamp = self.lists[list].pushes;
        if head == NIL {
            self.lists[list].tail = s as u32;
        } else {
            self.links[head as usize].prev = s as u32;
        }
        self.lists[list].head = s as u32;
        self.lists[list].len += 1;
    }

    /// Unlinks slot `s` (at index position `pos`) and returns it to the free list.
    fn remove(&mut self, pos: usize, s: usize) {
        if self.slots[s].list != FREE {
            self.unlink(s);
        }
        self.remove_position(pos);
        self.slots[s] = Slot::VACANT;
        self.links[s] = Link {
            prev: NIL,
            next: self.free_head,
        };
        self.free_head = s as u32;
    }

    fn find(&self, addr: IpAddr, hash: u64) -> Option<(usize, u32)> {
        let mut pos = hash as usize & self.mask;
        if self.occupied[pos / 64] & (1 << (pos % 64)) == 0 {
            return None;
        }
        for _ in 0..=MAX_PROBE_DISTANCE {
            let s = self.index[pos];
            if s == EMPTY {
                return None;
            }
            let slot = &self.slots[s as usize];
            if slot.hash == hash as u32 && slot.addr == addr {
                return Some((pos, s));
            }
            pos = (pos + 1) & self.mask;
        }
        None
    }

    fn free_position(&self, hash: u64) -> Option<usize> {
        let mut pos = hash as usize & self.mask;
        for _ in 0..=MAX_PROBE_DISTANCE {
            if self.index[pos] == EMPTY {
                return Some(pos);
            }
            pos = (pos + 1) & self.mask;
        }
        None
    }

    /// Puts `s` (a slot number or `EMPTY`) at index position `pos`, keeping the occupancy
    /// bitmap in step.
    fn set_position(&mut self, pos: usize, s: u32) {
        self.index[pos] = s;
        let bit = 1u64 << (pos % 64);
        if s == EMPTY {
            self.occupied[pos / 64] &= !bit;
        } else {
            self.occupied[pos / 64] |= bit;
        }
    }

    /// Empties index position `hole` and shifts later entries of its run back (no tombstones).
    /// Entries only move closer to their home, so the distance bound keeps holding.
    fn remove_position(&mut self, mut hole: usize) {
        self.set_position(hole, EMPTY);
        let mut pos = hole;
        loop {
            pos = (pos + 1) & self.mask;
            let s = self.index[pos];
            if s == EMPTY {
                return;
            }
            let home = self.slots[s as usize].hash as usize & self.mask;
            if pos.wrapping_sub(home) & self.mask >= pos.wrapping_sub(hole) & self.mask {
                self.set_position(hole, s);
                self.set_position(pos, EMPTY);
                hole = pos;
            }
        }
    }
}

/// The inline hits of a new slot: `first` (if any) first.
fn inline_with(first: Option<u64>) -> [u64; INLINE_HITS] {
    let mut hits = [0; INLINE_HITS];
    if let Some(hit) = first {
        hits[0] = hit;
    }
    hits
}

fn hit_key(protocol: Protocol, port: u16) -> u64 {
    let proto = match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1 << 16,
    };
    proto | u64::from(port)
}

fn millis(at: Timestamp) -> u64 {
    (at.as_micros() / 1000).min(MAX_HIT_MILLIS)
}

#[cfg(test)]
mod tests;
