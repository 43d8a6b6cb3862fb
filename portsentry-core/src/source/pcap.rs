//! Reading pcap and pcapng capture files, frame by frame, for replay.
//!
//! The format is recognised from the file's first bytes. Each frame carries the capture
//! timestamp of its record and the link type of its file (pcap) or interface (pcapng), so a
//! replay gives the same results every time, whenever and wherever it runs.
//!
//! Parsing is done by the `pcap-file` crate, with two corrections: records whose original
//! length exceeds the snap length (every capture cut with `-s`) are accepted, and pcapng
//! timestamps honour the interface's `if_tsresol` and `if_tsoffset` options.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Chain, Cursor, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{PcapError, TsResolution};

use crate::classify::LinkType;
use crate::probe::Timestamp;

/// Why a capture file could not be read (further).
///
/// After an error about a record, the reader yields nothing more: the file cannot be
/// resynchronised. Frames before it were delivered intact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("cannot open capture {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file starts with neither a pcap nor a pcapng magic number (or is shorter than one).
    #[error("{} is not a pcap or pcapng capture (unknown magic number)", path.display())]
    NotACapture {
        /// The file.
        path: PathBuf,
    },
    /// The file header (pcap) or first section header (pcapng) is cut or invalid.
    #[error("{}: bad capture file header: {source}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        source: PcapError,
    },
    /// The pcap file header names a link type that `classify` does not read.
    #[error("{}: unsupported link type {linktype}", path.display())]
    UnsupportedLinkType {
        /// The file.
        path: PathBuf,
        /// The `LINKTYPE_*` number in the header.
        linktype: u32,
    },
    /// A pcapng packet was captured on an interface whose link type `classify` does not read.
    #[error("{}: record {record}: unsupported link type {linktype} of interface {interface}", path.display())]
    UnsupportedInterface {
        /// The file.
        path: PathBuf,
        /// The frame number (1-based, as Wireshark counts).
        record: u64,
        /// The interface number within its section.
        interface: u32,
        /// The `LINKTYPE_*` number of the interface.
        linktype: u32,
    },
    /// A pcapng packet names an interface that no interface description block declared.
    #[error("{}: record {record}: no interface {interface} declared", path.display())]
    UnknownInterface {
        /// The file.
        path: PathBuf,
        /// The frame number (1-based).
        record: u64,
        /// The interface number the packet names.
        interface: u32,
    },
    /// The file ends in the middle of a record: a capture that was cut off (e.g. still being
    /// written, or copied partially).
    #[error("{}: record {record} is cut short: the file ends inside it", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The frame number (1-based) of the incomplete record.
        record: u64,
    },
    /// A record is invalid (impossible lengths, bad block structure).
    #[error("{}: record {record} is corrupt: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The frame number (1-based) that was being read.
        record: u64,
        /// What the parser found.
        source: PcapError,
    },
    /// Reading the file failed.
    #[error("{}: reading record {record} failed: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The frame number (1-based) that was being read.
        record: u64,
        /// What the operating system said.
        source: io::Error,
    },
}

/// Which of the two file formats a capture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureFormat {
    /// Classic libpcap format (microsecond or nanosecond timestamps, either byte order).
    Pcap,
    /// pcapng (sections, interfaces, enhanced packet blocks).
    PcapNg,
}

/// One frame of a capture, borrowed from the reader until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame number in the file, from 1 (as Wireshark counts).
    pub record: u64,
    /// The capture timestamp of the record.
    pub at: Timestamp,
    /// The link type of the file or interface the frame was captured on.
    pub link: LinkType,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The length of the frame on the wire (larger than `data` when the capture was cut).
    pub original_len: u32,
}

impl Frame<'_> {
    /// Copies the frame out of the reader.
    pub fn to_owned_frame(&self) -> OwnedFrame {
        OwnedFrame {
            record: self.record,
            at: self.at,
            link: self.link,
            data: self.data.to_vec(),
            original_len: self.original_len,
        }
    }
}

/// One frame of a capture, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// The frame number in the file, from 1.
    pub record: u64,
    /// The capture timestamp of the record.
    pub at: Timestamp,
    /// The link type of the file or interface the frame was captured on.
    pub link: LinkType,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// The length of the frame on the wire.
    pub original_len: u32,
}

impl OwnedFrame {
    /// Borrows the frame.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            record: self.record,
            at: self.at,
            link: self.link,
            data: &self.data,
            original_len: self.original_len,
        }
    }
}

