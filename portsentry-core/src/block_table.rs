//! The block table: which sources are blocked, being blocked or being released, until when,
//! and its journal, the text of `BLOCKED_FILE`.
//!
//! Sans-IO like the rest of the detector: the caller reports what the responders did
//! ([`BlockTable::record_block`], [`BlockTable::record_failed`],
//! [`BlockTable::confirm_released`]) and says what time it is ([`BlockTable::expire`]).
//!
//! # A journal, not a snapshot
//!
//! Every block goes through three states, and the file says which one each address is in:
//!
//! * **pending**: the alert asked for a block and its actions are about to run (or running).
//!   The caller writes the journal *before* handing the alert to the responders, so a crash
//!   while they run leaves a `pending` line: the next start completes that block (its actions
//!   are applied again) instead of forgetting a firewall entry that may exist.
//! * **blocked**: the responders reported success.
//! * **releasing**: the block ended (expiry, unblock, protection) and the release actions are
//!   about to run; the line goes away when they reported. A crash before that leaves a
//!   `releasing` line and the next start runs the release actions again.
//!
//! A source is *active* (probes get [`Event::AlreadyBlocked`](crate::Event)) while pending
//! or blocked, so a flood of probes while a block command runs does not start it again.
//!
//! # Text format (`BLOCKED_FILE`)
//!
//! UTF-8, one entry per line, fields separated by one or more spaces or tabs:
//!
//! ```text
//! # portsentry block table v2: address blocked_at expires_at mode port [state]
//! 203.0.113.7 1700000000 1700003600 stcp 22
//! 2001:db8::9 1700000100 never atcp 1
//! 198.51.100.4 1700000200 1700003800 sudp 513 pending
//! 198.51.100.5 1700000000 1700000060 stcp 79 releasing
//! ```
//!
//! * `address`: the numeric IPv4 or IPv6 address (IPv4-mapped IPv6 is stored as IPv4);
//! * `blocked_at`, `expires_at`: whole seconds since the Unix epoch (wall clock); `expires_at`
//!   is `never` when `BLOCK_TIMEOUT` was 0;
//! * `mode`: `tcp`, `udp`, `stcp`, `sudp`, `atcp` or `audp`, the mode whose alert blocked it;
//! * `port`: the port of that alert;
//! * `state`: absent for a block in force (so version 1 files, which had no such field, read
//!   unchanged), `pending` or `releasing`.
//!
//! An address appears at most once as pending or blocked, and at most once as releasing (a
//! source blocked again while its old release still runs has both). Blank lines and lines
//! whose first non-blank character is `#` are ignored. [`format_journal`] writes the header
//! and the entries sorted by address; [`parse_journal`] is the one reader (fuzzed: see
//! [`crate::fuzzing::blocked_file_invariants`]) and reports the first bad line with its
//! number. The caller does the atomic write.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::event::{Alert, Release};
use crate::mode::Mode;
use crate::probe::Timestamp;

/// The header line [`format_journal`] writes.
pub const BLOCK_FILE_HEADER: &str =
    "# portsentry block table v2: address blocked_at expires_at mode port [state]";

/// One block: what was blocked, when, until when, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// The blocked address.
    pub address: IpAddr,
    /// When the block took effect (for a pending block: when it was asked for).
    pub blocked_at: Timestamp,
    /// When it ends; `None` for never (`BLOCK_TIMEOUT` 0).
    pub expires_at: Option<Timestamp>,
    /// The mode whose alert caused it.
    pub mode: Mode,
    /// The port of that alert.
    pub port: u16,
}

impl BlockRecord {
    /// The block made for `alert` at `at`, lasting `timeout` (`None`: forever).
    pub fn from_alert(alert: &Alert, at: Timestamp, timeout: Option<Duration>) -> Self {
        Self {
            address: alert.probe.source.to_canonical(),
            blocked_at: at,
            expires_at: timeout.map(|d| at.saturating_add(d)),
            mode: alert.mode,
            port: alert.probe.destination_port,
        }
    }

    /// The same record with both times passed through `convert` (for example from the
    /// daemon's monotonic timeline to the wall clock, and back).
    #[must_use]
    pub fn map_times(self, mut convert: impl FnMut(Timestamp) -> Timestamp) -> Self {
        Self {
            blocked_at: convert(self.blocked_at),
            expires_at: self.expires_at.map(&mut convert),
            ..self
        }
    }

