//! Reading pcap and pcapng files: the shared captures, pcapng files written here with
//! pcap-file's writer, and broken files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use portsentry_core::classify::{LinkType, classify};
use portsentry_core::source::pcap::{CaptureError, CaptureFile, CaptureFormat, read_all};
use portsentry_core::{ScanKind, Timestamp};

use crate::support::captures_dir;

/// A file in the system temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("portsentry-test-{}-{n}-{tag}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A classic pcap file (little endian) with `records` of (seconds, fraction, original length,
/// bytes).
fn pcap_bytes(
    magic: u32,
    linktype: u32,
    snaplen: u32,
    records: &[(u32, u32, u32, &[u8])],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&snaplen.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (secs, frac, original, data) in records {
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&frac.to_le_bytes());
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&original.to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// An IPv4 TCP SYN from 203.0.113.1 to 203.0.113.2:`port`, no link header.
fn raw_syn(port: u16) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 203, 0, 113, 1, 203, 0, 113, 2,
    ];
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&port.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 4, 0, 0, 0, 0, 0]);
    p
}

const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
const MAGIC_NANOS: u32 = 0xA1B2_3C4D;

#[test]
fn shared_captures_read_completely_and_identically_twice() {
    let mut files = 0;
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pcap") {
            continue;
        }
        let first = read_all(&path).unwrap();
        let second = read_all(&path).unwrap();
        assert_eq!(first, second, "{}", path.display());
        assert!(!first.is_empty());
        for (index, frame) in first.iter().enumerate() {
            assert_eq!(frame.record, u64::try_from(index).unwrap() + 1);
            assert_eq!(frame.link, LinkType::Ethernet);
            assert!(
                frame.at > Timestamp::from_secs(1_000_000_000),
                "a real capture time"
            );
            assert!(frame.data.len() <= usize::try_from(frame.original_len).unwrap());
        }
        let capture = CaptureFile::open(&path).unwrap();
        assert_eq!(capture.format(), CaptureFormat::Pcap);
        files += 1;
    }
    assert_eq!(files, 10);
}

#[test]
fn pcapng_written_here_reads_back_with_interface_links_and_resolutions() {
    let syn = raw_syn(22);
    let mut eth_syn = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth_syn.extend_from_slice(&raw_syn(23));

    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    // Interface 0: Ethernet with nanosecond timestamps; interface 1: raw IP, default µs.
    let mut ethernet = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
    ethernet
        .options
        .push(InterfaceDescriptionOption::IfTsResol(9));
    writer.write_pcapng_block(ethernet).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 65535))
        .unwrap();
    // pcap-file writes `timestamp.as_nanos()` as the raw 64-bit count of interface units.
    writer
        .write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(1_700_000_000_123_456_789),
            original_len: u32::try_from(eth_syn.len()).unwrap(),
            data: Cow::Borrowed(&eth_syn),
            options: vec![],
        })
        .unwrap();
    writer
        .write_pcapng_block(EnhancedPacketBlock {
            interface_id: 1,
            timestamp: Duration::from_nanos(1_700_000_001_000_001),
            original_len: u32::try_from(syn.len()).unwrap(),
            data: Cow::Borrowed(&syn),
            options: vec![],
        })
        .unwrap();
    // A simple packet block: interface 0, no timestamp of its own.
    writer
        .write_pcapng_block(SimplePacketBlock {
            original_len: u32::try_from(eth_syn.len()).unwrap(),
            data: Cow::Borrowed(&eth_syn),
        })
        .unwrap();
    let file = TempFile::new("ng.pcapng", &writer.into_inner());

    let mut capture = CaptureFile::open(file.path()).unwrap();
    assert_eq!(capture.format(), CaptureFormat::PcapNg);
    let frames: Vec<_> = capture.by_ref().map(Result::unwrap).collect();
    assert_eq!(capture.frames_read(), 3);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].link, LinkType::Ethernet);
    assert_eq!(frames[0].at, Timestamp::from_micros(1_700_000_000_123_456));
    assert_eq!(frames[0].data, eth_syn);
    assert_eq!(frames[1].link, LinkType::RawIp);
    assert_eq!(frames[1].at, Timestamp::from_micros(1_700_000_001_000_001));
    assert_eq!(
        frames[2].at, frames[1].at,
        "a simple packet keeps the last time"
    );
    assert_eq!(frames[2].record, 3);

    let ports: Vec<_> = frames
        .iter()
        .map(|f| classify(f.at, f.link, &f.data).unwrap())
        .map(|p| (p.kind, p.destination_port))
        .collect();
    assert_eq!(
        ports,
        [
            (ScanKind::Syn, 23),
            (ScanKind::Syn, 22),
            (ScanKind::Syn, 23)
        ]
    );
}

