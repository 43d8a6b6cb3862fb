//! [`FloodSummary`]: what a flood from known sources costs, a counter instead of a log line.
//!
//! A source the detector already knows (alerted inside its window, blocked, or protected)
//! may send any number of further probes. PortSentry wrote a line for each of them ("already
//! blocked", "ignoring"); under a flood that line, its formatting and its write cost far more
//! than the detection itself. Here a repeat costs one table update on the capture thread:
//!
//! * The first repeat of a source in a minute is passed on as the usual notice (when the
//!   notice budget of the second allows: at most [`NOTICES_PER_SECOND`] over all sources).
//! * Every other repeat is counted, per source and in total.
//! * [`FloodSummary::due`] gives at most one summary per second over all sources, covering
//!   each source whose counted repeats are at least a minute old, so a source appears in a
//!   summary at most once per minute: "12,408 more probes from 203.0.113.7 in the last 60 s",
//!   or, for many sources at once, their total and the busiest ones.
//!
//! Mass alerts: alerts that only log (`BLOCK_x="0"`) are logged up to
//! [`ALERTS_PER_SECOND`] per second; beyond that (a flood of forged sources, each alerting on
//! its first probe) they are counted and summarised ("alerts from 9,812 further sources
//! suppressed"), with the exact count in [`FloodCounts::suppressed_alerts`]. Alerts that block
//! are never suppressed here. With `SCAN_TRIGGER` of 2 or more a forged one-probe source
//! never alerts, so a real scanner's alert is not crowded out.
//!
//! The table holds at most [`MAX_SOURCES`] sources; repeats of further sources are counted
//! in one shared entry, so the counts stay exact whatever the flood.
//!
//! Sans-IO: the caller passes the time (capture timestamps for [`FloodSummary::absorb`], the
//! clock for [`FloodSummary::due`]); nothing is logged here.
//!
//! # Examples
//!
//! ```
//! use portsentry_core::flood::{FloodSummary, Repeat, Verdict};
//! use portsentry_core::Timestamp;
//!
//! let mut floods = FloodSummary::new();
//! let src = "203.0.113.7".parse().unwrap();
//! let t0 = Timestamp::from_secs(1_000);
//! assert_eq!(floods.absorb(src, Repeat::AlreadyBlocked, t0), Verdict::Notify);
//! for _ in 0..12_408 {
//!     assert_eq!(floods.absorb(src, Repeat::AlreadyBlocked, t0), Verdict::Counted);
//! }
//! assert!(floods.due(Timestamp::from_secs(1_030)).is_none(), "not a minute yet");
//! let line = floods.due(Timestamp::from_secs(1_060)).unwrap();
//! assert_eq!(line.to_string(), "12,408 more probes from 203.0.113.7 (already blocked) in the last 60 s");
//! assert_eq!(floods.counts().counted, 12_408);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::BlockMode;
use crate::event::Event;
use crate::probe::Timestamp;

/// How long a source's repeats are gathered before a summary names it (and how long after a
/// notice its next one may come).
pub const PERIOD: Duration = Duration::from_secs(60);
/// Summaries at most this often over all sources.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);
/// Notices passed on per second at most, over all sources.
pub const NOTICES_PER_SECOND: u32 = 10;
/// Log-only alerts logged per second at most, over all sources.
pub const ALERTS_PER_SECOND: u32 = 1000;
/// Sources with their own entry at most.
pub const MAX_SOURCES: usize = 65_536;
/// Sources a summary of many names by address (the busiest).
const NAMED: usize = 3;

/// Why a probe is a repeat from a known source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Repeat {
    /// The source is blocked already.
    AlreadyBlocked,
    /// The source alerted inside its window (log only, or its block failed).
    AlreadyAlerted,
    /// The source is protected (ignore file, own address, gateway, resolver, loopback).
    Ignored,
}

impl Repeat {
    /// The repeat an event is, if it is one.
    pub fn of(event: &Event) -> Option<Self> {
        match event {
            Event::AlreadyBlocked(_) => Some(Self::AlreadyBlocked),
            Event::AlreadyAlerted(_) => Some(Self::AlreadyAlerted),
            Event::Ignored { .. } => Some(Self::Ignored),
            _ => None,
        }
    }

    /// `already blocked`, `already alerted`, `ignored`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyBlocked => "already blocked",
            Self::AlreadyAlerted => "already alerted",
            Self::Ignored => "ignored",
        }
    }
}

