//! The command line: global options and subcommands (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{check_config, completions, default_config, manual, replay, status, unblock};
use crate::run::RunArgs;

const LONG_ABOUT: &str = "\
portsentry watches a host's unused ports, recognises port scans (SYN, FIN, NULL, XMAS, UDP, \
connect and others) and answers them: a log line, a history record that fail2ban reads, and, \
if configured, a firewall block. It reads PortSentry 1.2 and 2.0 configuration files \
unchanged.

Without a subcommand it runs the detector: in the foreground by default (for systemd), in the \
background with -D. With no option at all it uses the built-in default configuration (or \
/etc/portsentry/portsentry.conf when it exists) in PortSentry 2.0's default mode, stealth TCP \
and UDP (stcp, sudp), log only, and prints its alerts on standard output.

PortSentry's own mode flags work as they always did, several at once: -tcp -udp -stcp -sudp \
-atcp -audp (and 2.0's --stealth, --connect). They are rewritten into --mode before the \
command line is parsed.";

const AFTER_LONG_HELP: &str = "\
EXAMPLES:
    Watch the classic ports in stealth mode, alerts on standard output:
        sudo portsentry

    PortSentry 1.2 style, advanced stealth TCP and UDP, with a configuration file:
        sudo portsentry -atcp -audp -c /etc/portsentry/portsentry.conf

    In the background, logging to syslog (daemon facility, ident portsentry):
        sudo portsentry -D --pid-file /run/portsentry.pid

    Which hosts are blocked, and lift one block:
        portsentry status
        sudo portsentry unblock 203.0.113.7

    Check a configuration and see what it will do:
        portsentry check-config -c /etc/portsentry/portsentry.conf

    Start from the built-in default:
        portsentry default-config > /etc/portsentry/portsentry.conf

    Serve Prometheus metrics on the loopback, and for node_exporter's textfile collector:
        sudo portsentry --metrics-listen 127.0.0.1:9610 \\
            --metrics-textfile /var/lib/prometheus/node-exporter/portsentry.prom

EXIT STATUS:
    0   success
    1   the configuration (or the ignore file it names) is invalid, or a file cannot be read;
        every problem is printed as FILE:LINE: KEY: MESSAGE
    2   wrong usage
    3   (status) the daemon is not running
    77  the detector lacks a privilege: root or CAP_NET_RAW for the stealth and advanced
        modes (the message says which)

SIGNALS:
    SIGHUP           reload the configuration and the ignore file; blocks and scan progress
                     are kept; a broken file is reported (file:line) and the old one kept
    SIGTERM, SIGINT  stop cleanly: finish running actions, write the block table and status

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
    STATE_DIRECTORY/portsentry.status
        JSON status written by the running detector every 2 seconds and at exit (read by
        `portsentry status`).
    STATE_DIRECTORY/portsentry.sock
        The running detector's control socket (mode 0600; used by `portsentry unblock`).

SEE ALSO:
    portsentry.conf(5), nft(8), hosts_access(5), fail2ban(1), crowdsec(8)

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

    /// Options of the detector (used when no subcommand is given).
    #[command(flatten)]
    pub(crate) run: RunArgs,

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
    /// Show the running detector's blocked hosts, expiries and counters.
    #[command(
        long_about = "Read the status file the detector writes in the state directory every 2 \
            seconds (and at exit) and show whether it runs, the blocked hosts with their \
            expiry, and its counters (alerts, ignored sources, skipped frames, kernel drops).",
        after_long_help = "EXAMPLES:\n    portsentry status\n    portsentry status --json\n\n\
            EXIT STATUS:\n    0   the detector is running\n    1   no status file can be read\n    \
            3   the detector is not running (its last status is shown)"
    )]
    Status(status::Args),

    /// Lift the block of one address, now.
    #[command(
        long_about = "Ask the running detector (through its control socket in the state \
            directory) to release ADDRESS: the release actions run (hosts.deny line removed, \
            nftables element deleted, UNBLOCK_CMD) and the block table is rewritten. When no \
            detector runs, the block table is edited and the release actions run from this \
            command instead.",
        after_long_help = "EXAMPLE:\n    portsentry unblock 203.0.113.7\n\n\
            EXIT STATUS:\n    0   released\n    1   the address was not blocked, or the request failed"
    )]
    Unblock(unblock::Args),

    /// Print a shell completion script (bash, zsh or fish).
    #[command(
        long_about = "Print the completion script for SHELL on standard output. The Debian \
            package installs them; by hand:",
        after_long_help = "EXAMPLES:\n    portsentry completions bash > /usr/share/bash-completion/completions/portsentry\n    \
            portsentry completions zsh > /usr/share/zsh/vendor-completions/_portsentry\n    \
            portsentry completions fish > /usr/share/fish/vendor_completions.d/portsentry.fish"
    )]
    Completions(completions::Args),

    /// Print the portsentry(8) manual page (roff).
    #[command(hide = true)]
    Manual(manual::Args),
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
