//! The classic BPF programs attached to the capture socket.
//!
//! The socket is `AF_PACKET`/`SOCK_DGRAM`, so every program sees a frame that starts at the
//! IP header (offset 0 = first byte of the IPv4 or IPv6 header). The link-layer facts the
//! programs need come from the kernel's ancillary loads: the packet type (`PACKET_HOST`,
//! `PACKET_OUTGOING`, ...) and the ethertype.
//!
//! What a program keeps (returns a snap length for) and drops (returns 0) of the frames
//! addressed to this host (`PACKET_HOST`), the possible probes:
//!
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
//! Of the frames this host sends (`PACKET_OUTGOING`), [`Outgoing`] says what is kept: by
//! default only the host's *answers* and the start of its own flows, in narrow terms, so that
//! ordinary outgoing traffic never leaves the kernel:
//!
//! * TCP with SYN set (the host's SYN-ACK answers, the SYN of a connection it opens) and its
//!   resets of segments without ACK (RST+ACK: the answer to a SYN, FIN, NULL or XMAS probe;
//!   with [`Variant::WithAckFamily`] every reset, the answer to an ACK probe too), from a
//!   local port of the TCP port set, so a flood of bare ACKs costs no frame;
//! * UDP from a local port of the UDP port set (a reply to a probe, or a query the host sends
//!   from that port and whose answer would otherwise look like a probe);
//! * ICMP destination unreachable (type 3) and ICMPv6 destination unreachable (type 1), with
//!   the longer snap length so the quoted packet is whole;
//! * never a later IPv4 fragment, never IPv6 with extension headers, nothing broadcast,
//!   multicast or promiscuous.
//!
//! A local port matters only when it is a monitored one: an answer from an unmonitored port
//! answers no probe the detector counts, and a reply to a flow from an unmonitored port is no
//! probe either. So the port sets given are the monitored ports of the active modes
//! ([`Outgoing::FromPorts`]); [`Outgoing::AnyPort`] keeps the answers from every port.
//!
//! [`Incoming::ToPorts`] also keeps only the probes to the ports some mode watches (IPv4 first
//! fragments and IPv6 extension-header chains still go to user space), so the kernel drops
//! what no mode watches, as PortSentry 2.0's pcap filter did.
//!
//! Port sets are compiled into a binary search over their runs of consecutive ports (about
//! 2·log₂(runs) comparisons per packet, five instructions per run); the sets of one program
//! share a budget of [`MAX_PORT_RUNS`] runs, and a set that does not fit is not compiled:
//! every port passes (user space decides then, as it always does anyway).
//!
//! The programs are assembled by [`program`] from symbolic labels, so jump offsets are
//! computed rather than counted by hand; the unit tests run them over crafted packets in a
//! small cBPF interpreter and check the result of every rule above, and the capture tests
//! attach them to real sockets (the kernel's checker) and send real frames through them.

use std::collections::HashMap;

use crate::ports::PortSet;

/// The snap length kept of an ordinary probe: enough for an IPv4 header with options
/// (60 bytes) plus the TCP header with options (60 bytes).
pub const SNAPLEN: u32 = 128;

/// The snap length kept of an IPv6 packet with extension headers, so the classifier can walk
/// the chain to the transport header.
pub const EXTENSION_SNAPLEN: u32 = 512;

/// The most runs of consecutive ports compiled into one program, all port sets together
/// (five instructions each, within the kernel's 4096). The sets are compiled in the order
/// inbound TCP, inbound UDP, outgoing TCP, outgoing UDP; a set whose runs no longer fit
/// passes every port (user space decides, as it always does).
pub const MAX_PORT_RUNS: usize = 750;

/// Which inbound filter to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// PortSentry's rule: TCP with ACK or RST set never reaches user space.
    Probes,
    /// As [`Variant::Probes`], and also a bare ACK and a FIN+ACK (flags ignoring ECE/CWR).
    WithAckFamily,
}

/// What the filter keeps of the frames this host sends (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outgoing {
    /// Nothing: the host's own frames are all dropped.
    Nothing,
    /// The answers and flow starts described in the module docs, from any local port.
    AnyPort,
    /// The same, only from these local ports (the monitored ones): `tcp` for TCP, `udp` for
    /// UDP. ICMP unreachable answers are kept whatever they quote.
    FromPorts {
        /// Local TCP ports whose SYN, SYN-ACK and RST are kept.
        tcp: PortSet,
        /// Local UDP ports whose datagrams are kept.
        udp: PortSet,
    },
}

/// A whole filter: the inbound [`Variant`] and what is kept of the host's own frames.
///
/// # Examples
///
/// ```
/// use portsentry_core::capture::bpf::{program, Filter, Incoming, Outgoing, Variant};
/// use portsentry_core::PortSet;
/// let filter = Filter {
///     variant: Variant::Probes,
///     incoming: Incoming::ToPorts { tcp: PortSet::parse("1-1023").unwrap(), udp: PortSet::new() },
///     outgoing: Outgoing::FromPorts { tcp: PortSet::parse("1-1023").unwrap(), udp: PortSet::new() },
/// };
/// let insns = program(&filter);
/// assert!(insns.len() < 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// What is kept of the frames addressed to this host, by their flags.
    pub variant: Variant,
    /// Which destination ports of the frames addressed to this host are kept.
    pub incoming: Incoming,
    /// What is kept of the frames this host sends.
    pub outgoing: Outgoing,
}

