use super::*;
use crate::event::IgnoreReason;
use crate::probe::TcpFlags;
use std::net::Ipv4Addr;

const SCANNER: &str = "203.0.113.9";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn probe(src: &str, protocol: Protocol, kind: ScanKind, port: u16, at_s: u64) -> Probe {
    Probe {
        at: Timestamp::from_secs(at_s),
        source: ip(src),
        destination: ip("192.0.2.1"),
        protocol,
        source_port: 40000,
        destination_port: port,
        kind,
        ip_options: false,
    }
}

fn syn(src: &str, port: u16, at_s: u64) -> Probe {
    probe(src, Protocol::Tcp, ScanKind::Syn, port, at_s)
}

fn udp(src: &str, port: u16, at_s: u64) -> Probe {
    probe(src, Protocol::Udp, ScanKind::Udp, port, at_s)
}

fn config(trigger: u32) -> Config {
    Config {
        scan_trigger: trigger,
        scan_window: Duration::from_secs(60),
        tcp_ports: "1,79,111,143"
            .split(',')
            .map(|p| p.parse().unwrap())
            .collect(),
        udp_ports: [7u16, 9, 513].into_iter().collect(),
        ..Config::default()
    }
}

fn detector(config: &Config, modes: &[Mode]) -> Detector {
    Detector::builder(config)
        .modes(modes.iter().copied())
        .seed(HashSeed::FIXED)
        .build()
        .unwrap()
}

fn alert(event: Event) -> Alert {
    match event {
        Event::Alert(a) => a,
        other => panic!("expected an alert, got {other:?}"),
    }
}

#[test]
fn build_errors() {
    assert_eq!(
        Detector::builder(&config(0)).build().unwrap_err(),
        DetectorError::NoModes
    );
    let mut c = config(65);
    assert!(matches!(
        Detector::builder(&c).modes([Mode::Tcp]).build(),
        Err(DetectorError::Tracker(TrackerError::TriggerTooLarge { .. }))
    ));
    c.scan_trigger = 1;
    c.max_tracked_sources = 0;
    assert!(matches!(
        Detector::builder(&c).modes([Mode::Tcp]).build(),
        Err(DetectorError::Tracker(TrackerError::Capacity { .. }))
    ));
}

#[test]
fn unmonitored_ports_protocols_and_kinds() {
    let mut d = detector(&config(1), &[Mode::StealthTcp]);
    assert!(matches!(
        d.observe(&syn(SCANNER, 22, 0)),
        Event::NotMonitored(_)
    ));
    assert!(matches!(
        d.observe(&udp(SCANNER, 7, 0)),
        Event::NotMonitored(_)
    ));
    let connect = probe(SCANNER, Protocol::Tcp, ScanKind::Connect, 79, 0);
    assert!(
        matches!(d.observe(&connect), Event::NotMonitored(_)),
        "connect probes belong to the tcp mode, which is not active"
    );
    for kind in [ScanKind::Ack, ScanKind::Maimon] {
        let p = probe(SCANNER, Protocol::Tcp, kind, 79, 0);
        assert!(matches!(d.observe(&p), Event::NotMonitored(_)), "{kind}");
    }
    assert_eq!(d.stats().not_monitored, 5);
    assert_eq!(d.stats().tracker.tracked, 0, "nothing was counted");
    for (i, kind) in [
        ScanKind::Fin,
        ScanKind::Null,
        ScanKind::Xmas,
        ScanKind::Fragment,
        ScanKind::Other(TcpFlags::SYN | TcpFlags::FIN),
    ]
    .into_iter()
    .enumerate()
    {
        let src = format!("198.51.100.{i}");
        let p = probe(&src, Protocol::Tcp, kind, 79, 0);
        assert!(matches!(d.observe(&p), Event::Alert(_)), "{kind}");
    }
}

