//! Offline replay: run a capture file (or any frames) through the detector, as the daemon
//! would have seen it, and report what happened.
//!
//! Every frame goes through the same two functions as live capture, with its own capture
//! timestamp: [`classify`] turns it into a [`Probe`] or a counted [`Skip`], then
//! [`Detector::observe`] decides. Before each frame, [`Detector::expire`] runs with the
//! frame's time, so time in a replay is the capture's time, never the clock: the same capture
//! gives the same report on every run, anywhere.
//!
//! # How a replay differs from the daemon, on purpose
//!
//! * **Log only.** A replay never runs a blocking action. `BLOCK_TCP` and `BLOCK_UDP` are
//!   treated as 0 (log only) whatever the configuration says, so alerts carry
//!   [`BlockMode::LogOnly`] as their response, nothing is recorded as blocked, and a scanner
//!   raises one alert per `SCAN_WINDOW` (the detector's log-only behaviour: after an alert the
//!   source gets [`Event::AlreadyAlerted`] until its window has passed). Every other setting
//!   (`SCAN_TRIGGER`, `SCAN_WINDOW`, port lists, `DETECT_ACK_SCANS`, ...) applies as written.
//! * **Never block** covers loopback, the ignore file (the configuration's `IGNORE_FILE` when
//!   it names one, or the list given with [`ReplayBuilder::ignore_list`]) and the capture
//!   host's own addresses *when given* ([`ReplayBuilder::own_addresses`]). The addresses,
//!   gateways and resolvers of the machine running the replay play no part: they have nothing
//!   to do with the capture.
//! * **The capture host.** Live capture only sees frames addressed to this host (the kernel
//!   filter drops outgoing, broadcast and multicast frames). A capture file holds whatever
//!   `tcpdump` saw, so when the capture host's addresses are given, the replay applies the
//!   same filter: a probe sent *from* one of them is counted as [`Skip::Outgoing`], and a
//!   probe *to* an address that is not one of them is counted in
//!   [`ReplaySummary::not_to_host`]; neither reaches the detector. Without own addresses
//!   every probe reaches the detector.
//! * **Listening ports.** The stealth and advanced modes skip ports that a real service owns.
//!   A capture does not say which ports had a listener, so give them with
//!   [`ReplayBuilder::listening`]; by default none did.
//! * **Connect mode** (`tcp`) reports completed handshakes on its own sockets, which a
//!   capture does not mark: in a replay it sees no probe. `udp` counts datagrams to
//!   `UDP_PORTS` like `sudp`, without skipping listening ports.
//!
//! # Memory
//!
//! A replay's memory does not grow with the number of sources in the capture: the detector
//! stays within `MAX_TRACKED_SOURCES` (and its fixed first-probe tier); before its first alert
//! a source has a fixed-size record (its probe count and first few pairs) in a 256 KiB table
//! of the 4,096 most recently seen sources (4 per set of a keyed mix); from its first alert on
//! it has a full record,
//! for at most [`ReplayBuilder::max_sources`] sources (10,000 by default; the alerts of the
//! others are counted in [`ReplaySummary::unlisted_alerts`]). What grows is only the
//! detail of the listed alerting sources (their distinct pairs) and the kept events (see
//! [`KeptEvents`]: [`KeptEvents::None`] keeps none).
//!
//! A source's [`SourceReport`] is exact ([`SourceReport::exact`]) when its record from before
//! its first alert was still held at the alert and had room for every pair; otherwise (a flood
//! of other sources came between its probes) it holds what it did from its first alert on
//! plus the pairs the detector counted towards that alert.
//!
//! # Examples
//!
//! ```
//! use std::net::IpAddr;
//! use portsentry_core::replay::Replay;
//! use portsentry_core::source::pcap::Frame;
//! use portsentry_core::{Config, LinkType, Mode, PortSet, Timestamp};
//!
//! // An IPv4 TCP SYN from 203.0.113.1 to 203.0.113.2, destination port `port`.
//! fn syn(port: u16) -> Vec<u8> {
//!     let mut f = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 203, 0, 113, 1, 203, 0, 113, 2];
//!     f.extend_from_slice(&[0x9c, 0x40]);
//!     f.extend_from_slice(&port.to_be_bytes());
//!     f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 4, 0, 0, 0, 0, 0]);
//!     f
//! }
//!
//! // The classic port lists, alarming at the second distinct port.
//! let config = Config { scan_trigger: 2, ..Config::default() };
//! let replay = Replay::builder(&config)
//!     .modes([Mode::StealthTcp])
//!     .own_addresses(["203.0.113.2".parse::<IpAddr>().unwrap()])
//!     .listening("111".parse::<PortSet>().unwrap(), PortSet::new())
//!     .build()
//!     .unwrap();
//!
//! let frames: Vec<(u64, Vec<u8>)> = vec![(10, syn(111)), (11, syn(1)), (12, syn(79)), (13, syn(80))];
//! let report = replay.run_frames(frames.iter().enumerate().map(|(i, (secs, data))| Frame {
//!     record: i as u64 + 1,
//!     at: Timestamp::from_secs(*secs),
//!     link: LinkType::RawIp,
//!     data,
//!     original_len: data.len() as u32,
//! }));
//!
//! let summary = &report.summary;
//! assert_eq!(summary.frames, 4);
//! assert_eq!(summary.probes_by_kind["syn"], 4);
//! // 111 has a listener and 80 is not in TCP_PORTS: ports 1 and 79 count, the second alarms.
//! let scanner = &summary.sources[0];
//! assert_eq!(scanner.source.to_string(), "203.0.113.1");
//! assert_eq!(scanner.alerts.len(), 1);
//! assert_eq!(scanner.alerts[0].probe.destination_port, 79);
//! assert_eq!(scanner.ports_probed.tcp, [1, 79, 80, 111]);
//! assert_eq!(scanner.ports_counted.tcp, [1, 79]);
//! assert_eq!(report.events.len(), 1); // the alert (the daemon logs nothing for the rest)
//! ```

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::classify::{Skip, SkipCounts, classify};
use crate::config::{BlockMode, Config};
use crate::detector::{Detector, DetectorError, DetectorStats};
use crate::event::{Alert, Event};
use crate::hash::HashSeed;
use crate::ignore::{IgnoreError, IgnoreList};
use crate::mode::Mode;
use crate::never_block::NeverBlock;
use crate::ports::PortSet;
use crate::probe::{Probe, Protocol, Timestamp};
use crate::source::pcap::{CaptureError, CaptureFile, Frame};

