//! The live daemon's clock: monotonic for every decision, the wall clock only for display
//! and for the block table on disk.
//!
//! The detector and the block table are sans-IO and take time from their caller. The engine
//! gives them the time of its own timeline, which starts at the wall-clock time of the
//! start and then advances with `CLOCK_MONOTONIC` ([`Instant`]): a step of the system clock
//! (an administrator's `date -s`, a bad NTP server) changes neither scan windows, nor block
//! expiry, nor the rate limit, as nftables' relative timeouts do not change either.
//!
//! Times leave the timeline only through [`Clock::wall_of`] (log lines, history, the status
//! file, `BLOCKED_FILE`) and enter it through [`Clock::timeline_of`] (`BLOCKED_FILE` at start):
//! both add the current difference between the wall clock and the timeline, so an absolute
//! time on disk keeps its meaning across restarts.

use std::time::Instant;

use crate::capture::now as wall_now;
use crate::probe::Timestamp;

/// See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    started: Instant,
    started_wall: Timestamp,
}

impl Clock {
    /// A timeline that starts now, at the wall-clock time of now.
    pub(super) fn start() -> Self {
        Self {
            started: Instant::now(),
            started_wall: wall_now(),
        }
    }

    /// Now, on the monotonic timeline.
    pub(super) fn now(&self) -> Timestamp {
        self.started_wall.saturating_add(self.started.elapsed())
    }

    /// Wall clock minus timeline, in microseconds (zero until the clock is stepped).
    fn offset(&self) -> i128 {
        i128::from(wall_now().as_micros()) - i128::from(self.now().as_micros())
    }

    /// The wall-clock time of `t` (a time on the timeline).
    pub(super) fn wall_of(&self, t: Timestamp) -> Timestamp {
        shift(t, self.offset())
    }

    /// The timeline's time of `t` (a wall-clock time).
    pub(super) fn timeline_of(&self, t: Timestamp) -> Timestamp {
        shift(t, -self.offset())
    }
}

fn shift(t: Timestamp, by: i128) -> Timestamp {
    let micros = (i128::from(t.as_micros()) + by).clamp(0, i128::from(u64::MAX));
    Timestamp::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_starts_at_the_wall_clock_and_converts_both_ways() {
        let clock = Clock::start();
        let now = clock.now();
        let wall = wall_now();
        assert!(wall.saturating_duration_since(now).as_secs() < 2);
        assert!(now.saturating_duration_since(wall).as_secs() < 2);
        let t = Timestamp::from_secs(1_700_000_000);
        let back = clock.timeline_of(clock.wall_of(t));
        assert!(back.saturating_duration_since(t).as_millis() < 50);
        assert!(t.saturating_duration_since(back).as_millis() < 50);
        assert_eq!(shift(Timestamp::from_micros(5), -10), Timestamp::ZERO);
    }
}
