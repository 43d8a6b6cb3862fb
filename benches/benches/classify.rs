//! `classify` per probe kind, per link type, over a realistic mix, and the replay path over
//! real captures held in memory. Throughput is in frames (criterion reports elements/s).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portsentry_benches::{Fixture, captures_dir, kinds, link_types, mix};
use portsentry_core::Timestamp;
use portsentry_core::classify::{SkipCounts, classify};
use portsentry_core::source::pcap::read_all;

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

criterion_group!(benches, by_kind, by_link, over_mix, replay_path);
criterion_main!(benches);
