//! The Python-side vocabulary (`portsentry._types`): string enums, [`Located`] messages and the
//! exception classes, built from Rust values.
//!
//! These classes are plain Python so that they subclass `str`, `int` and `Exception`
//! naturally; the native module looks them up once and calls them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use portsentry_core::located::Located;

/// The module holding the vocabulary.
const MODULE: &str = "portsentry._types";

/// One Python class of `portsentry._types`, imported on first use.
pub(crate) struct PyClassRef {
    name: &'static str,
    cell: PyOnceLock<Py<PyType>>,
}

impl PyClassRef {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            cell: PyOnceLock::new(),
        }
    }

    /// The class object.
    pub(crate) fn get<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyType>> {
        self.cell.import(py, MODULE, self.name)
    }

    /// The member of an enum class with this value (`ScanKind("syn")`).
    pub(crate) fn member<'py>(
        &self,
        py: Python<'py>,
        value: impl IntoPyObject<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.get(py)?.call1((value,))
    }
}

pub(crate) static SCAN_KIND: PyClassRef = PyClassRef::new("ScanKind");
pub(crate) static PROTOCOL: PyClassRef = PyClassRef::new("Protocol");
pub(crate) static MODE: PyClassRef = PyClassRef::new("Mode");
pub(crate) static IGNORE_REASON: PyClassRef = PyClassRef::new("IgnoreReason");
pub(crate) static EVENT_KIND: PyClassRef = PyClassRef::new("EventKind");
pub(crate) static BLOCK_MODE: PyClassRef = PyClassRef::new("BlockMode");
pub(crate) static LOCATED: PyClassRef = PyClassRef::new("Located");
pub(crate) static ARGUMENT_ERROR: PyClassRef = PyClassRef::new("ArgumentError");
pub(crate) static CONFIG_ERROR: PyClassRef = PyClassRef::new("ConfigError");
pub(crate) static CAPTURE_FILE_ERROR: PyClassRef = PyClassRef::new("CaptureFileError");
pub(crate) static RESPONDER_ERROR: PyClassRef = PyClassRef::new("ResponderError");
pub(crate) static RESPONDER_FAILURE: PyClassRef = PyClassRef::new("ResponderFailure");
pub(crate) static RESPONDER: PyClassRef = PyClassRef::new("Responder");
pub(crate) static SENSOR_ERROR: PyClassRef = PyClassRef::new("SensorError");

/// A problem or warning as it is found in a file, before it becomes a Python `Located`.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) file: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
}

impl Message {
    /// A message about a keyword argument (no file, no line).
    pub(crate) fn argument(key: &str, message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// A message about a whole file (no line, no key).
    pub(crate) fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.into()),
            line: None,
            key: None,
            message: message.into(),
        }
    }

    /// The text `file:line: KEY: message`, as `Located.__str__` writes it.
    pub(crate) fn display(&self) -> String {
        let mut text = self
            .file
            .clone()
            .unwrap_or_else(|| "<arguments>".to_owned());
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
        }
        if let Some(key) = &self.key {
            text.push_str(&format!(": {key}"));
        }
        format!("{text}: {}", self.message)
    }

    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        LOCATED.get(py)?.call1((
            self.file.as_deref(),
            self.line,
            self.key.as_deref(),
            self.message.as_str(),
        ))
    }
}

impl<K: std::fmt::Display> From<&Located<K>> for Message {
    fn from(located: &Located<K>) -> Self {
        Self {
            file: Some(located.file.clone()),
            line: located.line,
            key: located.key.clone(),
            message: located.kind.to_string(),
        }
    }
}

/// Builds a `PyErr` of the Python class `class`, called as `class(message, **kwargs)`.
///
/// If building the exception fails itself, that failure is returned instead.
fn build_error(
    py: Python<'_>,
    class: &PyClassRef,
    message: &str,
    kwargs: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let dict = PyDict::new(py);
        kwargs(&dict)?;
        let value = class.get(py)?.call((message,), Some(&dict))?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|err| err)
}

/// `ArgumentError(message)`.
pub(crate) fn argument_error(py: Python<'_>, message: &str) -> PyErr {
    build_error(py, &ARGUMENT_ERROR, message, |_| Ok(()))
}

/// `SensorError(message)`: a live sensor cannot start or go on.
pub(crate) fn sensor_error(py: Python<'_>, message: &str) -> PyErr {
    build_error(py, &SENSOR_ERROR, message, |_| Ok(()))
}

/// `ConfigError` locating the first of `problems` and listing all of them.
pub(crate) fn config_error(py: Python<'_>, problems: &[Message], warnings: &[Message]) -> PyErr {
    let first = problems.first();
    let message = match problems {
        [] => "invalid configuration".to_owned(),
        [only] => only.display(),
        [first, rest @ ..] => format!("{} (and {} more problem(s))", first.display(), rest.len()),
    };
    build_error(py, &CONFIG_ERROR, &message, |kw| {
        kw.set_item("file", first.and_then(|p| p.file.as_deref()))?;
        kw.set_item("line", first.and_then(|p| p.line))?;
        kw.set_item("key", first.and_then(|p| p.key.as_deref()))?;
        kw.set_item("problems", messages_to_py(py, problems)?)?;
        kw.set_item("warnings", messages_to_py(py, warnings)?)?;
        Ok(())
    })
}

/// `CaptureFileError(message, path=path, events=events, report=report)`.
pub(crate) fn capture_file_error(
    py: Python<'_>,
    message: &str,
    path: &str,
    events: &Bound<'_, PyAny>,
    report: Option<&Bound<'_, PyAny>>,
) -> PyErr {
    build_error(py, &CAPTURE_FILE_ERROR, message, |kw| {
        kw.set_item("path", path)?;
        kw.set_item("events", events)?;
        kw.set_item("report", report)
    })
}

/// `ResponderError(message, events=..., failures=...)` with `__cause__` set to `cause`.
pub(crate) fn responder_error(
    py: Python<'_>,
    message: &str,
    events: &Bound<'_, PyAny>,
    failures: &Bound<'_, PyAny>,
    cause: PyErr,
) -> PyErr {
    let err = build_error(py, &RESPONDER_ERROR, message, |kw| {
        kw.set_item("events", events)?;
        kw.set_item("failures", failures)
    });
    err.set_cause(py, Some(cause));
    err
}

/// A tuple of Python `Located` objects.
pub(crate) fn messages_to_py<'py>(
    py: Python<'py>,
    messages: &[Message],
) -> PyResult<Bound<'py, PyTuple>> {
    let items = messages
        .iter()
        .map(|m| m.to_py(py))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}
