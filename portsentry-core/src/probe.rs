//! The vocabulary of detection: what one packet tells us, reduced to what matters.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A point in time, in microseconds since the Unix epoch.
///
/// Time is always supplied by the caller (capture timestamp, pcap record time),
/// never read from the clock by the library, so replays are deterministic.
///
/// # Examples
///
/// ```
/// use portsentry_core::Timestamp;
/// let t = Timestamp::from_secs(10);
/// assert_eq!(t.as_micros(), 10_000_000);
/// assert_eq!(t.saturating_duration_since(Timestamp::ZERO).as_secs(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const ZERO: Self = Self(0);

    /// A timestamp `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// A timestamp `secs` whole seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// A timestamp from seconds and a sub-second part in nanoseconds (as pcap records carry).
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Self {
        Self(
            secs.saturating_mul(1_000_000)
                .saturating_add(nanos as u64 / 1_000),
        )
    }

    /// A timestamp from fractional seconds. Negative, NaN and infinite values
    /// saturate (to zero or to the largest timestamp).
    pub fn from_secs_f64(secs: f64) -> Self {
        // `as` on f64 -> u64 saturates and maps NaN to 0, which is what we want.
        Self((secs * 1_000_000.0) as u64)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch, as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// This timestamp plus `d`, saturating at the largest timestamp.
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

/// The transport protocol of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `"tcp"` or `"udp"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    /// `"TCP"` or `"UDP"`, as PortSentry's log lines spell it.
    pub const fn as_upper_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The eight TCP flag bits, as carried in byte 13 of the TCP header.
///
/// # Examples
///
/// ```
/// use portsentry_core::TcpFlags;
/// let f = TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG;
/// assert!(f.contains(TcpFlags::FIN));
/// assert!(!f.contains(TcpFlags::ACK));
/// assert_eq!(f.to_string(), "FIN|PSH|URG");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// FIN: no more data from sender.
    pub const FIN: Self = Self(0x01);
    /// SYN: synchronise sequence numbers.
    pub const SYN: Self = Self(0x02);
    /// RST: reset the connection.
    pub const RST: Self = Self(0x04);
    /// PSH: push function.
    pub const PSH: Self = Self(0x08);
    /// ACK: acknowledgment field significant.
    pub const ACK: Self = Self(0x10);
    /// URG: urgent pointer field significant.
    pub const URG: Self = Self(0x20);
    /// ECE: ECN echo.
    pub const ECE: Self = Self(0x40);
    /// CWR: congestion window reduced.
    pub const CWR: Self = Self(0x80);

    const NAMES: [(Self, &'static str); 8] = [
        (Self::FIN, "FIN"),
        (Self::SYN, "SYN"),
        (Self::RST, "RST"),
        (Self::PSH, "PSH"),
        (Self::ACK, "ACK"),
        (Self::URG, "URG"),
        (Self::ECE, "ECE"),
        (Self::CWR, "CWR"),
    ];

    /// The raw flag byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any flag of `other` is set in `self`.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// What kind of probe a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScanKind {
    /// SYN only (nmap -sS; also the SYN of a full connect seen by a stealth sensor).
    Syn,
    /// FIN only (nmap -sF).
    Fin,
    /// No flags at all (nmap -sN).
    Null,
    /// FIN+PSH+URG (nmap -sX).
    Xmas,
    /// FIN+ACK (nmap -sM).
    Maimon,
    /// A bare ACK (nmap -sA, -sW).
    Ack,
    /// Any other flag combination without ACK and RST, e.g. SYN+FIN.
    Other(TcpFlags),
    /// A first IP fragment too short to carry the TCP flags (RFC 1858; nmap -f).
    Fragment,
    /// A UDP datagram.
    Udp,
    /// A completed TCP handshake on a connect-mode listener.
    Connect,
}

impl ScanKind {
    /// A short stable lowercase name: `syn`, `fin`, `null`, `xmas`, `maimon`, `ack`,
    /// `other`, `fragment`, `udp`, `connect`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Syn => "syn",
            Self::Fin => "fin",
            Self::Null => "null",
            Self::Xmas => "xmas",
            Self::Maimon => "maimon",
            Self::Ack => "ack",
            Self::Other(_) => "other",
            Self::Fragment => "fragment",
            Self::Udp => "udp",
            Self::Connect => "connect",
        }
    }

    /// True for the ACK family (`ack`, `maimon`), which only counts when enabled.
    pub const fn is_ack_family(self) -> bool {
        matches!(self, Self::Ack | Self::Maimon)
    }
}

impl fmt::Display for ScanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(flags) => write!(f, "other({flags})"),
            kind => f.write_str(kind.as_str()),
        }
    }
}

/// What one packet tells the detector. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Probe {
    /// When the packet was captured.
    pub at: Timestamp,
    /// The sender (the suspected scanner).
    pub source: IpAddr,
    /// The address the packet was sent to (this host).
    pub destination: IpAddr,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The sender's port (a `fragment` probe always carries both ports: a first fragment
    /// without them is skipped).
    pub source_port: u16,
    /// The probed port.
    pub destination_port: u16,
    /// What kind of probe it is.
    pub kind: ScanKind,
    /// True when the IPv4 header carried options (IHL > 5); always false for IPv6.
    pub ip_options: bool,
}
