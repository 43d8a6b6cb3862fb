//! The engine's status as Prometheus metrics, in the classic text format (version 0.0.4).
//!
//! Built with the `prometheus` crate (default features off: no protobuf), whose text encoder
//! writes the 0.0.4 format that node_exporter's textfile collector and every Prometheus read
//! (the OpenMetrics-only `prometheus-client` crate does not). Each render builds a fresh
//! registry from one [`EngineStatus`] snapshot, so counters carry the engine's own totals.
//!
//! Names follow Prometheus' conventions: the `portsentry_` prefix, `_total` on counters, base
//! units. Labels take values from fixed sets only (mode, kind, reason, ...): never an address,
//! so a scanner cannot grow the series count or inject text.

use anyhow::Context;
use portsentry_core::engine::EngineStatus;
use portsentry_core::probe_counts::KIND_NAMES;
use portsentry_core::{Mode, PortState, Protocol};
use prometheus::core::Collector;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The HTTP content type of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the exposition says besides the engine's snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderMeta {
    /// The detector's start, Unix seconds.
    pub(crate) started_at: u64,
    /// This render's time, Unix seconds.
    pub(crate) now: u64,
    /// Jobs waiting in the current response queue.
    pub(crate) queue_depth: u64,
}

/// Renders `status` in the text format 0.0.4.
///
/// # Errors
///
/// When the crate refuses a metric (a name clash; a programming error, kept out of a panic).
pub(crate) fn render(status: &EngineStatus, meta: RenderMeta) -> anyhow::Result<String> {
    let mut out = Families::default();
    out.gauge(
        "portsentry_build_info",
        "Build information of the running portsentry (always 1).",
        &["version"],
        [(vec![env!("CARGO_PKG_VERSION")], 1)],
    )?;
    out.gauge(
        "portsentry_start_time_seconds",
        "When the detector started, in seconds since the Unix epoch.",
        &[],
        [(vec![], meta.started_at)],
    )?;
    out.gauge(
        "portsentry_last_update_timestamp_seconds",
        "When these values were taken, in seconds since the Unix epoch (a textfile that stops \
         moving belongs to a stopped detector).",
        &[],
        [(vec![], meta.now)],
    )?;
    out.gauge(
        "portsentry_monitored_ports",
        "Ports each active mode monitors now.",
        &["mode"],
        status
            .monitored
            .iter()
            .map(|(mode, n)| (vec![mode.as_str()], to_u64(*n))),
    )?;
    probes(&mut out, status)?;
    events(&mut out, status)?;
    blocks(&mut out, status)?;
    tracker(&mut out, status)?;
    queue(&mut out, status, meta.queue_depth)?;
    capture(&mut out, status)?;
    out.finish()
}

fn probes(out: &mut Families, status: &EngineStatus) -> anyhow::Result<()> {
    // Every kind an active mode can take starts at 0, so rates work from the first scrape.
    let mut rows: Vec<(Vec<&str>, u64)> = Vec::new();
    for &mode in &status.modes {
        for kind in kinds_of(mode) {
            rows.push((vec![mode.as_str(), kind], 0));
        }
    }
    for (mode, kind, n) in status.detector.probes.nonzero() {
        match rows
            .iter_mut()
            .find(|(labels, _)| labels[0] == mode.as_str() && labels[1] == kind)
        {
            Some(row) => row.1 = n,
            None => rows.push((vec![mode.as_str(), kind], n)),
        }
    }
    out.counter(
        "portsentry_probes_total",
        "Probes to a monitored port, by the mode that took them and their kind.",
        &["mode", "kind"],
        rows,
    )?;
    out.counter(
        "portsentry_frames_skipped_total",
        "Captured frames that were not probes, by reason.",
        &["reason"],
        status
            .skips
            .iter()
            .map(|(skip, n)| (vec![skip.as_str()], n)),
    )
}

