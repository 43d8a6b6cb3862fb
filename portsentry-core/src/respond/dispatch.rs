//! Running responders off the capture thread, behind bounded queues.
//!
//! A [`Dispatcher`] owns a [`Fanout`] and runs it on its own thread. The capture/detector
//! thread submits work and **never waits**: every `submit_*` call takes a short lock, pushes
//! onto a queue and returns. Results come back on a channel that the capture thread drains
//! when it likes ([`Dispatcher::try_recv`]), so it can call the detector's `record_block` /
//! `record_block_failed`.
//!
//! Two queues, each bounded:
//!
//! * the **action queue** (alerts, releases, flush requests), served first;
//! * the **notice queue** (ignored and already-blocked sources: log lines only), served
//!   when the action queue is empty.
//!
//! A flood of notices can therefore never push out a block. When a queue is full the job is
//! dropped and counted ([`DispatchStats`]), and it is never silent:
//!
//! * a dropped **alert** is reported to the caller at once: `submit_alert` returns
//!   [`Submitted::Dropped`], which the caller must treat as a failed block (the detector then
//!   does not record the host and alerts again on its next probe, which retries the block);
//! * the next time the worker runs, the responders get a [`Notice::Dropped`] with the
//!   counts since the last one, so the log says how much was lost.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use portsentry_core::respond::dispatch::{DispatchConfig, Dispatcher, Report, Submitted};
//! use portsentry_core::respond::{self, BlockStatus, Fanout, Outcome};
//! use portsentry_core::{Alert, BlockMode, Mode, Probe, Protocol, ScanKind, Timestamp};
//!
//! let fanout = Fanout::new().with(
//!     respond::from_fn("firewall", |_ctx: &respond::AlertContext<'_>| Ok(Outcome::Acted(vec![]))).blocking(),
//! );
//! let dispatcher = Dispatcher::spawn(fanout, DispatchConfig::default()).unwrap();
//! let probe = Probe {
//!     at: Timestamp::from_secs(1_700_000_000),
//!     source: "203.0.113.1".parse().unwrap(),
//!     destination: "198.51.100.1".parse().unwrap(),
//!     protocol: Protocol::Tcp,
//!     source_port: 40000,
//!     destination_port: 11,
//!     kind: ScanKind::Syn,
//!     ip_options: false,
//! };
//! let alert = Alert { probe, mode: Mode::StealthTcp, distinct_ports: 1, response: BlockMode::Block };
//! assert_eq!(dispatcher.submit_alert(alert), Submitted::Queued);
//! match dispatcher.recv_timeout(Duration::from_secs(10)) {
//!     Some(Report::Alert(report)) => assert_eq!(report.block, BlockStatus::Blocked),
//!     other => panic!("unexpected {other:?}"),
//! }
//! dispatcher.shutdown();
//! ```

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::probe_events::ProbeEventLimit;
use super::resolve::Resolver;
use super::{AlertReport, Fanout, Notice, ReapplyReport, ReleaseReport, ResponderError};
use crate::block_table::BlockRecord;
use crate::config::BlockMode;
use crate::event::{Alert, Event, IgnoreReason, Release};
use crate::probe::{Probe, Timestamp};

/// Queue sizes and options of a [`Dispatcher`].
#[derive(Debug)]
pub struct DispatchConfig {
    /// Capacity of the action queue (alerts, releases). Default 1024.
    pub action_capacity: usize,
    /// Capacity of the notice queue (log-only events). Default 256.
    pub notice_capacity: usize,
    /// Resolves names for display (`RESOLVE_HOST`); `None` shows addresses only.
    pub resolver: Option<Resolver>,
    /// `PROBE_EVENTS`: probe notices per second of probe time (0: none).
    pub probe_events_per_second: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            action_capacity: 1024,
            notice_capacity: 256,
            resolver: None,
            probe_events_per_second: 0,
        }
    }
}

