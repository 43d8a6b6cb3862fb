//! Log lines in three styles, as pure functions, and a responder that writes them.
//!
//! | Style | Shape | Time stamp |
//! |---|---|---|
//! | [`LogStyle::Classic`] (default) | PortSentry 1.2: `attackalert: TCP SYN/Normal scan from host: 203.0.113.1/203.0.113.1 to TCP port: 11` | none (syslog adds it) |
//! | [`LogStyle::V2`] | PortSentry 2.0: `Scan from: [203.0.113.1] (203.0.113.1) protocol: [TCP] port: [11] type: [...] ...` | none |
//! | [`LogStyle::Json`] | one JSON object per line, schema below | `timestamp`, RFC 3339 UTC |
//!
//! The classic style reproduces PortSentry 1.2 byte for byte where 1.2 had a message,
//! including its quirk of a leading space in the NULL scan type (`attackalert:  TCP NULL
//! scan from host: ...`, two spaces): scripts and logwatch rules written against 1.2 expect
//! it. The v2 and JSON styles do not have that space. Messages that 1.2 never had (ignored
//! sources, releases, dropped jobs, the nftables set) are written in the same spirit.
//!
//! Host fields read `name/ip`; without `RESOLVE_HOST` (or when resolution failed) the name
//! is the address. Line breaks inside error texts are replaced by spaces so that one message
//! is one line.
//!
//! # JSON lines, schema 1
//!
//! Every object starts with `"timestamp"` (RFC 3339, UTC, microseconds, e.g.
//! `"2026-11-24T22:13:06.940000Z"`), then `"schema":1` and `"event"`. Keys are never removed
//! or renamed within a schema version; new keys may be added. Absent values are `null`.
//!
//! | `event` | further keys |
//! |---|---|
//! | `alert` | `src_ip`, `src_name`, `dst_ip`, `dst_port`, `protocol` (`tcp`/`udp`), `scan_type` (`syn`, `fin`, `null`, `xmas`, `maimon`, `ack`, `other`, `fragment`, `udp`, `connect`), `tcp_flags` (e.g. `"FIN|SYN"` for `other`, else `null`), `mode` (`tcp`…`audp`), `ip_options` (bool), `distinct_ports`, `response` (`log_only`, `block`, `run_command`), `block` (`not_requested`, `blocked`, `failed`), `steps` |
//! | `released` | `src_ip`, `src_name`, `blocked_at` (RFC 3339), `steps` |
//! | `ignored` | `src_ip`, `src_name`, `dst_ip`, `dst_port`, `protocol`, `scan_type`, `reason` (`ignore_file`, `own_address`, `gateway`, `resolver`, `loopback`) |
//! | `already_blocked` | `src_ip`, `src_name`, `dst_ip`, `dst_port`, `protocol`, `scan_type` |
//! | `probe` | `src_ip`, `src_name` (null), `dst_ip`, `dst_port`, `protocol`, `scan_type` (`PROBE_EVENTS`) |
//! | `dropped` | `alerts`, `releases`, `notices` (jobs lost to a full queue) |
//!
//! `steps` is an array of `{"action": ..., "detail": ..., "ok": bool, "error": string|null}`
//! with `action` one of `hosts_deny`, `route`, `run_command`, `nft`, `hosts_deny_remove`,
//! `unblock`, `nft_remove` or an embedder's name.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;

use super::{
    Action, AlertContext, BlockStatus, Notice, Outcome, ReleaseContext, Responder, ResponderError,
    Step, address_text, timefmt,
};
use crate::config::BlockMode;
use crate::mode::Mode;
use crate::probe::{Probe, ScanKind, TcpFlags};

/// The JSON schema version written in every JSON line.
pub const JSON_SCHEMA: u32 = 1;

/// Which shape log lines take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LogStyle {
    /// PortSentry 1.2 `attackalert:` lines (the default).
    #[default]
    Classic,
    /// PortSentry 2.0 `Scan from:` lines.
    V2,
    /// JSON lines, schema [`JSON_SCHEMA`].
    Json,
}

