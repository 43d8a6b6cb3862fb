//! `Config`: a validated `portsentry.conf`, with attribute access to the effective settings,
//! and the keyword overrides that `Config.replace` and `Detector(...)` accept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet};

use portsentry_core::config::{ConfigError as CoreConfigError, Loaded};
use portsentry_core::{BlockMode, Config, PortSet, TriggerMode};

use crate::vocab::{BLOCK_MODE, Message, config_error, messages_to_py};

/// A validated configuration: every attribute holds the value that takes effect.
#[pyclass(frozen, module = "portsentry", name = "Config")]
#[derive(Debug, Clone)]
pub(crate) struct PyConfig {
    pub(crate) config: Config,
    warnings: Vec<Message>,
    /// The file it was loaded from (`Config.load`), for the permission check of a `Sensor`.
    pub(crate) path: Option<PathBuf>,
}

impl PyConfig {
    pub(crate) fn from_config(config: Config) -> Self {
        Self {
            config,
            warnings: Vec::new(),
            path: None,
        }
    }

    fn from_loaded(loaded: Loaded) -> Self {
        Self {
            warnings: loaded.warnings.iter().map(Message::from).collect(),
            config: loaded.config,
            path: None,
        }
    }
}

/// Turns the library's configuration error into `ConfigError`.
fn to_py_error(py: Python<'_>, err: &CoreConfigError) -> PyErr {
    match err {
        CoreConfigError::Invalid {
            problems, warnings, ..
        } => {
            let problems: Vec<Message> = problems.iter().map(Message::from).collect();
            let warnings: Vec<Message> = warnings.iter().map(Message::from).collect();
            config_error(py, &problems, &warnings)
        }
        CoreConfigError::Read { path, source } => config_error(
            py,
            &[Message::file(
                path.display().to_string(),
                format!("cannot read: {source}"),
            )],
            &[],
        ),
        other => config_error(py, &[Message::file("<config>", other.to_string())], &[]),
    }
}

fn path_text(path: Option<&Path>) -> Option<String> {
    path.map(|p| p.to_string_lossy().into_owned())
}

fn ports<'py>(py: Python<'py>, set: &PortSet) -> PyResult<Bound<'py, PyFrozenSet>> {
    PyFrozenSet::new(py, set.iter())
}

fn block_mode<'py>(py: Python<'py>, mode: BlockMode) -> PyResult<Bound<'py, PyAny>> {
    BLOCK_MODE.member(py, mode.as_digit())
}

#[pymethods]
impl PyConfig {
    /// The built-in default: PortSentry's classic port lists, log only.
    #[staticmethod]
    fn default() -> Self {
        Self::from_config(Config::default())
    }