impl Filter {
    /// The filter of `variant` for probes to every port, and the host's answers from every
    /// local port.
    pub fn new(variant: Variant) -> Self {
        Self {
            variant,
            incoming: Incoming::AnyPort,
            outgoing: Outgoing::AnyPort,
        }
    }
}

/// Which destination ports of the frames addressed to this host the filter keeps.
///
/// IPv4 first fragments (the port may be cut) and IPv6 packets with extension headers go to
/// user space whatever their port.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Every port.
    AnyPort,
    /// Only TCP segments to `tcp` and UDP datagrams to `udp` (the ports some mode watches):
    /// the kernel drops what no mode watches.
    ToPorts {
        /// TCP destination ports kept.
        tcp: PortSet,
        /// UDP destination ports kept.
        udp: PortSet,
    },
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
/// `PACKET_OUTGOING`: a frame this host sends.
const PACKET_OUTGOING: u32 = 4;
const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const IPPROTO_ICMP: u32 = 1;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_ICMPV6: u32 = 58;
/// ICMP "destination unreachable".
const ICMP_UNREACHABLE: u32 = 3;
/// ICMPv6 "destination unreachable".
const ICMPV6_UNREACHABLE: u32 = 1;
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
/// The fixed IPv6 header.
const IPV6_HEADER: u32 = 40;
const TCP_FIN: u32 = 0x01;
const TCP_SYN: u32 = 0x02;
const TCP_RST: u32 = 0x04;
const TCP_ACK: u32 = 0x10;
/// The six classic flags (FIN SYN RST PSH ACK URG), without ECE and CWR.
const TCP_SIX_FLAGS: u32 = 0x3f;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_IMM: u16 = 0x00;
pub(crate) const BPF_JGE: u16 = 0x30;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Label {
    Ipv6,
    TcpFlags,
    Extension,
    AcceptExtension,
    Accept,
    Drop,
    Outgoing,
    OutgoingIpv6,
    OutTcp,
    OutTcpLoad,
    OutUdp,
    /// A = a local TCP port: the TCP port test.
    OutTcpPort,
    /// A = a local UDP port: the UDP port test.
    OutUdpPort,
    /// The outgoing part's returns (jumps only run forward, at most 255 when conditional).
    OutAcceptLong,
    OutDrop,
    OutAccept,
    OutPortDrop,
    /// A probe by its flags (TCP) or a datagram: load the destination port.
    InTcp,
    InUdp,
    /// A = a destination port: the inbound port tests and their returns.
    InTcpPort,
    InUdpPort,
    InPortAccept,
    InPortDrop,
    /// The right half of a port-test tree node: (test, run index).
    Node(u8, u16),
}

/// One line of the symbolic program.
enum Line {
    /// A statement (load, ALU, return): `code`, `k`.
    Stmt(u16, u32),
    /// A conditional jump on `k` with symbolic targets (`None`: the next instruction).
    Jump(u16, u32, Option<Label>, Option<Label>),
    /// A conditional jump with literal (short, local) offsets.
    Skip(u16, u32, u8, u8),
    /// An unconditional jump.
    Always(Label),
    /// Marks where a label points.
    Here(Label),
}

use Line::{Always, Here, Jump, Skip, Stmt};

/// The inbound part: frames addressed to this host (A holds nothing useful on entry).
///
/// X holds the transport header's offset once the IP version is known (the IPv4 header
/// length, or 40 for IPv6), so the TCP flags and the destination port are read the same way
/// for both.
fn inbound_lines(variant: Variant) -> Vec<Line> {
    let mut p = vec![
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
        // X = IPv4 header length.
        Stmt(BPF_LDX | BPF_B | BPF_MSH, 0),
        // IPv4 protocol: UDP and TCP examined, the rest dropped.
        Stmt(BPF_LD | BPF_B | BPF_ABS, 9),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_UDP,
            Some(Label::InUdp),
            None,
        ),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_TCP,
            None,
            Some(Label::Drop),
        ),
        // A first fragment may not carry the flags (nor the port): user space decides.
        Stmt(BPF_LD | BPF_H | BPF_ABS, 6),
        Jump(
            BPF_JMP | BPF_JSET | BPF_K,
            IPV4_MORE_FRAGMENTS,
            Some(Label::Accept),
            None,
        ),
        Always(Label::TcpFlags),
        // IPv6 (A still holds the ethertype).
        Here(Label::Ipv6),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            ETHERTYPE_IPV6,
            None,
            Some(Label::Drop),
        ),
        Stmt(BPF_LDX | BPF_W | BPF_IMM, IPV6_HEADER),
        Stmt(BPF_LD | BPF_B | BPF_ABS, 6),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_UDP,
            Some(Label::InUdp),
            None,
        ),
        Jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            IPPROTO_TCP,
            None,
            Some(Label::Extension),
        ),
        // A = TCP flags.
        Here(Label::TcpFlags),
        Stmt(BPF_LD | BPF_B | BPF_IND, TCP_FLAGS_OFFSET),
    ];
    match variant {
        Variant::Probes => {
            p.push(Jump(
                BPF_JMP | BPF_JSET | BPF_K,
                TCP_ACK | TCP_RST,
                Some(Label::Drop),
                Some(Label::InTcp),
            ));
        }
        Variant::WithAckFamily => p.extend([
            Jump(BPF_JMP | BPF_JSET | BPF_K, TCP_RST, Some(Label::Drop), None),
            Jump(
                BPF_JMP | BPF_JSET | BPF_K,
                TCP_ACK,
                None,
                Some(Label::InTcp),
            ),
            Stmt(BPF_ALU | BPF_AND | BPF_K, TCP_SIX_FLAGS),
            Jump(BPF_JMP | BPF_JEQ | BPF_K, TCP_ACK, Some(Label::InTcp), None),
            Jump(
                BPF_JMP | BPF_JEQ | BPF_K,
                TCP_ACK | TCP_FIN,
                Some(Label::InTcp),
                Some(Label::Drop),
            ),
        ]),
    }
    // A probe by its flags: A = the destination port, then the port tests (far away).
    p.extend([
        Here(Label::InTcp),
        Stmt(BPF_LD | BPF_H | BPF_IND, 2),
        Always(Label::InTcpPort),
        Here(Label::InUdp),
        Stmt(BPF_LD | BPF_H | BPF_IND, 2),
        Always(Label::InUdpPort),
    ]);
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
    p
}

