//! The invariants the fuzz targets check, shared by `fuzz/fuzz_targets/*` and the stable
//! `cargo test` that replays every committed corpus and regression input, so both run exactly
//! the same assertions.
//!
//! Each function takes arbitrary bytes and panics when an invariant does not hold. They are
//! meant for fuzzing and tests only; they are not part of the stable API.

use crate::Timestamp;
use crate::block_table::{format_journal, parse_journal};
use crate::classify::{LinkType, classify, classify_general};
use crate::config::{Config, ConfigError, conf_file};
use crate::control::{self, Answer, Request};
use crate::ignore::{IgnoreError, IgnoreList};

/// `classify` never panics, for any bytes and any link type, and its fast paths agree with
/// the general path.
///
/// # Panics
///
/// When the two paths disagree (or when `classify` itself panics).
pub fn classify_paths_agree(data: &[u8]) {
    for link in LinkType::ALL {
        let answer = classify(Timestamp::ZERO, link, data);
        assert_eq!(
            answer,
            classify_general(Timestamp::ZERO, link, data),
            "{link}"
        );
    }
}

/// The `portsentry.conf` reader never panics on any text: the tokenizer
/// ([`conf_file::parse`]) and the whole load ([`Config::parse_str`]) agree on which files have
/// syntax errors, every entry it returns is well formed, and every message names the file.
///
/// # Panics
///
/// When one of those invariants does not hold.
pub fn conf_file_invariants(data: &[u8]) {
    // `Config::load` decodes files the same way (Latin-1 comments become U+FFFD).
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let file = conf_file::parse(&text);
    for entry in &file.entries {
        assert!((1..=lines).contains(&entry.line), "{entry:?}");
        assert!(
            !entry.key.is_empty() && !entry.value.contains(['"', '\n']),
            "{entry:?}"
        );
    }
    for error in &file.errors {
        assert!((1..=lines).contains(&error.line), "{error:?}");
        let _ = error.kind.to_string();
    }
    match Config::parse_str(&text, "fuzz.conf") {
        Ok(loaded) => {
            assert!(file.errors.is_empty(), "syntax errors but the file loaded");
            for warning in &loaded.warnings {
                assert!(warning.to_string().starts_with("fuzz.conf:"));
            }
        }
        Err(ConfigError::Invalid {
            problems, warnings, ..
        }) => {
            assert!(!problems.is_empty(), "rejected without a problem");
            for message in problems
                .iter()
                .map(ToString::to_string)
                .chain(warnings.iter().map(ToString::to_string))
            {
                assert!(message.starts_with("fuzz.conf:"), "{message}");
            }
        }
        Err(other) => panic!("parse_str reads no file, yet: {other}"),
    }
}

/// The ignore-file parser never panics on any text; a list it accepts contains every network
/// it reports, and writing those networks back out parses to the same list.
///
/// # Panics
///
/// When one of those invariants does not hold.
pub fn ignore_file_invariants(data: &[u8]) {
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
            match IgnoreList::parse(&written, "again") {
                Ok(again) => assert_eq!(again, list),
                Err(e) => panic!("the networks of an accepted list do not parse back: {e}"),
            }
        }
        Err(IgnoreError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "rejected without a problem");
            for problem in &problems {
                assert!(problem.to_string().starts_with("fuzz.ignore:"), "{problem}");
            }
        }
        Err(other) => panic!("parse reads no file, yet: {other}"),
    }
}

/// The `BLOCKED_FILE` reader never panics on any text; a journal it accepts holds canonical
/// addresses, and writing it back out parses to the same entries (in the written order).
///
/// # Panics
///
/// When one of those invariants does not hold.
pub fn blocked_file_invariants(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_journal(&text) {
        Ok(entries) => {
            for e in &entries {
                assert_eq!(e.record.address, e.record.address.to_canonical(), "{e}");
            }
            let written = format_journal(&entries);
            let again = match parse_journal(&written) {
                Ok(again) => again,
                Err(e) => panic!("an accepted journal does not parse back: {e}\n{written}"),
            };
            let mut sorted = entries;
            sorted.sort_by_key(|e| (e.record.address, e.state));
            assert_eq!(again, sorted);
            assert_eq!(format_journal(&again), written);
        }
        Err(e) => {
            let lines = text.lines().count();
            assert!((1..=lines).contains(&e.line), "{e}");
            let _ = e.to_string();
        }
    }
}

/// The control-socket protocol never panics on any bytes: a request it accepts formats back
/// to a line that parses to the same request, a refusal's message fits on one line, and any
/// text read as an answer formats back to one line that reads as the same answer.
///
/// # Panics
///
/// When one of those invariants does not hold.
pub fn control_invariants(data: &[u8]) {
    match control::parse_request(data) {
        Ok(request) => {
            assert!(data.len() <= control::MAX_LINE);
            let line = request.to_string();
            assert_eq!(control::parse_request(line.as_bytes()), Ok(request));
            let Request::Unblock(address) = request;
            for answer in [Answer::Released(address), Answer::NotBlocked(address)] {
                assert_eq!(control::parse_answer(&answer.to_string()), answer);
            }
        }
        Err(error) => {
            let answer = Answer::Error(error.to_string()).to_string();
            assert!(!answer.contains('\n'), "{answer:?}");
        }
    }
    let text = String::from_utf8_lossy(data);
    let answer = control::parse_answer(&text);
    let line = answer.to_string();
    assert!(!line.contains(['\n', '\r']), "{line:?}");
    let again = control::parse_answer(&line);
    assert_eq!(control::parse_answer(&again.to_string()), again, "{line:?}");
}
