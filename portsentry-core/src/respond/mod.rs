//! Responders: what happens after the detector decided.
//!
//! The detector is pure: it turns probes into [`Event`](crate::Event)s. This module acts on
//! them. A [`Responder`] is pushed three kinds of things:
//!
//! * alerts ([`Responder::on_alert`]): a source crossed the trigger;
//! * releases ([`Responder::on_release`]): a block expired;
//! * notices ([`Responder::on_notice`]): everything worth a log line that is not an alert
//!   (an ignored source, an already-blocked source, a dropped job).
//!
//! Responders come in two [`Role`]s. **Blocking** responders (hosts.deny, route and command
//! actions, the nftables set) decide whether the host is recorded as blocked. **Reporting**
//! responders (log lines, the history file, most embedder closures) only tell the world; they
//! run after the blocking ones and see the combined result in [`AlertContext::block`], so a
//! log line can say "blocked" or "could not block".
//!
//! [`Fanout`] runs a list of responders in that order, one failing never stopping the others,
//! and returns an [`AlertReport`] with the per-responder results. [`dispatch`] runs a
//! [`Fanout`] on its own thread behind bounded queues so that capture never waits for it.
//!
//! Built-in responders:
//!
//! | Responder | Role | Module |
//! |---|---|---|
//! | [`Actions`] (`KILL_RUN_CMD`, `KILL_HOSTS_DENY`, `KILL_ROUTE`, `UNBLOCK_CMD`) | block | [`actions`] |
//! | [`NftSet`] (`NFT_SET`) | block | [`nft`] |
//! | `CrowdsecResponder` (`CROWDSEC_CREDENTIALS`, feature `crowdsec`) | block | `crowdsec` |
//! | [`LogResponder`] (1.2 `attackalert:`, 2.0 `Scan from:`, JSON lines) | report | [`log`] |
//! | [`HistoryResponder`] (`HISTORY_FILE`) | report | [`history`] |
//! | [`from_fn`] (closure adaptor) | either | here |
//!
//! # Examples
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use portsentry_core::respond::{self, AlertContext, Fanout, Outcome, BlockStatus};
//! use portsentry_core::{Alert, BlockMode, Mode, Probe, Protocol, ScanKind, Timestamp};
//!
//! let mut seen = Vec::new();
//! let mut fanout = Fanout::new();
//! fanout.push(respond::from_fn("collect", move |ctx: &AlertContext<'_>| {
//!     seen.push(ctx.alert.probe.source);
//!     Ok(Outcome::Reported)
//! }));
//! let probe = Probe {
//!     at: Timestamp::from_secs(1_700_000_000),
//!     source: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
//!     destination: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
//!     protocol: Protocol::Tcp,
//!     source_port: 40000,
//!     destination_port: 11,
//!     kind: ScanKind::Syn,
//!     ip_options: false,
//! };
//! let alert = Alert { probe, mode: Mode::StealthTcp, distinct_ports: 1, response: BlockMode::LogOnly };
//! let report = fanout.handle_alert(&alert, None);
//! assert_eq!(report.block, BlockStatus::NotRequested);
//! assert!(report.responders[0].result.is_ok());
//! ```

use std::fmt;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use crate::block_table::BlockRecord;
use crate::config::BlockMode;
use crate::event::{Alert, IgnoreReason, Release};
use crate::probe::{Probe, Protocol, ScanKind, Timestamp};

pub mod actions;
pub mod blocked_file;
pub mod command;
#[cfg(feature = "crowdsec")]
pub mod crowdsec;
pub mod dispatch;
pub mod history;
pub mod hosts_deny;
pub mod log;
pub mod nft;
pub(crate) mod orphans;
pub mod probe_events;
pub mod resolve;
mod timefmt;

pub use actions::Actions;
pub use history::HistoryResponder;
pub use hosts_deny::HostsDeny;
pub use log::{LogResponder, LogStyle};
pub use nft::NftSet;

/// Whether a responder's success decides if a host counts as blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Blocks the host (firewall, hosts.deny, commands). A host is recorded as blocked only
    /// when every blocking responder that acted succeeded.
    Block,
    /// Only reports (log lines, history). Runs after the blocking responders and sees their
    /// combined result; its failure never changes whether the host is blocked.
    Report,
}

/// One action a blocking responder carried out (or tried to), for log lines and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which action.
    pub action: Action,
    /// What was done, with tokens substituted: the command line, the hosts.deny line, the set.
    pub detail: String,
    /// `None` when the action succeeded, otherwise the error message.
    pub error: Option<String>,
}

