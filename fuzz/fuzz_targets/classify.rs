//! `classify` must never panic, for any bytes and any link type, and its fast path must agree
//! with the general path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portsentry_core::Timestamp;
use portsentry_core::classify::{LinkType, classify, classify_general};

fuzz_target!(|data: &[u8]| {
    for link in LinkType::ALL {
        let answer = classify(Timestamp::ZERO, link, data);
        assert_eq!(answer, classify_general(Timestamp::ZERO, link, data), "{link}");
    }
});
