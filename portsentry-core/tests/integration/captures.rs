//! Every frame of every shared capture classifies without panic, and the attacker's probes
//! have the kind, protocol and ports that `manifest.json` names.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use portsentry_core::classify::{SkipCounts, classify, classify_general};
use portsentry_core::source::pcap::read_all;
use portsentry_core::{Probe, Protocol};
use serde_json::Value;

use crate::support::captures_dir;

struct Manifest {
    attackers: Vec<IpAddr>,
    victims: Vec<IpAddr>,
    listening_tcp: BTreeSet<u16>,
    captures: BTreeMap<String, Value>,
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(captures_dir().join("manifest.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let addresses = |key: &str| -> Vec<IpAddr> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().parse().unwrap())
            .collect()
    };
    Manifest {
        attackers: addresses("attacker"),
        victims: addresses("victim"),
        listening_tcp: json["victim_listening_tcp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| u16::try_from(p.as_u64().unwrap()).unwrap())
            .collect(),
        captures: json["captures"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect(),
    }
}

/// The probes the attacker sent to the victim, and the skip tally of all frames.
fn attacker_probes(manifest: &Manifest, name: &str) -> (Vec<Probe>, SkipCounts, usize) {
    let frames = read_all(captures_dir().join(name)).unwrap();
    assert!(!frames.is_empty(), "{name} holds frames");
    let mut probes = Vec::new();
    let mut skips = SkipCounts::new();
    for frame in &frames {
        let result = classify(frame.at, frame.link, &frame.data);
        assert_eq!(
            result,
            classify_general(frame.at, frame.link, &frame.data),
            "{name} record {}",
            frame.record
        );
        match result {
            Ok(probe) => {
                assert_eq!(probe.at, frame.at);
                if manifest.attackers.contains(&probe.source)
                    && manifest.victims.contains(&probe.destination)
                {
                    probes.push(probe);
                }
            }
            Err(reason) => skips.record(reason),
        }
    }
    (probes, skips, frames.len())
}

#[test]
fn scan_captures_show_the_manifest_kind_on_every_probed_port() {
    let manifest = manifest();
    let mut checked = 0;
    for (name, entry) in &manifest.captures {
        let expect = &entry["expect"];
        let Some(kind) = expect["kind"].as_str() else {
            continue;
        };
        let protocol = match expect["protocol"].as_str().unwrap() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => panic!("unknown protocol {other}"),
        };
        let source: IpAddr = expect["source"].as_str().unwrap().parse().unwrap();
        let distinct = usize::try_from(expect["distinct_ports"].as_u64().unwrap()).unwrap();
        let (probes, skips, total) = attacker_probes(&manifest, name);

        let mut ports = BTreeSet::new();
        for probe in &probes {
            assert_eq!(probe.source, source, "{name}: {probe:?}");
            if probe.kind.as_str() == kind && probe.protocol == protocol {
                ports.insert(probe.destination_port);
            } else {
                // The only other probes a scanner sends are the ACKs that complete a
                // connect scan's handshakes on open ports.
                assert!(
                    probe.kind.is_ack_family()
                        && manifest.listening_tcp.contains(&probe.destination_port),
                    "{name}: unexpected probe {probe:?}"
                );
            }
        }
        assert_eq!(ports.len(), distinct, "{name}: distinct {kind} ports");
        eprintln!(
            "{name}: {total} frames, {} attacker probes, {} ports, skips {:?}",
            probes.len(),
            ports.len(),
            skips.nonzero().collect::<Vec<_>>()
        );
        checked += 1;
    }
    assert_eq!(checked, 7, "seven scan captures in the manifest");
}

#[test]
fn benign_captures_hold_no_probe_of_a_closed_port_but_ack_family() {
    let manifest = manifest();
    let mut checked = 0;
    for (name, entry) in &manifest.captures {
        if entry["expect"]["alert"].as_bool() != Some(false) {
            continue;
        }
        let (probes, skips, total) = attacker_probes(&manifest, name);
        for probe in &probes {
            let to_open_port = probe.protocol == Protocol::Tcp
                && manifest.listening_tcp.contains(&probe.destination_port);
            assert!(
                probe.kind.is_ack_family() || to_open_port,
                "{name}: a non-ACK probe of a closed port: {probe:?}"
            );
        }
        eprintln!(
            "{name}: {total} frames, {} attacker probes, skips {:?}",
            probes.len(),
            skips.nonzero().collect::<Vec<_>>()
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "three benign captures in the manifest");
}

#[test]
fn hping_ack_flood_is_three_thousand_bare_acks_to_port_80() {
    let manifest = manifest();
    let (probes, _, _) = attacker_probes(&manifest, "hping-ackflood.pcap");
    let acks = probes
        .iter()
        .filter(|p| p.kind.as_str() == "ack" && p.destination_port == 80)
        .count();
    assert_eq!(
        acks, 3000,
        "the manifest's tool line: 3000 bare ACKs to port 80"
    );
}
