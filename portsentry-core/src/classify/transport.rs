//! The transport layer: ports and TCP flags, turned into a probe kind or a skip reason.

use super::Skip;
use super::ip::{Fragment, IpLayer};
use super::link::read_u16;
use crate::probe::{Probe, Protocol, ScanKind, TcpFlags, Timestamp};

/// Bytes of TCP header up to and including the flag byte.
const TCP_FLAGS_END: usize = 14;
/// The smallest TCP header (data offset 5).
const TCP_MIN_HEADER: usize = 20;
/// Both ports: the first four bytes of a TCP or UDP header.
const PORTS_END: usize = 4;
/// The UDP header.
const UDP_HEADER: usize = 8;

/// The six flags PortSentry looks at; ECE and CWR do not change the kind.
const SIX_FLAGS: u8 = 0x3F;

/// Builds the probe (or the reason for none) from the transport bytes of `ip`.
pub(super) fn probe(at: Timestamp, ip: &IpLayer<'_>) -> Result<Probe, Skip> {
    let bytes = ip.transport;
    let make = |source_port, destination_port, kind| Probe {
        at,
        source: ip.source,
        destination: ip.destination,
        protocol: ip.protocol,
        source_port,
        destination_port,
        kind,
        ip_options: ip.ip_options,
    };
    let ports = || Some((read_u16(bytes, 0)?, read_u16(bytes, 2)?));
    match ip.protocol {
        Protocol::Udp => {
            if ip.declared_len < PORTS_END
                || (ip.fragment == Fragment::Whole && ip.declared_len < UDP_HEADER)
            {
                return Err(short(ip));
            }
            let (source_port, destination_port) = ports().ok_or(Skip::Truncated)?;
            Ok(make(source_port, destination_port, ScanKind::Udp))
        }
        Protocol::Tcp => {
            if ip.fragment == Fragment::First && ip.declared_len < TCP_FLAGS_END {
                // RFC 1858 tiny fragment: the flags travel in a later fragment.
                if ip.declared_len < PORTS_END {
                    return Err(Skip::FragmentWithoutPorts);
                }
                let (source_port, destination_port) = ports().ok_or(Skip::Truncated)?;
                return Ok(make(source_port, destination_port, ScanKind::Fragment));
            }
            if ip.fragment == Fragment::Whole && ip.declared_len < TCP_MIN_HEADER {
                return Err(Skip::Malformed);
            }
            let (source_port, destination_port) = ports().ok_or(Skip::Truncated)?;
            let offset_and_flags = read_u16(bytes, 12).ok_or(Skip::Truncated)?;
            let header_len = usize::from(offset_and_flags >> 12) * 4;
            if header_len < TCP_MIN_HEADER
                || (ip.fragment == Fragment::Whole && ip.declared_len < header_len)
            {
                return Err(Skip::Malformed);
            }
            let has_data = ip.declared_len > header_len;
            let flags = TcpFlags(offset_and_flags.to_be_bytes()[1]);
            let kind = tcp_kind(flags, has_data)?;
            Ok(make(source_port, destination_port, kind))
        }
    }
}

/// The skip reason for a transport header shorter than its minimum.
fn short(ip: &IpLayer<'_>) -> Skip {
    if ip.fragment == Fragment::First {
        Skip::FragmentWithoutPorts
    } else {
        Skip::Malformed
    }
}

/// The probe kind of a TCP segment with `flags`, or why it is not a probe.
///
/// Follows PortSentry's order on the six classic flags (NULL, XMAS, FIN, SYN, else other),
/// after setting aside RST and the ACK family.
pub(super) const fn tcp_kind(flags: TcpFlags, has_data: bool) -> Result<ScanKind, Skip> {
    const FIN: u8 = TcpFlags::FIN.0;
    const SYN: u8 = TcpFlags::SYN.0;
    const ACK: u8 = TcpFlags::ACK.0;
    const XMAS: u8 = TcpFlags::FIN.0 | TcpFlags::PSH.0 | TcpFlags::URG.0;
    let six = flags.0 & SIX_FLAGS;
    if flags.contains(TcpFlags::RST) {
        return Err(Skip::Reset);
    }
    if flags.contains(TcpFlags::ACK) {
        return match six {
            ACK if !has_data => Ok(ScanKind::Ack),
            x if x == FIN | ACK && !has_data => Ok(ScanKind::Maimon),
            _ => Err(Skip::Established),
        };
    }
    Ok(match six {
        0 => ScanKind::Null,
        x if x & XMAS == XMAS => ScanKind::Xmas,
        FIN => ScanKind::Fin,
        SYN => ScanKind::Syn,
        _ => ScanKind::Other(flags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bits: u8) -> Result<ScanKind, Skip> {
        tcp_kind(TcpFlags(bits), false)
    }

    #[test]
    fn flag_table() {
        assert_eq!(kind(0x00), Ok(ScanKind::Null));
        assert_eq!(
            kind(0x40),
            Ok(ScanKind::Null),
            "ECE alone counts as NULL (1.2)"
        );
        assert_eq!(kind(0x01), Ok(ScanKind::Fin));
        assert_eq!(kind(0x02), Ok(ScanKind::Syn));
        assert_eq!(kind(0xC2), Ok(ScanKind::Syn), "ECN-setup SYN is a SYN");
        assert_eq!(kind(0x29), Ok(ScanKind::Xmas));
        assert_eq!(kind(0x2B), Ok(ScanKind::Xmas), "XMAS with SYN too");
        assert_eq!(kind(0x03), Ok(ScanKind::Other(TcpFlags(0x03))));
        assert_eq!(kind(0x08), Ok(ScanKind::Other(TcpFlags(0x08))));
        assert_eq!(kind(0x10), Ok(ScanKind::Ack));
        assert_eq!(kind(0x11), Ok(ScanKind::Maimon));
        assert_eq!(kind(0x04), Err(Skip::Reset));
        assert_eq!(kind(0x14), Err(Skip::Reset));
        assert_eq!(kind(0x12), Err(Skip::Established));
        assert_eq!(kind(0x18), Err(Skip::Established));
        assert_eq!(kind(0x39), Err(Skip::Established));
        assert_eq!(tcp_kind(TcpFlags(0x10), true), Err(Skip::Established));
        assert_eq!(tcp_kind(TcpFlags(0x11), true), Err(Skip::Established));
        assert_eq!(tcp_kind(TcpFlags(0x02), true), Ok(ScanKind::Syn));
    }
}
