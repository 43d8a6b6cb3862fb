use super::*;
use crate::config::BlockMode;
use crate::mode::Mode;
use crate::probe::ScanKind;

const HOST: &str = "203.0.113.2";

fn probe(source: IpAddr, protocol: Protocol, ports: (u16, u16), micros: u64) -> Probe {
    Probe {
        at: Timestamp::from_micros(micros),
        source,
        destination: HOST.parse().unwrap(),
        protocol,
        source_port: ports.0,
        destination_port: ports.1,
        kind: match protocol {
            Protocol::Tcp => ScanKind::Syn,
            Protocol::Udp => ScanKind::Udp,
        },
        ip_options: false,
    }
}

fn alert(probe: Probe) -> Alert {
    Alert {
        probe,
        mode: match probe.protocol {
            Protocol::Tcp => Mode::StealthTcp,
            Protocol::Udp => Mode::StealthUdp,
        },
        distinct_ports: 1,
        response: BlockMode::LogOnly,
        port_state: PortState::Unknown,
    }
}

/// The host's answer to `probe`.
fn answer(probe: &Probe, kind: SentKind, micros: u64) -> Sent {
    Sent {
        at: Timestamp::from_micros(micros),
        local: probe.destination,
        remote: probe.source,
        protocol: probe.protocol,
        local_port: probe.destination_port,
        remote_port: probe.source_port,
        kind,
    }
}

fn peer(i: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0xc633_6400 | (i & 0xff))) // 198.51.100.x
}

#[test]
fn a_reply_to_the_hosts_own_query_is_skipped_and_counted() {
    let mut answers = HostAnswers::new(HashSeed::FIXED);
    let server = peer(53);
    let mut ready = Vec::new();
    // The host asks 198.51.100.53:123 from its port 32772 (in Debian's UDP_PORTS).
    let query = Sent {
        at: Timestamp::from_secs(1),
        local: HOST.parse().unwrap(),
        remote: server,
        protocol: Protocol::Udp,
        local_port: 32772,
        remote_port: 123,
        kind: SentKind::Datagram,
    };
    answers.sent(&query, &mut ready);
    assert!(answers.is_reply(&probe(server, Protocol::Udp, (123, 32772), 1_000_500)));
    // Another port of the server, another local port, another address, TCP: probes.
    assert!(!answers.is_reply(&probe(server, Protocol::Udp, (124, 32772), 1_000_500)));
    assert!(!answers.is_reply(&probe(server, Protocol::Udp, (123, 32773), 1_000_500)));
    assert!(!answers.is_reply(&probe(peer(54), Protocol::Udp, (123, 32772), 1_000_500)));
    assert!(!answers.is_reply(&probe(server, Protocol::Tcp, (123, 32772), 1_000_500)));
    // A TCP connection the host opens from 32771: the server's segments are replies.
    let syn = Sent {
        protocol: Protocol::Tcp,
        local_port: 32771,
        remote_port: 443,
        kind: SentKind::Syn,
        ..query
    };
    answers.sent(&syn, &mut ready);
    let mut ack = probe(server, Protocol::Tcp, (443, 32771), 2_000_000);
    ack.kind = ScanKind::Ack;
    assert!(answers.is_reply(&ack));
    let stats = answers.stats();
    assert_eq!((stats.replies, stats.flows, stats.sent), (2, 2, 2));
    assert!(ready.is_empty());
    // Answers (SYN-ACK, RST, ICMP) are no flows of the host's own.
    for kind in [SentKind::SynAck, SentKind::Reset, SentKind::Unreachable] {
        answers.sent(
            &Sent {
                kind,
                local_port: 1,
                ..query
            },
            &mut ready,
        );
    }
    assert_eq!(answers.stats().flows, 2);
}

