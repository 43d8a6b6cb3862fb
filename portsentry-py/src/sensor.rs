//! `Sensor`: the daemon's live engine driven from Python, with Python responders.
//!
//! The engine runs on its own thread (`crate::live`) and never takes the interpreter lock;
//! each Python responder has its own queue and thread (`crate::callback`) and joins the
//! engine's fan-out as an ordinary responder, so its outcome takes the one block path. The
//! events iterator is fed by a reporting responder in the same fan-out (`crate::event_queue`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyPermissionError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use portsentry_core::capture::CaptureError;
use portsentry_core::engine::{EngineError, EngineOptions, Settings, Sources};
use portsentry_core::respond::{LogResponder, LogStyle, Responder};
use portsentry_core::{Config, Mode};

use crate::callback::{Callback, CallbackResponder, CallbackStats};
use crate::config::PyConfig;
use crate::detector::{check_responder, detection_arguments};
use crate::engine;
use crate::event::event_to_py;
use crate::event_queue::{EventQueue, EventSink, Popped};
use crate::live::{Live, Snapshot};
use crate::log_lines::LogLines;
use crate::vocab::{Message, argument_error, config_error, sensor_error};

/// How long a wait in Python's thread sleeps before it looks for Ctrl-C.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// What a sensor was given, before `start()`.
struct Prepared {
    modes: Vec<Mode>,
    interface: Option<String>,
    settings: Settings,
    /// Each Python responder with its name and whether it is blocking.
    responders: Vec<(String, Py<PyAny>, bool)>,
    /// Warnings found before the engine starts, reported among its messages.
    notes: Vec<String>,
    timeout: Duration,
    queue_size: usize,
}

/// A started sensor (running, or stopped). Shared, so that no lock is held while Python's
/// lock is released: a thread waiting for the phase lock with the interpreter lock held
/// could otherwise deadlock with one that wants the interpreter back.
struct Running {
    live: Live,
    callbacks: Vec<Callback>,
    stopped: AtomicBool,
}

impl Running {
    /// Stops responders first (so the engine's responder thread waits for no Python call),
    /// then the engine. Harmless when stopped already.
    fn stop(&self, events: &EventQueue) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            for callback in &self.callbacks {
                callback.stop();
            }
        }
        self.live.stop();
        events.close();
    }
}

enum Phase {
    Ready(Box<Prepared>),
    /// `start()` is opening the capture.
    Starting,
    Started(Arc<Running>),
    /// `start()` failed; the sensor cannot be used again.
    Failed,
}

/// A live port-scan sensor; see the module docs in `portsentry/__init__.py` and
/// docs/python.md.
#[pyclass(frozen, module = "portsentry", name = "Sensor")]
pub(crate) struct PySensor {
    phase: Mutex<Phase>,
    events: Arc<EventQueue>,
    log: LogLines,
}