/// The kinds of probe `mode` can count.
fn kinds_of(mode: Mode) -> Vec<&'static str> {
    match (mode.is_connect(), mode.protocol()) {
        (true, Protocol::Tcp) => vec!["connect"],
        (_, Protocol::Udp) => vec!["udp"],
        (false, Protocol::Tcp) => KIND_NAMES
            .iter()
            .copied()
            .filter(|k| !matches!(*k, "udp" | "connect"))
            .collect(),
    }
}

fn events(out: &mut Families, status: &EngineStatus) -> anyhow::Result<()> {
    let d = &status.detector;
    out.counter(
        "portsentry_alerts_total",
        "Sources that crossed SCAN_TRIGGER (one alert each).",
        &[],
        [(vec![], d.alerts)],
    )?;
    let answers = &status.answers;
    out.counter(
        "portsentry_alerts_by_port_state_total",
        "Alerts by what the host's answer told the scanner about the port (open: it reached a port that answered).",
        &["port_state"],
        PortState::ALL.map(|state| (vec![state.as_str()], answers.alerts(state))),
    )?;
    out.gauge(
        "portsentry_outbound_flows",
        "The host's own recent flows remembered: replies to them are no probes.",
        &[],
        [(vec![], answers.flows)],
    )?;
    out.counter(
        "portsentry_probe_outcomes_total",
        "What the detector decided about each probe that did not alert.",
        &["outcome"],
        [
            (vec!["not_monitored"], d.not_monitored),
            (vec!["ignored"], d.ignored),
            (vec!["below_trigger"], d.below_trigger),
            (vec!["already_blocked"], d.already_blocked),
            (vec!["already_alerted"], d.already_alerted),
        ],
    )
}

fn blocks(out: &mut Families, status: &EngineStatus) -> anyhow::Result<()> {
    let b = &status.detector.blocks;
    out.counter(
        "portsentry_blocks_total",
        "Blocks made (every blocking responder succeeded) or restored at start.",
        &[],
        [(vec![], b.recorded)],
    )?;
    out.counter(
        "portsentry_block_failures_total",
        "Block attempts that failed (a blocking responder failed, or the response queue was \
         full).",
        &[],
        [(vec![], b.failed)],
    )?;
    out.counter(
        "portsentry_blocks_limited_total",
        "Alerts not blocked because of a limit, by limit (max_blocks_or_rate: MAX_BLOCKS or \
         BLOCK_RATE; pending: too many blocks being made at once).",
        &["limit"],
        [
            (vec!["max_blocks_or_rate"], status.detector.limited),
            (vec!["pending"], b.pending_overflow),
        ],
    )?;
    out.counter(
        "portsentry_blocks_abandoned_total",
        "Blocks given up because no responder report came in time.",
        &[],
        [(vec![], b.abandoned)],
    )?;
    out.counter(
        "portsentry_blocks_released_total",
        "Blocks released (expired or lifted by unblock).",
        &[],
        [(vec![], b.released)],
    )?;
    out.gauge(
        "portsentry_blocks_active",
        "Sources blocked now.",
        &[],
        [(vec![], to_u64(b.blocked))],
    )?;
    out.gauge(
        "portsentry_blocks_pending",
        "Sources whose block is being made now.",
        &[],
        [(vec![], to_u64(b.pending))],
    )?;
    out.counter(
        "portsentry_reconcile_runs_total",
        "Reconciliations of the firewall with the block table (at start, after a reload and \
         every RECONCILE_INTERVAL).",
        &[],
        [(vec![], status.reconcile_runs)],
    )?;
    out.gauge(
        "portsentry_blocks_releasing",
        "Sources whose block is being released now.",
        &[],
        [(vec![], to_u64(b.releasing))],
    )
}

