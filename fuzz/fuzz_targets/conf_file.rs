//! The `portsentry.conf` reader must never panic on any text: the tokenizer
//! (`conf_file::parse`) and the whole load (`Config::parse_str`) agree on which files have
//! syntax errors, every entry it returns is well formed, and every message renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portsentry_core::Config;
use portsentry_core::config::ConfigError;
use portsentry_core::config::conf_file;

fuzz_target!(|data: &[u8]| {
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
});
