//! Shared fixtures for the criterion benchmarks in `benches/`: frames of every probe kind and
//! link type, a realistic traffic mix, and the shared real captures loaded into memory.

use std::path::{Path, PathBuf};

use etherparse::{PacketBuilder, PacketBuilderStep, TcpHeader};
use portsentry_core::classify::LinkType;

/// A named frame with its link type.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// A short name for the benchmark id, e.g. `syn` or `sll2_v4`.
    pub name: &'static str,
    /// The link type to classify the frame with.
    pub link: LinkType,
    /// The frame bytes.
    pub frame: Vec<u8>,
}

const SRC4: [u8; 4] = [203, 0, 113, 1];
const DST4: [u8; 4] = [203, 0, 113, 2];
const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
];
const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

fn flags(mut step: PacketBuilderStep<TcpHeader>, bits: u8) -> PacketBuilderStep<TcpHeader> {
    if bits & FIN != 0 {
        step = step.fin();
    }
    if bits & SYN != 0 {
        step = step.syn();
    }
    if bits & RST != 0 {
        step = step.rst();
    }
    if bits & PSH != 0 {
        step = step.psh();
    }
    if bits & ACK != 0 {
        step = step.ack(1);
    }
    if bits & URG != 0 {
        step = step.urg(0);
    }
    step
}

fn write(step: PacketBuilderStep<TcpHeader>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    step.write(&mut out, payload).expect("writing to a Vec");
    out
}

/// Ethernet / IPv4 / TCP with `bits` and `payload`.
pub fn tcp4(bits: u8, payload: &[u8]) -> Vec<u8> {
    let step = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(SRC4, DST4, 64)
        .tcp(40_000, 31_337, 1, 1024);
    write(flags(step, bits), payload)
}

/// Ethernet / IPv6 / TCP with `bits` and `payload`.
pub fn tcp6(bits: u8, payload: &[u8]) -> Vec<u8> {
    let step = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(SRC6, DST6, 64)
        .tcp(40_000, 31_337, 1, 1024);
    write(flags(step, bits), payload)
}

/// Ethernet / IPv4 / UDP with `payload`.
pub fn udp4(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(SRC4, DST4, 64)
        .udp(40_000, 161)
        .write(&mut out, payload)
        .expect("writing to a Vec");
    out
}

/// Ethernet / IPv6 / UDP with `payload`.
pub fn udp6(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(SRC6, DST6, 64)
        .udp(40_000, 161)
        .write(&mut out, payload)
        .expect("writing to a Vec");
    out
}

/// Ethernet / IPv4 / ICMP echo request.
pub fn icmp4() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(SRC4, DST4, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut out, &[0; 56])
        .expect("writing to a Vec");
    out
}

/// An Ethernet ARP request.
pub fn arp() -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&[0xFF; 6]);
    frame.extend_from_slice(&MAC_A);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&MAC_A);
    frame.extend_from_slice(&SRC4);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&DST4);
    frame
}

/// Replaces the 14-byte Ethernet header of `frame` with `header`.
fn relink(header: &[u8], frame: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(frame.get(14..).unwrap_or_default());
    out
}

/// Inserts VLAN tags (each: tag protocol identifier, VLAN id) before the EtherType.
fn tagged(tags: &[(u16, u16)], frame: &[u8]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for (tpid, id) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

/// An IPv6 TCP SYN behind hop-by-hop, destination-options and routing headers.
fn ipv6_extension_chain() -> Vec<u8> {
    let plain = tcp6(SYN, &[]);
    let tcp = &plain[14 + 40..];
    let mut exts = vec![60, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop -> destination options
    exts.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // destination options -> routing
    exts.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]); // routing -> TCP
    let mut frame = plain[..14 + 40].to_vec();
    let payload_len = u16::try_from(exts.len() + tcp.len()).expect("small");
    frame[14 + 4..14 + 6].copy_from_slice(&payload_len.to_be_bytes());
    frame[14 + 6] = 0; // next header: hop-by-hop
    frame.extend_from_slice(&exts);
    frame.extend_from_slice(tcp);
    frame
}

/// An IPv4 first fragment holding only 8 bytes of TCP header (nmap -f).
fn tiny_fragment() -> Vec<u8> {
    let whole = tcp4(SYN, &[]);
    let mut frame = whole[..14 + 20 + 8].to_vec();
    frame[14 + 2..14 + 4].copy_from_slice(&28u16.to_be_bytes());
    frame[14 + 6] = 0x20; // more fragments
    frame
}

