//! The Rust side of the detector as the binding drives it: building a [`Detector`] from a
//! configuration, one detection step, and the replay loop over a capture file.
//!
//! No Python here: these functions run with the interpreter released.

use std::path::Path;

use portsentry_core::config::Config;
use portsentry_core::detector::DetectorError;
use portsentry_core::ignore::IgnoreError;
use portsentry_core::source::pcap::{CaptureError, CaptureFile};
use portsentry_core::tracker::TrackerError;
use portsentry_core::{
    Alert, BlockMode, Detector, Event, IgnoreList, Mode, NeverBlock, Probe, Timestamp, classify,
};

use crate::vocab::Message;

/// The never-block list of a detector: loopback, the configuration's `IGNORE_FILE` (read
/// now), and the `ignore=` entries given from Python.
///
/// # Errors
///
/// Every problem of the ignore file and of the entries.
pub(crate) fn never_block(config: &Config, ignore: &[String]) -> Result<NeverBlock, Vec<Message>> {
    let mut problems = Vec::new();
    let mut networks = Vec::new();
    if let Some(path) = &config.ignore_file {
        match IgnoreList::load(path) {
            Ok(list) => networks.extend(list.networks()),
            Err(err) => problems.extend(ignore_problems(&err, None)),
        }
    }
    if !ignore.is_empty() {
        match IgnoreList::parse(&ignore.join("\n"), "ignore") {
            Ok(list) => networks.extend(list.networks()),
            Err(err) => problems.extend(ignore_problems(&err, Some("ignore"))),
        }
    }
    if problems.is_empty() {
        Ok(NeverBlock::new().ignore_list(networks))
    } else {
        Err(problems)
    }
}

/// The messages of an ignore-list error; `argument` names the keyword argument the entries
/// came from (their "lines" are then entry numbers).
fn ignore_problems(err: &IgnoreError, argument: Option<&str>) -> Vec<Message> {
    match (err, argument) {
        (IgnoreError::Invalid { problems, .. }, Some(key)) => problems
            .iter()
            .map(|p| {
                let entry = p.line.map(|n| format!("entry {n}: ")).unwrap_or_default();
                Message::argument(key, format!("{entry}{}", p.kind))
            })
            .collect(),
        (IgnoreError::Invalid { problems, .. }, None) => {
            problems.iter().map(Message::from).collect()
        }
        (other, _) => vec![Message {
            file: None,
            line: None,
            key: Some("IGNORE_FILE".to_owned()),
            message: other.to_string(),
        }],
    }
}

/// Builds a detector for `modes`.
///
/// # Errors
///
/// The problem, located at the setting that causes it.
pub(crate) fn build(
    config: &Config,
    modes: &[Mode],
    never_block: NeverBlock,
) -> Result<Detector, Message> {
    Detector::builder(config)
        .modes(modes.iter().copied())
        .never_block(never_block)
        .build()
        .map_err(|err| {
            let key = match &err {
                DetectorError::NoModes => "modes",
                DetectorError::Tracker(TrackerError::Capacity { .. }) => "max_tracked_sources",
                DetectorError::Tracker(TrackerError::ZeroWindow) => "scan_window",
                DetectorError::Tracker(TrackerError::TriggerTooLarge { .. }) => "scan_trigger",
                _ => "config",
            };
            Message::argument(key, err.to_string())
        })
}

/// One turn of a detection loop at time `at`: release the blocks that expired by then, then
/// decide about `probe` (if the frame was one). Events are appended to `events`.
pub(crate) fn step(
    detector: &mut Detector,
    at: Timestamp,
    probe: Option<&Probe>,
    events: &mut Vec<Event>,
) {
    events.extend(detector.expire(at).map(Event::Released));
    if let Some(probe) = probe {
        events.push(detector.observe(probe));
    }
}

/// Records the outcome of an alert's responders: a block that was asked for is recorded when
/// every responder succeeded, and reported as failed otherwise.
pub(crate) fn record_outcome(detector: &mut Detector, alert: &Alert, succeeded: bool) {
    if alert.response == BlockMode::LogOnly {
        return;
    }
    if succeeded {
        // Refused only for a never-block address, which the detector then records as failed.
        detector.record_block(alert, alert.probe.at).ok();
    } else {
        detector.record_block_failed(alert.probe.source);
    }
}

/// A replay that stopped at an unreadable record, with the events found before it.
#[derive(Debug)]
pub(crate) enum ReplayError {
    /// The detector could not be built.
    Setup(Message),
    /// The capture could not be opened or read further.
    Capture {
        error: CaptureError,
        events: Vec<Event>,
    },
}

/// Replays a capture file: every frame is classified and observed at its capture time, with
/// expired blocks released on the way. No responder runs, so a block that an alert asks for
/// counts as made at the alert's time.
///
/// This is the whole replay loop of the binding, kept in one function so that it can be
/// swapped for the library's own replay.
///
/// # Errors
///
/// [`ReplayError::Setup`] if the detector cannot be built; [`ReplayError::Capture`] if the file
/// cannot be opened or a record cannot be read (with the events before it).
pub(crate) fn replay_capture(
    path: &Path,
    config: &Config,
    modes: &[Mode],
    never_block: NeverBlock,
) -> Result<Vec<Event>, ReplayError> {
    let mut detector = build(config, modes, never_block).map_err(ReplayError::Setup)?;
    let mut capture = CaptureFile::open(path).map_err(|error| ReplayError::Capture {
        error,
        events: Vec::new(),
    })?;
    let mut events = Vec::new();
    while let Some(frame) = capture.next_frame() {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => return Err(ReplayError::Capture { error, events }),
        };
        let probe = classify(frame.at, frame.link, frame.data).ok();
        let first_new = events.len();
        step(&mut detector, frame.at, probe.as_ref(), &mut events);
        for event in &events[first_new..] {
            if let Event::Alert(alert) = event {
                record_outcome(&mut detector, alert, true);
            }
        }
    }
    Ok(events)
}