fn tracker(out: &mut Families, status: &EngineStatus) -> anyhow::Result<()> {
    let t = &status.detector.tracker;
    out.gauge(
        "portsentry_tracker_sources",
        "Sources whose probes the tracker counts now.",
        &[],
        [(vec![], to_u64(t.tracked))],
    )?;
    out.gauge(
        "portsentry_tracker_capacity_sources",
        "The most sources the tracker holds (MAX_TRACKED_SOURCES).",
        &[],
        [(vec![], to_u64(t.capacity))],
    )?;
    out.counter(
        "portsentry_tracker_sources_inserted_total",
        "Sources the tracker started counting.",
        &[],
        [(vec![], t.inserted)],
    )?;
    out.counter(
        "portsentry_tracker_evictions_total",
        "Sources evicted to make room, by which list they were taken from.",
        &["list"],
        [
            (vec!["probation"], t.evicted_probation),
            (vec!["protected_stale"], t.evicted_stale),
        ],
    )?;
    out.counter(
        "portsentry_tracker_untracked_total",
        "New sources not tracked because their table neighbourhood was full.",
        &[],
        [(vec![], t.untracked_collisions)],
    )
}

fn queue(out: &mut Families, status: &EngineStatus, depth: u64) -> anyhow::Result<()> {
    let q = &status.dispatch;
    out.gauge(
        "portsentry_response_queue_depth",
        "Jobs waiting for the responder thread now.",
        &[],
        [(vec![], depth)],
    )?;
    out.counter(
        "portsentry_response_jobs_total",
        "Jobs the responder thread finished.",
        &[],
        [(vec![], q.processed)],
    )?;
    out.counter(
        "portsentry_response_queue_overflow_total",
        "Jobs dropped because the response queue was full, by job.",
        &["job"],
        [
            (vec!["alert"], q.dropped_alerts),
            (vec!["release"], q.dropped_releases),
            (vec!["notice"], q.dropped_notices),
        ],
    )
}

fn capture(out: &mut Families, status: &EngineStatus) -> anyhow::Result<()> {
    if let Some(c) = status.capture {
        out.counter(
            "portsentry_capture_frames_total",
            "Frames the kernel's filter passed to the capture socket.",
            &[],
            [(vec![], c.received)],
        )?;
        out.counter(
            "portsentry_kernel_dropped_frames_total",
            "Frames the kernel dropped because the capture's receive queue was full.",
            &[],
            [(vec![], c.dropped)],
        )?;
    }
    out.counter(
        "portsentry_capture_errors_total",
        "Errors reading the capture socket.",
        &[],
        [(vec![], status.capture_errors)],
    )?;
    out.counter(
        "portsentry_accept_failures_total",
        "Connect-mode connections the kernel accepted but that were lost before accept().",
        &[],
        [(vec![], status.accept_failures)],
    )
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The families of one render.
#[derive(Default)]
struct Families {
    registry: Registry,
}

impl Families {
    fn counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<&'a str>, u64)>,
    ) -> anyhow::Result<()> {
        let family = IntCounterVec::new(Opts::new(name, help), labels)
            .with_context(|| format!("metric {name}"))?;
        self.fill(name, family, rows, |family, values, n| {
            family.get_metric_with_label_values(values)?.inc_by(n);
            Ok(())
        })
    }

    fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<&'a str>, u64)>,
    ) -> anyhow::Result<()> {
        let family = IntGaugeVec::new(Opts::new(name, help), labels)
            .with_context(|| format!("metric {name}"))?;
        self.fill(name, family, rows, |family, values, n| {
            let value = i64::try_from(n).unwrap_or(i64::MAX);
            family.get_metric_with_label_values(values)?.set(value);
            Ok(())
        })
    }

    /// Sets one sample per row with `set`, then registers the family.
    fn fill<'a, F: Collector + 'static>(
        &mut self,
        name: &str,
        family: F,
        rows: impl IntoIterator<Item = (Vec<&'a str>, u64)>,
        set: impl Fn(&F, &[&str], u64) -> prometheus::Result<()>,
    ) -> anyhow::Result<()> {
        for (values, n) in rows {
            set(&family, &values, n).with_context(|| format!("metric {name}"))?;
        }
        self.registry
            .register(Box::new(family))
            .with_context(|| format!("metric {name}"))
    }

    fn finish(self) -> anyhow::Result<String> {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .context("cannot encode the metrics")?;
        String::from_utf8(text).context("the metrics text is not UTF-8")
    }
}
