//! `classify` must never panic, for any bytes and any link type, and its fast path must agree
//! with the general path; see `portsentry_core::fuzzing::classify_paths_agree`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portsentry_core::fuzzing::classify_paths_agree(data));