impl Step {
    /// True when the action succeeded.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The kinds of action a [`Step`] records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `KILL_HOSTS_DENY`: a line appended to hosts.deny.
    HostsDeny,
    /// `KILL_ROUTE`: a shell command that drops the route (or firewalls the host).
    Route,
    /// `KILL_RUN_CMD`: an arbitrary shell command.
    RunCommand,
    /// `NFT_SET`: the address added to an nftables set.
    Nft,
    /// Release: the hosts.deny line removed.
    HostsDenyRemove,
    /// Release: `UNBLOCK_CMD` run.
    Unblock,
    /// Release: the address removed from the nftables set.
    NftRemove,
    /// An action of an embedder's responder, named by it.
    Custom(String),
}

impl Action {
    /// A short stable name, used in JSON lines: `hosts_deny`, `route`, `run_command`, `nft`,
    /// `hosts_deny_remove`, `unblock`, `nft_remove`, or the custom name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::HostsDeny => "hosts_deny",
            Self::Route => "route",
            Self::RunCommand => "run_command",
            Self::Nft => "nft",
            Self::HostsDenyRemove => "hosts_deny_remove",
            Self::Unblock => "unblock",
            Self::NftRemove => "nft_remove",
            Self::Custom(name) => name,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a responder did with one alert or release (its success value).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A reporting responder did its job (wrote the line, called the callback).
    Reported,
    /// A blocking responder did nothing for this alert, as configured (`BLOCK_x=0`, or no
    /// action of this responder applies to the alert's block mode).
    Skipped,
    /// A blocking responder ran its actions and every one of them succeeded.
    Acted(Vec<Step>),
}

/// The combined result of the blocking responders for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockStatus {
    /// The blocking responders have not run yet (what blocking responders themselves see).
    Pending,
    /// No blocking responder acted (`BLOCK_x=0`, or none configured): nothing is recorded as
    /// blocked.
    NotRequested,
    /// At least one blocking action ran and every action that ran succeeded: record the host
    /// as blocked.
    Blocked,
    /// At least one blocking action failed (or a blocking job was dropped): do not record the
    /// host as blocked; a later probe will alert and try again.
    Failed,
}

impl BlockStatus {
    /// A short stable name: `pending`, `not_requested`, `blocked`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::NotRequested => "not_requested",
            Self::Blocked => "blocked",
            Self::Failed => "failed",
        }
    }
}

/// What a responder is given for one alert.
#[derive(Debug, Clone, Copy)]
pub struct AlertContext<'a> {
    /// The alert.
    pub alert: &'a Alert,
    /// The source's resolved name, for display only (`RESOLVE_HOST`); never put it in a
    /// command: PTR records are chosen by the attacker.
    pub host_name: Option<&'a str>,
    /// The combined result of the blocking responders: [`BlockStatus::Pending`] while they
    /// run, the final status when reporting responders run.
    pub block: BlockStatus,
    /// The steps the blocking responders took (empty while they run).
    pub steps: &'a [Step],
}

/// What a responder is given for one release.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseContext<'a> {
    /// The release.
    pub release: &'a Release,
    /// The address's resolved name, for display only.
    pub host_name: Option<&'a str>,
    /// The steps the blocking responders took to undo the block (empty while they run).
    pub steps: &'a [Step],
}

/// What a blocking responder is given to re-apply a block that the block table holds
/// (reconciliation: at start, after a reload, on `RECONCILE_INTERVAL`).
#[derive(Debug, Clone, Copy)]
pub struct ReapplyContext<'a> {
    /// The block, its times on the wall clock.
    pub record: &'a BlockRecord,
    /// How long the block has left (`None`: forever), for actions with their own timeout.
    pub remaining: Option<Duration>,
    /// An alert standing for the block (source, mode, port, the configured response), for
    /// responders that re-apply by blocking again.
    pub alert: &'a Alert,
    /// The release of the block, for responders that first undo what may be left.
    pub release: &'a Release,
}

impl ReapplyContext<'_> {
    /// The alert and release standing for `record` at `now` with `response`, as
    /// [`ReapplyContext::alert`] and [`ReapplyContext::release`] expect them.
    pub fn parts(record: &BlockRecord, response: BlockMode, now: Timestamp) -> (Alert, Release) {
        let protocol = record.mode.protocol();
        let kind = match (record.mode.is_connect(), protocol) {
            (true, _) => ScanKind::Connect,
            (false, Protocol::Udp) => ScanKind::Udp,
            (false, Protocol::Tcp) => ScanKind::Syn,
        };
        let unspecified = match record.address {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        let alert = Alert {
            probe: Probe {
                at: now,
                source: record.address,
                destination: unspecified,
                protocol,
                source_port: 0,
                destination_port: record.port,
                kind,
                ip_options: false,
            },
            mode: record.mode,
            distinct_ports: 1,
            response,
        };
        (alert, record.release_at(now))
    }
}

