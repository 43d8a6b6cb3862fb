//! The first-probe tier of the [`Tracker`](super::Tracker): what a source's single probe so
//! far costs, in 8 bytes.
//!
//! A source that has probed one (protocol, port) pair is remembered here as one `u64`: a
//! fingerprint of its address hash, the time of the probe and the pair. Only its second
//! distinct pair moves it into a full slot of the tracker. A flood of spoofed one-packet
//! sources therefore fills this tier, never the full slots.
//!
//! # Generations
//!
//! Two tables of equal size: new entries go to the current one; when it has taken
//! `per_generation` insertions, the other (previous) table is emptied and becomes current.
//! An entry therefore survives at least `per_generation` newer insertions (its own table
//! fills, then lives one more generation as the previous table), and at most
//! `2 × per_generation − 1`. (Refreshes count as insertions; removals do not give room back.) Lookups check the current table, then the previous one.
//!
//! A generation also ends when its table has been current for `2^TIME_BITS` time units (512
//! windows): the previous table then holds only probes older than that, which no longer count.
//!
//! # Tables
//!
//! Each table is an array of buckets of [`BUCKET`] entries (one cache line), sized so that a
//! full generation fills at most 3/4 of it. A lookup starts at the bucket chosen by the high
//! 32 bits of the address hash and goes on to the next bucket only while the one it looked at
//! has no empty entry, at most [`MAX_BUCKETS_PROBED`] buckets. Removal leaves a tombstone that
//! later insertions reuse; emptying a table at the end of a generation clears them.
//!
//! # Entries and false merges
//!
//! An entry is `fingerprint (FP_BITS) | time (TIME_BITS) | pair (17 bits)`. The fingerprint is
//! 27 bits of the address hash (its top bit is always set, so that no entry is 0, the empty
//! value); the bucket comes from other hash bits. Two different sources are merged only when
//! they share the bucket neighbourhood AND the 27 fingerprint bits: for a new source, at most
//! `2 × MAX_BUCKETS_PROBED × BUCKET` entries are compared, in practice about 20 at 3/4 load,
//! so the chance that it is taken for another source is about 20 / 2^27 ≈ 1.5 × 10^-7 (one
//! new source in about 6.7 million). A merged source inherits that other source's first pair.
//!
//! Times are kept in units of `window / 1024` (at least 1 ms), so a first probe counts for
//! between `window − window/1024` and `window`.

/// Entries per bucket: 8 × 8 bytes, one cache line.
pub(super) const BUCKET: usize = 8;
/// The longest bucket sequence of one lookup.
pub(super) const MAX_BUCKETS_PROBED: usize = 32;
/// Bits of the (protocol, port) pair.
const KEY_BITS: u32 = 17;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;
/// Bits of the time, in units of `window / 1024`.
const TIME_BITS: u32 = 19;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
/// Bits of the fingerprint (the highest always set).
const FP_BITS: u32 = 64 - KEY_BITS - TIME_BITS;
const FP_SHIFT: u32 = KEY_BITS + TIME_BITS;
const EMPTY: u64 = 0;
/// A removed entry: fingerprint 0 (real entries have the top fingerprint bit set).
const TOMBSTONE: u64 = 1;

/// What the tier knows about a source's first probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FirstProbe {
    /// No first probe is remembered.
    Absent,
    /// A first probe older than the window is remembered at this place: it no longer counts,
    /// and the next insertion for the source replaces it.
    Expired(Place),
    /// A first probe to `key` at `at_ms` (rounded down to the time unit).
    Seen {
        /// The packed (protocol, port) pair.
        key: u64,
        /// Its time in milliseconds.
        at_ms: u64,
        /// Where the entry sits, to remove or refresh it.
        place: Place,
    },
}

/// The position of an entry: table and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    table: usize,
    index: usize,
}

/// Counters of the tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FirstProbeCounts {
    /// Entries held now (both tables, tombstones excluded).
    pub live: usize,
    /// Generations ended.
    pub generations: u64,
    /// First probes not remembered because a bucket neighbourhood was full.
    pub overflows: u64,
}