    /// Reads, parses and validates a `portsentry.conf` file (either PortSentry dialect).
    ///
    /// Raises `ConfigError` (with `file`, `line`, `key` and every problem in `problems`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        py.detach(|| Config::load(&path))
            .map(|loaded| Self {
                path: Some(path.clone()),
                ..Self::from_loaded(loaded)
            })
            .map_err(|err| to_py_error(py, &err))
    }

    /// Parses and validates configuration text; `origin` names it in messages.
    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn parse(py: Python<'_>, text: &str, origin: &str) -> PyResult<Self> {
        Config::parse_str(text, origin)
            .map(Self::from_loaded)
            .map_err(|err| to_py_error(py, &err))
    }

    /// A copy with some detection settings changed (the keywords of `Detector(...)`).
    #[pyo3(signature = (**overrides))]
    fn replace(&self, py: Python<'_>, overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut config = self.config.clone();
        let problems = apply_overrides(&mut config, overrides);
        if !problems.is_empty() {
            return Err(config_error(py, &problems, &[]));
        }
        Ok(Self {
            config,
            warnings: self.warnings.clone(),
            path: self.path.clone(),
        })
    }

    /// Unknown keys, duplicates and settings without effect found while loading.
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        messages_to_py(py, &self.warnings)
    }

    /// `TCP_PORTS`: ports watched in the tcp and stcp modes.
    #[getter]
    fn tcp_ports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        ports(py, &self.config.tcp_ports)
    }

    /// `UDP_PORTS`: ports watched in the udp and sudp modes.
    #[getter]
    fn udp_ports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        ports(py, &self.config.udp_ports)
    }

    /// `ADVANCED_PORTS_TCP`: atcp watches every port below this.
    #[getter]
    fn advanced_ports_tcp(&self) -> u16 {
        self.config.advanced_ports_tcp
    }

    /// `ADVANCED_PORTS_UDP`: audp watches every port below this.
    #[getter]
    fn advanced_ports_udp(&self) -> u16 {
        self.config.advanced_ports_udp
    }

    /// `ADVANCED_EXCLUDE_TCP`: ports never watched in atcp.
    #[getter]
    fn advanced_exclude_tcp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        ports(py, &self.config.advanced_exclude_tcp)
    }

    /// `ADVANCED_EXCLUDE_UDP`: ports never watched in audp.
    #[getter]
    fn advanced_exclude_udp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        ports(py, &self.config.advanced_exclude_udp)
    }

    /// `IGNORE_FILE`: the never-block list, if any.
    #[getter]
    fn ignore_file(&self) -> Option<String> {
        path_text(self.config.ignore_file.as_deref())
    }

    /// `HISTORY_FILE`, if any (relative paths are relative to the state directory).
    #[getter]
    fn history_file(&self) -> Option<String> {
        path_text(self.config.history_file.as_deref())
    }

    /// `HISTORY_FORMAT`: `classic`, `v2` or `json`.
    #[getter]
    fn history_format(&self) -> &'static str {
        self.config.history_format.as_str()
    }

    /// `SCAN_TRIGGER_MODE`: `count` (`scan_trigger` distinct ports) or `trw` (a Threshold
    /// Random Walk over the outcomes of each source's first contacts).
    #[getter]
    fn scan_trigger_mode(&self) -> &'static str {
        self.config.scan_trigger_mode.as_str()
    }

    /// `BLOCKED_FILE`, if any (relative paths are relative to the state directory).
    #[getter]
    fn blocked_file(&self) -> Option<String> {
        path_text(self.config.blocked_file.as_deref())
    }

    /// `RESOLVE_HOST`.
    #[getter]
    fn resolve_host(&self) -> bool {
        self.config.resolve_host
    }

    /// `BLOCK_TCP` (a `BlockMode`, an `int`: 0, 1 or 2).
    #[getter]
    fn block_tcp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        block_mode(py, self.config.block_tcp)
    }

    /// `BLOCK_UDP` (a `BlockMode`, an `int`: 0, 1 or 2).
    #[getter]
    fn block_udp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        block_mode(py, self.config.block_udp)
    }

    /// `KILL_ROUTE`, if set.
    #[getter]
    fn kill_route(&self) -> Option<String> {
        self.config.kill_route.clone()
    }

    /// `KILL_HOSTS_DENY`, if set.
    #[getter]
    fn kill_hosts_deny(&self) -> Option<String> {
        self.config.kill_hosts_deny.clone()
    }

    /// `KILL_RUN_CMD`, if set.
    #[getter]
    fn kill_run_cmd(&self) -> Option<String> {
        self.config.kill_run_cmd.clone()
    }

    /// `KILL_RUN_CMD_FIRST`.
    #[getter]
    fn kill_run_cmd_first(&self) -> bool {
        self.config.kill_run_cmd_first
    }

    /// `UNBLOCK_CMD`, if set.
    #[getter]
    fn unblock_cmd(&self) -> Option<String> {
        self.config.unblock_cmd.clone()
    }

    /// `HOSTS_DENY_FILE`.
    #[getter]
    fn hosts_deny_file(&self) -> String {
        self.config.hosts_deny_file.to_string_lossy().into_owned()
    }

    /// `SCAN_TRIGGER`: 0 and 1 alarm on the first probe; N alarms on the Nth distinct port.
    #[getter]
    fn scan_trigger(&self) -> u32 {
        self.config.scan_trigger
    }

    /// `SCAN_WINDOW` in seconds: how long a source's probes are remembered.
    #[getter]
    fn scan_window(&self) -> f64 {
        self.config.scan_window.as_secs_f64()
    }

    /// `MAX_TRACKED_SOURCES`.
    #[getter]
    fn max_tracked_sources(&self) -> usize {
        self.config.max_tracked_sources
    }

    /// `BLOCK_TIMEOUT` in seconds; None when blocks last forever.
    #[getter]
    fn block_timeout(&self) -> Option<f64> {
        self.config.block_timeout.map(|d| d.as_secs_f64())
    }

    /// `DETECT_ACK_SCANS`: count bare-ACK and FIN+ACK probes.
    #[getter]
    fn detect_ack_scans(&self) -> bool {
        self.config.detect_ack_scans
    }

    /// `NEVER_BLOCK_GATEWAYS`: never block the default gateways and resolvers.
    #[getter]
    fn never_block_infrastructure(&self) -> bool {
        self.config.never_block_infrastructure
    }

    /// `NFT_SET`, if set.
    #[getter]
    fn nft_set(&self) -> Option<String> {
        self.config.nft_set.clone()
    }

    /// `PORT_BANNER`, if set.
    #[getter]
    fn port_banner(&self) -> Option<String> {
        self.config.port_banner.clone()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Self>()
            .is_ok_and(|other| other.get().config == self.config)
    }

    fn __repr__(&self) -> String {
        let c = &self.config;
        format!(
            "Config(tcp_ports='{}', udp_ports='{}', scan_trigger={}, scan_window={}, block_tcp={}, block_udp={}, detect_ack_scans={})",
            c.tcp_ports,
            c.udp_ports,
            c.scan_trigger,
            c.scan_window.as_secs_f64(),
            c.block_tcp.as_digit(),
            c.block_udp.as_digit(),
            if c.detect_ack_scans { "True" } else { "False" },
        )
    }
}