/// `name/ip`, with the address as the name when there is none.
fn host_field(address: IpAddr, name: Option<&str>) -> String {
    let ip = address_text(address);
    format!("{}/{ip}", name.unwrap_or(&ip))
}

fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

fn flag(flags: TcpFlags, f: TcpFlags) -> u8 {
    u8::from(flags.contains(f))
}

/// PortSentry's name for a probe kind (§2.2 of the compatibility notes), e.g.
/// `TCP SYN/Normal scan`. With `classic_quirks`, the NULL scan keeps 1.2's leading space.
/// Connect probes are `Connect`, UDP probes `UDP scan` (classic) or `UDP` (2.0).
pub fn scan_type(kind: ScanKind, classic_quirks: bool) -> Cow<'static, str> {
    let unknown = |f: TcpFlags| {
        Cow::Owned(format!(
            "Unknown Type: TCP Packet Flags: SYN: {} FIN: {} ACK: {} PSH: {} URG: {} RST: {}",
            flag(f, TcpFlags::SYN),
            flag(f, TcpFlags::FIN),
            flag(f, TcpFlags::ACK),
            flag(f, TcpFlags::PSH),
            flag(f, TcpFlags::URG),
            flag(f, TcpFlags::RST),
        ))
    };
    match kind {
        ScanKind::Syn => Cow::Borrowed("TCP SYN/Normal scan"),
        ScanKind::Fin => Cow::Borrowed("TCP FIN scan"),
        ScanKind::Null if classic_quirks => Cow::Borrowed(" TCP NULL scan"),
        ScanKind::Null => Cow::Borrowed("TCP NULL scan"),
        ScanKind::Xmas => Cow::Borrowed("TCP XMAS scan"),
        ScanKind::Maimon => unknown(TcpFlags::FIN | TcpFlags::ACK),
        ScanKind::Ack => unknown(TcpFlags::ACK),
        ScanKind::Other(flags) => unknown(flags),
        ScanKind::Fragment => Cow::Borrowed("TCP fragment scan"),
        ScanKind::Udp if classic_quirks => Cow::Borrowed("UDP scan"),
        ScanKind::Udp => Cow::Borrowed("UDP"),
        ScanKind::Connect => Cow::Borrowed("Connect"),
        #[allow(unreachable_patterns)]
        _ => Cow::Borrowed("Unknown scan"),
    }
}

/// A PortSentry 2.0 tri-state flag: `Some(true)`, `Some(false)` or `None` (`unset`).
fn tri(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "true",
        Some(false) => "false",
        None => "unset",
    }
}

/// The four flags of a 2.0 `Scan from:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V2Flags {
    /// `ignored`.
    pub ignored: Option<bool>,
    /// `triggered`.
    pub triggered: Option<bool>,
    /// `noblock`.
    pub noblock: Option<bool>,
    /// `blocked`.
    pub blocked: Option<bool>,
}

/// The PortSentry 2.0 scan line, without time stamp:
/// `Scan from: [ip] (name) protocol: [TCP] port: [11] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [false] blocked: [true]`.
pub fn scan_from_line(probe: &Probe, host_name: Option<&str>, flags: V2Flags) -> String {
    let ip = address_text(probe.source);
    let opts = if probe.kind == ScanKind::Connect || probe.source.is_ipv6() {
        "unknown"
    } else if probe.ip_options {
        "set"
    } else {
        "not set"
    };
    format!(
        "Scan from: [{ip}] ({}) protocol: [{}] port: [{}] type: [{}] IP opts: [{opts}] ignored: [{}] triggered: [{}] noblock: [{}] blocked: [{}]",
        host_name.unwrap_or(&ip),
        probe.protocol.as_upper_str(),
        probe.destination_port,
        scan_type(probe.kind, false),
        tri(flags.ignored),
        tri(flags.triggered),
        tri(flags.noblock),
        tri(flags.blocked),
    )
}

/// The 2.0 flags for an alert whose blocking is over.
pub fn alert_flags(block: BlockStatus) -> V2Flags {
    V2Flags {
        ignored: Some(false),
        triggered: Some(true),
        noblock: Some(matches!(
            block,
            BlockStatus::NotRequested | BlockStatus::Pending
        )),
        blocked: Some(block == BlockStatus::Blocked),
    }
}

