//! Replay unit tests on frames built by hand (the shared captures are covered by the
//! integration tests).

use std::net::IpAddr;
use std::time::Duration;

use etherparse::PacketBuilder;

use super::*;
use crate::classify::LinkType;
use crate::event::IgnoreReason;

const SCANNER: [u8; 4] = [203, 0, 113, 1];
const VICTIM: [u8; 4] = [203, 0, 113, 2];
const OTHER: [u8; 4] = [198, 51, 100, 7];

/// A frame held with its bytes.
struct Owned {
    at: Timestamp,
    data: Vec<u8>,
}

fn syn(at: u64, from: [u8; 4], to: [u8; 4], port: u16) -> Owned {
    let mut data = Vec::new();
    PacketBuilder::ipv4(from, to, 64)
        .tcp(40000, port, 1, 1024)
        .syn()
        .write(&mut data, &[])
        .unwrap();
    Owned {
        at: Timestamp::from_secs(at),
        data,
    }
}

fn udp(at: u64, from: [u8; 4], to: [u8; 4], port: u16) -> Owned {
    let mut data = Vec::new();
    PacketBuilder::ipv4(from, to, 64)
        .udp(40000, port)
        .write(&mut data, b"x")
        .unwrap();
    Owned {
        at: Timestamp::from_secs(at),
        data,
    }
}

fn run(replay: &Replay, frames: &[Owned]) -> ReplayReport {
    replay.run_frames(frames.iter().enumerate().map(|(i, f)| Frame {
        record: i as u64 + 1,
        at: f.at,
        link: LinkType::RawIp,
        data: &f.data,
        original_len: u32::try_from(f.data.len()).unwrap(),
    }))
}

fn victim() -> IpAddr {
    IpAddr::from(VICTIM)
}

#[test]
fn default_modes_are_stealth_and_blocking_is_log_only() {
    let config = Config {
        block_tcp: BlockMode::Block,
        block_udp: BlockMode::RunCommandOnly,
        kill_run_cmd: Some("/bin/true".to_owned()),
        ..Config::default()
    };
    let replay = Replay::builder(&config).build().unwrap();
    assert_eq!(replay.modes(), DEFAULT_MODES);
    assert_eq!(replay.config().block_tcp, BlockMode::LogOnly);
    assert_eq!(replay.config().block_udp, BlockMode::LogOnly);
    let report = run(
        &replay,
        &[syn(1, SCANNER, VICTIM, 1), udp(2, OTHER, VICTIM, 7)],
    );
    assert_eq!(report.summary.alerts(), 2);
    for event in &report.events {
        let Event::Alert(alert) = event else {
            panic!("{event:?}")
        };
        assert_eq!(alert.response, BlockMode::LogOnly);
    }
}

#[test]
fn modes_are_deduplicated_and_none_is_an_error() {
    let config = Config::default();
    let replay = Replay::builder(&config)
        .modes([Mode::StealthUdp, Mode::StealthUdp, Mode::AdvancedTcp])
        .build()
        .unwrap();
    assert_eq!(replay.modes(), [Mode::StealthUdp, Mode::AdvancedTcp]);
    let shown = format!("{replay:?}");
    assert!(
        shown.starts_with("Replay { modes: [StealthUdp, AdvancedTcp]"),
        "{shown}"
    );
    assert!(shown.len() < 300, "{shown}");
    let err = Replay::builder(&config).modes([]).build().unwrap_err();
    assert!(
        matches!(err, ReplayError::Detector(DetectorError::NoModes)),
        "{err:?}"
    );
}

#[test]
fn connect_mode_sees_no_probe_in_a_capture() {
    let replay = Replay::builder(&Config::default())
        .modes([Mode::Tcp])
        .build()
        .unwrap();
    let report = run(&replay, &[syn(1, SCANNER, VICTIM, 1)]);
    assert_eq!(report.summary.probes, 1);
    assert_eq!(report.summary.events("not_monitored"), 1);
    assert_eq!(report.summary.alerts(), 0);
}