/// The keyword overrides, by name: the detection settings of [`Config`].
pub(crate) const OVERRIDE_KEYS: [&str; 15] = [
    "tcp_ports",
    "udp_ports",
    "advanced_ports_tcp",
    "advanced_ports_udp",
    "advanced_exclude_tcp",
    "advanced_exclude_udp",
    "scan_trigger",
    "scan_window",
    "max_tracked_sources",
    "block_tcp",
    "block_udp",
    "block_timeout",
    "detect_ack_scans",
    "never_block_infrastructure",
    "scan_trigger_mode",
];

/// Applies keyword overrides to `config`; returns every problem found (nothing is applied
/// partially in a way that matters: the caller discards `config` when problems come back).
pub(crate) fn apply_overrides(
    config: &mut Config,
    overrides: Option<&Bound<'_, PyDict>>,
) -> Vec<Message> {
    let mut problems = Vec::new();
    let Some(overrides) = overrides else {
        return problems;
    };
    for (key, value) in overrides.iter() {
        let key = key.extract::<String>().unwrap_or_else(|_| key.to_string());
        if let Err(message) = apply_one(config, &key, &value) {
            problems.push(Message::argument(&key, message));
        }
    }
    problems
}

fn apply_one(config: &mut Config, key: &str, value: &Bound<'_, PyAny>) -> Result<(), String> {
    match key {
        "tcp_ports" => config.tcp_ports = port_list(value)?,
        "udp_ports" => config.udp_ports = port_list(value)?,
        "advanced_exclude_tcp" => config.advanced_exclude_tcp = port_list_or_empty(value)?,
        "advanced_exclude_udp" => config.advanced_exclude_udp = port_list_or_empty(value)?,
        "advanced_ports_tcp" => config.advanced_ports_tcp = whole(value, 1, 65_535)?,
        "advanced_ports_udp" => config.advanced_ports_udp = whole(value, 1, 65_535)?,
        "scan_trigger" => config.scan_trigger = whole(value, 0, 65_535)?,
        "max_tracked_sources" => config.max_tracked_sources = whole(value, 1, 16_777_216)?,
        "scan_window" => config.scan_window = seconds(value, 604_800.0)?,
        "block_timeout" => {
            config.block_timeout = if value.is_none() {
                None
            } else {
                Some(seconds_or_zero(value, 315_360_000.0)?).filter(|d| !d.is_zero())
            };
        }
        "block_tcp" => config.block_tcp = block(value)?,
        "block_udp" => config.block_udp = block(value)?,
        "detect_ack_scans" => config.detect_ack_scans = switch(value)?,
        "never_block_infrastructure" => config.never_block_infrastructure = switch(value)?,
        "scan_trigger_mode" => {
            config.scan_trigger_mode = match value.extract::<String>().as_deref() {
                Ok("count") => TriggerMode::Count,
                Ok("trw") => TriggerMode::Trw,
                _ => return Err(format!("expected \"count\" or \"trw\", got {value}")),
            };
        }
        _ => {
            return Err(format!(
                "unknown setting: expected one of {}",
                OVERRIDE_KEYS.join(", ")
            ));
        }
    }
    Ok(())
}

