//! Running the detector: what `portsentry` does without a subcommand.
//!
//! Order of start, chosen so that every startup error is said on the terminal:
//!
//! 1. load the configuration and the ignore file (errors: file:line, exit 1); as root, check
//!    that the state directory (and the pid file's) is root's alone (exit 1 otherwise);
//! 2. open the probe sources: the `AF_PACKET` capture and the connect-mode sockets (no
//!    privilege: exactly what is missing, exit 77);
//! 3. bind the control socket (another detector running: exit 1);
//! 4. with `-D`: fork into the background (sockets survive the fork; no thread exists yet);
//! 5. pid file, signal handlers, control thread, the engine (responder thread), then
//!    `READY=1` to systemd.
//!
//! Then the main loop: one engine turn (≤ 200 ms), pending unblock requests, SIGHUP (reload;
//! signals coalesce: one reload at a time, at most one pending, held while the previous
//! reload's responders finish their jobs), SIGTERM/SIGINT (stop within `STOP_TIMEOUT`; a
//! second one exits at once), and the status file every 2 seconds.

mod control;
pub(crate) mod log_sink;
mod pid_file;
mod syslog;

pub(crate) use control::{ClientError, GROUP_FILE, request_unblock, resolve_group};

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use portsentry_core::capture::CaptureError;
use portsentry_core::engine::{
    self, Engine, EngineError, EngineOptions, Message, Severity, Sources,
};
use portsentry_core::{Mode, permissions};
use sd_notify::NotifyState;

use crate::commands::{EXIT_FAILURE, report_failure};
use crate::config_source::{self, Checked, Origin};
use crate::metrics;
use crate::state_files::{self, StatusMeta};
use log_sink::{LogFormat, LogTarget, Logger};

/// Exit status: a privilege is missing (sysexits' `EX_NOPERM`).
pub(crate) const EXIT_NO_PERMISSION: u8 = 77;
/// Exit status when a second SIGTERM or SIGINT ends a stop at once (128 + SIGTERM, as a
/// shell reports a process killed by it).
const EXIT_SECOND_SIGNAL: i32 = 143;
/// The longest wait of one engine turn (bounds the reaction time to signals).
const TURN: Duration = Duration::from_millis(200);
/// How often the status file is rewritten.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);
/// The modes used when none is given: PortSentry 2.0's default, stealth TCP and UDP.
const DEFAULT_MODES: [Mode; 2] = [Mode::StealthTcp, Mode::StealthUdp];

/// Options of the detector run.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RunArgs {
    /// Detection mode(s): tcp, udp (connect), stcp, sudp (stealth), atcp, audp (advanced
    /// stealth); repeat or separate with commas. PortSentry's -tcp -udp -stcp -sudp -atcp
    /// -audp work too [default: stcp,sudp]
    #[arg(short, long = "mode", value_name = "MODE", value_delimiter = ',')]
    pub(crate) modes: Vec<Mode>,

    /// Capture only on this interface (stealth and advanced modes) [default: all]
    #[arg(short, long, value_name = "IFACE")]
    pub(crate) interface: Option<String>,

    /// Stay in the foreground (the default; for systemd)
    #[arg(long, conflicts_with = "daemon")]
    pub(crate) foreground: bool,

    /// Run in the background (double fork, setsid); logs go to syslog unless --log-target
    /// says otherwise
    #[arg(short = 'D', long)]
    pub(crate) daemon: bool,

    /// Write the process id to this file [default with -D: /run/portsentry.pid]
    #[arg(long, value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,

    /// Where log lines go [default: stdout; syslog with -D]
    #[arg(long, value_enum, value_name = "TARGET")]
    pub(crate) log_target: Option<LogTarget>,

    /// The shape of log lines
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "classic")]
    pub(crate) log_format: LogFormat,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (classic text format 0.0.4;
    /// e.g. 127.0.0.1:9610). Counters of probes by mode and kind, skipped frames, alerts,
    /// blocks, tracker, response queue and kernel drops; never an address. Off by default
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) metrics_listen: Option<SocketAddr>,

    /// Write the same metrics to this file every 2 seconds, replaced atomically, for
    /// node_exporter's textfile collector (the name must end in .prom; Debian's directory is
    /// /var/lib/prometheus/node-exporter/)
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_textfile: Option<PathBuf>,
}

