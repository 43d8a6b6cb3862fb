//! Frames built with etherparse's `PacketBuilder` or by hand, each checked for the exact
//! probe or skip reason.

use std::net::IpAddr;

use etherparse::{LinuxSllPacketType, PacketBuilder, VlanId};
use proptest::prelude::*;

use super::*;
use crate::probe::{Protocol, ScanKind, TcpFlags};

const AT: Timestamp = Timestamp::from_secs(1_700_000_000);
const SRC4: [u8; 4] = [203, 0, 113, 1];
const DST4: [u8; 4] = [203, 0, 113, 2];
const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
];
const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];
const SPORT: u16 = 40_000;
const DPORT: u16 = 31_337;
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn expected(v6: bool, protocol: Protocol, kind: ScanKind) -> Probe {
    let (source, destination) = if v6 {
        (IpAddr::from(SRC6), IpAddr::from(DST6))
    } else {
        (IpAddr::from(SRC4), IpAddr::from(DST4))
    };
    Probe {
        at: AT,
        source,
        destination,
        protocol,
        source_port: SPORT,
        destination_port: DPORT,
        kind,
        ip_options: false,
    }
}

/// Classifies with both the public entry point and the general path and checks they agree.
fn check(link: LinkType, frame: &[u8]) -> Result<Probe, Skip> {
    let result = classify(AT, link, frame);
    assert_eq!(
        result,
        classify_general(AT, link, frame),
        "fast and general paths differ"
    );
    result
}

/// The TCP flags of a `PacketBuilder` step, set one by one.
fn with_flags(
    mut step: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    flags: u8,
) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
    if flags & 0x01 != 0 {
        step = step.fin();
    }
    if flags & 0x02 != 0 {
        step = step.syn();
    }
    if flags & 0x04 != 0 {
        step = step.rst();
    }
    if flags & 0x08 != 0 {
        step = step.psh();
    }
    if flags & 0x10 != 0 {
        step = step.ack(1);
    }
    if flags & 0x20 != 0 {
        step = step.urg(0);
    }
    if flags & 0x40 != 0 {
        step = step.ece();
    }
    if flags & 0x80 != 0 {
        step = step.cwr();
    }
    step
}

fn eth_tcp4(flags: u8, payload: &[u8]) -> Vec<u8> {
    let step = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(SRC4, DST4, 64)
        .tcp(SPORT, DPORT, 1, 1024);
    let step = with_flags(step, flags);
    let mut out = Vec::new();
    step.write(&mut out, payload).unwrap();
    out
}

fn eth_tcp6(flags: u8, payload: &[u8]) -> Vec<u8> {
    let step = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(SRC6, DST6, 64)
        .tcp(SPORT, DPORT, 1, 1024);
    let step = with_flags(step, flags);
    let mut out = Vec::new();
    step.write(&mut out, payload).unwrap();
    out
}

fn eth_udp4(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(SRC4, DST4, 64)
        .udp(SPORT, DPORT)
        .write(&mut out, payload)
        .unwrap();
    out
}

// ---- hand-built pieces -------------------------------------------------------------------

/// A TCP header without options and with the given flags.
fn tcp_header(flags: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(&SPORT.to_be_bytes());
    h.extend_from_slice(&DPORT.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 4, 0, 0, 0, 0, 0]);
    h
}

/// An IPv4 packet; `frag` is the flags/fragment-offset word, `options` padded by the caller.
fn ipv4(protocol: u8, frag: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let header_len = 20 + options.len();
    let total = u16::try_from(header_len + payload.len()).unwrap();
    let ihl = u8::try_from(header_len / 4).unwrap();
    let mut p = vec![0x40 | ihl, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, protocol, 0, 0]);
    p.extend_from_slice(&SRC4);
    p.extend_from_slice(&DST4);
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet whose first next-header is `next` and whose payload is `payload`
/// (extension headers included).
fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&SRC6);
    p.extend_from_slice(&DST6);
    p.extend_from_slice(payload);
    p
}

/// An 8-byte generic extension header (hop-by-hop, destination options or routing).
fn ext8(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header.
fn frag6(next: u8, offset_units: u16, more: bool) -> Vec<u8> {
    let word = (offset_units << 3) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&word.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 7]);
    h
}

