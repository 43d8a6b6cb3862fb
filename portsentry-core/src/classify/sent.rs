//! The host's own frames: which of them answer a probe (and what the answer says about the
//! port) and which start a flow of its own.
//!
//! [`classify_sent`] is the counterpart of [`classify`](super::classify) for frames the host
//! sent (`PACKET_OUTGOING` in live capture, a source among the own addresses in a replay).
//! Like it, it reads a few header bytes, never allocates and never panics.
//!
//! | Frame the host sent | [`SentKind`] |
//! |---|---|
//! | TCP SYN alone (ECE, CWR allowed) | [`SentKind::Syn`]: the host opens a connection |
//! | TCP SYN+ACK alone (ECE, CWR allowed) | [`SentKind::SynAck`]: the port is open |
//! | TCP with RST | [`SentKind::Reset`]: the port is closed |
//! | UDP | [`SentKind::Datagram`]: a reply from an open port, or the host's own query |
//! | ICMP type 3, ICMPv6 type 1 (destination unreachable) quoting TCP or UDP | [`SentKind::Unreachable`], with the quoted packet's addresses and ports |
//! | anything else | a [`Skip`] reason (`established` for other TCP, `not_tcp_udp`, ...) |
//!
//! The quoted packet of an ICMP error is the prober's packet as the host received it: its
//! source is the remote side, its destination the local one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Skip;
use super::link::{LinkType, network_layer_sent, read_array, read_u16};
use crate::probe::{Protocol, TcpFlags, Timestamp};

const IP_ICMP: u8 = 1;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_ICMPV6: u8 = 58;
const ICMP_UNREACHABLE: u8 = 3;
const ICMPV6_UNREACHABLE: u8 = 1;
/// The ICMP header before the quoted packet.
const ICMP_HEADER: usize = 8;
const IPV6_HEADER: usize = 40;
/// FIN SYN RST PSH ACK URG.
const SIX_FLAGS: u8 = 0x3f;

/// What a frame the host sent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SentKind {
    /// A TCP SYN without ACK: the host opens a connection from `local_port`.
    Syn,
    /// A TCP SYN+ACK: the host accepts a connection on `local_port` (open).
    SynAck,
    /// A TCP segment with RST: nothing listens on `local_port` (closed), or a connection ends.
    Reset,
    /// A UDP datagram from `local_port`.
    Datagram,
    /// ICMP or ICMPv6 destination unreachable, about a packet from `remote` to `local`.
    Unreachable,
}

/// One frame the host sent, seen from the host: its side is "local", the peer "remote".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sent {
    /// The capture time.
    pub at: Timestamp,
    /// The host's address the frame is about.
    pub local: IpAddr,
    /// The peer's address.
    pub remote: IpAddr,
    /// TCP or UDP (for [`SentKind::Unreachable`]: the quoted packet's protocol).
    pub protocol: Protocol,
    /// The host's port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
    /// What the frame is.
    pub kind: SentKind,
}

/// Classifies a frame the host sent (see the [module docs](self)).
///
/// # Errors
///
/// The [`Skip`] reason when the frame is neither an answer nor a flow start: not IP, cut
/// short, a later fragment, TCP without SYN or RST ([`Skip::Established`]), ICMP other than
/// destination unreachable or quoting neither TCP nor UDP ([`Skip::NotTcpOrUdp`]).
///
/// # Panics
///
/// Never, for any input.
///
/// # Examples
///
/// ```
/// use portsentry_core::classify::{classify_sent, LinkType, SentKind};
/// use portsentry_core::Timestamp;
///
/// // The host 203.0.113.2 resets a probe of its port 79 from 203.0.113.1:40000.
/// let mut frame = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 203, 0, 113, 2, 203, 0, 113, 1];
/// frame.extend_from_slice(&[0, 79, 0x9c, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x14, 0, 0, 0, 0, 0, 0]);
/// let sent = classify_sent(Timestamp::ZERO, LinkType::RawIp, &frame).unwrap();
/// assert_eq!(sent.kind, SentKind::Reset);
/// assert_eq!((sent.local_port, sent.remote_port), (79, 40000));
/// assert_eq!(sent.remote.to_string(), "203.0.113.1");
/// ```
pub fn classify_sent(at: Timestamp, link: LinkType, frame: &[u8]) -> Result<Sent, Skip> {
    let packet = network_layer_sent(link, frame)?.packet;
    let header = ip_header(packet)?;
    match header.protocol {
        IP_TCP | IP_UDP => {
            let (local_port, remote_port) = ports(header.payload)?;
            let (protocol, kind) = if header.protocol == IP_UDP {
                (Protocol::Udp, SentKind::Datagram)
            } else {
                let flags = TcpFlags(*header.payload.get(13).ok_or(Skip::Truncated)?);
                // The six classic flags decide (ECE and CWR ride along on ECN setups).
                let six = flags.bits() & SIX_FLAGS;
                let kind = if flags.contains(TcpFlags::RST) {
                    SentKind::Reset
                } else if six == (TcpFlags::SYN | TcpFlags::ACK).bits() {
                    SentKind::SynAck
                } else if six == TcpFlags::SYN.bits() {
                    SentKind::Syn
                } else {
                    return Err(Skip::Established);
                };
                (Protocol::Tcp, kind)
            };
            Ok(Sent {
                at,
                local: header.source,
                remote: header.destination,
                protocol,
                local_port,
                remote_port,
                kind,
            })
        }
        IP_ICMP | IP_ICMPV6 => {
            let unreachable = if header.protocol == IP_ICMP {
                ICMP_UNREACHABLE
            } else {
                ICMPV6_UNREACHABLE
            };
            if *header.payload.first().ok_or(Skip::Truncated)? != unreachable {
                return Err(Skip::NotTcpOrUdp);
            }
            let quoted = ip_header(header.payload.get(ICMP_HEADER..).ok_or(Skip::Truncated)?)?;
            let protocol = match quoted.protocol {
                IP_TCP => Protocol::Tcp,
                IP_UDP => Protocol::Udp,
                _ => return Err(Skip::NotTcpOrUdp),
            };
            // The quoted packet went from the peer to the host.
            let (remote_port, local_port) = ports(quoted.payload)?;
            Ok(Sent {
                at,
                local: quoted.destination,
                remote: quoted.source,
                protocol,
                local_port,
                remote_port,
                kind: SentKind::Unreachable,
            })
        }
        _ => Err(Skip::NotTcpOrUdp),
    }
}