/// The magic number read ahead to recognise the format, put back in front of the stream.
type Peeked<R> = Chain<Cursor<[u8; 4]>, R>;

/// A pcapng interface as far as timestamps and link types go.
#[derive(Debug, Clone, Copy)]
struct Interface {
    /// The link type, or the unsupported `LINKTYPE_*` number.
    link: Result<LinkType, u32>,
    /// Timestamp units per second (`if_tsresol`, default 10^6).
    units_per_second: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_seconds: u64,
}

enum Format<R: Read> {
    Pcap {
        reader: PcapReader<Peeked<R>>,
        link: LinkType,
        nanosecond: bool,
    },
    PcapNg {
        reader: Box<PcapNgReader<Peeked<R>>>,
        interfaces: Vec<Interface>,
        /// The frame bytes of the current packet (pcapng blocks are copied here).
        scratch: Vec<u8>,
        /// The timestamp of the previous packet, for simple packet blocks that carry none.
        last_at: Timestamp,
    },
}

/// A pcap or pcapng file being read frame by frame.
///
/// [`CaptureFile::next_frame`] lends each frame without copying it (for pcap files);
/// the [`Iterator`] implementation yields owned copies.
///
/// # Examples
///
/// ```no_run
/// use portsentry_core::classify::{classify, SkipCounts};
/// use portsentry_core::source::pcap::CaptureFile;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut capture = CaptureFile::open("nmap-syn.pcap")?;
/// let mut skips = SkipCounts::new();
/// while let Some(frame) = capture.next_frame() {
///     let frame = frame?;
///     match classify(frame.at, frame.link, frame.data) {
///         Ok(probe) => println!("{} {} -> {}", probe.kind, probe.source, probe.destination_port),
///         Err(reason) => skips.record(reason),
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct CaptureFile<R: Read = BufReader<File>> {
    path: PathBuf,
    format: Format<R>,
    /// How many frames were delivered so far.
    frames: u64,
    /// Set after an error or the end: nothing more will be read.
    done: bool,
}

impl<R: Read> std::fmt::Debug for CaptureFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("format", &self.format())
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xA1, 0xB2, 0xC3, 0xD4],
    [0xD4, 0xC3, 0xB2, 0xA1],
    [0xA1, 0xB2, 0x3C, 0x4D],
    [0x4D, 0x3C, 0xB2, 0xA1],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
const DEFAULT_UNITS_PER_SECOND: u64 = 1_000_000;

impl CaptureFile {
    /// Opens the capture file at `path`.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Open`] if the file cannot be opened, [`CaptureError::NotACapture`],
    /// [`CaptureError::Header`] or [`CaptureError::UnsupportedLinkType`] if its header is not
    /// one this reader can use.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(path, BufReader::new(file))
    }
}

impl<R: Read> CaptureFile<R> {
    /// Reads a capture from `reader`; `name` is the file name that errors will carry.
    ///
    /// # Errors
    ///
    /// As [`CaptureFile::open`], except `Open`; [`CaptureError::Read`] if reading the magic
    /// number fails.
    pub fn from_reader(name: impl Into<PathBuf>, mut reader: R) -> Result<Self, CaptureError> {
        let path = name.into();
        let mut magic = [0u8; 4];
        if let Err(source) = reader.read_exact(&mut magic) {
            return Err(if source.kind() == io::ErrorKind::UnexpectedEof {
                CaptureError::NotACapture { path }
            } else {
                CaptureError::Read {
                    path,
                    record: 0,
                    source,
                }
            });
        }
        let stream = Cursor::new(magic).chain(reader);
        let format = if PCAP_MAGICS.contains(&magic) {
            let reader = match PcapReader::new(stream) {
                Ok(reader) => reader,
                Err(source) => return Err(CaptureError::Header { path, source }),
            };
            let header = reader.header();
            let linktype = u32::from(header.datalink);
            let Some(link) = LinkType::from_pcap_linktype(linktype) else {
                return Err(CaptureError::UnsupportedLinkType { path, linktype });
            };
            Format::Pcap {
                reader,
                link,
                nanosecond: header.ts_resolution == TsResolution::NanoSecond,
            }
        } else if magic == PCAPNG_MAGIC {
            let reader = match PcapNgReader::new(stream) {
                Ok(reader) => reader,
                Err(source) => return Err(CaptureError::Header { path, source }),
            };
            Format::PcapNg {
                reader: Box::new(reader),
                interfaces: Vec::new(),
                scratch: Vec::new(),
                last_at: Timestamp::ZERO,
            }
        } else {
            return Err(CaptureError::NotACapture { path });
        };
        Ok(Self {
            path,
            format,
            frames: 0,
            done: false,
        })
    }

