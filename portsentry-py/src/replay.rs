//! `replay` and `replay_report`: a capture file through the library's offline replay
//! ([`portsentry_core::replay::Replay`]), with the interpreter released.
//!
//! The semantics are the library's, as the `portsentry replay` command has them: log only
//! (`BLOCK_TCP`/`BLOCK_UDP` count as 0), time taken from the frames, and the capture host's own
//! addresses and listening ports as given by the caller.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyList;

use portsentry_core::replay::{KeptEvents, Replay, ReplayError, ReplayReport};
use portsentry_core::source::pcap::{CaptureError, CaptureFile};
use portsentry_core::{Config, Event, Mode, PortSet};

use crate::config::{PyConfig, port_list_or_empty};
use crate::detector::{parse_address_entries, parse_modes};
use crate::engine;
use crate::event::event_to_py;
use crate::report::PyReplayReport;
use crate::vocab::{Message, argument_error, capture_file_error, config_error};

/// The event kinds `replay` returns when `kinds` is not given.
const DEFAULT_KINDS: [&str; 2] = ["alert", "released"];

/// Every event kind name.
const ALL_KINDS: [&str; 7] = [
    "not_monitored",
    "ignored",
    "below_trigger",
    "alert",
    "already_blocked",
    "already_alerted",
    "released",
];

/// The default of the `kinds=` argument.
fn default_kinds() -> Option<Vec<String>> {
    Some(DEFAULT_KINDS.iter().map(|k| (*k).to_owned()).collect())
}

/// Which event kinds a call returns.
#[derive(Debug, Clone, Copy)]
enum KindFilter {
    /// Every event (`kinds=None`).
    All,
    /// The kinds marked, indexed like [`ALL_KINDS`].
    Only([bool; ALL_KINDS.len()]),
}

impl KindFilter {
    /// Checks the names of `kinds=`.
    ///
    /// # Errors
    ///
    /// The first name that is not an event kind.
    fn parse(kinds: Option<&[String]>) -> Result<Self, String> {
        let Some(kinds) = kinds else {
            return Ok(Self::All);
        };
        let mut chosen = [false; ALL_KINDS.len()];
        for kind in kinds {
            let index = ALL_KINDS.iter().position(|k| k == kind).ok_or_else(|| {
                format!(
                    "unknown event kind {kind:?}: expected some of {}",
                    ALL_KINDS.join(", ")
                )
            })?;
            chosen[index] = true;
        }
        Ok(Self::Only(chosen))
    }

    fn wants(self, event: &Event) -> bool {
        match self {
            Self::All => true,
            Self::Only(chosen) => ALL_KINDS
                .iter()
                .position(|k| *k == event.kind_str())
                .is_some_and(|i| chosen[i]),
        }
    }
}

/// A replay call's arguments, checked.
struct Request {
    path: PathBuf,
    config: Config,
    modes: Vec<Mode>,
    kinds: KindFilter,
    ignore: Vec<String>,
    own_addresses: Vec<String>,
    listening_tcp: PortSet,
    listening_udp: PortSet,
}

/// The Python arguments of `replay` and `replay_report`, as received.
struct Arguments<'a, 'py> {
    path: PathBuf,
    config: Option<&'a Bound<'py, PyConfig>>,
    modes: Option<&'a Bound<'py, PyAny>>,
    kinds: Option<Vec<String>>,
    ignore: Option<&'a Bound<'py, PyAny>>,
    own_addresses: Option<&'a Bound<'py, PyAny>>,
    listening_tcp: Option<&'a Bound<'py, PyAny>>,
    listening_udp: Option<&'a Bound<'py, PyAny>>,
}

impl Arguments<'_, '_> {
    /// Checks every argument.
    ///
    /// # Errors
    ///
    /// `ArgumentError` for an unknown event kind; `ConfigError` listing every other problem.
    fn check(self, py: Python<'_>) -> PyResult<Request> {
        let kinds = KindFilter::parse(self.kinds.as_deref()).map_err(|m| argument_error(py, &m))?;
        let mut problems = Vec::new();
        let modes = take(&mut problems, parse_modes(self.modes));
        let ignore = take(&mut problems, parse_address_entries("ignore", self.ignore));
        let own_addresses = take(
            &mut problems,
            parse_address_entries("own_addresses", self.own_addresses),
        );
        let listening = |key: &str, value: Option<&Bound<'_, PyAny>>| match value {
            Some(value) if !value.is_none() => {
                port_list_or_empty(value).map_err(|m| Message::argument(key, m))
            }
            _ => Ok(PortSet::new()),
        };
        let listening_tcp = take(
            &mut problems,
            listening("listening_tcp", self.listening_tcp),
        );
        let listening_udp = take(
            &mut problems,
            listening("listening_udp", self.listening_udp),
        );
        match (modes, ignore, own_addresses, listening_tcp, listening_udp) {
            (Some(modes), Some(ignore), Some(own_addresses), Some(tcp), Some(udp)) => Ok(Request {
                path: self.path,
                config: self
                    .config
                    .map_or_else(Config::default, |c| c.get().config.clone()),
                modes,
                kinds,
                ignore,
                own_addresses,
                listening_tcp: tcp,
                listening_udp: udp,
            }),
            _ => Err(config_error(py, &problems, &[])),
        }
    }
}