/// The fields of an IP header this module reads.
struct IpHeader<'a> {
    source: IpAddr,
    destination: IpAddr,
    protocol: u8,
    payload: &'a [u8],
}

/// Reads an IPv4 or IPv6 header (IPv6: only when the transport follows the fixed header).
fn ip_header(packet: &[u8]) -> Result<IpHeader<'_>, Skip> {
    match packet.first().ok_or(Skip::Truncated)? >> 4 {
        4 => {
            let fixed: [u8; 20] = read_array(packet, 0).ok_or(Skip::Truncated)?;
            let header_len = usize::from(fixed[0] & 0x0f) * 4;
            if header_len < 20 {
                return Err(Skip::Malformed);
            }
            if u16::from_be_bytes([fixed[6], fixed[7]]) & 0x1fff != 0 {
                return Err(Skip::LaterFragment);
            }
            let address = |at: usize| -> Result<IpAddr, Skip> {
                let octets: [u8; 4] = read_array(&fixed, at).ok_or(Skip::Truncated)?;
                Ok(IpAddr::V4(Ipv4Addr::from(octets)))
            };
            // Up to the length the header announces (trailing bytes are no part of it), or
            // to the end of a cut capture.
            let total = usize::from(u16::from_be_bytes([fixed[2], fixed[3]])).min(packet.len());
            Ok(IpHeader {
                source: address(12)?,
                destination: address(16)?,
                protocol: fixed[9],
                payload: packet.get(header_len..total).ok_or(Skip::Malformed)?,
            })
        }
        6 => {
            let fixed: [u8; IPV6_HEADER] = read_array(packet, 0).ok_or(Skip::Truncated)?;
            let address = |at: usize| -> Result<IpAddr, Skip> {
                let octets: [u8; 16] = read_array(&fixed, at).ok_or(Skip::Truncated)?;
                Ok(IpAddr::V6(Ipv6Addr::from(octets)))
            };
            let announced = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
            // Payload length 0 announces a jumbogram: the rest of the frame.
            let total = if announced == 0 {
                packet.len()
            } else {
                (IPV6_HEADER + announced).min(packet.len())
            };
            Ok(IpHeader {
                source: address(8)?,
                destination: address(24)?,
                protocol: fixed[6],
                payload: packet.get(IPV6_HEADER..total).ok_or(Skip::Truncated)?,
            })
        }
        _ => Err(Skip::NotIp),
    }
}

