//! The live engine: capture and connect sources → [`classify`] → [`Detector::observe`] →
//! responders on their own thread → block outcomes back into the detector and the
//! `BLOCKED_FILE`.
//!
//! The engine is the one place where the sans-IO pieces meet the system. It is driven by the
//! caller, one [`Engine::turn`] at a time, so that the caller (the CLI) owns the process-wide
//! concerns: signals, log sinks, the status file, the control socket.
//!
//! # One turn
//!
//! 1. Receive a batch of frames from the capture (stealth and advanced modes), classify each
//!    one (skips are counted, see [`EngineStatus::skips`]) and let the detector decide, on the
//!    engine's monotonic timeline (module `clock`: a step of the system clock changes no window,
//!    expiry, rate limit or timer). When an alert asks for a block, the journal
//!    (`BLOCKED_FILE`, with that block pending) is written *before* the alert goes to the
//!    [`Dispatcher`] (which never blocks); alerts refused by `MAX_BLOCKS`/`BLOCK_RATE` are
//!    counted and summarised (module `limits`); a blocked source's further probes are counted, with
//!    one "already blocked" line per block.
//! 2. Accept connections and datagrams on the connect-mode sockets (`tcp`, `udp`); after the
//!    detector has decided, `PORT_BANNER` is sent with an alert ([`Event::Alert`]) only, and
//!    at most once per source per `SCAN_WINDOW` ([`BannerGate`]): never to an ignored,
//!    protected, below-trigger, already-alerted or blocked source, so forged datagrams cannot
//!    make it an amplifier (PortSentry 1.2 and 2.0 answered every one, blocked hosts too).
//! 3. Take the responders' reports through the one block path
//!    ([`crate::block_outcome`]): a block that succeeded is recorded, a failed one dropped
//!    (the source can alert again), a release that reported leaves the journal; the journal
//!    is rewritten atomically (module `blocks`).
//! 4. Release expired blocks ([`Detector::expire`]): the release actions run on the
//!    responder thread, the journal says `releasing` until they reported. A release that
//!    finds the response queue full keeps its block and is tried again a second later, so no
//!    firewall entry is forgotten.
//! 5. Every [`EngineOptions::refresh_interval`] (10 s by default): re-read the listening ports
//!    (stealth and advanced modes skip ports a real service owns) and the host's own
//!    addresses, gateways and resolvers (the never-block list); a block of an address that
//!    became protected is released at once.
//! 6. Every `RECONCILE_INTERVAL` (and at start and after a reload): re-apply the block table
//!    to the firewall and remove what it does not know (module `reconcile`).
//!
//! An embedder adds its own responders with [`EngineOptions::extra`] (the Python binding's
//! `Sensor` does, for Python callables): they join the configured ones in the same fan-out,
//! so their outcomes take the same block path.
//!
//! At start the journal is read back: pending blocks are completed (re-applied, or undone
//! when that fails), unfinished releases run again. [`Engine::shutdown`] waits at most
//! `STOP_TIMEOUT` for queued actions and leaves the rest in the journal.
//!
//! # Never run commands from a file anyone may edit
//!
//! When [`permissions::check_config_files`] finds the configuration or ignore file writable
//! by anyone but root, the engine refuses to run `KILL_*` and `UNBLOCK_CMD` (they run as root):
//! detection and logging go on, every finding is reported as a [`Message`], and
//! [`EngineStatus::commands_enabled`] is false.
//!
//! # Reload
//!
//! [`Engine::reload`] applies a new configuration and ignore list without losing the block
//! table or (unless the tracker settings changed) the tracker: responders are rebuilt, the
//! connect-mode sockets rebound when the port lists changed, the capture reopened when its
//! filter must change. The old responders finish their queued jobs on their own thread
//! before the new ones start (the reload does not wait for them; their outcomes are recorded
//! on later turns). A new configuration that cannot be applied leaves the old one running.

mod blocks;
mod clock;
mod heard;
mod limits;
mod protect;
mod reconcile;
mod sources;
#[cfg(test)]
mod tests;

