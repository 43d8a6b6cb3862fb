//! Replays every committed fuzz input (`fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`) through the function its target fuzzes, on the stable
//! toolchain, so a crash found once stays a plain `cargo test` failure.

use std::path::Path;

use portsentry_core::fuzzing;

use crate::support::workspace_root;

/// Runs one input through the checks of the fuzz target named `target`. Add a match arm per
/// new target.
fn run_target(target: &str, input: &[u8]) {
    match target {
        "classify" => fuzzing::classify_paths_agree(input),
        "conf_file" => fuzzing::conf_file_invariants(input),
        "ignore_file" => fuzzing::ignore_file_invariants(input),
        "blocked_file" => fuzzing::blocked_file_invariants(input),
        "control" => fuzzing::control_invariants(input),
        other => panic!("fuzz/{other}: no replay function for this target; add one"),
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