/// The classic (1.2) scan line of an alert.
pub fn classic_scan_line(probe: &Probe, mode: Mode, host_name: Option<&str>) -> String {
    let host = host_field(probe.source, host_name);
    let proto = probe.protocol.as_upper_str();
    let port = probe.destination_port;
    if mode.is_connect() || probe.kind == ScanKind::Connect {
        format!("attackalert: Connect from host: {host} to {proto} port: {port}")
    } else {
        let kind = scan_type(probe.kind, true);
        format!("attackalert: {kind} from host: {host} to {proto} port: {port}")
    }
}

/// The line for one successful or failed step, in PortSentry's words where it had them.
pub fn step_line(step: &Step, address: IpAddr) -> String {
    let ip = address_text(address);
    let detail = one_line(&step.detail);
    if let Some(error) = &step.error {
        return format!(
            "attackalert: ERROR: action {} failed for host: {ip}: {}",
            step.action,
            one_line(error)
        );
    }
    match &step.action {
        Action::HostsDeny => {
            format!(
                "attackalert: Host {ip} has been blocked via wrappers with string: \"{detail}\""
            )
        }
        Action::Route => format!(
            "attackalert: Host {ip} has been blocked via dropped route using command: \"{detail}\""
        ),
        Action::RunCommand => {
            format!("attackalert: External command run for host: {ip} using command: \"{detail}\"")
        }
        Action::Nft => {
            format!("attackalert: Host {ip} has been blocked via nftables set: \"{detail}\"")
        }
        Action::HostsDenyRemove => {
            format!("attackalert: Host {ip} has been removed from wrappers file: \"{detail}\"")
        }
        Action::Unblock => {
            format!("attackalert: Unblock command run for host: {ip} using command: \"{detail}\"")
        }
        Action::NftRemove => {
            format!("attackalert: Host {ip} has been removed from nftables set: \"{detail}\"")
        }
        Action::Custom(name) => format!("attackalert: Action {name} done for host: {ip}"),
    }
}

/// Every line for one alert (after blocking ran), in `style`.
pub fn alert_lines(style: LogStyle, ctx: &AlertContext<'_>) -> Vec<String> {
    let alert = ctx.alert;
    let probe = &alert.probe;
    let mut lines = Vec::new();
    match style {
        LogStyle::Json => lines.push(alert_json(ctx)),
        LogStyle::Classic | LogStyle::V2 => {
            if style == LogStyle::Classic {
                if probe.ip_options {
                    lines.push(format!(
                        "attackalert: Packet from host: {} to {} port: {} has IP options set (detection avoidance technique).",
                        host_field(probe.source, ctx.host_name),
                        probe.protocol.as_upper_str(),
                        probe.destination_port
                    ));
                }
                lines.push(classic_scan_line(probe, alert.mode, ctx.host_name));
                if alert.response == BlockMode::LogOnly {
                    lines.push(format!(
                        "attackalert: Ignoring {} response per configuration file setting.",
                        probe.protocol.as_upper_str()
                    ));
                }
            } else {
                lines.push(scan_from_line(probe, ctx.host_name, alert_flags(ctx.block)));
            }
            lines.extend(ctx.steps.iter().map(|s| step_line(s, probe.source)));
            if ctx.block == BlockStatus::Failed {
                let ip = address_text(probe.source);
                lines.push(if style == LogStyle::Classic {
                    format!("attackalert: ERROR: Could not block host {ip} !!")
                } else {
                    format!(
                        "attackalert: Error during target dispose {}!",
                        host_field(probe.source, ctx.host_name)
                    )
                });
            }
        }
    }
    lines
}