pub use sources::Sources;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::answers::AnswerStats;
use crate::banner_gate::BannerGate;
use crate::block_table::BlockRecord;
use crate::capture::{CaptureError, CaptureStats};
use crate::classify::SkipCounts;
use crate::config::Config;
use crate::connect::{ConnectError, Contact};
use crate::detector::{Detector, DetectorError, DetectorStats};
use crate::event::{Event, Release};
use crate::flood::{FloodCounts, FloodSummary, Verdict};
use crate::ignore::IgnoreList;
use crate::listening::{ListeningError, ListeningPorts};
use crate::mode::Mode;
use crate::permissions::{self, PermissionFinding};
use crate::respond::dispatch::{DispatchConfig, DispatchStats, Dispatcher};
use crate::respond::resolve::{self, Resolver};
use crate::respond::{self, Fanout, Responder, ResponderError};
use crate::tracker::Tracker;

use clock::Clock;
use limits::LimitLog;
use protect::HostFacts;

/// How many capture read errors in a row end the engine (a transient error is reported and
/// the engine goes on).
const MAX_CONSECUTIVE_CAPTURE_ERRORS: u32 = 50;
/// How long a capture read waits at most when connect-mode sockets must be served too.
const SHARED_WAIT: Duration = Duration::from_millis(50);
/// Frames a full batch holds (one `recvmmsg` call).
const FULL_BATCH: usize = 64;
/// After a partly filled batch, how long to let frames gather before reading again: at
/// moderate rates this turns one wake-up per frame into one per millisecond (the kernel's
/// 4 MiB queue holds far more than a millisecond of any rate); idle, the read blocks in
/// `poll`; flooded, batches are full and nothing waits.
const COALESCE: Duration = Duration::from_millis(1);
/// How long a release that found the response queue full waits before it is tried again.
const RELEASE_RETRY: Duration = Duration::from_secs(1);

/// Why the engine cannot start, reload or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No detection mode was given.
    #[error("no detection mode given (expected one or more of tcp, udp, stcp, sudp, atcp, audp)")]
    NoModes,
    /// The `AF_PACKET` capture could not be opened or read (for stealth and advanced modes).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Only connect modes are active and not one of their ports could be bound.
    #[error("connect mode: no port could be bound ({})", failures.join("; "))]
    NothingBound {
        /// Each port that failed, with the reason.
        failures: Vec<String>,
    },
    /// Waiting on the connect-mode sockets failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The detector could not be built from the configuration.
    #[error(transparent)]
    Detector(#[from] DetectorError),
    /// The responders could not be built (unusable `NFT_SET`, history file not writable...).
    #[error("cannot set up the responders: {0}")]
    Responders(#[source] ResponderError),
    /// The listening ports could not be read from /proc/net.
    #[error(transparent)]
    Listening(#[from] ListeningError),
    /// The `BLOCKED_FILE` exists but cannot be read.
    #[error("cannot read the block table: {0}")]
    BlockedFile(#[source] ResponderError),
    /// The responder thread could not be started.
    #[error("cannot start the responder thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// How serious a [`Message`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Normal operation: start, ports watched, reload, restored blocks.
    Info,
    /// Something is not as configured but the engine goes on (a port not bound, commands
    /// disabled by a permission finding).
    Warning,
    /// An action or a file operation failed.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A line for the administrator (PortSentry's `adminalert:` lines), produced by the engine
/// and written by the caller to its log sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// How serious.
    pub severity: Severity,
    /// The text, one line, without a prefix.
    pub text: String,
}

/// A configuration with everything it names already loaded, for [`Engine::start`] and
/// [`Engine::reload`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// The validated configuration, with its state paths resolved.
    pub config: Config,
    /// The ignore file's list, if the configuration names one that exists.
    pub ignore: Option<IgnoreList>,
    /// The configuration file (for the permission check); `None` for the built-in default.
    pub config_file: Option<PathBuf>,
}

/// Makes the log responder (called at start and at every reload, as the responders are
/// rebuilt then).
pub type LogFactory = Box<dyn FnMut() -> Box<dyn Responder> + Send>;

/// Makes an embedder's extra responders (called at start and at every reload, like
/// [`LogFactory`]). They join the configured ones in the same [`Fanout`] on the responder
/// thread, so their results take the one block path: a failed [`Role::Block`](respond::Role)
/// responder fails the block, a failed reporting one is reported as a [`Message`]. They are
/// never disarmed by a permission finding (they do not come from a file).
pub type ExtraResponders = Box<dyn FnMut() -> Vec<Box<dyn Responder>> + Send>;

/// Options of an [`Engine`] that do not come from the configuration file.
pub struct EngineOptions {
    /// Makes the log responder; `None` logs nothing but the history file.
    pub log: Option<LogFactory>,
    /// Makes extra responders (the Python binding's callables); `None`: none.
    pub extra: Option<ExtraResponders>,
    /// How often listening ports and host addresses are re-read (default 10 s).
    pub refresh_interval: Duration,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("log", &self.log.is_some())
            .field("extra", &self.extra.is_some())
            .field("refresh_interval", &self.refresh_interval)
            .finish()
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            log: None,
            extra: None,
            refresh_interval: Duration::from_secs(10),
        }
    }
}

