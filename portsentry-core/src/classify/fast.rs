//! The fast path for the most common frame: untagged Ethernet (or raw IP) carrying an
//! unfragmented, uncut IPv4 packet with a 20-byte header and TCP or UDP inside.
//!
//! It reads the few fixed header fields directly and hands the transport bytes to the same
//! transport classifier as the general path. For anything else it answers `None` and the
//! general path (etherparse's lax slicing) decides. Tests and the fuzz target check that both
//! paths agree on every input the fast path accepts.

use std::net::{IpAddr, Ipv4Addr};

use super::ip::{Fragment, IpLayer};
use super::link::{read_array, read_u16};
use super::{LinkType, Skip, transport};
use crate::probe::{Probe, Protocol, Timestamp};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERNET_HEADER_LEN: usize = 14;
/// Version 4, header length 5 words (no options).
const VERSION_IHL_PLAIN: u8 = 0x45;
const IPV4_HEADER_LEN: usize = 20;
/// The More Fragments bit and the 13-bit fragment offset.
const FRAGMENT_BITS: u16 = 0x3FFF;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;

/// Classifies `frame` if it is the common case, else `None`.
#[inline]
pub(super) fn ethernet_ipv4(
    at: Timestamp,
    link: LinkType,
    frame: &[u8],
) -> Option<Result<Probe, Skip>> {
    let packet = match link {
        LinkType::Ethernet => {
            if read_u16(frame, 12)? != ETHERTYPE_IPV4 {
                return None;
            }
            frame.get(ETHERNET_HEADER_LEN..)?
        }
        LinkType::RawIp | LinkType::CookedL3 => frame,
        _ => return None,
    };
    let header: [u8; IPV4_HEADER_LEN] = read_array(packet, 0)?;
    if header[0] != VERSION_IHL_PLAIN {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if u16::from_be_bytes([header[6], header[7]]) & FRAGMENT_BITS != 0
        || total_len < IPV4_HEADER_LEN
        || total_len > packet.len()
    {
        return None;
    }
    let protocol = match header[9] {
        IP_TCP => Protocol::Tcp,
        IP_UDP => Protocol::Udp,
        _ => return None,
    };
    let transport = packet.get(IPV4_HEADER_LEN..total_len)?;
    let [
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ] = header;
    let ip = IpLayer {
        source: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        destination: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        ip_options: false,
        fragment: Fragment::Whole,
        protocol,
        transport,
        declared_len: transport.len(),
    };
    Some(transport::probe(at, &ip))
}
