//! The classic BPF programs attached to the capture socket.
//!
//! The socket is `AF_PACKET`/`SOCK_DGRAM`, so every program sees a frame that starts at the
//! IP header (offset 0 = first byte of the IPv4 or IPv6 header). The link-layer facts the
//! programs need come from the kernel's ancillary loads: the packet type (`PACKET_HOST`, ...)
//! and the ethertype.
//!
//! What a program keeps (returns a snap length for) and drops (returns 0):
//!
//! * only frames addressed to this host (`PACKET_HOST`): no outgoing, broadcast, multicast or
//!   promiscuous traffic;
//! * IPv4: UDP; TCP without ACK and without RST; a first fragment (More-Fragments set, offset 0)
//!   of TCP whatever it carries (its header may be cut, RFC 1858); never a later fragment;
//! * IPv6: UDP and TCP directly after the fixed header (TCP without ACK and RST); packets whose
//!   first next-header is an extension header (hop-by-hop, routing, fragment, destination
//!   options, AH, mobility, HIP, shim6) are kept with a longer snap length so the classifier can
//!   walk the chain;
//! * everything else (ICMP, ARP, other protocols) is dropped.
//!
//! [`Variant::WithAckFamily`] also keeps a bare ACK and a FIN+ACK (nmap `-sA`, `-sW`, `-sM`),
//! for `DETECT_ACK_SCANS`. RST is dropped by both variants.
//!
//! The programs are assembled by [`program`] from symbolic labels, so jump offsets are
//! computed rather than counted by hand; the unit tests run them over crafted packets in a
//! small cBPF interpreter and check the result of every rule above.

/// The snap length kept of an ordinary probe: enough for an IPv4 header with options
/// (60 bytes) plus the TCP header with options (60 bytes).
pub const SNAPLEN: u32 = 128;

/// The snap length kept of an IPv6 packet with extension headers, so the classifier can walk
/// the chain to the transport header.
pub const EXTENSION_SNAPLEN: u32 = 512;

/// Which filter to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// PortSentry's rule: TCP with ACK or RST set never reaches user space.
    Probes,
    /// As [`Variant::Probes`], and also a bare ACK and a FIN+ACK (flags ignoring ECE/CWR).
    WithAckFamily,
}

/// One classic BPF instruction, as the kernel's `struct sock_filter` lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode (class | size | mode, or class | op | source).
    pub code: u16,
    /// Jump offset when the condition holds (conditional jumps only).
    pub jt: u8,
    /// Jump offset when the condition fails (conditional jumps only).
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

// Opcode parts (linux/filter.h, linux/bpf_common.h).
pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_LDX: u16 = 0x01;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_H: u16 = 0x08;
pub(crate) const BPF_B: u16 = 0x10;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_IND: u16 = 0x40;
pub(crate) const BPF_MSH: u16 = 0xa0;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JSET: u16 = 0x40;
pub(crate) const BPF_K: u16 = 0x00;

/// Base of the kernel's ancillary "loads" (`SKF_AD_OFF`, -0x1000 as a u32).
pub(crate) const SKF_AD_OFF: u32 = 0xffff_f000;
/// Ancillary load: the frame's ethertype, host order (`SKF_AD_PROTOCOL`).
pub(crate) const SKF_AD_PROTOCOL: u32 = SKF_AD_OFF;
/// Ancillary load: the packet type, `PACKET_HOST` = 0 (`SKF_AD_PKTTYPE`).
pub(crate) const SKF_AD_PKTTYPE: u32 = SKF_AD_OFF + 4;

/// `PACKET_HOST`: a frame addressed to this host.
const PACKET_HOST: u32 = 0;
const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
/// IPv6 next-header values that the classifier walks past (RFC 8200 and the IANA list).
const IPV6_EXTENSION_HEADERS: [u32; 8] = [
    0,   // hop-by-hop options
    43,  // routing
    44,  // fragment
    60,  // destination options
    51,  // authentication header
    135, // mobility
    139, // HIP
    140, // shim6
];
/// IPv4 header bytes 6-7: the fragment offset (low 13 bits).
const IPV4_FRAGMENT_OFFSET_MASK: u32 = 0x1fff;
/// IPv4 header bytes 6-7: the More-Fragments bit.
const IPV4_MORE_FRAGMENTS: u32 = 0x2000;
/// Offset of the TCP flags byte in the TCP header.
const TCP_FLAGS_OFFSET: u32 = 13;
/// Offset of the TCP flags byte of a TCP header right after the 40-byte IPv6 header.
const IPV6_TCP_FLAGS: u32 = 40 + TCP_FLAGS_OFFSET;
const TCP_FIN: u32 = 0x01;
const TCP_RST: u32 = 0x04;
const TCP_ACK: u32 = 0x10;
/// The six classic flags (FIN SYN RST PSH ACK URG), without ECE and CWR.
const TCP_SIX_FLAGS: u32 = 0x3f;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Ipv6,
    TcpFlags,
    Extension,
    AcceptExtension,
    Accept,
    Drop,
}

