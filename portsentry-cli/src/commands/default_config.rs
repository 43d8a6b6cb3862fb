//! `portsentry default-config`: print the embedded default configuration.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use portsentry_core::config::DEFAULT_CONF;

/// Options of `default-config` (none yet).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Writes the embedded default to standard output, exactly as embedded.
pub(crate) fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(DEFAULT_CONF.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