/// Every line for one release (after the undo steps ran), in `style`.
pub fn release_lines(style: LogStyle, ctx: &ReleaseContext<'_>) -> Vec<String> {
    let release = ctx.release;
    if style == LogStyle::Json {
        let mut j = JsonLine::new(release.released_at, "released");
        j.str("src_ip", &address_text(release.address));
        j.opt_str("src_name", ctx.host_name);
        j.str("blocked_at", &timefmt::rfc3339_utc(release.blocked_at));
        j.steps(ctx.steps);
        return vec![j.finish()];
    }
    let held = release
        .released_at
        .saturating_duration_since(release.blocked_at)
        .as_secs();
    let mut lines = vec![format!(
        "attackalert: Host: {} block expired after {held} seconds, releasing",
        host_field(release.address, ctx.host_name)
    )];
    lines.extend(ctx.steps.iter().map(|s| step_line(s, release.address)));
    lines
}

/// The classic and v2 line of a probe event (`PROBE_EVENTS`): numeric address only, e.g.
/// `probe: TCP syn from host: 192.0.2.7 to TCP port: 22`.
fn probe_line(probe: &Probe) -> String {
    format!(
        "probe: {} {} from host: {} to {} port: {}",
        probe.protocol.as_upper_str(),
        probe.kind.as_str(),
        address_text(probe.source),
        probe.protocol.as_upper_str(),
        probe.destination_port
    )
}

/// Every line for one notice, in `style`.
pub fn notice_lines(style: LogStyle, notice: &Notice<'_>) -> Vec<String> {
    match (style, notice) {
        (
            LogStyle::Json,
            Notice::Ignored {
                probe,
                reason,
                host_name,
            },
        ) => {
            let mut j = probe_json(probe, "ignored", *host_name);
            j.str("reason", reason.as_str());
            vec![j.finish()]
        }
        (LogStyle::Json, Notice::Probe { probe }) => {
            vec![probe_json(probe, "probe", None).finish()]
        }
        (_, Notice::Probe { probe }) => vec![probe_line(probe)],
        (LogStyle::Json, Notice::AlreadyBlocked { probe, host_name }) => {
            vec![probe_json(probe, "already_blocked", *host_name).finish()]
        }
        (
            LogStyle::Json,
            Notice::Dropped {
                at,
                alerts,
                releases,
                notices,
            },
        ) => {
            let mut j = JsonLine::new(*at, "dropped");
            j.num("alerts", *alerts);
            j.num("releases", *releases);
            j.num("notices", *notices);
            vec![j.finish()]
        }
        (
            LogStyle::V2,
            Notice::Ignored {
                probe, host_name, ..
            },
        ) => {
            let flags = V2Flags {
                ignored: Some(true),
                ..V2Flags::default()
            };
            vec![scan_from_line(probe, *host_name, flags)]
        }
        (
            _,
            Notice::Ignored {
                probe,
                reason,
                host_name,
            },
        ) => vec![format!(
            "attackalert: Host: {} is protected ({}) and will not be blocked. Ignoring {} port: {}",
            host_field(probe.source, *host_name),
            reason.as_str(),
            probe.protocol.as_upper_str(),
            probe.destination_port
        )],
        (LogStyle::Classic, Notice::AlreadyBlocked { probe, .. })
            if probe.kind == ScanKind::Connect =>
        {
            vec![format!(
                "attackalert: Host: {} is already blocked. Ignoring",
                address_text(probe.source)
            )]
        }
        (_, Notice::AlreadyBlocked { probe, host_name }) => vec![format!(
            "attackalert: Host: {} is already blocked Ignoring",
            host_field(probe.source, *host_name)
        )],
        (
            _,
            Notice::Dropped {
                alerts,
                releases,
                notices,
                ..
            },
        ) => vec![format!(
            "adminalert: ERROR: response queue full: dropped {alerts} alert(s), {releases} release(s), {notices} notice(s); dropped alerts count as failed blocks"
        )],
    }
}

fn probe_json(probe: &Probe, event: &str, host_name: Option<&str>) -> JsonLine {
    let mut j = JsonLine::new(probe.at, event);
    j.str("src_ip", &address_text(probe.source));
    j.opt_str("src_name", host_name);
    j.str("dst_ip", &address_text(probe.destination));
    j.num("dst_port", u64::from(probe.destination_port));
    j.str("protocol", probe.protocol.as_str());
    j.str("scan_type", probe.kind.as_str());
    j
}