#[pymethods]
impl PySensor {
    #[new]
    #[pyo3(signature = (
        config = None,
        *,
        modes = None,
        interface = None,
        responders = None,
        ignore = None,
        state_dir = None,
        callback_timeout = 1.0,
        queue_size = 1024,
        **overrides
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyConfig>>,
        modes: Option<&Bound<'_, PyAny>>,
        interface: Option<String>,
        responders: Option<&Bound<'_, PyAny>>,
        ignore: Option<&Bound<'_, PyAny>>,
        state_dir: Option<PathBuf>,
        callback_timeout: f64,
        queue_size: usize,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let (mut config, config_file) = config.map_or_else(
            || (Config::default(), None),
            |c| (c.get().config.clone(), c.get().path.clone()),
        );
        let mut problems = Vec::new();
        let (modes, ignore) =
            detection_arguments(&mut config, modes, ignore, overrides, &mut problems);
        if !(callback_timeout.is_finite() && callback_timeout > 0.0) {
            problems.push(Message::argument(
                "callback_timeout",
                format!("expected a positive number of seconds, got {callback_timeout}"),
            ));
        }
        if queue_size == 0 {
            problems.push(Message::argument("queue_size", "expected at least 1"));
        }
        if !problems.is_empty() {
            return Err(config_error(py, &problems, &[]));
        }
        let state_dir = state_dir.unwrap_or_else(portsentry_core::config::state_directory);
        config.resolve_state_paths(&state_dir);
        let (ignore, notes) = py
            .detach(|| trusted_ignore_list(&config, config_file.as_deref(), &ignore))
            .map_err(|problems| config_error(py, &problems, &[]))?;
        let mut list = Vec::new();
        if let Some(responders) = responders.filter(|r| !r.is_none()) {
            for responder in responders.try_iter()? {
                let responder = responder?;
                check_responder(py, &responder)?;
                let name = responder_name(&responder);
                let blocking = responder
                    .getattr("blocking")
                    .and_then(|b| b.is_truthy())
                    .unwrap_or(false);
                list.push((name, responder.unbind(), blocking));
            }
        }
        Ok(Self {
            phase: Mutex::new(Phase::Ready(Box::new(Prepared {
                modes,
                interface,
                settings: Settings {
                    config,
                    ignore: Some(ignore),
                    config_file,
                },
                responders: list,
                notes,
                timeout: Duration::from_secs_f64(callback_timeout),
                queue_size,
            }))),
            events: EventQueue::new(queue_size),
            log: LogLines::default(),
        })
    }

    /// Opens the capture (and the connect-mode sockets), starts the engine and the
    /// responder threads. Returns the sensor.
    ///
    /// Raises `PermissionError` without root or `CAP_NET_RAW` (stealth and advanced modes)
    /// or when no connect-mode port can be bound for lack of `CAP_NET_BIND_SERVICE`,
    /// `ConfigError` for unusable settings, `SensorError` otherwise.
    fn start(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let py = slf.py();
        let this = slf.get();
        let prepared = {
            let mut phase = this.phase.lock();
            match std::mem::replace(&mut *phase, Phase::Starting) {
                Phase::Ready(prepared) => prepared,
                other => {
                    let message = match other {
                        Phase::Starting => "this sensor is being started",
                        Phase::Failed => "this sensor failed to start; make a new one",
                        _ => "this sensor was already started",
                    };
                    *phase = other;
                    return Err(sensor_error(py, message));
                }
            }
        };
        let mut callbacks = Vec::new();
        for (name, target, blocking) in prepared.responders {
            let callback = Callback::start(
                name,
                target,
                blocking,
                prepared.timeout,
                prepared.queue_size,
            )
            .map_err(|e| {
                *this.phase.lock() = Phase::Failed;
                sensor_error(py, &format!("cannot start a responder thread: {e}"))
            })?;
            callbacks.push(callback);
        }
        let handles: Vec<CallbackResponder> = callbacks.iter().map(Callback::responder).collect();
        let events = Arc::clone(&this.events);
        let log = this.log.clone();
        let options = EngineOptions {
            log: Some(Box::new(move || {
                Box::new(LogResponder::new(log.writer(), LogStyle::Classic))
            })),
            extra: Some(Box::new(move || {
                let mut extra: Vec<Box<dyn Responder>> =
                    vec![Box::new(EventSink(Arc::clone(&events)))];
                extra.extend(
                    handles
                        .iter()
                        .map(|h| Box::new(h.clone()) as Box<dyn Responder>),
                );
                extra
            })),
            ..EngineOptions::default()
        };
        let (modes, interface, settings) = (prepared.modes, prepared.interface, prepared.settings);
        let started = py.detach(|| {
            let sources = Sources::open(&modes, &settings.config, interface.as_deref())?;
            Live::start(sources, settings, options)
        });
        match started {
            Ok(live) => {
                for note in prepared.notes {
                    live.warn(note);
                }
                *this.phase.lock() = Phase::Started(Arc::new(Running {
                    live,
                    callbacks,
                    stopped: AtomicBool::new(false),
                }));
                Ok(slf)
            }
            Err(error) => {
                for callback in &callbacks {
                    callback.stop();
                }
                *this.phase.lock() = Phase::Failed;
                Err(start_error(py, &error))
            }
        }
    }

    /// Stops capture, the engine and the responder threads; returns the final status.
    ///
    /// Returns within about a second (one engine turn, then the engine's shutdown; only
    /// block commands still running may hold it up to `STOP_TIMEOUT`). A Python call that is
    /// running goes on until it returns, but nothing is called afterwards: events still
    /// queued for a responder are counted in its `abandoned`. Stopping twice is harmless.
    fn stop(&self, py: Python<'_>) -> PyResult<SensorStatus> {
        let running = self.running_or_error(py)?;
        py.detach(|| running.stop(&self.events));
        Ok(self.status_of(py, &running))
    }

    /// The counters, blocks, drops and responder results now, as a `SensorStatus`.
    fn status(&self, py: Python<'_>) -> PyResult<SensorStatus> {
        let running = self.running_or_error(py)?;
        Ok(self.status_of(py, &running))
    }

    /// An iterator over the alerts and releases (the events the responders get), in order.
    /// Each step waits at most `timeout` seconds for the next event and ends the iteration
    /// when none came; `None` waits until the sensor stops. Ctrl-C raises
    /// `KeyboardInterrupt` while it waits.
    #[pyo3(signature = (timeout = None))]
    fn events(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<SensorEvents> {
        let timeout = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(argument_error(
                    py,
                    &format!("timeout: expected seconds (>= 0) or None, got {t}"),
                ));
            }
        };
        Ok(SensorEvents {
            queue: Arc::clone(&self.events),
            timeout,
        })
    }

    /// Blocks until the sensor stops (the capture failed for good, or another thread called
    /// `stop()`) or `timeout` seconds passed; returns whether it has stopped. Ctrl-C raises
    /// `KeyboardInterrupt` (which a `with` block turns into a clean stop).
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = timeout
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| Instant::now() + Duration::from_secs_f64(t));
        let running = self.running_or_error(py)?;
        loop {
            let slice = deadline.map_or(SIGNAL_SLICE, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE)
            });
            let stopped = py.detach(|| running.live.wait(slice));
            if stopped {
                return Ok(true);
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// True while the engine runs.
    #[getter]
    fn running(&self) -> bool {
        self.started().is_some_and(|r| r.live.is_running())
    }

    /// Starts the sensor unless `start()` was called already.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        if slf.get().started().is_some() {
            return Ok(slf);
        }
        Self::start(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        if self.started().is_some() {
            self.stop(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match &*self.phase.lock() {
            Phase::Ready(p) => format!("Sensor(modes={:?}, ready)", mode_names(&p.modes)),
            Phase::Started(r) if r.live.is_running() => "Sensor(running)".to_owned(),
            Phase::Started(_) => "Sensor(stopped)".to_owned(),
            Phase::Starting => "Sensor(starting)".to_owned(),
            Phase::Failed => "Sensor(failed to start)".to_owned(),
        }
    }
}

impl PySensor {
    /// The started sensor, if it was (the phase lock is held only for the clone).
    fn started(&self) -> Option<Arc<Running>> {
        match &*self.phase.lock() {
            Phase::Started(running) => Some(Arc::clone(running)),
            _ => None,
        }
    }

    fn running_or_error(&self, py: Python<'_>) -> PyResult<Arc<Running>> {
        self.started()
            .ok_or_else(|| sensor_error(py, "this sensor was not started"))
    }

    fn status_of(&self, py: Python<'_>, running: &Running) -> SensorStatus {
        let snapshot = py.detach(|| running.live.snapshot());
        SensorStatus::new(
            snapshot,
            &running.callbacks,
            self.events.dropped(),
            self.log.lines(),
        )
    }
}

impl Drop for PySensor {
    fn drop(&mut self) {
        if let Some(running) = self.started() {
            running.stop(&self.events);
        }
    }
}

/// The ignore list of a sensor: the `ignore=` entries, and the configuration's `IGNORE_FILE`
/// unless the configuration file is writable by anyone but root (as the daemon: an address
/// list chosen by others would protect their sources); then a warning says so.
///
/// # Errors
///
/// Every problem of the ignore file and of the entries.
fn trusted_ignore_list(
    config: &Config,
    config_file: Option<&std::path::Path>,
    entries: &[String],
) -> Result<(portsentry_core::IgnoreList, Vec<String>), Vec<Message>> {
    let mut without_file = config.clone();
    let named = without_file.ignore_file.take();
    let untrusted =
        !portsentry_core::permissions::check_config_files(config_file, &without_file).is_empty();
    match named {
        Some(path) if untrusted => Ok((
            engine::ignore_list(&without_file, entries)?,
            vec![format!(
                "IGNORE_FILE {} is not read while the configuration is not root's alone: no \
                 address is ignored through it",
                path.display()
            )],
        )),
        _ => Ok((engine::ignore_list(config, entries)?, Vec::new())),
    }
}

/// The name a Python responder is reported under: its `__qualname__` (functions), else its
/// class name (`Responder` objects, callable instances).
fn responder_name(responder: &Bound<'_, PyAny>) -> String {
    responder
        .getattr("__qualname__")
        .and_then(|n| n.extract::<String>())
        .or_else(|_| responder.get_type().qualname().map(|n| n.to_string()))
        .unwrap_or_else(|_| "responder".to_owned())
}

fn mode_names(modes: &[Mode]) -> Vec<&'static str> {
    modes.iter().map(|m| m.as_str()).collect()
}

