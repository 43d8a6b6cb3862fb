//! The engine's block path: events to the responders, their outcomes back through
//! [`block_outcome`](crate::block_outcome), the journal (`BLOCKED_FILE`) written before
//! actions run and after they reported, releases, and the restore at start.
//!
//! Times: the detector lives on the engine's monotonic timeline ([`super::clock`]); what
//! leaves for the responders (log lines, history, commands) and for the journal is converted
//! to the wall clock here, and only here.

use std::net::IpAddr;

use super::{Engine, EngineError, RELEASE_RETRY, error_message, info, warning};
use crate::block_outcome::{self, Settled};
use crate::block_table::{JournalEntry, parse_journal};
use crate::config::BlockMode;
use crate::event::{Alert, Event, IgnoreReason, Release};
use crate::probe::Timestamp;
use crate::respond::dispatch::{Report, Submitted};
use crate::respond::{self, AlertReport, BlockStatus, blocked_file};

/// What a start must hand to the responders from the journal: releases that had not
/// reported, and pending blocks to complete.
pub(super) type Restored = (Vec<Release>, Vec<crate::block_table::BlockRecord>);

impl Engine {
    /// Hands the events of one batch to the responders. When an alert asks for a block, the
    /// journal (with that block pending) is written first: a crash while its actions run
    /// leaves a record the next start completes.
    pub(super) fn dispatch_events(&mut self) {
        let mut events = std::mem::take(&mut self.events);
        let blocks_asked = events
            .iter()
            .any(|e| matches!(e, Event::Alert(a) if a.response != BlockMode::LogOnly));
        if blocks_asked {
            self.write_blocked_file();
        }
        let mut dropped = false;
        for event in events.drain(..) {
            match event {
                Event::Alert(alert) => dropped |= !self.submit_alert(alert),
                Event::Limited { alert, limit } => {
                    if let Some(line) =
                        self.limit_log
                            .refused(&alert, limit, self.detector.limits())
                    {
                        self.messages.push(warning(line));
                    }
                }
                // One line per block, not one per probe: the rest are counted.
                Event::AlreadyBlocked(probe)
                    if self.noticed.insert(probe.source.to_canonical()) =>
                {
                    self.submit_display(Event::AlreadyBlocked(probe));
                }
                // Only forged packets carry a reserved source: counted, never a line each.
                Event::Ignored {
                    reason: IgnoreReason::Reserved,
                    ..
                } => {}
                Event::Ignored { .. } => self.submit_display(event),
                // PROBE_EVENTS: the dispatcher keeps to the per-second limit.
                Event::BelowTrigger { .. } => self.submit_display(event),
                _ => {}
            }
        }
        self.events = events;
        if dropped {
            self.write_blocked_file();
        }
    }

    /// Submits `alert`; false when the queue dropped it (then settled as a failed block).
    fn submit_alert(&mut self, alert: Alert) -> bool {
        let mut shown = alert;
        shown.probe.at = self.clock.wall_of(alert.probe.at);
        let queued = self
            .dispatcher
            .as_ref()
            .is_some_and(|d| d.submit_alert(shown) == Submitted::Queued);
        if !queued && alert.response != BlockMode::LogOnly {
            let now = self.clock.now();
            block_outcome::settle_alert(&mut self.detector, &alert, BlockStatus::Failed, now);
        }
        queued
    }

    /// Submits a notice event with its time on the wall clock.
    fn submit_display(&mut self, mut event: Event) {
        if let Event::AlreadyBlocked(p)
        | Event::Ignored { probe: p, .. }
        | Event::BelowTrigger { probe: p, .. } = &mut event
        {
            p.at = self.clock.wall_of(p.at);
        }
        if let Some(d) = &self.dispatcher {
            // A dropped notice is counted by the dispatcher and reported in its next line.
            let _ = d.submit_event(&event);
        }
    }

    /// Records the responders' reports; the journal is written once if anything changed.
    pub(super) fn handle_reports(&mut self, reports: Vec<Report>) {
        let mut changed = false;
        for report in reports {
            match report {
                Report::Alert(report) => changed |= self.handle_alert_report(&report),
                Report::Release(report) => {
                    for r in &report.responders {
                        if let Err(e) = &r.result {
                            self.messages.push(error_message(format!(
                                "release of {}: responder {} failed: {e}",
                                respond::address_text(report.release.address),
                                r.name
                            )));
                        }
                    }
                    changed |= block_outcome::settle_release(&mut self.detector, &report.release);
                }
                Report::Reapply(report) => changed |= self.handle_reapply_report(&report),
                Report::Pruned(steps) => {
                    let removed: Vec<String> = steps
                        .iter()
                        .map(|s| format!("{} {}", s.action, s.detail))
                        .collect();
                    self.messages.push(warning(format!(
                        "reconciliation removed {} entr(y/ies) the block table does not know: {}",
                        removed.len(),
                        removed.join(", ")
                    )));
                }
                Report::Errors(errors) => {
                    for (name, e) in errors {
                        self.messages
                            .push(error_message(format!("responder {name} failed: {e}")));
                    }
                }
            }
        }
        if changed {
            self.write_blocked_file();
        }
    }

    /// Records the outcome of one alert; true when the journal changed.
    fn handle_alert_report(&mut self, report: &AlertReport) -> bool {
        for r in &report.responders {
            if let (respond::Role::Report, Err(e)) = (r.role, &r.result) {
                self.messages
                    .push(error_message(format!("responder {} failed: {e}", r.name)));
            }
        }
        let now = self.clock.now();
        let settled =
            block_outcome::settle_alert(&mut self.detector, &report.alert, report.block, now);
        if let Settled::Undo { release, reason } = settled {
            self.messages.push(warning(format!(
                "{} became protected ({}) while it was being blocked: undoing the block",
                respond::address_text(release.address),
                reason.as_str()
            )));
            self.submit_release(release, now);
        }
        settled.changes_journal()
    }