mod tally;

use tally::Tallies;

/// The most alerting sources a replay lists in detail by default.
pub const DEFAULT_MAX_SOURCES: usize = 10_000;

/// The modes a replay runs when none are given: the stealth modes, `stcp` and `sudp`.
pub const DEFAULT_MODES: [Mode; 2] = [Mode::StealthTcp, Mode::StealthUdp];

/// Why a replay could not be set up or could not read its capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The capture could not be opened or read: not a capture, an unsupported link type, a
    /// record cut short or corrupt. When this happens in the middle of a file, the frames
    /// before it were replayed; [`ReplaySession`] gives access to what they produced.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The ignore file named by the configuration's `IGNORE_FILE` cannot be read or has
    /// invalid lines (use [`ReplayBuilder::ignore_list`] to give a list instead).
    #[error(transparent)]
    IgnoreFile(#[from] IgnoreError),
    /// No mode was given, or `SCAN_TRIGGER`, `SCAN_WINDOW` or `MAX_TRACKED_SOURCES` is out of
    /// the detector's range.
    #[error(transparent)]
    Detector(#[from] DetectorError),
}

/// Which events a [`ReplayReport`] keeps (all of them are counted in the summary anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeptEvents {
    /// The events the daemon logs: alerts, ignored (protected) sources, already-blocked
    /// sources and releases. The default.
    #[default]
    Logged,
    /// Every event, one per probe (plus releases): for analysis.
    All,
    /// None: only the summary.
    None,
}

impl KeptEvents {
    fn keeps(self, event: &Event) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Logged => is_logged(event),
        }
    }
}

/// True for the events the daemon hands to its responders (and so logs).
fn is_logged(event: &Event) -> bool {
    matches!(
        event,
        Event::Alert(_) | Event::Ignored { .. } | Event::AlreadyBlocked(_) | Event::Released(_)
    )
}

