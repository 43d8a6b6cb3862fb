//! What the engine says about alerts that `MAX_BLOCKS` or `BLOCK_RATE` kept from becoming
//! blocks: the first few of each minute one by one, then one summary a minute with exact
//! counts. Never silent, and never a line (or a queued job) per forged packet.

use std::time::{Duration, Instant};

use crate::block_limits::BlockLimits;
use crate::event::{Alert, BlockLimit};
use crate::respond::address_text;

/// Alerts reported one by one per minute before they are only counted.
const SHOWN_PER_MINUTE: u32 = 5;
/// How often a summary is said (at most).
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct LimitLog {
    since: Instant,
    shown: u32,
    /// Not shown one by one since `since`: because of `MAX_BLOCKS`, because of `BLOCK_RATE`.
    counted: [u64; 2],
}

impl LimitLog {
    pub(super) fn new() -> Self {
        Self {
            since: Instant::now(),
            shown: 0,
            counted: [0; 2],
        }
    }

    /// One refused alert: its line when it is among the first of the minute.
    pub(super) fn refused(
        &mut self,
        alert: &Alert,
        limit: BlockLimit,
        limits: &BlockLimits,
    ) -> Option<String> {
        if self.shown < SHOWN_PER_MINUTE {
            self.shown += 1;
            return Some(format!(
                "{} reached the trigger ({} port {}) but is not blocked: {} reached ({})",
                address_text(alert.probe.source),
                alert.mode,
                alert.probe.destination_port,
                limit.key(),
                describe(limit, limits)
            ));
        }
        self.counted[usize::from(limit == BlockLimit::Rate)] += 1;
        None
    }

    /// The summary of the last minute, once a minute, when alerts were only counted.
    pub(super) fn summary(&mut self, now: Instant, limits: &BlockLimits) -> Option<String> {
        if now.saturating_duration_since(self.since) < SUMMARY_INTERVAL {
            return None;
        }
        let [max, rate] = std::mem::take(&mut self.counted);
        let minutes = now.saturating_duration_since(self.since).as_secs() / 60;
        self.since = now;
        self.shown = 0;
        (max + rate > 0).then(|| {
            format!(
                "{} more alert(s) in the last {minutes} minute(s) not blocked: {max} because of \
                 MAX_BLOCKS ({}), {rate} because of BLOCK_RATE ({})",
                max + rate,
                describe(BlockLimit::MaxBlocks, limits),
                describe(BlockLimit::Rate, limits)
            )
        })
    }
}

fn describe(limit: BlockLimit, limits: &BlockLimits) -> String {
    match limit {
        BlockLimit::MaxBlocks => format!("{} hosts blocked at once", limits.max_blocks()),
        _ => format!("{} new blocks a minute", limits.rate_per_minute()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BlockMode;
    use crate::mode::Mode;
    use crate::probe::{Probe, Protocol, ScanKind, Timestamp};

    #[test]
    fn a_few_lines_then_one_summary_a_minute_with_exact_counts() {
        let limits = BlockLimits::new(512, 60);
        let alert = Alert {
            probe: Probe {
                at: Timestamp::ZERO,
                source: "203.0.113.1".parse().unwrap(),
                destination: "192.0.2.1".parse().unwrap(),
                protocol: Protocol::Tcp,
                source_port: 1,
                destination_port: 11,
                kind: ScanKind::Syn,
                ip_options: false,
            },
            mode: Mode::StealthTcp,
            distinct_ports: 1,
            response: BlockMode::Block,
        };
        let mut log = LimitLog::new();
        let lines: Vec<String> = (0..1000)
            .filter_map(|i| {
                let limit = if i % 2 == 0 {
                    BlockLimit::Rate
                } else {
                    BlockLimit::MaxBlocks
                };
                log.refused(&alert, limit, &limits)
            })
            .collect();
        assert_eq!(lines.len(), SHOWN_PER_MINUTE as usize);
        assert!(lines[0].contains("not blocked: BLOCK_RATE reached (60 new blocks a minute)"));
        assert_eq!(log.summary(log.since, &limits), None);
        let summary = log.summary(log.since + SUMMARY_INTERVAL, &limits).unwrap();
        assert!(
            summary.starts_with(
                "995 more alert(s) in the last 1 minute(s) not blocked: 498 because of MAX_BLOCKS"
            ),
            "{summary}"
        );
        assert_eq!(log.summary(log.since + SUMMARY_INTERVAL, &limits), None);
    }
}