/// The outgoing part: frames this host sends (see the module docs).
fn outgoing_lines(variant: Variant, outgoing: &Outgoing, budget: &mut usize) -> Vec<Line> {
    let jeq =
        |k, yes: Option<Label>, no: Option<Label>| Jump(BPF_JMP | BPF_JEQ | BPF_K, k, yes, no);
    let jset =
        |k, yes: Option<Label>, no: Option<Label>| Jump(BPF_JMP | BPF_JSET | BPF_K, k, yes, no);
    let mut p = vec![
        // A still holds the packet type.
        Here(Label::Outgoing),
        jeq(PACKET_OUTGOING, None, Some(Label::OutDrop)),
        Stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_PROTOCOL),
        jeq(ETHERTYPE_IPV4, None, Some(Label::OutgoingIpv6)),
        // IPv4: later fragments carry no ports. X = the IPv4 header length.
        Stmt(BPF_LD | BPF_H | BPF_ABS, 6),
        jset(IPV4_FRAGMENT_OFFSET_MASK, Some(Label::OutDrop), None),
        Stmt(BPF_LDX | BPF_B | BPF_MSH, 0),
        Stmt(BPF_LD | BPF_B | BPF_ABS, 9),
        jeq(IPPROTO_TCP, Some(Label::OutTcp), None),
        jeq(IPPROTO_UDP, Some(Label::OutUdp), None),
        jeq(IPPROTO_ICMP, None, Some(Label::OutDrop)),
        Stmt(BPF_LD | BPF_B | BPF_IND, 0),
        jeq(
            ICMP_UNREACHABLE,
            Some(Label::OutAcceptLong),
            Some(Label::OutDrop),
        ),
        // IPv6 (A holds the ethertype): only headers right after the fixed one. X = 40.
        Here(Label::OutgoingIpv6),
        jeq(ETHERTYPE_IPV6, None, Some(Label::OutDrop)),
        Stmt(BPF_LDX | BPF_W | BPF_IMM, IPV6_HEADER),
        Stmt(BPF_LD | BPF_B | BPF_ABS, 6),
        jeq(IPPROTO_TCP, Some(Label::OutTcp), None),
        jeq(IPPROTO_UDP, Some(Label::OutUdp), None),
        jeq(IPPROTO_ICMPV6, None, Some(Label::OutDrop)),
        Stmt(BPF_LD | BPF_B | BPF_ABS, IPV6_HEADER),
        jeq(
            ICMPV6_UNREACHABLE,
            Some(Label::OutAcceptLong),
            Some(Label::OutDrop),
        ),
        // TCP: SYN (a flow start, or SYN-ACK: open) always; RST only as the answer to a
        // segment without ACK (then it carries ACK), unless ACK-family probes count too.
        Here(Label::OutTcp),
        Stmt(BPF_LD | BPF_B | BPF_IND, TCP_FLAGS_OFFSET),
        jset(TCP_SYN, Some(Label::OutTcpLoad), None),
        jset(TCP_RST, None, Some(Label::OutDrop)),
    ];
    if variant == Variant::Probes {
        // A RST without ACK answers a segment with ACK: no probe this filter passes.
        p.push(jset(TCP_ACK, None, Some(Label::OutDrop)));
    }
    p.extend([
        Here(Label::OutTcpLoad),
        Stmt(BPF_LD | BPF_H | BPF_IND, 0),
        Always(Label::OutTcpPort),
        Here(Label::OutUdp),
        Stmt(BPF_LD | BPF_H | BPF_IND, 0),
        Always(Label::OutUdpPort),
    ]);
    let (tcp, udp) = match outgoing {
        Outgoing::FromPorts { tcp, udp } => (Some(tcp), Some(udp)),
        Outgoing::AnyPort | Outgoing::Nothing => (None, None),
    };
    p.extend([
        Here(Label::OutAcceptLong),
        Stmt(BPF_RET | BPF_K, EXTENSION_SNAPLEN),
        Here(Label::OutDrop),
        Stmt(BPF_RET | BPF_K, 0),
        Here(Label::OutTcpPort),
    ]);
    port_test(&mut p, tcp, budget, 2, Label::OutAccept, Label::OutPortDrop);
    p.push(Here(Label::OutUdpPort));
    port_test(&mut p, udp, budget, 3, Label::OutAccept, Label::OutPortDrop);
    p.extend([
        Here(Label::OutAccept),
        Stmt(BPF_RET | BPF_K, SNAPLEN),
        Here(Label::OutPortDrop),
        Stmt(BPF_RET | BPF_K, 0),
    ]);
    p
}

