//! Prometheus metrics of the running detector: `--metrics-listen` and `--metrics-textfile`.
//!
//! The main loop hands each status snapshot to an [`Exporter`], which renders it once
//! ([`render`]) and publishes the text to the HTTP page ([`http`]) and, atomically, to the
//! textfile that node_exporter's textfile collector reads. Neither touches the engine: a
//! slow or hostile scraper cannot stall detection.

pub(crate) mod http;
pub(crate) mod render;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use portsentry_core::engine::EngineStatus;
use portsentry_core::respond::blocked_file;
use portsentry_core::respond::dispatch::DispatchStats;

use render::RenderMeta;

/// The textfile collector reads only files with this extension.
const TEXTFILE_EXTENSION: &str = "prom";

/// Where the metrics go, checked and bound before the detector daemonises.
#[derive(Debug)]
pub(crate) struct Setup {
    listener: Option<http::Bound>,
    textfile: Option<PathBuf>,
}

impl Setup {
    /// Binds `listen` and checks `textfile`'s name.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the textfile's name does not end in `.prom`.
    pub(crate) fn new(listen: Option<SocketAddr>, textfile: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(path) = textfile {
            check_textfile_name(path)?;
        }
        Ok(Self {
            listener: listen.map(http::bind).transpose()?,
            textfile: textfile.map(Path::to_path_buf),
        })
    }

    /// Starts serving (after daemonising: threads do not survive a fork).
    ///
    /// # Errors
    ///
    /// When the serving thread cannot start.
    pub(crate) fn start(self, started_at: u64) -> anyhow::Result<Exporter> {
        let page = match self.listener {
            Some(bound) => {
                let page = Arc::new(http::Page::default());
                bound
                    .start(Arc::clone(&page))
                    .context("cannot start the metrics thread")?;
                Some(page)
            }
            None => None,
        };
        Ok(Exporter {
            page,
            textfile: self.textfile,
            started_at,
            queue: MonotonicQueue::default(),
        })
    }
}

/// Publishes status snapshots as metrics.
#[derive(Debug)]
pub(crate) struct Exporter {
    page: Option<Arc<http::Page>>,
    textfile: Option<PathBuf>,
    started_at: u64,
    queue: MonotonicQueue,
}

/// The response queue's counters kept monotonic: a reload replaces the dispatcher, whose
/// counters start again from 0; what the old one counted is carried over, so a Prometheus
/// counter never goes down while the process lives.
#[derive(Debug, Default)]
struct MonotonicQueue {
    carried: DispatchStats,
    last: DispatchStats,
}

impl MonotonicQueue {
    /// The totals since the process started, given the current dispatcher's `now`.
    fn update(&mut self, now: DispatchStats) -> DispatchStats {
        let last = self.last;
        if now.queued < last.queued || now.processed < last.processed {
            let c = &mut self.carried;
            c.queued += last.queued;
            c.processed += last.processed;
            c.dropped_alerts += last.dropped_alerts;
            c.dropped_releases += last.dropped_releases;
            c.dropped_notices += last.dropped_notices;
        }
        self.last = now;
        let c = &self.carried;
        DispatchStats {
            queued: c.queued + now.queued,
            processed: c.processed + now.processed,
            dropped_alerts: c.dropped_alerts + now.dropped_alerts,
            dropped_releases: c.dropped_releases + now.dropped_releases,
            dropped_notices: c.dropped_notices + now.dropped_notices,
        }
    }
}

impl Exporter {
    /// True when metrics go anywhere.
    pub(crate) fn is_enabled(&self) -> bool {
        self.page.is_some() || self.textfile.is_some()
    }

    /// Renders `status` and publishes it.
    ///
    /// # Errors
    ///
    /// When rendering fails or the textfile cannot be written (the page is updated anyway).
    pub(crate) fn publish(&mut self, status: &EngineStatus, now: u64) -> anyhow::Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        let current = status.dispatch;
        let meta = RenderMeta {
            started_at: self.started_at,
            now,
            queue_depth: current.queued.saturating_sub(current.processed),
        };
        let mut status = status.clone();
        status.dispatch = self.queue.update(status.dispatch);
        let text = render::render(&status, meta)?;
        if let Some(path) = &self.textfile {
            blocked_file::write_atomic(path, &text)
                .with_context(|| format!("cannot write the metrics textfile {}", path.display()))?;
        }
        if let Some(page) = &self.page {
            page.publish(text);
        }
        Ok(())
    }
}