/// Entries of one table, addressed by entry index, in buckets that each fill one 64-byte
/// cache line: the vector holds `BUCKET − 1` spare entries, and the table starts at the first
/// 64-byte boundary inside it. (A zeroed `Vec<u64>` is allocated untouched, so a table costs
/// memory only where entries are written.)
#[derive(Debug)]
struct Table {
    entries: Vec<u64>,
    /// Entries before the first 64-byte boundary.
    offset: usize,
    buckets: usize,
}

impl Table {
    fn new(buckets: usize) -> Self {
        let spare = if buckets == 0 { 0 } else { BUCKET - 1 };
        let entries = vec![EMPTY; buckets * BUCKET + spare];
        let misalignment = entries.as_ptr() as usize % 64;
        let offset = (64 - misalignment) % 64 / size_of::<u64>();
        Self {
            entries,
            offset,
            buckets,
        }
    }

    fn bucket(&self, bucket: usize) -> &[u64] {
        let start = self.offset + bucket * BUCKET;
        &self.entries[start..start + BUCKET]
    }

    fn clear(&mut self) {
        self.entries.fill(EMPTY);
    }

    fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<u64>()
    }
}

impl Clone for Table {
    fn clone(&self) -> Self {
        // A new vector has its own alignment: copy the table, not the vector.
        let mut copy = Self::new(self.buckets);
        let len = self.buckets * BUCKET;
        copy.entries[copy.offset..copy.offset + len]
            .copy_from_slice(&self.entries[self.offset..self.offset + len]);
        copy
    }
}

impl std::ops::Index<usize> for Table {
    type Output = u64;
    fn index(&self, index: usize) -> &u64 {
        &self.entries[self.offset + index]
    }
}

impl std::ops::IndexMut<usize> for Table {
    fn index_mut(&mut self, index: usize) -> &mut u64 {
        &mut self.entries[self.offset + index]
    }
}

/// Two generations of compact first-probe entries; see the module docs.
#[derive(Debug, Clone)]
pub(super) struct FirstProbes {
    tables: [Table; 2],
    /// Insertions into each table since it was last emptied.
    inserted: [usize; 2],
    /// Live entries of each table.
    live: [usize; 2],
    /// The time (ms) each table became current.
    base_ms: [u64; 2],
    current: usize,
    per_generation: usize,
    buckets: usize,
    unit_ms: u64,
    window_ms: u64,
    generations: u64,
    overflows: u64,
}

impl FirstProbes {
    /// A tier remembering a first probe through at least `per_generation` newer ones, for a window of
    /// `window_ms`. `per_generation` 0 makes an empty tier that remembers nothing.
    pub(super) fn new(per_generation: usize, window_ms: u64) -> Self {
        let buckets = if per_generation == 0 {
            0
        } else {
            (per_generation * 4 / 3)
                .div_ceil(BUCKET)
                .max(MAX_BUCKETS_PROBED)
        };
        Self {
            tables: [Table::new(buckets), Table::new(buckets)],
            inserted: [0; 2],
            live: [0; 2],
            base_ms: [0; 2],
            current: 0,
            per_generation,
            buckets,
            unit_ms: window_ms.div_ceil(1024).max(1),
            window_ms,
            generations: 0,
            overflows: 0,
        }
    }

    /// Insertions per generation (0: the tier is off).
    pub(super) fn per_generation(&self) -> usize {
        self.per_generation
    }

    /// Heap bytes held (fixed).
    pub(super) fn memory_bytes(&self) -> usize {
        self.tables.iter().map(Table::memory_bytes).sum()
    }

    /// Counters.
    pub(super) fn counts(&self) -> FirstProbeCounts {
        FirstProbeCounts {
            live: self.live[0] + self.live[1],
            generations: self.generations,
            overflows: self.overflows,
        }
    }

    /// The first probe of the source with address hash `hash`, if one inside the window at
    /// `now_ms` is remembered.
    pub(super) fn find(&self, hash: u64, now_ms: u64) -> FirstProbe {
        if self.buckets == 0 {
            return FirstProbe::Absent;
        }
        let fp = fingerprint(hash);
        for table in [self.current, 1 - self.current] {
            if self.live[table] == 0 && self.inserted[table] == 0 {
                // Empty since it was last emptied (the first generation's other table).
                continue;
            }
            if let Some(index) = self.position(table, hash, fp) {
                let entry = self.tables[table][index];
                let at_ms = self.base_ms[table] + ((entry >> KEY_BITS) & TIME_MASK) * self.unit_ms;
                if now_ms.saturating_sub(at_ms) >= self.window_ms {
                    return FirstProbe::Expired(Place { table, index });
                }
                return FirstProbe::Seen {
                    key: entry & KEY_MASK,
                    at_ms,
                    place: Place { table, index },
                };
            }
        }
        FirstProbe::Absent
    }

