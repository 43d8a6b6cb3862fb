//! Reconciliation: the firewall is made to match the block table again, at start, after a
//! reload and every `RECONCILE_INTERVAL`.
//!
//! Every block in force is handed to the responder thread as a re-application
//! ([`crate::respond::Responder::on_reapply`]): the nftables element is added again with the
//! block's remaining time; hosts.deny lines and commands, which cannot be queried, get their
//! release actions (failures ignored) and then their blocking actions. Expired blocks are
//! released by the engine's expiry as always, and outstanding releases from the journal run
//! again at start, so after one interval every unexpired block is in force and every
//! expired one is gone, whatever happened meanwhile (a crash, a reboot, a flush).
//!
//! Then the entries the table does not know are removed where they can be listed: elements
//! of portsentry's nftables sets, and hosts.deny lines that the `KILL_HOSTS_DENY` template
//! produced ([`crate::respond::Responder::prune`]). Commands cannot be listed; for them the
//! journal itself is the guarantee (a block is written as pending before its command runs).
//!
//! Log lines and the history file are not written again: a block is recorded once.

use std::time::Instant;

use super::{Engine, error_message};
use crate::block_outcome;
use crate::block_table::BlockRecord;
use crate::config::BlockMode;
use crate::probe::Protocol;
use crate::respond::dispatch::Submitted;
use crate::respond::{self, BlockStatus, ReapplyReport};

impl Engine {
    /// Re-applies every block in force now, and schedules the next reconciliation.
    pub(super) fn reconcile(&mut self) {
        self.reconcile_runs += 1;
        self.next_reconcile = self
            .settings
            .config
            .reconcile_interval
            .map(|d| Instant::now() + d);
        let records: Vec<BlockRecord> = self.detector.blocks().copied().collect();
        self.reapply(records);
        // Every address the journal knows is kept: blocks, pending ones (their actions may be
        // running) and releasing ones (their release undoes them anyway).
        let keep: Vec<std::net::IpAddr> =
            self.detector.journal().map(|e| e.record.address).collect();
        if let Some(d) = &self.dispatcher
            && d.submit_prune(keep) == Submitted::Dropped
        {
            self.messages.push(error_message(
                "reconciliation: the clean-up of unknown entries was not queued (queue full)"
                    .to_owned(),
            ));
        }
    }

    /// Hands the re-application of `records` (timeline times) to the responder thread.
    pub(super) fn reapply(&mut self, records: Vec<BlockRecord>) {
        let config = &self.settings.config;
        let (tcp, udp) = (config.block_tcp, config.block_udp);
        let Some(dispatcher) = &self.dispatcher else {
            return;
        };
        let mut dropped = 0;
        for record in records {
            // The table is the truth: a block made while blocking was on stays in force
            // after a reload to log-only, until it expires or is lifted.
            let response = match record.mode.protocol() {
                Protocol::Tcp => tcp,
                Protocol::Udp => udp,
            };
            let response = match response {
                BlockMode::LogOnly => BlockMode::Block,
                other => other,
            };
            let shown = record.map_times(|t| self.clock.wall_of(t));
            if dispatcher.submit_reapply(shown, response) == Submitted::Dropped {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.messages.push(error_message(format!(
                "reconciliation: {dropped} block(s) not re-applied, the response queue is full; \
                 the next reconciliation tries again"
            )));
        }
    }

    /// Reconciles when `RECONCILE_INTERVAL` has passed since the last time.
    pub(super) fn reconcile_if_due(&mut self) {
        if self.next_reconcile.is_some_and(|at| Instant::now() >= at) {
            self.reconcile();
        }
    }

    /// Records a re-application: a pending block restored from the journal is recorded, or
    /// undone when its actions failed; a failed re-application of a block in force is
    /// reported (the block stays in the table; the next reconciliation tries again). True
    /// when the journal changed.
    pub(super) fn handle_reapply_report(&mut self, report: &ReapplyReport) -> bool {
        let now = self.clock.now();
        let record = report.record.map_times(|t| self.clock.timeline_of(t));
        let pending = self.detector.is_pending(record.address);
        let undo = block_outcome::settle_reapply(&mut self.detector, &record, report.block, now);
        if report.block == BlockStatus::Failed {
            let failed: Vec<String> = report
                .steps
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.action)))
                .collect();
            self.messages.push(error_message(format!(
                "re-applying the block of {} failed: {}{}",
                respond::address_text(report.record.address),
                failed.join("; "),
                if undo.is_some() { "; undoing it" } else { "" }
            )));
        }
        if let Some(release) = undo {
            self.submit_release(release, now);
        }
        pending
    }
}