/// Where the replay's ignore list comes from.
#[derive(Debug, Clone)]
enum IgnoreChoice {
    /// Load the configuration's `IGNORE_FILE` when it names one.
    FromConfig,
    /// This list, whatever the configuration says.
    Given(IgnoreList),
}

/// Sets up a [`Replay`]; see [`Replay::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ReplayBuilder {
    config: Config,
    modes: Option<Vec<Mode>>,
    own_addresses: Vec<IpNet>,
    listening_tcp: PortSet,
    listening_udp: PortSet,
    ignore: IgnoreChoice,
    kept: KeptEvents,
    max_sources: usize,
}

impl ReplayBuilder {
    /// The most alerting sources listed in detail in [`ReplaySummary::sources`] (default
    /// [`DEFAULT_MAX_SOURCES`]); the alerts of further sources are counted in
    /// [`ReplaySummary::unlisted_alerts`].
    pub fn max_sources(mut self, max: usize) -> Self {
        self.max_sources = max;
        self
    }

    /// The detection modes to run, replacing the default [`DEFAULT_MODES`] (`stcp`, `sudp`).
    pub fn modes(mut self, modes: impl IntoIterator<Item = Mode>) -> Self {
        let mut list: Vec<Mode> = Vec::new();
        for mode in modes {
            if !list.contains(&mode) {
                list.push(mode);
            }
        }
        self.modes = Some(list);
        self
    }

    /// The addresses of the host the capture was taken on (e.g. the victim's address): never
    /// blocked, and used to drop the frames live capture would not have seen (see the
    /// [module docs](self)). Addresses ([`IpAddr`]) or networks ([`IpNet`]).
    pub fn own_addresses(mut self, nets: impl IntoIterator<Item = impl Into<IpNet>>) -> Self {
        self.own_addresses
            .extend(nets.into_iter().map(|n| n.into().trunc()));
        self
    }

    /// The ports that had a listening socket on the capture host: the stealth and advanced
    /// modes do not watch them (a real service owns them). Default: none.
    pub fn listening(mut self, tcp: PortSet, udp: PortSet) -> Self {
        self.listening_tcp = tcp;
        self.listening_udp = udp;
        self
    }

    /// Uses `list` as the ignore list instead of loading the configuration's `IGNORE_FILE`.
    pub fn ignore_list(mut self, list: IgnoreList) -> Self {
        self.ignore = IgnoreChoice::Given(list);
        self
    }

    /// Which events the report keeps (default [`KeptEvents::Logged`]).
    pub fn keep_events(mut self, kept: KeptEvents) -> Self {
        self.kept = kept;
        self
    }

    /// Loads the ignore file (unless a list was given) and checks the detector settings.
    ///
    /// # Errors
    ///
    /// [`ReplayError::IgnoreFile`] when the configuration names an ignore file that cannot be
    /// read or is invalid; [`ReplayError::Detector`] when the mode list is empty or the
    /// tracker settings are out of range.
    pub fn build(self) -> Result<Replay, ReplayError> {
        let ignore = match self.ignore {
            IgnoreChoice::Given(list) => list,
            IgnoreChoice::FromConfig => match &self.config.ignore_file {
                Some(path) => IgnoreList::load(path)?,
                None => IgnoreList::new(),
            },
        };
        let mut config = self.config;
        config.block_tcp = BlockMode::LogOnly;
        config.block_udp = BlockMode::LogOnly;
        let never_block = NeverBlock::new()
            .own_addresses(self.own_addresses.iter().copied())
            .ignore_list(ignore.networks());
        let detector_builder = Detector::builder(&config)
            .modes(self.modes.unwrap_or_else(|| DEFAULT_MODES.to_vec()))
            .never_block(never_block)
            .listening(self.listening_tcp, self.listening_udp)
            // Results do not depend on the seed; a fixed one makes runs identical inside too.
            .seed(HashSeed::FIXED);
        let detector = detector_builder.clone().build()?;
        Ok(Replay {
            config,
            detector_builder,
            detector,
            own_addresses: self.own_addresses,
            kept: self.kept,
            max_sources: self.max_sources,
        })
    }
}

