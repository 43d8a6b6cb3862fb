//! The effective configuration, printed for people (`check-config`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use portsentry_core::{Config, Mode, PortSet};

use crate::config_source::Checked;

/// Text built section by section, labels aligned.
#[derive(Default)]
struct Report(String);

impl Report {
    fn section(&mut self, title: &str) {
        let _ = writeln!(self.0, "\n{title}:");
    }

    fn item(&mut self, label: &str, value: impl AsRef<str>) {
        let _ = writeln!(self.0, "  {label:<22} {}", value.as_ref());
    }
}

/// The summary text of a checked configuration.
pub(crate) fn render(checked: &Checked) -> String {
    let c = &checked.config;
    let mut r = Report::default();
    let _ = writeln!(r.0, "configuration: {}", checked.origin);
    let _ = writeln!(r.0, "state directory: {}", checked.state_dir.display());

    r.section("ports watched per mode");
    for mode in Mode::ALL {
        r.item(mode.as_str(), ports_of(c, mode));
    }

    r.section("files");
    let ignore = match (&c.ignore_file, &checked.ignore) {
        (None, _) => none(),
        (Some(path), Some(list)) => format!("{} ({} entries)", path.display(), list.len()),
        (Some(path), None) => format!("{} (missing)", path.display()),
    };
    r.item("IGNORE_FILE", ignore);
    let history = c.history_file.as_deref().map_or_else(none, |p| {
        format!("{} (format {})", p.display(), c.history_format.as_str())
    });
    r.item("HISTORY_FILE", history);
    r.item("BLOCKED_FILE", path_or_none(c.blocked_file.as_deref()));
    r.item("HOSTS_DENY_FILE", c.hosts_deny_file.display().to_string());

    r.section("responses");
    r.item("BLOCK_TCP", block(c.block_tcp));
    r.item("BLOCK_UDP", block(c.block_udp));
    r.item("KILL_ROUTE", text_or_none(c.kill_route.as_deref()));
    r.item(
        "KILL_HOSTS_DENY",
        text_or_none(c.kill_hosts_deny.as_deref()),
    );
    r.item("KILL_RUN_CMD", text_or_none(c.kill_run_cmd.as_deref()));
    r.item(
        "KILL_RUN_CMD_FIRST",
        yes_no(
            c.kill_run_cmd_first,
            "before the other actions",
            "after the other actions",
        ),
    );
    r.item("NFT_SET", text_or_none(c.nft_set.as_deref()));
    r.item(
        "CROWDSEC_CREDENTIALS",
        c.crowdsec_credentials.as_deref().map_or_else(none, |p| {
            format!("{} (blocks become CrowdSec decisions)", p.display())
        }),
    );
    r.item("UNBLOCK_CMD", text_or_none(c.unblock_cmd.as_deref()));
    let timeout = c
        .block_timeout
        .map_or_else(|| "0 (blocks never expire)".to_owned(), seconds);
    r.item("BLOCK_TIMEOUT", timeout);
    r.item("PORT_BANNER", text_or_none(c.port_banner.as_deref()));
    r.item(
        "CONTROL_GROUP",
        c.control_group
            .as_deref()
            .map_or_else(|| "none (root only)".to_owned(), ToOwned::to_owned),
    );

    r.section("detection");
    let trigger = match c.scan_trigger {
        0 | 1 => format!("{} (the first probe alarms)", c.scan_trigger),
        n => format!("{n} (alarms when one source has probed {n} distinct ports)"),
    };
    r.item("SCAN_TRIGGER", trigger);
    r.item("SCAN_WINDOW", seconds(c.scan_window));
    r.item("MAX_TRACKED_SOURCES", c.max_tracked_sources.to_string());
    let probe_events = match c.probe_events_per_second {
        0 => "0 (off)".to_owned(),
        n => format!("at most {n} probe line(s) per second, a source's first port"),
    };
    r.item("PROBE_EVENTS", probe_events);
    r.item(
        "DETECT_ACK_SCANS",
        yes_no(c.detect_ack_scans, "counted", "not counted"),
    );
    r.item(
        "NEVER_BLOCK_GATEWAYS",
        yes_no(
            c.never_block_infrastructure,
            "gateways and resolvers are never blocked",
            "gateways and resolvers may be blocked",
        ),
    );
    r.item(
        "RESOLVE_HOST",
        yes_no(
            c.resolve_host,
            "names in log lines",
            "numeric addresses only",
        ),
    );
    r.0
}

fn ports_of(c: &Config, mode: Mode) -> String {
    let (set, bound, exclude) = match mode {
        Mode::Tcp | Mode::StealthTcp => (&c.tcp_ports, 0, None),
        Mode::Udp | Mode::StealthUdp => (&c.udp_ports, 0, None),
        Mode::AdvancedTcp => (
            &c.tcp_ports,
            c.advanced_ports_tcp,
            Some(&c.advanced_exclude_tcp),
        ),
        Mode::AdvancedUdp => (
            &c.udp_ports,
            c.advanced_ports_udp,
            Some(&c.advanced_exclude_udp),
        ),
    };
    match exclude {
        None if set.is_empty() => "(none: no port list set)".to_owned(),
        None => format!("{} ports: {set}", set.len()),
        Some(exclude) => {
            let watched = PortSet::advanced(bound, exclude);
            let except = if exclude.is_empty() {
                String::new()
            } else {
                format!(" except {exclude}")
            };
            format!(
                "ports 0-{}{except} ({} ports), minus ports with a listening service",
                bound.saturating_sub(1),
                watched.len()
            )
        }
    }
}

fn none() -> String {
    "(none)".to_owned()
}

fn path_or_none(path: Option<&Path>) -> String {
    path.map_or_else(none, |p| p.display().to_string())
}

fn text_or_none(text: Option<&str>) -> String {
    text.map_or_else(|| "(not set)".to_owned(), |t| format!("\"{t}\""))
}

fn block(mode: portsentry_core::BlockMode) -> String {
    format!("{} ({})", mode.as_digit(), mode.describe())
}

fn yes_no(on: bool, yes: &str, no: &str) -> String {
    if on {
        format!("1 ({yes})")
    } else {
        format!("0 ({no})")
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs())
}