    /// Releases every block due at `at` (the release actions run on the responder thread).
    pub(super) fn release_due(&mut self, at: Timestamp) {
        if self.detector.next_expiry().is_none_or(|due| due > at) {
            return;
        }
        let mut releases = std::mem::take(&mut self.releases);
        releases.clear();
        releases.extend(self.detector.expire(at));
        for release in &releases {
            self.submit_release(*release, at);
        }
        let any = !releases.is_empty();
        self.releases = releases;
        if any {
            self.write_blocked_file();
        }
    }

    /// Releases, at once, the blocks of addresses that became protected (a new own address,
    /// gateway or resolver; an ignore-file entry added by a reload).
    pub(super) fn release_protected(&mut self) {
        let now = self.clock.now();
        let releases = self.detector.release_protected(now);
        for release in &releases {
            self.messages.push(warning(format!(
                "{} is protected now: releasing its block",
                respond::address_text(release.address)
            )));
            self.submit_release(*release, now);
        }
        if !releases.is_empty() {
            self.write_blocked_file();
        }
    }

    /// Hands `release` (timeline times) to the responder thread. When it cannot be queued
    /// (the queue is full), the block is put back, due again after [`RELEASE_RETRY`], so
    /// that its firewall entries are released later rather than forgotten.
    pub(super) fn submit_release(&mut self, release: Release, at: Timestamp) {
        self.noticed.remove(&release.address.to_canonical());
        let shown = Release {
            blocked_at: self.clock.wall_of(release.blocked_at),
            released_at: self.clock.wall_of(release.released_at),
            ..release
        };
        let queued = self
            .dispatcher
            .as_ref()
            .is_some_and(|d| d.submit_release(shown) == Submitted::Queued);
        if !queued {
            self.detector
                .requeue_release(&release, at.saturating_add(RELEASE_RETRY));
            self.messages.push(error_message(format!(
                "release of {} not queued: the response queue is full; retrying in {} s",
                respond::address_text(release.address),
                RELEASE_RETRY.as_secs()
            )));
        }
    }

    /// Ends the block of `address` now (an administrator's `portsentry unblock`): the
    /// release actions run and the `BLOCKED_FILE` is rewritten. `None` if it is not blocked.
    pub fn unblock(&mut self, address: IpAddr) -> Option<Release> {
        let at = self.clock.now();
        let release = self.detector.unblock(address.to_canonical(), at)?;
        self.submit_release(release, at);
        self.messages.push(info(format!(
            "{} unblocked by the administrator",
            respond::address_text(address)
        )));
        self.write_blocked_file();
        Some(release)
    }

    /// Reads the journal into the detector (before the responders start); returns the
    /// releases that had not reported and the pending blocks to complete, to be handed to
    /// the responders once they run. A file that cannot be parsed is moved aside (nothing
    /// lost) and reported.
    pub(super) fn restore_journal(&mut self) -> Result<Restored, EngineError> {
        let Some(path) = self.settings.config.blocked_file.clone() else {
            return Ok(Restored::default());
        };
        let Some(text) = blocked_file::read_if_exists(&path).map_err(EngineError::BlockedFile)?
        else {
            return Ok(Restored::default());
        };
        let entries = match parse_journal(&text) {
            Ok(entries) => entries,
            Err(e) => {
                let aside = super::aside_path(&path);
                let moved = std::fs::rename(&path, &aside);
                self.messages.push(error_message(format!(
                    "{}:{}: unreadable block table ({}); {}",
                    path.display(),
                    e.line,
                    e.error,
                    match moved {
                        Ok(()) =>
                            format!("moved to {} and starting without blocks", aside.display()),
                        Err(m) => format!("could not move it aside ({m}); starting without blocks"),
                    }
                )));
                return Ok(Restored::default());
            }
        };
        let clock = self.clock;
        let count = entries.len();
        let entries = entries.into_iter().map(|e| JournalEntry {
            record: e.record.map_times(|t| clock.timeline_of(t)),
            ..e
        });
        let summary = self.detector.restore_journal(entries, clock.now());
        if count > 0 {
            let mut extra = String::new();
            if summary.released_protected > 0 {
                extra.push_str(&format!(
                    "; {} protected address(es) will be released",
                    summary.released_protected
                ));
            }
            if summary.completed_pending > 0 {
                extra.push_str(&format!(
                    "; {} block(s) left pending by the last run will be completed",
                    summary.completed_pending
                ));
            }
            if !summary.resumed_releases.is_empty() {
                extra.push_str(&format!(
                    "; {} unfinished release(s) will run again",
                    summary.resumed_releases.len()
                ));
            }
            self.messages.push(info(format!(
                "restored {} block(s) from {}{extra}",
                summary.restored,
                path.display()
            )));
        }
        Ok((summary.resumed_releases, summary.completing))
    }

    /// Writes the journal, times on the wall clock, atomically.
    pub(super) fn write_blocked_file(&mut self) {
        let Some(path) = &self.settings.config.blocked_file else {
            return;
        };
        let clock = self.clock;
        let entries: Vec<JournalEntry> = self
            .detector
            .journal()
            .map(|e| JournalEntry {
                record: e.record.map_times(|t| clock.wall_of(t)),
                ..e
            })
            .collect();
        let text = crate::block_table::format_journal(&entries);
        if let Err(e) = blocked_file::write_atomic(path, &text) {
            self.messages
                .push(error_message(format!("cannot write the block table: {e}")));
        }
    }
}