/// The Python exception for an engine that cannot start.
fn start_error(py: Python<'_>, error: &EngineError) -> PyErr {
    match error {
        EngineError::Capture(CaptureError::NeedsCapNetRaw) => PyPermissionError::new_err(
            "the live capture (stealth and advanced modes) needs the CAP_NET_RAW capability: \
             run as root, grant CAP_NET_RAW to the Python interpreter, or use the connect \
             modes 'tcp' and 'udp' only",
        ),
        EngineError::NothingBound { failures }
            if failures.iter().any(|f| f.contains("ermission denied")) =>
        {
            PyPermissionError::new_err(format!(
                "connect mode: no port could be bound; ports below 1024 need the \
                 CAP_NET_BIND_SERVICE capability ({})",
                failures.join("; ")
            ))
        }
        EngineError::Detector(e) => config_error(py, &[engine::detector_problem(e)], &[]),
        other => sensor_error(py, &other.to_string()),
    }
}

/// One Python responder's counters in a `SensorStatus`.
#[pyclass(frozen, get_all, module = "portsentry", name = "ResponderStatus")]
#[derive(Debug, Clone)]
pub(crate) struct ResponderStatus {
    /// The responder's name (`__qualname__` or class name).
    name: String,
    /// Calls that returned or raised.
    calls: u64,
    /// Calls that raised.
    failures: u64,
    /// Calls that ended after the engine stopped waiting for them.
    late: u64,
    /// Events dropped because its queue was full.
    dropped: u64,
    /// Events never delivered because the sensor stopped first.
    abandoned: u64,
    /// Events waiting for it now.
    queued: usize,
    /// True while a call runs.
    busy: bool,
    /// The last exception, as `Type: message`.
    last_error: Option<String>,
}

