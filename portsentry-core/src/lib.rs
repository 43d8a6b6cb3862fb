//! Port-scan detection as a library: the core of the `portsentry` daemon and Python package.
//!
//! Layers, bottom to top (each usable on its own):
//!
//! * [`probe`]: the vocabulary: [`Timestamp`], [`Probe`], [`ScanKind`], [`TcpFlags`], and
//!   [`mode`]'s six PortSentry [`Mode`]s.
//! * [`classify`](mod@classify): turn one captured frame into a [`Probe`] or a counted [`Skip`]
//!   (no allocation, no panic, for any input).
//! * [`config`]: `portsentry.conf` in both PortSentry dialects, parsed and validated; [`ports`]
//!   ([`PortSet`]), [`ignore`] (the ignore file), [`permissions`] (StrictModes-like checks),
//!   [`located`] (`file:line: KEY:` positions).
//! * [`tracker`] and [`detector`]: a memory-bounded count of distinct ports per source inside
//!   a window, and the [`Detector`] that turns each probe into an [`Event`] (ignored, below
//!   trigger, alert, already blocked, released); [`never_block`] and [`block_table`] hold who
//!   is protected and who is blocked.
//! * [`respond`]: what to do about alerts and releases: the [`Responder`] trait, PortSentry's
//!   actions (`KILL_ROUTE`, `KILL_HOSTS_DENY`, `KILL_RUN_CMD`), log lines, the history file,
//!   nftables, and a [`Dispatcher`] that runs them off the detection thread.
//! * [`source`] and [`replay`]: pcap/pcapng files, and the offline replay that feeds them
//!   through the same path as live capture.
//! * Live input on Linux: [`capture`] (AF_PACKET with a BPF filter; the only module with
//!   `unsafe` code), [`connect`] (connect-mode listeners), [`listening`] (ports with a
//!   listener), [`host`] (own addresses, gateways, resolvers).
//!
//! Nothing on the detection path reads the clock: time arrives with each frame, so replaying a
//! capture gives the same results every time.
//!
//! # Example
//!
//! Classify frames and let a detector decide (here a hand-built SYN to a monitored port):
//!
//! ```
//! use portsentry_core::{classify, Config, Detector, Event, LinkType, Mode, Timestamp};
//!
//! let config = Config::default(); // the embedded default: classic port lists, log only
//! let mut detector = Detector::builder(&config)
//!     .modes([Mode::StealthTcp, Mode::StealthUdp])
//!     .build()?;
//!
//! // An Ethernet/IPv4 SYN from 203.0.113.1 to port 31337 (in the classic TCP list).
//! let mut frame = Vec::new();
//! etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
//!     .ipv4([203, 0, 113, 1], [203, 0, 113, 2], 64)
//!     .tcp(40000, 31337, 1, 1024)
//!     .syn()
//!     .write(&mut frame, &[])?;
//!
//! let probe = classify(Timestamp::from_secs(1), LinkType::Ethernet, &frame)
//!     .expect("a SYN is a probe");
//! match detector.observe(&probe) {
//!     Event::Alert(alert) => assert_eq!(alert.probe.source.to_string(), "203.0.113.1"),
//!     other => panic!("expected an alert, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! * `pcap` (default): [`source::pcap`] and [`replay`].
//! * `capture` (default, Linux): [`capture`] and [`connect`].
//! * `procfs` (default): [`listening`].
//!
//! Minimum supported Rust version: 1.95.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod classify;
pub mod probe;
pub mod probe_counts;
pub mod source;

pub use probe::{Probe, Protocol, ScanKind, TcpFlags, Timestamp};

/// The version of this crate, as Cargo knows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod banner_gate;
pub mod config;
pub mod control;
#[doc(hidden)]
pub mod fuzzing;
pub mod ignore;
pub mod located;
mod net_table;
pub mod permissions;
pub mod ports;
pub mod state_file;

pub use config::{BlockMode, Config, HistoryFormat};
pub use ports::PortSet;
pub mod event;
pub mod mode;

pub use event::{Alert, BlockLimit, Event, IgnoreReason, Release};
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
pub mod block_limits;
pub mod block_outcome;
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
pub mod flood;
#[cfg(feature = "pcap")]
pub mod replay;