/// Appends a test of the port in A against `set` (`None`: every port passes), jumping to
/// `yes` or `no`; `tag` tells this test's labels from the other tests' of the program.
///
/// The runs of consecutive ports are searched as a balanced binary tree: at each node, "above
/// the run" goes right, "inside it" to `yes`, "below" left, so a set of n runs costs about
/// 2·log₂(n) comparisons per packet (a list of 40 ports: 12), and the advanced modes' few
/// long ranges one or two. Each run takes five instructions, every far jump unconditional
/// (32-bit). The runs come out of `budget`; a set with more runs than are left passes every
/// port.
fn port_test(
    p: &mut Vec<Line>,
    set: Option<&PortSet>,
    budget: &mut usize,
    tag: u8,
    yes: Label,
    no: Label,
) {
    let runs: Vec<(u16, u16)> = set.map(|s| s.ranges().collect()).unwrap_or_default();
    if set.is_none() || runs.len() > *budget || runs == [(0, u16::MAX)] {
        p.push(Always(yes));
        return;
    }
    *budget -= runs.len();
    search_tree(p, &runs, 0, tag, yes, no);
}

/// One node of [`port_test`]'s tree: `runs` sorted and disjoint, `base` the index of its
/// first run in the whole set (to name the labels).
fn search_tree(
    p: &mut Vec<Line>,
    runs: &[(u16, u16)],
    base: usize,
    tag: u8,
    yes: Label,
    no: Label,
) {
    let Some(&(first, last)) = runs.get(runs.len() / 2) else {
        p.push(Always(no));
        return;
    };
    let mid = runs.len() / 2;
    let right = Label::Node(tag, u16::try_from(base + mid).unwrap_or(u16::MAX));
    p.extend([
        // A > last: the right half.
        Skip(BPF_JMP | BPF_JGT | BPF_K, u32::from(last), 0, 1),
        Always(right),
        // first <= A <= last: in the set; A < first: the left half.
        Skip(BPF_JMP | BPF_JGE | BPF_K, u32::from(first), 0, 1),
        Always(yes),
    ]);
    search_tree(p, &runs[..mid], base, tag, yes, no);
    p.push(Here(right));
    search_tree(p, &runs[mid + 1..], base + mid + 1, tag, yes, no);
}

/// The symbolic program for `filter`.
///
/// Layout: the inbound part and its returns, then (unless [`Outgoing::Nothing`]) the
/// outgoing part, its header returns, its port tests and their returns. Jumps run forward
/// only and conditional ones reach at most 255 instructions, so each part ends with its own
/// returns; the port tests reach theirs with 32-bit unconditional jumps.
fn lines(filter: &Filter) -> Vec<Line> {
    let hear_outgoing = filter.outgoing != Outgoing::Nothing;
    let not_host = if hear_outgoing {
        Label::Outgoing
    } else {
        Label::Drop
    };
    let mut p = vec![
        // A = packet type: frames addressed to this host first; the others jump past the
        // inbound part (far: an unconditional jump).
        Stmt(BPF_LD | BPF_W | BPF_ABS, SKF_AD_PKTTYPE),
        Skip(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, 1, 0),
        Always(not_host),
    ];
    p.extend(inbound_lines(filter.variant));
    p.extend([
        Here(Label::AcceptExtension),
        Stmt(BPF_RET | BPF_K, EXTENSION_SNAPLEN),
        Here(Label::Accept),
        Stmt(BPF_RET | BPF_K, SNAPLEN),
        Here(Label::Drop),
        Stmt(BPF_RET | BPF_K, 0),
    ]);
    let (tcp, udp) = match &filter.incoming {
        Incoming::ToPorts { tcp, udp } => (Some(tcp), Some(udp)),
        Incoming::AnyPort => (None, None),
    };
    // The kernel takes at most 4096 instructions: the sets share a budget of runs, in the
    // order of their cost if left out (inbound first: what the kernel drops for free).
    let mut budget = MAX_PORT_RUNS;
    p.push(Here(Label::InTcpPort));
    port_test(
        &mut p,
        tcp,
        &mut budget,
        0,
        Label::InPortAccept,
        Label::InPortDrop,
    );
    p.push(Here(Label::InUdpPort));
    port_test(
        &mut p,
        udp,
        &mut budget,
        1,
        Label::InPortAccept,
        Label::InPortDrop,
    );
    p.extend([
        Here(Label::InPortAccept),
        Stmt(BPF_RET | BPF_K, SNAPLEN),
        Here(Label::InPortDrop),
        Stmt(BPF_RET | BPF_K, 0),
    ]);
    if hear_outgoing {
        p.extend(outgoing_lines(
            filter.variant,
            &filter.outgoing,
            &mut budget,
        ));
    }
    p
}

