//! `portsentry check-config`: validate the configuration and print what it will do.

use std::process::ExitCode;

use crate::config_source::{self, Origin};

/// Options of `check-config` (the file comes from the global `-c`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Loads the configuration and the ignore file, prints the effective settings and warnings,
/// or every error. Exit status 0 when valid, 1 otherwise.
pub(crate) fn run(_args: &Args, origin: Origin) -> anyhow::Result<ExitCode> {
    match config_source::load(origin) {
        Ok(checked) => {
            print!("{}", crate::summary::render(&checked));
            super::print_warnings(&checked.warnings);
            println!("\nconfiguration OK ({} warning(s))", checked.warnings.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => Ok(super::report_failure(&failure)),
    }
}