    /// The time left at `now`: `None` for a block that never ends, zero once it is over.
    pub fn remaining(&self, now: Timestamp) -> Option<Duration> {
        self.expires_at
            .map(|end| end.saturating_duration_since(now))
    }

    /// The release that ends this block at `now`.
    pub fn release_at(&self, now: Timestamp) -> Release {
        Release {
            address: self.address,
            blocked_at: self.blocked_at,
            released_at: now,
            mode: self.mode,
            port: self.port,
        }
    }
}

impl fmt::Display for BlockRecord {
    /// The record as one line of the text format (state field absent), without the line
    /// break.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ",
            self.address.to_canonical(),
            self.blocked_at.as_secs()
        )?;
        match self.expires_at {
            Some(t) => write!(f, "{}", t.as_secs())?,
            None => f.write_str("never")?,
        }
        write!(f, " {} {}", self.mode, self.port)
    }
}

/// Where a block is in its life (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockState {
    /// Asked for; the blocking actions have not reported yet.
    Pending,
    /// In force: the blocking actions reported success.
    Blocked,
    /// Ended; the release actions have not reported yet.
    Releasing,
}

impl BlockState {
    /// The `state` field of the text format: empty for [`BlockState::Blocked`], `pending`,
    /// `releasing`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Blocked => "",
            Self::Releasing => "releasing",
        }
    }
}

/// One line of the journal: a record and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry {
    /// The block.
    pub record: BlockRecord,
    /// Its state.
    pub state: BlockState,
}

impl fmt::Display for JournalEntry {
    /// The entry as one line of the text format, without the line break.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.record)?;
        match self.state {
            BlockState::Blocked => Ok(()),
            other => write!(f, " {}", other.as_str()),
        }
    }
}

/// What is wrong with one line of a block file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockLineError {
    /// The line has fewer than five fields.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// The line has more than six fields.
    #[error("unexpected extra field `{0}`")]
    ExtraField(String),
    /// The address is not a numeric IPv4 or IPv6 address.
    #[error("`{0}` is not an IP address")]
    BadAddress(String),
    /// A time is not a whole number of seconds (or `never` for `expires_at`).
    #[error("`{value}` is not a valid {field} (whole seconds since the epoch)")]
    BadTime {
        /// `blocked_at` or `expires_at`.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// The mode is not one of the six mode names.
    #[error("`{0}` is not a mode (tcp, udp, stcp, sudp, atcp, audp)")]
    BadMode(String),
    /// The port is not a number from 0 to 65535.
    #[error("`{0}` is not a port number")]
    BadPort(String),
    /// The sixth field is neither `pending` nor `releasing`.
    #[error("`{0}` is not a state (pending or releasing)")]
    BadState(String),
    /// The address already appeared on an earlier line in a state that excludes this one.
    #[error("address {address} already listed on line {first_line}")]
    Duplicate {
        /// The repeated address.
        address: IpAddr,
        /// The line where it first appeared.
        first_line: usize,
    },
}

/// A bad line of a block file, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct BlockFileError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub error: BlockLineError,
}