/// What to do with one repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the usual notice on (the first of the source in a minute).
    Notify,
    /// Only counted: a later summary reports it.
    Counted,
}

/// Exact totals since start, for `portsentry status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FloodCounts {
    /// Repeats seen (notified and counted).
    pub repeats: u64,
    /// Repeats passed on as notices.
    pub notified: u64,
    /// Repeats only counted.
    pub counted: u64,
    /// Counted repeats already reported by a summary.
    pub summarised: u64,
    /// Summaries given.
    pub summaries: u64,
    /// Sources with their own entry now.
    pub sources: usize,
    /// Repeats counted in the shared entry because the table was full.
    pub overflow: u64,
    /// Log-only alerts not logged because more than [`ALERTS_PER_SECOND`] came in a second.
    pub suppressed_alerts: u64,
}

/// One source's repeats since its last summary.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the oldest unreported repeat came (`None`: nothing unreported).
    since: Option<Timestamp>,
    /// Unreported repeats.
    pending: u64,
    /// The kind of the latest repeat.
    kind: Repeat,
    /// When the latest notice was passed on.
    notified_at: Option<Timestamp>,
    /// The latest repeat.
    last: Timestamp,
}

/// A summary line's content; `Display` gives the line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Repeats reported.
    pub probes: u64,
    /// Sources they came from (the shared entry of sources beyond the table counts as one).
    pub sources: usize,
    /// The busiest sources: address, repeats, kind of the latest.
    pub busiest: Vec<(IpAddr, u64, Repeat)>,
    /// The period the repeats fall in.
    pub period: Duration,
    /// Log-only alerts suppressed since the last summary (each from a further source).
    pub suppressed_alerts: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.suppressed_alerts > 0 {
            write!(
                f,
                "alerts from {} further sources suppressed (more than {} a second, log only)",
                thousands(self.suppressed_alerts),
                thousands(u64::from(ALERTS_PER_SECOND))
            )?;
            if self.sources == 0 {
                return Ok(());
            }
            f.write_str("; ")?;
        }
        let secs = self.period.as_secs();
        if let ([(source, n, kind)], 1) = (self.busiest.as_slice(), self.sources) {
            return write!(
                f,
                "{} more probes from {} ({}) in the last {secs} s",
                thousands(*n),
                address(*source),
                kind.as_str()
            );
        }
        write!(
            f,
            "{} more probes from {} known sources in the last {secs} s (busiest:",
            thousands(self.probes),
            thousands(self.sources as u64)
        )?;
        for (i, (source, n, kind)) in self.busiest.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(
                f,
                "{sep}{} {} ({})",
                address(*source),
                thousands(*n),
                kind.as_str()
            )?;
        }
        f.write_str(")")
    }
}

/// The shared entry's address in summaries: the sources beyond the table.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn address(source: IpAddr) -> String {
    if source == OVERFLOW {
        "further sources".to_owned()
    } else {
        source.to_string()
    }
}

/// `12408` as `12,408`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Counts repeats of known sources and says when to summarise them; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct FloodSummary {
    entries: HashMap<IpAddr, Entry>,
    /// The second the notice budget applies to, and notices passed in it.
    notice_second: u64,
    notices_in_second: u32,
    next_summary: Timestamp,
    /// The second the alert budget applies to, and alerts logged in it.
    alert_second: u64,
    alerts_in_second: u32,
    /// Suppressed alerts not summarised yet.
    pending_alerts: u64,
    counts: FloodCounts,
}

impl Default for FloodSummary {
    fn default() -> Self {
        Self::new()
    }
}

impl FloodSummary {
    /// An empty summary table.
    pub fn new() -> Self {
        Self {
            entries: HashMap::new(),
            notice_second: 0,
            notices_in_second: 0,
            next_summary: Timestamp::ZERO,
            alert_second: 0,
            alerts_in_second: 0,
            pending_alerts: 0,
            counts: FloodCounts::default(),
        }
    }

    /// True when a log-only alert at `at` may be logged; false when the second's budget
    /// ([`ALERTS_PER_SECOND`]) is spent (it is then counted for a summary).
    pub fn admit_alert(&mut self, at: Timestamp) -> bool {
        let second = at.as_secs();
        if second != self.alert_second {
            self.alert_second = second;
            self.alerts_in_second = 0;
        }
        if self.alerts_in_second < ALERTS_PER_SECOND {
            self.alerts_in_second += 1;
            return true;
        }
        self.pending_alerts += 1;
        self.counts.suppressed_alerts += 1;
        false
    }