/// The value of `result`, or `None` with its problem added to `problems`.
fn take<T>(problems: &mut Vec<Message>, result: Result<T, Message>) -> Option<T> {
    result.map_err(|m| problems.push(m)).ok()
}

/// Sets up the library's replay for `request`: the ignore list (the configuration's
/// `IGNORE_FILE` and the `ignore=` entries), the own addresses and the listening ports.
/// Events are collected by [`run`], so the report keeps none itself.
///
/// # Errors
///
/// Every problem of the ignore file, the address entries and the detector settings.
fn build(request: &Request) -> Result<Replay, Vec<Message>> {
    let ignore = engine::ignore_list(&request.config, &request.ignore);
    let own = engine::address_list("own_addresses", &request.own_addresses);
    let (ignore, own) = match (ignore, own) {
        (Ok(ignore), Ok(own)) => (ignore, own),
        (ignore, own) => {
            let mut problems = ignore.err().unwrap_or_default();
            problems.extend(own.err().unwrap_or_default());
            return Err(problems);
        }
    };
    Replay::builder(&request.config)
        .modes(request.modes.iter().copied())
        .own_addresses(own.networks())
        .listening(request.listening_tcp.clone(), request.listening_udp.clone())
        .ignore_list(ignore)
        .keep_events(KeptEvents::None)
        .build()
        .map_err(|err| match err {
            ReplayError::Detector(err) => vec![engine::detector_problem(&err)],
            other => vec![Message::argument("config", other.to_string())],
        })
}

/// A capture that could not be read to its end.
struct Unreadable {
    error: CaptureError,
    /// What the frames before the bad record gave; `None` when the file could not be opened.
    partial: Option<Box<ReplayReport>>,
}

/// Replays the capture at `path`, keeping the events `kinds` wants (in the report's `events`).
///
/// # Errors
///
/// The capture error, with the report of the frames before it.
fn run(replay: &Replay, path: &Path, kinds: KindFilter) -> Result<ReplayReport, Unreadable> {
    let mut capture = CaptureFile::open(path).map_err(|error| Unreadable {
        error,
        partial: None,
    })?;
    let mut session = replay.session();
    let mut events = Vec::new();
    let mut keep = |event: &Event| {
        if kinds.wants(event) {
            events.push(*event);
        }
    };
    let failure = loop {
        match capture.next_frame() {
            Some(Ok(frame)) => session.feed(&frame, &mut keep),
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    session.end(&mut keep);
    let mut report = session.finish();
    report.events = events;
    match failure {
        None => Ok(report),
        Some(error) => Err(Unreadable {
            error,
            partial: Some(Box::new(report)),
        }),
    }
}

/// Why a replay gave no report.
enum Failure {
    /// The configuration, ignore file or arguments are unusable.
    Setup(Vec<Message>),
    /// The capture is unreadable.
    Capture(Unreadable),
}

/// Checks the arguments, then replays with the interpreter released.
///
/// # Errors
///
/// `ArgumentError`, `ConfigError` or `CaptureFileError` (with the events and the report of
/// the frames before a damaged record).
fn replay_checked(py: Python<'_>, arguments: Arguments<'_, '_>) -> PyResult<ReplayReport> {
    let request = arguments.check(py)?;
    let result = py.detach(|| {
        let replay = build(&request).map_err(Failure::Setup)?;
        run(&replay, &request.path, request.kinds).map_err(Failure::Capture)
    });
    match result {
        Ok(report) => Ok(report),
        Err(Failure::Setup(problems)) => Err(config_error(py, &problems, &[])),
        Err(Failure::Capture(Unreadable { error, partial })) => {
            let events = events_to_list(py, partial.as_ref().map_or(&[], |r| &r.events))?;
            let report = partial
                .map(|r| Bound::new(py, PyReplayReport(*r)))
                .transpose()?;
            Err(capture_file_error(
                py,
                &error.to_string(),
                &request.path.to_string_lossy(),
                events.as_any(),
                report.as_ref().map(Bound::as_any),
            ))
        }
    }
}

/// A Python list of events.
pub(crate) fn events_to_list<'py>(
    py: Python<'py>,
    events: &[Event],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for event in events {
        list.append(event_to_py(py, event)?)?;
    }
    Ok(list)
}

/// Replays a pcap or pcapng file through the library's offline replay, as the
/// `portsentry replay` command does: each frame is classified and observed at its capture
/// time. Log only: `block_tcp`/`block_udp` count as 0, so alerts carry `BlockMode.LOG_ONLY` and
/// a scanner alerts once per scan window. `own_addresses` are the capture host's addresses
/// (never blocked; frames it sent or that were not addressed to it are dropped, as live capture
/// would), `listening_tcp`/`listening_udp` the ports a service listened on there (not watched
/// by the stealth and advanced modes), `ignore` more addresses never counted (added to the
/// configuration's `IGNORE_FILE`). Returns the events whose kind is in `kinds` (default:
/// alerts and releases; `None`: every event).
#[pyfunction]
#[pyo3(signature = (
    path, config = None, modes = None, *, kinds = default_kinds(), ignore = None,
    own_addresses = None, listening_tcp = None, listening_udp = None,
))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments
pub(crate) fn replay<'py>(
    py: Python<'py>,
    path: PathBuf,
    config: Option<&Bound<'py, PyConfig>>,
    modes: Option<&Bound<'py, PyAny>>,
    kinds: Option<Vec<String>>,
    ignore: Option<&Bound<'py, PyAny>>,
    own_addresses: Option<&Bound<'py, PyAny>>,
    listening_tcp: Option<&Bound<'py, PyAny>>,
    listening_udp: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let report = replay_checked(
        py,
        Arguments {
            path,
            config,
            modes,
            kinds,
            ignore,
            own_addresses,
            listening_tcp,
            listening_udp,
        },
    )?;
    events_to_list(py, &report.events)
}