/// Something worth reporting that is neither an alert nor a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice<'a> {
    /// A probe from a protected source (never counted, never blocked).
    Ignored {
        /// The probe.
        probe: &'a Probe,
        /// Why the source is protected.
        reason: IgnoreReason,
        /// The resolved name, for display only.
        host_name: Option<&'a str>,
    },
    /// A source's first probe below the trigger, forwarded for fleet-wide correlation
    /// (`PROBE_EVENTS`, see [`probe_events`]).
    Probe {
        /// The probe.
        probe: &'a Probe,
    },
    /// A probe from a source that is already blocked.
    AlreadyBlocked {
        /// The probe.
        probe: &'a Probe,
        /// The resolved name, for display only.
        host_name: Option<&'a str>,
    },
    /// Jobs were dropped because the dispatch queues were full (see [`dispatch`]).
    Dropped {
        /// When the drops were noticed (wall clock of the dispatcher).
        at: crate::probe::Timestamp,
        /// Alerts dropped (each was reported back as a failed block).
        alerts: u64,
        /// Releases dropped.
        releases: u64,
        /// Notices dropped.
        notices: u64,
    },
}

/// Errors a responder can report. New variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponderError {
    /// A file could not be read, written or synced (history, hosts.deny, blocked file).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing to a log sink failed.
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    /// A command could not be started at all (fork/exec of `/bin/sh` or `nft` failed).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully (a missing program is exit status 127).
    #[error("command `{command}` failed ({status}){}", stderr_suffix(stderr))]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it ended, e.g. `exit status: 127`.
        status: String,
        /// What it wrote to stderr (trimmed, truncated).
        stderr: String,
    },
    /// A command did not finish within its time limit; its process group was killed.
    #[error("command `{command}` timed out after {timeout:?} and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// A file this responder must edit is unsafe to write: a symlink, world-writable, not
    /// a regular file.
    #[error("refusing to write {path}: {reason}")]
    UnsafeFile {
        /// The file.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The configuration given to a responder's constructor is unusable (e.g. a malformed
    /// `NFT_SET`, a template without `$TARGET$`).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// At least one step of a blocking responder failed; `steps` lists every step that ran,
    /// the failed ones with their error.
    #[error("{}", block_failed_message(steps))]
    BlockFailed {
        /// Every step that ran, in order.
        steps: Vec<Step>,
    },
    /// The responder panicked; the panic was caught and the responder stays in place.
    #[error("responder panicked: {0}")]
    Panicked(String),
    /// The job never reached the responder: the dispatch queue was full.
    #[error("dropped: the response queue was full")]
    Dropped,
    /// Any other failure, from an embedder's responder.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

fn block_failed_message(steps: &[Step]) -> String {
    let failed: Vec<String> = steps
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.action)))
        .collect();
    format!(
        "{} of {} blocking steps failed: {}",
        failed.len(),
        steps.len(),
        failed.join("; ")
    )
}

impl ResponderError {
    /// Wraps any error of an embedder's responder.
    pub fn other<E>(error: E) -> Self
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Self::Other(error.into())
    }

    /// The steps recorded in a [`ResponderError::BlockFailed`], empty for other errors.
    pub fn steps(&self) -> &[Step] {
        match self {
            Self::BlockFailed { steps } => steps,
            _ => &[],
        }
    }
}

/// Something that acts on alerts and releases: logs, firewalls, scripts, callbacks.
///
/// Push model: a driver (a [`Fanout`], usually inside a [`dispatch::Dispatcher`]) calls it
/// for each alert, release and notice, in order, from one thread. `&mut self` + `Send`: one
/// owner, no locks. Slow work is fine (dispatch runs responders off the capture thread), but
/// every wait must be bounded (commands have a timeout).
///
/// Blocking responders return [`Outcome::Acted`] with their steps when every step
/// succeeded, [`Outcome::Skipped`] when the alert's [`BlockMode`] asks
/// nothing of them, and an error (usually [`ResponderError::BlockFailed`]) otherwise.
/// Reporting responders return [`Outcome::Reported`].
pub trait Responder: Send {
    /// A short name for logs and reports, e.g. `"nft"`.
    fn name(&self) -> &str;

    /// Whether this responder's result decides if the host counts as blocked.
    fn role(&self) -> Role {
        Role::Report
    }

    /// Handles one alert.
    ///
    /// # Errors
    ///
    /// Any [`ResponderError`]; for a blocking responder an error means "not blocked".
    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError>;