#[pymethods]
impl ResponderStatus {
    fn __repr__(&self) -> String {
        format!(
            "ResponderStatus(name={:?}, calls={}, failures={}, late={}, dropped={}, queued={}, busy={})",
            self.name, self.calls, self.failures, self.late, self.dropped, self.queued, self.busy
        )
    }
}

impl ResponderStatus {
    fn new(name: &str, s: CallbackStats) -> Self {
        Self {
            name: name.to_owned(),
            calls: s.calls,
            failures: s.failures,
            late: s.late,
            dropped: s.dropped,
            abandoned: s.abandoned,
            queued: s.queued,
            busy: s.running,
            last_error: s.last_error,
        }
    }
}

/// A snapshot of a running (or stopped) sensor.
#[pyclass(frozen, get_all, module = "portsentry", name = "SensorStatus")]
#[derive(Debug, Clone)]
pub(crate) struct SensorStatus {
    /// True while the engine runs.
    running: bool,
    /// Why the engine ended on its own, if it did.
    failure: Option<String>,
    /// The active modes.
    modes: Vec<String>,
    /// Frames the kernel's filter passed to the capture.
    frames: u64,
    /// Frames the kernel dropped (capture queue full).
    kernel_drops: u64,
    /// Frames the classifier skipped (malformed, not a probe).
    skipped: u64,
    /// Capture read errors.
    capture_errors: u64,
    /// Alerts so far.
    alerts: u64,
    /// Probes from protected (ignored) sources.
    ignored: u64,
    /// Probes below the scan trigger.
    below_trigger: u64,
    /// Probes of unmonitored ports.
    not_monitored: u64,
    /// Probes from blocked sources.
    already_blocked: u64,
    /// Probes from sources that alerted already (log-only responses).
    already_alerted: u64,
    /// Alerts refused by `MAX_BLOCKS`/`BLOCK_RATE`.
    limited: u64,
    /// Sources the tracker holds now, and at most.
    tracked_sources: usize,
    tracker_capacity: usize,
    /// The blocked addresses.
    blocks: Vec<String>,
    /// Alerts whose block was not recorded: a failed command or blocking responder, and
    /// (as the library's block table counts them) alerts of a log-only response too.
    block_failures: u64,
    /// Alerts and releases dropped because the engine's response queue was full.
    dispatch_dropped: u64,
    /// Events dropped because `events()` was not read fast enough.
    events_dropped: u64,
    /// Each Python responder's counters.
    responders: Vec<ResponderStatus>,
    /// Error messages of the engine so far (failed responders, failed files).
    errors: u64,
    /// The engine's latest messages, `severity: text`.
    messages: Vec<String>,
    /// The latest log lines, as the daemon writes them (PortSentry 1.2 `attackalert:`
    /// lines, block steps, failed blocks, ignored and already-blocked sources).
    log: Vec<String>,
    /// This process's resident memory, in bytes (0 when /proc cannot be read).
    rss_bytes: u64,
}