#[test]
fn ack_family_counts_only_when_enabled() {
    let mut c = config(1);
    c.detect_ack_scans = true;
    let mut d = detector(&c, &[Mode::StealthTcp]);
    let p = probe(SCANNER, Protocol::Tcp, ScanKind::Ack, 79, 0);
    assert!(matches!(d.observe(&p), Event::Alert(_)));
    let p = probe("198.51.100.1", Protocol::Tcp, ScanKind::Maimon, 79, 0);
    assert!(matches!(d.observe(&p), Event::Alert(_)));
}

#[test]
fn probes_route_to_their_mode() {
    let mut d = detector(
        &config(1),
        &[Mode::Tcp, Mode::StealthUdp, Mode::AdvancedTcp],
    );
    let a = alert(d.observe(&probe(
        "198.51.100.1",
        Protocol::Tcp,
        ScanKind::Connect,
        79,
        0,
    )));
    assert_eq!(a.mode, Mode::Tcp);
    let a = alert(d.observe(&syn("198.51.100.2", 500, 0)));
    assert_eq!(a.mode, Mode::AdvancedTcp);
    let a = alert(d.observe(&udp("198.51.100.3", 513, 0)));
    assert_eq!(a.mode, Mode::StealthUdp);
    assert!(matches!(
        d.observe(&udp("198.51.100.4", 514, 0)),
        Event::NotMonitored(_)
    ));

    let mut d = detector(&config(1), &[Mode::Udp]);
    assert_eq!(alert(d.observe(&udp("198.51.100.1", 9, 0))).mode, Mode::Udp);
}

#[test]
fn stealth_skips_listening_ports_and_connect_does_not() {
    let listening_tcp: PortSet = [79u16, 22].into_iter().collect();
    let listening_udp: PortSet = [513u16].into_iter().collect();
    let mut d = Detector::builder(&config(1))
        .modes([Mode::StealthTcp, Mode::StealthUdp])
        .listening(listening_tcp.clone(), listening_udp.clone())
        .build()
        .unwrap();
    assert!(!d.monitored_ports(Mode::StealthTcp).unwrap().contains(79));
    assert!(d.monitored_ports(Mode::StealthTcp).unwrap().contains(111));
    assert!(matches!(
        d.observe(&syn(SCANNER, 79, 0)),
        Event::NotMonitored(_)
    ));
    assert!(matches!(
        d.observe(&udp(SCANNER, 513, 0)),
        Event::NotMonitored(_)
    ));
    assert!(matches!(d.observe(&udp(SCANNER, 9, 0)), Event::Alert(_)));
    // A service stops listening: the port is watched again after the refresh.
    d.set_listening(PortSet::new(), PortSet::new());
    assert!(d.monitored_ports(Mode::StealthTcp).unwrap().contains(79));

    let d = Detector::builder(&config(1))
        .modes([Mode::Tcp])
        .listening(listening_tcp, listening_udp)
        .build()
        .unwrap();
    assert!(d.monitored_ports(Mode::Tcp).unwrap().contains(79));
    assert!(d.monitored_ports(Mode::StealthTcp).is_none());
}

#[test]
fn advanced_mode_port_selection() {
    // PortSentry's verified case: N=1024, a listener on 22, excludes 113 and 139.
    let mut c = config(1);
    c.advanced_ports_tcp = 1024;
    c.advanced_exclude_tcp = [113u16, 139].into_iter().collect();
    let d = Detector::builder(&c)
        .modes([Mode::AdvancedTcp])
        .listening([22u16].into_iter().collect(), PortSet::new())
        .build()
        .unwrap();
    let set = d.monitored_ports(Mode::AdvancedTcp).unwrap();
    for p in [22, 113, 139, 1024, 2000, 65535] {
        assert!(!set.contains(p), "{p} must not be hot");
    }
    for p in [0, 1, 443, 1023] {
        assert!(set.contains(p), "{p} must be hot");
    }
    assert_eq!(set.len(), 1024 - 3);

    // No excludes and no listeners: still nothing at or above the bound (1.2's bug avoided).
    c.advanced_exclude_udp = PortSet::new();
    c.advanced_ports_udp = 100;
    let mut d = detector(&c, &[Mode::AdvancedUdp]);
    assert_eq!(d.monitored_ports(Mode::AdvancedUdp).unwrap().len(), 100);
    assert!(matches!(
        d.observe(&udp(SCANNER, 100, 0)),
        Event::NotMonitored(_)
    ));
    assert!(matches!(
        d.observe(&udp(SCANNER, 5000, 0)),
        Event::NotMonitored(_)
    ));
    assert!(matches!(d.observe(&udp(SCANNER, 99, 0)), Event::Alert(_)));

    c.advanced_ports_udp = 0;
    let d = detector(&c, &[Mode::AdvancedUdp]);
    assert!(d.monitored_ports(Mode::AdvancedUdp).unwrap().is_empty());
}