/// A snapshot of the engine's state and counters, for `portsentry status`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EngineStatus {
    /// The active modes.
    pub modes: Vec<Mode>,
    /// How many ports each active mode monitors now.
    pub monitored: Vec<(Mode, usize)>,
    /// The current blocks.
    pub blocks: Vec<BlockRecord>,
    /// The detector's event counts and its tracker's and block table's counters.
    pub detector: DetectorStats,
    /// Frames the classifier skipped, per reason.
    pub skips: SkipCounts,
    /// The host's own answers: flows, replies skipped, alerts per port state.
    pub answers: AnswerStats,
    /// The capture's counters (kernel drops included), when a capture is open.
    pub capture: Option<CaptureStats>,
    /// Capture read errors so far.
    pub capture_errors: u64,
    /// The responder queues' counters.
    pub dispatch: DispatchStats,
    /// Connect-mode ports that could not be bound.
    pub bind_failures: Vec<String>,
    /// Connections accepted by the kernel but lost before `accept` (connect mode).
    pub accept_failures: u64,
    /// False when `KILL_*` commands are refused because of a permission finding.
    pub commands_enabled: bool,
    /// Repeats of known sources: counted, noticed, summarised (see [`crate::flood`]).
    pub floods: FloodCounts,
    /// Reconciliations run so far (at start, after reloads and every `RECONCILE_INTERVAL`).
    pub reconcile_runs: u64,
}

