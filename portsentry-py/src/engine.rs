//! The Rust side of the detector as the binding drives it: building a [`Detector`] from a
//! configuration (its ignore list included) and one detection step. Replays use the library's
//! own `portsentry_core::replay` (see `crate::replay`).
//!
//! No Python here: these functions run with the interpreter released.

use portsentry_core::block_outcome::{self, Settled};
use portsentry_core::config::Config;
use portsentry_core::detector::DetectorError;
use portsentry_core::ignore::IgnoreError;
use portsentry_core::respond::BlockStatus;
use portsentry_core::tracker::TrackerError;
use portsentry_core::{
    Alert, BlockMode, Detector, Event, IgnoreList, Mode, NeverBlock, Probe, Timestamp,
};

use crate::vocab::Message;

/// The never-block list of a detector: loopback, the configuration's `IGNORE_FILE` (read
/// now), and the `ignore=` entries given from Python.
///
/// # Errors
///
/// Every problem of the ignore file and of the entries.
pub(crate) fn never_block(config: &Config, ignore: &[String]) -> Result<NeverBlock, Vec<Message>> {
    let list = ignore_list(config, ignore)?;
    Ok(NeverBlock::new().ignore_list(list.networks()))
}

/// The ignore list: the configuration's `IGNORE_FILE` (read now) and the `ignore=` entries.
///
/// # Errors
///
/// Every problem of the ignore file and of the entries.
pub(crate) fn ignore_list(config: &Config, ignore: &[String]) -> Result<IgnoreList, Vec<Message>> {
    let mut problems = Vec::new();
    let mut networks = Vec::new();
    if let Some(path) = &config.ignore_file {
        match IgnoreList::load(path) {
            Ok(loaded) => networks.extend(loaded.networks()),
            Err(err) => problems.extend(ignore_problems(&err, None)),
        }
    }
    match address_list("ignore", ignore) {
        Ok(given) => networks.extend(given.networks()),
        Err(more) => problems.extend(more),
    }
    if problems.is_empty() {
        Ok(networks.into_iter().collect())
    } else {
        Err(problems)
    }
}

/// Parses the addresses and networks given in the keyword argument `key` (one per entry).
///
/// # Errors
///
/// Every invalid entry, numbered from 1.
pub(crate) fn address_list(key: &str, entries: &[String]) -> Result<IgnoreList, Vec<Message>> {
    if entries.is_empty() {
        return Ok(IgnoreList::new());
    }
    IgnoreList::parse(&entries.join("\n"), key).map_err(|err| ignore_problems(&err, Some(key)))
}

/// The messages of an ignore-list error; `argument` names the keyword argument the entries
/// came from (their "lines" are then entry numbers).
pub(crate) fn ignore_problems(err: &IgnoreError, argument: Option<&str>) -> Vec<Message> {
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
        .map_err(|err| detector_problem(&err))
}

/// Why a detector could not be built, located at the setting (or argument) that causes it.
pub(crate) fn detector_problem(err: &DetectorError) -> Message {
    let key = match err {
        DetectorError::NoModes => "modes",
        DetectorError::Tracker(TrackerError::Capacity { .. }) => "max_tracked_sources",
        DetectorError::Tracker(TrackerError::ZeroWindow) => "scan_window",
        DetectorError::Tracker(TrackerError::TriggerTooLarge { .. }) => "scan_trigger",
        _ => "config",
    };
    Message::argument(key, err.to_string())
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

/// Records the outcome of an alert's responders through the library's one block path
/// ([`portsentry_core::block_outcome::settle_alert`]): a block that was asked for is recorded
/// when every responder succeeded, and reported as failed otherwise.
pub(crate) fn record_outcome(detector: &mut Detector, alert: &Alert, succeeded: bool) {
    let status = match (alert.response, succeeded) {
        (BlockMode::LogOnly, _) => BlockStatus::NotRequested,
        (_, true) => BlockStatus::Blocked,
        (_, false) => BlockStatus::Failed,
    };
    // A block of an address protected meanwhile is refused there; the Python responders
    // got the alert only, so there is nothing of theirs to undo: forget the release.
    if let Settled::Undo { release, .. } =
        block_outcome::settle_alert(detector, alert, status, alert.probe.at)
    {
        block_outcome::settle_release(detector, &release);
    }
}
