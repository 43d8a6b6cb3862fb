//! [`Detector`]: from a [`Probe`] to an [`Event`], sans-IO.
//!
//! # The decision, in order
//!
//! 1. **Mode and port.** The probe goes to an active mode by protocol and kind: a `connect`
//!    probe to `tcp`; other TCP probes to `atcp`, else `stcp`; UDP probes to `audp`, else
//!    `sudp`, else `udp` (the first active mode that monitors the port). Monitored ports:
//!    * `tcp`/`udp`: `TCP_PORTS`/`UDP_PORTS` (the connect listeners own these ports);
//!    * `stcp`/`sudp`: the same lists minus ports with a listening socket (a real service);
//!    * `atcp`/`audp`: every port below `ADVANCED_PORTS_x`, minus `ADVANCED_EXCLUDE_x`, minus
//!      listening ports. Unlike PortSentry 1.2, ports at or above the bound are never
//!      monitored, even with an empty exclusion list.
//!
//!    ACK-family probes (`ack`, `maimon`) count only with `DETECT_ACK_SCANS`. Anything else:
//!    [`Event::NotMonitored`].
//! 2. **Never block.** Loopback, own addresses, gateways and resolvers (with
//!    `NEVER_BLOCK_GATEWAYS`), the ignore list: [`Event::Ignored`] with the reason. Such
//!    sources are not counted.
//! 3. **Block table.** A source that is blocked or pending (its block actions are running):
//!    [`Event::AlreadyBlocked`], not counted.
//! 4. **Tracker.** Distinct (protocol, port) pairs inside `SCAN_WINDOW`
//!    (see [`crate::tracker`]). Below `SCAN_TRIGGER`: [`Event::BelowTrigger`]. Reaching it:
//!    [`Event::Alert`], and the source is marked pending unless the response is log-only.
//!    An alert that asks for a block beyond `MAX_BLOCKS` or `BLOCK_RATE`
//!    ([`crate::block_limits`]) is an [`Event::Limited`] instead: nothing is pending.
//!    Within one window after an alert, a source that is not blocked gets
//!    [`Event::AlreadyAlerted`] (log-only sources, failed blocks): one alert per source per
//!    window, not one per packet. After that window its count starts again from zero.
//!
//! # Blocks and releases
//!
//! The caller runs the responders for each alert and reports back with
//! [`Detector::record_block`] (the block is recorded, expiring after `BLOCK_TIMEOUT`) or
//! [`Detector::record_block_failed`] (nothing is recorded; the source can alert again after its
//! window). Blocks end only through [`Detector::expire`] (or [`Detector::unblock`]), which
//! returns the [`Release`]s whose release actions must run: `observe` never ends a block by
//! itself, so every block gets exactly one release. Until `expire` is called, a source whose
//! block time is over still gets [`Event::AlreadyBlocked`]. `expire` costs one comparison when
//! nothing is due, so calling it before every `observe` with the probe's time is fine (the
//! replay command does that; a live loop may call it on a timer instead).
//!
//! Nothing here reads the clock, logs or locks. `observe` allocates nothing, with one
//! exception on the alert path: an alert that asks for a block marks its source pending in
//! the block table (a B-tree, which allocates a node now and then). That happens at most once
//! per source and window, for at most `MAX_TRACKED_SOURCES` pending sources.

use std::net::IpAddr;
use std::time::Duration;

use crate::block_limits::BlockLimits;
use crate::block_table::{
    BlockRecord, BlockState, BlockStats, BlockTable, DEFAULT_PENDING_TIMEOUT, JournalEntry,
};
use crate::config::{BlockMode, Config};
use crate::event::{Alert, Event, Release};
use crate::hash::HashSeed;
use crate::mode::Mode;
use crate::never_block::NeverBlock;
use crate::ports::PortSet;
use crate::probe::{Probe, Protocol, ScanKind, Timestamp};
use crate::probe_counts::ProbeCounts;
use crate::tracker::{Observation, Tracker, TrackerError, TrackerStats};

/// Why a [`Detector`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DetectorError {
    /// No detection mode was given.
    #[error("no detection mode given (expected one or more of tcp, udp, stcp, sudp, atcp, audp)")]
    NoModes,
    /// The tracker settings (`MAX_TRACKED_SOURCES`, `SCAN_WINDOW`, `SCAN_TRIGGER`) are out of
    /// range.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

