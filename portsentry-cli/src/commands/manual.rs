//! `portsentry manual`: print the `portsentry(8)` manual page, generated from the command-line
//! definition (hidden: it is how the package builds its page, so the page can never describe
//! options the binary does not have).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// Options of `manual` (none).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Writes the roff source of `portsentry.8` to standard output.
pub(crate) fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    render(&mut page).context("cannot render the manual page")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&page)
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Renders `portsentry.8` (section 8: a system daemon) into `out`.
fn render(out: &mut Vec<u8>) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("portsentry {}", env!("CARGO_PKG_VERSION")))
        .render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_option_and_subcommand() {
        let mut page = Vec::new();
        render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
        assert!(page.contains(".TH portsentry 8"), "{page}");
        for text in [
            "metrics\\-listen",
            "metrics\\-textfile",
            "check\\-config",
            "completions",
            "EXIT STATUS",
            "SIGHUP",
        ] {
            assert!(page.contains(text), "no {text} in the page:\n{page}");
        }
        assert!(
            !page.contains("portsentry\\-manual"),
            "the hidden command is listed"
        );
    }

    #[test]
    fn the_config_page_describes_every_key() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/man/portsentry.conf.5");
        let page = std::fs::read_to_string(path).unwrap();
        for key in portsentry_core::config::keys::KEYS {
            let heading = format!(".BR {} \" [{}]\"", key.name, key.origin.as_str());
            assert!(
                page.lines().any(|l| l == heading),
                "{path} has no entry {heading:?} for {}",
                key.name
            );
        }
    }
}
