//! `classify` per probe kind, per link type, over a realistic mix, and the replay path over
//! real captures held in memory. Throughput is in frames (criterion reports elements/s).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portsentry_benches::{Fixture, captures_dir, kinds, link_types, mix};
use std::net::IpAddr;

use portsentry_core::classify::{SkipCounts, classify};
use portsentry_core::replay::{KeptEvents, Replay};
use portsentry_core::source::pcap::read_all;
use portsentry_core::{Config, PortSet, Timestamp};

const AT: Timestamp = Timestamp::from_secs(1_700_000_000);

fn per_frame(c: &mut Criterion, group_name: &str, fixtures: &[Fixture]) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for fixture in fixtures {
        group.bench_with_input(
            BenchmarkId::from_parameter(fixture.name),
            fixture,
            |b, f| {
                b.iter(|| classify(AT, f.link, black_box(&f.frame)));
            },
        );
    }
    group.finish();
}

fn by_kind(c: &mut Criterion) {
    per_frame(c, "classify_kind", &kinds());
}

fn by_link(c: &mut Criterion) {
    per_frame(c, "classify_link", &link_types());
}

fn over_mix(c: &mut Criterion) {
    let frames = mix();
    let mut group = c.benchmark_group("classify_mix");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("100_frames", |b| {
        b.iter(|| {
            let mut probes = 0u32;
            for f in &frames {
                probes += u32::from(classify(AT, f.link, black_box(&f.frame)).is_ok());
            }
            probes
        });
    });
    group.finish();
}

fn replay_path(c: &mut Criterion) {
    let dir = captures_dir();
    let mut frames = read_all(dir.join("nmap-syn.pcap")).expect("nmap-syn.pcap");
    frames.extend(read_all(dir.join("hping-ackflood.pcap")).expect("hping-ackflood.pcap"));
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("nmap_syn_and_hping_ackflood", |b| {
        b.iter(|| {
            let mut skips = SkipCounts::new();
            let mut probes = 0u64;
            for frame in &frames {
                match classify(frame.at, frame.link, black_box(&frame.data)) {
                    Ok(probe) => probes += u64::from(probe.destination_port > 0),
                    Err(reason) => skips.record(reason),
                }
            }
            (probes, skips)
        });
    });
    group.finish();
}

/// The whole offline path the daemon and `portsentry replay` share: expiry, classify, the
/// victim's capture filter and `Detector::observe`, over the same in-memory frames, with the
/// shared captures' setup (their ports monitored, stealth TCP and UDP). Each iteration starts
/// from a fresh copy of the detector, as a replay does; the tracker is kept small so that the
/// copy is cheap next to the frames.
fn whole_path(c: &mut Criterion) {
    let dir = captures_dir();
    let mut frames = read_all(dir.join("nmap-syn.pcap")).expect("nmap-syn.pcap");
    frames.extend(read_all(dir.join("nmap-udp.pcap")).expect("nmap-udp.pcap"));
    frames.extend(read_all(dir.join("hping-ackflood.pcap")).expect("hping-ackflood.pcap"));
    let config = Config {
        tcp_ports: PortSet::parse(CAPTURE_TCP_PORTS).expect("tcp ports"),
        udp_ports: PortSet::parse(CAPTURE_UDP_PORTS).expect("udp ports"),
        // Small, so that copying the detector at the start of each iteration stays a small
        // part of the measurement (three sources are all these captures hold).
        max_tracked_sources: 1024,
        ..Config::default()
    };
    let replay = Replay::builder(&config)
        .own_addresses(["203.0.113.2".parse::<IpAddr>().expect("victim v4")])
        .keep_events(KeptEvents::None)
        .build()
        .expect("replay");
    let mut group = c.benchmark_group("whole_path");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("syn_udp_ackflood_through_detector", |b| {
        b.iter(|| {
            let report = replay.run_frames(frames.iter().map(|f| f.as_frame()));
            black_box(report.summary.probes)
        });
    });
    group.finish();
}

/// The ports the shared captures probed (their `manifest.json`).
const CAPTURE_TCP_PORTS: &str = "1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771,32772,32773,32774,40421,49724,54320,8080";
const CAPTURE_UDP_PORTS: &str = "1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321";

criterion_group!(benches, by_kind, by_link, over_mix, replay_path, whole_path);
criterion_main!(benches);