/// Why [`Detector::record_block`] refused to record a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The address is on the never-block list (it may have been added by a reload after the
    /// alert). Nothing is recorded; the caller should undo the block.
    #[error("{address} is never blocked ({})", reason.as_str())]
    NeverBlock {
        /// The address.
        address: IpAddr,
        /// Why it is protected.
        reason: crate::event::IgnoreReason,
    },
}

/// What [`Detector::restore_blocks`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreSummary {
    /// Blocks restored as they were.
    pub restored: usize,
    /// Blocks of addresses now on the never-block list: restored as already expired, so the
    /// next [`Detector::expire`] releases them (their firewall entries get removed).
    pub released_protected: usize,
    /// Pending blocks (their actions may have run before a crash or a stop), pending again
    /// from the restore: the caller re-applies their actions and reports with
    /// [`crate::block_outcome::settle_reapply`], which records or undoes them.
    pub completed_pending: usize,
    /// Those pending blocks, as they are pending now.
    pub completing: Vec<BlockRecord>,
    /// Releases that had not reported: their release actions must run again (returned by
    /// [`Detector::restore_journal`] for the caller to hand to the responders).
    pub resumed_releases: Vec<Release>,
}

/// Counts of the events returned so far, plus the tracker's and block table's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DetectorStats {
    /// [`Event::NotMonitored`] returned.
    pub not_monitored: u64,
    /// [`Event::Ignored`] returned.
    pub ignored: u64,
    /// [`Event::BelowTrigger`] returned.
    pub below_trigger: u64,
    /// [`Event::Alert`] returned.
    pub alerts: u64,
    /// [`Event::Limited`] returned (alerts not blocked because of `MAX_BLOCKS` or
    /// `BLOCK_RATE`).
    pub limited: u64,
    /// [`Event::AlreadyBlocked`] returned.
    pub already_blocked: u64,
    /// [`Event::AlreadyAlerted`] returned.
    pub already_alerted: u64,
    /// Probes on a monitored port, by the mode that took them and their kind (every event
    /// but [`Event::NotMonitored`]).
    pub probes: ProbeCounts,
    /// The tracker's counters.
    pub tracker: TrackerStats,
    /// The block table's counters.
    pub blocks: BlockStats,
}

/// Monitored port sets of the active modes, indexed like [`Mode::ALL`].
#[derive(Debug, Clone)]
struct ModePorts {
    sets: [Option<PortSet>; 6],
}

/// The index of `mode` in [`Mode::ALL`] (tables indexed by mode).
pub(crate) const fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Tcp => 0,
        Mode::Udp => 1,
        Mode::StealthTcp => 2,
        Mode::StealthUdp => 3,
        Mode::AdvancedTcp => 4,
        Mode::AdvancedUdp => 5,
    }
}

/// The source ports settings the port sets are computed from.
#[derive(Debug, Clone)]
struct PortSettings {
    tcp_ports: PortSet,
    udp_ports: PortSet,
    advanced_ports_tcp: u16,
    advanced_ports_udp: u16,
    advanced_exclude_tcp: PortSet,
    advanced_exclude_udp: PortSet,
}

impl PortSettings {
    fn from_config(config: &Config) -> Self {
        Self {
            tcp_ports: config.tcp_ports.clone(),
            udp_ports: config.udp_ports.clone(),
            advanced_ports_tcp: config.advanced_ports_tcp,
            advanced_ports_udp: config.advanced_ports_udp,
            advanced_exclude_tcp: config.advanced_exclude_tcp.clone(),
            advanced_exclude_udp: config.advanced_exclude_udp.clone(),
        }
    }

