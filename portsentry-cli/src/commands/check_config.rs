//! `portsentry check-config`: validate the configuration and print what it will do.

use std::process::ExitCode;

use portsentry_core::respond::crowdsec::Credentials;

use crate::config_source::{self, Origin};

/// Options of `check-config` (the file comes from the global `-c`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Loads the configuration and the ignore file, prints the effective settings and warnings,
/// or every error (an unusable `CROWDSEC_CREDENTIALS` file included). Exit status 0 when
/// valid, 1 otherwise.
pub(crate) fn run(_args: &Args, origin: Origin) -> anyhow::Result<ExitCode> {
    match config_source::load(origin) {
        Ok(checked) => {
            print!("{}", crate::summary::render(&checked));
            super::print_warnings(&checked.warnings);
            // The credentials file is checked as the daemon checks it when it starts.
            if let Some(path) = &checked.config.crowdsec_credentials
                && let Err(error) = Credentials::load(path)
            {
                eprintln!("error: {error}");
                eprintln!("portsentry: configuration rejected: 1 error(s)");
                return Ok(ExitCode::from(super::EXIT_FAILURE));
            }
            println!("\nconfiguration OK ({} warning(s))", checked.warnings.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => Ok(super::report_failure(&failure)),
    }
}
