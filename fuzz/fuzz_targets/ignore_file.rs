//! The ignore-file parser must never panic on any text; see
//! `portsentry_core::fuzzing::ignore_file_invariants` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portsentry_core::fuzzing::ignore_file_invariants(data));