    /// The ports `mode` monitors, given the listening sockets.
    fn monitored(&self, mode: Mode, listening_tcp: &PortSet, listening_udp: &PortSet) -> PortSet {
        let (listed, below, exclude, listening) = match mode.protocol() {
            Protocol::Tcp => (
                &self.tcp_ports,
                self.advanced_ports_tcp,
                &self.advanced_exclude_tcp,
                listening_tcp,
            ),
            Protocol::Udp => (
                &self.udp_ports,
                self.advanced_ports_udp,
                &self.advanced_exclude_udp,
                listening_udp,
            ),
        };
        match mode {
            Mode::Tcp | Mode::Udp => listed.clone(),
            Mode::StealthTcp | Mode::StealthUdp => {
                listed.iter().filter(|&p| !listening.contains(p)).collect()
            }
            Mode::AdvancedTcp | Mode::AdvancedUdp => PortSet::advanced(below, exclude)
                .iter()
                .filter(|&p| !listening.contains(p))
                .collect(),
        }
    }
}

/// Builds a [`Detector`]; see [`Detector::builder`].
#[derive(Debug, Clone)]
pub struct DetectorBuilder {
    config: Config,
    modes: Vec<Mode>,
    never_block: NeverBlock,
    listening_tcp: PortSet,
    listening_udp: PortSet,
    seed: Option<HashSeed>,
    pending_timeout: Duration,
}

impl DetectorBuilder {
    /// Adds active modes.
    pub fn modes(mut self, modes: impl IntoIterator<Item = Mode>) -> Self {
        self.modes.extend(modes);
        self
    }

    /// Sets the never-block list. Its infrastructure protection is set from the
    /// configuration's `never_block_infrastructure` when the detector is built.
    pub fn never_block(mut self, never_block: NeverBlock) -> Self {
        self.never_block = never_block;
        self
    }

    /// Sets the ports with a listening socket (skipped by the stealth and advanced modes).
    pub fn listening(mut self, tcp: PortSet, udp: PortSet) -> Self {
        self.listening_tcp = tcp;
        self.listening_udp = udp;
        self
    }

