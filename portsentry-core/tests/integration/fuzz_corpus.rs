//! Replays every committed fuzz input (`fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`) through the function its target fuzzes, on the stable
//! toolchain, so a crash found once stays a plain `cargo test` failure.

use std::path::Path;

use portsentry_core::classify::{LinkType, classify, classify_general};
use portsentry_core::config::ConfigError;
use portsentry_core::config::conf_file;
use portsentry_core::ignore::{IgnoreError, IgnoreList};
use portsentry_core::{Config, Timestamp};

use crate::support::workspace_root;

/// Runs one input through the fuzz target named `target`. Add a match arm per new target.
fn run_target(target: &str, input: &[u8]) {
    match target {
        "classify" => {
            for link in LinkType::ALL {
                let answer = classify(Timestamp::ZERO, link, input);
                assert_eq!(
                    answer,
                    classify_general(Timestamp::ZERO, link, input),
                    "{link}"
                );
            }
        }
        "conf_file" => conf_file_checks(input),
        "ignore_file" => ignore_file_checks(input),
        other => panic!("fuzz/{other}: no replay function for this target; add one"),
    }
}

/// What `fuzz/fuzz_targets/conf_file.rs` asserts.
fn conf_file_checks(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
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

/// What `fuzz/fuzz_targets/ignore_file.rs` asserts.
fn ignore_file_checks(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
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
}

/// Replays every file in `dir/<target>/`; returns how many inputs ran.
fn replay_tree(dir: &Path) -> usize {
    let Ok(targets) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for target in targets {
        let target = target.unwrap();
        if !target.file_type().unwrap().is_dir() {
            continue;
        }
        let name = target.file_name().into_string().unwrap();
        for input in std::fs::read_dir(target.path()).unwrap() {
            let path = input.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                eprintln!("replaying {}", path.display());
                run_target(&name, &bytes);
                count += 1;
            }
        }
    }
    count
}

#[test]
fn every_corpus_and_regression_input_replays() {
    let fuzz = workspace_root().join("fuzz");
    let seeds = replay_tree(&fuzz.join("corpus"));
    let regressions = replay_tree(&fuzz.join("regressions"));
    assert!(seeds > 0, "the committed seed corpus is missing");
    eprintln!("{seeds} corpus inputs, {regressions} regression inputs");
}