#[test]
fn never_block_reasons_in_both_families() {
    let nb = NeverBlock::new()
        .own_addresses([ip("192.0.2.1").into(), ip("2001:db8::1").into()])
        .gateways([ip("192.0.2.254").into()])
        .resolvers([ip("2001:db8:53::53").into()])
        .ignore_list(["198.51.100.0/24".parse().unwrap()]);
    let build = |infra: bool| {
        let mut c = config(1);
        c.never_block_infrastructure = infra;
        Detector::builder(&c)
            .modes([Mode::StealthTcp])
            .never_block(nb.clone())
            .build()
            .unwrap()
    };
    let mut d = build(true);
    let cases = [
        ("127.0.0.1", IgnoreReason::Loopback),
        ("::1", IgnoreReason::Loopback),
        ("::ffff:127.0.0.8", IgnoreReason::Loopback),
        ("192.0.2.1", IgnoreReason::OwnAddress),
        ("::ffff:192.0.2.1", IgnoreReason::OwnAddress),
        ("2001:db8::1", IgnoreReason::OwnAddress),
        ("192.0.2.254", IgnoreReason::Gateway),
        ("2001:db8:53::53", IgnoreReason::Resolver),
        ("198.51.100.77", IgnoreReason::IgnoreFile),
        ("::ffff:198.51.100.78", IgnoreReason::IgnoreFile),
    ];
    for (src, want) in cases {
        match d.observe(&syn(src, 79, 0)) {
            Event::Ignored { reason, .. } => assert_eq!(reason, want, "{src}"),
            other => panic!("{src}: {other:?}"),
        }
    }
    assert_eq!(d.stats().ignored, cases.len() as u64);
    assert_eq!(d.stats().tracker.tracked, 0);

    let mut d = build(false);
    assert!(matches!(
        d.observe(&syn("192.0.2.254", 79, 0)),
        Event::Alert(_)
    ));
    assert!(matches!(
        d.observe(&syn("2001:db8:53::53", 79, 0)),
        Event::Alert(_)
    ));
    assert!(matches!(
        d.observe(&syn("2001:db8::1", 79, 0)),
        Event::Ignored {
            reason: IgnoreReason::OwnAddress,
            ..
        }
    ));
}

#[test]
fn trigger_semantics_zero_one_and_n() {
    for trigger in [0, 1] {
        let mut d = detector(&config(trigger), &[Mode::StealthTcp]);
        let a = alert(d.observe(&syn(SCANNER, 79, 0)));
        assert_eq!(a.distinct_ports, 1);
    }
    let mut d = detector(&config(3), &[Mode::StealthTcp]);
    match d.observe(&syn(SCANNER, 1, 0)) {
        Event::BelowTrigger {
            distinct_ports,
            trigger,
            ..
        } => assert_eq!((distinct_ports, trigger), (1, 3)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        d.observe(&syn(SCANNER, 1, 1)),
        Event::BelowTrigger {
            distinct_ports: 1,
            ..
        }
    ));
    assert!(matches!(
        d.observe(&syn(SCANNER, 79, 2)),
        Event::BelowTrigger {
            distinct_ports: 2,
            ..
        }
    ));
    let a = alert(d.observe(&syn(SCANNER, 111, 3)));
    assert_eq!(
        (a.distinct_ports, a.mode, a.probe.destination_port),
        (3, Mode::StealthTcp, 111)
    );
    assert_eq!(a.response, BlockMode::LogOnly);
}