    /// Counts `event` when it is a repeat ([`Repeat::of`]) or a log-only alert
    /// ([`FloodSummary::admit_alert`]): `Some(verdict)`; `None` for the events it leaves
    /// alone (blocking alerts, below-trigger probes...).
    pub fn absorb_event(&mut self, event: &Event) -> Option<Verdict> {
        if let Event::Alert(alert) = event {
            if alert.response != BlockMode::LogOnly {
                return None;
            }
            return Some(if self.admit_alert(alert.probe.at) {
                Verdict::Notify
            } else {
                Verdict::Counted
            });
        }
        let repeat = Repeat::of(event)?;
        let probe = event.probe()?;
        Some(self.absorb(probe.source, repeat, probe.at))
    }

    /// Counts one repeat of `source` at `at`.
    pub fn absorb(&mut self, source: IpAddr, kind: Repeat, at: Timestamp) -> Verdict {
        self.counts.repeats += 1;
        let key = if self.entries.len() < MAX_SOURCES || self.entries.contains_key(&source) {
            source
        } else {
            self.counts.overflow += 1;
            OVERFLOW
        };
        let entry = self.entries.entry(key).or_insert(Entry {
            since: None,
            pending: 0,
            kind,
            notified_at: None,
            last: at,
        });
        entry.kind = kind;
        entry.last = entry.last.max(at);
        let notice_due = key != OVERFLOW
            && entry
                .notified_at
                .is_none_or(|t| at >= t.saturating_add(PERIOD));
        let second = at.as_secs();
        if second != self.notice_second {
            self.notice_second = second;
            self.notices_in_second = 0;
        }
        if notice_due && self.notices_in_second < NOTICES_PER_SECOND {
            self.notices_in_second += 1;
            entry.notified_at = Some(at);
            self.counts.notified += 1;
            return Verdict::Notify;
        }
        entry.pending += 1;
        entry.since.get_or_insert(at);
        self.counts.counted += 1;
        Verdict::Counted
    }

    /// A summary of every source whose unreported repeats are at least [`PERIOD`] old at
    /// `now`, at most once per [`SUMMARY_INTERVAL`]; `None` when nothing is due (or the
    /// last summary was less than a second ago). Sources quiet for two periods are dropped
    /// from the table.
    pub fn due(&mut self, now: Timestamp) -> Option<Summary> {
        if now < self.next_summary {
            return None;
        }
        let mut probes = 0;
        let mut sources = 0;
        let mut busiest: Vec<(IpAddr, u64, Repeat)> = Vec::new();
        for (&source, entry) in &mut self.entries {
            let Some(since) = entry.since else { continue };
            if now < since.saturating_add(PERIOD) {
                continue;
            }
            probes += entry.pending;
            sources += 1;
            busiest.push((source, entry.pending, entry.kind));
            if busiest.len() > NAMED {
                busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                busiest.truncate(NAMED);
            }
            entry.pending = 0;
            entry.since = None;
        }
        let idle = PERIOD.saturating_mul(2);
        self.entries
            .retain(|_, e| e.since.is_some() || now < e.last.saturating_add(idle));
        let suppressed_alerts = std::mem::take(&mut self.pending_alerts);
        if sources == 0 && suppressed_alerts == 0 {
            return None;
        }
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.next_summary = now.saturating_add(SUMMARY_INTERVAL);
        self.counts.summarised += probes;
        self.counts.summaries += 1;
        Some(Summary {
            probes,
            sources,
            busiest,
            period: PERIOD,
            suppressed_alerts,
        })
    }

