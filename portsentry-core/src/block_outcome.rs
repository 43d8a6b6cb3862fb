//! The one path from what the responders did back into the detector and its block table.
//!
//! Whoever runs the responders (the live engine, the offline `portsentry unblock`, the
//! Python detector) reports their outcome here and nowhere else, so that "a failed block is
//! not recorded", "a block of an address that became protected is undone" and "a release
//! stays in the journal until its actions reported" hold the same way everywhere:
//!
//! * [`settle_alert`]: an alert's combined [`BlockStatus`] → recorded, failed, not requested
//!   or to be undone;
//! * [`settle_reapply`]: a pending block restored from the journal was re-applied →
//!   recorded, or undone;
//! * [`settle_release`]: a release's actions reported → the journal forgets it;
//! * [`release_in_journal`] and [`forget_release_in_journal`]: the same two steps on a
//!   journal read from `BLOCKED_FILE` when no detector runs.

use std::net::IpAddr;

use crate::block_table::{BlockRecord, BlockState, JournalEntry};
use crate::config::BlockMode;
use crate::detector::{BlockError, Detector};
use crate::event::{Alert, IgnoreReason, Release};
use crate::probe::Timestamp;
use crate::respond::BlockStatus;

/// What [`settle_alert`] did with an alert's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// The block is recorded (persist the journal).
    Recorded(BlockRecord),
    /// The blocking actions failed, or the alert never reached them: nothing is recorded and
    /// the source may alert (and be blocked) again after its window.
    Failed,
    /// No block was asked for (log only) or no blocking action applied: nothing is pending.
    NotRequested,
    /// The address became protected while it was being blocked: nothing is recorded, and
    /// `release` must run to undo what the actions did (the journal holds it as releasing).
    Undo {
        /// The release that undoes the block.
        release: Release,
        /// Why the address is protected now.
        reason: IgnoreReason,
    },
}

impl Settled {
    /// True when the block journal changed and should be written.
    pub fn changes_journal(&self) -> bool {
        !matches!(self, Self::NotRequested)
    }
}

/// Reports the combined outcome `status` of `alert`'s blocking responders, effective `at`.
///
/// # Examples
///
/// ```
/// use portsentry_core::block_outcome::{settle_alert, Settled};
/// use portsentry_core::respond::BlockStatus;
/// use portsentry_core::{BlockMode, Config, Detector, Event, Mode, Probe, Protocol, ScanKind, Timestamp};
///
/// let config = Config { block_tcp: BlockMode::Block, ..Config::default() };
/// let mut det = Detector::builder(&config).modes([Mode::StealthTcp]).build().unwrap();
/// let probe = Probe {
///     at: Timestamp::from_secs(10),
///     source: "203.0.113.9".parse().unwrap(),
///     destination: "192.0.2.1".parse().unwrap(),
///     protocol: Protocol::Tcp,
///     source_port: 40000,
///     destination_port: 1,
///     kind: ScanKind::Syn,
///     ip_options: false,
/// };
/// let Event::Alert(alert) = det.observe(&probe) else { panic!() };
/// let settled = settle_alert(&mut det, &alert, BlockStatus::Blocked, Timestamp::from_secs(11));
/// assert!(matches!(settled, Settled::Recorded(_)));
/// assert!(det.is_blocked(probe.source));
/// ```
pub fn settle_alert(
    detector: &mut Detector,
    alert: &Alert,
    status: BlockStatus,
    at: Timestamp,
) -> Settled {
    let source = alert.probe.source;
    match status {
        BlockStatus::Blocked if alert.response != BlockMode::LogOnly => {
            match detector.record_block(alert, at) {
                Ok(record) => Settled::Recorded(record),
                Err(BlockError::NeverBlock { reason, .. }) => Settled::Undo {
                    release: BlockRecord::from_alert(alert, at, None).release_at(at),
                    reason,
                },
            }
        }
        BlockStatus::NotRequested | BlockStatus::Blocked => {
            detector.record_block_failed(source);
            Settled::NotRequested
        }
        BlockStatus::Failed | BlockStatus::Pending => {
            detector.record_block_failed(source);
            Settled::Failed
        }
    }
}

/// Reports the outcome `status` of re-applying `record` (timeline times), for a pending
/// block restored from the journal ([`crate::detector::RestoreSummary::completing`]): on
/// success the block is recorded; otherwise it is undone, and the returned release must run
/// (the journal holds it as releasing). Blocks in force are left as they are (a failed
/// re-application is reported and tried again at the next reconciliation); `None` then.
pub fn settle_reapply(
    detector: &mut Detector,
    record: &BlockRecord,
    status: BlockStatus,
    at: Timestamp,
) -> Option<Release> {
    if !detector.is_pending(record.address) {
        return None;
    }
    if status == BlockStatus::Blocked || status == BlockStatus::NotRequested {
        detector.confirm_pending(*record);
        return None;
    }
    detector.unblock(record.address, at)
}