#[test]
fn tcp_and_udp_of_one_source_add_up() {
    let mut d = detector(&config(2), &[Mode::StealthTcp, Mode::StealthUdp]);
    assert!(matches!(
        d.observe(&syn(SCANNER, 1, 0)),
        Event::BelowTrigger { .. }
    ));
    let a = alert(d.observe(&udp(SCANNER, 9, 0)));
    assert_eq!(a.mode, Mode::StealthUdp);
}

#[test]
fn window_expiry_forgets_old_probes() {
    let mut d = detector(&config(2), &[Mode::StealthTcp]);
    assert!(matches!(
        d.observe(&syn(SCANNER, 1, 0)),
        Event::BelowTrigger { .. }
    ));
    assert!(matches!(
        d.observe(&syn(SCANNER, 79, 60)),
        Event::BelowTrigger {
            distinct_ports: 1,
            ..
        }
    ));
    assert!(matches!(
        d.observe(&syn(SCANNER, 111, 119)),
        Event::Alert(_)
    ));
}

#[test]
fn log_only_alerts_once_per_window() {
    let mut d = detector(&config(1), &[Mode::StealthTcp]);
    assert!(matches!(d.observe(&syn(SCANNER, 1, 0)), Event::Alert(_)));
    for t in [0, 1, 30, 59] {
        assert!(matches!(
            d.observe(&syn(SCANNER, 79, t)),
            Event::AlreadyAlerted(_)
        ));
    }
    assert!(
        !d.is_blocked(ip(SCANNER)),
        "log only records nothing as blocked"
    );
    assert_eq!(d.blocks().count(), 0);
    assert!(matches!(d.observe(&syn(SCANNER, 79, 60)), Event::Alert(_)));
    assert_eq!(d.stats().alerts, 2);
    assert_eq!(d.stats().already_alerted, 4);
}

#[test]
fn block_lifecycle_pending_success_expiry_release() {
    let mut c = config(2);
    c.block_tcp = BlockMode::Block;
    c.block_timeout = Some(Duration::from_secs(3600));
    let mut d = detector(&c, &[Mode::StealthTcp]);
    d.observe(&syn(SCANNER, 1, 100));
    let a = alert(d.observe(&syn(SCANNER, 79, 101)));
    assert_eq!(a.response, BlockMode::Block);
    // Pending: a flood of probes while the command runs does not alert again.
    for i in 0..1000 {
        assert!(matches!(
            d.observe(&syn(SCANNER, [111, 143, 1][i % 3], 101)),
            Event::AlreadyBlocked(_)
        ));
    }
    assert_eq!(d.stats().alerts, 1);
    assert_eq!(d.stats().blocks.pending, 1);
    let record = d.record_block(&a, Timestamp::from_secs(102)).unwrap();
    assert_eq!(record.expires_at, Some(Timestamp::from_secs(3702)));
    assert_eq!(d.stats().blocks.blocked, 1);
    assert!(
        d.next_expiry()
            .is_some_and(|t| t <= Timestamp::from_secs(3702))
    );
    assert!(matches!(
        d.observe(&syn(SCANNER, 143, 200)),
        Event::AlreadyBlocked(_)
    ));

    assert_eq!(d.expire(Timestamp::from_secs(3701)).count(), 0);
    // The block time is over but expire has not run: still blocked, so releases pair up.
    assert!(matches!(
        d.observe(&syn(SCANNER, 143, 3705)),
        Event::AlreadyBlocked(_)
    ));
    let released: Vec<Release> = d.expire(Timestamp::from_secs(3705)).collect();
    assert_eq!(
        released,
        vec![Release {
            address: ip(SCANNER),
            blocked_at: Timestamp::from_secs(102),
            released_at: Timestamp::from_secs(3705),
            mode: Mode::StealthTcp,
            port: 79,
        }]
    );
    assert_eq!(d.expire(Timestamp::from_secs(4000)).count(), 0);
    // Released: counting starts again from zero.
    assert!(matches!(
        d.observe(&syn(SCANNER, 1, 3706)),
        Event::BelowTrigger {
            distinct_ports: 1,
            ..
        }
    ));
    assert!(matches!(
        d.observe(&syn(SCANNER, 79, 3706)),
        Event::Alert(_)
    ));
}