    /// Exact totals since start.
    pub fn counts(&self) -> FloodCounts {
        FloodCounts {
            sources: self.entries.len(),
            ..self.counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from_bits(0xCB00_7100 + n))
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn a_source_is_noticed_once_per_minute_and_summarised_once_per_minute() {
        let mut f = FloodSummary::new();
        let s = v4(7);
        assert_eq!(
            f.absorb(s, Repeat::AlreadyAlerted, secs(0)),
            Verdict::Notify
        );
        for t in 0..=60 {
            f.absorb(s, Repeat::AlreadyAlerted, secs(t));
        }
        // At 60 s the next notice passed (a minute after the first).
        assert_eq!(f.counts().notified, 2);
        assert_eq!(f.counts().counted, 60);
        let first = f.due(secs(60)).unwrap();
        assert_eq!((first.sources, first.probes), (1, 60));
        for t in 61..120 {
            assert_eq!(
                f.absorb(s, Repeat::AlreadyAlerted, secs(t)),
                Verdict::Counted
            );
        }
        assert_eq!(
            f.absorb(s, Repeat::AlreadyAlerted, secs(120)),
            Verdict::Notify
        );
        assert!(
            f.due(secs(61)).is_none(),
            "its repeats since are not a minute old"
        );
        assert!(f.due(secs(120)).is_none());
        let second = f.due(secs(121)).unwrap();
        assert_eq!(second.probes, 59);
        assert_eq!(f.counts().summarised, 119);
        assert!(f.due(secs(400)).is_none());
        assert_eq!(f.counts().sources, 0, "quiet sources leave the table");
    }

    #[test]
    fn many_sources_make_one_summary_per_second_with_exact_counts() {
        let mut f = FloodSummary::new();
        let mut notified = 0;
        for i in 0..10_000u32 {
            for _ in 0..3 {
                if f.absorb(v4(i), Repeat::AlreadyBlocked, secs(5)) == Verdict::Notify {
                    notified += 1;
                }
            }
        }
        assert_eq!(notified, u64::from(NOTICES_PER_SECOND));
        let s = f.due(secs(65)).unwrap();
        assert_eq!(s.sources, 10_000);
        assert_eq!(s.probes, 30_000 - notified);
        assert_eq!(s.busiest.len(), NAMED);
        let line = s.to_string();
        assert!(
            line.starts_with(
                "29,990 more probes from 10,000 known sources in the last 60 s (busiest: "
            ),
            "{line}"
        );
        f.absorb(v4(1), Repeat::AlreadyBlocked, secs(66));
        f.absorb(v4(1), Repeat::AlreadyBlocked, secs(66));
        assert!(f.due(secs(65)).is_none(), "once per second overall");
        let c = f.counts();
        assert_eq!(c.repeats, c.notified + c.counted);
    }

    #[test]
    fn sources_beyond_the_table_share_one_exact_entry() {
        let mut f = FloodSummary::new();
        let extra = 100u32;
        for i in 0..MAX_SOURCES as u32 + extra {
            f.absorb(
                IpAddr::V4(Ipv4Addr::from_bits(0x0A00_0000 + i)),
                Repeat::Ignored,
                secs(1),
            );
        }
        let c = f.counts();
        assert_eq!(c.sources, MAX_SOURCES + 1);
        assert_eq!(c.overflow, u64::from(extra));
        let s = f.due(secs(61)).unwrap();
        assert_eq!(s.probes, c.counted);
    }

    #[test]
    fn log_only_alerts_beyond_the_budget_are_counted_and_summarised() {
        use crate::event::Alert;
        use crate::{Mode, Probe, Protocol, ScanKind};
        let mut f = FloodSummary::new();
        let alert = |i: u32, response| {
            Event::Alert(Alert {
                probe: Probe {
                    at: secs(7),
                    source: IpAddr::V4(Ipv4Addr::from_bits(0x0B00_0000 + i)),
                    destination: v4(2),
                    protocol: Protocol::Tcp,
                    source_port: 1,
                    destination_port: 1,
                    kind: ScanKind::Syn,
                    ip_options: false,
                },
                mode: Mode::StealthTcp,
                distinct_ports: 1,
                response,
            })
        };
        let mut logged = 0;
        for i in 0..9_812 + ALERTS_PER_SECOND {
            if f.absorb_event(&alert(i, BlockMode::LogOnly)) == Some(Verdict::Notify) {
                logged += 1;
            }
        }
        assert_eq!(logged, ALERTS_PER_SECOND);
        assert_eq!(
            f.absorb_event(&alert(0, BlockMode::Block)),
            None,
            "blocks go on"
        );
        assert_eq!(f.counts().suppressed_alerts, 9_812);
        let line = f.due(secs(8)).unwrap().to_string();
        assert!(
            line.starts_with("alerts from 9,812 further sources suppressed"),
            "{line}"
        );
        assert!(f.due(secs(20)).is_none());
        assert!(f.admit_alert(secs(9)), "a new second has a new budget");
    }

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
