//! Where probes come from in a live engine: the `AF_PACKET` capture (stealth and advanced
//! modes) and the connect-mode listening sockets (`tcp`, `udp`).

use crate::capture::{Capture, CaptureError, CaptureOptions};
use crate::config::Config;
use crate::connect::{BindFailure, ConnectListener};
use crate::mode::Mode;
use crate::ports::PortSet;
use crate::probe::Protocol;

use super::EngineError;

/// The opened probe sources of an [`Engine`](super::Engine).
///
/// Opening them creates sockets only (no thread), so a daemon can open them, report errors
/// on the terminal, and only then fork into the background.
///
/// # Examples
///
/// ```no_run
/// use portsentry_core::engine::Sources;
/// use portsentry_core::{Config, Mode};
///
/// let sources = Sources::open(&[Mode::StealthTcp], &Config::default(), None)?;
/// assert!(sources.has_capture());
/// # Ok::<(), portsentry_core::engine::EngineError>(())
/// ```
#[derive(Debug)]
pub struct Sources {
    pub(super) capture: Option<Capture>,
    pub(super) connect: Option<ConnectListener>,
    pub(super) bind_failures: Vec<BindFailure>,
    pub(super) interface: Option<String>,
    pub(super) modes: Vec<Mode>,
}

impl Sources {
    /// Opens what `modes` need: a capture (on `interface`, or all interfaces) for the stealth
    /// and advanced modes, listening sockets on `TCP_PORTS`/`UDP_PORTS` for the connect modes.
    /// Ports that cannot be bound are kept in [`Sources::bind_failures`] and skipped.
    ///
    /// # Errors
    ///
    /// [`EngineError::NoModes`] without a mode; [`EngineError::Capture`] when the capture
    /// cannot be opened (notably [`CaptureError::NeedsCapNetRaw`]);
    /// [`EngineError::NothingBound`] when connect modes are the only ones and no port could be
    /// bound.
    pub fn open(
        modes: &[Mode],
        config: &Config,
        interface: Option<&str>,
    ) -> Result<Self, EngineError> {
        if modes.is_empty() {
            return Err(EngineError::NoModes);
        }
        let mut modes = modes.to_vec();
        modes.sort_unstable();
        modes.dedup();
        let capture = if modes.iter().any(|m| !m.is_connect()) {
            Some(open_capture(interface, config.detect_ack_scans)?)
        } else {
            None
        };
        let mut sources = Self {
            capture,
            connect: None,
            bind_failures: Vec::new(),
            interface: interface.map(str::to_owned),
            modes,
        };
        sources.bind_connect(config);
        if sources.capture.is_none() && sources.connect.as_ref().is_none_or(|l| l.is_empty()) {
            return Err(EngineError::NothingBound {
                failures: sources
                    .bind_failures
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        Ok(sources)
    }

    /// True when an `AF_PACKET` capture is open (a stealth or advanced mode is active).
    pub fn has_capture(&self) -> bool {
        self.capture.is_some()
    }

    /// The ports of `protocol` bound in connect mode.
    pub fn bound_ports(&self, protocol: Protocol) -> PortSet {
        self.connect
            .as_ref()
            .map(|l| l.ports(protocol))
            .unwrap_or_default()
    }

    /// The ports that could not be bound in connect mode, and why.
    pub fn bind_failures(&self) -> &[BindFailure] {
        &self.bind_failures
    }

    /// The active modes, sorted, without duplicates.
    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }

    /// The ports the connect modes should listen on, per the configuration.
    fn wanted(&self, config: &Config) -> (PortSet, PortSet) {
        let tcp = if self.modes.contains(&Mode::Tcp) {
            config.tcp_ports.clone()
        } else {
            PortSet::new()
        };
        let udp = if self.modes.contains(&Mode::Udp) {
            config.udp_ports.clone()
        } else {
            PortSet::new()
        };
        (tcp, udp)
    }

    /// (Re)binds the connect-mode sockets for `config` (the old ones are closed first, so the
    /// same ports can be bound again). Returns false when nothing changed.
    pub(super) fn bind_connect(&mut self, config: &Config) -> bool {
        let (tcp, udp) = self.wanted(config);
        if tcp.is_empty() && udp.is_empty() {
            let had = self.connect.take().is_some();
            self.bind_failures.clear();
            return had;
        }
        if let Some(current) = &self.connect {
            let same = self.bind_failures.iter().fold(
                (current.ports(Protocol::Tcp), current.ports(Protocol::Udp)),
                |mut acc, f| {
                    match f.protocol {
                        Protocol::Tcp => acc.0.insert(f.port),
                        Protocol::Udp => acc.1.insert(f.port),
                    };
                    acc
                },
            );
            if same.0 == tcp && same.1 == udp {
                return false;
            }
        }
        self.connect = None;
        let (listener, failures) = ConnectListener::bind(&tcp, &udp);
        self.connect = Some(listener);
        self.bind_failures = failures;
        true
    }

    /// Reopens the capture when the filter must change (`DETECT_ACK_SCANS` switched).
    pub(super) fn refilter(&mut self, ack_family: bool) -> Result<bool, CaptureError> {
        let Some(capture) = &self.capture else {
            return Ok(false);
        };
        let wanted = CaptureOptions::new()
            .ack_family(ack_family)
            .filter_variant();
        if capture.filter_variant() == wanted {
            return Ok(false);
        }
        let new = open_capture(self.interface.as_deref(), ack_family)?;
        self.capture = Some(new);
        Ok(true)
    }
}

fn open_capture(interface: Option<&str>, ack_family: bool) -> Result<Capture, CaptureError> {
    let mut options = CaptureOptions::new().ack_family(ack_family);
    if let Some(name) = interface {
        options = options.interface(name);
    }
    Capture::open(&options)
}