#[test]
fn failed_block_records_nothing_and_retries_after_the_window() {
    let mut c = config(1);
    c.block_udp = BlockMode::RunCommandOnly;
    let mut d = detector(&c, &[Mode::StealthUdp]);
    let a = alert(d.observe(&udp(SCANNER, 9, 0)));
    assert_eq!(a.response, BlockMode::RunCommandOnly);
    assert!(d.record_block_failed(ip(SCANNER)));
    assert!(!d.is_blocked(ip(SCANNER)));
    assert_eq!(d.blocks().count(), 0);
    assert!(matches!(
        d.observe(&udp(SCANNER, 9, 10)),
        Event::AlreadyAlerted(_)
    ));
    assert!(matches!(d.observe(&udp(SCANNER, 9, 60)), Event::Alert(_)));
    assert_eq!(d.stats().blocks.failed, 1);
}

#[test]
fn block_timeout_zero_never_expires_and_unblock_releases() {
    let mut c = config(1);
    c.block_tcp = BlockMode::Block;
    let mut d = detector(&c, &[Mode::StealthTcp]);
    let a = alert(d.observe(&syn("2001:db8:bad::1", 79, 0)));
    let r = d.record_block(&a, Timestamp::from_secs(1)).unwrap();
    assert_eq!(r.expires_at, None);
    assert_eq!(d.expire(Timestamp::from_secs(1 << 40)).count(), 0);
    assert_eq!(d.next_expiry(), None, "nothing can expire");
    let rel = d
        .unblock(ip("2001:db8:bad::1"), Timestamp::from_secs(5))
        .unwrap();
    assert_eq!(rel.port, 79);
    assert!(!d.is_blocked(ip("2001:db8:bad::1")));
    assert!(
        d.unblock(ip("2001:db8:bad::1"), Timestamp::from_secs(5))
            .is_none()
    );
}

#[test]
fn pending_without_report_is_abandoned() {
    let mut c = config(1);
    c.block_tcp = BlockMode::Block;
    let mut d = Detector::builder(&c)
        .modes([Mode::StealthTcp])
        .pending_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    d.observe(&syn(SCANNER, 79, 0));
    assert!(d.is_blocked(ip(SCANNER)));
    // Its actions may have run: the abandoned block is undone by a release (issue 9).
    let undo: Vec<Release> = d.expire(Timestamp::from_secs(30)).collect();
    assert_eq!(undo.len(), 1);
    assert!(!d.is_blocked(ip(SCANNER)));
    assert_eq!(d.stats().blocks.abandoned, 1);
    assert!(d.blocks_text().contains("releasing"));
    assert!(d.confirm_released(ip(SCANNER)));
}

#[test]
fn record_block_refuses_protected_addresses() {
    let mut c = config(1);
    c.block_tcp = BlockMode::Block;
    let mut d = detector(&c, &[Mode::StealthTcp]);
    let a = alert(d.observe(&syn("198.51.100.5", 79, 0)));
    // A reload puts it on the ignore list before the responders report.
    d.set_never_block(NeverBlock::new().ignore_list(["198.51.100.0/24".parse().unwrap()]));
    assert_eq!(
        d.record_block(&a, Timestamp::from_secs(1)),
        Err(BlockError::NeverBlock {
            address: ip("198.51.100.5"),
            reason: IgnoreReason::IgnoreFile
        })
    );
    assert!(!d.is_blocked(ip("198.51.100.5")));
}

