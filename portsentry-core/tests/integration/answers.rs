//! The capture host's own answers in the shared captures: replies to its own flows are no
//! probes, and alerts say what the scanner learned about the port (`--own-address`).

use std::net::IpAddr;

use portsentry_core::replay::{Replay, ReplayReport};
use portsentry_core::{Config, PortSet, PortState, Skip};

use crate::support::captures_dir;

fn victims() -> Vec<IpAddr> {
    ["203.0.113.2", "2001:db8:113::2"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect()
}

fn run(config: &Config, own: bool, name: &str) -> ReplayReport {
    let mut builder = Replay::builder(config).listening("8080".parse().unwrap(), PortSet::new());
    if own {
        builder = builder.own_addresses(victims());
    }
    builder
        .build()
        .unwrap()
        .run_file(captures_dir().join(name))
        .unwrap()
}

/// Every port watched: the victim's ephemeral ports too.
fn everything(detect_ack_scans: bool) -> Config {
    Config {
        tcp_ports: "1-65535".parse().unwrap(),
        udp_ports: "1-65535".parse().unwrap(),
        detect_ack_scans,
        ..Config::default()
    }
}

#[test]
fn the_victims_own_connection_is_no_scan_when_its_addresses_are_known() {
    // benign-outbound: the victim fetches pages from the attacker's port 9090. With every
    // port watched and ACK scans detected, the server's answers look like an ACK scan of the
    // victim's ephemeral ports unless the victim's own SYNs are heard.
    let config = everything(true);
    let blind = run(&config, false, "benign-outbound.pcap");
    assert!(blind.summary.alerts() > 0, "{:?}", blind.summary);
    let heard = run(&config, true, "benign-outbound.pcap");
    assert_eq!(heard.summary.alerts(), 0, "{:?}", heard.summary);
    assert!(heard.summary.skips.get(Skip::Reply) > 0);
    assert!(heard.summary.skips.get(Skip::Outgoing) > 0);
}

#[test]
fn scans_still_alert_and_carry_the_victims_answer() {
    let config = Config {
        tcp_ports: "1-65535".parse().unwrap(),
        udp_ports: "1-65535".parse().unwrap(),
        ..Config::default()
    };
    for (name, expected) in [
        ("nmap-syn.pcap", &[PortState::Closed][..]),
        ("nmap-syn6.pcap", &[PortState::Closed]),
        ("nmap-fin.pcap", &[PortState::Closed]),
        ("nmap-connect.pcap", &[PortState::Closed]),
        // ICMP errors are rate-limited by the victim's kernel: unreachable or no answer.
        (
            "nmap-udp.pcap",
            &[PortState::Unreachable, PortState::Filtered],
        ),
    ] {
        let heard = run(&config, true, name);
        let blind = run(&config, false, name);
        assert_eq!(heard.summary.alerts(), blind.summary.alerts(), "{name}");
        assert!(heard.summary.alerts() > 0, "{name}");
        for source in &heard.summary.sources {
            for alert in &source.alerts {
                assert!(
                    expected.contains(&alert.port_state),
                    "{name}: {:?} on port {}",
                    alert.port_state,
                    alert.probe.destination_port
                );
            }
        }
        for source in &blind.summary.sources {
            assert!(
                source
                    .alerts
                    .iter()
                    .all(|a| a.port_state == PortState::Unknown)
            );
        }
    }
}
