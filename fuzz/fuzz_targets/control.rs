//! The control-socket protocol must never panic on any bytes; see
//! `portsentry_core::fuzzing::control_invariants` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portsentry_core::fuzzing::control_invariants(data));