/// An authentication header with 4 bytes of ICV (12 bytes, length field 1).
fn auth(next: u8) -> Vec<u8> {
    vec![next, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
}

fn ethernet(ethertype: u16, packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(packet);
    f
}

fn sll(packet_type: u16, protocol: u16, packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&packet_type.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes());
    f.extend_from_slice(&6u16.to_be_bytes());
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(packet);
    f
}

fn sll2(packet_type: u8, protocol: u16, packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&3u32.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes());
    f.extend_from_slice(&[packet_type, 6]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(packet);
    f
}

// ---- kinds -------------------------------------------------------------------------------

#[test]
fn every_tcp_kind_over_ethernet_ipv4_and_ipv6() {
    let cases: [(u8, ScanKind); 8] = [
        (0x02, ScanKind::Syn),
        (0x01, ScanKind::Fin),
        (0x00, ScanKind::Null),
        (0x29, ScanKind::Xmas),
        (0x11, ScanKind::Maimon),
        (0x10, ScanKind::Ack),
        (0x03, ScanKind::Other(TcpFlags(0x03))),
        (0xC2, ScanKind::Syn),
    ];
    for (flags, kind) in cases {
        assert_eq!(
            check(LinkType::Ethernet, &eth_tcp4(flags, &[])),
            Ok(expected(false, Protocol::Tcp, kind)),
            "v4 flags {flags:#x}"
        );
        assert_eq!(
            check(LinkType::Ethernet, &eth_tcp6(flags, &[])),
            Ok(expected(true, Protocol::Tcp, kind)),
            "v6 flags {flags:#x}"
        );
    }
}

#[test]
fn udp_is_a_probe_with_or_without_payload() {
    let want = Ok(expected(false, Protocol::Udp, ScanKind::Udp));
    assert_eq!(check(LinkType::Ethernet, &eth_udp4(&[])), want);
    assert_eq!(check(LinkType::Ethernet, &eth_udp4(b"hello")), want);
}

#[test]
fn resets_and_established_traffic_are_skipped() {
    let cases: [(u8, &[u8], Skip); 7] = [
        (0x04, b"", Skip::Reset),
        (0x14, b"", Skip::Reset),
        (0x12, b"", Skip::Established),
        (0x18, b"GET /", Skip::Established),
        (0x18, b"", Skip::Established),
        (0x10, b"data", Skip::Established),
        (0x11, b"bye", Skip::Established),
    ];
    for (flags, payload, skip) in cases {
        assert_eq!(
            check(LinkType::Ethernet, &eth_tcp4(flags, payload)),
            Err(skip),
            "v4 {flags:#x}"
        );
        assert_eq!(
            check(LinkType::Ethernet, &eth_tcp6(flags, payload)),
            Err(skip),
            "v6 {flags:#x}"
        );
    }
}

#[test]
fn syn_with_data_is_still_a_syn() {
    assert_eq!(
        check(LinkType::Ethernet, &eth_tcp4(0x02, b"x")),
        Ok(expected(false, Protocol::Tcp, ScanKind::Syn))
    );
}

#[test]
fn non_ip_and_non_transport_frames_are_skipped() {
    let mut arp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &MAC_A,
                &SRC4,
                &[0; 6],
                &DST4,
            )
            .unwrap(),
        )
        .write(&mut arp)
        .unwrap();
    assert_eq!(check(LinkType::Ethernet, &arp), Err(Skip::NotIp));

    let mut ping = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(SRC4, DST4, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, b"ping")
        .unwrap();
    assert_eq!(check(LinkType::Ethernet, &ping), Err(Skip::NotTcpOrUdp));

    let mut ping6 = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(SRC6, DST6, 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut ping6, b"ping")
        .unwrap();
    assert_eq!(check(LinkType::Ethernet, &ping6), Err(Skip::NotTcpOrUdp));

    // 802.3 length field instead of an EtherType (LLC / STP).
    assert_eq!(
        check(LinkType::Ethernet, &ethernet(0x0026, &[0x42; 38])),
        Err(Skip::NotIp)
    );
}

// ---- link types --------------------------------------------------------------------------