/// The text form of `entries`: the header line, then one line per entry, sorted by address
/// then state (IPv4-mapped IPv6 addresses are written as IPv4).
///
/// # Examples
///
/// ```
/// use portsentry_core::block_table::{format_journal, parse_journal, BlockState, JournalEntry};
/// use portsentry_core::{BlockRecord, Mode, Timestamp};
/// let record = BlockRecord {
///     address: "203.0.113.7".parse().unwrap(),
///     blocked_at: Timestamp::from_secs(1_700_000_000),
///     expires_at: None,
///     mode: Mode::StealthTcp,
///     port: 22,
/// };
/// let entry = JournalEntry { record, state: BlockState::Pending };
/// let text = format_journal([&entry]);
/// assert!(text.ends_with("203.0.113.7 1700000000 never stcp 22 pending\n"));
/// assert_eq!(parse_journal(&text).unwrap(), vec![entry]);
/// ```
pub fn format_journal<'a>(entries: impl IntoIterator<Item = &'a JournalEntry>) -> String {
    let mut sorted: Vec<&JournalEntry> = entries.into_iter().collect();
    sorted.sort_by_key(|e| (e.record.address.to_canonical(), e.state));
    let mut out = String::with_capacity(BLOCK_FILE_HEADER.len() + 1 + sorted.len() * 56);
    out.push_str(BLOCK_FILE_HEADER);
    out.push('\n');
    for e in sorted {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

/// The text form of blocks in force (every record written without a state): the header,
/// then one line per record, sorted by address.
///
/// # Examples
///
/// ```
/// use portsentry_core::{parse_records, format_records, BlockRecord, Mode, Timestamp};
/// let r = BlockRecord {
///     address: "203.0.113.7".parse().unwrap(),
///     blocked_at: Timestamp::from_secs(1_700_000_000),
///     expires_at: None,
///     mode: Mode::StealthTcp,
///     port: 22,
/// };
/// let text = format_records([&r]);
/// assert!(text.ends_with("203.0.113.7 1700000000 never stcp 22\n"));
/// assert_eq!(parse_records(&text).unwrap(), vec![r]);
/// ```
pub fn format_records<'a>(records: impl IntoIterator<Item = &'a BlockRecord>) -> String {
    let entries: Vec<JournalEntry> = records
        .into_iter()
        .map(|&record| JournalEntry {
            record,
            state: BlockState::Blocked,
        })
        .collect();
    format_journal(&entries)
}

/// Parses the text form (see the module docs): the one reader of `BLOCKED_FILE`.
///
/// # Errors
///
/// [`BlockFileError`] naming the first bad line: a missing or extra field, a bad address,
/// time, mode, port or state, or an address listed twice in the same role.
pub fn parse_journal(text: &str) -> Result<Vec<JournalEntry>, BlockFileError> {
    // First line of each address as (pending or blocked), and as releasing.
    let mut seen: BTreeMap<(IpAddr, bool), usize> = BTreeMap::new();
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_line(trimmed).map_err(|error| BlockFileError {
            line: line_no,
            error,
        })?;
        let key = (entry.record.address, entry.state == BlockState::Releasing);
        if let Some(&first_line) = seen.get(&key) {
            return Err(BlockFileError {
                line: line_no,
                error: BlockLineError::Duplicate {
                    address: entry.record.address,
                    first_line,
                },
            });
        }
        seen.insert(key, line_no);
        entries.push(entry);
    }
    Ok(entries)
}

/// The blocks of a block file that are in force or pending (the records a restart restores
/// as blocks), through [`parse_journal`].
///
/// # Errors
///
/// As [`parse_journal`].
pub fn parse_records(text: &str) -> Result<Vec<BlockRecord>, BlockFileError> {
    Ok(parse_journal(text)?
        .into_iter()
        .filter(|e| e.state != BlockState::Releasing)
        .map(|e| e.record)
        .collect())
}

fn parse_line(line: &str) -> Result<JournalEntry, BlockLineError> {
    let mut fields = line.split_whitespace();
    let mut next = |name| fields.next().ok_or(BlockLineError::MissingField(name));
    let address = next("address")?;
    let blocked_at = next("blocked_at")?;
    let expires_at = next("expires_at")?;
    let mode = next("mode")?;
    let port = next("port")?;
    let state = match fields.next() {
        None => BlockState::Blocked,
        Some("pending") => BlockState::Pending,
        Some("releasing") => BlockState::Releasing,
        Some(other) => return Err(BlockLineError::BadState(other.to_owned())),
    };
    if let Some(extra) = fields.next() {
        return Err(BlockLineError::ExtraField(extra.to_owned()));
    }
    let address: IpAddr = address
        .parse()
        .map_err(|_| BlockLineError::BadAddress(address.to_owned()))?;
    let secs = |field, value: &str| {
        value
            .parse::<u64>()
            .ok()
            .filter(|&s| s <= MAX_SECS)
            .map(Timestamp::from_secs)
            .ok_or_else(|| BlockLineError::BadTime {
                field,
                value: value.to_owned(),
            })
    };
    let blocked_at = secs("blocked_at", blocked_at)?;
    let expires_at = match expires_at {
        "never" => None,
        value => Some(secs("expires_at", value)?),
    };
    let record = BlockRecord {
        address: address.to_canonical(),
        blocked_at,
        expires_at,
        mode: mode
            .parse()
            .map_err(|_| BlockLineError::BadMode(mode.to_owned()))?,
        port: port
            .parse()
            .map_err(|_| BlockLineError::BadPort(port.to_owned()))?,
    };
    Ok(JournalEntry { record, state })
}