#[test]
fn a_flood_of_received_packets_adds_no_flow() {
    let mut answers = HostAnswers::new(HashSeed::FIXED);
    let memory = answers.stats().flow_memory_bytes;
    assert!(memory <= 300 * 1024, "{memory}");
    let mut ready = Vec::new();
    for i in 0..200_000u32 {
        let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let port = u16::try_from(i % 65536).unwrap();
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let p = probe(source, protocol, (port, 32772), u64::from(i));
            assert!(!answers.is_reply(&p));
        }
    }
    answers.flush(Timestamp::from_secs(10), &mut ready);
    let stats = answers.stats();
    assert_eq!(stats.flows, 0);
    assert_eq!(stats.replies, 0);
    assert_eq!(stats.flow_memory_bytes, memory);
    assert!(answers.flows().is_empty());
}

#[test]
fn each_answer_gives_its_port_state() {
    let cases = [
        (Protocol::Tcp, Some(SentKind::Reset), PortState::Closed),
        (Protocol::Tcp, Some(SentKind::SynAck), PortState::Open),
        (Protocol::Udp, Some(SentKind::Datagram), PortState::Open),
        (
            Protocol::Udp,
            Some(SentKind::Unreachable),
            PortState::Unreachable,
        ),
        (
            Protocol::Tcp,
            Some(SentKind::Unreachable),
            PortState::Unreachable,
        ),
        (Protocol::Tcp, None, PortState::Filtered),
    ];
    for (i, (protocol, kind, expected)) in cases.into_iter().enumerate() {
        let mut answers = HostAnswers::new(HashSeed::FIXED);
        let mut ready = Vec::new();
        let p = probe(peer(1), protocol, (40000, 79), 5_000_000);
        answers.hold(alert(p), &mut ready);
        assert_eq!(answers.next_due(), Some(Timestamp::from_micros(5_200_000)));
        // An answer to another probe (other peer port) changes nothing.
        let mut other = p;
        other.source_port = 40001;
        answers.sent(&answer(&other, SentKind::Reset, 5_000_010), &mut ready);
        assert!(ready.is_empty(), "case {i}");
        if let Some(kind) = kind {
            answers.sent(&answer(&p, kind, 5_000_020), &mut ready);
        }
        answers.due(Timestamp::from_micros(5_000_000 + 199_999), &mut ready);
        if kind.is_none() {
            assert!(ready.is_empty(), "case {i}: passed on before the wait");
        }
        answers.due(Timestamp::from_micros(5_200_000), &mut ready);
        assert_eq!(ready.len(), 1, "case {i}");
        assert_eq!(ready[0].port_state, expected, "case {i}");
        assert_eq!(ready[0].probe, p);
        assert_eq!(answers.next_due(), None);
        let stats = answers.stats();
        assert_eq!(stats.alerts(expected), 1);
        assert_eq!(stats.held, 0);
        // A second answer finds nothing held.
        answers.sent(&answer(&p, SentKind::Reset, 5_300_000), &mut ready);
        assert_eq!(ready.len(), 1);
    }
}

#[test]
fn flush_passes_on_the_rest_and_overflow_passes_the_oldest_as_unknown() {
    let mut answers = HostAnswers::new(HashSeed::FIXED);
    let mut ready = Vec::new();
    let early = probe(peer(1), Protocol::Tcp, (1, 79), 0);
    let late = probe(peer(2), Protocol::Tcp, (1, 79), 150_000);
    answers.hold(alert(early), &mut ready);
    answers.hold(alert(late), &mut ready);
    answers.flush(Timestamp::from_micros(250_000), &mut ready);
    let states: Vec<_> = ready.iter().map(|a| a.port_state).collect();
    assert_eq!(states, [PortState::Filtered, PortState::Unknown]);

    ready.clear();
    for i in 0..=MAX_HELD_ALERTS {
        let source = IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + u32::try_from(i).unwrap(),
        ));
        answers.hold(alert(probe(source, Protocol::Udp, (5, 7), 1)), &mut ready);
    }
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].port_state, PortState::Unknown);
    assert_eq!(ready[0].probe.source.to_string(), "10.0.0.0");
    assert_eq!(answers.stats().held, MAX_HELD_ALERTS as u64);
}