/// One line of the symbolic program.
enum Line {
    /// A statement (load, ALU, return): `code`, `k`.
    Stmt(u16, u32),
    /// A conditional jump on `k` with symbolic targets (`None`: the next instruction).
    Jump(u16, u32, Option<Label>, Option<Label>),
    /// An unconditional jump.
    Always(Label),
    /// Marks where a label points.
    Here(Label),
}

use Line::{Always, Here, Jump, Stmt};

/// The symbolic program for `variant`.
fn lines(variant: Variant) -> Vec<Line> {
    let mut p = vec![
        // Keep only frames addressed to this host.
        Stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_PKTTYPE),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            PACKET_HOST,
            None,
            Some(Label::Drop),
        ),
        // Dispatch on the ethertype.
        Stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_PROTOCOL),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            ETHERTYPE_IPV4,
            None,
            Some(Label::Ipv6),
        ),
        // IPv4: drop later fragments (non-zero offset).
        Stmt(BPF_LD | BPF_H | BPF_ABS, 6),
        Jump(
            BPF_JMP | BPF_JSET | BPF_K,
            IPV4_FRAGMENT_OFFSET_MASK,
            Some(Label::Drop),
            None,
        ),
        // IPv4 protocol: UDP kept, TCP examined, the rest dropped.
        Stmt(BPF_LD | BPF_B | BPF_ABS, 9),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_UDP,
            Some(Label::Accept),
            None,
        ),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_TCP,
            None,
            Some(Label::Drop),
        ),
        // A first fragment may not carry the flags: user space decides.
        Stmt(BPF_LD | BPF_H | BPF_ABS, 6),
        Jump(
            BPF_JMP | BPF_JSET | BPF_K,
            IPV4_MORE_FRAGMENTS,
            Some(Label::Accept),
            None,
        ),
        // X = IPv4 header length; A = TCP flags.
        Stmt(BPF_LDX | BPF_B | BPF_MSH, 0),
        Stmt(BPF_LD | BPF_B | BPF_IND, TCP_FLAGS_OFFSET),
        Always(Label::TcpFlags),
        // IPv6 (A still holds the ethertype).
        Here(Label::Ipv6),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            ETHERTYPE_IPV6,
            None,
            Some(Label::Drop),
        ),
        Stmt(BPF_LD | BPF_B | BPF_ABS, 6),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_UDP,
            Some(Label::Accept),
            None,
        ),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_TCP,
            None,
            Some(Label::Extension),
        ),
        Stmt(BPF_LD | BPF_B | BPF_ABS, IPV6_TCP_FLAGS),
        // A = TCP flags.
        Here(Label::TcpFlags),
    ];
    match variant {
        Variant::Probes => {
            p.push(Jump(
                BPF_JMP | BPF_JSET | BPF_K,
                TCP_ACK | TCP_RST,
                Some(Label::Drop),
                Some(Label::Accept),
            ));
        }
        Variant::WithAckFamily => p.extend([
            Jump(BPF_JMP | BPF_JSET | BPF_K, TCP_RST, Some(Label::Drop), None),
            Jump(
                BPF_JMP | BPF_JSET | BPF_K,
                TCP_ACK,
                None,
                Some(Label::Accept),
            ),
            Stmt(BPF_ALU | BPF_AND | BPF_K, TCP_SIX_FLAGS),
            Jump(
                BPF_JMP | BPF_JEQ | BPF_K,
                TCP_ACK,
                Some(Label::Accept),
                None,
            ),
            Jump(
                BPF_JMP | BPF_JEQ | BPF_K,
                TCP_ACK | TCP_FIN,
                Some(Label::Accept),
                Some(Label::Drop),
            ),
        ]),
    }
    // IPv6 next header (in A) is not TCP or UDP: keep extension headers, drop the rest.
    p.push(Here(Label::Extension));
    let last = IPV6_EXTENSION_HEADERS.len() - 1;
    for (i, header) in IPV6_EXTENSION_HEADERS.into_iter().enumerate() {
        let otherwise = (i == last).then_some(Label::Drop);
        p.push(Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            header,
            Some(Label::AcceptExtension),
            otherwise,
        ));
    }
    p.extend([
        Here(Label::AcceptExtension),
        Stmt(BPF_RET | BPF_K, EXTENSION_SNAPLEN),
        Here(Label::Accept),
        Stmt(BPF_RET | BPF_K, SNAPLEN),
        Here(Label::Drop),
        Stmt(BPF_RET | BPF_K, 0),
    ]);
    p
}

