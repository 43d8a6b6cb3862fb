//! The ignore-file parser must never panic on any text; a list it accepts contains every
//! network it reports, and writing those networks back out parses to the same list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portsentry_core::ignore::{IgnoreError, IgnoreList};

fuzz_target!(|data: &[u8]| {
    // `IgnoreList::load` decodes files the same way.
    let text = String::from_utf8_lossy(data);
    match IgnoreList::parse(&text, "fuzz.ignore") {
        Ok(list) => {
            let mut written = String::new();
            for net in list.networks() {
                assert!(list.contains(net.network()), "{net} not contained");
                assert!(list.contains(net.broadcast()), "{net} not contained");
                written.push_str(&net.to_string());
                written.push('\n');
            }
            let again = IgnoreList::parse(&written, "again").expect("networks parse back");
            assert_eq!(again, list);
        }
        Err(IgnoreError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "rejected without a problem");
            for problem in &problems {
                assert!(problem.to_string().starts_with("fuzz.ignore:"), "{problem}");
            }
        }
        Err(other) => panic!("parse reads no file, yet: {other}"),
    }
});