/// A configured replay: run it on as many captures as you like, each run starts afresh.
///
/// See the [module docs](self) for what a replay does and an example.
#[derive(Clone)]
pub struct Replay {
    /// The configuration, with `BLOCK_TCP`/`BLOCK_UDP` forced to log only.
    config: Config,
    /// Builds each run's fresh detector (a new one costs no memory until it is used, unlike
    /// a copy of its tables).
    detector_builder: crate::detector::DetectorBuilder,
    /// A detector built once, for its settings.
    detector: Detector,
    own_addresses: Vec<IpNet>,
    kept: KeptEvents,
    max_sources: usize,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The detector's tables are large and say nothing before a run.
        f.debug_struct("Replay")
            .field("modes", &self.modes())
            .field("scan_trigger", &self.config.scan_trigger)
            .field("scan_window", &self.config.scan_window)
            .field("own_addresses", &self.own_addresses)
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// A builder from `config`. Defaults: the stealth modes (`stcp`, `sudp`), no own
    /// addresses, no listening ports, the configuration's `IGNORE_FILE`, the logged events
    /// kept.
    pub fn builder(config: &Config) -> ReplayBuilder {
        ReplayBuilder {
            config: config.clone(),
            modes: None,
            own_addresses: Vec::new(),
            listening_tcp: PortSet::new(),
            listening_udp: PortSet::new(),
            ignore: IgnoreChoice::FromConfig,
            kept: KeptEvents::default(),
            max_sources: DEFAULT_MAX_SOURCES,
        }
    }

    /// The active modes.
    pub fn modes(&self) -> &[Mode] {
        self.detector.modes()
    }

    /// The configuration the detector runs with (`BLOCK_TCP`/`BLOCK_UDP` are log only).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replays the pcap or pcapng file at `path`.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Capture`] when the file cannot be opened, is not a capture this reader
    /// handles, or has a cut or corrupt record (use [`Replay::session`] to keep what the
    /// frames before a bad record produced).
    pub fn run_file(&self, path: impl AsRef<Path>) -> Result<ReplayReport, ReplayError> {
        let capture = CaptureFile::open(path)?;
        self.run_capture(capture)
    }

    /// Replays a pcap or pcapng stream from `reader` (e.g. bytes in memory); `name` is the
    /// name error messages use.
    ///
    /// # Errors
    ///
    /// As [`Replay::run_file`].
    pub fn run_reader(
        &self,
        name: impl Into<std::path::PathBuf>,
        reader: impl Read,
    ) -> Result<ReplayReport, ReplayError> {
        let capture = CaptureFile::from_reader(name, reader)?;
        self.run_capture(capture)
    }

    /// Replays frames already in memory, in the order given.
    pub fn run_frames<'a>(&self, frames: impl IntoIterator<Item = Frame<'a>>) -> ReplayReport {
        let mut session = self.session();
        for frame in frames {
            session.feed(&frame, |_| {});
        }
        session.finish()
    }

    /// Starts a replay fed frame by frame, to see each event as it happens (the CLI prints
    /// them while reading) or to keep the partial result of a capture that turns out corrupt.
    pub fn session(&self) -> ReplaySession<'_> {
        // The builder succeeded once in `ReplayBuilder::build` with these very settings.
        let detector = self
            .detector_builder
            .clone()
            .build()
            .unwrap_or_else(|_| self.detector.clone());
        ReplaySession {
            replay: self,
            detector,
            report: ReplayReport::default(),
            tallies: Tallies::new(self.max_sources),
            classified: Vec::with_capacity(FrameBatch::CAPACITY),
            hashes: Vec::with_capacity(FrameBatch::CAPACITY),
            batch: FrameBatch::new(),
        }
    }

    fn run_capture<R: Read>(
        &self,
        mut capture: CaptureFile<R>,
    ) -> Result<ReplayReport, ReplayError> {
        let mut session = self.session();
        while session.feed_from(&mut capture, |_| {})? {}
        Ok(session.finish())
    }

    /// True when live capture on the capture host would have delivered `probe`.
    fn seen_by_host(&self, probe: &Probe) -> Result<(), HostFilter> {
        if self.own_addresses.is_empty() {
            return Ok(());
        }
        let own = |addr: IpAddr| {
            let addr = addr.to_canonical();
            self.own_addresses.iter().any(|net| net.contains(&addr))
        };
        if own(probe.source) {
            Err(HostFilter::Outgoing)
        } else if !own(probe.destination) {
            Err(HostFilter::NotToHost)
        } else {
            Ok(())
        }
    }
}

