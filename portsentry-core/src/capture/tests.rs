//! Real captures between two network namespaces joined by a veth pair.
//!
//! Each test creates its own pair of namespaces (names carry the PID and a counter), opens
//! the capture on a thread that entered the victim namespace, sends crafted frames from a
//! thread in the attacker namespace, and deletes both namespaces when done (Drop guard).
//! Without root the tests print why and pass without checking anything.

use super::*;
use crate::ports::PortSet;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const VICTIM_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const ATTACKER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const VICTIM4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const ATTACKER4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const VICTIM6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const ATTACKER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Namespaces {
    victim: String,
    attacker: String,
    victim_if: String,
    attacker_if: String,
}

impl Namespaces {
    /// Creates the pair, or returns `None` (with a message) when not root.
    fn create(test: &str) -> Option<Self> {
        if !is_root() {
            eprintln!("skipping {test}: needs root to create network namespaces");
            return None;
        }
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let ns = Self {
            victim: format!("pscap-v-{id}"),
            attacker: format!("pscap-a-{id}"),
            victim_if: "pscapv0".into(),
            attacker_if: "pscapa0".into(),
        };
        ip(&["netns", "add", &ns.victim]);
        ip(&["netns", "add", &ns.attacker]);
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        ip(&[
            "link",
            "add",
            &ns.victim_if,
            "netns",
            &ns.victim,
            "address",
            &mac(VICTIM_MAC),
            "type",
            "veth",
            "peer",
            "name",
            &ns.attacker_if,
            "netns",
            &ns.attacker,
            "address",
            &mac(ATTACKER_MAC),
        ]);
        for (netns, dev, v4, v6) in [
            (
                &ns.victim,
                &ns.victim_if,
                "203.0.113.2/24",
                "2001:db8::2/64",
            ),
            (
                &ns.attacker,
                &ns.attacker_if,
                "203.0.113.1/24",
                "2001:db8::1/64",
            ),
        ] {
            ip(&["-n", netns, "addr", "add", v4, "dev", dev]);
            ip(&["-n", netns, "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", netns, "link", "set", dev, "up"]);
            ip(&["-n", netns, "link", "set", "lo", "up"]);
        }
        Some(ns)
    }

    fn path(name: &str) -> String {
        format!("/run/netns/{name}")
    }

    /// Runs `f` on a thread inside namespace `name` and returns its result.
    fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = Self::path(name);
        std::thread::spawn(move || {
            sys::enter_network_namespace(&path).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread")
    }

    fn open_capture(&self, options: CaptureOptions) -> Result<Capture, CaptureError> {
        Self::run_in(&self.victim, move || Capture::open(&options))
    }

    /// Sends each L3 packet from the attacker's veth to the victim's MAC address.
    fn send(&self, packets: Vec<Vec<u8>>) {
        let dev = self.attacker_if.clone();
        Self::run_in(&self.attacker, move || {
            let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(0)))
                .expect("sender socket");
            let ifindex = sys::interface_index(&dev).expect("attacker veth");
            for packet in packets {
                let ethertype: u16 = if packet[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
                let to = sys::link_address(ifindex, ethertype.to_be(), Some(VICTIM_MAC));
                sys::send_link(&socket, &packet, &to).expect("send");
            }
        });
    }