/// Like `replay`, with the same arguments, but returns a `ReplayReport`: the events whose kind
/// is in `kinds` and a `ReplaySummary` of the whole capture (frames, probes by kind, skipped
/// frames by reason, events by kind, and each alerting source with the ports it probed and the
/// ports the detector counted).
#[pyfunction]
#[pyo3(signature = (
    path, config = None, modes = None, *, kinds = default_kinds(), ignore = None,
    own_addresses = None, listening_tcp = None, listening_udp = None,
))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments
pub(crate) fn replay_report<'py>(
    py: Python<'py>,
    path: PathBuf,
    config: Option<&Bound<'py, PyConfig>>,
    modes: Option<&Bound<'py, PyAny>>,
    kinds: Option<Vec<String>>,
    ignore: Option<&Bound<'py, PyAny>>,
    own_addresses: Option<&Bound<'py, PyAny>>,
    listening_tcp: Option<&Bound<'py, PyAny>>,
    listening_udp: Option<&Bound<'py, PyAny>>,
) -> PyResult<PyReplayReport> {
    replay_checked(
        py,
        Arguments {
            path,
            config,
            modes,
            kinds,
            ignore,
            own_addresses,
            listening_tcp,
            listening_udp,
        },
    )
    .map(PyReplayReport)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use portsentry_core::{Probe, Protocol, ScanKind, Timestamp};

    use super::*;

    fn below_trigger() -> Event {
        let probe = Probe {
            at: Timestamp::from_secs(1),
            source: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            destination: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)),
            protocol: Protocol::Tcp,
            source_port: 40_000,
            destination_port: 1,
            kind: ScanKind::Syn,
            ip_options: false,
        };
        Event::BelowTrigger {
            probe,
            distinct_ports: 1,
            trigger: 3,
        }
    }

    #[test]
    fn the_kind_filter_keeps_the_kinds_named() {
        let event = below_trigger();
        assert!(KindFilter::parse(None).unwrap().wants(&event));
        let defaults = default_kinds().unwrap();
        assert!(!KindFilter::parse(Some(&defaults)).unwrap().wants(&event));
        let named = ["below_trigger".to_owned()];
        assert!(KindFilter::parse(Some(&named)).unwrap().wants(&event));
        assert!(!KindFilter::parse(Some(&[])).unwrap().wants(&event));
        let err = KindFilter::parse(Some(&["alarm".to_owned()])).unwrap_err();
        assert!(
            err.contains("\"alarm\"") && err.contains("released"),
            "{err}"
        );
    }
}
