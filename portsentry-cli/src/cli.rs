//! The command line: global options and subcommands (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{check_config, default_config, replay};

const LONG_ABOUT: &str = "\
portsentry watches a host's unused ports, recognises port scans (SYN, FIN, NULL, XMAS, UDP, \
connect and others) and answers them: a log line, a history record that fail2ban reads, and, \
if configured, a firewall block. It reads PortSentry 1.2 and 2.0 configuration files \
unchanged.

Without a subcommand it runs the detector with the configuration given by -c (live detection \
is not part of this build yet: it prints the effective configuration and exits with status 2).";

const AFTER_LONG_HELP: &str = "\
EXAMPLES:
    Check a configuration and see what it will do:
        portsentry check-config -c /etc/portsentry/portsentry.conf

    Start from the built-in default:
        portsentry default-config > /etc/portsentry/portsentry.conf

EXIT STATUS:
    0   success
    1   the configuration (or the ignore file it names) is invalid, or a file cannot be read;
        every problem is printed as FILE:LINE: KEY: MESSAGE
    2   wrong usage; or no subcommand was given (live detection is not in this build yet)

FILES:
    /etc/portsentry/portsentry.conf
        The configuration used when -c is not given and the file exists; otherwise the
        built-in default (see `portsentry default-config`) is used.
    IGNORE_FILE (e.g. /etc/portsentry/portsentry.ignore)
        Addresses that are never counted or blocked: one IPv4/IPv6 address or CIDR block per
        line, # comments.
    HISTORY_FILE, BLOCKED_FILE
        Relative paths live in the state directory: $STATE_DIRECTORY (systemd), else
        /var/lib/portsentry when run as root, else $XDG_STATE_HOME/portsentry or
        ~/.local/state/portsentry.

ENVIRONMENT:
    PORTSENTRY_CONFIG   the configuration file, as -c (the option wins)";

/// Detect port scans, log them and block the scanners.
#[derive(Debug, Parser)]
#[command(
    name = "portsentry",
    version,
    about,
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The configuration file (PortSentry 1.2 or 2.0 syntax) [default: /etc/portsentry/portsentry.conf
    /// when it exists, else the built-in default]
    #[arg(
        short,
        long,
        global = true,
        value_name = "FILE",
        env = "PORTSENTRY_CONFIG"
    )]
    pub(crate) config: Option<PathBuf>,

    /// What to do; without one, the detector runs.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The subcommands. Each lives in its own module under `commands/`.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the configuration and print what it will do.
    #[command(
        long_about = "Load the configuration (and the ignore file it names), report every error \
            with file, line and key, and print the effective settings: ports per mode, files, \
            responses, detection settings. Warns about unknown and duplicate keys and about files \
            that anyone but root can write (blocking commands would not run).",
        after_long_help = "EXAMPLES:\n    portsentry check-config\n    portsentry check-config -c ./portsentry.conf\n\n\
            EXIT STATUS:\n    0   the configuration is valid (warnings may have been printed)\n    \
            1   it is invalid or cannot be read; every problem is printed"
    )]
    CheckConfig(check_config::Args),

    /// Print the built-in default configuration.
    #[command(
        long_about = "Print the built-in default configuration: the classic PortSentry port \
            lists, log only, state files in the state directory. Redirect it to a file to start \
            your own.",
        after_long_help = "EXAMPLE:\n    portsentry default-config > /etc/portsentry/portsentry.conf"
    )]
    DefaultConfig(default_config::Args),

    /// Replay a capture file through the detector and print what it decides.
    #[command(
        long_about = "Read a pcap or pcapng capture and run every frame, with its own capture \
            time, through the same classifier and detector as live detection, with the \
            configuration given by -c. Print the events as the daemon logs them, then a \
            summary: frames read, probes by kind, skipped frames by reason, alerts by source. \
            Nothing is blocked: a replay is always log only.",
        after_long_help = replay::AFTER_LONG_HELP
    )]
    Replay(replay::Args),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_option_is_global() {
        let cli = Cli::try_parse_from(["portsentry", "check-config", "-c", "x.conf"]).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("x.conf")));
        let cli =
            Cli::try_parse_from(["portsentry", "--config", "y.conf", "check-config"]).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("y.conf")));
        assert!(matches!(cli.command, Some(Command::CheckConfig(_))));
        let cli = Cli::try_parse_from(["portsentry"]).unwrap();
        assert!(cli.command.is_none());
    }
}