#[test]
fn every_link_type_carries_the_same_probe() {
    let syn4 = ipv4(6, 0, &[], &tcp_header(0x02));
    let syn6 = ipv6(6, &tcp_header(0x02));
    let want4 = Ok(expected(false, Protocol::Tcp, ScanKind::Syn));
    let want6 = Ok(expected(true, Protocol::Tcp, ScanKind::Syn));
    let framed: [(LinkType, Vec<u8>, Vec<u8>); 7] = [
        (
            LinkType::Ethernet,
            ethernet(0x0800, &syn4),
            ethernet(0x86DD, &syn6),
        ),
        (LinkType::RawIp, syn4.clone(), syn6.clone()),
        (LinkType::CookedL3, syn4.clone(), syn6.clone()),
        (
            LinkType::LinuxSll,
            sll(0, 0x0800, &syn4),
            sll(0, 0x86DD, &syn6),
        ),
        (
            LinkType::LinuxSll2,
            sll2(0, 0x0800, &syn4),
            sll2(0, 0x86DD, &syn6),
        ),
        (
            LinkType::Null,
            [&2u32.to_le_bytes()[..], &syn4].concat(),
            [&30u32.to_le_bytes()[..], &syn6].concat(),
        ),
        (
            LinkType::Loop,
            [&2u32.to_be_bytes()[..], &syn4].concat(),
            [&24u32.to_be_bytes()[..], &syn6].concat(),
        ),
    ];
    for (link, frame4, frame6) in &framed {
        assert_eq!(check(*link, frame4), want4, "{link} v4");
        assert_eq!(check(*link, frame6), want6, "{link} v6");
    }
    // Every link type is covered above.
    assert_eq!(framed.len(), LinkType::ALL.len());
}

#[test]
fn null_link_in_big_endian_byte_order() {
    let syn6 = ipv6(6, &tcp_header(0x01));
    let frame = [&28u32.to_be_bytes()[..], &syn6].concat();
    assert_eq!(
        check(LinkType::Null, &frame),
        Ok(expected(true, Protocol::Tcp, ScanKind::Fin))
    );
    let unknown_family = [&7u32.to_le_bytes()[..], &syn6].concat();
    assert_eq!(check(LinkType::Null, &unknown_family), Err(Skip::NotIp));
}

#[test]
fn linux_sll_built_by_etherparse() {
    let mut frame = Vec::new();
    PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [2, 0, 0, 0, 0, 1, 0, 0])
        .ipv4(SRC4, DST4, 64)
        .udp(SPORT, DPORT)
        .write(&mut frame, b"x")
        .unwrap();
    assert_eq!(
        check(LinkType::LinuxSll, &frame),
        Ok(expected(false, Protocol::Udp, ScanKind::Udp))
    );
}

#[test]
fn outgoing_cooked_frames_are_skipped() {
    let syn4 = ipv4(6, 0, &[], &tcp_header(0x02));
    assert_eq!(
        check(LinkType::LinuxSll, &sll(4, 0x0800, &syn4)),
        Err(Skip::Outgoing)
    );
    assert_eq!(
        check(LinkType::LinuxSll2, &sll2(4, 0x0800, &syn4)),
        Err(Skip::Outgoing)
    );
}

#[test]
fn raw_ip_with_an_unknown_version_is_malformed() {
    let mut packet = ipv4(6, 0, &[], &tcp_header(0x02));
    packet[0] = 0x55;
    assert_eq!(check(LinkType::RawIp, &packet), Err(Skip::Malformed));
    assert_eq!(check(LinkType::RawIp, &[]), Err(Skip::Truncated));
}

#[test]
fn ethertype_and_ip_version_must_agree() {
    let syn6 = ipv6(6, &tcp_header(0x02));
    assert_eq!(
        check(LinkType::Ethernet, &ethernet(0x0800, &syn6)),
        Err(Skip::Malformed)
    );
    let syn4 = ipv4(6, 0, &[], &tcp_header(0x02));
    assert_eq!(
        check(LinkType::Ethernet, &ethernet(0x86DD, &syn4)),
        Err(Skip::Malformed)
    );
}

// ---- VLAN --------------------------------------------------------------------------------