/// The live detector; see the [module docs](self).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use portsentry_core::engine::{Engine, EngineOptions, Settings, Sources};
/// use portsentry_core::{Config, Mode};
///
/// let mut config = Config::default();
/// config.resolve_state_paths(&portsentry_core::config::state_directory());
/// let sources = Sources::open(&[Mode::StealthTcp, Mode::StealthUdp], &config, None)?;
/// let settings = Settings { config, ignore: None, config_file: None };
/// let mut engine = Engine::start(sources, settings, EngineOptions::default())?;
/// for _ in 0..10 {
///     engine.turn(Duration::from_millis(100))?;
///     for message in engine.take_messages() {
///         eprintln!("{}: {}", message.severity.as_str(), message.text);
///     }
/// }
/// engine.shutdown();
/// # Ok::<(), portsentry_core::engine::EngineError>(())
/// ```
pub struct Engine {
    sources: Sources,
    detector: Detector,
    dispatcher: Option<Dispatcher>,
    /// Dispatchers replaced by a reload, finishing their queued jobs (never waited for).
    retiring: Vec<Dispatcher>,
    settings: Settings,
    /// The monotonic timeline every decision is made on.
    clock: Clock,
    /// The events of the current batch, handed to the responders together.
    events: Vec<Event>,
    /// Sources whose "already blocked" line was said since their block began.
    noticed: HashSet<IpAddr>,
    limit_log: LimitLog,
    /// When the next reconciliation is due; `None`: only at start and reload.
    next_reconcile: Option<Instant>,
    /// Reconciliations run so far.
    reconcile_runs: u64,
    options: EngineOptions,
    facts: HostFacts,
    listening: ListeningPorts,
    banner: Option<Vec<u8>>,
    banner_gate: BannerGate,
    commands_enabled: bool,
    contacts: Vec<Contact>,
    releases: Vec<Release>,
    skips: SkipCounts,
    /// The host's own answers (replies skipped, alerts held for their port state).
    heard: heard::Heard,
    capture_totals: Option<CaptureStats>,
    capture_errors: u64,
    consecutive_capture_errors: u32,
    last_refresh: Instant,
    messages: Vec<Message>,
    /// Repeats of known sources cost a counter here; summaries become messages.
    floods: FloodSummary,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("modes", &self.sources.modes())
            .field("blocks", &self.detector.blocks().count())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the detector for the sources' modes, restores the `BLOCKED_FILE`, starts the
    /// responder thread and reports (as [`Message`]s) what is watched.
    ///
    /// # Errors
    ///
    /// [`EngineError::Detector`] for out-of-range tracker settings,
    /// [`EngineError::Listening`] when /proc/net cannot be read, [`EngineError::Responders`]
    /// when a responder cannot be set up, [`EngineError::BlockedFile`] when the block table
    /// exists but cannot be read, [`EngineError::Thread`] when no thread can be started.
    pub fn start(
        sources: Sources,
        settings: Settings,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let mut messages = Vec::new();
        let (facts, problems) = HostFacts::read();
        messages.extend(problems.into_iter().map(warning));
        let listening = ListeningPorts::read()?;
        let detector = Detector::builder(&settings.config)
            .modes(sources.modes().iter().copied())
            .never_block(facts.never_block(settings.ignore.as_ref()))
            .listening(listening.tcp.clone(), listening.udp.clone())
            .build()?;
        let mut engine = Self {
            sources,
            detector,
            dispatcher: None,
            retiring: Vec::new(),
            clock: Clock::start(),
            events: Vec::new(),
            noticed: HashSet::new(),
            limit_log: LimitLog::new(),
            next_reconcile: None,
            reconcile_runs: 0,
            banner: banner_bytes(&settings.config),
            banner_gate: BannerGate::new(settings.config.scan_window),
            settings,
            options,
            facts,
            listening,
            commands_enabled: true,
            contacts: Vec::new(),
            releases: Vec::new(),
            skips: SkipCounts::new(),
            heard: heard::Heard::new(),
            capture_totals: None,
            capture_errors: 0,
            consecutive_capture_errors: 0,
            last_refresh: Instant::now(),
            messages,
            floods: FloodSummary::new(),
        };
        let (fanout, commands_enabled) = engine.build_responders(&engine.settings.clone())?;
        engine.commands_enabled = commands_enabled;
        // Commands a killed earlier run left behind must be over before its pending blocks
        // are completed or undone (module `respond::orphans`).
        let orphans = respond::orphans::end_orphaned_commands();
        if orphans > 0 {
            engine.messages.push(warning(format!(
                "ended {orphans} command process(es) left running by an earlier run that was \
                 killed; their blocks are completed or undone from the journal"
            )));
        }
        let (resumed, completing) = engine.restore_journal()?;
        engine.dispatcher = Some(spawn_dispatcher(fanout, &engine.settings.config, None)?);
        engine.refresh_filter();
        engine.report_watching();
        let now = engine.clock.now();
        for release in resumed {
            engine.submit_release(release, now);
        }
        engine.release_due(now);
        engine.reapply(completing);
        engine.reconcile();
        engine.write_blocked_file();
        Ok(engine)
    }

    /// Runs one turn (see the [module docs](self)), waiting at most `wait` for traffic.
    ///
    /// # Errors
    ///
    /// [`EngineError::Capture`] when the capture failed many times in a row (single
    /// failures are reported as messages); [`EngineError::Connect`] when waiting on the
    /// connect-mode sockets fails.
    pub fn turn(&mut self, wait: Duration) -> Result<(), EngineError> {
        // Wake up in time for an alert waiting for the host's answer.
        let wait = self.heard.wait_at_most(self.clock.now(), wait);
        let shared = self.sources.capture.is_some() && self.sources.connect.is_some();
        if self.sources.capture.is_some() {
            self.read_capture(if shared { wait.min(SHARED_WAIT) } else { wait })?;
        }
        if self.sources.connect.is_some() {
            self.serve_connect(if shared { Duration::ZERO } else { wait })?;
        }
        // Alerts whose answer came, or whose wait for it is over.
        self.heard.take_ready(self.clock.now(), &mut self.events);
        self.dispatch_events();
        self.take_reports();
        self.release_due(self.clock.now());
        if let Some(summary) = self.floods.due(self.clock.now()) {
            self.messages.push(info(summary.to_string()));
        }
        if self.last_refresh.elapsed() >= self.options.refresh_interval {
            self.refresh();
        }
        self.reconcile_if_due();
        if let Some(line) = self
            .limit_log
            .summary(Instant::now(), self.detector.limits())
        {
            self.messages.push(warning(line));
        }
        Ok(())
    }