#[test]
fn own_addresses_drop_outgoing_and_foreign_probes_and_are_never_blocked() {
    let replay = Replay::builder(&Config::default())
        .own_addresses([victim()])
        .keep_events(KeptEvents::All)
        .build()
        .unwrap();
    let frames = [
        syn(1, VICTIM, SCANNER, 1),   // sent by the capture host
        syn(2, SCANNER, OTHER, 1),    // to another host
        syn(3, SCANNER, VICTIM, 11),  // a probe of the capture host
        udp(4, SCANNER, [255; 4], 7), // broadcast
    ];
    let report = run(&replay, &frames);
    let s = &report.summary;
    assert_eq!(s.frames, 4);
    assert_eq!(s.skips.get(Skip::Outgoing), 1);
    assert_eq!(s.not_to_host, 2);
    assert_eq!(s.probes, 1);
    assert_eq!(report.events.len(), 1);
    assert_eq!(s.sources[0].ports_probed.tcp, [11]);

    // Without them, every probe reaches the detector.
    let open = Replay::builder(&Config::default()).build().unwrap();
    let s = run(&open, &frames).summary;
    assert_eq!((s.probes, s.not_to_host), (4, 0));
    let alerting: Vec<IpAddr> = s.sources.iter().map(|s| s.source).collect();
    assert_eq!(alerting, [victim(), IpAddr::from(SCANNER)]);
}