/// Signal flags set by the handlers, read by the main loop.
struct Signals {
    reload: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Signals {
    fn register() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let reload = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, Arc::clone(&reload)).context("cannot handle SIGHUP")?;
        for signal in [SIGTERM, SIGINT] {
            // The first SIGTERM or SIGINT asks for a stop (within STOP_TIMEOUT); a second one,
            // the flag being set already, ends the process at once. The block table on disk
            // is always consistent (pending blocks are written before their actions run), so
            // the next start completes what was left.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                EXIT_SECOND_SIGNAL,
                Arc::clone(&stop),
            )
            .context("cannot handle SIGTERM/SIGINT")?;
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("cannot handle SIGTERM/SIGINT")?;
        }
        Ok(Self { reload, stop })
    }
}

/// Runs the detector until SIGTERM/SIGINT.
pub(crate) fn run(args: &RunArgs, origin: Origin) -> anyhow::Result<ExitCode> {
    let origin = absolute(origin);
    let modes = if args.modes.is_empty() {
        DEFAULT_MODES.to_vec()
    } else {
        args.modes.clone()
    };
    let checked = match config_source::load(origin.clone()) {
        Ok(checked) => checked,
        Err(failure) => return Ok(report_failure(&failure)),
    };
    let target = args.log_target.unwrap_or(if args.daemon {
        LogTarget::Syslog
    } else {
        LogTarget::Stdout
    });
    let (logger, problem) = Logger::open(target, args.log_format);
    if let Some(problem) = problem {
        eprintln!("portsentry: warning: {problem}");
    }
    let state_dir = checked.state_dir.clone();
    let metrics_setup = metrics::Setup::new(args.metrics_listen, args.metrics_textfile.as_deref())?;
    let pid_path = args.pid_file.clone().or_else(|| {
        args.daemon
            .then(|| PathBuf::from(pid_file::DEFAULT_PID_FILE))
    });
    state_files::prepare_state_directory(&state_dir, pid_path.as_deref())?;
    let sources = match Sources::open(&modes, &checked.config, args.interface.as_deref()) {
        Ok(sources) => sources,
        Err(error) => return Ok(report_start_failure(&error, &modes)),
    };
    let access = control::Access {
        group: checked
            .config
            .control_group
            .as_deref()
            .map(|name| control::resolve_group(name, Path::new(GROUP_FILE)))
            .transpose()?,
    };
    let bound = control::bind(&state_files::socket_path(&state_dir), access)?;
    if let Some(path) = &pid_path {
        pid_file::check_free(path)?;
    }
    let settings = checked.settings();
    let checked_trusted = checked.findings.is_empty();
    if args.daemon {
        // Open the history file and check the responders now, while errors still reach the
        // terminal.
        engine::responders(&settings, None).context("cannot set up the responders")?;
        daemonize::Daemonize::new()
            .working_directory("/")
            .umask(0o027)
            .start()
            .context("cannot go into the background")?;
    }
    let _pid_file = pid_path
        .as_deref()
        .map(pid_file::PidFile::write)
        .transpose()?;
    let signals = Signals::register()?;
    let replaced_socket = bound.replaced.clone();
    let control = bound
        .start()
        .context("cannot start the control socket thread")?;

    logger.admin(
        Severity::Info,
        &format!("portsentry {} is starting.", env!("CARGO_PKG_VERSION")),
    );
    log_config_warnings(&logger, &checked);
    if let Some(replaced) = replaced_socket {
        logger.admin(Severity::Warning, &replaced);
    }
    let factory_logger = logger.clone();
    let options = EngineOptions {
        log: Some(Box::new(move || factory_logger.responder())),
        ..EngineOptions::default()
    };
    let mut engine = match Engine::start(sources, settings, options) {
        Ok(engine) => engine,
        Err(error) => {
            logger.admin(Severity::Error, &format!("cannot start: {error}"));
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    log_messages(&logger, engine.take_messages());
    logger.admin(Severity::Info, "PortSentry is now active and listening.");
    let _ = sd_notify::notify(&[NotifyState::Ready]);

    let meta = StatusMeta {
        pid: std::process::id(),
        started_at: state_files::unix_now(),
        config: origin.to_string(),
        running: true,
    };
    let mut exporter = metrics_setup.start(meta.started_at)?;
    let status_path = state_files::status_path(&state_dir);
    // False while a permission finding keeps the configuration in log-only mode.
    let mut trusted = checked_trusted;
    let mut next_status = Instant::now();
    let mut code = ExitCode::SUCCESS;
    loop {
        // Never reset: a second signal during the stop must find it set.
        if signals.stop.load(Ordering::SeqCst) {
            break;
        }
        // SIGHUPs coalesce: the flag stays set (one pending reload) while the responders
        // of the previous reload still finish their jobs.
        if !engine.reload_in_progress() && signals.reload.swap(false, Ordering::SeqCst) {
            if let Some(now_trusted) = reload(&mut engine, &origin, &logger) {
                trusted = now_trusted;
            }
            next_status = Instant::now();
        }
        while let Some(request) = control.try_recv() {
            let address = request.address;
            let answer = match engine.unblock(address) {
                Some(_) => format!("released {address}"),
                None => format!("not-blocked {address}"),
            };
            request.answer(answer);
            next_status = Instant::now();
        }
        if let Err(error) = engine.turn(TURN) {
            logger.admin(Severity::Error, &format!("stopping: {error}"));
            code = ExitCode::from(EXIT_FAILURE);
            break;
        }
        log_messages(&logger, engine.take_messages());
        logger.flush();
        if Instant::now() >= next_status {
            let status = trusted_status(&mut engine, trusted);
            if let Err(e) = exporter.publish(&status, state_files::unix_now()) {
                logger.admin(Severity::Error, &format!("{e:#}"));
            }
            let document = state_files::status_json(&meta, &status);
            if let Err(e) = state_files::write_status(&status_path, &document) {
                logger.admin(
                    Severity::Error,
                    &format!("cannot write the status file: {e:#}"),
                );
            }
            next_status = Instant::now() + STATUS_INTERVAL;
        }
    }
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    logger.admin(
        Severity::Info,
        &format!(
            "PortSentry is shutting down (at most {} s for queued block actions; a second \
             signal stops at once)",
            engine.config().stop_timeout.as_secs()
        ),
    );
    let (mut status, messages) = engine.shutdown();
    status.commands_enabled &= trusted;
    log_messages(&logger, messages);
    logger.flush();
    if let Err(e) = exporter.publish(&status, state_files::unix_now()) {
        logger.admin(Severity::Error, &format!("{e:#}"));
    }
    let final_meta = StatusMeta {
        running: false,
        ..meta
    };
    if let Err(e) = state_files::write_status(
        &status_path,
        &state_files::status_json(&final_meta, &status),
    ) {
        logger.admin(
            Severity::Error,
            &format!("cannot write the status file: {e:#}"),
        );
    }
    drop(control);
    Ok(code)
}

/// SIGHUP: load the configuration and ignore file again and apply them; a broken file is
/// reported with file:line and the configuration in force stays. Returns whether the applied
/// configuration is trusted (no permission finding), `None` when the old one stays.
fn reload(engine: &mut Engine, origin: &Origin, logger: &Logger) -> Option<bool> {
    if let Ok(state) = NotifyState::monotonic_usec_now() {
        let _ = sd_notify::notify(&[NotifyState::Reloading, state]);
    }
    logger.admin(
        Severity::Info,
        &format!("reloading the configuration from {origin}"),
    );
    let mut applied = None;
    match config_source::load(origin.clone()) {
        Ok(checked) => {
            log_config_warnings(logger, &checked);
            match engine.reload(checked.settings()) {
                Ok(()) => {
                    log_messages(logger, engine.take_messages());
                    logger.admin(Severity::Info, "configuration reloaded");
                    applied = Some(checked.findings.is_empty());
                }
                Err(error) => {
                    log_messages(logger, engine.take_messages());
                    logger.admin(
                        Severity::Error,
                        &format!(
                            "cannot apply the new configuration ({error}); keeping the previous one"
                        ),
                    );
                }
            }
        }
        Err(config_source::Failure::Invalid { problems, warnings }) => {
            for warning in warnings {
                logger.admin(Severity::Warning, &warning);
            }
            for problem in &problems {
                logger.admin(Severity::Error, problem);
            }
            logger.admin(
                Severity::Error,
                &format!(
                    "new configuration rejected ({} error(s)); keeping the previous one",
                    problems.len()
                ),
            );
        }
        Err(config_source::Failure::Unreadable(message)) => logger.admin(
            Severity::Error,
            &format!("{message}; keeping the previous configuration"),
        ),
    }
    let _ = sd_notify::notify(&[NotifyState::Ready]);
    applied
}

/// Logs the configuration's warnings, except the permission findings the engine reports
/// itself (with what they disable); the others (files root writes, a file replaced while it
/// was read) are logged here.
fn log_config_warnings(logger: &Logger, checked: &Checked) {
    let findings: HashSet<String> =
        permissions::check_config_files(checked.origin.path(), &checked.config)
            .iter()
            .map(ToString::to_string)
            .collect();
    if !checked.findings.is_empty() {
        logger.admin(
            Severity::Warning,
            "log only: no command, file write or nftables change is made until the findings \
             below are fixed",
        );
    }
    for warning in checked.warnings.iter().filter(|w| !findings.contains(*w)) {
        logger.admin(Severity::Warning, warning);
    }
}

/// The engine's status, with commands shown disabled while the configuration is disarmed for
/// a finding the engine does not see itself (a file root writes, a file replaced while read).
fn trusted_status(engine: &mut Engine, trusted: bool) -> engine::EngineStatus {
    let mut status = engine.status();
    status.commands_enabled &= trusted;
    status
}

fn log_messages(logger: &Logger, messages: Vec<Message>) {
    for m in messages {
        logger.admin(m.severity, &m.text);
    }
}

/// The configuration file as an absolute path (the daemon changes to `/`).
fn absolute(origin: Origin) -> Origin {
    match origin {
        Origin::Given(path) => Origin::Given(std::path::absolute(&path).unwrap_or(path)),
        other => other,
    }
}

/// Says why the sources could not be opened, exactly, and picks the exit status.
fn report_start_failure(error: &EngineError, modes: &[Mode]) -> ExitCode {
    let capturing: Vec<&str> = modes
        .iter()
        .filter(|m| !m.is_connect())
        .map(|m| m.as_str())
        .collect();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "portsentry".to_owned());
    match error {
        EngineError::Capture(CaptureError::NeedsCapNetRaw) => {
            eprintln!(
                "portsentry: error: the {} mode(s) read packets from an AF_PACKET socket, which \
                 needs root or the CAP_NET_RAW capability; this process has neither.\n  \
                 Run it as root (sudo portsentry ...), or give the binary the capability:\n    \
                 setcap cap_net_raw,cap_net_bind_service+ep {exe}\n  \
                 (the connect modes -tcp/-udp need no capture; binding their ports below 1024 \
                 needs root or CAP_NET_BIND_SERVICE)",
                capturing.join(", ")
            );
            ExitCode::from(EXIT_NO_PERMISSION)
        }
        EngineError::NothingBound { failures }
            if failures.iter().any(|f| f.contains("ermission denied")) =>
        {
            eprintln!(
                "portsentry: error: no connect-mode port could be bound: {}\n  \
                 Ports below 1024 need root or the CAP_NET_BIND_SERVICE capability:\n    \
                 setcap cap_net_bind_service+ep {exe}",
                failures.join("; ")
            );
            ExitCode::from(EXIT_NO_PERMISSION)
        }
        other => {
            eprintln!("portsentry: error: {other}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