/// The largest time a block file may hold, in seconds (year 292277; beyond it the
/// microsecond timestamps would overflow).
const MAX_SECS: u64 = u64::MAX / 1_000_000;

/// How long a source may stay pending before the table gives up waiting for the responders'
/// report (5 minutes): the block is then undone (released), since its actions may have run.
pub const DEFAULT_PENDING_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// An alert was raised and the block actions are running; the record is the block they
    /// make, `blocked_at` being when it was asked for.
    Pending(BlockRecord),
    /// The responders reported success.
    Blocked(BlockRecord),
}

impl Entry {
    fn record(&self) -> &BlockRecord {
        match self {
            Self::Pending(r) | Self::Blocked(r) => r,
        }
    }
}

/// Counters of a [`BlockTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BlockStats {
    /// Sources pending now.
    pub pending: usize,
    /// Sources blocked now.
    pub blocked: usize,
    /// Releases whose actions have not reported yet.
    pub releasing: usize,
    /// Blocks recorded (reported successful or restored).
    pub recorded: u64,
    /// Block attempts reported failed.
    pub failed: u64,
    /// Blocks released (a release put back with [`BlockTable::requeue`] counts again when it
    /// is released again).
    pub released: u64,
    /// Pending entries undone because no report came within the pending timeout.
    pub abandoned: u64,
    /// Alerts that could not be marked pending because `max_pending` sources already were.
    pub pending_overflow: u64,
}

/// Blocked, pending and releasing sources, with expiry; its [`BlockTable::journal`] is the
/// content of `BLOCKED_FILE`.
///
/// Memory: pending entries are capped (`max_pending`); blocked entries exist only for blocks
/// the responders reported successful (the detector's `MAX_BLOCKS` caps pending and blocked
/// together), and releasing entries only until their release reported.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use portsentry_core::{BlockRecord, BlockTable, Mode, Timestamp};
///
/// let mut table = BlockTable::new(100, Duration::from_secs(60));
/// let record = BlockRecord {
///     address: "203.0.113.7".parse().unwrap(),
///     blocked_at: Timestamp::from_secs(10),
///     expires_at: Some(Timestamp::from_secs(70)),
///     mode: Mode::StealthTcp,
///     port: 22,
/// };
/// assert!(table.mark_pending(record));
/// assert!(table.is_active(record.address));
/// assert!(table.journal_text().contains("203.0.113.7 10 70 stcp 22 pending"));
/// table.record_block(BlockRecord { blocked_at: Timestamp::from_secs(11), ..record });
/// let mut released = Vec::new();
/// table.expire(Timestamp::from_secs(69), &mut released);
/// assert!(released.is_empty());
/// table.expire(Timestamp::from_secs(70), &mut released);
/// assert_eq!(released[0].address, record.address);
/// assert!(!table.is_active(record.address));
/// assert!(table.journal_text().contains("203.0.113.7 11 70 stcp 22 releasing"));
/// table.confirm_released(record.address);
/// assert!(!table.journal_text().contains("203.0.113.7"));
/// ```
#[derive(Debug, Clone)]
pub struct BlockTable {
    entries: BTreeMap<IpAddr, Entry>,
    releasing: BTreeMap<IpAddr, BlockRecord>,
    max_pending: usize,
    pending_timeout: Duration,
    /// The earliest time at which [`BlockTable::expire`] has something to do; `None` when
    /// nothing can expire.
    next_due: Option<Timestamp>,
    stats: BlockStats,
}

impl BlockTable {
    /// An empty table holding at most `max_pending` pending sources, each for at most
    /// `pending_timeout`.
    pub fn new(max_pending: usize, pending_timeout: Duration) -> Self {
        Self {
            entries: BTreeMap::new(),
            releasing: BTreeMap::new(),
            max_pending,
            pending_timeout,
            next_due: None,
            stats: BlockStats::default(),
        }
    }

    /// True when `addr` is blocked or pending.
    #[inline]
    pub fn is_active(&self, addr: IpAddr) -> bool {
        !self.entries.is_empty() && self.entries.contains_key(&addr.to_canonical())
    }

    /// How many sources are blocked or pending.
    pub fn active_count(&self) -> usize {
        self.entries.len()
    }

    /// The block of `addr`, if it is blocked (not merely pending).
    pub fn get(&self, addr: IpAddr) -> Option<&BlockRecord> {
        match self.entries.get(&addr.to_canonical()) {
            Some(Entry::Blocked(r)) => Some(r),
            _ => None,
        }
    }