    /// Handles one release (a block expired). Default: nothing to undo.
    ///
    /// # Errors
    ///
    /// Any [`ResponderError`]; it is reported, the release still happens.
    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        let _ = ctx;
        Ok(Outcome::Skipped)
    }

    /// Re-applies a block the block table holds (a blocking responder's part of
    /// reconciliation: after a crash, a reboot or a firewall flush the entry may be gone, or
    /// half made). Called only on [`Role::Block`] responders.
    ///
    /// Default, for actions that cannot be queried: run the release actions
    /// ([`Responder::on_release`]) and ignore their result (there may be nothing to undo),
    /// then the blocking actions ([`Responder::on_alert`]) with [`BlockStatus::Pending`].
    /// Commands should therefore be idempotent, or at least tolerate running again after
    /// their undo.
    ///
    /// # Errors
    ///
    /// As [`Responder::on_alert`]: an error means the block is not in force now.
    fn on_reapply(&mut self, ctx: &ReapplyContext<'_>) -> Result<Outcome, ResponderError> {
        let _ = self.on_release(&ReleaseContext {
            release: ctx.release,
            host_name: None,
            steps: &[],
        });
        self.on_alert(&AlertContext {
            alert: ctx.alert,
            host_name: None,
            block: BlockStatus::Pending,
            steps: &[],
        })
    }

    /// Removes the entries this responder made for addresses that `keep` refuses (the
    /// block table does not know them: a block of an older version, a hand-made entry in
    /// portsentry's own set). Called only on [`Role::Block`] responders, during
    /// reconciliation. Default: nothing (commands cannot be queried).
    ///
    /// # Errors
    ///
    /// Any [`ResponderError`]; it is reported.
    fn prune(&mut self, keep: &dyn Fn(IpAddr) -> bool) -> Result<Vec<Step>, ResponderError> {
        let _ = keep;
        Ok(Vec::new())
    }

    /// Handles a notice (ignored source, already-blocked source, dropped jobs). Default:
    /// nothing.
    ///
    /// # Errors
    ///
    /// Any [`ResponderError`]; it is reported and otherwise ignored.
    fn on_notice(&mut self, notice: &Notice<'_>) -> Result<(), ResponderError> {
        let _ = notice;
        Ok(())
    }

    /// Flushes buffered state (at reload and shutdown). Default: nothing.
    ///
    /// # Errors
    ///
    /// Any [`ResponderError`].
    fn flush(&mut self) -> Result<(), ResponderError> {
        Ok(())
    }
}

impl<R: Responder + ?Sized> Responder for Box<R> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn role(&self) -> Role {
        (**self).role()
    }
    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        (**self).on_alert(ctx)
    }
    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        (**self).on_release(ctx)
    }
    fn on_reapply(&mut self, ctx: &ReapplyContext<'_>) -> Result<Outcome, ResponderError> {
        (**self).on_reapply(ctx)
    }
    fn prune(&mut self, keep: &dyn Fn(IpAddr) -> bool) -> Result<Vec<Step>, ResponderError> {
        (**self).prune(keep)
    }
    fn on_notice(&mut self, notice: &Notice<'_>) -> Result<(), ResponderError> {
        (**self).on_notice(notice)
    }
    fn flush(&mut self) -> Result<(), ResponderError> {
        (**self).flush()
    }
}

/// A responder made from a closure; see [`from_fn`].
pub struct FnResponder<F> {
    name: String,
    role: Role,
    f: F,
}

impl<F> fmt::Debug for FnResponder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnResponder")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<F> FnResponder<F> {
    /// Makes this a blocking responder: its result then decides whether the host counts as
    /// blocked (return [`Outcome::Acted`] on success).
    #[must_use]
    pub fn blocking(mut self) -> Self {
        self.role = Role::Block;
        self
    }
}

/// Turns a closure into a reporting [`Responder`] that is called for every alert.
///
/// Call [`FnResponder::blocking`] on the result to make it a blocking responder.
///
/// # Examples
///
/// ```
/// use portsentry_core::respond::{self, Outcome, Responder, Role};
/// let r = respond::from_fn("chat", |ctx: &respond::AlertContext<'_>| {
///     let _ = ctx.alert.probe.source; // post it somewhere
///     Ok(Outcome::Reported)
/// });
/// assert_eq!(r.name(), "chat");
/// assert_eq!(r.role(), Role::Report);
/// ```
pub fn from_fn<F>(name: impl Into<String>, f: F) -> FnResponder<F>
where
    F: FnMut(&AlertContext<'_>) -> Result<Outcome, ResponderError> + Send,
{
    FnResponder {
        name: name.into(),
        role: Role::Report,
        f,
    }
}

impl<F> Responder for FnResponder<F>
where
    F: FnMut(&AlertContext<'_>) -> Result<Outcome, ResponderError> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn role(&self) -> Role {
        self.role
    }
    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        (self.f)(ctx)
    }
}