/// The assembled filter program for `variant`.
///
/// # Panics
///
/// Never for the programs defined here: a jump further than 255 instructions (impossible in
/// these short programs) would panic, and the unit tests assemble every variant.
///
/// # Examples
///
/// ```
/// use portsentry_core::capture::bpf::{program, Insn, Variant};
/// let insns: Vec<Insn> = program(Variant::Probes);
/// // Every program ends with "drop".
/// assert_eq!(insns.last().map(|i| i.k), Some(0));
/// ```
pub fn program(variant: Variant) -> Vec<Insn> {
    let lines = lines(variant);
    // Pass 1: the instruction index of every label.
    let mut positions: Vec<(Label, usize)> = Vec::new();
    let mut index = 0usize;
    for line in &lines {
        match line {
            Here(label) => positions.push((*label, index)),
            _ => index += 1,
        }
    }
    let position = |label: Label| -> usize {
        positions
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, at)| *at)
            .expect("every label used is defined")
    };
    // Pass 2: emit with relative offsets (from the instruction after the jump).
    let mut out = Vec::with_capacity(index);
    for line in &lines {
        let at = out.len();
        let offset = |target: Option<Label>| -> u32 {
            target.map_or(0, |l| {
                u32::try_from(position(l) - at - 1).expect("forward jump")
            })
        };
        let short = |target: Option<Label>| -> u8 {
            u8::try_from(offset(target)).expect("jump offset fits in 8 bits")
        };
        match *line {
            Here(_) => {}
            Stmt(code, k) => out.push(Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            }),
            Jump(code, k, jt, jf) => out.push(Insn {
                code,
                jt: short(jt),
                jf: short(jf),
                k,
            }),
            Always(target) => out.push(Insn {
                code: BPF_JMP | BPF_JA,
                jt: 0,
                jf: 0,
                k: offset(Some(target)),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// A tiny cBPF interpreter for the instructions our programs use, with the kernel's
    /// semantics: an out-of-bounds load ends the program with 0 (drop).
    fn run(program: &[Insn], packet: &[u8], pkttype: u32, ethertype: u32) -> u32 {
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut pc = 0usize;
        let load = |offset: u32, size: usize| -> Option<u32> {
            match offset {
                SKF_AD_PKTTYPE => return Some(pkttype),
                SKF_AD_PROTOCOL => return Some(ethertype),
                _ => {}
            }
            let start = usize::try_from(offset).ok()?;
            let bytes = packet.get(start..start.checked_add(size)?)?;
            Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
        };
        loop {
            let insn = program[pc];
            pc += 1;
            let size = match insn.code & 0x18 {
                BPF_W => 4,
                BPF_H => 2,
                _ => 1,
            };
            match insn.code & 0x07 {
                BPF_LD => {
                    let offset = match insn.code & 0xe0 {
                        BPF_ABS => insn.k,
                        BPF_IND => x.wrapping_add(insn.k),
                        other => panic!("unsupported ld mode {other:#x}"),
                    };
                    match load(offset, size) {
                        Some(v) => a = v,
                        None => return 0,
                    }
                }
                BPF_LDX => {
                    assert_eq!(insn.code & 0xe0, BPF_MSH);
                    match load(insn.k, 1) {
                        Some(v) => x = (v & 0xf) * 4,
                        None => return 0,
                    }
                }
                BPF_ALU => {
                    assert_eq!(insn.code & 0xf0, BPF_AND);
                    a &= insn.k;
                }
                BPF_JMP => {
                    let taken = match insn.code & 0xf0 {
                        BPF_JA => {
                            pc += insn.k as usize;
                            continue;
                        }
                        BPF_JEQ => a == insn.k,
                        BPF_JSET => a & insn.k != 0,
                        other => panic!("unsupported jump {other:#x}"),
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                BPF_RET => return insn.k,
                other => panic!("unsupported class {other:#x}"),
            }
        }
    }

    const SRC4: [u8; 4] = [203, 0, 113, 1];
    const DST4: [u8; 4] = [203, 0, 113, 2];
    const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn tcp4(flags: u8) -> Vec<u8> {
        let builder = PacketBuilder::ipv4(SRC4, DST4, 64).tcp(40000, 22, 1, 1024);
        let mut out = Vec::new();
        builder.write(&mut out, &[]).unwrap();
        out[20 + 13] = flags;
        out
    }

    fn tcp6(flags: u8) -> Vec<u8> {
        let builder = PacketBuilder::ipv6(SRC6, DST6, 64).tcp(40000, 22, 1, 1024);
        let mut out = Vec::new();
        builder.write(&mut out, &[]).unwrap();
        out[40 + 13] = flags;
        out
    }

    fn udp4() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(SRC4, DST4, 64)
            .udp(40000, 53)
            .write(&mut out, b"x")
            .unwrap();
        out
    }

    fn udp6() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv6(SRC6, DST6, 64)
            .udp(40000, 53)
            .write(&mut out, b"x")
            .unwrap();
        out
    }

    fn v4(p: &[Insn], packet: &[u8]) -> u32 {
        run(p, packet, PACKET_HOST, ETHERTYPE_IPV4)
    }

    fn v6(p: &[Insn], packet: &[u8]) -> u32 {
        run(p, packet, PACKET_HOST, ETHERTYPE_IPV6)
    }

    const SYN: u8 = 0x02;
    const FIN: u8 = 0x01;
    const PSH: u8 = 0x08;
    const URG: u8 = 0x20;
    const ACK: u8 = 0x10;
    const RST: u8 = 0x04;
    const ECE: u8 = 0x40;

    #[test]
    fn every_jump_stays_inside_the_program() {
        for variant in [Variant::Probes, Variant::WithAckFamily] {
            let p = program(variant);
            for (i, insn) in p.iter().enumerate() {
                if insn.code & 0x07 == BPF_JMP {
                    let (a, b) = if insn.code & 0xf0 == BPF_JA {
                        (insn.k as usize, insn.k as usize)
                    } else {
                        (usize::from(insn.jt), usize::from(insn.jf))
                    };
                    assert!(i + 1 + a.max(b) < p.len(), "{variant:?} insn {i}");
                }
            }
            assert_eq!(p.last().unwrap().code, BPF_RET | BPF_K);
        }
    }

    #[test]
    fn probes_program_keeps_scans_and_drops_ordinary_tcp() {
        let p = program(Variant::Probes);
        for flags in [SYN, FIN, 0, FIN | PSH | URG, SYN | FIN, ECE] {
            assert_eq!(v4(&p, &tcp4(flags)), SNAPLEN, "v4 flags {flags:#x}");
            assert_eq!(v6(&p, &tcp6(flags)), SNAPLEN, "v6 flags {flags:#x}");
        }
        for flags in [
            ACK,
            SYN | ACK,
            FIN | ACK,
            PSH | ACK,
            RST,
            RST | ACK,
            ACK | ECE,
        ] {
            assert_eq!(v4(&p, &tcp4(flags)), 0, "v4 flags {flags:#x}");
            assert_eq!(v6(&p, &tcp6(flags)), 0, "v6 flags {flags:#x}");
        }
        assert_eq!(v4(&p, &udp4()), SNAPLEN);
        assert_eq!(v6(&p, &udp6()), SNAPLEN);
    }

    #[test]
    fn ack_family_program_also_keeps_bare_ack_and_fin_ack() {
        let p = program(Variant::WithAckFamily);
        for flags in [SYN, FIN, 0, FIN | PSH | URG, ACK, FIN | ACK, ACK | ECE] {
            assert_eq!(v4(&p, &tcp4(flags)), SNAPLEN, "v4 flags {flags:#x}");
            assert_eq!(v6(&p, &tcp6(flags)), SNAPLEN, "v6 flags {flags:#x}");
        }
        for flags in [SYN | ACK, PSH | ACK, RST, RST | ACK, FIN | PSH | ACK] {
            assert_eq!(v4(&p, &tcp4(flags)), 0, "v4 flags {flags:#x}");
            assert_eq!(v6(&p, &tcp6(flags)), 0, "v6 flags {flags:#x}");
        }
        assert_eq!(v4(&p, &udp4()), SNAPLEN);
    }

    #[test]
    fn frames_not_for_this_host_and_other_protocols_are_dropped() {
        for variant in [Variant::Probes, Variant::WithAckFamily] {
            let p = program(variant);
            // PACKET_BROADCAST (1), PACKET_MULTICAST (2), PACKET_OTHERHOST (3), OUTGOING (4).
            for pkttype in 1..=4 {
                assert_eq!(run(&p, &tcp4(SYN), pkttype, ETHERTYPE_IPV4), 0);
                assert_eq!(run(&p, &udp6(), pkttype, ETHERTYPE_IPV6), 0);
            }
            // ARP, and an IPv4 header under a foreign ethertype.
            assert_eq!(run(&p, &[0u8; 28], PACKET_HOST, 0x0806), 0);
            assert_eq!(run(&p, &tcp4(SYN), PACKET_HOST, 0x8100), 0);
            // ICMP and ICMPv6.
            let mut icmp = tcp4(SYN);
            icmp[9] = 1;
            assert_eq!(v4(&p, &icmp), 0);
            let mut icmp6 = tcp6(SYN);
            icmp6[6] = 58;
            assert_eq!(v6(&p, &icmp6), 0);
            // IPv6 "no next header".
            icmp6[6] = 59;
            assert_eq!(v6(&p, &icmp6), 0);
        }
    }

    #[test]
    fn ipv4_fragments_first_kept_later_dropped() {
        let p = program(Variant::Probes);
        // A first fragment with a cut TCP header (nmap -f: 8 bytes of TCP).
        let mut first = tcp4(SYN);
        first[6] = 0x20; // MF, offset 0
        first.truncate(28);
        assert_eq!(v4(&p, &first), SNAPLEN);
        // Even a first fragment whose flags say ACK goes to user space.
        let mut first_ack = tcp4(ACK);
        first_ack[6] = 0x20;
        assert_eq!(v4(&p, &first_ack), SNAPLEN);
        // Later fragments (offset 1 = 8 bytes; with and without MF) are dropped.
        for (hi, lo) in [(0x20, 0x01), (0x00, 0x01), (0x1f, 0xff)] {
            let mut later = tcp4(SYN);
            later[6] = hi;
            later[7] = lo;
            assert_eq!(v4(&p, &later), 0, "{hi:#x} {lo:#x}");
            let mut later_udp = udp4();
            later_udp[6] = hi;
            later_udp[7] = lo;
            assert_eq!(v4(&p, &later_udp), 0);
        }
        // Don't-Fragment alone is not a fragment.
        let mut df = tcp4(SYN);
        df[6] = 0x40;
        assert_eq!(v4(&p, &df), SNAPLEN);
    }

    #[test]
    fn ipv4_options_move_the_tcp_flags() {
        let p = program(Variant::Probes);
        // Hand-built: IHL 6 (one 4-byte option: NOPs), then a TCP header with ACK.
        let plain = tcp4(ACK);
        let mut with_options = plain[..20].to_vec();
        with_options[0] = 0x46;
        with_options.extend_from_slice(&[1, 1, 1, 1]);
        with_options.extend_from_slice(&plain[20..]);
        assert_eq!(v4(&p, &with_options), 0);
        with_options[24 + 13] = SYN;
        assert_eq!(v4(&p, &with_options), SNAPLEN);
    }

    #[test]
    fn ipv6_extension_headers_go_to_user_space() {
        for variant in [Variant::Probes, Variant::WithAckFamily] {
            let p = program(variant);
            for header in IPV6_EXTENSION_HEADERS {
                let mut packet = tcp6(ACK);
                packet[6] = u8::try_from(header).unwrap();
                assert_eq!(v6(&p, &packet), EXTENSION_SNAPLEN, "next header {header}");
            }
        }
    }

    #[test]
    fn truncated_headers_are_dropped_not_misread() {
        let p = program(Variant::Probes);
        let mut short = tcp4(SYN);
        short.truncate(30); // no flags byte, not a fragment
        assert_eq!(v4(&p, &short), 0);
        assert_eq!(v4(&p, &[]), 0);
        assert_eq!(v6(&p, &[0x60]), 0);
    }
}
