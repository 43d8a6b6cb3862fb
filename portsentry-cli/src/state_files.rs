//! The files a running detector keeps in its state directory for the other commands.
//!
//! * `portsentry.status`: JSON, replaced atomically every 2 seconds and at exit, read by
//!   `portsentry status`. Keys (schema 1): `schema`, `version`, `pid`, `running` (false once
//!   the detector has stopped), `started_at` and `updated_at` (Unix seconds), `config`,
//!   `modes`, `monitored_ports` (mode → count), `commands_enabled`, `blocks` (array of
//!   `address`, `blocked_at`, `expires_at` (null: never), `mode`, `port`), `counters`
//!   (`alerts`, `below_trigger`, `ignored`, `already_blocked`, `already_alerted`,
//!   `not_monitored`, `not_blocked_by_limits` (alerts refused by `MAX_BLOCKS`/`BLOCK_RATE`),
//!   `pending_blocks`, `tracked_sources`, `skipped` (reason → count), `capture` (`received`,
//!   `dropped`, `delivered`) or null, `capture_errors`, `dispatch` (`queued`, `processed`,
//!   `dropped_alerts`, `dropped_releases`, `dropped_notices`), `accept_failures`),
//!   `bind_failures`.
//! * `portsentry.sock`: the control socket (see `run::control`).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use portsentry_core::engine::EngineStatus;
use portsentry_core::respond::address_text;
use portsentry_core::state_file;
use serde_json::{Value, json};

/// The status file's schema version.
pub(crate) const STATUS_SCHEMA: u64 = 1;

/// The status file in `state_dir`.
pub(crate) fn status_path(state_dir: &Path) -> PathBuf {
    state_dir.join("portsentry.status")
}

/// The control socket in `state_dir`.
pub(crate) fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("portsentry.sock")
}

/// What the status file says besides the engine's snapshot.
#[derive(Debug, Clone)]
pub(crate) struct StatusMeta {
    pub(crate) pid: u32,
    pub(crate) started_at: u64,
    pub(crate) config: String,
    pub(crate) running: bool,
}

/// The JSON status document.
pub(crate) fn status_json(meta: &StatusMeta, status: &EngineStatus) -> Value {
    let monitored: serde_json::Map<String, Value> = status
        .monitored
        .iter()
        .map(|(mode, n)| (mode.as_str().to_owned(), json!(n)))
        .collect();
    let blocks: Vec<Value> = status
        .blocks
        .iter()
        .map(|b| {
            json!({
                "address": address_text(b.address),
                "blocked_at": b.blocked_at.as_secs(),
                "expires_at": b.expires_at.map(|t| t.as_secs()),
                "mode": b.mode.as_str(),
                "port": b.port,
            })
        })
        .collect();
    let skipped: serde_json::Map<String, Value> = status
        .skips
        .nonzero()
        .map(|(skip, n)| (skip.as_str().to_owned(), json!(n)))
        .collect();
    let d = &status.detector;
    let q = &status.dispatch;
    json!({
        "schema": STATUS_SCHEMA,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": meta.pid,
        "running": meta.running,
        "started_at": meta.started_at,
        "updated_at": unix_now(),
        "config": meta.config,
        "modes": status.modes.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "monitored_ports": monitored,
        "commands_enabled": status.commands_enabled,
        "blocks": blocks,
        "counters": {
            "alerts": d.alerts,
            "below_trigger": d.below_trigger,
            "ignored": d.ignored,
            "already_blocked": d.already_blocked,
            "already_alerted": d.already_alerted,
            "not_monitored": d.not_monitored,
            "not_blocked_by_limits": d.limited,
            "pending_blocks": d.blocks.pending,
            "tracked_sources": d.tracker.tracked,
            "tracker": {
                "full_slots": d.tracker.tracked,
                "capacity": d.tracker.capacity,
                "first_probe_sources": d.tracker.first_probe_sources,
                "first_probe_capacity": d.tracker.first_probe_capacity,
                "first_probe_generations": d.tracker.first_probe_generations,
                "memory_bytes": d.tracker.memory_bytes,
            },
            "floods": {
                "repeats": status.floods.repeats,
                "notified": status.floods.notified,
                "counted": status.floods.counted,
                "summarised": status.floods.summarised,
                "summaries": status.floods.summaries,
                "sources": status.floods.sources,
                "suppressed_alerts": status.floods.suppressed_alerts,
            },
            "skipped": skipped,
            "capture": status.capture.map(|c| json!({
                "received": c.received,
                "dropped": c.dropped,
                "delivered": c.delivered,
            })),
            "capture_errors": status.capture_errors,
            "dispatch": {
                "queued": q.queued,
                "processed": q.processed,
                "dropped_alerts": q.dropped_alerts,
                "dropped_releases": q.dropped_releases,
                "dropped_notices": q.dropped_notices,
            },
            "accept_failures": status.accept_failures,
        },
        "bind_failures": status.bind_failures,
    })
}

/// Writes the status document atomically, never through a link
/// ([`state_file::write_atomic`]).
pub(crate) fn write_status(path: &Path, document: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(document)?;
    text.push('\n');
    state_file::write_atomic(path, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when a process with `pid` exists (and is not a zombie we could not tell apart).
pub(crate) fn process_alive(pid: u64) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Creates the state directory when missing (mode 0755) and, when running as root, refuses
/// to go on unless it (and the pid file's directory) is owned by root and writable by root
/// only, along its whole path (links, their directories and targets included): the status
/// file, the control socket and the block table are written there as root.
///
/// # Errors
///
/// When the directory cannot be created, or a permission finding names a path on the way.
pub(crate) fn prepare_state_directory(
    state_dir: &Path,
    pid_file: Option<&Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(state_dir)
        .with_context(|| format!("cannot create the state directory {}", state_dir.display()))?;
    if !portsentry_core::config::running_as_root() {
        return Ok(());
    }
    let mut findings = portsentry_core::permissions::check_file(state_dir)
        .with_context(|| format!("cannot check the state directory {}", state_dir.display()))?;
    if let Some(pid_file) = pid_file {
        findings.extend(portsentry_core::permissions::check_written_file(pid_file));
    }
    if let Some(first) = findings.first() {
        let all: Vec<String> = findings.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "the state directory {} is not safe for root's files (status, control socket, \
             block table): {}; make it owned by root and writable by root only \
             (first finding: {})",
            state_dir.display(),
            all.join("; "),
            first.culprit.display()
        );
    }
    Ok(())
}