/// The JSON line of an alert (schema in the [module docs](self)).
pub fn alert_json(ctx: &AlertContext<'_>) -> String {
    let alert = ctx.alert;
    let probe = &alert.probe;
    let mut j = probe_json(probe, "alert", ctx.host_name);
    let flags = match probe.kind {
        ScanKind::Other(f) => Some(f.to_string()),
        _ => None,
    };
    j.opt_str("tcp_flags", flags.as_deref());
    j.str("mode", alert.mode.as_str());
    j.bool("ip_options", probe.ip_options);
    j.num("distinct_ports", u64::from(alert.distinct_ports));
    j.str(
        "response",
        match alert.response {
            BlockMode::LogOnly => "log_only",
            BlockMode::Block => "block",
            BlockMode::RunCommandOnly => "run_command",
        },
    );
    j.str("block", ctx.block.as_str());
    j.steps(ctx.steps);
    j.finish()
}

/// A hand-written JSON object writer: keys are fixed ASCII, values are escaped.
struct JsonLine(String);

impl JsonLine {
    fn new(at: crate::probe::Timestamp, event: &str) -> Self {
        let mut j = Self(String::with_capacity(256));
        j.0.push('{');
        j.str("timestamp", &timefmt::rfc3339_utc(at));
        j.num("schema", u64::from(JSON_SCHEMA));
        j.str("event", event);
        j
    }