    fn victim_ifindex(&self) -> u32 {
        let dev = self.victim_if.clone();
        Self::run_in(&self.victim, move || sys::interface_index(&dev)).expect("victim veth")
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in [&self.victim, &self.attacker] {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn tcp_packet(v6: bool, src_port: u16, dst_port: u16, flags: u8) -> Vec<u8> {
    let builder = if v6 {
        PacketBuilder::ipv6(ATTACKER6.octets(), VICTIM6.octets(), 64)
    } else {
        PacketBuilder::ipv4(ATTACKER4.octets(), VICTIM4.octets(), 64)
    };
    let builder = builder.tcp(src_port, dst_port, 1000, 1024);
    let mut out = Vec::new();
    builder.write(&mut out, &[]).unwrap();
    let flags_at = if v6 { 40 + 13 } else { 20 + 13 };
    out[flags_at] = flags;
    out
}

fn udp_packet(v6: bool, src_port: u16, dst_port: u16) -> Vec<u8> {
    let builder = if v6 {
        PacketBuilder::ipv6(ATTACKER6.octets(), VICTIM6.octets(), 64)
    } else {
        PacketBuilder::ipv4(ATTACKER4.octets(), VICTIM4.octets(), 64)
    };
    let mut out = Vec::new();
    builder
        .udp(src_port, dst_port)
        .write(&mut out, b"probe")
        .unwrap();
    out
}

/// An IPv6 TCP segment behind a hop-by-hop options header (8 bytes of PadN).
fn tcp6_with_hop_by_hop(dst_port: u16, flags: u8) -> Vec<u8> {
    let plain = tcp_packet(true, 40000, dst_port, flags);
    let mut out = plain[..40].to_vec();
    out[6] = 0; // next header: hop-by-hop
    let payload_len = u16::from_be_bytes([out[4], out[5]]) + 8;
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next: TCP, len 0, PadN(4)
    out.extend_from_slice(&plain[40..]);
    out
}

/// What the test checks of a received frame: (source, destination port, TCP flags or None
/// for UDP).
type Seen = (IpAddr, u16, Option<u8>);

fn describe(frame: &Frame<'_>) -> Option<Seen> {
    let packet = SlicedPacket::from_ip(frame.data).ok()?;
    let source = match packet.net? {
        NetSlice::Ipv4(v4) => IpAddr::V4(v4.header().source_addr()),
        NetSlice::Ipv6(v6) => IpAddr::V6(v6.header().source_addr()),
        _ => return None,
    };
    match packet.transport? {
        TransportSlice::Tcp(tcp) => Some((source, tcp.destination_port(), Some(tcp.slice()[13]))),
        TransportSlice::Udp(udp) => Some((source, udp.destination_port(), None)),
        _ => None,
    }
}

/// Receives until `expected` frames from the attacker arrived or 5 s passed; returns what
/// came from the attacker's addresses (other frames, e.g. none expected, are ignored; the
/// victim's own frames are left out: see [`collect_outgoing`]).
fn collect(capture: &mut Capture, expected: usize) -> Vec<(Seen, u32, Timestamp)> {
    collect_both(capture, expected, 0).0
}

/// What the victim sent, as [`describe`] sees it: (peer, peer's port, TCP flags or None).
fn collect_outgoing(capture: &mut Capture, expected: usize) -> Vec<Seen> {
    collect_both(capture, 0, expected).1
}

/// As [`collect`], also waiting for `outgoing` frames the victim sent (returned second).
fn collect_both(
    capture: &mut Capture,
    expected: usize,
    outgoing: usize,
) -> (Vec<(Seen, u32, Timestamp)>, Vec<Seen>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut sent = Vec::new();
    while (seen.len() < expected || sent.len() < outgoing) && Instant::now() < deadline {
        let batch = capture.recv_batch(Duration::from_millis(200)).unwrap();
        for frame in batch.iter() {
            assert!(frame.data.len() <= bpf::EXTENSION_SNAPLEN as usize);
            if frame.direction == Direction::Outgoing {
                sent.extend(describe_sent(&frame));
                continue;
            }
            if let Some(s) = describe(&frame)
                && (s.0 == IpAddr::V4(ATTACKER4) || s.0 == IpAddr::V6(ATTACKER6))
            {
                seen.push((s, frame.ifindex, frame.at));
            }
        }
    }
    // Anything else that was going to arrive would be here within a moment.
    let batch = capture.recv_batch(Duration::from_millis(300)).unwrap();
    for frame in batch.iter() {
        if frame.direction == Direction::Outgoing {
            sent.extend(describe_sent(&frame));
        } else if let Some(s) = describe(&frame) {
            seen.push((s, frame.ifindex, frame.at));
        }
    }
    (seen, sent)
}

/// A frame the victim sent: (destination, destination port, TCP flags) for TCP and UDP,
/// (destination, ICMP type, None) for ICMP and ICMPv6.
fn describe_sent(frame: &Frame<'_>) -> Option<Seen> {
    let packet = SlicedPacket::from_ip(frame.data).ok()?;
    let destination = match packet.net? {
        NetSlice::Ipv4(v4) => IpAddr::V4(v4.header().destination_addr()),
        NetSlice::Ipv6(v6) => IpAddr::V6(v6.header().destination_addr()),
        _ => return None,
    };
    match packet.transport? {
        TransportSlice::Tcp(tcp) => {
            Some((destination, tcp.destination_port(), Some(tcp.slice()[13])))
        }
        TransportSlice::Udp(udp) => Some((destination, udp.destination_port(), None)),
        TransportSlice::Icmpv4(icmp) => Some((destination, u16::from(icmp.type_u8()), None)),
        TransportSlice::Icmpv6(icmp) => Some((destination, u16::from(icmp.type_u8()), None)),
        _ => None,
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        .try_into()
        .unwrap()
}

#[test]
fn probes_arrive_and_ordinary_tcp_is_dropped_in_the_kernel() {
    let Some(ns) = Namespaces::create("probes_arrive_and_ordinary_tcp_is_dropped_in_the_kernel")
    else {
        return;
    };
    let mut capture = ns.open_capture(CaptureOptions::new()).unwrap();
    let before = now_micros();

    let a4 = IpAddr::V4(ATTACKER4);
    let a6 = IpAddr::V6(ATTACKER6);
    let mut packets = Vec::new();
    let mut expected: BTreeSet<Seen> = BTreeSet::new();
    // Probes: SYN, FIN, NULL, XMAS, SYN+FIN, UDP, on IPv4 and IPv6, each to its own port.
    for (v6, base, source) in [(false, 1000u16, a4), (true, 2000u16, a6)] {
        for (i, flags) in [SYN, FIN, 0, FIN | PSH | URG, SYN | FIN]
            .into_iter()
            .enumerate()
        {
            let port = base + u16::try_from(i).unwrap();
            packets.push(tcp_packet(v6, 40000, port, flags));
            expected.insert((source, port, Some(flags)));
        }
        packets.push(udp_packet(v6, 40000, base + 50));
        expected.insert((source, base + 50, None));
    }
    packets.push(tcp6_with_hop_by_hop(2100, SYN));
    expected.insert((a6, 2100, Some(SYN)));
    // Ordinary traffic: bare ACKs, data, FIN+ACK, RSTs — 400 frames, none may arrive.
    let ordinary = 400;
    for i in 0..ordinary / 4 {
        let v6 = i % 2 == 1;
        packets.push(tcp_packet(v6, 40001, 3000, ACK));
        packets.push(tcp_packet(v6, 40001, 3000, PSH | ACK));
        packets.push(tcp_packet(v6, 40001, 3000, FIN | ACK));
        packets.push(tcp_packet(
            v6,
            40001,
            3000,
            if i % 3 == 0 { RST } else { RST | ACK },
        ));
    }
    ns.send(packets);

    let (seen, mut sent) = collect_both(&mut capture, expected.len(), 0);
    let victim_ifindex = ns.victim_ifindex();
    let after = now_micros();
    let got: BTreeSet<Seen> = seen.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(got, expected);
    assert_eq!(
        seen.len(),
        expected.len(),
        "each probe exactly once: {seen:?}"
    );
    for (what, ifindex, at) in &seen {
        assert_eq!(*ifindex, victim_ifindex, "{what:?}");
        assert!(
            (before..=after).contains(&at.as_micros()),
            "kernel timestamp {at:?} outside [{before}, {after}]"
        );
    }
    sent.extend(collect_outgoing(&mut capture, 0));
    let stats = capture.stats().unwrap();
    // The kernel counts only what the filter passed: the probes, and those of the victim's
    // answers the filter keeps: resets and ICMP / ICMPv6 unreachable, never anything else.
    // (Which probes the victim's stack answers is its business: the crafted TCP segments
    // carry a checksum computed before their flags were set, and ICMP errors are
    // rate-limited.)
    for answer in &sent {
        let reset = answer.2.is_some_and(|flags| flags & RST != 0);
        let unreachable = *answer == (a4, 3, None) || *answer == (a6, 1, None);
        assert!(reset || unreachable, "{answer:?} in {sent:?}");
    }
    assert_eq!(stats.outgoing, sent.len() as u64, "{stats:?}");
    assert_eq!(
        stats.received,
        expected.len() as u64 + stats.outgoing,
        "{stats:?}"
    );
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.delivered, expected.len() as u64 + stats.outgoing);
    assert_eq!(stats.not_for_host, 0);
}

#[test]
fn ack_family_variant_lets_bare_ack_and_fin_ack_through() {
    let Some(ns) = Namespaces::create("ack_family_variant_lets_bare_ack_and_fin_ack_through")
    else {
        return;
    };
    let mut capture = ns
        .open_capture(CaptureOptions::new().ack_family(true))
        .unwrap();
    assert_eq!(capture.filter_variant(), bpf::Variant::WithAckFamily);
    let a4 = IpAddr::V4(ATTACKER4);
    let a6 = IpAddr::V6(ATTACKER6);
    ns.send(vec![
        tcp_packet(false, 40000, 4001, ACK),
        tcp_packet(false, 40000, 4002, FIN | ACK),
        tcp_packet(true, 40000, 4003, ACK),
        tcp_packet(false, 40000, 4004, SYN),
        tcp_packet(false, 40000, 4005, RST),
        tcp_packet(false, 40000, 4006, RST | ACK),
        tcp_packet(false, 40000, 4007, PSH | ACK),
        tcp_packet(true, 40000, 4008, SYN | ACK),
    ]);
    let got: BTreeSet<Seen> = collect(&mut capture, 4)
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    let expected: BTreeSet<Seen> = [
        (a4, 4001, Some(ACK)),
        (a4, 4002, Some(FIN | ACK)),
        (a6, 4003, Some(ACK)),
        (a4, 4004, Some(SYN)),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected);
}

#[test]
fn a_real_connection_shows_only_its_syn() {
    let Some(ns) = Namespaces::create("a_real_connection_shows_only_its_syn") else {
        return;
    };
    let mut capture = ns.open_capture(CaptureOptions::new()).unwrap();
    // A real service in the victim namespace, a real client in the attacker namespace:
    // handshake, 256 KiB each way, close. Only the client's SYN may reach user space.
    let listener = Namespaces::run_in(&ns.victim, || {
        TcpListener::bind(SocketAddr::from((VICTIM4, 8080))).unwrap()
    });
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        stream.read_exact(&mut buf).unwrap();
        stream.write_all(&buf).unwrap();
    });
    let client_port = Namespaces::run_in(&ns.attacker, || {
        let mut stream = TcpStream::connect(SocketAddr::from((VICTIM4, 8080))).unwrap();
        let data = vec![7u8; 256 * 1024];
        stream.write_all(&data).unwrap();
        let mut back = vec![0u8; 256 * 1024];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, data);
        stream.local_addr().unwrap().port()
    });
    server.join().unwrap();
    let (seen, sent) = collect_both(&mut capture, 1, 1);
    let seen: Vec<Seen> = seen.into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(seen, vec![(IpAddr::V4(ATTACKER4), 8080, Some(SYN))]);
    // Of the victim's side, only its answer: the SYN-ACK (data, ACKs and FINs stay in the
    // kernel both ways).
    assert_eq!(
        sent,
        vec![(IpAddr::V4(ATTACKER4), client_port, Some(SYN | ACK))]
    );
    let stats = capture.stats().unwrap();
    assert_eq!(stats.received, 2, "{stats:?}");
    assert_eq!(stats.outgoing, 1, "{stats:?}");
}

