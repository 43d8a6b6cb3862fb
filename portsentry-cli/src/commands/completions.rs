//! `portsentry completions SHELL`: print a completion script for bash, zsh or fish.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Options of `completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell: bash, zsh or fish (elvish and powershell work too)
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: Shell,
}

/// Writes the completion script for the chosen shell to standard output.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
