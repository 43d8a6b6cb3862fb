//! One module per subcommand; [`run`] dispatches.

pub(crate) mod check_config;
pub(crate) mod completions;
pub(crate) mod default_config;
pub(crate) mod manual;
pub(crate) mod replay;
pub(crate) mod status;
pub(crate) mod unblock;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config_source::{Failure, Origin, SYSTEM_CONFIG};

/// Exit status: the configuration is invalid or a file cannot be read.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Runs the chosen subcommand (or the no-subcommand default).
pub(crate) fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let origin = Origin::choose(cli.config.as_deref(), std::path::Path::new(SYSTEM_CONFIG));
    match &cli.command {
        Some(Command::CheckConfig(args)) => check_config::run(args, origin),
        Some(Command::DefaultConfig(args)) => default_config::run(args),
        Some(Command::Completions(args)) => completions::run(args),
        Some(Command::Manual(args)) => manual::run(args),
        Some(Command::Replay(args)) => replay::run(args, origin),
        Some(Command::Status(args)) => status::run(args, origin),
        Some(Command::Unblock(args)) => unblock::run(args, origin),
        None => crate::run::run(&cli.run, origin),
    }
}

/// Prints warnings to standard error, one per line.
pub(crate) fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// Prints every problem of a failed load and returns the failure status.
pub(crate) fn report_failure(failure: &Failure) -> ExitCode {
    match failure {
        Failure::Unreadable(message) => eprintln!("portsentry: error: {message}"),
        Failure::Invalid { problems, warnings } => {
            print_warnings(warnings);
            for problem in problems {
                eprintln!("error: {problem}");
            }
            eprintln!(
                "portsentry: configuration rejected: {} error(s)",
                problems.len()
            );
        }
    }
    ExitCode::from(EXIT_FAILURE)
}
