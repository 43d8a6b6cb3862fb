//! Python bindings for `portsentry-core`: the private native module `portsentry._portsentry`.
//!
//! Everything here is a thin wrapper; behaviour lives (and is tested) in `portsentry-core`.
//! The string enums, `Located` and the exception classes are plain Python
//! (`python/portsentry/_types.py`); [`vocab`] builds them from Rust values.

mod callback;
mod config;
mod detector;
mod engine;
mod event;
mod event_queue;
mod link;
mod live;
mod log_lines;
mod probe;
mod replay;
mod report;
mod sensor;
mod vocab;

use pyo3::prelude::*;

/// The native module; `portsentry/__init__.py` re-exports its public names.
#[pymodule]
mod _portsentry {
    #[pymodule_export]
    use super::config::PyConfig;
    #[pymodule_export]
    use super::detector::PyDetector;
    #[pymodule_export]
    use super::event::{
        PyAlert, PyAlreadyAlerted, PyAlreadyBlocked, PyBelowTrigger, PyEvent, PyIgnored,
        PyNotMonitored, PyReleased,
    };
    #[pymodule_export]
    use super::probe::{PyProbe, py_classify};
    #[pymodule_export]
    use super::replay::{replay, replay_report};
    #[pymodule_export]
    use super::report::{PyPorts, PyReplayReport, PyReplaySummary, PySourceReport};
    #[pymodule_export]
    use super::sensor::{PySensor, ResponderStatus, SensorEvents, SensorStatus};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", portsentry_core::VERSION)
    }
}
