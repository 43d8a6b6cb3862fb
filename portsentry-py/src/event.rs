//! The detector's events as frozen Python classes: one class per `Event` variant of the
//! library, all subclasses of `Event`, with the same fields.

use pyo3::prelude::*;

use portsentry_core::{Alert, BlockMode, Event, IgnoreReason, Probe, Release};

use crate::probe::{PyProbe, probe_fields, secs};
use crate::vocab::{BLOCK_MODE, EVENT_KIND, IGNORE_REASON, MODE};

/// Base class of every event; `kind` names the event (`EventKind`).
#[pyclass(frozen, subclass, module = "portsentry", name = "Event")]
#[derive(Debug)]
pub(crate) struct PyEvent {
    kind: &'static str,
}

#[pymethods]
impl PyEvent {
    /// The event kind: an `EventKind` (a `str`), e.g. `"alert"`.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        EVENT_KIND
            .member(py, self.kind)
            .or_else(|_| Ok(pyo3::types::PyString::new(py, self.kind).into_any()))
    }

    fn __repr__(&self) -> String {
        format!("Event(kind='{}')", self.kind)
    }
}

/// `name(probe=Probe(...))`-style text for events that carry only a probe.
fn probe_repr(name: &str, extra: &str, probe: &Probe) -> String {
    format!("{name}({extra}probe=Probe({}))", probe_fields(probe))
}

macro_rules! probe_only_event {
    ($rust:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(frozen, eq, extends = PyEvent, module = "portsentry", name = $name)]
        #[derive(Debug, PartialEq)]
        pub(crate) struct $rust {
            probe: Probe,
        }

        #[pymethods]
        impl $rust {
            /// The probe this event is about.
            #[getter]
            fn probe(&self) -> PyProbe {
                PyProbe(self.probe)
            }

            fn __repr__(&self) -> String {
                probe_repr($name, "", &self.probe)
            }
        }
    };
}

probe_only_event!(
    PyNotMonitored,
    "NotMonitored",
    "The port is not monitored in any active mode (or the probe kind does not count)."
);
probe_only_event!(
    PyAlreadyBlocked,
    "AlreadyBlocked",
    "The source is already blocked (or its block is being made): no action runs again."
);
probe_only_event!(
    PyAlreadyAlerted,
    "AlreadyAlerted",
    "The source raised an alert inside the current scan window and is not blocked."
);

/// The source is protected (loopback, ignore list, ...) and is never counted or blocked.
#[pyclass(frozen, eq, extends = PyEvent, module = "portsentry", name = "Ignored")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyIgnored {
    probe: Probe,
    reason: IgnoreReason,
}

#[pymethods]
impl PyIgnored {
    /// The probe.
    #[getter]
    fn probe(&self) -> PyProbe {
        PyProbe(self.probe)
    }

    /// Why the source is ignored (an `IgnoreReason`).
    #[getter]
    fn reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        IGNORE_REASON.member(py, self.reason.as_str())
    }

    fn __repr__(&self) -> String {
        probe_repr(
            "Ignored",
            &format!("reason='{}', ", self.reason.as_str()),
            &self.probe,
        )
    }
}

/// Counted, but the source has not reached the scan trigger yet.
#[pyclass(frozen, eq, extends = PyEvent, module = "portsentry", name = "BelowTrigger")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyBelowTrigger {
    probe: Probe,
    distinct_ports: u32,
    trigger: u32,
}

#[pymethods]
impl PyBelowTrigger {
    /// The probe.
    #[getter]
    fn probe(&self) -> PyProbe {
        PyProbe(self.probe)
    }

    /// Distinct (protocol, port) pairs of this source inside the window, this one included.
    #[getter]
    fn distinct_ports(&self) -> u32 {
        self.distinct_ports
    }

    /// The configured trigger.
    #[getter]
    fn trigger(&self) -> u32 {
        self.trigger
    }

    fn __repr__(&self) -> String {
        probe_repr(
            "BelowTrigger",
            &format!(
                "distinct_ports={}, trigger={}, ",
                self.distinct_ports, self.trigger
            ),
            &self.probe,
        )
    }
}

/// A source crossed the scan trigger: log it, and block it if `response` says so.
#[pyclass(frozen, eq, extends = PyEvent, module = "portsentry", name = "Alert")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyAlert {
    pub(crate) alert: Alert,
}

