//! The block table: which sources are blocked (or being blocked), until when, and its text
//! form for `BLOCKED_FILE`.
//!
//! Sans-IO like the rest of the detector: the caller reports what the responders did
//! ([`BlockTable::record_block`], [`BlockTable::record_failed`]) and says what time it is
//! ([`BlockTable::expire`]). A source is *pending* from its alert until that report, so that a
//! flood of probes while a block command runs does not start the same block again.
//!
//! # Text format (`BLOCKED_FILE`)
//!
//! UTF-8, one block per line, fields separated by one or more spaces or tabs:
//!
//! ```text
//! # portsentry block table v1: address blocked_at expires_at mode port
//! 203.0.113.7 1700000000 1700003600 stcp 22
//! 2001:db8::9 1700000100 never atcp 1
//! ```
//!
//! * `address`: the numeric IPv4 or IPv6 address (IPv4-mapped IPv6 is stored as IPv4);
//! * `blocked_at`, `expires_at`: whole seconds since the Unix epoch; `expires_at` is `never`
//!   when `BLOCK_TIMEOUT` was 0;
//! * `mode`: `tcp`, `udp`, `stcp`, `sudp`, `atcp` or `audp`, the mode whose alert blocked it;
//! * `port`: the port of that alert.
//!
//! Blank lines and lines whose first non-blank character is `#` are ignored. [`format_records`]
//! writes the header comment and the records sorted by address; [`parse_records`] reads it back
//! and reports the first bad line with its number. The responder that owns `BLOCKED_FILE` does
//! the atomic write.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::event::{Alert, Release};
use crate::mode::Mode;
use crate::probe::Timestamp;

/// The header line [`format_records`] writes.
pub const BLOCK_FILE_HEADER: &str =
    "# portsentry block table v1: address blocked_at expires_at mode port";

/// One block: a line of `BLOCKED_FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// The blocked address.
    pub address: IpAddr,
    /// When the block took effect.
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
}

impl fmt::Display for BlockRecord {
    /// The record as one line of the text format, without the line break.
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

/// What is wrong with one line of a block file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockLineError {
    /// The line has fewer than five fields.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// The line has more than five fields.
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
    /// The address already appeared on an earlier line.
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

/// The text form of `records`: the header line, then one line per record, sorted by address
/// (IPv4-mapped IPv6 addresses are written as IPv4).
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
    let mut sorted: Vec<&BlockRecord> = records.into_iter().collect();
    sorted.sort_by_key(|r| r.address.to_canonical());
    let mut out = String::with_capacity(BLOCK_FILE_HEADER.len() + 1 + sorted.len() * 48);
    out.push_str(BLOCK_FILE_HEADER);
    out.push('\n');
    for r in sorted {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    out
}

/// Parses the text form (see the module docs).
///
/// # Errors
///
/// [`BlockFileError`] naming the first bad line: a missing or extra field, a bad address, time,
/// mode or port, or an address listed twice.
pub fn parse_records(text: &str) -> Result<Vec<BlockRecord>, BlockFileError> {
    let mut seen: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let record = parse_line(trimmed).map_err(|error| BlockFileError {
            line: line_no,
            error,
        })?;
        if let Some(&first_line) = seen.get(&record.address) {
            return Err(BlockFileError {
                line: line_no,
                error: BlockLineError::Duplicate {
                    address: record.address,
                    first_line,
                },
            });
        }
        seen.insert(record.address, line_no);
        records.push(record);
    }
    Ok(records)
}