fn check_textfile_name(path: &Path) -> anyhow::Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some(TEXTFILE_EXTENSION) {
        bail!(
            "--metrics-textfile {}: node_exporter's textfile collector reads only files ending \
             in .{TEXTFILE_EXTENSION}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portsentry_core::{Mode, ScanKind};

    fn status() -> EngineStatus {
        let mut status = EngineStatus::default();
        status.modes = vec![Mode::StealthTcp, Mode::Udp];
        status.monitored = vec![(Mode::StealthTcp, 20), (Mode::Udp, 5)];
        status.detector.alerts = 2;
        status
            .detector
            .probes
            .record(Mode::StealthTcp, ScanKind::Syn);
        status
            .detector
            .probes
            .record(Mode::StealthTcp, ScanKind::Xmas);
        status.detector.probes.record(Mode::Udp, ScanKind::Udp);
        status.detector.blocks.blocked = 1;
        status.detector.blocks.recorded = 3;
        status.detector.blocks.failed = 1;
        status.detector.limited = 4;
        status.dispatch.queued = 10;
        status.dispatch.processed = 7;
        status
    }

    #[test]
    fn the_text_is_the_classic_format_with_the_expected_values() {
        let meta = RenderMeta {
            started_at: 1_700_000_000,
            now: 1_700_000_060,
            queue_depth: 3,
        };
        let text = render::render(&status(), meta).unwrap();
        for line in [
            "# TYPE portsentry_probes_total counter",
            "portsentry_probes_total{kind=\"syn\",mode=\"stcp\"} 1",
            "portsentry_probes_total{kind=\"fin\",mode=\"stcp\"} 0",
            "portsentry_probes_total{kind=\"udp\",mode=\"udp\"} 1",
            "# TYPE portsentry_build_info gauge",
            "portsentry_alerts_total 2",
            "portsentry_blocks_total 3",
            "portsentry_block_failures_total 1",
            "portsentry_blocks_limited_total{limit=\"max_blocks_or_rate\"} 4",
            "portsentry_blocks_active 1",
            "portsentry_response_queue_depth 3",
            "portsentry_monitored_ports{mode=\"stcp\"} 20",
            "portsentry_start_time_seconds 1700000000",
            "portsentry_frames_skipped_total{reason=\"later_fragment\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            text.contains(&format!(
                "portsentry_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "OpenMetrics' end marker: {text}");
        assert!(
            !text.contains("kind=\"connect\""),
            "no connect kind: {text}"
        );
    }

    #[test]
    fn the_textfile_is_replaced_atomically_and_must_end_in_prom() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Setup::new(None, Some(&dir.path().join("portsentry.txt"))).is_err());
        let path = dir.path().join("portsentry.prom");
        let mut exporter = Setup::new(None, Some(&path)).unwrap().start(1).unwrap();
        exporter.publish(&status(), 2).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("portsentry_alerts_total 2\n"), "{text}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("portsentry.prom")]);
    }

    #[test]
    fn queue_counters_survive_a_dispatcher_replaced_by_a_reload() {
        let mut queue = MonotonicQueue::default();
        let stats = |queued, processed, dropped_alerts| DispatchStats {
            queued,
            processed,
            dropped_alerts,
            ..DispatchStats::default()
        };
        assert_eq!(queue.update(stats(5, 4, 1)), stats(5, 4, 1));
        assert_eq!(queue.update(stats(7, 7, 1)), stats(7, 7, 1));
        // SIGHUP: a new dispatcher counts from 0 again.
        assert_eq!(queue.update(stats(1, 0, 0)), stats(8, 7, 1));
        assert_eq!(queue.update(stats(2, 2, 0)), stats(9, 9, 1));
    }
}