    /// The file name given when opening.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a pcap or a pcapng file.
    pub fn format(&self) -> CaptureFormat {
        match self.format {
            Format::Pcap { .. } => CaptureFormat::Pcap,
            Format::PcapNg { .. } => CaptureFormat::PcapNg,
        }
    }

    /// How many frames were delivered so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// The next frame, borrowed until the next call; `None` at the end of the file.
    ///
    /// After an error, every later call returns `None`.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Truncated`] when the file ends inside a record,
    /// [`CaptureError::Corrupt`] for an invalid record, [`CaptureError::Read`] for an I/O
    /// error, and for pcapng [`CaptureError::UnknownInterface`] and
    /// [`CaptureError::UnsupportedInterface`].
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        let record = self.frames + 1;
        let result = match &mut self.format {
            Format::Pcap {
                reader,
                link,
                nanosecond,
            } => next_pcap(reader, *link, *nanosecond, record),
            Format::PcapNg {
                reader,
                interfaces,
                scratch,
                last_at,
            } => next_pcapng(reader, interfaces, scratch, last_at, record),
        };
        match result {
            Some(Ok(frame)) => {
                self.frames = record;
                Some(Ok(frame))
            }
            Some(Err(problem)) => {
                self.done = true;
                Some(Err(problem.into_error(self.path.clone(), record)))
            }
            None => {
                self.done = true;
                None
            }
        }
    }
}

impl<R: Read> Iterator for CaptureFile<R> {
    type Item = Result<OwnedFrame, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
            .map(|r| r.map(|frame| frame.to_owned_frame()))
    }
}

/// Reads every frame of the capture at `path` into memory.
///
/// # Errors
///
/// The first error [`CaptureFile::open`] or [`CaptureFile::next_frame`] reports.
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<OwnedFrame>, CaptureError> {
    CaptureFile::open(path)?.collect()
}

/// A reading problem before the file name and record number are attached.
enum Problem {
    Parse(PcapError),
    UnknownInterface(u32),
    UnsupportedInterface { interface: u32, linktype: u32 },
}

impl Problem {
    fn into_error(self, path: PathBuf, record: u64) -> CaptureError {
        match self {
            Self::Parse(PcapError::IncompleteBuffer) => CaptureError::Truncated { path, record },
            Self::Parse(PcapError::IoError(source)) => {
                if source.kind() == io::ErrorKind::UnexpectedEof {
                    CaptureError::Truncated { path, record }
                } else {
                    CaptureError::Read {
                        path,
                        record,
                        source,
                    }
                }
            }
            Self::Parse(PcapError::InvalidInterfaceId(interface))
            | Self::UnknownInterface(interface) => CaptureError::UnknownInterface {
                path,
                record,
                interface,
            },
            Self::Parse(source) => CaptureError::Corrupt {
                path,
                record,
                source,
            },
            Self::UnsupportedInterface {
                interface,
                linktype,
            } => CaptureError::UnsupportedInterface {
                path,
                record,
                interface,
                linktype,
            },
        }
    }
}

fn next_pcap<R: Read>(
    reader: &mut PcapReader<R>,
    link: LinkType,
    nanosecond: bool,
    record: u64,
) -> Option<Result<Frame<'_>, Problem>> {
    // Raw records: pcap-file's checked records reject an original length above the snap
    // length, which every capture cut with `-s` has.
    let raw = match reader.next_raw_packet()? {
        Ok(raw) => raw,
        Err(error) => return Some(Err(Problem::Parse(error))),
    };
    let nanos = if nanosecond {
        raw.ts_frac
    } else {
        raw.ts_frac.saturating_mul(1_000)
    };
    let data = match raw.data {
        Cow::Borrowed(data) => data,
        // pcap-file always borrows from its buffer; an owned record cannot outlive this call.
        Cow::Owned(_) => {
            return Some(Err(Problem::Parse(PcapError::InvalidField(
                "record data not borrowed from the read buffer",
            ))));
        }
    };
    Some(Ok(Frame {
        record,
        at: Timestamp::from_secs_nanos(u64::from(raw.ts_sec), nanos),
        link,
        data,
        original_len: raw.orig_len,
    }))
}

