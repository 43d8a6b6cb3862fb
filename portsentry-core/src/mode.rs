//! The six PortSentry detection modes.

use std::fmt;

use crate::probe::Protocol;

/// A detection mode, as PortSentry 1.2 named them (`-tcp`, `-stcp`, ...).
///
/// This is also the value of the `$MODE$` token in command templates.
///
/// # Examples
///
/// ```
/// use portsentry_core::{Mode, Protocol};
/// let m: Mode = "stcp".parse().unwrap();
/// assert_eq!(m, Mode::StealthTcp);
/// assert_eq!(m.protocol(), Protocol::Tcp);
/// assert_eq!(m.to_string(), "stcp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// `tcp`: connect mode, a listening socket per port; a completed handshake alarms.
    Tcp,
    /// `udp`: connect mode for UDP, a bound socket per port; any datagram alarms.
    Udp,
    /// `stcp`: stealth TCP, packet capture of the listed ports.
    StealthTcp,
    /// `sudp`: stealth UDP, packet capture of the listed ports.
    StealthUdp,
    /// `atcp`: advanced stealth TCP, every port below a bound minus excludes and listeners.
    AdvancedTcp,
    /// `audp`: advanced stealth UDP.
    AdvancedUdp,
}

impl Mode {
    /// All six modes, in PortSentry's order.
    pub const ALL: [Self; 6] = [
        Self::Tcp,
        Self::Udp,
        Self::StealthTcp,
        Self::StealthUdp,
        Self::AdvancedTcp,
        Self::AdvancedUdp,
    ];

    /// The short name: `tcp`, `udp`, `stcp`, `sudp`, `atcp` or `audp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::StealthTcp => "stcp",
            Self::StealthUdp => "sudp",
            Self::AdvancedTcp => "atcp",
            Self::AdvancedUdp => "audp",
        }
    }

    /// The transport protocol this mode watches.
    pub const fn protocol(self) -> Protocol {
        match self {
            Self::Tcp | Self::StealthTcp | Self::AdvancedTcp => Protocol::Tcp,
            Self::Udp | Self::StealthUdp | Self::AdvancedUdp => Protocol::Udp,
        }
    }

    /// True for the connect modes (`tcp`, `udp`), which own their sockets.
    pub const fn is_connect(self) -> bool {
        matches!(self, Self::Tcp | Self::Udp)
    }

    /// True for the advanced modes (`atcp`, `audp`).
    pub const fn is_advanced(self) -> bool {
        matches!(self, Self::AdvancedTcp | Self::AdvancedUdp)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not one of the six mode names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}`: expected one of tcp, udp, stcp, sudp, atcp, audp")]
pub struct UnknownMode(pub String);

impl std::str::FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.strip_prefix('-').unwrap_or(s);
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}