/// One responder's result inside an [`AlertReport`] or [`ReleaseReport`].
#[derive(Debug)]
pub struct ResponderReport {
    /// The responder's [`Responder::name`].
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What it returned.
    pub result: Result<Outcome, ResponderError>,
}

/// Everything that happened for one alert.
#[derive(Debug)]
pub struct AlertReport {
    /// The alert.
    pub alert: Alert,
    /// The name it was displayed with, if resolved.
    pub host_name: Option<String>,
    /// The combined blocking result: call the detector's `record_block` on
    /// [`BlockStatus::Blocked`] and `record_block_failed` on [`BlockStatus::Failed`].
    pub block: BlockStatus,
    /// Every step the blocking responders took, in order.
    pub steps: Vec<Step>,
    /// Each responder's result, blocking responders first, then reporting ones.
    pub responders: Vec<ResponderReport>,
}

/// Everything that happened when one block was re-applied.
#[derive(Debug)]
pub struct ReapplyReport {
    /// The block.
    pub record: BlockRecord,
    /// The combined result of the blocking responders ([`BlockStatus::Blocked`]: in force;
    /// [`BlockStatus::NotRequested`]: no responder applies to it now).
    pub block: BlockStatus,
    /// Every step taken, in order.
    pub steps: Vec<Step>,
    /// Each blocking responder's result.
    pub responders: Vec<ResponderReport>,
}

/// Everything that happened for one release.
#[derive(Debug)]
pub struct ReleaseReport {
    /// The release.
    pub release: Release,
    /// Every step the blocking responders took to undo the block.
    pub steps: Vec<Step>,
    /// Each responder's result.
    pub responders: Vec<ResponderReport>,
}

/// Runs several responders: blocking ones first (in the order added), then reporting ones
/// (in the order added). One failing (or panicking) never stops the others.
#[derive(Default)]
pub struct Fanout {
    responders: Vec<Box<dyn Responder>>,
}

impl fmt::Debug for Fanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.responders.iter().map(|r| r.name().to_owned()))
            .finish()
    }
}

fn guarded<T>(
    name: &str,
    f: impl FnOnce() -> Result<T, ResponderError>,
) -> Result<T, ResponderError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(ResponderError::Panicked(format!("{name}: {message}")))
        }
    }
}

/// Folds blocking results into one status: blocked only if something acted and nothing failed.
fn combine(results: &[ResponderReport]) -> BlockStatus {
    let mut acted = false;
    for r in results.iter().filter(|r| r.role == Role::Block) {
        match &r.result {
            Err(_) => return BlockStatus::Failed,
            Ok(Outcome::Acted(_)) => acted = true,
            Ok(_) => {}
        }
    }
    if acted {
        BlockStatus::Blocked
    } else {
        BlockStatus::NotRequested
    }
}

fn collect_steps(reports: &[ResponderReport]) -> Vec<Step> {
    let mut steps = Vec::new();
    for r in reports {
        match &r.result {
            Ok(Outcome::Acted(s)) => steps.extend(s.iter().cloned()),
            Err(ResponderError::BlockFailed { steps: s }) => steps.extend(s.iter().cloned()),
            Err(e) => steps.push(Step {
                action: Action::Custom(r.name.clone()),
                detail: String::new(),
                error: Some(e.to_string()),
            }),
            Ok(_) => {}
        }
    }
    steps
}

impl Fanout {
    /// Runs `call` on every responder of `role`, in order, each guarded against panics,
    /// appending one report per responder.
    fn run_role(
        &mut self,
        role: Role,
        reports: &mut Vec<ResponderReport>,
        mut call: impl FnMut(&mut dyn Responder) -> Result<Outcome, ResponderError>,
    ) {
        for r in self.responders.iter_mut().filter(|r| r.role() == role) {
            let name = r.name().to_owned();
            let result = guarded(&name, || call(r.as_mut()));
            reports.push(ResponderReport { name, role, result });
        }
    }

    /// An empty fan-out.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a responder.
    pub fn push(&mut self, responder: impl Responder + 'static) {
        self.responders.push(Box::new(responder));
    }

    /// Adds a boxed responder.
    pub fn push_boxed(&mut self, responder: Box<dyn Responder>) {
        self.responders.push(responder);
    }

    /// Adds a responder, builder style.
    #[must_use]
    pub fn with(mut self, responder: impl Responder + 'static) -> Self {
        self.push(responder);
        self
    }

    /// How many responders there are.
    pub fn len(&self) -> usize {
        self.responders.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.responders.is_empty()
    }