fn next_pcapng<'a, R: Read>(
    reader: &mut PcapNgReader<R>,
    interfaces: &mut Vec<Interface>,
    scratch: &'a mut Vec<u8>,
    last_at: &mut Timestamp,
    record: u64,
) -> Option<Result<Frame<'a>, Problem>> {
    loop {
        let block = match reader.next_block()? {
            Ok(block) => block,
            Err(error) => return Some(Err(Problem::Parse(error))),
        };
        // (interface, raw timestamp or None for "no timestamp", original length)
        let (interface_id, raw_time, original_len) = match &block {
            Block::SectionHeader(_) => {
                interfaces.clear();
                continue;
            }
            Block::InterfaceDescription(description) => {
                interfaces.push(interface(description));
                continue;
            }
            Block::EnhancedPacket(packet) => {
                // pcap-file stores the raw 64-bit count as nanoseconds; undo that here.
                let raw = u64::try_from(packet.timestamp.as_nanos()).unwrap_or(u64::MAX);
                (packet.interface_id, Some(raw), packet.original_len)
            }
            Block::Packet(packet) => (
                u32::from(packet.interface_id),
                Some(packet.timestamp),
                packet.original_len,
            ),
            Block::SimplePacket(packet) => (0, None, packet.original_len),
            _ => continue,
        };
        let data: &[u8] = match &block {
            Block::EnhancedPacket(packet) => &packet.data,
            Block::Packet(packet) => &packet.data,
            Block::SimplePacket(packet) => &packet.data,
            _ => &[],
        };
        let Some(interface) = usize::try_from(interface_id)
            .ok()
            .and_then(|index| interfaces.get(index))
        else {
            return Some(Err(Problem::UnknownInterface(interface_id)));
        };
        let link = match interface.link {
            Ok(link) => link,
            Err(linktype) => {
                return Some(Err(Problem::UnsupportedInterface {
                    interface: interface_id,
                    linktype,
                }));
            }
        };
        let at = match raw_time {
            Some(raw) => interface_time(interface, raw),
            None => *last_at,
        };
        *last_at = at;
        scratch.clear();
        scratch.extend_from_slice(data);
        return Some(Ok(Frame {
            record,
            at,
            link,
            data: scratch,
            original_len,
        }));
    }
}

/// What matters of an interface description block.
fn interface(description: &InterfaceDescriptionBlock<'_>) -> Interface {
    let linktype = u32::from(description.linktype);
    let mut units_per_second = DEFAULT_UNITS_PER_SECOND;
    let mut offset_seconds = 0;
    for option in &description.options {
        match option {
            InterfaceDescriptionOption::IfTsResol(resolution) => {
                units_per_second = units_from_tsresol(*resolution);
            }
            InterfaceDescriptionOption::IfTsOffset(offset) => offset_seconds = *offset,
            _ => {}
        }
    }
    Interface {
        link: LinkType::from_pcap_linktype(linktype).ok_or(linktype),
        units_per_second,
        offset_seconds,
    }
}

/// Timestamp units per second for an `if_tsresol` value: 10^n, or 2^n when the top bit is set.
/// Out-of-range exponents saturate.
fn units_from_tsresol(resolution: u8) -> u64 {
    let exponent = u32::from(resolution & 0x7F);
    if resolution & 0x80 == 0 {
        10u64.checked_pow(exponent).unwrap_or(u64::MAX)
    } else {
        2u64.checked_pow(exponent).unwrap_or(u64::MAX)
    }
}

/// The timestamp of `raw` units on `interface`.
fn interface_time(interface: &Interface, raw: u64) -> Timestamp {
    let units = u128::from(interface.units_per_second.max(1));
    let micros = u128::from(raw) * 1_000_000 / units;
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    Timestamp::from_micros(micros)
        .saturating_add(std::time::Duration::from_secs(interface.offset_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_units() {
        assert_eq!(units_from_tsresol(6), 1_000_000);
        assert_eq!(units_from_tsresol(9), 1_000_000_000);
        assert_eq!(units_from_tsresol(0x80 | 10), 1024);
        assert_eq!(units_from_tsresol(127), u64::MAX);
        assert_eq!(units_from_tsresol(0xFF), u64::MAX);
    }

    #[test]
    fn interface_time_scales_and_offsets() {
        let nanos = Interface {
            link: Ok(LinkType::Ethernet),
            units_per_second: 1_000_000_000,
            offset_seconds: 10,
        };
        assert_eq!(
            interface_time(&nanos, 1_500_000_000),
            Timestamp::from_micros(11_500_000)
        );
        let odd = Interface {
            units_per_second: 0,
            ..nanos
        };
        assert_eq!(
            interface_time(&odd, u64::MAX),
            Timestamp::from_micros(u64::MAX)
        );
    }
}
