//! `replay`: a capture file through a fresh detector, with the interpreter released.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyList;

use portsentry_core::{Config, Event};

use crate::config::PyConfig;
use crate::detector::parse_modes;
use crate::engine::{self, ReplayError};
use crate::event::event_to_py;
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

/// Replays a pcap or pcapng file through a new detector: each frame is classified and
/// observed at its capture time. Returns the events whose kind is in `kinds` (default: alerts
/// and releases; `None`: every event). No responder runs: a block an alert asks for counts as
/// made.
#[pyfunction]
#[pyo3(signature = (path, config = None, modes = None, *, kinds = Some(DEFAULT_KINDS.iter().map(|k| (*k).to_owned()).collect())))]
pub(crate) fn replay<'py>(
    py: Python<'py>,
    path: PathBuf,
    config: Option<&Bound<'_, PyConfig>>,
    modes: Option<&Bound<'py, PyAny>>,
    kinds: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyList>> {
    let config = config.map_or_else(Config::default, |c| c.get().config.clone());
    let modes = parse_modes(modes).map_err(|m| config_error(py, &[m], &[]))?;
    if let Some(unknown) = kinds
        .iter()
        .flatten()
        .find(|k| !ALL_KINDS.contains(&k.as_str()))
    {
        return Err(argument_error(
            py,
            &format!(
                "unknown event kind {unknown:?}: expected some of {}",
                ALL_KINDS.join(", ")
            ),
        ));
    }
    let wanted = |kind: &str| kinds.as_ref().is_none_or(|k| k.iter().any(|w| w == kind));
    let result = py.detach(|| {
        let never_block = engine::never_block(&config, &[]).map_err(Failure::Setup)?;
        engine::replay_capture(&path, &config, &modes, never_block).map_err(|err| match err {
            ReplayError::Setup(message) => Failure::Setup(vec![message]),
            ReplayError::Capture { error, events } => Failure::Capture(error.to_string(), events),
        })
    });
    let to_list = |events: &[Event]| -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for event in events.iter().filter(|e| wanted(e.kind_str())) {
            list.append(event_to_py(py, event)?)?;
        }
        Ok(list)
    };
    match result {
        Ok(events) => to_list(&events),
        Err(Failure::Setup(problems)) => Err(config_error(py, &problems, &[])),
        Err(Failure::Capture(message, events)) => Err(capture_file_error(
            py,
            &message,
            &path.to_string_lossy(),
            to_list(&events)?.as_any(),
        )),
    }
}

/// Why a replay produced no list.
enum Failure {
    /// The configuration, modes or ignore file are unusable.
    Setup(Vec<Message>),
    /// The capture is unreadable: the message and the events before the bad record.
    Capture(String, Vec<Event>),
}
