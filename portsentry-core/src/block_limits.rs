//! [`BlockLimits`]: how many hosts may be blocked at once (`MAX_BLOCKS`) and how many new
//! blocks a minute may bring (`BLOCK_RATE`).
//!
//! Source addresses can be forged, so without a bound a flood of spoofed probes turns into
//! as many firewall entries, commands and file rewrites as the attacker likes. The limits
//! are checked when an alert asks for a block; what they refuse is an
//! [`Event::Limited`](crate::Event::Limited), counted by the caller.
//!
//! The rate is a token bucket: it holds at most `BLOCK_RATE` blocks and refills at
//! `BLOCK_RATE` a minute, so a quiet host can take a burst of `BLOCK_RATE` new blocks at once
//! and a flood gets one new block every `60 / BLOCK_RATE` seconds. Sans-IO: time comes from
//! the caller; a time earlier than the last one seen refills nothing.

use std::time::Duration;

use crate::event::BlockLimit;
use crate::probe::Timestamp;

/// The default of `MAX_BLOCKS`.
pub const DEFAULT_MAX_BLOCKS: usize = 512;
/// The default of `BLOCK_RATE` (new blocks per minute).
pub const DEFAULT_BLOCK_RATE: u32 = 60;

/// Units of credit one block costs: one minute in microseconds, so that a rate of `r` blocks
/// a minute adds `r` units per elapsed microsecond.
const BLOCK_COST: u64 = 60_000_000;

/// The two limits on blocks, with the rate's bucket; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use portsentry_core::block_limits::BlockLimits;
/// use portsentry_core::{BlockLimit, Timestamp};
///
/// let mut limits = BlockLimits::new(2, 1);
/// let t = Timestamp::from_secs(100);
/// assert_eq!(limits.admit(0, t), Ok(()));
/// assert_eq!(limits.admit(1, t), Err(BlockLimit::Rate)); // one a minute
/// assert_eq!(limits.admit(1, Timestamp::from_secs(160)), Ok(()));
/// assert_eq!(limits.admit(2, Timestamp::from_secs(999)), Err(BlockLimit::MaxBlocks));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLimits {
    max_blocks: usize,
    rate_per_minute: u32,
    /// Credit in units of [`BLOCK_COST`] per block.
    credit: u64,
    last: Option<Timestamp>,
}

impl BlockLimits {
    /// At most `max_blocks` hosts blocked at once and `rate_per_minute` new blocks a minute
    /// (0: no rate limit). The bucket starts full.
    pub fn new(max_blocks: usize, rate_per_minute: u32) -> Self {
        Self {
            max_blocks,
            rate_per_minute,
            credit: Self::capacity(rate_per_minute),
            last: None,
        }
    }

    fn capacity(rate_per_minute: u32) -> u64 {
        u64::from(rate_per_minute).saturating_mul(BLOCK_COST)
    }

    /// Changes the limits (a reload), keeping the bucket's credit (capped to the new size;
    /// full when there was no rate limit before).
    pub fn set(&mut self, max_blocks: usize, rate_per_minute: u32) {
        let capacity = Self::capacity(rate_per_minute);
        self.credit = if self.rate_per_minute == 0 {
            capacity
        } else {
            self.credit.min(capacity)
        };
        self.max_blocks = max_blocks;
        self.rate_per_minute = rate_per_minute;
    }

    /// The configured `MAX_BLOCKS`.
    pub fn max_blocks(&self) -> usize {
        self.max_blocks
    }

    /// The configured `BLOCK_RATE` (0: no rate limit).
    pub fn rate_per_minute(&self) -> u32 {
        self.rate_per_minute
    }

    /// Takes one new block at `now`, with `active` hosts blocked or being blocked already.
    ///
    /// # Errors
    ///
    /// The limit that refuses it: [`BlockLimit::MaxBlocks`] first, then
    /// [`BlockLimit::Rate`]. A refusal takes nothing from the bucket.
    pub fn admit(&mut self, active: usize, now: Timestamp) -> Result<(), BlockLimit> {
        if active >= self.max_blocks {
            return Err(BlockLimit::MaxBlocks);
        }
        if self.rate_per_minute == 0 {
            return Ok(());
        }
        self.refill(now);
        if self.credit < BLOCK_COST {
            return Err(BlockLimit::Rate);
        }
        self.credit -= BLOCK_COST;
        Ok(())
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let gained = micros.saturating_mul(u64::from(self.rate_per_minute));
        self.credit = self
            .credit
            .saturating_add(gained)
            .min(Self::capacity(self.rate_per_minute));
    }
}

impl Default for BlockLimits {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BLOCKS, DEFAULT_BLOCK_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_rate_then_one_per_interval() {
        let mut l = BlockLimits::new(1000, 60);
        let t0 = Timestamp::from_secs(1000);
        for _ in 0..60 {
            assert_eq!(l.admit(0, t0), Ok(()));
        }
        assert_eq!(l.admit(0, t0), Err(BlockLimit::Rate));
        // One second later: exactly one more.
        let t1 = Timestamp::from_secs(1001);
        assert_eq!(l.admit(0, t1), Ok(()));
        assert_eq!(l.admit(0, t1), Err(BlockLimit::Rate));
        // A clock that goes back refills nothing and does not break the bucket.
        assert_eq!(l.admit(0, Timestamp::from_secs(10)), Err(BlockLimit::Rate));
        assert_eq!(l.admit(0, Timestamp::from_secs(1002)), Ok(()));
        // An hour of quiet refills no more than the bucket holds.
        let later = Timestamp::from_secs(5000);
        let taken = (0..100).filter(|_| l.admit(0, later).is_ok()).count();
        assert_eq!(taken, 60);
    }

    #[test]
    fn max_blocks_comes_first_and_zero_rate_means_no_rate_limit() {
        let mut l = BlockLimits::new(3, 0);
        let t = Timestamp::from_secs(1);
        for _ in 0..1000 {
            assert_eq!(l.admit(2, t), Ok(()));
        }
        assert_eq!(l.admit(3, t), Err(BlockLimit::MaxBlocks));
        l.set(10, 1);
        assert_eq!(l.admit(3, t), Ok(()));
        assert_eq!(l.admit(3, t), Err(BlockLimit::Rate));
    }
}