#[test]
fn restore_from_text_and_release_protected_and_overdue_blocks() {
    let text = "\
# portsentry block table v1: address blocked_at expires_at mode port
203.0.113.1 1000 never stcp 1
2001:db8::7 1000 5000 atcp 111
203.0.113.2 1000 1500 sudp 9
192.0.2.254 1000 never stcp 79
";
    let records = crate::block_table::parse_records(text).unwrap();
    let mut d = Detector::builder(&config(1))
        .modes([Mode::StealthTcp])
        .never_block(NeverBlock::new().gateways([ip("192.0.2.254").into()]))
        .build()
        .unwrap();
    let summary = d.restore_blocks(records);
    assert_eq!(summary.restored, 3);
    assert_eq!(summary.released_protected, 1);
    assert!(matches!(
        d.observe(&syn("2001:db8::7", 79, 2000)),
        Event::AlreadyBlocked(_)
    ));

    let mut released: Vec<IpAddr> = d
        .expire(Timestamp::from_secs(2000))
        .map(|r| r.address)
        .collect();
    released.sort();
    assert_eq!(released, vec![ip("192.0.2.254"), ip("203.0.113.2")]);
    assert_eq!(d.blocks().count(), 2);
    let text_now = d.blocks_text();
    assert!(text_now.contains("\n203.0.113.1 1000 never stcp 1\n"));
    assert!(text_now.contains("\n2001:db8::7 1000 5000 atcp 111\n"));
    assert_eq!(
        crate::block_table::parse_records(&text_now).unwrap().len(),
        2
    );
}

#[test]
fn event_helpers() {
    let mut d = detector(&config(1), &[Mode::StealthTcp]);
    let e = d.observe(&syn(SCANNER, 79, 0));
    assert_eq!(e.kind_str(), "alert");
    assert_eq!(e.probe().unwrap().destination_port, 79);
    assert_eq!(d.observe(&syn(SCANNER, 80, 0)).kind_str(), "not_monitored");
}

/// The memory-bound acceptance test: one million spoofed one-probe sources interleaved with a
/// real scanner (trigger 5); memory stays fixed, tracked sources stay under the bound at
/// every step, and the scanner is still detected.
#[test]
fn million_spoofed_sources_do_not_hide_a_real_scanner() {
    const FLOOD: u32 = 1_000_000;
    let mut c = config(5);
    c.scan_window = Duration::from_secs(300);
    c.max_tracked_sources = 65_536;
    c.tcp_ports = (1..=1024).collect();
    let mut d = detector(&c, &[Mode::StealthTcp]);
    let memory = d.tracker_memory_bytes();
    let scanner = Ipv4Addr::new(203, 0, 113, 66);
    // The scanner's 5 distinct ports spread evenly through the flood, 200,000 spoofed sources
    // apart: its first probe has to outlive 200,000 newer one-probe sources (the first-probe
    // tier keeps it through at least 1,048,576).
    let scanner_at: [(u32, u16); 5] = [
        (0, 22),
        (200_000, 23),
        (400_000, 80),
        (600_000, 443),
        (800_000, 8),
    ];
    let mut next = 0;
    let mut scanner_events = Vec::new();
    for i in 0..FLOOD {
        // One microsecond per packet: the whole flood takes one second of capture time.
        let at = Timestamp::from_micros(1_000_000_000 + u64::from(i));
        // Spoofed sources from 10.0.0.0/8 and beyond, each used once, to port 1..=1024.
        let spoofed = Probe {
            at,
            source: IpAddr::V4(Ipv4Addr::from_bits(0x0A00_0000 + i)),
            destination: ip("192.0.2.1"),
            protocol: Protocol::Tcp,
            source_port: 1234,
            destination_port: (i % 1024) as u16 + 1,
            kind: ScanKind::Syn,
            ip_options: false,
        };
        assert!(matches!(
            d.observe(&spoofed),
            Event::BelowTrigger {
                distinct_ports: 1,
                ..
            }
        ));
        if next < scanner_at.len() && scanner_at[next].0 == i {
            let mut p = spoofed;
            p.source = IpAddr::V4(scanner);
            p.destination_port = scanner_at[next].1;
            scanner_events.push(d.observe(&p));
            next += 1;
        }
        let tracked = d.tracker().len();
        assert!(tracked <= 65_536, "step {i}: {tracked} tracked");
    }
    assert_eq!(d.tracker_memory_bytes(), memory, "memory never grows");
    assert_eq!(d.tracker().capacity(), 65_536);
    assert_eq!(scanner_events.len(), 5);
    for (n, e) in scanner_events[..4].iter().enumerate() {
        match e {
            Event::BelowTrigger { distinct_ports, .. } => {
                assert_eq!(*distinct_ports, n as u32 + 1, "progress kept at probe {n}")
            }
            other => panic!("scanner probe {n}: {other:?}"),
        }
    }
    let a = alert(scanner_events[4]);
    assert_eq!(a.probe.source, IpAddr::V4(scanner));
    assert_eq!(a.distinct_ports, 5);
    let stats = d.stats();
    assert_eq!(stats.alerts, 1);
    // The flood never took a full slot: it cost one first-probe entry per source.
    assert_eq!(stats.tracker.tracked, 1);
    assert_eq!(stats.tracker.evicted_probation, 0);
    assert_eq!(stats.tracker.first_probe_overflows, 0);
    assert!(stats.tracker.memory_bytes <= 32 << 20);
    assert_eq!(stats.tracker.untracked_collisions, 0);
}

