//! Ground truth: replaying each shared capture with the ports of `manifest.json`, in the
//! stealth modes, gives exactly the `expect` column (source, protocol, kind, distinct ports,
//! and no alert for the benign captures), with the default `SCAN_TRIGGER` and with 3.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use portsentry_core::event::IgnoreReason;
use portsentry_core::replay::{KeptEvents, Replay, ReplayError, ReplayReport};
use portsentry_core::source::pcap::CaptureError;
use portsentry_core::{BlockMode, Config, Event, PortSet, Protocol};
use serde_json::Value;

use crate::support::captures_dir;

/// What the manifest says about the capture setup.
struct Setup {
    victims: Vec<IpAddr>,
    listening_tcp: PortSet,
    tcp_ports: PortSet,
    udp_ports: PortSet,
    /// (file name, expect object), in manifest order.
    captures: Vec<(String, Value)>,
}

fn setup() -> Setup {
    let dir = captures_dir();
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: manifest.json: {e}", dir.display()));
    let json: Value = serde_json::from_str(&text).unwrap();
    let ports = |key: &str| -> PortSet { json[key].as_str().unwrap().parse().unwrap() };
    Setup {
        victims: json["victim"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().parse().unwrap())
            .collect(),
        listening_tcp: json["victim_listening_tcp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| u16::try_from(p.as_u64().unwrap()).unwrap())
            .collect(),
        tcp_ports: ports("tcp_ports_probed"),
        udp_ports: ports("udp_ports_probed"),
        captures: json["captures"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, entry)| (name.clone(), entry["expect"].clone()))
            .collect(),
    }
}

fn config(setup: &Setup, scan_trigger: Option<u32>) -> Config {
    let mut config = Config {
        tcp_ports: setup.tcp_ports.clone(),
        udp_ports: setup.udp_ports.clone(),
        ..Config::default()
    };
    if let Some(trigger) = scan_trigger {
        config.scan_trigger = trigger;
    }
    config
}

/// The replay as a deployment on the victim would run: its addresses and listening ports.
fn victim_replay(setup: &Setup, config: &Config) -> Replay {
    Replay::builder(config)
        .own_addresses(setup.victims.iter().copied())
        .listening(setup.listening_tcp.clone(), PortSet::new())
        .build()
        .unwrap()
}

fn capture(name: &str) -> PathBuf {
    captures_dir().join(name)
}

/// Checks one report against one `expect` object; returns a description for the log.
fn check_expectation(
    setup: &Setup,
    config: &Config,
    name: &str,
    expect: &Value,
    report: &ReplayReport,
) -> String {
    let summary = &report.summary;
    assert!(summary.frames > 0, "{name}: no frame read");
    if expect["alert"].as_bool().unwrap() {
        let source: IpAddr = expect["source"].as_str().unwrap().parse().unwrap();
        let protocol = match expect["protocol"].as_str().unwrap() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => panic!("{name}: unknown protocol {other}"),
        };
        let kind = expect["kind"].as_str().unwrap();
        let distinct = usize::try_from(expect["distinct_ports"].as_u64().unwrap()).unwrap();

        let alerting: Vec<IpAddr> = summary.sources.iter().map(|s| s.source).collect();
        assert_eq!(alerting, [source], "{name}: alerting sources");
        let scanner = &summary.sources[0];
        assert_eq!(summary.alerts(), scanner.alerts.len() as u64, "{name}");
        for alert in &scanner.alerts {
            assert_eq!(alert.probe.source, source, "{name}");
            assert_eq!(alert.probe.protocol, protocol, "{name}: {alert:?}");
            assert_eq!(alert.probe.kind.as_str(), kind, "{name}: {alert:?}");
            assert_eq!(
                alert.response,
                BlockMode::LogOnly,
                "{name}: replays are log only"
            );
            let trigger = config.scan_trigger.max(1);
            assert_eq!(
                alert.distinct_ports, trigger,
                "{name}: alert at the trigger"
            );
        }
        // A scan shorter than SCAN_WINDOW alerts once (log only: one alert per window).
        let span = summary
            .last_frame_at
            .unwrap()
            .saturating_duration_since(summary.first_frame_at.unwrap());
        if span < config.scan_window {
            assert_eq!(scanner.alerts.len(), 1, "{name}: one alert per window");
        }
        assert_eq!(
            scanner.ports_probed.len(),
            distinct,
            "{name}: distinct ports probed: {:?}",
            scanner.ports_probed
        );
        // What the detector counted: the probed ports minus the ones a service owns.
        let listening = match protocol {
            Protocol::Tcp => &setup.listening_tcp,
            Protocol::Udp => &PortSet::new(),
        };
        let expected_counted: Vec<u16> = scanner
            .ports_probed
            .of(protocol)
            .iter()
            .copied()
            .filter(|&p| !listening.contains(p))
            .collect();
        assert_eq!(
            scanner.ports_counted.of(protocol),
            expected_counted,
            "{name}"
        );
        format!(
            "{name}: {} frames, {} probes, {} alert(s) from {source} ({protocol:?} {kind}), {} ports probed, {} counted",
            summary.frames,
            summary.probes,
            scanner.alerts.len(),
            scanner.ports_probed.len(),
            scanner.ports_counted.len()
        )
    } else {
        assert_eq!(summary.alerts(), 0, "{name}: alerts {:?}", summary.sources);
        assert!(summary.sources.is_empty(), "{name}");
        assert!(
            !report.events.iter().any(|e| matches!(e, Event::Alert(_))),
            "{name}"
        );
        format!(
            "{name}: {} frames, {} probes, no alert; events {:?}",
            summary.frames, summary.probes, summary.events_by_kind
        )
    }
}