#[test]
fn single_and_double_vlan_tags() {
    let want = Ok(expected(false, Protocol::Tcp, ScanKind::Xmas));
    let mut single = Vec::new();
    let step = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4(SRC4, DST4, 64)
        .tcp(SPORT, DPORT, 1, 1024);
    with_flags(step, 0x29).write(&mut single, &[]).unwrap();
    assert_eq!(check(LinkType::Ethernet, &single), want);

    let mut double = Vec::new();
    let step = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(VlanId::try_new(7).unwrap(), VlanId::try_new(42).unwrap())
        .ipv6(SRC6, DST6, 64)
        .tcp(SPORT, DPORT, 1, 1024);
    with_flags(step, 0x29).write(&mut double, &[]).unwrap();
    assert_eq!(
        check(LinkType::Ethernet, &double),
        Ok(expected(true, Protocol::Tcp, ScanKind::Xmas))
    );

    // Three stacked tags (old 0x9100 QinQ outside), built by hand.
    let syn4 = ipv4(6, 0, &[], &tcp_header(0x29));
    let mut triple = Vec::new();
    triple.extend_from_slice(&[0x00, 0x01, 0x88, 0xA8, 0x00, 0x02, 0x81, 0x00, 0x00, 0x03]);
    triple.extend_from_slice(&[0x08, 0x00]);
    triple.extend_from_slice(&syn4);
    assert_eq!(check(LinkType::Ethernet, &ethernet(0x9100, &triple)), want);

    // VLAN inside a Linux cooked capture.
    let mut tagged = vec![0x00, 0x2A, 0x08, 0x00];
    tagged.extend_from_slice(&syn4);
    assert_eq!(check(LinkType::LinuxSll, &sll(0, 0x8100, &tagged)), want);
}

// ---- IPv6 extension headers --------------------------------------------------------------

#[test]
fn ipv6_extension_chain_is_walked() {
    const HOP: u8 = 0;
    const ROUTE: u8 = 43;
    const FRAG: u8 = 44;
    const AH: u8 = 51;
    const DEST: u8 = 60;
    let tcp = tcp_header(0x01);
    // hop-by-hop -> destination options -> routing -> atomic fragment -> AH -> TCP
    let chain = [
        ext8(DEST),
        ext8(ROUTE),
        ext8(FRAG),
        frag6(AH, 0, false),
        auth(6),
        tcp.clone(),
    ]
    .concat();
    let frame = ethernet(0x86DD, &ipv6(HOP, &chain));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Ok(expected(true, Protocol::Tcp, ScanKind::Fin))
    );

    // Destination options then UDP.
    let mut udp = Vec::new();
    udp.extend_from_slice(&SPORT.to_be_bytes());
    udp.extend_from_slice(&DPORT.to_be_bytes());
    udp.extend_from_slice(&[0, 8, 0, 0]);
    let frame = ethernet(0x86DD, &ipv6(DEST, &[ext8(17), udp].concat()));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Ok(expected(true, Protocol::Udp, ScanKind::Udp))
    );

    // Hop-by-hop anywhere but first is malformed.
    let frame = ethernet(
        0x86DD,
        &ipv6(DEST, &[ext8(HOP), ext8(6), tcp.clone()].concat()),
    );
    assert_eq!(check(LinkType::Ethernet, &frame), Err(Skip::Malformed));

    // ESP after a routing header: not TCP or UDP.
    let frame = ethernet(0x86DD, &ipv6(ROUTE, &[ext8(50), vec![0; 16]].concat()));
    assert_eq!(check(LinkType::Ethernet, &frame), Err(Skip::NotTcpOrUdp));

    // An extension header cut by the capture.
    let full = ethernet(0x86DD, &ipv6(HOP, &[ext8(6), tcp].concat()));
    assert_eq!(
        check(LinkType::Ethernet, &full[..14 + 40 + 5]),
        Err(Skip::Truncated)
    );
}

// ---- fragments ---------------------------------------------------------------------------

const MORE_FRAGMENTS: u16 = 0x2000;

#[test]
fn ipv4_first_fragment_with_flags_is_classified() {
    // 24 bytes of TCP in the first fragment: header and flags are there.
    let mut tcp = tcp_header(0x01);
    tcp.extend_from_slice(&[0; 4]);
    let frame = ethernet(0x0800, &ipv4(6, MORE_FRAGMENTS, &[], &tcp));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Ok(expected(false, Protocol::Tcp, ScanKind::Fin))
    );
}

