//! `Detector`: the library's detector behind a lock, with Python responders.

use parking_lot::Mutex;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use portsentry_core::{Detector, Event, Mode, classify};

use crate::config::{PyConfig, apply_overrides};
use crate::engine;
use crate::event::event_to_py;
use crate::link::LinkArg;
use crate::probe::{PyProbe, address_arg, timestamp};
use crate::vocab::{MODE, Message, RESPONDER, RESPONDER_FAILURE, config_error, responder_error};

/// The modes a detector and a replay use when none are given.
pub(crate) const DEFAULT_MODES: [Mode; 2] = [Mode::StealthTcp, Mode::StealthUdp];

/// Parses a `modes=` argument: None (the default), one name, or an iterable of names.
pub(crate) fn parse_modes(value: Option<&Bound<'_, PyAny>>) -> Result<Vec<Mode>, Message> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(DEFAULT_MODES.to_vec());
    };
    let names: Vec<String> = if let Ok(name) = value.extract::<String>() {
        vec![name]
    } else {
        value
            .try_iter()
            .and_then(|iter| iter.map(|item| item?.extract::<String>()).collect())
            .map_err(|_| Message::argument("modes", format!("expected mode names, got {value}")))?
    };
    names
        .iter()
        .map(|name| {
            name.parse::<Mode>()
                .map_err(|err| Message::argument("modes", err.to_string()))
        })
        .collect()
}

/// Parses an address-list argument (`ignore=`, `own_addresses=`): None or an iterable of
/// addresses and networks, as text or `ipaddress` objects (anything whose `str()` is one).
pub(crate) fn parse_address_entries(
    key: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> Result<Vec<String>, Message> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if value.extract::<String>().is_ok() {
        return Err(Message::argument(
            key,
            "expected a list of addresses or networks, not one string",
        ));
    }
    value
        .try_iter()
        .and_then(|iter| iter.map(|item| Ok(item?.str()?.to_string())).collect())
        .map_err(|_| Message::argument(key, format!("expected addresses or networks, got {value}")))
}

/// The arguments a `Detector` and a `Sensor` share: applies the keyword `overrides` to
/// `config` and parses `modes=` and `ignore=`; every problem is added to `problems`.
pub(crate) fn detection_arguments(
    config: &mut portsentry_core::Config,
    modes: Option<&Bound<'_, PyAny>>,
    ignore: Option<&Bound<'_, PyAny>>,
    overrides: Option<&Bound<'_, PyDict>>,
    problems: &mut Vec<Message>,
) -> (Vec<Mode>, Vec<String>) {
    problems.extend(apply_overrides(config, overrides));
    let modes = parse_modes(modes)
        .map_err(|m| problems.push(m))
        .unwrap_or_default();
    let ignore = parse_address_entries("ignore", ignore)
        .map_err(|m| problems.push(m))
        .unwrap_or_default();
    (modes, ignore)
}

/// Checks that `responder` can be called: a `Responder` or any callable.
pub(crate) fn check_responder(py: Python<'_>, responder: &Bound<'_, PyAny>) -> PyResult<()> {
    if responder.is_instance(RESPONDER.get(py)?)? || responder.is_callable() {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a responder must be callable or a portsentry.Responder, not {}",
            responder.get_type().name()?
        )))
    }
}

/// Calls one responder for one event.
pub(crate) fn call_responder(
    py: Python<'_>,
    responder: &Bound<'_, PyAny>,
    method: &str,
    event: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if responder.is_instance(RESPONDER.get(py)?)? {
        responder.call_method1(method, (event,))?;
    } else {
        responder.call1((event,))?;
    }
    Ok(())
}

/// Decides about frames and probes; calls its responders for each alert and release.
#[pyclass(frozen, module = "portsentry", name = "Detector")]
pub(crate) struct PyDetector {
    inner: Mutex<Detector>,
    config: PyConfig,
    responders: Mutex<Vec<Py<PyAny>>>,
}