    /// Reads the first entry of the home bucket of `hash` in each table that holds entries
    /// (to bring them into the cache ahead of [`FirstProbes::find`]); returns them XORed.
    pub(super) fn touch(&self, hash: u64) -> u64 {
        if self.buckets == 0 {
            return 0;
        }
        let start = self.home_bucket(hash) * BUCKET;
        let mut seen = self.tables[self.current][start];
        let previous = 1 - self.current;
        if self.inserted[previous] != 0 {
            seen ^= self.tables[previous][start];
        }
        seen
    }

    /// Removes the entry at `place` (found by [`FirstProbes::find`] just before).
    pub(super) fn remove(&mut self, place: Place) {
        let entry = &mut self.tables[place.table][place.index];
        if *entry > TOMBSTONE {
            *entry = TOMBSTONE;
            self.live[place.table] -= 1;
        }
    }

    /// Removes the entry of the source with address hash `hash`, if any; true if one was held.
    pub(super) fn forget(&mut self, hash: u64) -> bool {
        if self.buckets == 0 {
            return false;
        }
        let fp = fingerprint(hash);
        let mut found = false;
        for table in 0..2 {
            if let Some(index) = self.position(table, hash, fp) {
                self.remove(Place { table, index });
                found = true;
            }
        }
        found
    }

    /// Remembers (or refreshes) the first probe `key` at `now_ms` of the source with address
    /// hash `hash`. Any entry the source already has must have been removed, or be at
    /// `replace` (its entry in the current table, overwritten in place).
    pub(super) fn insert(&mut self, hash: u64, key: u64, now_ms: u64, replace: Option<Place>) {
        if self.buckets == 0 {
            return;
        }
        if let Some(place) = replace {
            if place.table == self.current && self.fresh_enough(now_ms) {
                let table = self.current;
                self.tables[table][place.index] = self.entry(hash, key, now_ms, table);
                return;
            }
            self.remove(place);
        }
        if self.inserted[self.current] >= self.per_generation || !self.fresh_enough(now_ms) {
            self.next_generation(now_ms);
        }
        let table = self.current;
        let Some(index) = self.free_position(table, hash) else {
            self.overflows += 1;
            return;
        };
        self.tables[table][index] = self.entry(hash, key, now_ms, table);
        self.inserted[table] += 1;
        self.live[table] += 1;
    }

    /// True while times since the current table's base still fit in the time field.
    fn fresh_enough(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.base_ms[self.current]) / self.unit_ms <= TIME_MASK
    }

    fn next_generation(&mut self, now_ms: u64) {
        let old = 1 - self.current;
        self.tables[old].clear();
        self.inserted[old] = 0;
        self.live[old] = 0;
        self.base_ms[old] = now_ms;
        self.current = old;
        self.generations += 1;
    }

    fn entry(&self, hash: u64, key: u64, now_ms: u64, table: usize) -> u64 {
        let units = now_ms.saturating_sub(self.base_ms[table]) / self.unit_ms;
        (fingerprint(hash) << FP_SHIFT) | (units.min(TIME_MASK) << KEY_BITS) | key
    }

    fn home_bucket(&self, hash: u64) -> usize {
        // Multiply-shift: the high 32 bits of the hash scaled to the bucket count.
        (((hash >> 32) * self.buckets as u64) >> 32) as usize
    }

    /// The index of the entry with fingerprint `fp` in `table`, if any.
    fn position(&self, table: usize, hash: u64, fp: u64) -> Option<usize> {
        let entries = &self.tables[table];
        let mut bucket = self.home_bucket(hash);
        for _ in 0..MAX_BUCKETS_PROBED {
            let start = bucket * BUCKET;
            let mut saw_empty = false;
            for (i, &entry) in entries.bucket(bucket).iter().enumerate() {
                if entry >> FP_SHIFT == fp {
                    return Some(start + i);
                }
                saw_empty |= entry == EMPTY;
            }
            if saw_empty {
                return None;
            }
            bucket = (bucket + 1) % self.buckets;
        }
        None
    }

    /// The first empty or removed entry of the source's bucket sequence in `table`.
    fn free_position(&self, table: usize, hash: u64) -> Option<usize> {
        let entries = &self.tables[table];
        let mut bucket = self.home_bucket(hash);
        for _ in 0..MAX_BUCKETS_PROBED {
            let start = bucket * BUCKET;
            if let Some(i) = entries.bucket(bucket).iter().position(|&e| e <= TOMBSTONE) {
                return Some(start + i);
            }
            bucket = (bucket + 1) % self.buckets;
        }
        None
    }
}