    /// True when `addr` is pending.
    pub fn is_pending(&self, addr: IpAddr) -> bool {
        matches!(
            self.entries.get(&addr.to_canonical()),
            Some(Entry::Pending(_))
        )
    }

    /// Marks `record.address` pending from `record.blocked_at` (its block actions are about
    /// to run; `record` is the block they make). Returns false, and counts an overflow, when
    /// `max_pending` sources are already pending; does nothing and returns true when the
    /// address is already pending or blocked.
    pub fn mark_pending(&mut self, record: BlockRecord) -> bool {
        let addr = record.address.to_canonical();
        if self.entries.contains_key(&addr) {
            return true;
        }
        if self.stats.pending >= self.max_pending {
            self.stats.pending_overflow += 1;
            return false;
        }
        let record = BlockRecord {
            address: addr,
            ..record
        };
        self.entries.insert(addr, Entry::Pending(record));
        self.stats.pending += 1;
        self.lower_next_due(record.blocked_at.saturating_add(self.pending_timeout));
        true
    }

    /// Records a block the responders made (replacing a pending entry or an older block of the
    /// same address).
    pub fn record_block(&mut self, record: BlockRecord) {
        let record = BlockRecord {
            address: record.address.to_canonical(),
            ..record
        };
        match self.entries.insert(record.address, Entry::Blocked(record)) {
            Some(Entry::Pending(_)) => self.stats.pending -= 1,
            Some(Entry::Blocked(_)) => self.stats.blocked -= 1,
            None => {}
        }
        self.stats.blocked += 1;
        self.stats.recorded += 1;
        if let Some(t) = record.expires_at {
            self.lower_next_due(t);
        }
    }

    /// Records that the block actions for `addr` failed: the pending entry is dropped and
    /// nothing is recorded as blocked. Returns true if `addr` was pending.
    pub fn record_failed(&mut self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.stats.failed += 1;
        if let Some(Entry::Pending(_)) = self.entries.get(&addr) {
            self.entries.remove(&addr);
            self.stats.pending -= 1;
            true
        } else {
            false
        }
    }

    /// Ends the block of `addr` now (a manual unblock, or an address that became
    /// protected), returning its release; `None` if it is neither blocked nor pending. The
    /// entry stays in the journal as releasing until [`BlockTable::confirm_released`].
    pub fn release(&mut self, addr: IpAddr, now: Timestamp) -> Option<Release> {
        let addr = addr.to_canonical();
        let entry = self.entries.remove(&addr)?;
        match entry {
            Entry::Pending(_) => self.stats.pending -= 1,
            Entry::Blocked(_) => self.stats.blocked -= 1,
        }
        self.stats.released += 1;
        Some(self.start_release(*entry.record(), now))
    }

    fn start_release(&mut self, record: BlockRecord, now: Timestamp) -> Release {
        if self.releasing.insert(record.address, record).is_none() {
            self.stats.releasing += 1;
        }
        record.release_at(now)
    }

    /// Records that the release actions for `addr` reported (successfully or not: a failed
    /// release is reported to the administrator, and not retried). Returns true if a release
    /// of `addr` was outstanding.
    pub fn confirm_released(&mut self, addr: IpAddr) -> bool {
        let found = self.releasing.remove(&addr.to_canonical()).is_some();
        if found {
            self.stats.releasing -= 1;
        }
        found
    }

    /// Puts a release back in the journal as outstanding (read from `BLOCKED_FILE` at start:
    /// its release actions must run again) and returns it, released at `now`.
    pub fn resume_release(&mut self, record: BlockRecord, now: Timestamp) -> Release {
        let record = BlockRecord {
            address: record.address.to_canonical(),
            ..record
        };
        self.start_release(record, now)
    }

    /// Puts back the block that `release` ended, due for release again at `retry_at`: for a
    /// release that could not be handed to the responders (a full queue), so that the
    /// firewall entries it must undo are not forgotten. When `release.address` is blocked or
    /// pending again, only the outstanding release is dropped (that entry's own release undoes
    /// the same address).
    pub fn requeue(&mut self, release: &Release, retry_at: Timestamp) {
        let address = release.address.to_canonical();
        self.confirm_released(address);
        if self.entries.contains_key(&address) {
            return;
        }
        let record = BlockRecord {
            address,
            blocked_at: release.blocked_at,
            expires_at: Some(retry_at),
            mode: release.mode,
            port: release.port,
        };
        self.entries.insert(address, Entry::Blocked(record));
        self.stats.blocked += 1;
        self.lower_next_due(retry_at);
    }