/// The first two ports of a TCP or UDP header: (source, destination).
fn ports(transport: &[u8]) -> Result<(u16, u16), Skip> {
    Ok((
        read_u16(transport, 0).ok_or(Skip::Truncated)?,
        read_u16(transport, 2).ok_or(Skip::Truncated)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const HOST: [u8; 4] = [203, 0, 113, 2];
    const PEER: [u8; 4] = [203, 0, 113, 1];
    const HOST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const PEER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    fn sent(frame: &[u8]) -> Result<Sent, Skip> {
        classify_sent(Timestamp::from_secs(5), LinkType::RawIp, frame)
    }

    fn tcp(flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(HOST, PEER, 64)
            .tcp(79, 40000, 1, 1024)
            .write(&mut out, &[])
            .unwrap();
        out[33] = flags;
        out
    }

    #[test]
    fn tcp_answers_and_flow_starts() {
        let kinds = [
            (0x12, Ok(SentKind::SynAck)),
            (0x02, Ok(SentKind::Syn)),
            (0xc2, Ok(SentKind::Syn)),
            (0x04, Ok(SentKind::Reset)),
            (0x14, Ok(SentKind::Reset)),
            (0x10, Err(Skip::Established)),
            (0x18, Err(Skip::Established)),
            (0x11, Err(Skip::Established)),
            (0x03, Err(Skip::Established)),
            (0x1a, Err(Skip::Established)),
            (0x52, Ok(SentKind::SynAck)),
        ];
        for (flags, expected) in kinds {
            assert_eq!(sent(&tcp(flags)).map(|s| s.kind), expected, "{flags:#x}");
        }
        let s = sent(&tcp(0x12)).unwrap();
        assert_eq!(s.local, IpAddr::from(HOST));
        assert_eq!(s.remote, IpAddr::from(PEER));
        assert_eq!(
            (s.protocol, s.local_port, s.remote_port),
            (Protocol::Tcp, 79, 40000)
        );
        assert_eq!(s.at, Timestamp::from_secs(5));
    }

    #[test]
    fn udp_from_the_host_ipv6() {
        let mut out = Vec::new();
        PacketBuilder::ipv6(HOST6, PEER6, 64)
            .udp(32772, 123)
            .write(&mut out, b"ntp")
            .unwrap();
        let s = sent(&out).unwrap();
        assert_eq!(s.kind, SentKind::Datagram);
        assert_eq!(
            (s.protocol, s.local_port, s.remote_port),
            (Protocol::Udp, 32772, 123)
        );
        assert_eq!(s.remote, IpAddr::from(PEER6));
    }

    #[test]
    fn unreachable_names_the_quoted_probe() {
        for v6 in [false, true] {
            let mut quoted = Vec::new();
            let builder = if v6 {
                PacketBuilder::ipv6(PEER6, HOST6, 64)
            } else {
                PacketBuilder::ipv4(PEER, HOST, 64)
            };
            builder.udp(40000, 137).write(&mut quoted, b"x").unwrap();
            let mut out = Vec::new();
            if v6 {
                PacketBuilder::ipv6(HOST6, PEER6, 64)
                    .icmpv6_raw(1, 4, [0; 4])
                    .write(&mut out, &quoted)
                    .unwrap();
            } else {
                PacketBuilder::ipv4(HOST, PEER, 64)
                    .icmpv4_raw(3, 3, [0; 4])
                    .write(&mut out, &quoted)
                    .unwrap();
            }
            let s = sent(&out).unwrap();
            assert_eq!(s.kind, SentKind::Unreachable);
            assert_eq!(
                (s.protocol, s.local_port, s.remote_port),
                (Protocol::Udp, 137, 40000)
            );
            let (host, peer) = if v6 {
                (IpAddr::from(HOST6), IpAddr::from(PEER6))
            } else {
                (IpAddr::from(HOST), IpAddr::from(PEER))
            };
            assert_eq!((s.local, s.remote), (host, peer));
            // An echo reply is no answer to a probe; a quote cut before its ports is truncated.
            let mut echo = out.clone();
            let icmp_at = if v6 { 40 } else { 20 };
            echo[icmp_at] = if v6 { 129 } else { 0 };
            assert_eq!(sent(&echo), Err(Skip::NotTcpOrUdp));
            let cut = out.len() - 9;
            assert_eq!(sent(&out[..cut]), Err(Skip::Truncated));
        }
    }

    #[test]
    fn cooked_captures_of_outgoing_frames_are_read() {
        // Linux cooked v1: packet type 4 (outgoing), ethertype IPv4.
        let mut frame = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0, 0x08, 0x00];
        frame.extend_from_slice(&tcp(0x14));
        let s = classify_sent(Timestamp::ZERO, LinkType::LinuxSll, &frame).unwrap();
        assert_eq!(s.kind, SentKind::Reset);
        assert_eq!(
            super::super::classify(Timestamp::ZERO, LinkType::LinuxSll, &frame),
            Err(Skip::Outgoing)
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for link in LinkType::ALL {
                let _ = classify_sent(Timestamp::ZERO, link, &bytes);
            }
        }

        /// A flow start read here is the SYN probe the receiving side classifies, whatever
        /// the flags, lengths and cuts.
        #[test]
        fn flow_starts_agree_with_classify(
            flags in any::<u8>(),
            v6 in any::<bool>(),
            cut in 0usize..80,
            shrink in 0u16..40,
            payload in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut frame = Vec::new();
            let builder = if v6 {
                PacketBuilder::ipv6(HOST6, PEER6, 64)
            } else {
                PacketBuilder::ipv4(HOST, PEER, 64)
            };
            builder.tcp(32771, 443, 1, 1024).write(&mut frame, &payload).unwrap();
            frame[if v6 { 53 } else { 33 }] = flags;
            if shrink > 0 {
                // The header announces fewer bytes than follow (and More-Fragments, for v4).
                let at = if v6 { 4 } else { 2 };
                let announced = u16::from_be_bytes([frame[at], frame[at + 1]]).saturating_sub(shrink);
                frame[at..at + 2].copy_from_slice(&announced.to_be_bytes());
                if !v6 {
                    frame[6] = 0x20;
                }
            }
            frame.truncate(frame.len().saturating_sub(cut).max(1));
            crate::fuzzing::classify_paths_agree(&frame);
        }
    }
}