#[test]
fn ipv4_tiny_first_fragment_is_a_fragment_probe() {
    // nmap -f: 8 bytes of TCP header in the first fragment (ports and sequence number).
    let tcp = tcp_header(0x02);
    let frame = ethernet(0x0800, &ipv4(6, MORE_FRAGMENTS, &[], &tcp[..8]));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Ok(expected(false, Protocol::Tcp, ScanKind::Fragment))
    );
    // Not even the destination port: nothing to attribute.
    let frame = ethernet(0x0800, &ipv4(6, MORE_FRAGMENTS, &[], &tcp[..3]));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Err(Skip::FragmentWithoutPorts)
    );
    let frame = ethernet(0x0800, &ipv4(17, MORE_FRAGMENTS, &[], &tcp[..2]));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Err(Skip::FragmentWithoutPorts)
    );
}

#[test]
fn ipv4_later_fragments_are_skipped() {
    let tcp = tcp_header(0x02);
    for frag in [1u16, MORE_FRAGMENTS | 1, 0x1FFF] {
        let frame = ethernet(0x0800, &ipv4(6, frag, &[], &tcp[8..]));
        assert_eq!(check(LinkType::Ethernet, &frame), Err(Skip::LaterFragment));
    }
    // Later fragments say nothing even when their bytes would parse as a header.
    let frame = ethernet(0x0800, &ipv4(17, 0x0003, &[], &tcp));
    assert_eq!(check(LinkType::Ethernet, &frame), Err(Skip::LaterFragment));
}

#[test]
fn ipv4_first_fragment_of_udp_is_a_udp_probe() {
    let mut udp = Vec::new();
    udp.extend_from_slice(&SPORT.to_be_bytes());
    udp.extend_from_slice(&DPORT.to_be_bytes());
    udp.extend_from_slice(&[0x05, 0xdc, 0, 0]);
    let frame = ethernet(0x0800, &ipv4(17, MORE_FRAGMENTS, &[], &udp));
    assert_eq!(
        check(LinkType::Ethernet, &frame),
        Ok(expected(false, Protocol::Udp, ScanKind::Udp))
    );
}

#[test]
fn ipv6_fragments() {
    let tcp = tcp_header(0x00);
    let first_tiny = ipv6(44, &[frag6(6, 0, true), tcp[..8].to_vec()].concat());
    assert_eq!(
        check(LinkType::RawIp, &first_tiny),
        Ok(expected(true, Protocol::Tcp, ScanKind::Fragment))
    );
    let first_full = ipv6(44, &[frag6(6, 0, true), tcp.clone()].concat());
    assert_eq!(
        check(LinkType::RawIp, &first_full),
        Ok(expected(true, Protocol::Tcp, ScanKind::Null))
    );
    let later = ipv6(44, &[frag6(6, 1, false), tcp[8..].to_vec()].concat());
    assert_eq!(check(LinkType::RawIp, &later), Err(Skip::LaterFragment));
    // A later fragment whose next-header claims an extension header it does not contain.
    let later_odd = ipv6(44, &[frag6(0, 3, true), vec![1, 2]].concat());
    assert_eq!(check(LinkType::RawIp, &later_odd), Err(Skip::LaterFragment));
    let no_ports = ipv6(0, &[ext8(44), frag6(6, 0, true), vec![0x9c]].concat());
    assert_eq!(
        check(LinkType::RawIp, &no_ports),
        Err(Skip::FragmentWithoutPorts)
    );
}

// ---- IPv4 options ------------------------------------------------------------------------

#[test]
fn ipv4_options_are_noted() {
    // Record route (7), length 7, pointer 4, one empty slot, then end of options.
    let options = [7, 7, 4, 0, 0, 0, 0, 0];
    let frame = ethernet(0x0800, &ipv4(6, 0, &options, &tcp_header(0x02)));
    let mut want = expected(false, Protocol::Tcp, ScanKind::Syn);
    want.ip_options = true;
    assert_eq!(check(LinkType::Ethernet, &frame), Ok(want));
}

// ---- truncation --------------------------------------------------------------------------

