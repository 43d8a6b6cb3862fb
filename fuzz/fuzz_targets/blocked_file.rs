//! The `BLOCKED_FILE` journal reader must never panic on any text; see
//! `portsentry_core::fuzzing::blocked_file_invariants` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portsentry_core::fuzzing::blocked_file_invariants(data));