mod prop {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    struct Step {
        src: u8,
        udp: bool,
        port: u8,
        dt_ms: u16,
        outcome: u8,
    }

    fn step() -> impl Strategy<Value = Step> {
        (any::<u8>(), any::<bool>(), 0u8..16, 0u16..2500, any::<u8>()).prop_map(
            |(src, udp, port, dt_ms, outcome)| Step {
                src,
                udp,
                port,
                dt_ms,
                outcome,
            },
        )
    }

    proptest! {
        /// Random probe sequences, with a caller that reports random block outcomes and calls
        /// expire: tracked sources stay under the bound, and no source gets two alerts inside
        /// one window unless it was released in between (the pool of sources is smaller than
        /// the protected list, so eviction cannot interfere).
        #[test]
        fn invariants_hold(
            trigger in 0u32..4,
            block in 0u8..3,
            timeout_s in 0u64..8,
            steps in proptest::collection::vec(step(), 0..300),
        ) {
            let window = Duration::from_secs(4);
            let mut c = config(trigger);
            c.scan_window = window;
            c.max_tracked_sources = 16;
            c.tcp_ports = (0..16).collect();
            c.udp_ports = (0..16).collect();
            let response = match block { 0 => BlockMode::LogOnly, 1 => BlockMode::Block, _ => BlockMode::RunCommandOnly };
            c.block_tcp = response;
            c.block_udp = response;
            c.block_timeout = (timeout_s > 0).then(|| Duration::from_secs(timeout_s));
            let mut d = detector(&c, &[Mode::StealthTcp, Mode::StealthUdp]);
            let memory = d.tracker_memory_bytes();
            let mut last_alert: HashMap<IpAddr, Timestamp> = HashMap::new();
            let mut now = Timestamp::from_secs(1000);
            for s in steps {
                now = now.saturating_add(Duration::from_millis(u64::from(s.dt_ms)));
                for r in d.expire(now) {
                    last_alert.remove(&r.address);
                }
                let src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, s.src % 10));
                let p = Probe {
                    at: now,
                    source: src,
                    destination: ip("192.0.2.1"),
                    protocol: if s.udp { Protocol::Udp } else { Protocol::Tcp },
                    source_port: 1,
                    destination_port: u16::from(s.port),
                    kind: if s.udp { ScanKind::Udp } else { ScanKind::Syn },
                    ip_options: false,
                };
                let blocked_before = d.is_blocked(src);
                let event = d.observe(&p);
                if blocked_before {
                    prop_assert!(matches!(event, Event::AlreadyBlocked(_)), "{event:?}");
                }
                if let Event::Alert(a) = event {
                    if let Some(prev) = last_alert.get(&src) {
                        prop_assert!(now.saturating_duration_since(*prev) >= window,
                            "second alert for {src} within the window: {prev:?} then {now:?}");
                    }
                    last_alert.insert(src, now);
                    if a.response != BlockMode::LogOnly {
                        if s.outcome % 3 == 0 {
                            d.record_block_failed(src);
                        } else if s.outcome % 3 == 1 {
                            d.record_block(&a, now).unwrap();
                        } // else: the report is late or lost; the pending timeout handles it.
                    }
                }
                prop_assert!(d.tracker().len() <= 16);
                prop_assert_eq!(d.tracker_memory_bytes(), memory);
            }
        }
    }
}

