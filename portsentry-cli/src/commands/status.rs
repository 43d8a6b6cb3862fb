//! `portsentry status`: the detector's blocked hosts, expiries and counters, from the status
//! file it keeps in the state directory.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use portsentry_core::config;
use serde_json::Value;

use crate::config_source::Origin;
use crate::state_files::{self, process_alive, unix_now};

/// Exit status: the detector is not running.
pub(crate) const EXIT_NOT_RUNNING: u8 = 3;

/// Options of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the status file's JSON as it is
    #[arg(long)]
    json: bool,
}

/// Prints the status; exit 0 when the detector runs, 3 when it does not, 1 without a status
/// file.
pub(crate) fn run(args: &Args, _origin: Origin) -> anyhow::Result<ExitCode> {
    let path = state_files::status_path(&config::state_directory());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "portsentry: no status file at {}: the detector has not run with this state \
                 directory (set STATE_DIRECTORY to the one it uses)",
                path.display()
            );
            return Ok(ExitCode::from(super::EXIT_FAILURE));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let status: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid status file", path.display()))?;
    let running = status["running"].as_bool() == Some(true)
        && status["pid"].as_u64().is_some_and(process_alive);
    if args.json {
        print!("{text}");
    } else {
        print!("{}", render(&status, running, unix_now()));
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_RUNNING)
    })
}

fn local_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(
            || secs.to_string(),
            |t| {
                t.to_zoned_datetime(jiff::tz::TimeZone::system())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            },
        )
}

fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn n(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// The status for people.
fn render(s: &Value, running: bool, now: u64) -> String {
    let mut out = String::new();
    let updated = n(&s["updated_at"]);
    let state = if running {
        format!("running, pid {}", n(&s["pid"]))
    } else if s["running"].as_bool() == Some(true) {
        format!(
            "NOT running (pid {} ended without a clean stop)",
            n(&s["pid"])
        )
    } else {
        "NOT running (stopped cleanly)".to_owned()
    };
    let _ = writeln!(
        out,
        "portsentry {}: {state}; started {}, status of {} ago",
        s["version"].as_str().unwrap_or("?"),
        local_time(n(&s["started_at"])),
        span(now.saturating_sub(updated))
    );
    let _ = writeln!(
        out,
        "configuration: {}",
        s["config"].as_str().unwrap_or("?")
    );
    let modes: Vec<String> = s["modes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| format!("{m} ({} ports)", n(&s["monitored_ports"][m])))
        .collect();
    let _ = writeln!(out, "modes: {}", modes.join(", "));
    if s["commands_enabled"].as_bool() == Some(false) {
        let _ = writeln!(
            out,
            "blocking commands: DISABLED, log only (a path of the configuration, the ignore file \
             or a file root writes is not root's alone: see the log)"
        );
    }
    let blocks = s["blocks"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\nblocked hosts: {}", blocks.len());
    for b in &blocks {
        let expires = match b["expires_at"].as_u64() {
            None => "never".to_owned(),
            Some(t) if t > now => format!("{} (in {})", local_time(t), span(t - now)),
            Some(t) => format!("{} (due)", local_time(t)),
        };
        let _ = writeln!(
            out,
            "  {:<39} since {}  expires {}  ({} port {})",
            b["address"].as_str().unwrap_or("?"),
            local_time(n(&b["blocked_at"])),
            expires,
            b["mode"].as_str().unwrap_or("?"),
            n(&b["port"])
        );
    }
    let c = &s["counters"];
    let _ = writeln!(out, "\ncounters:");
    let _ = writeln!(
        out,
        "  alerts {}, below trigger {}, ignored {}, already blocked {}, already alerted {}, not monitored {}",
        n(&c["alerts"]),
        n(&c["below_trigger"]),
        n(&c["ignored"]),
        n(&c["already_blocked"]),
        n(&c["already_alerted"]),
        n(&c["not_monitored"])
    );
    if !c["not_blocked_by_limits"].is_null() {
        let _ = writeln!(
            out,
            "  alerts not blocked because of MAX_BLOCKS/BLOCK_RATE {}, blocks pending now {}",
            n(&c["not_blocked_by_limits"]),
            n(&c["pending_blocks"])
        );
    }
    let _ = writeln!(out, "  sources tracked now: {}", n(&c["tracked_sources"]));
    let t = &c["tracker"];
    if t.is_object() {
        let _ = writeln!(
            out,
            "  tracker: {} of {} full slots, {} one-probe sources (each kept through {} newer), {} MiB",
            n(&t["full_slots"]),
            n(&t["capacity"]),
            n(&t["first_probe_sources"]),
            n(&t["first_probe_capacity"]),
            n(&t["memory_bytes"]).div_ceil(1 << 20)
        );
    }
    let f = &c["floods"];
    if f.is_object() {
        let _ = writeln!(
            out,
            "  repeats of known sources: {} ({} noticed, {} counted, {} summarised in {} summaries); log-only alerts suppressed: {}",
            n(&f["repeats"]),
            n(&f["notified"]),
            n(&f["counted"]),
            n(&f["summarised"]),
            n(&f["summaries"]),
            n(&f["suppressed_alerts"])
        );
    }
    if c["capture"].is_object() {
        let _ = writeln!(
            out,
            "  capture: {} frames passed the kernel filter, {} dropped by the kernel, {} read errors",
            n(&c["capture"]["received"]),
            n(&c["capture"]["dropped"]),
            n(&c["capture_errors"])
        );
    }
    let skipped: Vec<String> = c["skipped"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {}", n(v)))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "  frames skipped: {}", skipped.join(", "));
    }
    let d = &c["dispatch"];
    let _ = writeln!(
        out,
        "  responses: {} queued, {} done; dropped: {} alerts, {} releases, {} notices",
        n(&d["queued"]),
        n(&d["processed"]),
        n(&d["dropped_alerts"]),
        n(&d["dropped_releases"]),
        n(&d["dropped_notices"])
    );
    for failure in s["bind_failures"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  not monitored: {}", failure.as_str().unwrap_or("?"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_shows_blocks_with_expiry_and_counters() {
        let s = serde_json::json!({
            "version": "0.1.0", "pid": 42, "running": true, "started_at": 1000, "updated_at": 1990,
            "config": "/etc/portsentry/portsentry.conf", "modes": ["stcp"],
            "monitored_ports": {"stcp": 26}, "commands_enabled": false,
            "blocks": [
                {"address": "203.0.113.7", "blocked_at": 1900, "expires_at": 2300, "mode": "stcp", "port": 1},
                {"address": "2001:db8::1", "blocked_at": 1950, "expires_at": null, "mode": "stcp", "port": 79}
            ],
            "counters": {"alerts": 2, "ignored": 1, "skipped": {"reset": 3},
                "capture": {"received": 10, "dropped": 0, "delivered": 10},
                "dispatch": {"queued": 4, "processed": 4}},
            "bind_failures": []
        });
        let text = render(&s, true, 2000);
        assert!(text.contains("running, pid 42"), "{text}");
        assert!(text.contains("status of 10s ago"), "{text}");
        assert!(text.contains("stcp (26 ports)"), "{text}");
        assert!(text.contains("blocking commands: DISABLED"), "{text}");
        assert!(text.contains("blocked hosts: 2"), "{text}");
        assert!(text.contains("203.0.113.7"), "{text}");
        assert!(text.contains("(in 5m 0s)"), "{text}");
        assert!(text.contains("expires never"), "{text}");
        assert!(text.contains("alerts 2,"), "{text}");
        assert!(text.contains("0 dropped by the kernel"), "{text}");
        assert!(text.contains("frames skipped: reset 3"), "{text}");
        let stopped = render(&s, false, 2000);
        assert!(stopped.contains("NOT running (pid 42 ended without a clean stop)"));
    }
}