/// One frame per probe kind (and the two commonest skips), all Ethernet / IPv4.
pub fn kinds() -> Vec<Fixture> {
    let eth = |name, frame| Fixture {
        name,
        link: LinkType::Ethernet,
        frame,
    };
    vec![
        eth("syn", tcp4(SYN, &[])),
        eth("fin", tcp4(FIN, &[])),
        eth("null", tcp4(0, &[])),
        eth("xmas", tcp4(FIN | PSH | URG, &[])),
        eth("maimon", tcp4(FIN | ACK, &[])),
        eth("ack", tcp4(ACK, &[])),
        eth("other_syn_fin", tcp4(SYN | FIN, &[])),
        eth("udp", udp4(b"probe")),
        eth("fragment", tiny_fragment()),
        eth("skip_reset", tcp4(RST | ACK, &[])),
        eth("skip_established", tcp4(PSH | ACK, &[0x42; 512])),
    ]
}

/// A SYN in every link type (and IPv6 variants).
pub fn link_types() -> Vec<Fixture> {
    let syn4 = tcp4(SYN, &[]);
    let syn6 = tcp6(SYN, &[]);
    let sll = |protocol: u16| {
        let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        h.extend_from_slice(&protocol.to_be_bytes());
        h
    };
    let sll2 = |protocol: u16| {
        let mut h = protocol.to_be_bytes().to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        h
    };
    vec![
        Fixture {
            name: "ethernet_v4",
            link: LinkType::Ethernet,
            frame: syn4.clone(),
        },
        Fixture {
            name: "ethernet_v6",
            link: LinkType::Ethernet,
            frame: syn6.clone(),
        },
        Fixture {
            name: "vlan_v4",
            link: LinkType::Ethernet,
            frame: tagged(&[(0x8100, 42)], &syn4),
        },
        Fixture {
            name: "qinq_v6",
            link: LinkType::Ethernet,
            frame: tagged(&[(0x88A8, 7), (0x8100, 42)], &syn6),
        },
        Fixture {
            name: "raw_v4",
            link: LinkType::RawIp,
            frame: relink(&[], &syn4),
        },
        Fixture {
            name: "raw_v6",
            link: LinkType::RawIp,
            frame: relink(&[], &syn6),
        },
        Fixture {
            name: "cooked_l3_v4",
            link: LinkType::CookedL3,
            frame: relink(&[], &syn4),
        },
        Fixture {
            name: "sll_v4",
            link: LinkType::LinuxSll,
            frame: relink(&sll(0x0800), &syn4),
        },
        Fixture {
            name: "sll2_v6",
            link: LinkType::LinuxSll2,
            frame: relink(&sll2(0x86DD), &syn6),
        },
        Fixture {
            name: "null_v4",
            link: LinkType::Null,
            frame: relink(&2u32.to_le_bytes(), &syn4),
        },
        Fixture {
            name: "loop_v6",
            link: LinkType::Loop,
            frame: relink(&24u32.to_be_bytes(), &syn6),
        },
        Fixture {
            name: "ipv6_ext_chain",
            link: LinkType::Ethernet,
            frame: ipv6_extension_chain(),
        },
    ]
}

/// A realistic mix of 100 frames as a busy server's interface sees them: mostly established
/// traffic, some new connections, UDP, IPv6, a few resets, ARP, ICMP and tagged frames.
pub fn mix() -> Vec<Fixture> {
    let weighted: [(&'static str, usize, Vec<u8>); 12] = [
        ("ack_data", 30, tcp4(ACK, &[0x42; 1200])),
        ("psh_ack", 12, tcp4(PSH | ACK, &[0x42; 300])),
        ("bare_ack", 10, tcp4(ACK, &[])),
        ("syn", 8, tcp4(SYN, &[])),
        ("fin_ack", 4, tcp4(FIN | ACK, &[])),
        ("rst", 4, tcp4(RST, &[])),
        ("udp", 10, udp4(&[0x42; 60])),
        ("tcp6_data", 8, tcp6(PSH | ACK, &[0x42; 600])),
        ("udp6", 4, udp6(&[0x42; 60])),
        (
            "vlan_ack",
            4,
            tagged(&[(0x8100, 42)], &tcp4(ACK, &[0x42; 100])),
        ),
        ("icmp", 3, icmp4()),
        ("arp", 3, arp()),
    ];
    let mut frames = Vec::with_capacity(100);
    for (name, count, frame) in weighted {
        for _ in 0..count {
            frames.push(Fixture {
                name,
                link: LinkType::Ethernet,
                frame: frame.clone(),
            });
        }
    }
    // Interleave deterministically so the branch predictor does not see long runs.
    let len = frames.len();
    (0..len).map(|i| frames[(i * 37) % len].clone()).collect()
}

/// The shared real captures: `$PORTSENTRY_CAPTURES`, else `shared/captures` beside the
/// workspace root or one of its ancestors.
///
/// # Panics
///
/// When no such directory exists.
pub fn captures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTSENTRY_CAPTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared").join("captures"))
        .find(|dir| dir.join("manifest.json").is_file())
        .expect("shared captures not found: set PORTSENTRY_CAPTURES")
}
