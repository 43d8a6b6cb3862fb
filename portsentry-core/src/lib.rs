//! Port-scan detection as a library.
//!
//! Layers, bottom to top (each usable on its own):
//!
//! * [`probe`]: the vocabulary: [`Timestamp`], [`Probe`], [`ScanKind`], [`TcpFlags`].
//! * [`classify`](mod@classify): turn one captured frame into a [`Probe`] or a counted [`Skip`]
//!   (no allocation, no panic).
//! * [`config`]: `portsentry.conf` in both PortSentry dialects, parsed and validated.
//! * [`ports`]: [`PortSet`], a 65 536-bit set parsed from `"1,7,512-515"`.
//! * [`ignore`]: the never-block list (`portsentry.ignore`).
//! * [`permissions`]: are the config and ignore files writable by anyone but root?
//! * [`located`]: problems with `file:line: KEY:` positions, shared by the file parsers.
//!
//! Nothing in this crate reads the clock on the detection path: time arrives with each
//! frame, so replaying a capture gives the same results every time.
//!
//! Minimum supported Rust version: 1.95.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod classify;
pub mod probe;
pub mod source;

pub use probe::{Probe, Protocol, ScanKind, TcpFlags, Timestamp};

/// The version of this crate, as Cargo knows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod config;
pub mod ignore;
pub mod located;
pub mod permissions;
pub mod ports;

pub use config::{BlockMode, Config, HistoryFormat};
pub use ports::PortSet;
pub mod event;
pub mod mode;

pub use event::{Alert, Event, IgnoreReason, Release};
pub use mode::Mode;
#[cfg(all(feature = "capture", target_os = "linux"))]
pub mod capture;
#[cfg(all(feature = "capture", target_os = "linux"))]
pub mod connect;
pub mod host;
#[cfg(feature = "procfs")]
pub mod listening;
pub mod respond;

pub use respond::dispatch::{DispatchConfig, Dispatcher, Report, Submitted};
pub use respond::{
    Actions, AlertContext, AlertReport, BlockStatus, Fanout, HistoryResponder, LogResponder,
    LogStyle, NftSet, Outcome, ReleaseContext, ReleaseReport, Responder, ResponderError, Role,
};

pub use ignore::IgnoreList;

pub use classify::{LinkType, Skip, SkipCounts, classify};
pub mod block_table;
pub mod detector;
pub mod hash;
pub mod never_block;
pub mod tracker;

pub use block_table::{
    BlockFileError, BlockLineError, BlockRecord, BlockStats, BlockTable, format_records,
    parse_records,
};
pub use detector::{
    BlockError, Detector, DetectorBuilder, DetectorError, DetectorStats, RestoreSummary,
};
pub use hash::HashSeed;
pub use never_block::NeverBlock;
pub use tracker::{Observation, SourceState, Tracker, TrackerError, TrackerStats};
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
pub mod engine;