#[pymethods]
impl PyDetector {
    #[new]
    #[pyo3(signature = (config = None, *, modes = None, ignore = None, responders = None, **overrides))]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyConfig>>,
        modes: Option<&Bound<'_, PyAny>>,
        ignore: Option<&Bound<'_, PyAny>>,
        responders: Option<&Bound<'_, PyAny>>,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut config =
            config.map_or_else(portsentry_core::Config::default, |c| c.get().config.clone());
        let mut problems = Vec::new();
        let (modes, ignore) =
            detection_arguments(&mut config, modes, ignore, overrides, &mut problems);
        if !problems.is_empty() {
            return Err(config_error(py, &problems, &[]));
        }
        let built = py.detach(|| {
            let never_block = engine::never_block(&config, &ignore)?;
            engine::build(&config, &modes, never_block).map_err(|m| vec![m])
        });
        let detector = built.map_err(|problems| config_error(py, &problems, &[]))?;
        let mut list = Vec::new();
        if let Some(responders) = responders.filter(|r| !r.is_none()) {
            for responder in responders.try_iter()? {
                let responder = responder?;
                check_responder(py, &responder)?;
                list.push(responder.unbind());
            }
        }
        Ok(Self {
            inner: Mutex::new(detector),
            config: PyConfig::from_config(config),
            responders: Mutex::new(list),
        })
    }

    /// Classifies one captured frame and observes it at time `ts` (seconds since the epoch).
    /// Blocks that expired by `ts` are released first. Returns the events, in order (empty
    /// when the frame is not a probe and nothing expired).
    #[pyo3(signature = (frame, *, ts, link = LinkArg::default()))]
    fn feed<'py>(
        &self,
        py: Python<'py>,
        frame: &[u8],
        ts: f64,
        link: LinkArg,
    ) -> PyResult<Bound<'py, PyList>> {
        let link = link.resolve(py)?;
        let at = timestamp(ts);
        let events = py.detach(|| {
            let probe = classify(at, link, frame).ok();
            let mut events = Vec::new();
            engine::step(&mut self.inner.lock(), at, probe.as_ref(), &mut events);
            events
        });
        self.deliver(py, &events)
    }

    /// Observes one probe at its own time (`probe.at`), after releasing expired blocks.
    fn observe<'py>(
        &self,
        py: Python<'py>,
        probe: &Bound<'_, PyProbe>,
    ) -> PyResult<Bound<'py, PyList>> {
        let probe = probe.get().0;
        let events = py.detach(|| {
            let mut events = Vec::new();
            engine::step(&mut self.inner.lock(), probe.at, Some(&probe), &mut events);
            events
        });
        self.deliver(py, &events)
    }

    /// Releases the blocks that expired by `ts`; returns the `Released` events.
    #[pyo3(signature = (*, ts))]
    fn expire<'py>(&self, py: Python<'py>, ts: f64) -> PyResult<Bound<'py, PyList>> {
        let at = timestamp(ts);
        let events = py.detach(|| {
            let mut events = Vec::new();
            engine::step(&mut self.inner.lock(), at, None, &mut events);
            events
        });
        self.deliver(py, &events)
    }

    /// Registers a responder: a `Responder` or any callable taking an `Alert` or `Released`.
    fn add_responder(&self, py: Python<'_>, responder: &Bound<'_, PyAny>) -> PyResult<()> {
        check_responder(py, responder)?;
        self.responders.lock().push(responder.clone().unbind());
        Ok(())
    }

    /// The registered responders, in calling order.
    #[getter]
    fn responders<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let list: Vec<Py<PyAny>> = self
            .responders
            .lock()
            .iter()
            .map(|r| r.clone_ref(py))
            .collect();
        PyTuple::new(py, list)
    }

    /// True when `address` is blocked (or its block is being made).
    fn is_blocked(&self, py: Python<'_>, address: &Bound<'_, PyAny>) -> PyResult<bool> {
        let address = address_arg(py, "address", address)?;
        Ok(self.inner.lock().is_blocked(address))
    }

    /// The effective configuration (with the keyword overrides applied).
    #[getter]
    fn config(&self) -> PyConfig {
        self.config.clone()
    }

    /// The active modes (`Mode` values), in the order given.
    #[getter]
    fn modes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let modes: Vec<Mode> = self.inner.lock().modes().to_vec();
        let members = modes
            .iter()
            .map(|m| MODE.member(py, m.as_str()))
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, members)
    }

    /// How many events of each kind were returned so far.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.lock().stats();
        let dict = PyDict::new(py);
        dict.set_item("not_monitored", s.not_monitored)?;
        dict.set_item("ignored", s.ignored)?;
        dict.set_item("below_trigger", s.below_trigger)?;
        dict.set_item("alerts", s.alerts)?;
        dict.set_item("already_blocked", s.already_blocked)?;
        dict.set_item("already_alerted", s.already_alerted)?;
        dict.set_item("limited", s.limited)?;
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        let modes: Vec<String> = self
            .inner
            .lock()
            .modes()
            .iter()
            .map(|m| format!("'{m}'"))
            .collect();
        format!(
            "Detector(modes=[{}], responders={})",
            modes.join(", "),
            self.responders.lock().len()
        )
    }
}

impl PyDetector {
    /// Turns events into Python objects and runs the responders for alerts and releases.
    ///
    /// Every responder runs for every alert and release, even after one raised. A block that
    /// an alert asks for is recorded when all responders returned, and reported as failed
    /// otherwise. Exceptions that are not `Exception`s (KeyboardInterrupt...) propagate at
    /// once; the others end in one `ResponderError` after all events were handled.
    fn deliver<'py>(&self, py: Python<'py>, events: &[Event]) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        let responders: Vec<Py<PyAny>> = if events.is_empty() {
            Vec::new()
        } else {
            self.responders
                .lock()
                .iter()
                .map(|r| r.clone_ref(py))
                .collect()
        };
        let failures = PyList::empty(py);
        let mut first_error: Option<PyErr> = None;
        for event in events {
            let object = event_to_py(py, event)?;
            list.append(&object)?;
            let method = match event {
                Event::Alert(_) => "on_alert",
                Event::Released(_) => "on_release",
                _ => continue,
            };
            let mut succeeded = true;
            for responder in &responders {
                let responder = responder.bind(py);
                let Err(err) = call_responder(py, responder, method, &object) else {
                    continue;
                };
                if !err.is_instance_of::<PyException>(py) {
                    return Err(err);
                }
                succeeded = false;
                failures.append(RESPONDER_FAILURE.get(py)?.call1((
                    responder,
                    &object,
                    err.value(py),
                ))?)?;
                first_error.get_or_insert(err);
            }
            if let Event::Alert(alert) = event {
                engine::record_outcome(&mut self.inner.lock(), alert, succeeded);
            }
        }
        match first_error {
            None => Ok(list),
            Some(cause) => {
                let failure = failures.get_item(0)?;
                let message = format!(
                    "{} responder call(s) raised; first: {} on {}: {}",
                    failures.len(),
                    failure.getattr("responder")?.repr()?,
                    failure.getattr("event")?.repr()?,
                    cause.value(py).repr()?,
                );
                Err(responder_error(
                    py,
                    &message,
                    list.as_any(),
                    failures.as_any(),
                    cause,
                ))
            }
        }
    }
}