#[test]
fn binding_to_an_interface_limits_the_capture() {
    let Some(ns) = Namespaces::create("binding_to_an_interface_limits_the_capture") else {
        return;
    };
    let mut on_lo = ns
        .open_capture(CaptureOptions::new().interface("lo"))
        .unwrap();
    let mut on_veth = ns
        .open_capture(CaptureOptions::new().interface(ns.victim_if.clone()))
        .unwrap();
    assert_eq!(on_veth.ifindex(), Some(ns.victim_ifindex()));
    ns.send(vec![tcp_packet(false, 40000, 5001, SYN)]);
    let veth: Vec<Seen> = collect(&mut on_veth, 1)
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(veth, vec![(IpAddr::V4(ATTACKER4), 5001, Some(SYN))]);
    assert!(
        on_lo
            .recv_batch(Duration::from_millis(100))
            .unwrap()
            .is_empty()
    );

    // A connect to a closed loopback port inside the victim namespace: the lo capture sees
    // the SYN once as a probe (the incoming copy; the incoming RST is dropped), and both
    // outgoing copies: the SYN that opens the host's own flow and its RST answer.
    let (client_port, refused) = Namespaces::run_in(&ns.victim, || {
        let socket = socket2::Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        let refused = socket.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, 5002)).into());
        (port, refused)
    });
    assert!(refused.is_err());
    let (mut frames, mut sent) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while (frames.is_empty() || sent.len() < 2) && Instant::now() < deadline {
        let batch = on_lo.recv_batch(Duration::from_millis(200)).unwrap();
        for frame in batch.iter() {
            match frame.direction {
                Direction::Incoming => frames.extend(describe(&frame)),
                Direction::Outgoing => sent.extend(describe_sent(&frame)),
            }
        }
    }
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(frames, vec![(lo, 5002, Some(SYN))]);
    assert_eq!(
        sent,
        vec![(lo, 5002, Some(SYN)), (lo, client_port, Some(RST | ACK))]
    );
    assert!(
        on_veth
            .recv_batch(Duration::from_millis(100))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unknown_interface_is_a_clear_error() {
    if !is_root() {
        eprintln!("skipping unknown_interface_is_a_clear_error: needs root");
        return;
    }
    let error = Capture::open(&CaptureOptions::new().interface("no-such-if0")).unwrap_err();
    assert!(matches!(error, CaptureError::NoSuchInterface { ref name } if name == "no-such-if0"));
    assert_eq!(
        error.to_string(),
        "no network interface named \"no-such-if0\""
    );
}

#[test]
fn without_cap_net_raw_the_error_says_so() {
    if !is_root() {
        // Unprivileged already: the open itself must fail with the message.
        let error = Capture::open(&CaptureOptions::new()).unwrap_err();
        assert!(matches!(error, CaptureError::NeedsCapNetRaw));
        return;
    }
    const CAP_NET_RAW: u32 = 13;
    let error = std::thread::spawn(|| {
        sys::drop_effective_capability(CAP_NET_RAW).unwrap();
        Capture::open(&CaptureOptions::new()).unwrap_err()
    })
    .join()
    .unwrap();
    assert!(matches!(error, CaptureError::NeedsCapNetRaw), "{error:?}");
    assert!(error.to_string().contains("needs root or CAP_NET_RAW"));
}

#[test]
fn own_addresses_and_gateways_inside_a_namespace() {
    let Some(ns) = Namespaces::create("own_addresses_and_gateways_inside_a_namespace") else {
        return;
    };
    ip(&[
        "-n",
        &ns.victim,
        "route",
        "add",
        "default",
        "via",
        "203.0.113.1",
    ]);
    ip(&[
        "-n",
        &ns.victim,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8::1",
    ]);
    let (own, gateways) = Namespaces::run_in(&ns.victim, || {
        (
            crate::host::own_addresses().unwrap(),
            crate::host::default_gateways().unwrap(),
        )
    });
    for address in [
        IpAddr::V4(VICTIM4),
        IpAddr::V6(VICTIM6),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        assert!(own.contains(&address), "{address} missing from {own:?}");
    }
    assert!(!own.contains(&IpAddr::V4(ATTACKER4)));
    assert_eq!(gateways, vec![IpAddr::V4(ATTACKER4), IpAddr::V6(ATTACKER6)]);
}

#[test]
fn only_answers_from_monitored_ports_leave_the_kernel() {
    let Some(ns) = Namespaces::create("only_answers_from_monitored_ports_leave_the_kernel") else {
        return;
    };
    let outgoing = bpf::Outgoing::FromPorts {
        tcp: PortSet::parse("5555,8080").unwrap(),
        udp: PortSet::parse("7000-7009").unwrap(),
    };
    let mut capture = ns
        .open_capture(CaptureOptions::new().outgoing(outgoing.clone()))
        .unwrap();
    assert_eq!(capture.filter().outgoing, outgoing);
    let listener = Namespaces::run_in(&ns.victim, || {
        TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 8080))).unwrap()
    });
    let mut expected: BTreeSet<(IpAddr, Option<u8>)> = BTreeSet::new();
    for (victim, attacker) in [
        (IpAddr::V4(VICTIM4), IpAddr::V4(ATTACKER4)),
        (IpAddr::V6(VICTIM6), IpAddr::V6(ATTACKER6)),
    ] {
        Namespaces::run_in(&ns.attacker, move || {
            // Open (SYN-ACK kept), closed monitored (RST kept), closed unmonitored (dropped).
            drop(TcpStream::connect(SocketAddr::new(victim, 8080)).unwrap());
            assert!(TcpStream::connect(SocketAddr::new(victim, 5555)).is_err());
            assert!(TcpStream::connect(SocketAddr::new(victim, 6666)).is_err());
        });
        drop(listener.accept().unwrap());
        Namespaces::run_in(&ns.victim, move || {
            // The victim's own datagrams: from a monitored port (kept) and another (dropped).
            for port in [7005, 7010] {
                let socket = std::net::UdpSocket::bind(SocketAddr::new(victim, port)).unwrap();
                socket
                    .send_to(b"query", SocketAddr::new(attacker, 53))
                    .unwrap();
            }
        });
        expected.insert((attacker, Some(SYN | ACK)));
        expected.insert((attacker, Some(RST | ACK)));
        expected.insert((attacker, None));
    }
    let sent = collect_outgoing(&mut capture, 6);
    let got: BTreeSet<(IpAddr, Option<u8>)> = sent.iter().map(|s| (s.0, s.2)).collect();
    assert_eq!(got, expected, "{sent:?}");
    // Exactly one SYN-ACK, one RST and one datagram per family: the RST from 6666, the
    // datagram from 7010 and every ACK, FIN and data segment stayed in the kernel.
    assert_eq!(sent.len(), 6, "{sent:?}");
    let udp: Vec<u16> = sent.iter().filter(|s| s.2.is_none()).map(|s| s.1).collect();
    assert_eq!(udp, [53, 53]);

    // The filter is swapped on the open socket: now nothing of the victim's own.
    capture
        .set_filter(bpf::Filter {
            outgoing: bpf::Outgoing::Nothing,
            ..bpf::Filter::new(bpf::Variant::Probes)
        })
        .unwrap();
    Namespaces::run_in(&ns.attacker, || {
        assert!(TcpStream::connect(SocketAddr::from((VICTIM4, 5555))).is_err());
    });
    let (seen, sent) = collect_both(&mut capture, 1, 0);
    assert_eq!(sent, []);
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn the_kernel_accepts_every_filter_shape() {
    if !is_root() {
        eprintln!("skipping the_kernel_accepts_every_filter_shape: needs root");
        return;
    }
    // Attached to a socket that is never bound (receives nothing): the kernel's checker
    // runs on each program, the longest (a full budget of port runs) included.
    let mut capture = Capture::open(&CaptureOptions::new().interface("lo")).unwrap();
    let filters = bpf::tests::every_filter();
    for filter in filters {
        let length = bpf::program(&filter).len();
        capture
            .set_filter(filter)
            .unwrap_or_else(|e| panic!("{length} instructions refused: {e}"));
    }
}