#[test]
fn pcapng_interface_with_unsupported_link_type_is_named() {
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::PPP, 65535))
        .unwrap();
    writer
        .write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(1),
            original_len: 4,
            data: Cow::Borrowed(&[1, 2, 3, 4]),
            options: vec![],
        })
        .unwrap();
    let file = TempFile::new("ppp.pcapng", &writer.into_inner());
    let error = read_all(file.path()).unwrap_err();
    assert!(
        matches!(
            error,
            CaptureError::UnsupportedInterface {
                record: 1,
                interface: 0,
                linktype: 9,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn cut_frames_and_nanosecond_pcap_are_read() {
    let syn = raw_syn(80);
    // Snap length 30: the record holds 30 of the 40 bytes (pcap-file alone rejects this).
    let bytes = pcap_bytes(
        MAGIC_NANOS,
        101,
        30,
        &[(1_700_000_000, 999_999_999, 40, &syn[..30])],
    );
    let file = TempFile::new("cut.pcap", &bytes);
    let frames = read_all(file.path()).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].original_len, 40);
    assert_eq!(frames[0].data, &syn[..30]);
    assert_eq!(frames[0].link, LinkType::RawIp);
    assert_eq!(frames[0].at, Timestamp::from_micros(1_700_000_000_999_999));
}

#[test]
fn truncated_last_record_is_reported_after_the_good_frames() {
    let syn = raw_syn(80);
    let records: Vec<(u32, u32, u32, &[u8])> = (0..3).map(|i| (100 + i, 5, 40, &syn[..])).collect();
    let mut bytes = pcap_bytes(MAGIC_MICROS, 101, 65535, &records);
    bytes.truncate(bytes.len() - 7);
    let file = TempFile::new("truncated.pcap", &bytes);
    let mut capture = CaptureFile::open(file.path()).unwrap();
    assert_eq!(
        capture.next().unwrap().unwrap().at,
        Timestamp::from_micros(100_000_005)
    );
    assert_eq!(capture.next().unwrap().unwrap().record, 2);
    let error = capture.next().unwrap().unwrap_err();
    assert!(
        matches!(error, CaptureError::Truncated { record: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("record 3"), "{error}");
    assert!(
        error
            .to_string()
            .contains(&file.path().display().to_string()),
        "{error}"
    );
    assert!(capture.next().is_none(), "nothing after an error");

    // The same with a shared capture cut in the middle of its last record.
    let real = std::fs::read(captures_dir().join("nmap-syn.pcap")).unwrap();
    let whole = read_all(captures_dir().join("nmap-syn.pcap"))
        .unwrap()
        .len();
    let cut = TempFile::new("cut-real.pcap", &real[..real.len() - 10]);
    let mut capture = CaptureFile::open(cut.path()).unwrap();
    let good = capture.by_ref().take_while(Result::is_ok).count();
    assert_eq!(good, whole - 1);
}

#[test]
fn broken_pcapng_block_is_corrupt_with_its_record_number() {
    let syn = raw_syn(80);
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 65535))
        .unwrap();
    for _ in 0..2 {
        writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(5),
                original_len: 40,
                data: Cow::Borrowed(&syn),
                options: vec![],
            })
            .unwrap();
    }
    let mut bytes = writer.into_inner();
    // The second packet block's captured length (offset 20 into the block) made impossible.
    let second = bytes.len() - (32 + 40);
    bytes[second + 20..second + 24].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    let file = TempFile::new("corrupt.pcapng", &bytes);
    let mut capture = CaptureFile::open(file.path()).unwrap();
    assert!(capture.next().unwrap().is_ok());
    let error = capture.next().unwrap().unwrap_err();
    assert!(
        matches!(error, CaptureError::Corrupt { record: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn files_that_are_not_captures_are_refused_clearly() {
    let text = TempFile::new("text.pcap", b"GET / HTTP/1.1\r\n");
    assert!(matches!(
        CaptureFile::open(text.path()).unwrap_err(),
        CaptureError::NotACapture { .. }
    ));
    let empty = TempFile::new("empty.pcap", b"");
    assert!(matches!(
        CaptureFile::open(empty.path()).unwrap_err(),
        CaptureError::NotACapture { .. }
    ));
    let short_header = TempFile::new("short.pcap", &MAGIC_MICROS.to_le_bytes());
    assert!(matches!(
        CaptureFile::open(short_header.path()).unwrap_err(),
        CaptureError::Header { .. }
    ));
    let ppp = TempFile::new("ppp.pcap", &pcap_bytes(MAGIC_MICROS, 9, 65535, &[]));
    assert!(matches!(
        CaptureFile::open(ppp.path()).unwrap_err(),
        CaptureError::UnsupportedLinkType { linktype: 9, .. }
    ));
    let missing = std::env::temp_dir().join("portsentry-test-does-not-exist.pcap");
    let error = CaptureFile::open(&missing).unwrap_err();
    assert!(matches!(error, CaptureError::Open { .. }));
    assert!(error.to_string().contains("does-not-exist"), "{error}");
}

#[test]
fn empty_capture_has_no_frames() {
    let file = TempFile::new("none.pcap", &pcap_bytes(MAGIC_MICROS, 1, 65535, &[]));
    assert_eq!(read_all(file.path()).unwrap(), []);
}