/// What happened to a submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a dropped alert must be treated as a failed block"]
pub enum Submitted {
    /// Queued; its report will arrive on the results channel (alerts and releases).
    Queued,
    /// The queue was full (or the dispatcher is shut down): the job is lost and counted. For
    /// an alert, treat it as a failed block now.
    Dropped,
    /// The event needs no response (not monitored, below trigger): nothing was queued.
    NotNeeded,
}

/// Counters of a [`Dispatcher`], since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchStats {
    /// Jobs accepted into a queue.
    pub queued: u64,
    /// Jobs the worker finished.
    pub processed: u64,
    /// Alerts dropped because the action queue was full.
    pub dropped_alerts: u64,
    /// Releases dropped because the action queue was full.
    pub dropped_releases: u64,
    /// Notices dropped because the notice queue was full.
    pub dropped_notices: u64,
}

/// A result coming back from the worker.
#[derive(Debug)]
#[non_exhaustive]
pub enum Report {
    /// An alert was handled: look at [`AlertReport::block`].
    Alert(AlertReport),
    /// A release was handled.
    Release(ReleaseReport),
    /// A block was re-applied (reconciliation).
    Reapply(ReapplyReport),
    /// Entries of addresses the block table does not know were removed (reconciliation).
    Pruned(Vec<super::Step>),
    /// Responders failed on a notice or a flush (by responder name).
    Errors(Vec<(String, ResponderError)>),
}

enum Job {
    Alert(Alert),
    Release(Release),
    Reapply(BlockRecord, BlockMode),
    Prune(Vec<std::net::IpAddr>),
    Flush,
}

enum NoticeJob {
    Ignored(Probe, IgnoreReason),
    AlreadyBlocked(Probe),
    Probe(Probe),
}

#[derive(Default)]
struct Queues {
    actions: VecDeque<Job>,
    notices: VecDeque<NoticeJob>,
    closed: bool,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    processed: AtomicU64,
    dropped_alerts: AtomicU64,
    dropped_releases: AtomicU64,
    dropped_notices: AtomicU64,
    // Drops not yet told to the responders.
    unreported_alerts: AtomicU64,
    unreported_releases: AtomicU64,
    unreported_notices: AtomicU64,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    counters: Counters,
    action_capacity: usize,
    notice_capacity: usize,
    /// Set when the worker has stopped (also when it panicked).
    finished: Mutex<bool>,
    finished_changed: Condvar,
}

impl Shared {
    fn mark_finished(&self) {
        *self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.finished_changed.notify_all();
    }

