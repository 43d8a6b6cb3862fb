//! Python bindings for `portsentry-core`: the private native module `portsentry._portsentry`.
//!
//! Everything here is a thin wrapper; behaviour lives (and is tested) in `portsentry-core`.

use pyo3::prelude::*;

pyo3::create_exception!(
    portsentry,
    PortsentryError,
    pyo3::exceptions::PyException,
    "Base class of every error raised by portsentry."
);

/// The native module; `portsentry/__init__.py` re-exports its public names.
#[pymodule]
mod _portsentry {
    #[pymodule_export]
    use super::PortsentryError;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", portsentry_core::VERSION)
    }
}