fn parse_line(line: &str) -> Result<BlockRecord, BlockLineError> {
    let mut fields = line.split_whitespace();
    let mut next = |name| fields.next().ok_or(BlockLineError::MissingField(name));
    let address = next("address")?;
    let blocked_at = next("blocked_at")?;
    let expires_at = next("expires_at")?;
    let mode = next("mode")?;
    let port = next("port")?;
    if let Some(extra) = fields.next() {
        return Err(BlockLineError::ExtraField(extra.to_owned()));
    }
    let address: IpAddr = address
        .parse()
        .map_err(|_| BlockLineError::BadAddress(address.to_owned()))?;
    let secs = |field, value: &str| {
        value
            .parse::<u64>()
            .map(Timestamp::from_secs)
            .map_err(|_| BlockLineError::BadTime {
                field,
                value: value.to_owned(),
            })
    };
    let blocked_at = secs("blocked_at", blocked_at)?;
    let expires_at = match expires_at {
        "never" => None,
        value => Some(secs("expires_at", value)?),
    };
    Ok(BlockRecord {
        address: address.to_canonical(),
        blocked_at,
        expires_at,
        mode: mode
            .parse()
            .map_err(|_| BlockLineError::BadMode(mode.to_owned()))?,
        port: port
            .parse()
            .map_err(|_| BlockLineError::BadPort(port.to_owned()))?,
    })
}

/// How long a source may stay pending before the table gives up waiting for the responders'
/// report (5 minutes).
pub const DEFAULT_PENDING_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// An alert was raised and the block actions are running.
    Pending { since: Timestamp },
    /// The responders reported success.
    Blocked(BlockRecord),
}

/// Counters of a [`BlockTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BlockStats {
    /// Sources pending now.
    pub pending: usize,
    /// Sources blocked now.
    pub blocked: usize,
    /// Blocks recorded (reported successful or restored).
    pub recorded: u64,
    /// Block attempts reported failed.
    pub failed: u64,
    /// Blocks released (a release put back with [`BlockTable::requeue`] counts again when it
    /// is released again).
    pub released: u64,
    /// Pending entries dropped because no report came within the pending timeout.
    pub abandoned: u64,
    /// Alerts that could not be marked pending because `max_pending` sources already were.
    pub pending_overflow: u64,
}