fn ground_truth(scan_trigger: Option<u32>) {
    let setup = setup();
    let config = config(&setup, scan_trigger);
    let replay = victim_replay(&setup, &config);
    assert_eq!(setup.captures.len(), 10, "ten captures in the manifest");
    for (name, expect) in &setup.captures {
        let report = replay
            .run_file(capture(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let line = check_expectation(&setup, &config, name, expect, &report);
        eprintln!("SCAN_TRIGGER {}: {line}", config.scan_trigger);
    }
}

#[test]
fn shared_captures_match_the_manifest_with_the_default_trigger() {
    assert_eq!(Config::default().scan_trigger, 0);
    ground_truth(None);
}

#[test]
fn shared_captures_match_the_manifest_with_trigger_3() {
    ground_truth(Some(3));
}

#[test]
fn without_the_victims_addresses_the_results_are_the_same() {
    // Frames the victim sent reach the detector then, as the victim's own probes; none of
    // them goes to a monitored port in these captures.
    let setup = setup();
    let config = config(&setup, None);
    let replay = Replay::builder(&config)
        .listening(setup.listening_tcp.clone(), PortSet::new())
        .build()
        .unwrap();
    for (name, expect) in &setup.captures {
        let report = replay.run_file(capture(name)).unwrap();
        check_expectation(&setup, &config, name, expect, &report);
    }
}

#[test]
fn without_the_listening_port_the_benign_http_capture_alerts() {
    // The knob that keeps benign-http quiet is the victim's listening port 8080, as in a
    // real deployment: stealth modes do not watch ports a service owns.
    let setup = setup();
    assert!(setup.tcp_ports.contains(8080) && setup.listening_tcp.contains(8080));
    let config = config(&setup, None);
    let replay = Replay::builder(&config)
        .own_addresses(setup.victims.iter().copied())
        .build()
        .unwrap();
    let report = replay.run_file(capture("benign-http.pcap")).unwrap();
    let sources: BTreeSet<String> = report
        .summary
        .sources
        .iter()
        .map(|s| s.source.to_string())
        .collect();
    assert_eq!(
        sources,
        BTreeSet::from(["203.0.113.1".to_owned(), "2001:db8:113::1".to_owned()])
    );
    for source in &report.summary.sources {
        assert_eq!(source.ports_counted.tcp, [8080]);
    }
}

#[test]
fn replays_are_deterministic_from_file_and_from_memory() {
    let setup = setup();
    let config = config(&setup, Some(3));
    let replay = victim_replay(&setup, &config);
    for name in ["nmap-syn.pcap", "nmap-udp.pcap", "benign-outbound.pcap"] {
        let first = replay.run_file(capture(name)).unwrap();
        let second = replay.run_file(capture(name)).unwrap();
        assert_eq!(first, second, "{name}");
        let bytes = std::fs::read(capture(name)).unwrap();
        let from_memory = replay.run_reader(name, bytes.as_slice()).unwrap();
        assert_eq!(first, from_memory, "{name}");
    }
}

#[test]
fn every_event_is_kept_on_request_and_counts_add_up() {
    let setup = setup();
    let config = config(&setup, Some(3));
    let replay = Replay::builder(&config)
        .own_addresses(setup.victims.iter().copied())
        .listening(setup.listening_tcp.clone(), PortSet::new())
        .keep_events(KeptEvents::All)
        .build()
        .unwrap();
    let report = replay.run_file(capture("nmap-syn.pcap")).unwrap();
    let s = &report.summary;
    assert_eq!(report.events.len() as u64, s.probes);
    assert_eq!(s.events_by_kind.values().sum::<u64>(), s.probes);
    assert_eq!(s.probes_by_kind.values().sum::<u64>(), s.probes);
    assert_eq!(
        s.frames,
        s.probes + s.skips.total() + s.not_to_host,
        "every frame is a probe, a skip or not for the host"
    );
    assert_eq!(s.events("below_trigger"), 2);
    assert_eq!(s.detector.alerts, 1);
}

#[test]
fn the_ignore_file_of_the_configuration_is_honoured() {
    let setup = setup();
    let dir = tempfile::tempdir().unwrap();
    let ignore = dir.path().join("portsentry.ignore");
    std::fs::write(&ignore, "# the lab\n203.0.113.0/30\n").unwrap();
    let mut config = config(&setup, None);
    config.ignore_file = Some(ignore);
    let report = victim_replay(&setup, &config)
        .run_file(capture("nmap-syn.pcap"))
        .unwrap();
    assert_eq!(report.summary.alerts(), 0);
    assert!(report.summary.events("ignored") >= 26);
    assert!(report.events.iter().all(|e| matches!(
        e,
        Event::Ignored {
            reason: IgnoreReason::IgnoreFile,
            ..
        }
    )));

    config.ignore_file = Some(dir.path().join("missing.ignore"));
    let err = Replay::builder(&config).build().unwrap_err();
    assert!(matches!(err, ReplayError::IgnoreFile(_)), "{err:?}");
    assert!(err.to_string().contains("missing.ignore"), "{err}");
}

#[test]
fn blocking_settings_are_replayed_as_log_only() {
    let setup = setup();
    let mut config = config(&setup, None);
    config.block_tcp = BlockMode::Block;
    config.kill_route = Some("/bin/false $TARGET$".to_owned());
    config.scan_window = Duration::from_secs(300);
    let report = victim_replay(&setup, &config)
        .run_file(capture("nmap-syn.pcap"))
        .unwrap();
    let s = &report.summary;
    assert_eq!(s.alerts(), 1);
    assert_eq!(
        s.events("already_blocked"),
        0,
        "nothing is blocked in a replay"
    );
    // The other monitored ports (8080 has a listener) come after the alert.
    let counted = s.sources[0].ports_counted.len() as u64;
    assert_eq!(s.events("already_alerted"), counted - 1);
    assert_eq!(
        (s.detector.blocks.blocked, s.detector.blocks.pending),
        (0, 0)
    );
}

#[test]
fn a_cut_capture_is_an_error_and_a_session_keeps_the_frames_before_it() {
    let setup = setup();
    let config = config(&setup, None);
    let replay = victim_replay(&setup, &config);
    let bytes = std::fs::read(capture("nmap-syn.pcap")).unwrap();
    let cut = &bytes[..bytes.len() - 10];
    let err = replay.run_reader("cut.pcap", cut).unwrap_err();
    assert!(
        matches!(err, ReplayError::Capture(CaptureError::Truncated { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("cut.pcap"), "{err}");

    let mut capture_file =
        portsentry_core::source::pcap::CaptureFile::from_reader("cut.pcap", cut).unwrap();
    let mut session = replay.session();
    let mut seen = 0;
    let error = loop {
        match capture_file.next_frame() {
            Some(Ok(frame)) => session.feed(&frame, |_| seen += 1),
            Some(Err(error)) => break error,
            None => panic!("the cut file ended without an error"),
        }
    };
    assert!(matches!(error, CaptureError::Truncated { .. }));
    let report = session.finish();
    assert!(report.summary.frames > 0);
    assert_eq!(report.summary.alerts(), 1, "the scan began before the cut");
    assert!(seen > 0);

    let err = replay.run_reader("empty.pcap", &[][..]).unwrap_err();
    assert!(
        matches!(err, ReplayError::Capture(CaptureError::NotACapture { .. })),
        "{err:?}"
    );
}