/// The fingerprint of an address hash: its low `FP_BITS − 1` bits with the top bit set.
fn fingerprint(hash: u64) -> u64 {
    (hash & ((1 << (FP_BITS - 1)) - 1)) | (1 << (FP_BITS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> u64 {
        // A cheap bijective mix, enough to spread test keys.
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
    }

    #[test]
    fn an_entry_survives_a_generation_of_newer_ones_and_no_more_than_two() {
        let per = 1000;
        let mut t = FirstProbes::new(per, 60_000);
        t.insert(hash(0), 22, 0, None);
        for i in 1..per as u64 {
            t.insert(hash(i), 80, 1, None);
        }
        assert!(matches!(
            t.find(hash(0), 2),
            FirstProbe::Seen { key: 22, .. }
        ));
        for i in per as u64..2 * per as u64 {
            t.insert(hash(i), 80, 1, None);
            assert!(matches!(t.find(hash(0), 2), FirstProbe::Seen { .. }), "{i}");
        }
        // 2 × per − 1 newer so far: the next one ends its generation.
        t.insert(hash(99_999), 80, 1, None);
        assert_eq!(t.find(hash(0), 2), FirstProbe::Absent);
        assert_eq!(t.counts().overflows, 0);
        assert_eq!(t.counts().generations, 2);
    }

    #[test]
    fn old_first_probes_do_not_count_and_removal_leaves_reusable_space() {
        let mut t = FirstProbes::new(64, 10_000);
        t.insert(hash(1), 5, 1_000, None);
        assert!(matches!(
            t.find(hash(1), 10_999),
            FirstProbe::Seen { at_ms: 1_000, .. }
        ));
        assert!(matches!(t.find(hash(1), 11_000), FirstProbe::Expired(_)));
        let FirstProbe::Seen { place, .. } = t.find(hash(1), 2_000) else {
            panic!("seen")
        };
        t.remove(place);
        assert_eq!(t.find(hash(1), 2_000), FirstProbe::Absent);
        assert_eq!(t.counts().live, 0);
        assert!(!t.forget(hash(1)));
        t.insert(hash(1), 6, 2_000, None);
        assert!(t.forget(hash(1)));
    }

    #[test]
    fn a_long_quiet_spell_ends_the_generation_before_times_overflow() {
        let mut t = FirstProbes::new(64, 1_000); // unit 1 ms, 2^19 ms per generation at most
        t.insert(hash(1), 5, 0, None);
        let later = (TIME_MASK + 1) * 2;
        t.insert(hash(2), 7, later, None);
        assert_eq!(t.counts().generations, 1);
        assert!(matches!(
            t.find(hash(2), later + 999),
            FirstProbe::Seen { key: 7, .. }
        ));
    }

    #[test]
    fn every_bucket_is_one_cache_line_in_copies_too() {
        let mut t = FirstProbes::new(1000, 60_000);
        t.insert(hash(3), 22, 5, None);
        let copy = t.clone();
        for tier in [&t, &copy] {
            for table in &tier.tables {
                for bucket in [0, 1, tier.buckets - 1] {
                    assert_eq!(table.bucket(bucket).as_ptr() as usize % 64, 0);
                }
            }
        }
        assert!(matches!(
            copy.find(hash(3), 6),
            FirstProbe::Seen { key: 22, .. }
        ));
    }

    #[test]
    fn the_off_tier_holds_nothing() {
        let mut t = FirstProbes::new(0, 1_000);
        t.insert(hash(1), 5, 0, None);
        assert_eq!(t.find(hash(1), 0), FirstProbe::Absent);
        assert_eq!(t.memory_bytes(), 0);
    }
}
