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
//!
//! Nothing in this crate reads the clock on the detection path: time arrives with each
//! frame, so replaying a capture gives the same results every time.
//!
//! Minimum supported Rust version: 1.95.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod probe;

pub use probe::{Probe, Protocol, ScanKind, TcpFlags, Timestamp};

/// The version of this crate, as Cargo knows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod config;
pub mod ports;

pub use config::{BlockMode, Config, HistoryFormat};
pub use ports::PortSet;
pub mod event;
pub mod mode;

pub use event::{Alert, Event, IgnoreReason, Release};
pub use mode::Mode;
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
