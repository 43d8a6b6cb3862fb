//! What the detector decides about each probe.
//!
//! The detector (in `detector.rs`, owned by the detector work) returns one [`Event`] per
//! probe; responders act on [`Alert`]s and [`Release`]s. These types are small and `Copy` so
//! that the hot path never allocates.

use std::net::IpAddr;

use crate::config::BlockMode;
use crate::mode::Mode;
use crate::probe::{Probe, Timestamp};

/// Why a probe's source is never counted or blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The source matches an entry of the ignore file.
    IgnoreFile,
    /// The source is one of this host's own addresses.
    OwnAddress,
    /// The source is one of this host's default gateways.
    Gateway,
    /// The source is one of the configured DNS resolvers.
    Resolver,
    /// The source is a loopback address.
    Loopback,
    /// The source is an address no real host sends from: unspecified, broadcast,
    /// multicast or reserved (`0.0.0.0/8`, `224.0.0.0/4`, `240.0.0.0/4` with
    /// `255.255.255.255`, `::`, `ff00::/8`). Only a forged packet carries one.
    Reserved,
}

impl IgnoreReason {
    /// A short stable name: `ignore_file`, `own_address`, `gateway`, `resolver`, `loopback`,
    /// `reserved`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::IgnoreFile => "ignore_file",
            Self::OwnAddress => "own_address",
            Self::Gateway => "gateway",
            Self::Resolver => "resolver",
            Self::Loopback => "loopback",
            Self::Reserved => "reserved",
        }
    }
}

/// A source crossed the trigger: something should be logged and maybe blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// The probe that crossed the trigger.
    pub probe: Probe,
    /// The mode that saw it (the `$MODE$` token).
    pub mode: Mode,
    /// Distinct (protocol, port) pairs this source probed inside the window, this one included.
    pub distinct_ports: u32,
    /// What the configuration says to do (`BLOCK_TCP`/`BLOCK_UDP`).
    pub response: BlockMode,
}

/// Which limit kept an alert from becoming a block (see [`Event::Limited`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockLimit {
    /// `MAX_BLOCKS` sources are blocked (or being blocked) already.
    MaxBlocks,
    /// `BLOCK_RATE` new blocks were made in the last minute.
    Rate,
}

impl BlockLimit {
    /// A short stable name: `max_blocks` or `block_rate`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaxBlocks => "max_blocks",
            Self::Rate => "block_rate",
        }
    }

    /// The configuration key that sets the limit: `MAX_BLOCKS` or `BLOCK_RATE`.
    pub const fn key(self) -> &'static str {
        match self {
            Self::MaxBlocks => "MAX_BLOCKS",
            Self::Rate => "BLOCK_RATE",
        }
    }
}

/// A block expired (`BLOCK_TIMEOUT`): release actions should run.
///
/// Produced by `Detector::expire`, never by `observe` (see the detector docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The address that was blocked.
    pub address: IpAddr,
    /// When the block was made.
    pub blocked_at: Timestamp,
    /// When it expired.
    pub released_at: Timestamp,
    /// The mode whose alert caused the block (the `$MODE$` token of an unblock command).
    pub mode: Mode,
    /// The port whose probe caused the block (the `$PORT$` token of an unblock command).
    pub port: u16,
}

/// The detector's decision about one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The port is not monitored in this mode (or the probe kind does not count): nothing to do.
    NotMonitored(Probe),
    /// The source is protected and is never counted or blocked.
    Ignored {
        /// The probe.
        probe: Probe,
        /// Why it is ignored.
        reason: IgnoreReason,
    },
    /// Counted, but the source has not reached `SCAN_TRIGGER` yet.
    BelowTrigger {
        /// The probe.
        probe: Probe,
        /// Distinct ports so far, this one included.
        distinct_ports: u32,
        /// The configured trigger.
        trigger: u32,
    },
    /// The source crossed the trigger.
    Alert(Alert),
    /// The source crossed the trigger and its alert asks for a block, but a limit on blocks
    /// (`MAX_BLOCKS`, `BLOCK_RATE`) refused it: nothing runs and nothing is recorded as
    /// blocked. Callers count these and report them in a summary (a forged flood must not
    /// turn into a flood of actions or of log lines).
    Limited {
        /// The alert that was not acted on.
        alert: Alert,
        /// The limit that refused it.
        limit: BlockLimit,
    },
    /// The source is already blocked (or its block is being made right now); no action runs
    /// again.
    AlreadyBlocked(Probe),
    /// A block expired.
    Released(Release),
    /// The source already raised an alert inside the current `SCAN_WINDOW` and is not blocked
    /// (log-only `BLOCK_x = 0`, or a block attempt that failed): it is not alerted again until
    /// the window after that alert has passed, so a log-only scanner gives one alert per window
    /// instead of one per packet.
    AlreadyAlerted(Probe),
}

impl Event {
    /// The probe this event is about; `None` for [`Event::Released`].
    pub const fn probe(&self) -> Option<&Probe> {
        match self {
            Self::NotMonitored(probe)
            | Self::Ignored { probe, .. }
            | Self::BelowTrigger { probe, .. }
            | Self::AlreadyBlocked(probe)
            | Self::AlreadyAlerted(probe) => Some(probe),
            Self::Alert(alert) | Self::Limited { alert, .. } => Some(&alert.probe),
            Self::Released(_) => None,
        }
    }

    /// A short stable name of the event kind: `not_monitored`, `ignored`, `below_trigger`,
    /// `alert`, `limited`, `already_blocked`, `released`, `already_alerted`.
    pub const fn kind_str(&self) -> &'static str {
        match self {
            Self::NotMonitored(_) => "not_monitored",
            Self::Ignored { .. } => "ignored",
            Self::BelowTrigger { .. } => "below_trigger",
            Self::Alert(_) => "alert",
            Self::Limited { .. } => "limited",
            Self::AlreadyBlocked(_) => "already_blocked",
            Self::Released(_) => "released",
            Self::AlreadyAlerted(_) => "already_alerted",
        }
    }
}