    /// Sets the tracker's hash key (default: [`HashSeed::random`]). Use a fixed seed for a
    /// bit-for-bit reproducible internal layout; detection results do not depend on it.
    pub fn seed(mut self, seed: HashSeed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How long a source stays pending without a report from the responders (default
    /// [`DEFAULT_PENDING_TIMEOUT`]).
    pub fn pending_timeout(mut self, timeout: Duration) -> Self {
        self.pending_timeout = timeout;
        self
    }

    /// Builds the detector, allocating all of its tracking memory.
    ///
    /// # Errors
    ///
    /// [`DetectorError::NoModes`] without a mode; [`DetectorError::Tracker`] when
    /// `max_tracked_sources` is 0 or too large, `scan_window` is under 1 ms, or `scan_trigger`
    /// is above [`crate::tracker::MAX_SCAN_TRIGGER`].
    pub fn build(self) -> Result<Detector, DetectorError> {
        if self.modes.is_empty() {
            return Err(DetectorError::NoModes);
        }
        let c = &self.config;
        let tracker = Tracker::new(
            c.max_tracked_sources,
            c.scan_window,
            c.scan_trigger,
            self.seed.unwrap_or_else(HashSeed::random),
        )?;
        let settings = PortSettings::from_config(c);
        let mut detector = Detector {
            ports: ModePorts {
                sets: Default::default(),
            },
            active: self.modes.clone(),
            settings,
            listening_tcp: self.listening_tcp,
            listening_udp: self.listening_udp,
            never_block: self
                .never_block
                .protect_infrastructure(c.never_block_infrastructure),
            blocks: BlockTable::new(c.max_tracked_sources, self.pending_timeout),
            limits: BlockLimits::new(c.max_blocks, c.block_rate),
            tracker,
            scan_trigger: c.scan_trigger,
            detect_ack_scans: c.detect_ack_scans,
            block_tcp: c.block_tcp,
            block_udp: c.block_udp,
            block_timeout: c.block_timeout,
            releases: Vec::new(),
            stats: DetectorStats::default(),
        };
        detector.rebuild_ports();
        Ok(detector)
    }
}

/// The sans-IO detector: feed it probes, get events; report block outcomes; ask for releases.
///
/// # Examples
///
/// ```
/// use std::net::IpAddr;
/// use portsentry_core::{
///     BlockMode, Config, Detector, Event, HashSeed, Mode, Probe, Protocol, ScanKind, Timestamp,
/// };
///
/// let mut config = Config::default();
/// config.scan_trigger = 2;
/// config.block_tcp = BlockMode::Block;
/// let mut det = Detector::builder(&config)
///     .modes([Mode::StealthTcp])
///     .seed(HashSeed::FIXED)
///     .build()
///     .unwrap();
///
/// let probe = |port, secs| Probe {
///     at: Timestamp::from_secs(secs),
///     source: "203.0.113.9".parse().unwrap(),
///     destination: "192.0.2.1".parse().unwrap(),
///     protocol: Protocol::Tcp,
///     source_port: 40000,
///     destination_port: port,
///     kind: ScanKind::Syn,
///     ip_options: false,
/// };
/// assert!(matches!(det.observe(&probe(1, 10)), Event::BelowTrigger { distinct_ports: 1, .. }));
/// let Event::Alert(alert) = det.observe(&probe(79, 11)) else { panic!() };
/// // The block actions are running: later probes do not start them again.
/// assert!(matches!(det.observe(&probe(111, 11)), Event::AlreadyBlocked(_)));
/// det.record_block(&alert, Timestamp::from_secs(12)).unwrap();
/// assert!(det.blocks_text().contains("203.0.113.9 12 never stcp 79"));
/// assert_eq!(det.expire(Timestamp::from_secs(1_000_000)).count(), 0); // BLOCK_TIMEOUT 0: never
/// ```
#[derive(Debug, Clone)]
pub struct Detector {
    ports: ModePorts,
    active: Vec<Mode>,
    settings: PortSettings,
    listening_tcp: PortSet,
    listening_udp: PortSet,
    never_block: NeverBlock,
    tracker: Tracker,
    blocks: BlockTable,
    limits: BlockLimits,
    scan_trigger: u32,
    detect_ack_scans: bool,
    block_tcp: BlockMode,
    block_udp: BlockMode,
    block_timeout: Option<Duration>,
    releases: Vec<Release>,
    stats: DetectorStats,
}

impl Detector {
    /// A builder from `config` (the fields used: the port lists and advanced settings,
    /// `scan_trigger`, `scan_window`, `max_tracked_sources`, `detect_ack_scans`, `block_tcp`,
    /// `block_udp`, `block_timeout`, `never_block_infrastructure`).
    pub fn builder(config: &Config) -> DetectorBuilder {
        DetectorBuilder {
            config: config.clone(),
            modes: Vec::new(),
            never_block: NeverBlock::new(),
            listening_tcp: PortSet::new(),
            listening_udp: PortSet::new(),
            seed: None,
            pending_timeout: DEFAULT_PENDING_TIMEOUT,
        }
    }

    /// Decides about one probe (see the [module docs](self) for the order of checks).
    ///
    /// Uses only the probe's own time. Allocates nothing, except that an [`Event::Alert`]
    /// whose response is a block may insert its source into the block table (see the
    /// [module docs](self)).
    pub fn observe(&mut self, probe: &Probe) -> Event {
        let Some(mode) = self.route(probe) else {
            self.stats.not_monitored += 1;
            return Event::NotMonitored(*probe);
        };
        self.stats.probes.record(mode, probe.kind);
        if let Some(reason) = self.never_block.check(probe.source) {
            self.stats.ignored += 1;
            return Event::Ignored {
                probe: *probe,
                reason,
            };
        }
        if self.blocks.is_active(probe.source) {
            self.stats.already_blocked += 1;
            return Event::AlreadyBlocked(*probe);
        }
        match self.tracker.record(
            probe.source,
            probe.protocol,
            probe.destination_port,
            probe.at,
        ) {
            Observation::Below { distinct_ports } => {
                self.stats.below_trigger += 1;
                Event::BelowTrigger {
                    probe: *probe,
                    distinct_ports,
                    trigger: self.scan_trigger,
                }
            }
            Observation::Quiet => {
                self.stats.already_alerted += 1;
                Event::AlreadyAlerted(*probe)
            }
            Observation::Crossed { distinct_ports } => {
                let response = match mode.protocol() {
                    Protocol::Tcp => self.block_tcp,
                    Protocol::Udp => self.block_udp,
                };
                let alert = Alert {
                    probe: *probe,
                    mode,
                    distinct_ports,
                    response,
                };
                if response != BlockMode::LogOnly {
                    if let Err(limit) = self.limits.admit(self.blocks.active_count(), probe.at) {
                        self.stats.limited += 1;
                        return Event::Limited { alert, limit };
                    }
                    self.blocks.mark_pending(BlockRecord::from_alert(
                        &alert,
                        probe.at,
                        self.block_timeout,
                    ));
                }
                self.stats.alerts += 1;
                Event::Alert(alert)
            }
        }
    }

    /// Records that the responders blocked the source of `alert`, effective `at`; the block
    /// expires after `BLOCK_TIMEOUT` (never when it is 0). Returns the record to persist.
    ///
    /// Works whether or not the source is still pending (a late report is still recorded).
    ///
    /// # Errors
    ///
    /// [`BlockError::NeverBlock`] when the address is on the never-block list now: nothing is
    /// recorded as blocked, and the journal holds the block as releasing until the caller's
    /// undo (the release of [`BlockRecord::from_alert`] at `at`) reported
    /// ([`Detector::confirm_released`]).
    pub fn record_block(
        &mut self,
        alert: &Alert,
        at: Timestamp,
    ) -> Result<BlockRecord, BlockError> {
        let address = alert.probe.source.to_canonical();
        if let Some(reason) = self.never_block.check(address) {
            // Its actions ran: the journal keeps it as releasing until the undo reported.
            self.blocks.record_failed(address);
            self.blocks
                .resume_release(BlockRecord::from_alert(alert, at, self.block_timeout), at);
            return Err(BlockError::NeverBlock { address, reason });
        }
        let record = BlockRecord::from_alert(alert, at, self.block_timeout);
        self.blocks.record_block(record);
        Ok(record)
    }

    /// Records that the re-applied actions of a pending block restored from the journal
    /// succeeded: `record` is in force now. Does nothing (and returns false) unless its
    /// address is still pending.
    pub fn confirm_pending(&mut self, record: BlockRecord) -> bool {
        if !self.blocks.is_pending(record.address) {
            return false;
        }
        self.blocks.record_block(record);
        true
    }

    /// Records that the block actions for `address` failed: nothing is recorded as blocked.
    /// The source stays quiet until one window after its alert, then can alert (and be
    /// blocked) again. Returns true if it was pending.
    pub fn record_block_failed(&mut self, address: IpAddr) -> bool {
        self.blocks.record_failed(address)
    }

    /// Releases every block that has expired at `now` and drops pending entries that never got
    /// a report. Each release also clears the source's tracker state, so it starts from zero.
    ///
    /// Costs one comparison when nothing is due; allocates only when more blocks expire at once
    /// than ever before.
    pub fn expire(&mut self, now: Timestamp) -> impl Iterator<Item = Release> + '_ {
        self.releases.clear();
        self.blocks.expire(now, &mut self.releases);
        for r in &self.releases {
            self.tracker.forget(r.address);
        }
        self.releases.drain(..)
    }

    /// Puts back the block that `release` ended, due for release again at `retry_at` (see
    /// [`BlockTable::requeue`]): call it when the release could not be handed to the
    /// responders, so that the block is not forgotten while its firewall entries remain.
    pub fn requeue_release(&mut self, release: &Release, retry_at: Timestamp) {
        self.blocks.requeue(release, retry_at);
    }

    /// Ends the block of `address` now (an administrator's unblock); `None` if it is neither
    /// blocked nor pending. The release stays outstanding in the journal until
    /// [`Detector::confirm_released`].
    pub fn unblock(&mut self, address: IpAddr, now: Timestamp) -> Option<Release> {
        let release = self.blocks.release(address, now)?;
        self.tracker.forget(release.address);
        Some(release)
    }

    /// Records that the release actions for `address` reported: the journal forgets the
    /// release. Returns true if one was outstanding.
    pub fn confirm_released(&mut self, address: IpAddr) -> bool {
        self.blocks.confirm_released(address)
    }

    /// Ends at `now` every block and pending block of an address that is on the
    /// never-block list now (its own address, a gateway or resolver that appeared after the
    /// block, an ignore-file entry added by a reload) and returns their releases.
    pub fn release_protected(&mut self, now: Timestamp) -> Vec<Release> {
        let protected: Vec<IpAddr> = self
            .blocks
            .journal()
            .filter(|e| e.state != BlockState::Releasing)
            .map(|e| e.record.address)
            .filter(|&a| self.never_block.check(a).is_some())
            .collect();
        protected
            .into_iter()
            .filter_map(|a| self.unblock(a, now))
            .collect()
    }

    /// The earliest time at which [`Detector::expire`] may release something.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.blocks.next_due()
    }