    /// The responders' names, in the order they were added.
    pub fn names(&self) -> Vec<&str> {
        self.responders.iter().map(|r| r.name()).collect()
    }

    /// Runs every responder for one alert: blocking responders first, then reporting ones
    /// with the combined [`BlockStatus`] and the steps taken.
    pub fn handle_alert(&mut self, alert: &Alert, host_name: Option<&str>) -> AlertReport {
        let mut reports = Vec::with_capacity(self.responders.len());
        let pending = AlertContext {
            alert,
            host_name,
            block: BlockStatus::Pending,
            steps: &[],
        };
        self.run_role(Role::Block, &mut reports, |r| r.on_alert(&pending));
        let block = combine(&reports);
        let steps = collect_steps(&reports);
        let done = AlertContext {
            alert,
            host_name,
            block,
            steps: &steps,
        };
        self.run_role(Role::Report, &mut reports, |r| r.on_alert(&done));
        AlertReport {
            alert: *alert,
            host_name: host_name.map(str::to_owned),
            block,
            steps,
            responders: reports,
        }
    }

    /// Runs every responder for one release: blocking responders first (they undo the
    /// block), then reporting ones with the steps taken.
    pub fn handle_release(&mut self, release: &Release, host_name: Option<&str>) -> ReleaseReport {
        let mut reports = Vec::with_capacity(self.responders.len());
        let pending = ReleaseContext {
            release,
            host_name,
            steps: &[],
        };
        self.run_role(Role::Block, &mut reports, |r| r.on_release(&pending));
        let steps = collect_steps(&reports);
        let done = ReleaseContext {
            release,
            host_name,
            steps: &steps,
        };
        self.run_role(Role::Report, &mut reports, |r| r.on_release(&done));
        ReleaseReport {
            release: *release,
            steps,
            responders: reports,
        }
    }

    /// Re-applies `record` (wall-clock times) at `now` on every blocking responder (see
    /// [`Responder::on_reapply`]); reporting responders are not called: a block is logged
    /// and written to the history once, when it is made.
    pub fn handle_reapply(
        &mut self,
        record: &BlockRecord,
        response: BlockMode,
        now: Timestamp,
    ) -> ReapplyReport {
        let (alert, release) = ReapplyContext::parts(record, response, now);
        let ctx = ReapplyContext {
            record,
            remaining: record.remaining(now),
            alert: &alert,
            release: &release,
        };
        let mut reports = Vec::new();
        self.run_role(Role::Block, &mut reports, |r| r.on_reapply(&ctx));
        ReapplyReport {
            record: *record,
            block: combine(&reports),
            steps: collect_steps(&reports),
            responders: reports,
        }
    }

    /// Removes, on every blocking responder, the entries of addresses not in `keep` (sorted);
    /// returns the steps taken and the errors, by responder name.
    pub fn prune(&mut self, keep: &[IpAddr]) -> (Vec<Step>, Vec<(String, ResponderError)>) {
        let known = |address: IpAddr| keep.binary_search(&address.to_canonical()).is_ok();
        let mut steps = Vec::new();
        let mut errors = Vec::new();
        for r in self
            .responders
            .iter_mut()
            .filter(|r| r.role() == Role::Block)
        {
            let name = r.name().to_owned();
            match guarded(&name, || r.prune(&known)) {
                Ok(taken) => steps.extend(taken),
                Err(e) => errors.push((name, e)),
            }
        }
        (steps, errors)
    }

    /// Passes a notice to every responder; returns the errors, by responder name.
    pub fn handle_notice(&mut self, notice: &Notice<'_>) -> Vec<(String, ResponderError)> {
        let mut errors = Vec::new();
        for r in &mut self.responders {
            let name = r.name().to_owned();
            if let Err(e) = guarded(&name, || r.on_notice(notice)) {
                errors.push((name, e));
            }
        }
        errors
    }

    /// Flushes every responder; returns the errors, by responder name.
    pub fn flush(&mut self) -> Vec<(String, ResponderError)> {
        let mut errors = Vec::new();
        for r in &mut self.responders {
            let name = r.name().to_owned();
            if let Err(e) = guarded(&name, || r.flush()) {
                errors.push((name, e));
            }
        }
        errors
    }
}

