//! `Detector::observe` throughput: the per-probe cost of the detection hot path.
//!
//! * `below_trigger_100k_sources`: 100,000 active sources (`MAX_TRACKED_SOURCES` 200,000), each
//!   probing 4 of its ports over and over in a scattered order (trigger 5, so every probe takes
//!   the full counting path: port-set lookup, never-block lookup, block-table check, hash
//!   lookup, window pruning, LRU update).
//! * `spoofed_flood_new_source_each_probe`: every probe comes from a new source into a full
//!   tracker of 65,536 (the eviction path: insert, evict, index shift).
//! * `not_monitored`: a probe to a port no mode watches (the cheapest rejection).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portsentry_core::{
    Config, Detector, HashSeed, Mode, NeverBlock, PortSet, Probe, Protocol, ScanKind, Timestamp,
};

const SOURCES: u32 = 100_000;
const PORTS: [u16; 4] = [1, 79, 111, 143];
/// Coprime with `SOURCES`: `i * STRIDE % SOURCES` visits every source in a scattered order.
const STRIDE: u32 = 48_271;
const BASE_US: u64 = 1_700_000_000_000_000;

fn source(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from_bits(
        0xC633_0000u32.wrapping_add(i.wrapping_mul(7)),
    ))
}

fn probe(src: IpAddr, port: u16, at_us: u64) -> Probe {
    Probe {
        at: Timestamp::from_micros(at_us),
        source: src,
        destination: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        protocol: Protocol::Tcp,
        source_port: 40_000,
        destination_port: port,
        kind: ScanKind::Syn,
        ip_options: false,
    }
}

fn detector(max_sources: usize, tcp_ports: PortSet) -> Detector {
    let config = Config {
        scan_trigger: 5,
        scan_window: Duration::from_secs(300),
        max_tracked_sources: max_sources,
        tcp_ports,
        ..Config::default()
    };
    // A realistic never-block list: a few own addresses, a gateway, resolvers, an ignore list.
    let never_block = NeverBlock::new()
        .own_addresses([
            "192.0.2.1/32".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ])
        .gateways(["192.0.2.254/32".parse().unwrap()])
        .resolvers(["192.0.2.53/32".parse().unwrap()])
        .ignore_list((0..64u8).map(|i| format!("10.{i}.0.0/16").parse().unwrap()));
    Detector::builder(&config)
        .modes([Mode::StealthTcp, Mode::StealthUdp])
        .never_block(never_block)
        .seed(HashSeed::random())
        .build()
        .unwrap()
}

fn observe(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));

    let mut d = detector(200_000, PORTS.into_iter().collect());
    // Warm: every source has probed two of its ports.
    for i in 0..SOURCES * 2 {
        let src = source(i % SOURCES);
        d.observe(&probe(
            src,
            PORTS[(i / SOURCES) as usize],
            BASE_US + u64::from(i),
        ));
    }
    assert_eq!(d.tracker().len(), SOURCES as usize);
    let mut n: u64 = 0;
    g.bench_function("below_trigger_100k_sources", |b| {
        b.iter(|| {
            n += 1;
            let i = n as u32;
            let src = source(i.wrapping_mul(STRIDE) % SOURCES);
            let port = PORTS[(n / u64::from(SOURCES)) as usize % 4];
            black_box(d.observe(black_box(&probe(src, port, BASE_US + n))))
        })
    });
    let stats = d.stats();
    assert_eq!(stats.alerts, 0, "the workload stays below the trigger");
    assert_eq!(stats.tracker.tracked, SOURCES as usize);

    let mut d = detector(65_536, (1..1024).collect());
    let mut n: u64 = 0;
    g.bench_function("spoofed_flood_new_source_each_probe", |b| {
        b.iter(|| {
            n += 1;
            let src = IpAddr::V4(Ipv4Addr::from_bits(0x0B00_0000u32.wrapping_add(n as u32)));
            black_box(d.observe(black_box(&probe(src, 22, BASE_US + n))))
        })
    });
    assert!(d.tracker().len() <= 65_536);

    let mut d = detector(65_536, PORTS.into_iter().collect());
    let src = source(1);
    g.bench_function("not_monitored", |b| {
        b.iter(|| black_box(d.observe(black_box(&probe(src, 8080, BASE_US)))))
    });
    g.finish();
}

criterion_group!(benches, observe);
criterion_main!(benches);