    /// Restores blocks read from `BLOCKED_FILE` (see [`crate::block_table::parse_records`]).
    ///
    /// Blocks of addresses that are on the never-block list now are restored as already
    /// expired, so the next [`Detector::expire`] releases them and their firewall entries are
    /// removed. Blocks whose time is over are released by that call too.
    pub fn restore_blocks(
        &mut self,
        records: impl IntoIterator<Item = BlockRecord>,
    ) -> RestoreSummary {
        let mut summary = RestoreSummary::default();
        for record in records {
            if self.never_block.check(record.address).is_some() {
                self.blocks.record_block(BlockRecord {
                    expires_at: Some(record.blocked_at),
                    ..record
                });
                summary.released_protected += 1;
            } else {
                self.blocks.record_block(record);
                summary.restored += 1;
            }
        }
        summary
    }

    /// The current blocks (pending sources excluded), in address order.
    pub fn blocks(&self) -> impl Iterator<Item = &BlockRecord> + '_ {
        self.blocks.records()
    }

    /// Restores the journal read from `BLOCKED_FILE` at `now` (see
    /// [`crate::block_table::parse_journal`]): blocks as with [`Detector::restore_blocks`];
    /// pending blocks as blocks (the caller re-applies their actions, which completes them);
    /// outstanding releases as outstanding again, returned in
    /// [`RestoreSummary::resumed_releases`] for the caller to run.
    pub fn restore_journal(
        &mut self,
        entries: impl IntoIterator<Item = JournalEntry>,
        now: Timestamp,
    ) -> RestoreSummary {
        let mut blocks = Vec::new();
        let mut summary = RestoreSummary::default();
        for entry in entries {
            match entry.state {
                BlockState::Releasing => summary
                    .resumed_releases
                    .push(self.blocks.resume_release(entry.record, now)),
                BlockState::Pending if self.never_block.check(entry.record.address).is_some() => {
                    summary
                        .resumed_releases
                        .push(self.blocks.resume_release(entry.record, now));
                }
                BlockState::Pending => {
                    // Pending from now: the pending timeout counts from the completion.
                    let record = BlockRecord {
                        blocked_at: now,
                        ..entry.record
                    };
                    if self.blocks.mark_pending(record) {
                        summary.completed_pending += 1;
                        summary.completing.push(record);
                    }
                }
                BlockState::Blocked => blocks.push(entry.record),
            }
        }
        let restored = self.restore_blocks(blocks);
        RestoreSummary {
            restored: restored.restored,
            released_protected: restored.released_protected,
            ..summary
        }
    }

    /// Every entry of the block journal (pending, blocked, releasing).
    pub fn journal(&self) -> impl Iterator<Item = JournalEntry> + '_ {
        self.blocks.journal()
    }

    /// The block journal in the `BLOCKED_FILE` text format.
    pub fn blocks_text(&self) -> String {
        self.blocks.journal_text()
    }

    /// The limits on blocks (`MAX_BLOCKS`, `BLOCK_RATE`) in force.
    pub fn limits(&self) -> &BlockLimits {
        &self.limits
    }

    /// True when the block of `address` is pending (its actions have not reported).
    pub fn is_pending(&self, address: IpAddr) -> bool {
        self.blocks.is_pending(address)
    }

    /// True when `address` is blocked or its block is pending.
    pub fn is_blocked(&self, address: IpAddr) -> bool {
        self.blocks.is_active(address)
    }

    /// Replaces the listening-port sets (after re-reading /proc/net) and recomputes the
    /// monitored ports of the stealth and advanced modes. Not for the hot path (it rebuilds
    /// 8 KiB bitmaps).
    pub fn set_listening(&mut self, tcp: PortSet, udp: PortSet) {
        self.listening_tcp = tcp;
        self.listening_udp = udp;
        self.rebuild_ports();
    }

    /// Replaces the never-block list (after a reload). Infrastructure protection keeps the
    /// configured setting.
    pub fn set_never_block(&mut self, never_block: NeverBlock) {
        let on = self.never_block.protects_infrastructure();
        self.never_block = never_block.protect_infrastructure(on);
    }

    /// The ports `mode` monitors now; `None` if the mode is not active.
    pub fn monitored_ports(&self, mode: Mode) -> Option<&PortSet> {
        self.ports.sets[mode_index(mode)].as_ref()
    }

    /// The active modes, in the order given.
    pub fn modes(&self) -> &[Mode] {
        &self.active
    }

    /// The tracker (read-only), for inspection.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Event counts and the tracker's and block table's counters.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            tracker: self.tracker.stats(),
            blocks: self.blocks.stats(),
            ..self.stats
        }
    }

    /// Heap bytes of the tracker (fixed at construction).
    pub fn tracker_memory_bytes(&self) -> usize {
        self.tracker.memory_bytes()
    }

    fn rebuild_ports(&mut self) {
        let mut sets: [Option<PortSet>; 6] = Default::default();
        for &mode in &self.active {
            sets[mode_index(mode)] = Some(self.settings.monitored(
                mode,
                &self.listening_tcp,
                &self.listening_udp,
            ));
        }
        self.ports = ModePorts { sets };
    }

    /// The active mode that takes `probe`, if any monitors its port and counts its kind.
    #[inline]
    fn route(&self, probe: &Probe) -> Option<Mode> {
        if probe.kind.is_ack_family() && !self.detect_ack_scans {
            return None;
        }
        let candidates: &[Mode] = match (probe.protocol, probe.kind) {
            (Protocol::Tcp, ScanKind::Connect) => &[Mode::Tcp],
            (Protocol::Tcp, _) => &[Mode::AdvancedTcp, Mode::StealthTcp],
            (Protocol::Udp, _) => &[Mode::AdvancedUdp, Mode::StealthUdp, Mode::Udp],
        };
        candidates.iter().copied().find(|&m| {
            self.ports.sets[mode_index(m)]
                .as_ref()
                .is_some_and(|set| set.contains(probe.destination_port))
        })
    }

    /// Applies a reloaded configuration (SIGHUP) while keeping the block table: port lists,
    /// advanced settings, `DETECT_ACK_SCANS`, `BLOCK_TCP`/`BLOCK_UDP`, `BLOCK_TIMEOUT` (for
    /// blocks made from now on) and `NEVER_BLOCK_GATEWAYS`. The active modes stay.
    ///
    /// The tracker keeps every source's progress unless `SCAN_TRIGGER`, `SCAN_WINDOW` or
    /// `MAX_TRACKED_SOURCES` changed: then it starts empty with the new settings and this
    /// returns `Ok(true)`.
    ///
    /// # Errors
    ///
    /// [`DetectorError::Tracker`] when the new tracker settings are out of range; nothing is
    /// changed then.
    pub fn reconfigure(&mut self, config: &Config) -> Result<bool, DetectorError> {
        let tracker_changed = config.scan_trigger.max(1) != self.tracker.trigger()
            || config.scan_window != self.tracker.window()
            || config.max_tracked_sources != self.tracker.capacity();
        if tracker_changed {
            self.tracker = Tracker::new(
                config.max_tracked_sources,
                config.scan_window,
                config.scan_trigger,
                HashSeed::random(),
            )?;
        }
        self.settings = PortSettings::from_config(config);
        self.scan_trigger = config.scan_trigger;
        self.detect_ack_scans = config.detect_ack_scans;
        self.block_tcp = config.block_tcp;
        self.block_udp = config.block_udp;
        self.block_timeout = config.block_timeout;
        self.limits.set(config.max_blocks, config.block_rate);
        self.never_block = self
            .never_block
            .clone()
            .protect_infrastructure(config.never_block_infrastructure);
        self.rebuild_ports();
        Ok(tracker_changed)
    }
}

#[cfg(test)]
mod tests;
