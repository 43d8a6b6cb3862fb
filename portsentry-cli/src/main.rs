//! `portsentry`: detect port scans, log them and answer them.
//!
//! This binary is thin: argument parsing ([`cli`]), one module per subcommand
//! ([`commands`]), and the shared configuration loading ([`config_source`]) and
//! display ([`summary`]). Everything that decides lives in `portsentry-core`.

mod cli;
mod commands;
mod config_source;
mod legacy_args;
mod metrics;
mod run;
mod state_files;
mod summary;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    // PortSentry's `-tcp`, `-stcp`, ... become `--mode ...` before clap parses.
    let mut command = cli::Cli::command();
    let args = match legacy_args::rewrite(std::env::args_os(), &command) {
        Ok(args) => args,
        Err(misplaced) => misplaced.into_clap_error(&mut command).exit(),
    };
    let cli = cli::Cli::parse_from(args);
    match commands::run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portsentry: error: {err:#}");
            ExitCode::from(commands::EXIT_FAILURE)
        }
    }
}