fn block_mode_name(mode: BlockMode) -> &'static str {
    match mode {
        BlockMode::LogOnly => "LOG_ONLY",
        BlockMode::Block => "BLOCK",
        BlockMode::RunCommandOnly => "RUN_COMMAND_ONLY",
    }
}

#[pymethods]
impl PyAlert {
    /// The probe that crossed the trigger.
    #[getter]
    fn probe(&self) -> PyProbe {
        PyProbe(self.alert.probe)
    }

    /// The mode that saw it (a `Mode`, the `$MODE$` token).
    #[getter]
    fn mode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        MODE.member(py, self.alert.mode.as_str())
    }

    /// Distinct (protocol, port) pairs this source probed inside the window, this one included.
    #[getter]
    fn distinct_ports(&self) -> u32 {
        self.alert.distinct_ports
    }

    /// What the configuration says to do (a `BlockMode`: `BLOCK_TCP`/`BLOCK_UDP`).
    #[getter]
    fn response<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        BLOCK_MODE.member(py, self.alert.response.as_digit())
    }

    /// What the host's answer told the scanner about the port: `"closed"`, `"open"`,
    /// `"unreachable"`, `"filtered"` or `"unknown"` (no answer heard: a replay without
    /// `own_addresses`, a detector fed only received frames).
    #[getter]
    fn port_state(&self) -> &'static str {
        self.alert.port_state.as_str()
    }

    fn __repr__(&self) -> String {
        probe_repr(
            "Alert",
            &format!(
                "mode='{}', distinct_ports={}, response=BlockMode.{}, port_state='{}', ",
                self.alert.mode,
                self.alert.distinct_ports,
                block_mode_name(self.alert.response),
                self.alert.port_state
            ),
            &self.alert.probe,
        )
    }
}

/// A block expired (`block_timeout`): release actions should run.
#[pyclass(frozen, eq, extends = PyEvent, module = "portsentry", name = "Released")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyReleased {
    pub(crate) release: Release,
}

#[pymethods]
impl PyReleased {
    /// The address that was blocked.
    #[getter]
    fn address(&self) -> String {
        self.release.address.to_string()
    }

    /// When the block was made (seconds since the epoch).
    #[getter]
    fn blocked_at(&self) -> f64 {
        secs(self.release.blocked_at)
    }

    /// When it expired (seconds since the epoch).
    #[getter]
    fn released_at(&self) -> f64 {
        secs(self.release.released_at)
    }

    /// The mode whose alert caused the block (a `Mode`).
    #[getter]
    fn mode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        MODE.member(py, self.release.mode.as_str())
    }

    /// The port whose probe caused the block.
    #[getter]
    fn port(&self) -> u16 {
        self.release.port
    }

    fn __repr__(&self) -> String {
        let r = &self.release;
        format!(
            "Released(address='{}', mode='{}', port={}, blocked_at={:.6}, released_at={:.6})",
            r.address,
            r.mode,
            r.port,
            secs(r.blocked_at),
            secs(r.released_at)
        )
    }
}

/// The Python object for one event of the library.
pub(crate) fn event_to_py<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyAny>> {
    let base = PyEvent {
        kind: event.kind_str(),
    };
    let init = PyClassInitializer::from(base);
    let object = match *event {
        Event::NotMonitored(probe) => {
            Bound::new(py, init.add_subclass(PyNotMonitored { probe }))?.into_any()
        }
        Event::Ignored { probe, reason } => {
            Bound::new(py, init.add_subclass(PyIgnored { probe, reason }))?.into_any()
        }
        Event::BelowTrigger {
            probe,
            distinct_ports,
            trigger,
        } => Bound::new(
            py,
            init.add_subclass(PyBelowTrigger {
                probe,
                distinct_ports,
                trigger,
            }),
        )?
        .into_any(),
        Event::Alert(alert) => Bound::new(py, init.add_subclass(PyAlert { alert }))?.into_any(),
        Event::AlreadyBlocked(probe) => {
            Bound::new(py, init.add_subclass(PyAlreadyBlocked { probe }))?.into_any()
        }
        Event::AlreadyAlerted(probe) => {
            Bound::new(py, init.add_subclass(PyAlreadyAlerted { probe }))?.into_any()
        }
        Event::Released(release) => {
            Bound::new(py, init.add_subclass(PyReleased { release }))?.into_any()
        }
        // A kind added to the library later: still an `Event` with its kind.
        _ => Bound::new(py, init)?.into_any(),
    };
    Ok(object)
}
