//! Python bindings for `portsentry-core`.
//!
//! The wheel itself (PyO3 + maturin) is built in a later step; this crate
//! already compiles inside the workspace so that `cargo test --workspace`
//! covers it from the start.

/// The version of the core library these bindings wrap.
pub fn core_version() -> &'static str {
    portsentry_core::VERSION
}