/// Why live capture on the capture host would not have delivered a probe.
enum HostFilter {
    Outgoing,
    NotToHost,
}

/// A replay in progress; see [`Replay::session`].
pub struct ReplaySession<'r> {
    replay: &'r Replay,
    detector: Detector,
    report: ReplayReport,
    tallies: Tallies,
    /// Scratch space of [`ReplaySession::feed_batch`].
    classified: Vec<Result<Probe, Skip>>,
    hashes: Vec<u64>,
    batch: FrameBatch,
}

/// Up to [`FrameBatch::CAPACITY`] frames copied out of a capture reader, for
/// [`ReplaySession::feed_batch`].
///
/// # Examples
///
/// ```
/// use portsentry_core::replay::{FrameBatch, Replay};
/// use portsentry_core::source::pcap::Frame;
/// use portsentry_core::{Config, LinkType, Timestamp};
///
/// // An IPv4 TCP SYN from 203.0.113.1 to 203.0.113.2, port 1 (a classic TCP_PORTS port).
/// let mut syn = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 203, 0, 113, 1, 203, 0, 113, 2];
/// syn.extend_from_slice(&[0x9c, 0x40, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 4, 0, 0, 0, 0, 0]);
/// let frame = Frame { record: 1, at: Timestamp::from_secs(5), link: LinkType::RawIp, data: &syn, original_len: 40 };
///
/// let replay = Replay::builder(&Config::default()).build().unwrap();
/// let mut session = replay.session();
/// let mut batch = FrameBatch::new();
/// assert!(batch.push(&frame));
/// let mut alerts = 0;
/// session.feed_batch(&batch, |event| alerts += u32::from(event.kind_str() == "alert"));
/// assert_eq!(alerts, 1); // SCAN_TRIGGER 0: the first probe alarms
/// assert_eq!(session.finish().summary.frames, 1);
/// ```
#[derive(Debug, Default)]
pub struct FrameBatch {
    bytes: Vec<u8>,
    /// Record number, time, link type, original length, and the end of its bytes.
    frames: Vec<(u64, Timestamp, crate::classify::LinkType, u32, usize)>,
}

impl FrameBatch {
    /// Frames a batch holds.
    pub const CAPACITY: usize = 32;

    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies `frame` in; false (and nothing copied) when the batch is full.
    pub fn push(&mut self, frame: &Frame<'_>) -> bool {
        if self.frames.len() >= Self::CAPACITY {
            return false;
        }
        self.bytes.extend_from_slice(frame.data);
        self.frames.push((
            frame.record,
            frame.at,
            frame.link,
            frame.original_len,
            self.bytes.len(),
        ));
        true
    }

    /// Empties the batch (its memory is kept).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }

    /// The number of frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames, in order.
    pub fn frames(&self) -> impl Iterator<Item = Frame<'_>> {
        let mut start = 0;
        self.frames
            .iter()
            .map(move |&(record, at, link, original_len, end)| {
                let data = &self.bytes[start..end];
                start = end;
                Frame {
                    record,
                    at,
                    link,
                    data,
                    original_len,
                }
            })
    }
}

impl std::fmt::Debug for ReplaySession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaySession")
            .field("replay", self.replay)
            .field("summary", &self.report.summary)
            .finish_non_exhaustive()
    }
}