    /// Releases every block whose `expires_at` is at or before `now`, and undoes pending
    /// entries older than the pending timeout (their actions may have run), appending a
    /// [`Release`] to `out` for each, in address order. Costs one comparison when nothing is
    /// due.
    pub fn expire(&mut self, now: Timestamp, out: &mut Vec<Release>) {
        match self.next_due {
            Some(due) if due <= now => {}
            _ => return,
        }
        let mut next_due: Option<Timestamp> = None;
        let pending_timeout = self.pending_timeout;
        let mut ended = Vec::new();
        self.entries.retain(|_, entry| {
            let deadline = match entry {
                Entry::Pending(r) => r.blocked_at.saturating_add(pending_timeout),
                Entry::Blocked(r) => match r.expires_at {
                    Some(t) => t,
                    None => return true,
                },
            };
            if deadline > now {
                next_due = Some(next_due.map_or(deadline, |d| d.min(deadline)));
                return true;
            }
            ended.push(*entry);
            false
        });
        self.next_due = next_due;
        for entry in ended {
            match entry {
                Entry::Pending(_) => {
                    self.stats.pending -= 1;
                    self.stats.abandoned += 1;
                }
                Entry::Blocked(_) => {
                    self.stats.blocked -= 1;
                    self.stats.released += 1;
                }
            }
            out.push(self.start_release(*entry.record(), now));
        }
    }