/// A port list as text (`"1-1024,8080"`) or as an iterable of port numbers.
fn port_list(value: &Bound<'_, PyAny>) -> Result<PortSet, String> {
    if let Ok(text) = value.extract::<String>() {
        return PortSet::parse(&text).map_err(|e| e.to_string());
    }
    let iter = value.try_iter().map_err(|_| {
        format!("expected a port list like \"1,7,512-515\" or an iterable of ports, got {value}")
    })?;
    let mut set = PortSet::new();
    for item in iter {
        let port = item
            .and_then(|item| item.extract::<u32>())
            .map_err(|_| "expected port numbers 1-65535".to_owned())?;
        let port = u16::try_from(port)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port {port} is outside 1-65535"))?;
        set.insert(port);
    }
    Ok(set)
}

/// Like [`port_list`], but `""` and empty iterables mean no port.
pub(crate) fn port_list_or_empty(value: &Bound<'_, PyAny>) -> Result<PortSet, String> {
    match value.extract::<String>() {
        Ok(text) if text.trim().is_empty() => Ok(PortSet::new()),
        _ => port_list(value),
    }
}

fn whole<T: TryFrom<u64>>(value: &Bound<'_, PyAny>, min: u64, max: u64) -> Result<T, String> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(format!(
            "expected a whole number from {min} to {max}, got a bool"
        ));
    }
    value
        .extract::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("expected a whole number from {min} to {max}, got {value}"))
}

fn seconds_or_zero(value: &Bound<'_, PyAny>, max: f64) -> Result<Duration, String> {
    let secs = if value.is_instance_of::<pyo3::types::PyBool>() {
        None
    } else {
        value.extract::<f64>().ok()
    };
    secs.filter(|s| (0.0..=max).contains(s))
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected seconds from 0 to {max}, got {value}"))
}

fn seconds(value: &Bound<'_, PyAny>, max: f64) -> Result<Duration, String> {
    let duration = seconds_or_zero(value, max)
        .map_err(|_| format!("expected seconds above 0 and at most {max}, got {value}"))?;
    if duration < Duration::from_millis(1) {
        return Err(format!("expected at least 0.001 seconds, got {value}"));
    }
    Ok(duration)
}

fn block(value: &Bound<'_, PyAny>) -> Result<BlockMode, String> {
    match whole::<u8>(value, 0, 2) {
        Ok(0) => Ok(BlockMode::LogOnly),
        Ok(1) => Ok(BlockMode::Block),
        Ok(2) => Ok(BlockMode::RunCommandOnly),
        _ => Err(format!(
            "expected 0 (log only), 1 (block: run the responders) or 2 (run KILL_RUN_CMD only), got {value}"
        )),
    }
}

fn switch(value: &Bound<'_, PyAny>) -> Result<bool, String> {
    value
        .extract::<bool>()
        .map_err(|_| format!("expected True or False, got {value}"))
}