    fn read_capture(&mut self, wait: Duration) -> Result<(), EngineError> {
        let probe_events = self.settings.config.probe_events_per_second > 0;
        let Self {
            sources,
            detector,
            skips,
            floods,
            events,
            clock,
            heard,
            ..
        } = self;
        let Some(capture) = sources.capture.as_mut() else {
            return Ok(());
        };
        let batch = match capture.recv_batch(wait) {
            Ok(batch) => batch,
            Err(error) => {
                self.capture_errors += 1;
                self.consecutive_capture_errors += 1;
                if self.consecutive_capture_errors >= MAX_CONSECUTIVE_CAPTURE_ERRORS {
                    return Err(error.into());
                }
                self.messages.push(error_message(error.to_string()));
                std::thread::sleep(wait.min(SHARED_WAIT));
                return Ok(());
            }
        };
        let mut frames = 0;
        // The kernel's timestamps follow the wall clock: the detector gets the timeline's.
        let at = clock.now();
        for frame in batch.iter() {
            frames += 1;
            // The host's own frames feed its answers; replies to its flows are skipped.
            let Some(probe) = heard.probe(&frame, at, skips) else {
                continue;
            };
            let event = detector.observe(&probe);
            // Repeats of known sources and mass log-only alerts cost a counter.
            let verdict = floods.absorb_event(&event);
            if wants_response(&event, probe_events) && verdict != Some(Verdict::Counted) {
                // An alert waits for the host's answer to its probe (its port state).
                heard.pass_on(event, events);
            }
        }
        self.consecutive_capture_errors = 0;
        self.dispatch_events();
        if (1..FULL_BATCH).contains(&frames) {
            std::thread::sleep(COALESCE);
        }
        Ok(())
    }

    fn serve_connect(&mut self, wait: Duration) -> Result<(), EngineError> {
        let Some(listener) = self.sources.connect.as_mut() else {
            return Ok(());
        };
        let taken = listener.wait(wait, &mut self.contacts)?;
        // As for the capture: after a few contacts, let more gather for a millisecond, so
        // that a datagram flood is read in batches rather than one wake-up per datagram.
        let coalesce = !wait.is_zero() && (1..FULL_BATCH).contains(&taken);
        for contact in self.contacts.drain(..) {
            let mut probe = contact.probe();
            probe.at = self.clock.now();
            let event = match self.detector.observe(&probe) {
                Event::Alert(alert) => Event::Alert(self.heard.connect_alert(alert)),
                event => event,
            };
            let alerted = matches!(event, Event::Alert(_));
            let probe_events = self.settings.config.probe_events_per_second > 0;
            let verdict = self.floods.absorb_event(&event);
            if wants_response(&event, probe_events) && verdict != Some(Verdict::Counted) {
                self.events.push(event);
            }
            // Only with an alert, once per source per window: never an amplifier.
            if let (true, Some(banner)) = (alerted, &self.banner)
                && self.banner_gate.admit(probe.source, probe.at)
            {
                // The peer may be gone already: nothing to report.
                let _ = contact.send_banner(banner);
            }
        }
        self.dispatch_events();
        if coalesce {
            std::thread::sleep(COALESCE);
        }
        Ok(())
    }

    /// Handles every report the responder threads have sent back (those of dispatchers
    /// retired by a reload first; a retired one that has finished its queue is joined).
    fn take_reports(&mut self) {
        let mut reports = Vec::new();
        let mut i = 0;
        while i < self.retiring.len() {
            if self.retiring[i].is_finished() {
                let (_, rest) = self.retiring.swap_remove(i).shutdown();
                reports.extend(rest);
            } else {
                reports.extend(self.retiring[i].drain());
                i += 1;
            }
        }
        if let Some(d) = &self.dispatcher {
            reports.extend(d.drain());
        }
        if !reports.is_empty() {
            self.handle_reports(reports);
        }
    }