/// Blocked and pending sources, with expiry.
///
/// Memory: pending entries are capped (`max_pending`); blocked entries exist only for blocks
/// the responders reported successful, so their number is bounded by how many blocks the
/// responders actually made (and shrinks as `BLOCK_TIMEOUT` expires them).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use portsentry_core::{BlockRecord, BlockTable, Mode, Timestamp};
///
/// let mut table = BlockTable::new(100, Duration::from_secs(60));
/// let addr = "203.0.113.7".parse().unwrap();
/// assert!(table.mark_pending(addr, Timestamp::from_secs(10)));
/// assert!(table.is_active(addr));
/// table.record_block(BlockRecord {
///     address: addr,
///     blocked_at: Timestamp::from_secs(11),
///     expires_at: Some(Timestamp::from_secs(71)),
///     mode: Mode::StealthTcp,
///     port: 22,
/// });
/// let mut released = Vec::new();
/// table.expire(Timestamp::from_secs(70), &mut released);
/// assert!(released.is_empty());
/// table.expire(Timestamp::from_secs(71), &mut released);
/// assert_eq!(released[0].address, addr);
/// assert!(!table.is_active(addr));
/// ```
#[derive(Debug, Clone)]
pub struct BlockTable {
    entries: BTreeMap<IpAddr, Entry>,
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
            Some(Entry::Pending { .. })
        )
    }

    /// Marks `addr` pending from `at` (its block actions are about to run). Returns false,
    /// and counts an overflow, when `max_pending` sources are already pending; does nothing
    /// and returns true when `addr` is already pending or blocked.
    pub fn mark_pending(&mut self, addr: IpAddr, at: Timestamp) -> bool {
        let addr = addr.to_canonical();
        if self.entries.contains_key(&addr) {
            return true;
        }
        if self.stats.pending >= self.max_pending {
            self.stats.pending_overflow += 1;
            return false;
        }
        self.entries.insert(addr, Entry::Pending { since: at });
        self.stats.pending += 1;
        self.lower_next_due(at.saturating_add(self.pending_timeout));
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
            Some(Entry::Pending { .. }) => self.stats.pending -= 1,
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
        if let Some(Entry::Pending { .. }) = self.entries.get(&addr) {
            self.entries.remove(&addr);
            self.stats.pending -= 1;
            true
        } else {
            false
        }
    }

    /// Ends the block of `addr` now (a manual unblock), returning its release; `None` if it is
    /// not blocked.
    pub fn release(&mut self, addr: IpAddr, now: Timestamp) -> Option<Release> {
        let addr = addr.to_canonical();
        let Some(Entry::Blocked(r)) = self.entries.get(&addr).copied() else {
            return None;
        };
        self.entries.remove(&addr);
        self.stats.blocked -= 1;
        self.stats.released += 1;
        Some(release_of(&r, now))
    }

    /// Puts back the block that `release` ended, due for release again at `retry_at`: for a
    /// release that could not be handed to the responders (a full queue), so that the
    /// firewall entries it must undo are not forgotten. Does nothing when `release.address`
    /// is blocked or pending again (that entry's own release undoes the same address).
    pub fn requeue(&mut self, release: &Release, retry_at: Timestamp) {
        let address = release.address.to_canonical();
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

    /// Releases every block whose `expires_at` is at or before `now` (appending a [`Release`]
    /// to `out` for each, in address order) and drops pending entries older than the pending
    /// timeout. Costs one comparison when nothing is due.
    pub fn expire(&mut self, now: Timestamp, out: &mut Vec<Release>) {
        match self.next_due {
            Some(due) if due <= now => {}
            _ => return,
        }
        let mut next_due: Option<Timestamp> = None;
        let pending_timeout = self.pending_timeout;
        let stats = &mut self.stats;
        self.entries.retain(|_, entry| {
            let deadline = match entry {
                Entry::Pending { since } => since.saturating_add(pending_timeout),
                Entry::Blocked(r) => match r.expires_at {
                    Some(t) => t,
                    None => return true,
                },
            };
            if deadline > now {
                next_due = Some(next_due.map_or(deadline, |d| d.min(deadline)));
                return true;
            }
            match entry {
                Entry::Pending { .. } => {
                    stats.pending -= 1;
                    stats.abandoned += 1;
                }
                Entry::Blocked(r) => {
                    stats.blocked -= 1;
                    stats.released += 1;
                    out.push(release_of(r, now));
                }
            }
            false
        });
        self.next_due = next_due;
    }

    /// The earliest time at which [`BlockTable::expire`] may have something to do.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.next_due
    }

    /// The blocks (pending sources excluded), in address order.
    pub fn records(&self) -> impl Iterator<Item = &BlockRecord> + '_ {
        self.entries.values().filter_map(|e| match e {
            Entry::Blocked(r) => Some(r),
            Entry::Pending { .. } => None,
        })
    }

    /// The text form of the blocks (see the module docs).
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

fn release_of(r: &BlockRecord, now: Timestamp) -> Release {
    Release {
        address: r.address,
        blocked_at: r.blocked_at,
        released_at: now,
        mode: r.mode,
        port: r.port,
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
                "203.0.113.1 10 never tcp 1 x",
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
        let c = ip("203.0.113.3");
        assert!(t.mark_pending(a, Timestamp::from_secs(1)));
        assert!(t.mark_pending(b, Timestamp::from_secs(1)));
        assert!(
            !t.mark_pending(c, Timestamp::from_secs(1)),
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
    fn stale_pending_is_abandoned_without_a_release() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        let a = ip("203.0.113.1");
        t.mark_pending(a, Timestamp::from_secs(10));
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(39), &mut out);
        assert!(t.is_active(a));
        t.expire(Timestamp::from_secs(40), &mut out);
        assert!(!t.is_active(a));
        assert!(out.is_empty());
        assert_eq!(t.stats().abandoned, 1);
    }

    #[test]
    fn a_requeued_release_is_due_again_and_never_overwrites_a_newer_entry() {
        let mut t = BlockTable::new(10, Duration::from_secs(30));
        t.record_block(rec("203.0.113.1", 1, Some(5)));
        let mut out = Vec::new();
        t.expire(Timestamp::from_secs(5), &mut out);
        assert_eq!(out.len(), 1);
        assert!(!t.is_active(ip("203.0.113.1")));

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