impl ReplaySession<'_> {
    /// Reads up to [`FrameBatch::CAPACITY`] frames from `capture` and replays them with
    /// [`ReplaySession::feed_batch`]; `Ok(false)` once the capture has ended.
    ///
    /// # Errors
    ///
    /// The capture's error for a cut or corrupt record; the frames before it were replayed.
    pub fn feed_from<R: Read>(
        &mut self,
        capture: &mut CaptureFile<R>,
        on_event: impl FnMut(&Event),
    ) -> Result<bool, CaptureError> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        let mut outcome = Ok(true);
        while batch.len() < FrameBatch::CAPACITY {
            match capture.next_frame() {
                None => {
                    outcome = Ok(false);
                    break;
                }
                Some(Ok(frame)) => {
                    batch.push(&frame);
                }
                Some(Err(error)) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        self.feed_batch(&batch, on_event);
        self.batch = batch;
        outcome
    }

    /// Replays the frames of `batch` in order, exactly as [`ReplaySession::feed`] one by one
    /// would, but faster: the detector's memory for all of them is read first, so that the
    /// cache misses of a flood of new sources overlap.
    pub fn feed_batch(&mut self, batch: &FrameBatch, mut on_event: impl FnMut(&Event)) {
        self.classified.clear();
        self.classified.extend(
            batch
                .frames()
                .map(|frame| classify(frame.at, frame.link, frame.data)),
        );
        let classified = std::mem::take(&mut self.classified);
        let sources = classified.iter().filter_map(|c| c.ok()).map(|p| p.source);
        std::hint::black_box(self.detector.tracker().touch(sources, &mut self.hashes));
        for (frame, result) in batch.frames().zip(&classified) {
            self.feed_classified(&frame, *result, &mut on_event);
        }
        self.classified = classified;
    }

    /// Replays one frame: expires what is due at the frame's time, classifies the frame and,
    /// for a probe, lets the detector decide. `on_event` sees every event (releases first),
    /// whether or not the report keeps it.
    pub fn feed(&mut self, frame: &Frame<'_>, mut on_event: impl FnMut(&Event)) {
        let result = classify(frame.at, frame.link, frame.data);
        self.feed_classified(frame, result, &mut on_event);
    }

    fn feed_classified(
        &mut self,
        frame: &Frame<'_>,
        result: Result<Probe, Skip>,
        on_event: &mut impl FnMut(&Event),
    ) {
        let summary = &mut self.report.summary;
        summary.frames += 1;
        summary.first_frame_at.get_or_insert(frame.at);
        summary.last_frame_at = Some(frame.at);
        for release in self.detector.expire(frame.at) {
            let event = Event::Released(release);
            Self::record(&mut self.report, self.replay.kept, &event);
            on_event(&event);
        }
        let probe = match result {
            Ok(probe) => probe,
            Err(reason) => {
                self.report.summary.skips.record(reason);
                return;
            }
        };
        match self.replay.seen_by_host(&probe) {
            Ok(()) => {}
            Err(HostFilter::Outgoing) => {
                self.report.summary.skips.record(Skip::Outgoing);
                return;
            }
            Err(HostFilter::NotToHost) => {
                self.report.summary.not_to_host += 1;
                return;
            }
        }
        let summary = &mut self.report.summary;
        summary.probes += 1;
        *summary
            .probes_by_kind
            .entry(probe.kind.as_str())
            .or_default() += 1;
        let event = self.detector.observe(&probe);
        let tracker = self.detector.tracker();
        self.tallies.add(&probe, &event, |pairs| {
            tracker.pairs_at(probe.source, probe.at, pairs);
        });
        Self::record(&mut self.report, self.replay.kept, &event);
        on_event(&event);
    }

    fn record(report: &mut ReplayReport, kept: KeptEvents, event: &Event) {
        *report
            .summary
            .events_by_kind
            .entry(event.kind_str())
            .or_default() += 1;
        if kept.keeps(event) {
            report.events.push(*event);
        }
    }

    /// The summary so far (its `sources` are filled in by [`ReplaySession::finish`]).
    pub fn summary(&self) -> &ReplaySummary {
        &self.report.summary
    }

    /// Ends the replay: the kept events and the summary, with the alerting sources in the
    /// order of their first alert.
    pub fn finish(mut self) -> ReplayReport {
        self.report.summary.unlisted_alerts = self.tallies.unlisted_alerts;
        let mut sources: Vec<SourceReport> = self
            .tallies
            .into_alerted()
            .map(|(source, tally)| SourceReport {
                source,
                alerts: tally.alerts,
                probes: tally.probes,
                ports_probed: Ports::from_set(&tally.probed),
                ports_counted: Ports::from_set(&tally.counted),
                exact: tally.exact,
            })
            .collect();
        sources.sort_by_key(|s| (s.alerts.first().map(|a| a.probe.at), s.source));
        self.report.summary.sources = sources;
        self.report.summary.detector = self.detector.stats();
        self.report
    }
}