    /// Re-reads the listening ports and the host's addresses now (also done every
    /// [`EngineOptions::refresh_interval`]).
    pub fn refresh(&mut self) {
        self.last_refresh = Instant::now();
        match ListeningPorts::read() {
            Ok(listening) if listening != self.listening => {
                self.detector
                    .set_listening(listening.tcp.clone(), listening.udp.clone());
                self.listening = listening;
                self.refresh_filter();
            }
            Ok(_) => {}
            Err(e) => self.messages.push(error_message(e.to_string())),
        }
        let (facts, problems) = HostFacts::read();
        self.messages.extend(problems.into_iter().map(warning));
        if facts != self.facts {
            self.detector
                .set_never_block(facts.never_block(self.settings.ignore.as_ref()));
            self.facts = facts;
            self.release_protected();
        }
    }

    /// Applies a new configuration and ignore list (SIGHUP), keeping blocks and tracker
    /// state (see [`Detector::reconfigure`]).
    ///
    /// # Errors
    ///
    /// [`EngineError::Responders`] when the new responders cannot be set up,
    /// [`EngineError::Thread`] when their thread cannot be started, or
    /// [`EngineError::Detector`] for out-of-range tracker settings: the old configuration
    /// then stays in force, untouched.
    pub fn reload(&mut self, settings: Settings) -> Result<(), EngineError> {
        let (fanout, commands_enabled) = self.build_responders(&settings)?;
        let c = &settings.config;
        Tracker::check(c.max_tracked_sources, c.scan_window, c.scan_trigger)
            .map_err(DetectorError::from)?;
        let dispatcher = spawn_dispatcher(fanout, &settings.config, self.dispatcher.as_ref())?;
        match self.detector.reconfigure(&settings.config) {
            Ok(true) => self.messages.push(info(
                "SCAN_TRIGGER, SCAN_WINDOW or MAX_TRACKED_SOURCES changed: the tracker starts afresh"
                    .to_owned(),
            )),
            Ok(false) => {}
            Err(e) => {
                // Not reached (the settings were checked above). Nothing was queued on the new
                // dispatcher: dropping it closes it.
                return Err(e.into());
            }
        }
        // The old responders finish their queued jobs on their own thread, then the new ones
        // start; the old reports are taken on later turns (a slow command must not stall
        // capture during a reload).
        if let Some(old) = self.dispatcher.replace(dispatcher) {
            old.close();
            self.retiring.push(old);
        }
        self.commands_enabled = commands_enabled;
        self.banner = banner_bytes(&settings.config);
        self.banner_gate.set_window(settings.config.scan_window);
        self.detector
            .set_never_block(self.facts.never_block(settings.ignore.as_ref()));
        self.settings = settings;
        if self.sources.bind_connect(&self.settings.config) {
            self.report_bind_failures();
        }
        match self.sources.refilter(self.settings.config.detect_ack_scans) {
            Ok(true) => self.capture_totals = None,
            Ok(false) => {}
            Err(e) => self.messages.push(error_message(format!(
                "cannot reopen the capture with the new filter, keeping the old one: {e}"
            ))),
        }
        self.refresh_filter();
        self.refresh();
        self.release_protected();
        self.report_watching();
        self.reconcile();
        self.write_blocked_file();
        Ok(())
    }

    /// True while the responders an earlier [`Engine::reload`] replaced are still finishing
    /// their queued jobs. A caller that reloads on a signal holds the next reload until this
    /// is false, so that signals coalesce (one reload at a time, at most one pending) and a
    /// burst of SIGHUPs during a slow command cannot pile up responder threads.
    pub fn reload_in_progress(&self) -> bool {
        !self.retiring.is_empty()
    }