#[test]
fn probes_are_counted_by_mode_and_kind_once_routed() {
    let mut d = detector(&config(3), &[Mode::StealthTcp, Mode::StealthUdp]);
    d.observe(&syn(SCANNER, 22, 0)); // not monitored: not a probe of any mode
    d.observe(&syn(SCANNER, 79, 0));
    d.observe(&syn(SCANNER, 79, 1)); // a repeat still counts as a probe
    d.observe(&probe(SCANNER, Protocol::Tcp, ScanKind::Fin, 111, 1));
    d.observe(&udp("203.0.113.10", 7, 2));
    d.observe(&syn("127.0.0.1", 143, 2)); // ignored, but a probe all the same
    let probes = d.stats().probes;
    assert_eq!(probes.get(Mode::StealthTcp, ScanKind::Syn), 3);
    assert_eq!(probes.get(Mode::StealthTcp, ScanKind::Fin), 1);
    assert_eq!(probes.get(Mode::StealthUdp, ScanKind::Udp), 1);
    assert_eq!(probes.total(), 5);
    assert_eq!(d.stats().not_monitored, 1);
}

/// Issue 9: a gateway that appears after the block (DHCP renew, route change) is released at
/// once, not merely reported as protected on its next probe.
#[test]
fn a_block_of_an_address_that_became_protected_is_released_at_once() {
    let mut c = config(1);
    c.block_tcp = BlockMode::Block;
    let mut d = detector(&c, &[Mode::StealthTcp]);
    let Event::Alert(alert) = d.observe(&syn(SCANNER, 79, 0)) else {
        panic!()
    };
    d.record_block(&alert, Timestamp::from_secs(1)).unwrap();
    assert!(d.release_protected(Timestamp::from_secs(2)).is_empty());
    d.set_never_block(NeverBlock::new().gateways([ip(SCANNER).into()]));
    let released = d.release_protected(Timestamp::from_secs(3));
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].address, ip(SCANNER));
    assert!(!d.is_blocked(ip(SCANNER)));
    assert!(d.blocks_text().contains("releasing"));
}

/// Issue 9: forged sources with blocking on and the default limits: at most `BLOCK_RATE`
/// blocks in a burst, then one a second; reserved sources never; every refusal counted.
#[test]
fn limits_bound_blocks_from_forged_sources_and_reserved_sources_are_never_blocked() {
    let mut c = config(1);
    c.block_tcp = BlockMode::Block;
    let mut d = detector(&c, &[Mode::StealthTcp]);
    let mut alerts = 0;
    let mut limited = 0;
    for i in 0..3000u32 {
        let source = Ipv4Addr::from(0x0a00_0000 + i).to_string();
        match d.observe(&syn(&source, 79, 0)) {
            Event::Alert(_) => alerts += 1,
            Event::Limited {
                limit: crate::event::BlockLimit::Rate,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((alerts, limited), (60, 2940));
    assert_eq!(d.stats().limited, 2940);
    for reserved in [
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "::",
        "ff02::1",
    ] {
        assert!(
            matches!(
                d.observe(&syn(reserved, 79, 100)),
                Event::Ignored {
                    reason: IgnoreReason::Reserved,
                    ..
                }
            ),
            "{reserved}"
        );
    }
    // MAX_BLOCKS: with the rate lifted, no more than MAX_BLOCKS at once.
    c.block_rate = 0;
    c.max_blocks = 100;
    d.reconfigure(&c).unwrap();
    let more = (0..1000u32)
        .filter(|i| {
            let source = Ipv4Addr::from(0x0b00_0000 + i).to_string();
            matches!(d.observe(&syn(&source, 79, 200)), Event::Alert(_))
        })
        .count();
    assert_eq!(more, 40, "60 pending already, 40 more up to MAX_BLOCKS");
}