#[test]
fn own_networks_and_the_given_ignore_list_are_protected() {
    let ignore = IgnoreList::parse("198.51.100.0/24\n", "test").unwrap();
    let replay = Replay::builder(&Config::default())
        .own_addresses(["203.0.113.0/29".parse::<IpNet>().unwrap()])
        .ignore_list(ignore)
        .build()
        .unwrap();
    // 203.0.113.1 is inside the host's own network: what it sends is the host's own
    // traffic, which live capture does not see.
    let report = run(
        &replay,
        &[syn(1, SCANNER, VICTIM, 1), syn(2, OTHER, VICTIM, 11)],
    );
    assert_eq!(report.summary.skips.get(Skip::Outgoing), 1);
    let reasons: Vec<IgnoreReason> = report
        .events
        .iter()
        .map(|e| match e {
            Event::Ignored { reason, .. } => *reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons, [IgnoreReason::IgnoreFile]);
    assert!(report.summary.sources.is_empty());
}

#[test]
fn listening_ports_are_skipped_by_the_stealth_modes() {
    let replay = Replay::builder(&Config::default())
        .listening("1".parse().unwrap(), "7".parse().unwrap())
        .build()
        .unwrap();
    let report = run(
        &replay,
        &[syn(1, SCANNER, VICTIM, 1), udp(2, SCANNER, VICTIM, 7)],
    );
    assert_eq!(report.summary.events("not_monitored"), 2);
    assert_eq!(report.summary.alerts(), 0);
}

#[test]
fn time_comes_from_the_frames_one_alert_per_window() {
    let config = Config {
        scan_trigger: 2,
        scan_window: Duration::from_secs(10),
        ..Config::default()
    };
    let replay = Replay::builder(&config).build().unwrap();
    let frames = [
        syn(100, SCANNER, VICTIM, 1),
        syn(101, SCANNER, VICTIM, 11),  // alert
        syn(105, SCANNER, VICTIM, 15),  // inside the window: quiet
        syn(130, SCANNER, VICTIM, 79),  // the window has passed: counting starts again
        syn(131, SCANNER, VICTIM, 111), // second alert
        syn(500, SCANNER, VICTIM, 143), // long after: below the trigger again
    ];
    let report = run(&replay, &frames);
    let s = &report.summary;
    assert_eq!(s.alerts(), 2);
    assert_eq!(s.events("already_alerted"), 1);
    assert_eq!(s.events("below_trigger"), 3);
    let scanner = &s.sources[0];
    let ports: Vec<u16> = scanner
        .alerts
        .iter()
        .map(|a| a.probe.destination_port)
        .collect();
    assert_eq!(ports, [11, 111]);
    assert_eq!(scanner.ports_counted.tcp, [1, 11, 15, 79, 111, 143]);
    assert_eq!(s.first_frame_at, Some(Timestamp::from_secs(100)));
    assert_eq!(s.last_frame_at, Some(Timestamp::from_secs(500)));
    // The same frames give the same report.
    assert_eq!(run(&replay, &frames), report);
}

#[test]
fn kept_events_choose_what_the_report_holds() {
    let frames = [
        syn(1, SCANNER, VICTIM, 1),
        syn(2, SCANNER, VICTIM, 11),
        syn(3, SCANNER, VICTIM, 80),
        udp(4, [127, 0, 0, 1], VICTIM, 7),
    ];
    let count = |kept| {
        let replay = Replay::builder(&Config::default())
            .keep_events(kept)
            .build()
            .unwrap();
        let report = run(&replay, &frames);
        assert_eq!(report.summary.probes, 4);
        report.events.len()
    };
    // Logged: the alert and the ignored loopback probe.
    assert_eq!(count(KeptEvents::Logged), 2);
    assert_eq!(count(KeptEvents::All), 4);
    assert_eq!(count(KeptEvents::None), 0);
}

#[test]
fn sources_are_listed_by_first_alert_and_skips_are_counted() {
    let replay = Replay::builder(&Config::default()).build().unwrap();
    let mut garbage = syn(0, SCANNER, VICTIM, 1);
    garbage.data.truncate(10);
    let frames = [
        syn(5, OTHER, VICTIM, 1),
        syn(6, SCANNER, VICTIM, 1),
        garbage,
    ];
    let report = run(&replay, &frames);
    let order: Vec<IpAddr> = report.summary.sources.iter().map(|s| s.source).collect();
    assert_eq!(order, [IpAddr::from(OTHER), IpAddr::from(SCANNER)]);
    assert_eq!(report.summary.skips.get(Skip::Truncated), 1);
    assert_eq!(report.summary.frames, 3);
    let other = report.summary.source(IpAddr::from(OTHER)).unwrap();
    assert_eq!(other.probes, 1);
    assert!(report.summary.source(victim()).is_none());
}

#[test]
fn batches_give_the_same_report_and_events_as_frame_by_frame() {
    let config = Config {
        scan_trigger: 2,
        scan_window: Duration::from_secs(10),
        ..Config::default()
    };
    let replay = Replay::builder(&config)
        .keep_events(KeptEvents::All)
        .build()
        .unwrap();
    let mut frames: Vec<Owned> = (0..100u32)
        .map(|i| {
            syn(
                u64::from(i),
                [198, 51, 100, (i % 7) as u8],
                VICTIM,
                [1, 11, 15, 79, 111][i as usize % 5],
            )
        })
        .collect();
    frames.push(udp(200, SCANNER, VICTIM, 7));
    let mut garbage = syn(201, SCANNER, VICTIM, 1);
    garbage.data.truncate(10);
    frames.push(garbage);
    fn frame(i: usize, f: &Owned) -> Frame<'_> {
        Frame {
            record: i as u64 + 1,
            at: f.at,
            link: LinkType::RawIp,
            data: &f.data,
            original_len: u32::try_from(f.data.len()).unwrap(),
        }
    }
    let mut one_by_one = Vec::new();
    let mut session = replay.session();
    for (i, f) in frames.iter().enumerate() {
        session.feed(&frame(i, f), |e| one_by_one.push(*e));
    }
    let expected = session.finish();
    let mut batched = Vec::new();
    let mut session = replay.session();
    let mut batch = FrameBatch::new();
    for (i, f) in frames.iter().enumerate() {
        if !batch.push(&frame(i, f)) {
            session.feed_batch(&batch, |e| batched.push(*e));
            batch.clear();
            assert!(batch.push(&frame(i, f)));
        }
    }
    session.feed_batch(&batch, |e| batched.push(*e));
    assert_eq!(session.finish(), expected);
    assert_eq!(batched, one_by_one);
    assert!(expected.summary.alerts() > 0);
}