/// Distinct destination ports, per protocol, in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ports {
    /// TCP ports.
    pub tcp: Vec<u16>,
    /// UDP ports.
    pub udp: Vec<u16>,
}

impl Ports {
    fn from_set(set: &BTreeSet<(Protocol, u16)>) -> Self {
        let mut ports = Self::default();
        for &(protocol, port) in set {
            match protocol {
                Protocol::Tcp => ports.tcp.push(port),
                Protocol::Udp => ports.udp.push(port),
            }
        }
        ports
    }

    /// The number of distinct (protocol, port) pairs.
    pub fn len(&self) -> usize {
        self.tcp.len() + self.udp.len()
    }

    /// True when there is no port.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ports of `protocol`.
    pub fn of(&self, protocol: Protocol) -> &[u16] {
        match protocol {
            Protocol::Tcp => &self.tcp,
            Protocol::Udp => &self.udp,
        }
    }
}

/// One source that raised at least one alert during the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceReport {
    /// The source address.
    pub source: IpAddr,
    /// Its alerts, in order (one per `SCAN_WINDOW` at most: a replay is log only). Never
    /// empty. Each carries the protocol and kind of the probe that crossed the trigger, the
    /// mode, and the distinct ports counted up to then.
    pub alerts: Vec<Alert>,
    /// Its probes that reached the detector, of any kind, to any port.
    pub probes: u64,
    /// Every distinct port it probed in the whole capture, monitored or not (what the scan
    /// covered).
    pub ports_probed: Ports,
    /// The distinct ports the detector counted for it in the whole capture: monitored ports
    /// (listening ports excluded in the stealth and advanced modes), probe kinds that count.
    pub ports_counted: Ports,
    /// True when `probes`, `ports_probed` and `ports_counted` cover the whole capture. False
    /// when the source's record from before its first alert was forgotten (thousands of
    /// other sources came between its probes) or outgrew its 8 pairs: they then cover its
    /// probes from its first alert on, plus the pairs the detector counted towards that alert
    /// (and what the record kept).
    pub exact: bool,
}

/// Counts of a whole replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// Frames read.
    pub frames: u64,
    /// The capture time of the first frame.
    pub first_frame_at: Option<Timestamp>,
    /// The capture time of the last frame.
    pub last_frame_at: Option<Timestamp>,
    /// Probes that reached the detector.
    pub probes: u64,
    /// Those probes by kind ([`crate::ScanKind::as_str`]: `syn`, `fin`, ..., `other`).
    pub probes_by_kind: BTreeMap<&'static str, u64>,
    /// Frames that were no probe, by reason; with own addresses given, probes sent by the
    /// capture host count as [`Skip::Outgoing`].
    pub skips: SkipCounts,
    /// Probes addressed to none of the own addresses (only counted when they were given).
    pub not_to_host: u64,
    /// Events by kind ([`Event::kind_str`]: `alert`, `below_trigger`, `not_monitored`, ...).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// The sources that raised alerts, in the order of their first alert (at most
    /// [`ReplayBuilder::max_sources`]).
    pub sources: Vec<SourceReport>,
    /// Alerts of sources beyond [`ReplayBuilder::max_sources`] (counted in `events_by_kind`
    /// too, but not listed in `sources`).
    pub unlisted_alerts: u64,
    /// The detector's own counters at the end.
    pub detector: DetectorStats,
}

impl ReplaySummary {
    /// How many events of `kind` ([`Event::kind_str`]) there were.
    pub fn events(&self, kind: &str) -> u64 {
        self.events_by_kind.get(kind).copied().unwrap_or(0)
    }

    /// How many alerts there were.
    pub fn alerts(&self) -> u64 {
        self.events("alert")
    }

    /// The report of `source`, if it raised an alert.
    pub fn source(&self, source: IpAddr) -> Option<&SourceReport> {
        self.sources.iter().find(|s| s.source == source)
    }
}

/// The result of a replay: the kept events in order, and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// The events kept (see [`KeptEvents`]), in the order they happened.
    pub events: Vec<Event>,
    /// Counts of the whole replay.
    pub summary: ReplaySummary,
}

#[cfg(test)]
mod tests;