    /// A snapshot of state and counters (reads the kernel's capture counters).
    pub fn status(&mut self) -> EngineStatus {
        if let Some(capture) = self.sources.capture.as_mut() {
            match capture.stats() {
                Ok(stats) => self.capture_totals = Some(stats),
                Err(e) => self.messages.push(error_message(e.to_string())),
            }
        }
        EngineStatus {
            modes: self.detector.modes().to_vec(),
            monitored: self
                .detector
                .modes()
                .iter()
                .map(|&m| {
                    let count = if m.is_connect() {
                        self.sources.bound_ports(m.protocol()).len()
                    } else {
                        self.detector.monitored_ports(m).map_or(0, |p| p.len())
                    };
                    (m, count)
                })
                .collect(),
            blocks: self
                .detector
                .blocks()
                .map(|r| r.map_times(|t| self.clock.wall_of(t)))
                .collect(),
            detector: self.detector.stats(),
            skips: self.skips,
            answers: self.heard.answers.stats(),
            capture: self.capture_totals,
            capture_errors: self.capture_errors,
            dispatch: self
                .dispatcher
                .as_ref()
                .map(Dispatcher::stats)
                .unwrap_or_default(),
            bind_failures: self
                .sources
                .bind_failures()
                .iter()
                .map(ToString::to_string)
                .collect(),
            accept_failures: self
                .sources
                .connect
                .as_ref()
                .map_or(0, |l| l.accept_failures()),
            commands_enabled: self.commands_enabled,
            floods: self.floods.counts(),
            reconcile_runs: self.reconcile_runs,
        }
    }

    /// The detector (read-only).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.settings.config
    }

    /// The messages produced since the last call, oldest first.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    /// Stops within `STOP_TIMEOUT`: the responder thread finishes the queued jobs it can in
    /// that time and their outcomes are recorded; jobs it could not run stay pending (or
    /// releasing) in the `BLOCKED_FILE`, which the next start completes. Returns the final
    /// status and the last messages.
    pub fn shutdown(mut self) -> (EngineStatus, Vec<Message>) {
        // Alerts still waiting for the host's answer go on now.
        self.heard.flush(self.clock.now(), &mut self.events);
        self.dispatch_events();
        let deadline = Instant::now() + self.settings.config.stop_timeout;
        let mut unfinished = 0;
        let dispatchers: Vec<Dispatcher> = std::mem::take(&mut self.retiring)
            .into_iter()
            .chain(self.dispatcher.take())
            .collect();
        for d in dispatchers {
            let (backlog, _) = d.backlog();
            let (reports, finished) =
                d.shutdown_within(deadline.saturating_duration_since(Instant::now()));
            self.handle_reports(reports);
            if !finished {
                unfinished += backlog.max(1);
            }
        }
        if unfinished > 0 {
            self.messages.push(warning(format!(
                "STOP_TIMEOUT ({} s) reached with about {unfinished} block action(s) not                  finished: they stay in the block table and are completed at the next start",
                self.settings.config.stop_timeout.as_secs()
            )));
        }
        self.write_blocked_file();
        let status = self.status();
        (status, self.take_messages())
    }

    /// Builds the fan-out for `settings` (see [`responders`]) and reports the permission
    /// findings; returns it with whether commands are enabled.
    fn build_responders(&mut self, settings: &Settings) -> Result<(Fanout, bool), EngineError> {
        let log = self.options.log.as_mut().map(|make| make());
        let (mut fanout, findings) = responders(settings, log).map_err(EngineError::Responders)?;
        if let Some(make) = self.options.extra.as_mut() {
            for responder in make() {
                fanout.push_boxed(responder);
            }
        }
        for finding in &findings {
            self.messages.push(warning(format!("{finding}")));
        }
        let c = &settings.config;
        let has_commands = c.kill_route.is_some()
            || c.kill_hosts_deny.is_some()
            || c.kill_run_cmd.is_some()
            || c.unblock_cmd.is_some();
        if !findings.is_empty() && has_commands {
            self.messages.push(warning(
                "KILL_ROUTE, KILL_HOSTS_DENY, KILL_RUN_CMD and UNBLOCK_CMD will not run until \
                 the files above are writable by root only; detection and logging go on"
                    .to_owned(),
            ));
        }
        Ok((fanout, findings.is_empty()))
    }

    /// Compiles the monitored ports into the capture filter (start, reload, listening ports
    /// changed); a refusal is reported and the old filter stays.
    fn refresh_filter(&mut self) {
        if let Some(capture) = self.sources.capture.as_mut()
            && let Err(e) = heard::refresh_filter(
                capture,
                &self.detector,
                &self.settings.config,
                &self.listening,
            )
        {
            self.messages.push(error_message(format!(
                "cannot attach the capture filter for the monitored ports, keeping the old one: {e}"
            )));
        }
    }

    fn report_bind_failures(&mut self) {
        let failures: Vec<String> = self
            .sources
            .bind_failures()
            .iter()
            .map(|f| format!("{f}: not monitored"))
            .collect();
        self.messages.extend(failures.into_iter().map(warning));
    }

    /// Says which ports each mode watches (PortSentry's "Going into ... listen mode" lines).
    fn report_watching(&mut self) {
        self.report_bind_failures();
        let modes = self.detector.modes().to_vec();
        for mode in modes {
            let ports = if mode.is_connect() {
                // Only the ports that could be bound are watched.
                self.sources.bound_ports(mode.protocol()).to_string()
            } else {
                self.detector
                    .monitored_ports(mode)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            };
            let how = match mode {
                Mode::Tcp | Mode::Udp => "listen mode (connect)",
                Mode::StealthTcp | Mode::StealthUdp => "stealth listen mode",
                Mode::AdvancedTcp | Mode::AdvancedUdp => "advanced stealth listen mode",
            };
            let ports = if ports.is_empty() {
                "no port".to_owned()
            } else {
                ports
            };
            self.messages.push(info(format!(
                "Going into {how} ({mode}) on {} port(s): {ports}",
                mode.protocol().as_upper_str()
            )));
        }
        if !self.commands_enabled {
            self.messages.push(warning(
                "blocking commands are disabled (see the permission findings above)".to_owned(),
            ));
        }
    }
}

