//! The result of `replay_report`: the library's [`ReplayReport`] and its parts as frozen
//! Python classes (`ReplayReport`, `ReplaySummary`, `SourceReport`, `Ports`).

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use portsentry_core::Event;
use portsentry_core::replay::{Ports, ReplayReport, ReplaySummary, SourceReport};

use crate::event::event_to_py;
use crate::probe::{address_arg, secs};
use crate::replay::events_to_list;

/// A replay's kept events and the summary of the whole capture.
#[pyclass(frozen, eq, module = "portsentry", name = "ReplayReport")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyReplayReport(pub(crate) ReplayReport);

#[pymethods]
impl PyReplayReport {
    /// The events whose kind was asked for (`kinds=`), in the order they happened.
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        events_to_list(py, &self.0.events)
    }

    /// Counts of the whole capture (every event counted, kept or not).
    #[getter]
    fn summary(&self) -> PyReplaySummary {
        PyReplaySummary(self.0.summary.clone())
    }

    fn __repr__(&self) -> String {
        format!(
            "ReplayReport(events=<{} event(s)>, summary={})",
            self.0.events.len(),
            summary_repr(&self.0.summary)
        )
    }
}

/// `ReplaySummary(frames=..., ...)`, short: the sources by address only.
fn summary_repr(s: &ReplaySummary) -> String {
    let sources: Vec<String> = s
        .sources
        .iter()
        .map(|r| format!("'{}'", r.source))
        .collect();
    format!(
        "ReplaySummary(frames={}, probes={}, skipped={}, not_to_host={}, alerts={}, sources=[{}])",
        s.frames,
        s.probes,
        s.skips.total(),
        s.not_to_host,
        s.alerts(),
        sources.join(", ")
    )
}

/// Counts of a whole replay.
#[pyclass(frozen, eq, module = "portsentry", name = "ReplaySummary")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyReplaySummary(ReplaySummary);

#[pymethods]
impl PyReplaySummary {
    /// Frames read.
    #[getter]
    fn frames(&self) -> u64 {
        self.0.frames
    }

    /// The capture time of the first frame (seconds since the epoch), `None` without frames.
    #[getter]
    fn first_frame_at(&self) -> Option<f64> {
        self.0.first_frame_at.map(secs)
    }

    /// The capture time of the last frame (seconds since the epoch), `None` without frames.
    #[getter]
    fn last_frame_at(&self) -> Option<f64> {
        self.0.last_frame_at.map(secs)
    }

    /// Probes that reached the detector.
    #[getter]
    fn probes(&self) -> u64 {
        self.0.probes
    }

    /// Those probes by kind (`"syn"`, `"fin"`, ..., `"udp"`, `"other"`); kinds never seen are
    /// absent.
    #[getter]
    fn probes_by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.0.probes_by_kind.clone()
    }

    /// Frames that were no probe, by reason (`"reset"`, `"established"`, `"not_ip"`,
    /// `"outgoing"`, ...); reasons never seen are absent. With `own_addresses`, probes the
    /// capture host sent count as `"outgoing"`.
    #[getter]
    fn skips(&self) -> BTreeMap<&'static str, u64> {
        self.0
            .skips
            .nonzero()
            .map(|(reason, n)| (reason.as_str(), n))
            .collect()
    }

    /// Probes addressed to none of `own_addresses` (always 0 when none were given).
    #[getter]
    fn not_to_host(&self) -> u64 {
        self.0.not_to_host
    }

    /// Events by kind (an `EventKind` value: `"alert"`, `"below_trigger"`, ...), whether or
    /// not `kinds=` kept them; kinds that never happened are absent.
    #[getter]
    fn events_by_kind(&self) -> BTreeMap<&'static str, u64> {
        self.0.events_by_kind.clone()
    }

    /// The sources that raised alerts, in the order of their first alert.
    #[getter]
    fn sources(&self) -> Vec<PySourceReport> {
        self.0.sources.iter().cloned().map(PySourceReport).collect()
    }

    /// The report of `address` (text or an `ipaddress` object) if it raised an alert.
    fn source(
        &self,
        py: Python<'_>,
        address: &Bound<'_, PyAny>,
    ) -> PyResult<Option<PySourceReport>> {
        let address = address_arg(py, "address", address)?;
        Ok(self.0.source(address).cloned().map(PySourceReport))
    }

    fn __repr__(&self) -> String {
        summary_repr(&self.0)
    }
}

/// One source that raised at least one alert during a replay.
#[pyclass(frozen, eq, module = "portsentry", name = "SourceReport")]
#[derive(Debug, PartialEq)]
pub(crate) struct PySourceReport(SourceReport);

#[pymethods]
impl PySourceReport {
    /// The source address.
    #[getter]
    fn source(&self) -> String {
        self.0.source.to_string()
    }

    /// Its alerts, in order (one per scan window at most: a replay is log only); never empty.
    #[getter]
    fn alerts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for alert in &self.0.alerts {
            list.append(event_to_py(py, &Event::Alert(*alert))?)?;
        }
        Ok(list)
    }

    /// Its probes that reached the detector, of any kind, to any port.
    #[getter]
    fn probes(&self) -> u64 {
        self.0.probes
    }

    /// Every distinct port it probed in the whole capture, monitored or not.
    #[getter]
    fn ports_probed(&self) -> PyPorts {
        PyPorts(self.0.ports_probed.clone())
    }

    /// The distinct ports the detector counted for it: monitored ports (listening ports
    /// excluded in the stealth and advanced modes), probe kinds that count.
    #[getter]
    fn ports_counted(&self) -> PyPorts {
        PyPorts(self.0.ports_counted.clone())
    }

    fn __repr__(&self) -> String {
        format!(
            "SourceReport(source='{}', alerts=<{} alert(s)>, probes={}, ports_probed={}, ports_counted={})",
            self.0.source,
            self.0.alerts.len(),
            self.0.probes,
            ports_repr(&self.0.ports_probed),
            ports_repr(&self.0.ports_counted)
        )
    }
}

fn ports_repr(ports: &Ports) -> String {
    format!("Ports(tcp={:?}, udp={:?})", ports.tcp, ports.udp)
}

/// Distinct destination ports per protocol, ascending; `len()` counts both protocols.
#[pyclass(frozen, eq, module = "portsentry", name = "Ports")]
#[derive(Debug, PartialEq)]
pub(crate) struct PyPorts(Ports);

#[pymethods]
impl PyPorts {
    /// The TCP ports.
    #[getter]
    fn tcp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.0.tcp)
    }

    /// The UDP ports.
    #[getter]
    fn udp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.0.udp)
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __repr__(&self) -> String {
        ports_repr(&self.0)
    }
}
