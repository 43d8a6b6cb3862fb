//! `portsentry unblock ADDRESS`: lift one block now.
//!
//! With a running detector the request goes through its control socket (the detector owns the
//! block table: it releases the address, runs the release actions and rewrites the
//! `BLOCKED_FILE`). Without one, this command does the same itself, through the library's
//! one block path ([`portsentry_core::block_outcome`]): it marks the record releasing in the
//! `BLOCKED_FILE`, runs the release actions (hosts.deny line removed, nftables element
//! deleted, `UNBLOCK_CMD`), printing their log lines, and then drops the record.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{Context, bail};
use portsentry_core::block_outcome;
use portsentry_core::block_table::{format_journal, parse_journal};
use portsentry_core::control::{self, Answer};
use portsentry_core::engine;
use portsentry_core::respond::{LogResponder, LogStyle, address_text, blocked_file};
use portsentry_core::{Timestamp, config};

use super::{EXIT_FAILURE, report_failure};
use crate::config_source::{self, Origin};
use crate::run::ClientError;
use crate::state_files;

/// Options of `unblock`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The blocked address (IPv4 or IPv6)
    #[arg(value_name = "ADDRESS")]
    address: IpAddr,
}

/// Releases the address; exit 0 when it was blocked, 1 otherwise.
pub(crate) fn run(args: &Args, origin: Origin) -> anyhow::Result<ExitCode> {
    let address = args.address.to_canonical();
    let socket = state_files::socket_path(&config::state_directory());
    match crate::run::request_unblock(&socket, address) {
        Ok(answer) => Ok(report_answer(&answer, address)),
        Err(ClientError::NoDetector(_)) => offline(address, origin),
        Err(untrusted @ ClientError::Untrusted(_)) => {
            // Not root's socket: no detector of ours is behind it.
            eprintln!("portsentry: warning: {untrusted}");
            offline(address, origin)
        }
        Err(e) => Err(e.into()),
    }
}

fn report_answer(answer: &str, address: IpAddr) -> ExitCode {
    match control::parse_answer(answer) {
        Answer::Released(_) => {
            println!("portsentry: {address} released by the running detector");
            ExitCode::SUCCESS
        }
        Answer::NotBlocked(_) => {
            eprintln!("portsentry: {address} is not blocked");
            ExitCode::from(EXIT_FAILURE)
        }
        _ => {
            eprintln!("portsentry: the detector answered: {answer}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// No detector runs: the same steps as the detector's, on the journal in the file: the entry
/// is marked releasing (written), the release actions run, then the entry goes (written).
fn offline(address: IpAddr, origin: Origin) -> anyhow::Result<ExitCode> {
    let checked = match config_source::load(origin) {
        Ok(checked) => checked,
        Err(failure) => return Ok(report_failure(&failure)),
    };
    if let Some(finding) = checked.findings.first() {
        // The configuration was disarmed: its BLOCKED_FILE and release actions are not trusted.
        bail!("no detector is running, and the configuration is not root's alone: {finding}");
    }
    let Some(path) = checked.config.blocked_file.clone() else {
        bail!("no detector is running and the configuration has no BLOCKED_FILE");
    };
    let text = blocked_file::read_if_exists(&path)?.unwrap_or_default();
    let mut entries = parse_journal(&text)
        .with_context(|| format!("{}: unreadable block table", path.display()))?;
    let now = Timestamp::from_secs(state_files::unix_now());
    let Some(release) = block_outcome::release_in_journal(&mut entries, address, now) else {
        eprintln!(
            "portsentry: {} is not blocked (no detector running; {} checked)",
            address_text(address),
            path.display()
        );
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    blocked_file::write_atomic(&path, &format_journal(&entries))?;
    let settings = checked.settings();
    let log = Box::new(LogResponder::new(std::io::stdout(), LogStyle::Classic));
    let (mut fanout, findings) = engine::responders(&settings, Some(log))?;
    for finding in &findings {
        eprintln!("warning: {finding}");
    }
    let report = fanout.handle_release(&release, None);
    let mut failed = false;
    for r in &report.responders {
        if let Err(e) = &r.result {
            eprintln!("portsentry: release action {} failed: {e}", r.name);
            failed = true;
        }
    }
    block_outcome::forget_release_in_journal(&mut entries, address);
    blocked_file::write_atomic(&path, &format_journal(&entries))?;
    println!(
        "portsentry: {} removed from {} (no detector running; release actions run here)",
        address_text(address),
        path.display()
    );
    Ok(if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