/// Reports that the release actions of `release` ran (whatever their result: a failed
/// release is reported, not retried): the journal forgets it. Returns true if it was
/// outstanding.
pub fn settle_release(detector: &mut Detector, release: &Release) -> bool {
    detector.confirm_released(release.address)
}

/// On a journal read from `BLOCKED_FILE` (no detector running): ends the block or pending
/// block of `address` at `now`, leaving it as releasing (write the journal, then run the
/// release actions, then [`forget_release_in_journal`]). `None` when it is not blocked.
pub fn release_in_journal(
    entries: &mut [JournalEntry],
    address: IpAddr,
    now: Timestamp,
) -> Option<Release> {
    let address = address.to_canonical();
    let entry = entries
        .iter_mut()
        .find(|e| e.record.address == address && e.state != BlockState::Releasing)?;
    entry.state = BlockState::Releasing;
    Some(entry.record.release_at(now))
}

/// On a journal read from `BLOCKED_FILE`: forgets the outstanding release of `address`
/// (its actions reported). Returns true if there was one.
pub fn forget_release_in_journal(entries: &mut Vec<JournalEntry>, address: IpAddr) -> bool {
    let address = address.to_canonical();
    let before = entries.len();
    entries.retain(|e| !(e.record.address == address && e.state == BlockState::Releasing));
    entries.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_table::{format_journal, parse_journal};
    use crate::config::Config;
    use crate::event::Event;
    use crate::mode::Mode;
    use crate::never_block::NeverBlock;
    use crate::probe::{Probe, Protocol, ScanKind};

    fn detector() -> Detector {
        let config = Config {
            block_tcp: BlockMode::Block,
            ..Config::default()
        };
        Detector::builder(&config)
            .modes([Mode::StealthTcp])
            .build()
            .unwrap()
    }

    fn alert(det: &mut Detector, source: &str) -> Alert {
        let probe = Probe {
            at: Timestamp::from_secs(10),
            source: source.parse().unwrap(),
            destination: "192.0.2.1".parse().unwrap(),
            protocol: Protocol::Tcp,
            source_port: 40000,
            destination_port: 1,
            kind: ScanKind::Syn,
            ip_options: false,
        };
        match det.observe(&probe) {
            Event::Alert(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failed_and_not_requested_leave_nothing_pending() {
        let mut det = detector();
        let a = alert(&mut det, "203.0.113.1");
        assert!(det.blocks_text().contains("pending"));
        let at = Timestamp::from_secs(11);
        assert_eq!(
            settle_alert(&mut det, &a, BlockStatus::Failed, at),
            Settled::Failed
        );
        assert!(!det.is_blocked(a.probe.source));
        let b = alert(&mut det, "203.0.113.2");
        assert_eq!(
            settle_alert(&mut det, &b, BlockStatus::NotRequested, at),
            Settled::NotRequested
        );
        assert!(!det.blocks_text().contains("203.0.113"));
    }

    #[test]
    fn a_block_of_a_newly_protected_address_is_undone_through_the_journal() {
        let mut det = detector();
        let a = alert(&mut det, "203.0.113.1");
        det.set_never_block(NeverBlock::new().own_addresses([a.probe.source.into()]));
        let at = Timestamp::from_secs(11);
        let Settled::Undo { release, reason } =
            settle_alert(&mut det, &a, BlockStatus::Blocked, at)
        else {
            panic!()
        };
        assert_eq!(reason, IgnoreReason::OwnAddress);
        assert!(!det.is_blocked(a.probe.source));
        assert!(
            det.blocks_text()
                .contains("203.0.113.1 11 never stcp 1 releasing"),
            "{}",
            det.blocks_text()
        );
        assert!(settle_release(&mut det, &release));
        assert!(!det.blocks_text().contains("203.0.113.1"));
    }

    #[test]
    fn offline_release_marks_then_forgets() {
        let mut entries =
            parse_journal("203.0.113.1 1 never stcp 1\n203.0.113.2 1 never stcp 1 pending\n")
                .unwrap();
        let ip: IpAddr = "203.0.113.2".parse().unwrap();
        let release = release_in_journal(&mut entries, ip, Timestamp::from_secs(5)).unwrap();
        assert_eq!(release.released_at, Timestamp::from_secs(5));
        assert!(format_journal(&entries).contains("203.0.113.2 1 never stcp 1 releasing"));
        assert!(release_in_journal(&mut entries, ip, Timestamp::from_secs(5)).is_none());
        assert!(forget_release_in_journal(&mut entries, ip));
        assert_eq!(entries.len(), 1);
    }
}