    fn key(&mut self, key: &str) {
        if !self.0.ends_with('{') && !self.0.ends_with('[') {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        escape_into(&mut self.0, value);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => {
                self.key(key);
                self.0.push_str("null");
            }
        }
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.0, "{value}");
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn steps(&mut self, steps: &[Step]) {
        self.key("steps");
        self.0.push('[');
        for (i, step) in steps.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let mut inner = Self(String::from("{"));
            inner.str("action", step.action.as_str());
            inner.str("detail", &step.detail);
            inner.bool("ok", step.succeeded());
            inner.opt_str("error", step.error.as_deref());
            self.0.push_str(&inner.finish());
        }
        self.0.push(']');
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Writes `value` as a JSON string literal (RFC 8259 escaping).
fn escape_into(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes log lines for alerts, releases and notices to any [`Write`] (stdout, a file, a
/// syslog adaptor chosen by the CLI). One `write_all` per line, each ending in `\n`, then a
/// flush.
///
/// # Examples
///
/// ```
/// use std::net::IpAddr;
/// use portsentry_core::respond::{Fanout, LogResponder, LogStyle};
/// use portsentry_core::{Alert, BlockMode, Mode, Probe, Protocol, ScanKind, Timestamp};
///
/// let mut fanout = Fanout::new().with(LogResponder::new(Vec::new(), LogStyle::Classic));
/// let probe = Probe {
///     at: Timestamp::from_secs(1_700_000_000),
///     source: "203.0.113.1".parse().unwrap(),
///     destination: "198.51.100.1".parse().unwrap(),
///     protocol: Protocol::Tcp,
///     source_port: 40000,
///     destination_port: 11,
///     kind: ScanKind::Syn,
///     ip_options: false,
/// };
/// let alert = Alert { probe, mode: Mode::StealthTcp, distinct_ports: 1, response: BlockMode::LogOnly };
/// fanout.handle_alert(&alert, None);
/// ```
#[derive(Debug)]
pub struct LogResponder<W> {
    out: W,
    style: LogStyle,
}

impl<W: Write + Send> LogResponder<W> {
    /// Lines in `style` go to `out`.
    pub fn new(out: W, style: LogStyle) -> Self {
        Self { out, style }
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Gives the sink back.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write(&mut self, lines: &[String]) -> Result<(), ResponderError> {
        for line in lines {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            self.out.write_all(&buf).map_err(ResponderError::Write)?;
        }
        self.out.flush().map_err(ResponderError::Write)
    }
}

impl<W: Write + Send> Responder for LogResponder<W> {
    fn name(&self) -> &str {
        "log"
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        self.write(&alert_lines(self.style, ctx))?;
        Ok(Outcome::Reported)
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        self.write(&release_lines(self.style, ctx))?;
        Ok(Outcome::Reported)
    }

    fn on_notice(&mut self, notice: &Notice<'_>) -> Result<(), ResponderError> {
        self.write(&notice_lines(self.style, notice))
    }

    fn flush(&mut self) -> Result<(), ResponderError> {
        self.out.flush().map_err(ResponderError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{IgnoreReason, Release};
    use crate::probe::Timestamp;
    use crate::respond::test_support::{alert, probe};

    fn ctx<'a>(a: &'a crate::Alert, block: BlockStatus, steps: &'a [Step]) -> AlertContext<'a> {
        AlertContext {
            alert: a,
            host_name: None,
            block,
            steps,
        }
    }

    #[test]
    fn classic_scan_lines_exact() {
        let a = alert("203.0.113.1", 11, Mode::StealthTcp, BlockMode::Block);
        assert_eq!(
            alert_lines(LogStyle::Classic, &ctx(&a, BlockStatus::NotRequested, &[])),
            ["attackalert: TCP SYN/Normal scan from host: 203.0.113.1/203.0.113.1 to TCP port: 11"]
        );
        let mut null = a;
        null.probe.kind = ScanKind::Null;
        assert_eq!(
            alert_lines(
                LogStyle::Classic,
                &ctx(&null, BlockStatus::NotRequested, &[])
            )[0],
            "attackalert:  TCP NULL scan from host: 203.0.113.1/203.0.113.1 to TCP port: 11"
        );
        let c = alert("127.0.0.2", 11, Mode::Tcp, BlockMode::Block);
        assert_eq!(
            alert_lines(LogStyle::Classic, &ctx(&c, BlockStatus::NotRequested, &[]))[0],
            "attackalert: Connect from host: 127.0.0.2/127.0.0.2 to TCP port: 11"
        );
        let u = alert("127.0.0.40", 7, Mode::StealthUdp, BlockMode::Block);
        assert_eq!(
            alert_lines(LogStyle::Classic, &ctx(&u, BlockStatus::NotRequested, &[]))[0],
            "attackalert: UDP scan from host: 127.0.0.40/127.0.0.40 to UDP port: 7"
        );
        let mut sf = a;
        sf.probe.kind = ScanKind::Other(TcpFlags::SYN | TcpFlags::FIN);
        assert_eq!(
            classic_scan_line(&sf.probe, sf.mode, Some("scanner.example")),
            "attackalert: Unknown Type: TCP Packet Flags: SYN: 1 FIN: 1 ACK: 0 PSH: 0 URG: 0 RST: 0 from host: scanner.example/203.0.113.1 to TCP port: 11"
        );
    }

    #[test]
    fn classic_log_only_and_ip_options() {
        let mut a = alert("203.0.113.1", 11, Mode::StealthTcp, BlockMode::LogOnly);
        a.probe.ip_options = true;
        assert_eq!(
            alert_lines(LogStyle::Classic, &ctx(&a, BlockStatus::NotRequested, &[])),
            [
                "attackalert: Packet from host: 203.0.113.1/203.0.113.1 to TCP port: 11 has IP options set (detection avoidance technique).",
                "attackalert: TCP SYN/Normal scan from host: 203.0.113.1/203.0.113.1 to TCP port: 11",
                "attackalert: Ignoring TCP response per configuration file setting.",
            ]
        );
    }

    fn steps() -> Vec<Step> {
        vec![
            Step {
                action: Action::RunCommand,
                detail: "/bin/echo cmd 127.0.0.2 11 tcp".into(),
                error: None,
            },
            Step {
                action: Action::HostsDeny,
                detail: "ALL: 127.0.0.2 : DENY".into(),
                error: None,
            },
            Step {
                action: Action::Route,
                detail: "/sbin/route add -host 127.0.0.2 reject".into(),
                error: Some("command failed\nsecond line".into()),
            },
        ]
    }

    #[test]
    fn classic_step_and_failure_lines_exact() {
        let a = alert("127.0.0.2", 11, Mode::Tcp, BlockMode::Block);
        let st = steps();
        let lines = alert_lines(LogStyle::Classic, &ctx(&a, BlockStatus::Failed, &st));
        assert_eq!(
            lines,
            [
                "attackalert: Connect from host: 127.0.0.2/127.0.0.2 to TCP port: 11",
                "attackalert: External command run for host: 127.0.0.2 using command: \"/bin/echo cmd 127.0.0.2 11 tcp\"",
                "attackalert: Host 127.0.0.2 has been blocked via wrappers with string: \"ALL: 127.0.0.2 : DENY\"",
                "attackalert: ERROR: action route failed for host: 127.0.0.2: command failed second line",
                "attackalert: ERROR: Could not block host 127.0.0.2 !!",
            ]
        );
    }

    #[test]
    fn v2_lines_exact() {
        let a = alert("127.0.0.10", 11, Mode::StealthTcp, BlockMode::Block);
        assert_eq!(
            alert_lines(LogStyle::V2, &ctx(&a, BlockStatus::Blocked, &[])),
            [
                "Scan from: [127.0.0.10] (127.0.0.10) protocol: [TCP] port: [11] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [false] blocked: [true]"
            ]
        );
        let lo = alert("127.0.0.10", 11, Mode::StealthTcp, BlockMode::LogOnly);
        assert!(
            alert_lines(LogStyle::V2, &ctx(&lo, BlockStatus::NotRequested, &[]))[0]
                .ends_with("ignored: [false] triggered: [true] noblock: [true] blocked: [false]")
        );
        let failed = alert_lines(LogStyle::V2, &ctx(&a, BlockStatus::Failed, &[]));
        assert!(failed[0].ends_with("noblock: [false] blocked: [false]"));
        assert_eq!(
            failed[1],
            "attackalert: Error during target dispose 127.0.0.10/127.0.0.10!"
        );
        let v6 = alert("2001:db8::2", 11, Mode::Tcp, BlockMode::Block);
        assert_eq!(
            alert_lines(LogStyle::V2, &ctx(&v6, BlockStatus::Blocked, &[]))[0],
            "Scan from: [2001:db8::2] (2001:db8::2) protocol: [TCP] port: [11] type: [Connect] IP opts: [unknown] ignored: [false] triggered: [true] noblock: [false] blocked: [true]"
        );
        let mut null = a;
        null.probe.kind = ScanKind::Null;
        assert!(
            alert_lines(LogStyle::V2, &ctx(&null, BlockStatus::Blocked, &[]))[0]
                .contains("type: [TCP NULL scan]")
        );
    }

    #[test]
    fn notices_in_each_style() {
        let p = probe("203.0.113.1", 11, ScanKind::Syn);
        let ignored = Notice::Ignored {
            probe: &p,
            reason: IgnoreReason::Gateway,
            host_name: None,
        };
        assert_eq!(
            notice_lines(LogStyle::Classic, &ignored),
            [
                "attackalert: Host: 203.0.113.1/203.0.113.1 is protected (gateway) and will not be blocked. Ignoring TCP port: 11"
            ]
        );
        assert_eq!(
            notice_lines(LogStyle::V2, &ignored),
            [
                "Scan from: [203.0.113.1] (203.0.113.1) protocol: [TCP] port: [11] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [true] triggered: [unset] noblock: [unset] blocked: [unset]"
            ]
        );
        let blocked = Notice::AlreadyBlocked {
            probe: &p,
            host_name: None,
        };
        assert_eq!(
            notice_lines(LogStyle::Classic, &blocked),
            ["attackalert: Host: 203.0.113.1/203.0.113.1 is already blocked Ignoring"]
        );
        let c = probe("127.0.0.2", 11, ScanKind::Connect);
        assert_eq!(
            notice_lines(
                LogStyle::Classic,
                &Notice::AlreadyBlocked {
                    probe: &c,
                    host_name: None
                }
            ),
            ["attackalert: Host: 127.0.0.2 is already blocked. Ignoring"]
        );
        let json: serde_json::Value =
            serde_json::from_str(&notice_lines(LogStyle::Json, &ignored)[0]).unwrap();
        assert_eq!(json["event"], "ignored");
        assert_eq!(json["reason"], "gateway");
        let dropped = Notice::Dropped {
            at: Timestamp::from_secs(5),
            alerts: 2,
            releases: 0,
            notices: 7,
        };
        assert!(notice_lines(LogStyle::Classic, &dropped)[0].contains("dropped 2 alert(s)"));
        let json: serde_json::Value =
            serde_json::from_str(&notice_lines(LogStyle::Json, &dropped)[0]).unwrap();
        assert_eq!(json["notices"], 7);
    }

    #[test]
    fn json_alert_schema() {
        let mut a = alert("2001:db8::1", 31337, Mode::AdvancedTcp, BlockMode::Block);
        a.probe.kind = ScanKind::Other(TcpFlags::SYN | TcpFlags::FIN);
        a.distinct_ports = 3;
        let st = steps();
        let c = AlertContext {
            alert: &a,
            host_name: Some("evil\"name\n"),
            block: BlockStatus::Failed,
            steps: &st,
        };
        let line = &alert_lines(LogStyle::Json, &c)[0];
        assert!(
            line.starts_with(
                "{\"timestamp\":\"2026-11-24T22:13:06.940000Z\",\"schema\":1,\"event\":\"alert\","
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["src_ip"], "2001:db8::1");
        assert_eq!(v["src_name"], "evil\"name\n");
        assert_eq!(v["dst_ip"], "198.51.100.1");
        assert_eq!(v["dst_port"], 31337);
        assert_eq!(v["protocol"], "tcp");
        assert_eq!(v["scan_type"], "other");
        assert_eq!(v["tcp_flags"], "FIN|SYN");
        assert_eq!(v["mode"], "atcp");
        assert_eq!(v["ip_options"], false);
        assert_eq!(v["distinct_ports"], 3);
        assert_eq!(v["response"], "block");
        assert_eq!(v["block"], "failed");
        assert_eq!(v["steps"][2]["action"], "route");
        assert_eq!(v["steps"][2]["ok"], false);
        assert_eq!(v["steps"][2]["error"], "command failed\nsecond line");
        assert_eq!(v["steps"][0]["error"], serde_json::Value::Null);
    }

    #[test]
    fn json_escaping_of_control_characters() {
        let mut s = String::new();
        escape_into(&mut s, "a\u{1}b\\c\u{2028}é");
        assert_eq!(s, "\"a\\u0001b\\\\c\\u2028é\"");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\u{1}b\\c\u{2028}é");
    }

    #[test]
    fn release_lines_each_style() {
        let r = Release {
            address: "203.0.113.9".parse().unwrap(),
            blocked_at: Timestamp::from_secs(1_000),
            released_at: Timestamp::from_secs(4_600),
            mode: crate::Mode::StealthTcp,
            port: 79,
        };
        let st = [Step {
            action: Action::HostsDenyRemove,
            detail: "/etc/hosts.deny".into(),
            error: None,
        }];
        let c = ReleaseContext {
            release: &r,
            host_name: None,
            steps: &st,
        };
        assert_eq!(
            release_lines(LogStyle::Classic, &c),
            [
                "attackalert: Host: 203.0.113.9/203.0.113.9 block expired after 3600 seconds, releasing",
                "attackalert: Host 203.0.113.9 has been removed from wrappers file: \"/etc/hosts.deny\"",
            ]
        );
        let v: serde_json::Value =
            serde_json::from_str(&release_lines(LogStyle::Json, &c)[0]).unwrap();
        assert_eq!(v["event"], "released");
        assert_eq!(v["blocked_at"], "1970-01-01T00:16:40.000000Z");
        assert_eq!(v["steps"][0]["action"], "hosts_deny_remove");
    }

    #[test]
    fn responder_writes_lines_to_the_sink() {
        let a = alert("203.0.113.1", 11, Mode::StealthTcp, BlockMode::Block);
        let mut r = LogResponder::new(Vec::new(), LogStyle::Classic);
        r.on_alert(&ctx(&a, BlockStatus::NotRequested, &[]))
            .unwrap();
        assert_eq!(
            String::from_utf8(r.into_inner()).unwrap(),
            "attackalert: TCP SYN/Normal scan from host: 203.0.113.1/203.0.113.1 to TCP port: 11\n"
        );
    }
}