    fn wait_finished(&self) {
        let mut done = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*done {
            done = self
                .finished_changed
                .wait(done)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Waits at most `timeout` for the worker to stop; true if it did.
    fn wait_finished_for(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut done = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*done {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            done = self
                .finished_changed
                .wait_timeout(done, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        // The lock is never held while a responder runs, so poisoning cannot come from one;
        // recover the data anyway rather than panic.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs a [`Fanout`] on its own thread; see the [module docs](self).
pub struct Dispatcher {
    shared: Arc<Shared>,
    results: mpsc::Receiver<Report>,
    worker: Option<JoinHandle<Fanout>>,
    probe_events: ProbeEventLimit,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts the worker thread.
    ///
    /// # Errors
    ///
    /// The error of [`std::thread::Builder::spawn`] when no thread can be created.
    pub fn spawn(fanout: Fanout, config: DispatchConfig) -> io::Result<Self> {
        Self::start(fanout, config, None)
    }

    /// Starts a worker that takes jobs at once but runs them only after `previous` has
    /// stopped (once it is closed, when its queued jobs are done), so the responders of the
    /// two never run at the same time (they may edit the same files). For a reload: the
    /// caller never waits for the old responders.
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::spawn`].
    pub fn spawn_after(
        fanout: Fanout,
        config: DispatchConfig,
        previous: &Self,
    ) -> io::Result<Self> {
        Self::start(fanout, config, Some(Arc::clone(&previous.shared)))
    }

    fn start(
        fanout: Fanout,
        config: DispatchConfig,
        previous: Option<Arc<Shared>>,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            counters: Counters::default(),
            action_capacity: config.action_capacity.max(1),
            notice_capacity: config.notice_capacity,
            finished: Mutex::new(false),
            finished_changed: Condvar::new(),
        });
        let (tx, results) = mpsc::channel();
        let worker_shared = Arc::clone(&shared);
        let resolver = config.resolver;
        let probe_events = ProbeEventLimit::new(config.probe_events_per_second);
        let worker = thread::Builder::new()
            .name("portsentry-respond".to_owned())
            .spawn(move || {
                // Marks the worker finished however it ends (a panic included), so that a
                // successor never waits forever.
                struct Finished<'a>(&'a Shared);
                impl Drop for Finished<'_> {
                    fn drop(&mut self) {
                        self.0.mark_finished();
                    }
                }
                let _finished = Finished(&worker_shared);
                if let Some(previous) = previous {
                    previous.wait_finished();
                }
                work(&worker_shared, fanout, resolver, &tx)
            })?;
        Ok(Self {
            shared,
            results,
            worker: Some(worker),
            probe_events,
        })
    }

    fn push_action(&self, job: Job, dropped: &AtomicU64, unreported: &AtomicU64) -> Submitted {
        let mut q = self.shared.lock();
        if q.closed || q.actions.len() >= self.shared.action_capacity {
            drop(q);
            dropped.fetch_add(1, Ordering::Relaxed);
            unreported.fetch_add(1, Ordering::Relaxed);
            return Submitted::Dropped;
        }
        q.actions.push_back(job);
        drop(q);
        self.shared.counters.queued.fetch_add(1, Ordering::Relaxed);
        self.shared.ready.notify_one();
        Submitted::Queued
    }

    fn push_notice(&self, job: NoticeJob) -> Submitted {
        let c = &self.shared.counters;
        let mut q = self.shared.lock();
        if q.closed || q.notices.len() >= self.shared.notice_capacity {
            drop(q);
            c.dropped_notices.fetch_add(1, Ordering::Relaxed);
            c.unreported_notices.fetch_add(1, Ordering::Relaxed);
            return Submitted::Dropped;
        }
        q.notices.push_back(job);
        drop(q);
        c.queued.fetch_add(1, Ordering::Relaxed);
        self.shared.ready.notify_one();
        Submitted::Queued
    }

    /// Queues an alert. Never blocks.
    ///
    /// [`Submitted::Dropped`] means the action queue was full: the alert reaches no
    /// responder, so treat it as a failed block (`record_block_failed`).
    pub fn submit_alert(&self, alert: Alert) -> Submitted {
        let c = &self.shared.counters;
        self.push_action(Job::Alert(alert), &c.dropped_alerts, &c.unreported_alerts)
    }

    /// Queues a release. Never blocks.
    pub fn submit_release(&self, release: Release) -> Submitted {
        let c = &self.shared.counters;
        self.push_action(
            Job::Release(release),
            &c.dropped_releases,
            &c.unreported_releases,
        )
    }

    /// Queues the re-application of `record` (wall-clock times) with `response` (see
    /// [`Fanout::handle_reapply`]). Never blocks. A dropped one is counted with releases
    /// (maintenance jobs); the next reconciliation tries again.
    pub fn submit_reapply(&self, record: BlockRecord, response: BlockMode) -> Submitted {
        let c = &self.shared.counters;
        self.push_action(
            Job::Reapply(record, response),
            &c.dropped_releases,
            &c.unreported_releases,
        )
    }

    /// Queues the removal of entries of every address not in `keep` (see
    /// [`Fanout::prune`]). Never blocks.
    pub fn submit_prune(&self, mut keep: Vec<std::net::IpAddr>) -> Submitted {
        keep.iter_mut().for_each(|a| *a = a.to_canonical());
        keep.sort_unstable();
        let c = &self.shared.counters;
        self.push_action(
            Job::Prune(keep),
            &c.dropped_releases,
            &c.unreported_releases,
        )
    }

    /// Queues whatever `event` needs: alerts and releases go to the action queue, ignored
    /// and already-blocked probes to the notice queue; the rest needs nothing. Never blocks.
    pub fn submit_event(&self, event: &Event) -> Submitted {
        match *event {
            Event::Alert(alert) => self.submit_alert(alert),
            Event::Released(release) => self.submit_release(release),
            Event::Ignored { probe, reason } => self.push_notice(NoticeJob::Ignored(probe, reason)),
            Event::AlreadyBlocked(probe) => self.push_notice(NoticeJob::AlreadyBlocked(probe)),
            Event::BelowTrigger { .. } => match self.probe_events.admit(event) {
                Some(probe) => self.push_notice(NoticeJob::Probe(probe)),
                None => Submitted::NotNeeded,
            },
            _ => Submitted::NotNeeded,
        }
    }

    /// Asks every responder to flush (reload, log rotation). Never blocks.
    pub fn request_flush(&self) -> Submitted {
        let c = &self.shared.counters;
        // A dropped flush is counted with releases: both are maintenance jobs.
        self.push_action(Job::Flush, &c.dropped_releases, &c.unreported_releases)
    }

    /// The next report, if one is ready. Never blocks.
    pub fn try_recv(&self) -> Option<Report> {
        self.results.try_recv().ok()
    }

    /// The next report, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Report> {
        self.results.recv_timeout(timeout).ok()
    }

    /// Every report ready now. Never blocks.
    pub fn drain(&self) -> Vec<Report> {
        self.results.try_iter().collect()
    }

    /// The counters.
    pub fn stats(&self) -> DispatchStats {
        let c = &self.shared.counters;
        DispatchStats {
            queued: c.queued.load(Ordering::Relaxed),
            processed: c.processed.load(Ordering::Relaxed),
            dropped_alerts: c.dropped_alerts.load(Ordering::Relaxed),
            dropped_releases: c.dropped_releases.load(Ordering::Relaxed),
            dropped_notices: c.dropped_notices.load(Ordering::Relaxed),
        }
    }

    /// Jobs waiting in the queues (action, notice).
    pub fn backlog(&self) -> (usize, usize) {
        let q = self.shared.lock();
        (q.actions.len(), q.notices.len())
    }

    /// Stops taking jobs, lets the worker finish every queued job, and returns the fan-out
    /// with the reports not yet received.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the worker thread (responder panics are caught and reported, so
    /// this only happens on a bug in the dispatcher itself).
    pub fn shutdown(mut self) -> (Fanout, Vec<Report>) {
        self.close();
        let fanout = match self.worker.take().map(JoinHandle::join) {
            Some(Ok(fanout)) => fanout,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Fanout::new(),
        };
        (fanout, self.results.try_iter().collect())
    }

    /// Stops taking jobs and waits at most `deadline` for the worker to finish the queued
    /// ones. Returns the reports received and whether the worker finished: when it did not,
    /// the jobs still queued are dropped without running (their blocks and releases stay
    /// pending in the caller's journal) and the job in progress is left to end on its own
    /// thread (not waited for).
    pub fn shutdown_within(self, deadline: Duration) -> (Vec<Report>, bool) {
        self.close();
        let finished = self.shared.wait_finished_for(deadline);
        if finished {
            let (_, reports) = self.shutdown();
            return (reports, true);
        }
        self.shared.lock().actions.clear();
        self.shared.lock().notices.clear();
        (self.results.try_iter().collect(), false)
    }

    /// Stops taking jobs; the worker goes on with the queued ones. Never blocks. Jobs
    /// submitted afterwards are [`Submitted::Dropped`].
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }

    /// True when the worker has stopped: after [`Dispatcher::close`] (or a shutdown), once
    /// every queued job is done. Its remaining reports are then ready, and
    /// [`Dispatcher::shutdown`] returns at once.
    pub fn is_finished(&self) -> bool {
        *self
            .shared
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Dispatcher {
    /// Closes the queues; the worker finishes queued jobs on its own (not waited for).
    fn drop(&mut self) {
        self.close();
    }
}

fn now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| Timestamp::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)))
        .unwrap_or(Timestamp::ZERO)
}

enum Next {
    Action(Job),
    Notice(NoticeJob),
}

fn next_job(shared: &Shared) -> Option<Next> {
    let mut q = shared.lock();
    loop {
        if let Some(job) = q.actions.pop_front() {
            return Some(Next::Action(job));
        }
        if let Some(job) = q.notices.pop_front() {
            return Some(Next::Notice(job));
        }
        if q.closed {
            return None;
        }
        q = shared
            .ready
            .wait(q)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

fn report_drops(shared: &Shared, fanout: &mut Fanout, tx: &mpsc::Sender<Report>) {
    let c = &shared.counters;
    let alerts = c.unreported_alerts.swap(0, Ordering::Relaxed);
    let releases = c.unreported_releases.swap(0, Ordering::Relaxed);
    let notices = c.unreported_notices.swap(0, Ordering::Relaxed);
    if alerts + releases + notices > 0 {
        let notice = Notice::Dropped {
            at: now(),
            alerts,
            releases,
            notices,
        };
        let errors = fanout.handle_notice(&notice);
        if !errors.is_empty() {
            let _ = tx.send(Report::Errors(errors));
        }
    }
}

fn work(
    shared: &Shared,
    mut fanout: Fanout,
    mut resolver: Option<Resolver>,
    tx: &mpsc::Sender<Report>,
) -> Fanout {
    while let Some(next) = next_job(shared) {
        report_drops(shared, &mut fanout, tx);
        let mut name_of = |ip| resolver.as_mut().and_then(|r| r.resolve(ip));
        let report = match next {
            Next::Action(Job::Alert(alert)) => {
                let name = name_of(alert.probe.source);
                Some(Report::Alert(fanout.handle_alert(&alert, name.as_deref())))
            }
            Next::Action(Job::Release(release)) => {
                let name = name_of(release.address);
                Some(Report::Release(
                    fanout.handle_release(&release, name.as_deref()),
                ))
            }
            Next::Action(Job::Reapply(record, response)) => Some(Report::Reapply(
                fanout.handle_reapply(&record, response, now()),
            )),
            Next::Action(Job::Prune(keep)) => {
                let (steps, errors) = fanout.prune(&keep);
                if !errors.is_empty() {
                    let _ = tx.send(Report::Errors(errors));
                }
                (!steps.is_empty()).then_some(Report::Pruned(steps))
            }
            Next::Action(Job::Flush) => {
                let errors = fanout.flush();
                (!errors.is_empty()).then_some(Report::Errors(errors))
            }
            Next::Notice(job) => {
                let errors = match job {
                    NoticeJob::Ignored(probe, reason) => {
                        let name = name_of(probe.source);
                        fanout.handle_notice(&Notice::Ignored {
                            probe: &probe,
                            reason,
                            host_name: name.as_deref(),
                        })
                    }
                    NoticeJob::AlreadyBlocked(probe) => {
                        let name = name_of(probe.source);
                        fanout.handle_notice(&Notice::AlreadyBlocked {
                            probe: &probe,
                            host_name: name.as_deref(),
                        })
                    }
                    NoticeJob::Probe(probe) => {
                        fanout.handle_notice(&Notice::Probe { probe: &probe })
                    }
                };
                (!errors.is_empty()).then_some(Report::Errors(errors))
            }
        };
        shared.counters.processed.fetch_add(1, Ordering::Relaxed);
        if let Some(report) = report {
            // The receiver is gone only when the Dispatcher was dropped; keep working.
            let _ = tx.send(report);
        }
    }
    report_drops(shared, &mut fanout, tx);
    fanout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BlockMode;
    use crate::mode::Mode;
    use crate::probe::ScanKind;
    use crate::respond::log::{LogResponder, LogStyle};
    use crate::respond::test_support::{alert, probe};
    use crate::respond::{AlertContext, BlockStatus, Outcome, from_fn};
    use std::io::Write;

    /// A `Write` into a shared buffer, to read what a log responder wrote.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_responder_does_not_block_submission_and_overflow_is_counted() {
        let (started_tx, started_rx) = mpsc::channel::<u16>();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        // Blocks on the first alert for up to 10 s: a stuck firewall command.
        let slow = from_fn("slow", move |ctx: &AlertContext<'_>| {
            let port = ctx.alert.probe.destination_port;
            started_tx.send(port).unwrap();
            if port == 1 {
                let _ = gate_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10));
            }
            Ok(Outcome::Acted(vec![]))
        })
        .blocking();
        let log = Shared::default();
        let fanout = Fanout::new()
            .with(slow)
            .with(LogResponder::new(log.clone(), LogStyle::Classic));
        let d = Dispatcher::spawn(
            fanout,
            DispatchConfig {
                action_capacity: 2,
                notice_capacity: 1,
                ..DispatchConfig::default()
            },
        )
        .unwrap();
        let a = |port| alert("203.0.113.1", port, Mode::StealthTcp, BlockMode::Block);

        assert_eq!(d.submit_alert(a(1)), Submitted::Queued);
        // The worker is now inside the slow responder.
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);

        // The next probes are accepted while the first is still being handled.
        assert_eq!(d.submit_alert(a(2)), Submitted::Queued);
        assert_eq!(d.submit_alert(a(3)), Submitted::Queued);
        assert_eq!(
            started_rx.try_recv(),
            Err(mpsc::TryRecvError::Empty),
            "the first alert must still be in progress"
        );
        // The action queue (2) is full: the 4th alert is dropped, and the caller knows.
        assert_eq!(d.submit_alert(a(4)), Submitted::Dropped);
        // Notices have their own queue: a notice flood cannot push out alerts.
        let p = probe("203.0.113.2", 11, ScanKind::Syn);
        assert_eq!(d.submit_event(&Event::AlreadyBlocked(p)), Submitted::Queued);
        assert_eq!(
            d.submit_event(&Event::AlreadyBlocked(p)),
            Submitted::Dropped
        );
        assert_eq!(d.backlog(), (2, 1));
        let stats = d.stats();
        assert_eq!(
            (stats.queued, stats.dropped_alerts, stats.dropped_notices),
            (4, 1, 1)
        );

        gate_tx.send(()).unwrap();
        let mut ports = Vec::new();
        while ports.len() < 3 {
            match d.recv_timeout(Duration::from_secs(10)) {
                Some(Report::Alert(r)) => {
                    assert_eq!(r.block, BlockStatus::Blocked);
                    ports.push(r.alert.probe.destination_port);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(ports, [1, 2, 3]);
        let (_fanout, rest) = d.shutdown();
        assert!(rest.is_empty(), "{rest:?}");
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("adminalert: ERROR: response queue full: dropped 1 alert(s), 0 release(s), 1 notice(s)"),
            "{text}"
        );
        assert!(text.contains("is already blocked Ignoring"), "{text}");
        // Actions before notices: every alert line precedes the notice line.
        let notice_at = text.find("already blocked").unwrap();
        assert!(text.rfind("to TCP port: 3").unwrap() < notice_at, "{text}");
    }

    #[test]
    fn shutdown_within_a_deadline_leaves_queued_jobs_unrun() {
        let (started_tx, started_rx) = mpsc::channel::<u16>();
        let slow = from_fn("slow", move |ctx: &AlertContext<'_>| {
            started_tx.send(ctx.alert.probe.destination_port).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            Ok(Outcome::Acted(vec![]))
        })
        .blocking();
        let d = Dispatcher::spawn(Fanout::new().with(slow), DispatchConfig::default()).unwrap();
        for port in 1..=5 {
            let a = alert("203.0.113.1", port, Mode::StealthTcp, BlockMode::Block);
            assert_eq!(d.submit_alert(a), Submitted::Queued);
        }
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        let begun = std::time::Instant::now();
        let (reports, finished) = d.shutdown_within(Duration::from_millis(200));
        assert!(!finished);
        assert!(
            begun.elapsed() < Duration::from_secs(1),
            "{:?}",
            begun.elapsed()
        );
        assert!(reports.is_empty(), "{reports:?}");
        // The job in progress ends on its own; the four queued ones never start.
        std::thread::sleep(Duration::from_millis(1700));
        assert_eq!(started_rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    }

    #[test]
    fn shutdown_finishes_queued_jobs_and_resolves_names() {
        let fanout = Fanout::new().with(from_fn("ok", |ctx: &AlertContext<'_>| {
            assert_eq!(ctx.host_name, Some("scanner.example"));
            Ok(Outcome::Reported)
        }));
        let resolver = Resolver::with_lookup(Duration::from_secs(5), |_| {
            Some("scanner.example".to_owned())
        });
        let d = Dispatcher::spawn(
            fanout,
            DispatchConfig {
                resolver: Some(resolver),
                ..DispatchConfig::default()
            },
        )
        .unwrap();
        for port in 1..=5 {
            let alert = alert("203.0.113.1", port, Mode::StealthTcp, BlockMode::LogOnly);
            assert_eq!(d.submit_event(&Event::Alert(alert)), Submitted::Queued);
        }
        let below = Event::BelowTrigger {
            probe: probe("203.0.113.1", 1, ScanKind::Syn),
            distinct_ports: 1,
            trigger: 3,
        };
        assert_eq!(d.submit_event(&below), Submitted::NotNeeded);
        let (fanout, reports) = d.shutdown();
        assert_eq!(fanout.len(), 1);
        assert_eq!(reports.len(), 5);
        for r in reports {
            let Report::Alert(r) = r else { panic!() };
            assert_eq!(r.block, BlockStatus::NotRequested);
            assert_eq!(r.host_name.as_deref(), Some("scanner.example"));
            assert!(r.responders[0].result.is_ok());
        }
    }

    #[test]
    fn probe_events_become_probe_lines_within_their_limit() {
        let log = Shared::default();
        let fanout = Fanout::new().with(LogResponder::new(log.clone(), LogStyle::Classic));
        let config = DispatchConfig {
            probe_events_per_second: 1,
            ..DispatchConfig::default()
        };
        let d = Dispatcher::spawn(fanout, config).unwrap();
        let below = |source: &str, distinct_ports| Event::BelowTrigger {
            probe: probe(source, 22, ScanKind::Syn),
            distinct_ports,
            trigger: 3,
        };
        assert_eq!(d.submit_event(&below("192.0.2.7", 1)), Submitted::Queued);
        // Same second of probe time: over the limit of one.
        assert_eq!(d.submit_event(&below("192.0.2.8", 1)), Submitted::NotNeeded);
        // Not a source's first port.
        assert_eq!(d.submit_event(&below("192.0.2.9", 2)), Submitted::NotNeeded);
        d.shutdown();
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "probe: TCP syn from host: 192.0.2.7 to TCP port: 22\n"
        );
        let off = Dispatcher::spawn(Fanout::new(), DispatchConfig::default()).unwrap();
        assert_eq!(
            off.submit_event(&below("192.0.2.7", 1)),
            Submitted::NotNeeded
        );
    }
}