/// The assembled filter program for `filter`.
///
/// # Panics
///
/// Never for the programs defined here: every conditional jump with a symbolic target stays
/// within a few dozen instructions (the port tests use only local jumps and 32-bit
/// unconditional ones), and the unit tests assemble every shape, the longest port sets
/// included.
///
/// # Examples
///
/// ```
/// use portsentry_core::capture::bpf::{program, Filter, Insn, Variant};
/// let insns: Vec<Insn> = program(&Filter::new(Variant::Probes));
/// // Every program ends with "drop".
/// assert_eq!(insns.last().map(|i| i.k), Some(0));
/// ```
pub fn program(filter: &Filter) -> Vec<Insn> {
    let lines = lines(filter);
    // Pass 1: the instruction index of every label.
    let mut positions: HashMap<Label, usize> = HashMap::new();
    let mut index = 0usize;
    for line in &lines {
        match line {
            Here(label) => {
                positions.insert(*label, index);
            }
            _ => index += 1,
        }
    }
    let position =
        |label: Label| -> usize { *positions.get(&label).expect("every label used is defined") };
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
            Skip(code, k, jt, jf) => out.push(Insn { code, jt, jf, k }),
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
pub(crate) mod tests {
    use super::*;
    use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};

    /// A tiny cBPF interpreter for the instructions our programs use, with the kernel's
    /// semantics: an out-of-bounds load ends the program with 0 (drop).
    pub(super) fn run(program: &[Insn], packet: &[u8], pkttype: u32, ethertype: u32) -> u32 {
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
                BPF_LDX => match insn.code & 0xe0 {
                    BPF_MSH => match load(insn.k, 1) {
                        Some(v) => x = (v & 0xf) * 4,
                        None => return 0,
                    },
                    BPF_IMM => x = insn.k,
                    other => panic!("unsupported ldx mode {other:#x}"),
                },
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
                        BPF_JGT => a > insn.k,
                        BPF_JGE => a >= insn.k,
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

    /// Runs `p` over `packet` as a frame of `pkttype`, the ethertype read from its version.
    pub(super) fn run_as(p: &[Insn], packet: &[u8], pkttype: u32) -> u32 {
        let ethertype = if packet.first().is_some_and(|b| b >> 4 == 6) {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        run(p, packet, pkttype, ethertype)
    }

    /// The IP layer between the peer (203.0.113.1, 2001:db8::1) and the host (.2, ::2).
    pub(super) fn between(v6: bool, from_host: bool) -> PacketBuilderStep<IpHeaders> {
        let (peer4, host4) = (SRC4, DST4);
        let (peer6, host6) = (SRC6, DST6);
        match (v6, from_host) {
            (false, false) => PacketBuilder::ipv4(peer4, host4, 64),
            (false, true) => PacketBuilder::ipv4(host4, peer4, 64),
            (true, false) => PacketBuilder::ipv6(peer6, host6, 64),
            (true, true) => PacketBuilder::ipv6(host6, peer6, 64),
        }
    }

    /// A TCP segment with `flags` (the checksum is not redone: filters do not read it).
    pub(super) fn segment(v6: bool, from_host: bool, ports: (u16, u16), flags: u8) -> Vec<u8> {
        let mut packet = Vec::new();
        between(v6, from_host)
            .tcp(ports.0, ports.1, 1, 1024)
            .write(&mut packet, &[])
            .unwrap();
        packet[if v6 { 53 } else { 33 }] = flags;
        packet
    }

    /// A UDP datagram.
    pub(super) fn datagram(v6: bool, from_host: bool, ports: (u16, u16)) -> Vec<u8> {
        let mut packet = Vec::new();
        between(v6, from_host)
            .udp(ports.0, ports.1)
            .write(&mut packet, b"x")
            .unwrap();
        packet
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
        for filter in every_filter() {
            let p = program(&filter);
            assert!(p.len() <= 4096, "BPF_MAXINSNS: {}", p.len());
            for (i, insn) in p.iter().enumerate() {
                if insn.code & 0x07 == BPF_JMP {
                    let (a, b) = if insn.code & 0xf0 == BPF_JA {
                        (insn.k as usize, insn.k as usize)
                    } else {
                        (usize::from(insn.jt), usize::from(insn.jf))
                    };
                    assert!(i + 1 + a.max(b) < p.len(), "insn {i} of {filter:?}");
                }
            }
            assert_eq!(p.last().unwrap().code, BPF_RET | BPF_K);
        }
    }

    /// Port sets of every shape: lists, the advanced modes' ranges, all, none, the longest
    /// compiled and one run too many.
    pub(crate) fn port_sets() -> Vec<PortSet> {
        vec![
            PortSet::parse("1,7,9,11,15,79,111,119,143,540,635,1080,32771-32774").unwrap(),
            PortSet::advanced(1024, &PortSet::parse("113,139").unwrap()),
            (0..=u16::MAX).collect(),
            PortSet::new(),
            (0..2 * MAX_PORT_RUNS as u16).step_by(2).collect(),
            (0..=2 * MAX_PORT_RUNS as u16 + 2).step_by(2).collect(),
        ]
    }

    /// Every shape of filter: both variants, each incoming and outgoing choice.
    pub(crate) fn every_filter() -> Vec<Filter> {
        let sets = port_sets();
        let mut out = Vec::new();
        for variant in [Variant::Probes, Variant::WithAckFamily] {
            let mut incoming = vec![Incoming::AnyPort];
            let mut outgoing = vec![Outgoing::Nothing, Outgoing::AnyPort];
            for (i, set) in sets.iter().enumerate() {
                let other = sets[(i + 1) % sets.len()].clone();
                incoming.push(Incoming::ToPorts {
                    tcp: set.clone(),
                    udp: other.clone(),
                });
                outgoing.push(Outgoing::FromPorts {
                    tcp: other,
                    udp: set.clone(),
                });
            }
            for incoming in &incoming {
                for outgoing in &outgoing {
                    out.push(Filter {
                        variant,
                        incoming: incoming.clone(),
                        outgoing: outgoing.clone(),
                    });
                }
            }
        }
        out
    }

    #[test]
    fn probes_program_keeps_scans_and_drops_ordinary_tcp() {
        let p = program(&Filter::new(Variant::Probes));
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
        let p = program(&Filter::new(Variant::WithAckFamily));
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
            let p = program(&Filter::new(variant));
            // PACKET_BROADCAST (1), PACKET_MULTICAST (2), PACKET_OTHERHOST (3), and the
            // host's own frames (4) when the filter hears none.
            for pkttype in 1..=3 {
                assert_eq!(run(&p, &tcp4(SYN), pkttype, ETHERTYPE_IPV4), 0);
                assert_eq!(run(&p, &udp6(), pkttype, ETHERTYPE_IPV6), 0);
            }
            let deaf = program(&Filter {
                variant,
                incoming: Incoming::AnyPort,
                outgoing: Outgoing::Nothing,
            });
            assert_eq!(run(&deaf, &tcp4(SYN), PACKET_OUTGOING, ETHERTYPE_IPV4), 0);
            assert_eq!(run(&deaf, &udp6(), PACKET_OUTGOING, ETHERTYPE_IPV6), 0);
            assert_eq!(v4(&deaf, &tcp4(SYN)), SNAPLEN);
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
        let p = program(&Filter::new(Variant::Probes));
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
        let p = program(&Filter::new(Variant::Probes));
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
            let p = program(&Filter::new(variant));
            for header in IPV6_EXTENSION_HEADERS {
                let mut packet = tcp6(ACK);
                packet[6] = u8::try_from(header).unwrap();
                assert_eq!(v6(&p, &packet), EXTENSION_SNAPLEN, "next header {header}");
            }
        }
    }

    #[test]
    fn truncated_headers_are_dropped_not_misread() {
        let p = program(&Filter::new(Variant::Probes));
        let mut short = tcp4(SYN);
        short.truncate(30); // no flags byte, not a fragment
        assert_eq!(v4(&p, &short), 0);
        assert_eq!(v4(&p, &[]), 0);
        assert_eq!(v6(&p, &[0x60]), 0);
    }
}

#[cfg(test)]
mod outgoing_tests {
    use super::tests::{between, datagram, run_as, segment};
    use super::*;
    use proptest::prelude::*;

    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;

    fn out(p: &[Insn], packet: &[u8]) -> u32 {
        run_as(p, packet, PACKET_OUTGOING)
    }

    fn tcp(v6: bool, local_port: u16, flags: u8) -> Vec<u8> {
        segment(v6, true, (local_port, 40000), flags)
    }

    fn udp(v6: bool, local_port: u16) -> Vec<u8> {
        datagram(v6, true, (local_port, 53))
    }

    /// An ICMP(v6) message of `kind` quoting a UDP datagram from the peer to the host.
    fn icmp(v6: bool, kind: u8) -> Vec<u8> {
        let quoted = datagram(v6, false, (40000, 7));
        let mut packet = Vec::new();
        let builder = between(v6, true);
        if v6 {
            builder
                .icmpv6_raw(kind, 4, [0; 4])
                .write(&mut packet, &quoted)
                .unwrap();
        } else {
            builder
                .icmpv4_raw(kind, 3, [0; 4])
                .write(&mut packet, &quoted)
                .unwrap();
        }
        packet
    }

    fn monitored() -> Filter {
        Filter {
            variant: Variant::Probes,
            incoming: Incoming::AnyPort,
            outgoing: Outgoing::FromPorts {
                tcp: PortSet::parse("1,79,111,32771-32774").unwrap(),
                udp: PortSet::parse("7,137-139,32770-32774").unwrap(),
            },
        }
    }

    #[test]
    fn answers_and_flow_starts_from_monitored_ports_are_kept() {
        let p = program(&monitored());
        for v6 in [false, true] {
            for port in [1, 79, 111, 32771, 32773, 32774] {
                for flags in [SYN, SYN | ACK, RST | ACK, SYN | 0x40] {
                    assert_eq!(
                        out(&p, &tcp(v6, port, flags)),
                        SNAPLEN,
                        "{v6} {port} {flags:#x}"
                    );
                }
                // A bare RST answers a segment with ACK: no probe of this variant.
                for flags in [ACK, PSH | ACK, FIN | ACK, FIN, 0, RST] {
                    assert_eq!(out(&p, &tcp(v6, port, flags)), 0, "{v6} {port} {flags:#x}");
                }
            }
            for port in [0, 2, 78, 80, 110, 112, 32770, 32775, 40000, 65535] {
                assert_eq!(out(&p, &tcp(v6, port, SYN | ACK)), 0, "{v6} {port}");
                assert_eq!(out(&p, &tcp(v6, port, RST | ACK)), 0, "{v6} {port}");
            }
            for port in [7, 137, 138, 139, 32770, 32772, 32774] {
                assert_eq!(out(&p, &udp(v6, port)), SNAPLEN, "{v6} {port}");
            }
            for port in [0, 6, 8, 136, 140, 32769, 32775, 53, 65535] {
                assert_eq!(out(&p, &udp(v6, port)), 0, "{v6} {port}");
            }
        }
    }

    #[test]
    fn unreachable_answers_are_kept_whole_and_other_icmp_dropped() {
        let p = program(&monitored());
        assert_eq!(out(&p, &icmp(false, 3)), EXTENSION_SNAPLEN);
        assert_eq!(out(&p, &icmp(true, 1)), EXTENSION_SNAPLEN);
        for kind in [0, 8, 11, 5] {
            assert_eq!(out(&p, &icmp(false, kind)), 0, "icmp {kind}");
        }
        for kind in [128, 129, 133, 135, 136, 3] {
            assert_eq!(out(&p, &icmp(true, kind)), 0, "icmpv6 {kind}");
        }
    }

    #[test]
    fn outgoing_fragments_options_and_extension_headers() {
        let p = program(&monitored());
        // A later fragment of the host's own datagram carries no port.
        let mut later = udp(false, 7);
        later[7] = 1;
        assert_eq!(out(&p, &later), 0);
        // IPv4 options move the ports: the filter follows the header length.
        let plain = tcp(false, 111, SYN | ACK);
        let mut with_options = plain[..20].to_vec();
        with_options[0] = 0x46;
        with_options.extend_from_slice(&[1, 1, 1, 1]);
        with_options.extend_from_slice(&plain[20..]);
        assert_eq!(out(&p, &with_options), SNAPLEN);
        with_options[24] = 0x9c; // local port 40000 + 111 high byte: not monitored
        assert_eq!(out(&p, &with_options), 0);
        // IPv6 with an extension header first: not one of the host's answers we read.
        let mut ext = tcp(true, 111, RST);
        ext[6] = 0;
        assert_eq!(out(&p, &ext), 0);
        // Cut short: dropped, never misread.
        assert_eq!(out(&p, &tcp(false, 111, RST)[..30]), 0);
        assert_eq!(out(&p, &[0x45]), 0);
        // ARP and other ethertypes.
        assert_eq!(tests::run(&p, &[0u8; 28], PACKET_OUTGOING, 0x0806), 0);
    }

    #[test]
    fn any_port_keeps_answers_from_every_port_and_nothing_keeps_none() {
        let any = program(&Filter::new(Variant::Probes));
        let none = program(&Filter {
            variant: Variant::Probes,
            incoming: Incoming::AnyPort,
            outgoing: Outgoing::Nothing,
        });
        for port in [0, 22, 40000, 65535] {
            assert_eq!(out(&any, &tcp(false, port, RST | ACK)), SNAPLEN);
            assert_eq!(out(&any, &udp(true, port)), SNAPLEN);
            assert_eq!(out(&none, &tcp(false, port, RST | ACK)), 0);
            assert_eq!(out(&none, &udp(true, port)), 0);
        }
        assert_eq!(out(&any, &tcp(false, 22, ACK)), 0);
        // With ACK-family probes counted, the bare RST answering an ACK probe is kept too.
        let acks = program(&Filter::new(Variant::WithAckFamily));
        assert_eq!(out(&acks, &tcp(false, 22, RST)), SNAPLEN);
        assert_eq!(out(&any, &tcp(false, 22, RST)), 0);
        assert_eq!(out(&none, &icmp(false, 3)), 0);
    }

    #[test]
    fn too_many_runs_pass_every_port() {
        let over: PortSet = (0..2 * MAX_PORT_RUNS as u16 + 2).step_by(2).collect();
        let p = program(&Filter {
            variant: Variant::Probes,
            incoming: Incoming::AnyPort,
            outgoing: Outgoing::FromPorts {
                tcp: PortSet::new(),
                udp: over,
            },
        });
        assert_eq!(out(&p, &udp(false, 1)), SNAPLEN);
        assert_eq!(out(&p, &tcp(false, 1, RST)), 0, "empty TCP set");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The compiled port test agrees with `PortSet::contains` for every port asked.
        #[test]
        fn port_test_matches_the_set(
            ranges in proptest::collection::vec((any::<u16>(), 0u16..300), 0..120),
            probes in proptest::collection::vec(any::<u16>(), 64),
        ) {
            let mut set = PortSet::new();
            for (first, len) in ranges {
                set.insert_range(first, first.saturating_add(len));
            }
            let p = program(&Filter {
                variant: Variant::Probes,
                incoming: Incoming::AnyPort,
                outgoing: Outgoing::FromPorts { tcp: set.clone(), udp: set.clone() },
            });
            let edges = set.ranges().flat_map(|(a, b)| {
                [a.wrapping_sub(1), a, b, b.wrapping_add(1)]
            });
            for port in probes.into_iter().chain(edges) {
                let expected = if set.contains(port) { SNAPLEN } else { 0 };
                prop_assert_eq!(out(&p, &udp(false, port)), expected, "udp {}", port);
                prop_assert_eq!(out(&p, &tcp(true, port, RST | ACK)), expected, "tcp {}", port);
            }
        }
    }
}

#[cfg(test)]
mod incoming_tests {
    use super::tests::{datagram, run_as, segment};
    use super::*;
    use proptest::prelude::*;

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;

    fn arrive(p: &[Insn], packet: &[u8]) -> u32 {
        run_as(p, packet, PACKET_HOST)
    }

    fn tcp(v6: bool, port: u16, flags: u8) -> Vec<u8> {
        segment(v6, false, (40000, port), flags)
    }

    fn udp(v6: bool, port: u16) -> Vec<u8> {
        datagram(v6, false, (40000, port))
    }

    fn watched(variant: Variant) -> Vec<Insn> {
        program(&Filter {
            variant,
            incoming: Incoming::ToPorts {
                tcp: PortSet::parse("1,79,111,1000-2000").unwrap(),
                udp: PortSet::parse("7,9,32770-32774").unwrap(),
            },
            outgoing: Outgoing::AnyPort,
        })
    }

    #[test]
    fn only_watched_ports_leave_the_kernel() {
        for variant in [Variant::Probes, Variant::WithAckFamily] {
            let p = watched(variant);
            for v6 in [false, true] {
                for port in [1, 79, 111, 1000, 1500, 2000] {
                    assert_eq!(arrive(&p, &tcp(v6, port, SYN)), SNAPLEN, "{v6} {port}");
                }
                for port in [0, 2, 80, 110, 999, 2001, 8080, 65535] {
                    assert_eq!(arrive(&p, &tcp(v6, port, SYN)), 0, "{v6} {port}");
                }
                for port in [7, 9, 32770, 32774] {
                    assert_eq!(arrive(&p, &udp(v6, port)), SNAPLEN, "{v6} {port}");
                }
                for port in [1, 8, 53, 32769, 32775] {
                    assert_eq!(arrive(&p, &udp(v6, port)), 0, "{v6} {port}");
                }
                // Flags still decide first: ordinary TCP to a watched port stays dropped.
                assert_eq!(arrive(&p, &tcp(v6, 79, SYN | ACK)), 0);
                let ack = if variant == Variant::WithAckFamily {
                    SNAPLEN
                } else {
                    0
                };
                assert_eq!(arrive(&p, &tcp(v6, 79, ACK)), ack);
                assert_eq!(arrive(&p, &tcp(v6, 80, ACK)), 0);
            }
        }
    }

    #[test]
    fn fragments_extension_headers_and_options_are_still_handled() {
        let p = watched(Variant::Probes);
        // A first fragment goes to user space whatever its port (it may be cut before it).
        let mut first = tcp(false, 8080, SYN);
        first[6] = 0x20;
        first.truncate(28);
        assert_eq!(arrive(&p, &first), SNAPLEN);
        // IPv6 with an extension header: user space walks the chain.
        let mut ext = tcp(true, 8080, SYN);
        ext[6] = 0;
        assert_eq!(arrive(&p, &ext), EXTENSION_SNAPLEN);
        // IPv4 options move the port; the header length is followed.
        let plain = tcp(false, 79, SYN);
        let mut with_options = plain[..20].to_vec();
        with_options[0] = 0x46;
        with_options.extend_from_slice(&[1, 1, 1, 1]);
        with_options.extend_from_slice(&plain[20..]);
        assert_eq!(arrive(&p, &with_options), SNAPLEN);
        with_options[24 + 3] = 80;
        assert_eq!(arrive(&p, &with_options), 0);
        // A datagram cut before its destination port is dropped, never misread.
        assert_eq!(arrive(&p, &udp(false, 7)[..22]), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The compiled inbound test agrees with `PortSet::contains`, every filter shape.
        #[test]
        fn inbound_port_test_matches_the_set(
            ranges in proptest::collection::vec((any::<u16>(), 0u16..500), 0..150),
            probes in proptest::collection::vec(any::<u16>(), 48),
        ) {
            let mut set = PortSet::new();
            for (first, len) in ranges {
                set.insert_range(first, first.saturating_add(len));
            }
            let p = program(&Filter {
                variant: Variant::Probes,
                incoming: Incoming::ToPorts { tcp: set.clone(), udp: set.clone() },
                outgoing: Outgoing::Nothing,
            });
            let compiled = set.ranges().count() <= MAX_PORT_RUNS;
            let edges = set.ranges().flat_map(|(a, b)| [a.wrapping_sub(1), a, b, b.wrapping_add(1)]);
            for port in probes.into_iter().chain(edges) {
                let kept = set.contains(port) || !compiled;
                let expected = if kept { SNAPLEN } else { 0 };
                prop_assert_eq!(arrive(&p, &udp(false, port)), expected, "udp4 {}", port);
                prop_assert_eq!(arrive(&p, &tcp(true, port, SYN)), expected, "tcp6 {}", port);
            }
        }
    }
}