#[test]
fn only_probes_to_watched_ports_leave_the_kernel() {
    let Some(ns) = Namespaces::create("only_probes_to_watched_ports_leave_the_kernel") else {
        return;
    };
    let incoming = bpf::Incoming::ToPorts {
        tcp: PortSet::parse("1000-1002,1010").unwrap(),
        udp: PortSet::parse("1050").unwrap(),
    };
    let mut capture = ns
        .open_capture(
            CaptureOptions::new()
                .incoming(incoming)
                .outgoing(bpf::Outgoing::Nothing),
        )
        .unwrap();
    let a4 = IpAddr::V4(ATTACKER4);
    let a6 = IpAddr::V6(ATTACKER6);
    let mut packets = Vec::new();
    let mut expected: BTreeSet<Seen> = BTreeSet::new();
    for (v6, source) in [(false, a4), (true, a6)] {
        for port in [999, 1000, 1001, 1002, 1003, 1009, 1010, 1011, 8080] {
            packets.push(tcp_packet(v6, 40000, port, SYN));
            if (1000..=1002).contains(&port) || port == 1010 {
                expected.insert((source, port, Some(SYN)));
            }
        }
        for port in [1049, 1050, 1051, 53] {
            packets.push(udp_packet(v6, 40000, port));
            if port == 1050 {
                expected.insert((source, port, None));
            }
        }
    }
    // An IPv6 probe behind a hop-by-hop header goes to user space whatever its port.
    packets.push(tcp6_with_hop_by_hop(9999, SYN));
    expected.insert((a6, 9999, Some(SYN)));
    ns.send(packets);
    let seen: BTreeSet<Seen> = collect(&mut capture, expected.len())
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(seen, expected);
    let stats = capture.stats().unwrap();
    assert_eq!(stats.received, expected.len() as u64, "{stats:?}");
}
