//! `portsentry replay` on a generated flood of forged one-packet sources: the real scanner
//! among them is detected, and the replay's peak memory (the kernel's `VmHWM`, which the
//! JSON summary reports) stays under the bound of issue 11, whatever the number of sources.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::{Scratch, portsentry, run};

/// Forged sources in the flood (the flood has 1,000,000; the bound does not depend
/// on the count, and the old replay already peaked above it at 300,000).
const FORGED: u32 = 300_000;
/// Distinct ports the real scanner probes, spread evenly through the flood.
const SCANNER_PORTS: [u16; 5] = [1, 11, 15, 79, 111];
/// The bound on the replay's peak resident memory.
const PEAK_LIMIT_KIB: i64 = 64 * 1024;

/// One Ethernet + IPv4 + TCP SYN frame from `source` to 203.0.113.2, port `port`.
fn syn_frame(source: [u8; 4], port: u16, source_port: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&source);
    f.extend_from_slice(&[203, 0, 113, 2]);
    f.extend_from_slice(&source_port.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 4, 0, 0, 0, 0, 0]);
    f
}

/// Writes the flood: `FORGED` sources (distinct addresses from 1.0.0.0 up, spread by an odd
/// multiplier), one packet each to the classic ports, and 198.51.100.66's probes evenly
/// among them, over 10 s of capture time.
fn write_flood(path: &Path) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(&0xA1B2_C3D4u32.to_le_bytes()).unwrap();
    out.write_all(&[2, 0, 4, 0]).unwrap();
    out.write_all(&[0; 8]).unwrap();
    out.write_all(&65_535u32.to_le_bytes()).unwrap();
    out.write_all(&1u32.to_le_bytes()).unwrap();
    let total = FORGED + SCANNER_PORTS.len() as u32;
    let step = FORGED / SCANNER_PORTS.len() as u32;
    let (mut forged, mut scanner) = (0u32, 0usize);
    for i in 0..total {
        let frame = if scanner < SCANNER_PORTS.len() && forged >= step * scanner as u32 + step / 2 {
            scanner += 1;
            syn_frame([198, 51, 100, 66], SCANNER_PORTS[scanner - 1], 40_000)
        } else {
            let address = 0x0100_0000u32.wrapping_add(forged.wrapping_mul(2_654_435_761) >> 4);
            forged += 1;
            let port = [1, 11, 15, 79, 111, 119, 143][forged as usize % 7];
            syn_frame(address.to_be_bytes(), port, 1024 + (forged % 60_000) as u16)
        };
        let micros = u64::from(i) * 10_000_000 / u64::from(total);
        let secs = 1_800_000_000 + (micros / 1_000_000) as u32;
        let len = frame.len() as u32;
        for word in [secs, (micros % 1_000_000) as u32, len, len] {
            out.write_all(&word.to_le_bytes()).unwrap();
        }
        out.write_all(&frame).unwrap();
    }
    out.flush().unwrap();
}

#[test]
fn a_forged_flood_replays_in_bounded_memory_and_the_scanner_is_found() {
    let scratch = Scratch::new("replay-flood");
    let pcap = scratch.0.join("flood.pcap");
    write_flood(&pcap);
    let config = scratch.write(
        "flood.conf",
        "TCP_PORTS=\"1,11,15,79,111,119,143\"\nUDP_PORTS=\"7\"\nSCAN_TRIGGER=\"5\"\n",
        0o644,
    );
    let r = run(portsentry(&["replay", "--json", "-c"])
        .arg(&config)
        .arg(&pcap));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = r.stdout;
    let summary: serde_json::Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {text}"));
    assert_eq!(
        summary["frames"].as_u64(),
        Some(u64::from(FORGED) + SCANNER_PORTS.len() as u64)
    );
    let sources = summary["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{summary}");
    assert_eq!(sources[0]["src_ip"], "198.51.100.66");
    assert_eq!(
        sources[0]["ports_counted"]["tcp"],
        serde_json::json!(SCANNER_PORTS)
    );
    // The kernel's high-water mark of the replay's resident memory, as it reports it.
    let peak_kib = summary["peak_memory_kib"].as_i64().expect("VmHWM reported");
    eprintln!(
        "replay of {FORGED} forged sources: peak RSS {} MiB",
        peak_kib / 1024
    );
    assert!(
        peak_kib <= PEAK_LIMIT_KIB,
        "peak RSS {peak_kib} KiB above {PEAK_LIMIT_KIB} KiB"
    );
}