/// The text of an address as commands and log lines show it: IPv4 dotted quad, IPv6 in its
/// canonical (RFC 5952) form, and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as IPv4.
///
/// # Examples
///
/// ```
/// use portsentry_core::respond::address_text;
/// assert_eq!(address_text("::ffff:203.0.113.9".parse().unwrap()), "203.0.113.9");
/// assert_eq!(address_text("2001:db8:0:0:0:0:0:1".parse().unwrap()), "2001:db8::1");
/// ```
pub fn address_text(address: IpAddr) -> String {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Builds the standard responder set from a [`Config`](crate::Config): the PortSentry
/// [`Actions`] (when any `KILL_*`/`UNBLOCK_CMD` is set), the [`NftSet`] (when `NFT_SET` is
/// set), the CrowdSec responder (when `CROWDSEC_CREDENTIALS` is set) and the
/// [`HistoryResponder`] (when `HISTORY_FILE` is set), plus `log` if given.
///
/// # Errors
///
/// [`ResponderError::Config`] for an unusable `NFT_SET`, template or credentials file, [`ResponderError::Io`]
/// when the history file cannot be opened.
pub fn from_config(
    config: &crate::Config,
    log: Option<Box<dyn Responder>>,
) -> Result<Fanout, ResponderError> {
    let mut fanout = Fanout::new();
    let actions = Actions::from_config(config)?;
    if !actions.is_empty() {
        fanout.push(actions);
    }
    if let Some(nft) = NftSet::from_config(config)? {
        fanout.push(nft);
    }
    push_crowdsec(&mut fanout, config)?;
    if let Some(history) = HistoryResponder::from_config(config)? {
        fanout.push(history);
    }
    if let Some(log) = log {
        fanout.push_boxed(log);
    }
    Ok(fanout)
}

/// Adds the CrowdSec responder when `CROWDSEC_CREDENTIALS` is set.
#[cfg(feature = "crowdsec")]
fn push_crowdsec(fanout: &mut Fanout, config: &crate::Config) -> Result<(), ResponderError> {
    if let Some(crowdsec) = crowdsec::CrowdsecResponder::from_config(config)? {
        fanout.push(crowdsec);
    }
    Ok(())
}

/// Without the `crowdsec` feature, `CROWDSEC_CREDENTIALS` cannot be honoured: an error, so
/// that no block is silently kept from the fleet.
#[cfg(not(feature = "crowdsec"))]
fn push_crowdsec(_fanout: &mut Fanout, config: &crate::Config) -> Result<(), ResponderError> {
    match &config.crowdsec_credentials {
        Some(_) => Err(ResponderError::Config(
            "CROWDSEC_CREDENTIALS is set but this build has no CrowdSec support (feature \
             `crowdsec`)"
                .into(),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::net::IpAddr;

    use crate::config::BlockMode;
    use crate::event::Alert;
    use crate::mode::Mode;
    use crate::probe::{Probe, Protocol, ScanKind, Timestamp};

    /// A probe from `source` to port `port` at 2026-11-24T22:13:06Z.
    pub(crate) fn probe(source: &str, port: u16, kind: ScanKind) -> Probe {
        let protocol = if kind == ScanKind::Udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        Probe {
            at: Timestamp::from_secs_nanos(1_795_558_386, 940_000_000),
            source: source.parse::<IpAddr>().unwrap(),
            destination: "198.51.100.1".parse().unwrap(),
            protocol,
            source_port: 40_000,
            destination_port: port,
            kind,
            ip_options: false,
        }
    }

    pub(crate) fn alert(source: &str, port: u16, mode: Mode, response: BlockMode) -> Alert {
        let kind = match mode {
            Mode::Tcp | Mode::Udp => ScanKind::Connect,
            Mode::StealthUdp | Mode::AdvancedUdp => ScanKind::Udp,
            _ => ScanKind::Syn,
        };
        let mut probe = probe(source, port, kind);
        probe.protocol = mode.protocol();
        Alert {
            probe,
            mode,
            distinct_ports: 1,
            response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::alert;
    use super::*;
    use crate::config::BlockMode;
    use crate::mode::Mode;
    use std::sync::{Arc, Mutex};

    fn step(action: Action, error: Option<&str>) -> Step {
        Step {
            action,
            detail: "x".into(),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn fanout_runs_blockers_first_and_reporters_see_result() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let o1 = Arc::clone(&order);
        let o2 = Arc::clone(&order);
        let o3 = Arc::clone(&order);
        let mut fanout = Fanout::new()
            .with(from_fn("report", move |ctx: &AlertContext<'_>| {
                o1.lock().unwrap().push(format!("report:{:?}", ctx.block));
                Ok(Outcome::Reported)
            }))
            .with(
                from_fn("block-ok", move |_: &AlertContext<'_>| {
                    o2.lock().unwrap().push("block-ok".to_owned());
                    Ok(Outcome::Acted(vec![step(Action::Route, None)]))
                })
                .blocking(),
            )
            .with(
                from_fn("block-fail", move |ctx: &AlertContext<'_>| {
                    assert_eq!(ctx.block, BlockStatus::Pending);
                    o3.lock().unwrap().push("block-fail".to_owned());
                    Err(ResponderError::BlockFailed {
                        steps: vec![step(Action::RunCommand, Some("exit 1"))],
                    })
                })
                .blocking(),
            );
        let a = alert("203.0.113.1", 11, Mode::StealthTcp, BlockMode::Block);
        let report = fanout.handle_alert(&a, None);
        assert_eq!(
            *order.lock().unwrap(),
            ["block-ok", "block-fail", "report:Failed"]
        );
        assert_eq!(report.block, BlockStatus::Failed);
        assert_eq!(report.steps.len(), 2);
        assert_eq!(report.responders.len(), 3);
        assert_eq!(report.responders[2].name, "report");
    }

    #[test]
    fn all_blockers_ok_is_blocked_and_all_skipped_is_not_requested() {
        let mut ok = Fanout::new()
            .with(from_fn("a", |_: &AlertContext<'_>| Ok(Outcome::Acted(vec![]))).blocking())
            .with(from_fn("b", |_: &AlertContext<'_>| Ok(Outcome::Skipped)).blocking());
        let a = alert("203.0.113.1", 11, Mode::StealthTcp, BlockMode::Block);
        assert_eq!(ok.handle_alert(&a, None).block, BlockStatus::Blocked);
        let mut none = Fanout::new()
            .with(from_fn("b", |_: &AlertContext<'_>| Ok(Outcome::Skipped)).blocking());
        assert_eq!(none.handle_alert(&a, None).block, BlockStatus::NotRequested);
    }

    #[test]
    fn a_panicking_responder_is_caught_and_others_still_run() {
        let ran = Arc::new(Mutex::new(false));
        let ran2 = Arc::clone(&ran);
        let mut fanout = Fanout::new()
            .with(from_fn(
                "boom",
                |_: &AlertContext<'_>| -> Result<Outcome, ResponderError> { panic!("kaboom") },
            ))
            .with(from_fn("after", move |_: &AlertContext<'_>| {
                *ran2.lock().unwrap() = true;
                Ok(Outcome::Reported)
            }));
        let a = alert("203.0.113.1", 11, Mode::StealthTcp, BlockMode::LogOnly);
        let report = fanout.handle_alert(&a, None);
        assert!(*ran.lock().unwrap());
        match &report.responders[0].result {
            Err(ResponderError::Panicked(m)) => assert!(m.contains("kaboom"), "{m}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn block_failed_message_lists_failed_steps() {
        let e = ResponderError::BlockFailed {
            steps: vec![
                step(Action::HostsDeny, None),
                step(Action::Route, Some("exit 2")),
            ],
        };
        assert_eq!(e.to_string(), "1 of 2 blocking steps failed: route: exit 2");
        assert_eq!(e.steps().len(), 2);
    }

    #[test]
    fn from_config_builds_the_standard_set() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            kill_route: Some("true $TARGET$".into()),
            nft_set: Some("inet portsentry blocked".into()),
            history_file: Some(dir.path().join("history")),
            ..crate::Config::default()
        };
        let log = Box::new(LogResponder::new(Vec::new(), LogStyle::Json));
        let fanout = from_config(&config, Some(log)).unwrap();
        assert_eq!(fanout.names(), ["actions", "nft", "history", "log"]);
        assert!(dir.path().join("history").exists());
        let no_files = crate::Config {
            history_file: None,
            blocked_file: None,
            ..crate::Config::default()
        };
        let empty = from_config(&no_files, None).unwrap();
        assert!(empty.is_empty());
        let bad = crate::Config {
            nft_set: Some("inet".into()),
            ..no_files
        };
        assert!(matches!(
            from_config(&bad, None),
            Err(ResponderError::Config(_))
        ));
    }

    #[cfg(not(feature = "crowdsec"))]
    #[test]
    fn crowdsec_credentials_without_the_feature_are_an_error_not_a_silent_gap() {
        let config = crate::Config {
            crowdsec_credentials: Some("/etc/portsentry/crowdsec.yaml".into()),
            history_file: None,
            blocked_file: None,
            ..crate::Config::default()
        };
        let Err(ResponderError::Config(message)) = from_config(&config, None) else {
            panic!("a build without CrowdSec support must refuse CROWDSEC_CREDENTIALS");
        };
        assert!(message.contains("feature `crowdsec`"), "{message}");
    }

    #[test]
    fn address_text_forms() {
        assert_eq!(address_text("203.0.113.5".parse().unwrap()), "203.0.113.5");
        assert_eq!(
            address_text("::ffff:203.0.113.5".parse().unwrap()),
            "203.0.113.5"
        );
        assert_eq!(
            address_text("2001:DB8::0:1".parse().unwrap()),
            "2001:db8::1"
        );
    }
}