#[test]
fn cut_captures_classify_while_the_needed_bytes_are_there() {
    let frame = eth_tcp4(0x02, &[0xAA; 100]);
    let header_end = 14 + 20 + 14;
    for snap in header_end..frame.len() {
        assert_eq!(
            check(LinkType::Ethernet, &frame[..snap]),
            Ok(expected(false, Protocol::Tcp, ScanKind::Syn)),
            "snap {snap}"
        );
    }
    for snap in 0..header_end {
        assert_eq!(
            check(LinkType::Ethernet, &frame[..snap]),
            Err(Skip::Truncated),
            "snap {snap}"
        );
    }
    let frame6 = eth_tcp6(0x01, &[0xAA; 100]);
    assert_eq!(
        check(LinkType::Ethernet, &frame6[..14 + 40 + 14]),
        Ok(expected(true, Protocol::Tcp, ScanKind::Fin))
    );
    assert_eq!(
        check(LinkType::Ethernet, &frame6[..14 + 40 + 13]),
        Err(Skip::Truncated)
    );
    let udp = eth_udp4(&[1; 50]);
    assert_eq!(
        check(LinkType::Ethernet, &udp[..14 + 20 + 4]),
        Ok(expected(false, Protocol::Udp, ScanKind::Udp))
    );
    assert_eq!(
        check(LinkType::Ethernet, &udp[..14 + 20 + 3]),
        Err(Skip::Truncated)
    );
}

#[test]
fn a_cut_ack_with_data_is_still_established() {
    // The data was cut by the snap length, but the IP header says it was there.
    let frame = eth_tcp4(0x10, b"payload");
    assert_eq!(
        check(LinkType::Ethernet, &frame[..14 + 20 + 20]),
        Err(Skip::Established)
    );
    let frame6 = eth_tcp6(0x10, b"payload");
    assert_eq!(
        check(LinkType::Ethernet, &frame6[..14 + 40 + 20]),
        Err(Skip::Established)
    );
}

#[test]
fn impossible_transport_headers_are_malformed() {
    let mut tcp = tcp_header(0x02);
    tcp[12] = 0x40; // data offset 4 words
    assert_eq!(
        check(LinkType::RawIp, &ipv4(6, 0, &[], &tcp)),
        Err(Skip::Malformed)
    );
    let mut tcp = tcp_header(0x02);
    tcp[12] = 0x60; // data offset 6 words, but only 20 bytes sent
    assert_eq!(
        check(LinkType::RawIp, &ipv4(6, 0, &[], &tcp)),
        Err(Skip::Malformed)
    );
    // A 16-byte "TCP header" in an unfragmented packet.
    let tcp = tcp_header(0x02);
    assert_eq!(
        check(LinkType::RawIp, &ipv4(6, 0, &[], &tcp[..16])),
        Err(Skip::Malformed)
    );
    // A 6-byte UDP header.
    assert_eq!(
        check(LinkType::RawIp, &ipv4(17, 0, &[], &tcp[..6])),
        Err(Skip::Malformed)
    );
    // IHL below 5.
    let mut packet = ipv4(6, 0, &[], &tcp_header(0x02));
    packet[0] = 0x44;
    assert_eq!(check(LinkType::RawIp, &packet), Err(Skip::Malformed));
}

#[test]
fn ipv4_total_length_zero_falls_back_to_the_captured_length() {
    // Segmentation offload captures can carry total length 0.
    let mut packet = ipv4(6, 0, &[], &tcp_header(0x02));
    packet[2] = 0;
    packet[3] = 0;
    assert_eq!(
        check(LinkType::RawIp, &packet),
        Ok(expected(false, Protocol::Tcp, ScanKind::Syn))
    );
}

// ---- properties --------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for link in LinkType::ALL {
            let _ = check(link, &bytes);
        }
    }

    #[test]
    fn mutated_real_frames_never_panic_and_paths_agree(
        flags in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        flips in proptest::collection::vec((0usize..120, any::<u8>()), 0..6),
        cut in 0usize..140,
    ) {
        for mut frame in [eth_tcp4(flags, &payload), eth_tcp6(flags, &payload), eth_udp4(&payload)] {
            for (at, value) in &flips {
                if let Some(byte) = frame.get_mut(*at) {
                    *byte = *value;
                }
            }
            frame.truncate(cut.max(1));
            for link in LinkType::ALL {
                let _ = check(link, &frame);
            }
        }
    }

    #[test]
    fn built_tcp_frames_classify_by_flags(flags in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..20)) {
        let got = check(LinkType::Ethernet, &eth_tcp4(flags, &data));
        let want = transport::tcp_kind(TcpFlags(flags), !data.is_empty())
            .map(|kind| expected(false, Protocol::Tcp, kind));
        prop_assert_eq!(got, want);
    }
}
