//! `portsentry replay FILE`: run a capture through the detector and print what it decides.
//!
//! The work is `portsentry_core::replay`; this module parses the options, prints each event
//! with the daemon's log formatters as it happens, then the summary.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ipnet::IpNet;
use portsentry_core::replay::{KeptEvents, Replay, ReplaySummary, SourceReport};
use portsentry_core::respond::log::{alert_lines, notice_lines, release_lines};
use portsentry_core::respond::probe_events::ProbeEventLimit;
use portsentry_core::respond::{AlertContext, BlockStatus, LogStyle, Notice, ReleaseContext};
use portsentry_core::source::pcap::{CaptureError, CaptureFile};
use portsentry_core::tracker::MAX_SCAN_TRIGGER;
use portsentry_core::{Event, Mode, PortSet, Timestamp};

use crate::config_source::{self, Origin};
use crate::run::log_sink::LogFormat;

/// The help text after the options.
pub(crate) const AFTER_LONG_HELP: &str = "\
HOW A REPLAY RUNS:
    Each frame goes through the same classifier and detector as live capture, with its own
    capture time (never the clock): the same file gives the same output on every run. The
    configuration applies as written (port lists, SCAN_TRIGGER, SCAN_WINDOW, DETECT_ACK_SCANS,
    IGNORE_FILE), except that a replay never blocks: BLOCK_TCP and BLOCK_UDP are taken as 0
    (log only), so each scanner raises one alert per SCAN_WINDOW. Connect mode (tcp) sees no
    probe in a capture; udp counts datagrams like sudp.

    A capture does not say which ports had a service listening, nor which addresses were the
    capture host's. Give them with --listening (the stealth and advanced modes skip ports a
    service owns) and --own-address (frames the host sent, or that were not addressed to it,
    are dropped as live capture drops them; the host is never blocked).

OUTPUT:
    Every event the daemon logs (alerts, ignored sources, releases), in --log-format, each
    classic or v2 line preceded by the frame's capture time (UTC); then a summary: frames
    read, probes by kind, skipped frames by reason, events by kind, alerts by source with the
    distinct ports the source probed and the ones the detector counted. With --json, the
    events are JSON lines and the summary is one JSON object with \"event\":\"summary\".

EXAMPLES:
    Replay a capture with the built-in default (classic ports, stealth TCP and UDP):
        portsentry replay nmap-syn.pcap

    Your own configuration, advanced TCP mode, alarm at the third distinct port:
        portsentry replay -c /etc/portsentry/portsentry.conf --mode atcp --trigger 3 scan.pcapng

    The victim 203.0.113.2 had a web server on 8080 and a DNS server on 53/udp:
        portsentry replay --own-address 203.0.113.2 --listening tcp:8080 --listening udp:53 day.pcap

    Machine-readable output:
        portsentry replay --json nmap-udp.pcap | jq 'select(.event == \"summary\")'

EXIT STATUS:
    0   the capture was replayed (whether or not anything alerted)
    1   the capture cannot be read, is not a pcap/pcapng file, or is cut or corrupt (the
        events and summary of the frames before the bad record are printed first); or the
        configuration is invalid
    2   wrong usage";

/// Ports with a listening socket, as `tcp:8080` or `udp:53,137-139`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listening {
    udp: bool,
    ports: PortSet,
}

fn parse_listening(text: &str) -> Result<Listening, String> {
    let (protocol, list) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: expected PROTOCOL:PORTS, e.g. tcp:8080 or udp:53,137"))?;
    let udp = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => false,
        "udp" => true,
        other => return Err(format!("`{other}`: the protocol is tcp or udp")),
    };
    let ports = list
        .parse::<PortSet>()
        .map_err(|e| format!("`{list}`: {e}"))?;
    Ok(Listening { udp, ports })
}