    /// The earliest time at which [`BlockTable::expire`] may have something to do.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.next_due
    }

    /// The blocks (pending sources excluded), in address order.
    pub fn records(&self) -> impl Iterator<Item = &BlockRecord> + '_ {
        self.entries.values().filter_map(|e| match e {
            Entry::Blocked(r) => Some(r),
            Entry::Pending(_) => None,
        })
    }

    /// Every entry of the journal: pending, blocked and releasing, in address order.
    pub fn journal(&self) -> impl Iterator<Item = JournalEntry> + '_ {
        let active = self.entries.values().map(|e| match e {
            Entry::Pending(record) => JournalEntry {
                record: *record,
                state: BlockState::Pending,
            },
            Entry::Blocked(record) => JournalEntry {
                record: *record,
                state: BlockState::Blocked,
            },
        });
        let releasing = self.releasing.values().map(|record| JournalEntry {
            record: *record,
            state: BlockState::Releasing,
        });
        active.chain(releasing)
    }

    /// The text form of the journal (see the module docs).
    pub fn journal_text(&self) -> String {
        let entries: Vec<JournalEntry> = self.journal().collect();
        format_journal(&entries)
    }

    /// The text form of the blocks in force only (no pending or releasing entries).
    pub fn to_text(&self) -> String {
        format_records(self.records())
    }

    /// Counters.
    pub fn stats(&self) -> BlockStats {
        self.stats
    }

    fn lower_next_due(&mut self, t: Timestamp) {
        self.next_due = Some(self.next_due.map_or(t, |d| d.min(t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rec(addr: &str, at: u64, expires: Option<u64>) -> BlockRecord {
        BlockRecord {
            address: ip(addr),
            blocked_at: Timestamp::from_secs(at),
            expires_at: expires.map(Timestamp::from_secs),
            mode: Mode::AdvancedUdp,
            port: 513,
        }
    }

    #[test]
    fn text_round_trip_with_both_families_and_never() {
        let records = vec![
            rec("203.0.113.7", 1_700_000_000, Some(1_700_003_600)),
            rec("2001:db8::9", 1_700_000_100, None),
            rec("::ffff:198.51.100.4", 5, Some(6)),
        ];
        let text = format_records(&records);
        assert!(text.starts_with(BLOCK_FILE_HEADER));
        assert!(text.contains("\n198.51.100.4 5 6 audp 513\n"), "{text}");
        assert!(text.contains("\n2001:db8::9 1700000100 never audp 513\n"));
        let back = parse_records(&text).unwrap();
        assert_eq!(back.len(), 3);
        for r in &records {
            let want = BlockRecord {
                address: r.address.to_canonical(),
                ..*r
            };
            assert!(back.contains(&want), "{want:?} in {back:?}");
        }
        assert_eq!(format_records(&back), text);
    }

    #[test]
    fn parse_accepts_comments_blank_lines_and_tabs() {
        let text = "\n  # hand-edited\n203.0.113.1\t10  never tcp 1\n\n";
        assert_eq!(parse_records(text).unwrap().len(), 1);
    }

    #[test]
    fn parse_errors_name_the_line_and_problem() {
        let cases: &[(&str, BlockLineError)] = &[
            (
                "203.0.113.1 10 never tcp",
                BlockLineError::MissingField("port"),
            ),
            (
                "203.0.113.1 10 never tcp 1 pending x",
                BlockLineError::ExtraField("x".into()),
            ),
            (
                "host.example 10 never tcp 1",
                BlockLineError::BadAddress("host.example".into()),
            ),
            (
                "203.0.113.1 -1 never tcp 1",
                BlockLineError::BadTime {
                    field: "blocked_at",
                    value: "-1".into(),
                },
            ),
            (
                "203.0.113.1 1 soon tcp 1",
                BlockLineError::BadTime {
                    field: "expires_at",
                    value: "soon".into(),
                },
            ),
            (
                "203.0.113.1 1 2 stealth 1",
                BlockLineError::BadMode("stealth".into()),
            ),
            (
                "203.0.113.1 1 2 tcp 65536",
                BlockLineError::BadPort("65536".into()),
            ),
        ];
        for (line, error) in cases {
            let text = format!("# header\n203.0.113.9 1 2 tcp 3\n{line}\n");
            let err = parse_records(&text).unwrap_err();
            assert_eq!(err.line, 3, "{line}");
            assert_eq!(&err.error, error, "{line}");
            assert!(err.to_string().starts_with("line 3: "));
        }
        let dup =
            parse_records("203.0.113.9 1 2 tcp 3\n::ffff:203.0.113.9 1 2 tcp 3\n").unwrap_err();
        assert_eq!(dup.line, 2);
        assert_eq!(
            dup.error,
            BlockLineError::Duplicate {
                address: ip("203.0.113.9"),
                first_line: 1
            }
        );
    }

    #[test]
    fn pending_success_failure_and_expiry() {
        let mut t = BlockTable::new(2, Duration::from_secs(30));
        let a = ip("203.0.113.1");
        let b = ip("2001:db8::2");
        assert!(t.mark_pending(rec("203.0.113.1", 1, Some(100))));
        assert!(t.mark_pending(rec("2001:db8::2", 1, None)));
        assert!(
            !t.mark_pending(rec("203.0.113.3", 1, None)),
            "cap of 2 pending"
        );
        assert_eq!(t.stats().pending_overflow, 1);
        assert!(t.is_pending(a) && t.is_active(a) && t.get(a).is_none());

        assert!(t.record_failed(b));
        assert!(!t.is_active(b));
        assert!(!t.record_failed(b));

        t.record_block(rec("203.0.113.1", 2, Some(100)));
        assert!(t.get(a).is_some() && !t.is_pending(a));
        assert_eq!(t.stats().pending, 0);
        assert_eq!(t.stats().blocked, 1);

        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(99), &mut out);
        assert!(out.is_empty());
        t.expire(Timestamp::from_secs(150), &mut out);
        assert_eq!(
            out,
            vec![Release {
                address: a,
                blocked_at: Timestamp::from_secs(2),
                released_at: Timestamp::from_secs(150),
                mode: Mode::AdvancedUdp,
                port: 513,
            }]
        );
        assert!(!t.is_active(a));
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn stale_pending_is_undone_with_a_release() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        let a = ip("203.0.113.1");
        t.mark_pending(rec("203.0.113.1", 10, None));
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(39), &mut out);
        assert!(t.is_active(a));
        t.expire(Timestamp::from_secs(40), &mut out);
        assert!(!t.is_active(a));
        assert_eq!(out.len(), 1, "its actions may have run: they are undone");
        assert_eq!(t.stats().abandoned, 1);
        assert_eq!(t.stats().releasing, 1);
        assert!(
            t.journal_text()
                .contains("203.0.113.1 10 never audp 513 releasing")
        );
    }

    #[test]
    fn journal_round_trip_keeps_every_state_and_v1_files_read_as_blocked() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        t.mark_pending(rec("203.0.113.1", 10, Some(20)));
        t.record_block(rec("203.0.113.2", 10, None));
        t.record_block(rec("203.0.113.3", 10, Some(15)));
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(15), &mut out);
        // Blocked again while its release is outstanding: both lines are kept.
        t.mark_pending(rec("203.0.113.3", 16, Some(30)));
        let text = t.journal_text();
        assert!(text.starts_with(BLOCK_FILE_HEADER), "{text}");
        let entries = parse_journal(&text).unwrap();
        let states: Vec<(String, BlockState)> = entries
            .iter()
            .map(|e| (e.record.address.to_string(), e.state))
            .collect();
        assert_eq!(
            states,
            [
                ("203.0.113.1".to_owned(), BlockState::Pending),
                ("203.0.113.2".to_owned(), BlockState::Blocked),
                ("203.0.113.3".to_owned(), BlockState::Pending),
                ("203.0.113.3".to_owned(), BlockState::Releasing),
            ]
        );
        assert_eq!(format_journal(&entries), text);
        // parse_records: what a restart restores as blocks.
        assert_eq!(parse_records(&text).unwrap().len(), 3);
        // A version 1 file (no state field) reads as blocks in force.
        let v1 = "# portsentry block table v1: address blocked_at expires_at mode port
                  203.0.113.7 1700000000 never stcp 22
";
        assert_eq!(parse_journal(v1).unwrap()[0].state, BlockState::Blocked);
        let bad = parse_journal(
            "203.0.113.7 1 2 tcp 3 gone
",
        )
        .unwrap_err();
        assert_eq!(bad.error, BlockLineError::BadState("gone".into()));
        let dup = parse_journal(
            "203.0.113.7 1 2 tcp 3 releasing
203.0.113.7 1 2 tcp 3 releasing
",
        )
        .unwrap_err();
        assert_eq!(dup.line, 2);
        let huge = parse_journal(
            "203.0.113.7 99999999999999999 never tcp 3
",
        )
        .unwrap_err();
        assert!(matches!(huge.error, BlockLineError::BadTime { .. }));
    }

    #[test]
    fn confirmed_releases_leave_the_journal() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        t.record_block(rec("203.0.113.2", 10, None));
        let r = t
            .release(ip("203.0.113.2"), Timestamp::from_secs(11))
            .unwrap();
        assert_eq!(t.stats().releasing, 1);
        assert!(t.confirm_released(r.address));
        assert!(!t.confirm_released(r.address));
        assert_eq!(t.journal_text(), format!("{BLOCK_FILE_HEADER}\n"));
    }

    #[test]
    fn a_requeued_release_is_due_again_and_never_overwrites_a_newer_entry() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        t.record_block(rec("203.0.113.1", 1, Some(5)));
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(5), &mut out);
        assert_eq!(out.len(), 1);
        assert!(!t.is_active(ip("203.0.113.1")));
        assert_eq!(t.stats().releasing, 1);

        t.requeue(&out[0], Timestamp::from_secs(6));
        assert_eq!(
            t.get(ip("203.0.113.1")).map(|r| r.blocked_at),
            Some(Timestamp::from_secs(1))
        );
        assert_eq!(t.next_due(), Some(Timestamp::from_secs(6)));
        assert_eq!(t.stats().blocked, 1);
        let mut again = Vec::new();
        t.expire(Timestamp::from_secs(6), &mut again);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].address, ip("203.0.113.1"));
        assert_eq!(t.stats().blocked, 0);
        t.confirm_released(again[0].address);

        // A newer block of the same address stays as it is.
        t.record_block(rec("203.0.113.1", 7, None));
        t.requeue(&out[0], Timestamp::from_secs(8));
        assert_eq!(t.get(ip("203.0.113.1")).map(|r| r.expires_at), Some(None));
        assert_eq!(t.stats().blocked, 1);
    }

    #[test]
    fn never_expiring_blocks_stay_and_manual_release_works() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        t.record_block(rec("2001:db8::5", 1, None));
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(u64::MAX / 2_000_000), &mut out);
        assert!(out.is_empty());
        let r = t
            .release(ip("2001:db8::5"), Timestamp::from_secs(7))
            .unwrap();
        assert_eq!(r.released_at, Timestamp::from_secs(7));
        assert!(
            t.release(ip("2001:db8::5"), Timestamp::from_secs(7))
                .is_none()
        );
        assert_eq!(t.to_text(), format!("{BLOCK_FILE_HEADER}\n"));
    }
}
