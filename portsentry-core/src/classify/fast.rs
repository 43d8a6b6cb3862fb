//! The fast path for the common IP packet: an unfragmented, uncut IPv4 packet with a 20-byte
//! header, or an IPv6 packet without extension headers, carrying TCP or UDP.
//!
//! It reads the few fixed header fields directly. For anything else (IPv4 options or
//! fragments, IPv6 extension headers, cut captures, odd lengths) it answers `None` and the
//! general path (etherparse's lax slicing, [`super::ip`]) decides. Unit tests, proptests and
//! the fuzz target check that both paths give the same answer for every input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::LinkType;
use super::ip::{Fragment, IpLayer};
use super::link::{IpVersion, NetworkLayer, read_array};
use crate::probe::Protocol;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERNET_HEADER_LEN: usize = 14;
/// Version 4, header length 5 words (no options).
const VERSION_IHL_PLAIN: u8 = 0x45;
const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
/// The More Fragments bit and the 13-bit fragment offset.
const FRAGMENT_BITS: u16 = 0x3FFF;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;

/// The IP layer of `net` if it is the common case, else `None`.
#[inline]
pub(super) fn plain_ip(net: NetworkLayer<'_>) -> Option<IpLayer<'_>> {
    let packet = net.packet;
    match (packet.first()? >> 4, net.version) {
        (4, IpVersion::V4 | IpVersion::FromNibble) => plain_ipv4(packet),
        (6, IpVersion::V6 | IpVersion::FromNibble) => plain_ipv6(packet),
        _ => None,
    }
}

/// The IP layer of an untagged Ethernet frame carrying a plain IPv4 packet, else `None`.
#[inline]
pub(super) fn ethernet_plain_ipv4(link: LinkType, frame: &[u8]) -> Option<IpLayer<'_>> {
    if link != LinkType::Ethernet || read_array::<2>(frame, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    plain_ipv4(frame.get(ETHERNET_HEADER_LEN..)?)
}

fn transport_protocol(number: u8) -> Option<Protocol> {
    match number {
        IP_TCP => Some(Protocol::Tcp),
        IP_UDP => Some(Protocol::Udp),
        _ => None,
    }
}

#[inline]
fn plain_ipv4(packet: &[u8]) -> Option<IpLayer<'_>> {
    let header: [u8; IPV4_HEADER_LEN] = read_array(packet, 0)?;
    if header[0] != VERSION_IHL_PLAIN {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if u16::from_be_bytes([header[6], header[7]]) & FRAGMENT_BITS != 0
        || total_len < IPV4_HEADER_LEN
    {
        return None;
    }
    let protocol = transport_protocol(header[9])?;
    // `get` fails when the capture was cut: the general path handles that.
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
    Some(IpLayer {
        source: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        destination: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        ip_options: false,
        fragment: Fragment::Whole,
        protocol,
        transport,
        declared_len: transport.len(),
    })
}

#[inline]
fn plain_ipv6(packet: &[u8]) -> Option<IpLayer<'_>> {
    let header: [u8; IPV6_HEADER_LEN] = read_array(packet, 0)?;
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    // Payload length 0 announces a jumbogram: the general path decides.
    if payload_len == 0 {
        return None;
    }
    let protocol = transport_protocol(header[6])?;
    let transport = packet.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)?;
    let source: [u8; 16] = read_array(&header, 8)?;
    let destination: [u8; 16] = read_array(&header, 24)?;
    Some(IpLayer {
        source: IpAddr::V6(Ipv6Addr::from(source)),
        destination: IpAddr::V6(Ipv6Addr::from(destination)),
        ip_options: false,
        fragment: Fragment::Whole,
        protocol,
        transport,
        declared_len: transport.len(),
    })
}