#[pymethods]
impl SensorStatus {
    fn __repr__(&self) -> String {
        format!(
            "SensorStatus(running={}, frames={}, alerts={}, blocks={}, tracked_sources={}, errors={})",
            self.running,
            self.frames,
            self.alerts,
            self.blocks.len(),
            self.tracked_sources,
            self.errors
        )
    }
}

impl SensorStatus {
    fn new(
        snapshot: Snapshot,
        callbacks: &[Callback],
        events_dropped: u64,
        log: Vec<String>,
    ) -> Self {
        let engine = &snapshot.engine;
        let capture = engine.capture.unwrap_or_default();
        let d = &engine.detector;
        Self {
            running: snapshot.running,
            failure: snapshot.failure,
            modes: engine.modes.iter().map(|m| m.as_str().to_owned()).collect(),
            frames: capture.received,
            kernel_drops: capture.dropped,
            skipped: engine.skips.total(),
            capture_errors: engine.capture_errors,
            alerts: d.alerts,
            ignored: d.ignored,
            below_trigger: d.below_trigger,
            not_monitored: d.not_monitored,
            already_blocked: d.already_blocked,
            already_alerted: d.already_alerted,
            limited: d.limited,
            tracked_sources: d.tracker.tracked,
            tracker_capacity: d.tracker.capacity,
            blocks: engine
                .blocks
                .iter()
                .map(|b| b.address.to_string())
                .collect(),
            block_failures: d.blocks.failed,
            dispatch_dropped: engine.dispatch.dropped_alerts + engine.dispatch.dropped_releases,
            events_dropped,
            responders: callbacks
                .iter()
                .map(|c| ResponderStatus::new(c.name(), c.stats()))
                .collect(),
            errors: snapshot.errors,
            messages: snapshot.messages,
            log,
            rss_bytes: resident_bytes(),
        }
    }
}

/// This process's resident set size, from `VmRSS` in /proc/self/status (0 when unreadable).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// The iterator `Sensor.events()` returns.
#[pyclass(module = "portsentry", name = "SensorEvents")]
pub(crate) struct SensorEvents {
    queue: Arc<EventQueue>,
    timeout: Option<Duration>,
}

#[pymethods]
impl SensorEvents {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        loop {
            let slice = deadline.map_or(SIGNAL_SLICE, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE)
            });
            match py.detach(|| self.queue.pop(slice)) {
                Popped::Event(event) => return event_to_py(py, &event),
                Popped::Closed => return Err(PyStopIteration::new_err(())),
                Popped::Empty => {}
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyStopIteration::new_err(()));
            }
        }
    }
}