fn parse_own(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}`: expected an IPv4 or IPv6 address, or a network ADDR/LEN"))
}

/// Options of `replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The capture file: pcap or pcapng (Ethernet, raw IP, Linux cooked SLL/SLL2, BSD loopback).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// A detection mode to replay: stcp, sudp, atcp, audp, tcp or udp; repeat the option or
    /// separate with commas [default: stcp,sudp].
    #[arg(
        short,
        long = "mode",
        value_name = "MODE",
        value_delimiter = ',',
        value_parser = clap::value_parser!(Mode)
    )]
    pub(crate) modes: Vec<Mode>,

    /// Use N as SCAN_TRIGGER instead of the configuration's value (0 and 1: the first probe
    /// alarms; N: the Nth distinct port inside SCAN_WINDOW).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_SCAN_TRIGGER))
    )]
    pub(crate) trigger: Option<u32>,

    /// Ports that had a listening socket on the capture host, as PROTOCOL:PORTS (tcp:8080,
    /// udp:53,137-139); repeat for both protocols. The stealth and advanced modes do not
    /// watch them.
    #[arg(long, value_name = "PROTO:PORTS", value_parser = parse_listening)]
    pub(crate) listening: Vec<Listening>,

    /// An address (or network ADDR/LEN) of the capture host; repeat or separate with commas.
    /// Frames it sent and frames addressed to other hosts are dropped, and it is never blocked.
    #[arg(long = "own-address", value_name = "ADDR", value_delimiter = ',', value_parser = parse_own)]
    pub(crate) own_addresses: Vec<IpNet>,

    /// The shape of event lines.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Classic)]
    pub(crate) log_format: LogFormat,

    /// JSON lines for the events and a JSON summary (implies --log-format json).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Loads the configuration, replays the file, prints events and the summary.
pub(crate) fn run(args: &Args, origin: Origin) -> anyhow::Result<ExitCode> {
    let checked = match config_source::load(origin) {
        Ok(checked) => checked,
        Err(failure) => return Ok(super::report_failure(&failure)),
    };
    super::print_warnings(&checked.warnings);
    let mut config = checked.config;
    if let Some(trigger) = args.trigger {
        config.scan_trigger = trigger;
    }
    let mut listening_tcp = PortSet::new();
    let mut listening_udp = PortSet::new();
    for Listening { udp, ports } in &args.listening {
        let set = if *udp {
            &mut listening_udp
        } else {
            &mut listening_tcp
        };
        for port in ports.iter() {
            set.insert(port);
        }
    }
    let mut builder = Replay::builder(&config)
        .own_addresses(args.own_addresses.iter().copied())
        .listening(listening_tcp, listening_udp)
        .ignore_list(checked.ignore.unwrap_or_default())
        .keep_events(KeptEvents::None);
    if !args.modes.is_empty() {
        builder = builder.modes(args.modes.iter().copied());
    }
    // The library's messages already name the file and the cause: shown once, not chained.
    let replay = builder
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the replay: {e}"))?;
    if replay.modes().contains(&Mode::Tcp) {
        eprintln!(
            "note: connect mode (tcp) reports completed handshakes on its own sockets; \
             a capture holds none, so it sees no probe here (use stcp)"
        );
    }

    let mut capture =
        CaptureFile::open(&args.file).map_err(|e| anyhow::anyhow!("cannot replay: {e}"))?;
    let style = if args.json {
        LogStyle::Json
    } else {
        args.log_format.style()
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut session = replay.session();
    // PROBE_EVENTS: the same probe lines the daemon would log, limited the same way.
    let probe_events = ProbeEventLimit::new(config.probe_events_per_second);
    let mut write_error = None;
    let mut read_error: Option<CaptureError> = None;
    // Frames go to the detector in batches (see `ReplaySession::feed_batch`).
    loop {
        let more = session.feed_from(&mut capture, |event| {
            if write_error.is_none()
                && let Err(e) = write_event(&mut out, style, event, &probe_events)
            {
                write_error = Some(e);
            }
        });
        match more {
            Ok(true) if write_error.is_none() => {}
            Ok(_) => break,
            Err(error) => {
                read_error = Some(error);
                break;
            }
        }
    }
    if let Some(error) = write_error {
        return Err(error).context("cannot write to standard output");
    }
    let report = session.finish();
    let summary = if args.json {
        summary_json(
            &args.file,
            replay.modes(),
            &report.summary,
            read_error.as_ref(),
        )
    } else {
        summary_text(
            &args.file,
            replay.modes(),
            &report.summary,
            read_error.is_some(),
        )
    };
    out.write_all(summary.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    match read_error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            eprintln!(
                "portsentry: error: {error} (the {} frame(s) before it were replayed)",
                report.summary.frames
            );
            Ok(ExitCode::from(super::EXIT_FAILURE))
        }
    }
}