/// The responders for `settings` ([`respond::from_config`] plus `log`), with the
/// permission findings of its files: when there is any, the configuration is
/// [disarmed](permissions::disarm) first: no `KILL_*` or `UNBLOCK_CMD` command, no nftables
/// set, no history file (they act as root, and anyone who can edit those files could choose
/// them).
///
/// # Errors
///
/// As [`respond::from_config`].
pub fn responders(
    settings: &Settings,
    log: Option<Box<dyn Responder>>,
) -> Result<(Fanout, Vec<PermissionFinding>), ResponderError> {
    let findings =
        permissions::check_config_files(settings.config_file.as_deref(), &settings.config);
    let mut config = settings.config.clone();
    if !findings.is_empty() {
        permissions::disarm(&mut config);
    }
    Ok((respond::from_config(&config, log)?, findings))
}

/// True for the events the responders (or the limit log) must hear about; with
/// `probe_events` (`PROBE_EVENTS`), also a source's first probe below the trigger.
fn wants_response(event: &Event, probe_events: bool) -> bool {
    match event {
        Event::Alert(_)
        | Event::Limited { .. }
        | Event::AlreadyBlocked(_)
        | Event::Ignored { .. } => true,
        Event::BelowTrigger {
            distinct_ports: 1, ..
        } => probe_events,
        _ => false,
    }
}

/// Starts the responder thread; with `previous`, its jobs run only once `previous` has
/// finished its own (see [`Dispatcher::spawn_after`]).
fn spawn_dispatcher(
    fanout: Fanout,
    config: &Config,
    previous: Option<&Dispatcher>,
) -> Result<Dispatcher, EngineError> {
    let config = DispatchConfig {
        resolver: config
            .resolve_host
            .then(|| Resolver::new(resolve::DEFAULT_TIMEOUT)),
        probe_events_per_second: config.probe_events_per_second,
        ..DispatchConfig::default()
    };
    match previous {
        Some(previous) => Dispatcher::spawn_after(fanout, config, previous),
        None => Dispatcher::spawn(fanout, config),
    }
    .map_err(EngineError::Thread)
}

fn banner_bytes(config: &Config) -> Option<Vec<u8>> {
    config
        .port_banner
        .as_ref()
        .filter(|b| !b.is_empty())
        .map(|b| format!("{b}\n").into_bytes())
}

fn aside_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".unreadable-{}", crate::capture::now().as_secs()));
    path.with_file_name(name)
}

fn info(text: String) -> Message {
    Message {
        severity: Severity::Info,
        text,
    }
}

fn warning(text: String) -> Message {
    Message {
        severity: Severity::Warning,
        text,
    }
}

fn error_message(text: String) -> Message {
    Message {
        severity: Severity::Error,
        text,
    }
}