/// Writes the lines the daemon logs for `event` (nothing for the unlogged kinds).
fn write_event(
    out: &mut impl Write,
    style: LogStyle,
    event: &Event,
    probe_events: &ProbeEventLimit,
) -> io::Result<()> {
    let (at, lines) = match event {
        Event::BelowTrigger { probe, .. } => match probe_events.admit(event) {
            Some(_) => (probe.at, notice_lines(style, &Notice::Probe { probe })),
            None => return Ok(()),
        },
        Event::Alert(alert) => (
            alert.probe.at,
            alert_lines(
                style,
                &AlertContext {
                    alert,
                    host_name: None,
                    block: BlockStatus::NotRequested,
                    steps: &[],
                },
            ),
        ),
        Event::Ignored { probe, reason } => (
            probe.at,
            notice_lines(
                style,
                &Notice::Ignored {
                    probe,
                    reason: *reason,
                    host_name: None,
                },
            ),
        ),
        Event::AlreadyBlocked(probe) => (
            probe.at,
            notice_lines(
                style,
                &Notice::AlreadyBlocked {
                    probe,
                    host_name: None,
                },
            ),
        ),
        Event::Released(release) => (
            release.released_at,
            release_lines(
                style,
                &ReleaseContext {
                    release,
                    host_name: None,
                    steps: &[],
                },
            ),
        ),
        _ => return Ok(()),
    };
    for line in lines {
        if style == LogStyle::Json {
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{} {line}", utc(at))?;
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
fn utc(at: Timestamp) -> String {
    i64::try_from(at.as_micros())
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map_or_else(
            || format!("{}s", at.as_secs()),
            |t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        )
}

fn counts<'a>(items: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = items
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

fn mode_names(modes: &[Mode]) -> String {
    modes
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn port_list(ports: &[u16]) -> String {
    let set: PortSet = ports.iter().copied().collect();
    set.to_string()
}

/// The summary for people.
fn summary_text(
    file: &std::path::Path,
    modes: &[Mode],
    s: &ReplaySummary,
    partial: bool,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nreplay of {}{}: modes {}",
        file.display(),
        if partial {
            " (stopped at a bad record)"
        } else {
            ""
        },
        mode_names(modes)
    );
    let span = match (s.first_frame_at, s.last_frame_at) {
        (Some(first), Some(last)) => format!(
            " from {} to {} ({:.3} s)",
            utc(first),
            utc(last),
            last.saturating_duration_since(first).as_secs_f64()
        ),
        _ => String::new(),
    };
    let _ = writeln!(t, "  frames read        {}{span}", s.frames);
    let _ = writeln!(
        t,
        "  probes             {} ({})",
        s.probes,
        counts(s.probes_by_kind.iter().map(|(k, n)| (*k, *n)))
    );
    let _ = writeln!(
        t,
        "  skipped frames     {} ({})",
        s.skips.total(),
        counts(s.skips.nonzero().map(|(reason, n)| (reason.as_str(), n)))
    );
    if s.not_to_host > 0 {
        let _ = writeln!(t, "  not to this host   {}", s.not_to_host);
    }
    let _ = writeln!(
        t,
        "  events             {}",
        counts(s.events_by_kind.iter().map(|(k, n)| (*k, *n)))
    );
    let _ = writeln!(
        t,
        "  alerts             {} from {} source(s)",
        s.alerts(),
        s.sources.len()
    );
    for source in &s.sources {
        let _ = writeln!(t, "{}", source_line(source));
    }
    if s.unlisted_alerts > 0 {
        let _ = writeln!(
            t,
            "    (and {} alert(s) of further sources, not listed)",
            s.unlisted_alerts
        );
    }
    t
}

fn source_line(source: &SourceReport) -> String {
    let mut line = format!("    {}: {} alert(s)", source.source, source.alerts.len());
    if let Some(first) = source.alerts.first() {
        let _ = write!(
            line,
            ", first {} {} {} port {} at {}",
            first.mode,
            first.probe.protocol.as_str(),
            first.probe.kind,
            first.probe.destination_port,
            utc(first.probe.at)
        );
    }
    let probed = &source.ports_probed;
    let _ = write!(line, "; {} distinct port(s) probed", probed.len());
    for (name, ports) in [("tcp", &probed.tcp), ("udp", &probed.udp)] {
        if !ports.is_empty() {
            let _ = write!(line, " {name}:{}", port_list(ports));
        }
    }
    let _ = write!(line, ", {} counted", source.ports_counted.len());
    if !source.exact {
        line.push_str(" (from its first alert on: a flood came between its earlier probes)");
    }
    line
}

/// The summary as one JSON line.
fn summary_json(
    file: &std::path::Path,
    modes: &[Mode],
    s: &ReplaySummary,
    error: Option<&CaptureError>,
) -> String {
    let time = |t: Option<Timestamp>| t.map(utc);
    let sources: Vec<serde_json::Value> = s
        .sources
        .iter()
        .map(|source| {
            let alerts: Vec<serde_json::Value> = source
                .alerts
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "timestamp": utc(a.probe.at),
                        "mode": a.mode.as_str(),
                        "protocol": a.probe.protocol.as_str(),
                        "scan_type": a.probe.kind.as_str(),
                        "dst_ip": a.probe.destination.to_string(),
                        "dst_port": a.probe.destination_port,
                        "distinct_ports": a.distinct_ports,
                    })
                })
                .collect();
            serde_json::json!({
                "src_ip": source.source.to_string(),
                "alerts": alerts,
                "probes": source.probes,
                "ports_probed": {"tcp": source.ports_probed.tcp, "udp": source.ports_probed.udp},
                "ports_counted": {"tcp": source.ports_counted.tcp, "udp": source.ports_counted.udp},
                "exact": source.exact,
            })
        })
        .collect();
    let skips: serde_json::Map<String, serde_json::Value> = s
        .skips
        .iter()
        .map(|(reason, n)| (reason.as_str().to_owned(), n.into()))
        .collect();
    let value = serde_json::json!({
        "event": "summary",
        "schema": portsentry_core::respond::log::JSON_SCHEMA,
        "file": file.display().to_string(),
        "complete": error.is_none(),
        "error": error.map(ToString::to_string),
        "modes": modes.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "frames": s.frames,
        "first_frame": time(s.first_frame_at),
        "last_frame": time(s.last_frame_at),
        "probes": s.probes,
        "probes_by_kind": s.probes_by_kind,
        "skips": skips,
        "not_to_host": s.not_to_host,
        "events_by_kind": s.events_by_kind,
        "alerts": s.alerts(),
        "unlisted_alerts": s.unlisted_alerts,
        "sources": sources,
        "peak_memory_kib": peak_memory_kib(),
    });
    format!("{value}\n")
}

/// The process's peak resident memory so far in KiB (`VmHWM` of `/proc/self/status`), if the
/// kernel says.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
