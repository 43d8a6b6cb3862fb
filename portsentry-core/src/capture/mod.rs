//! Live capture on Linux: an `AF_PACKET` socket with a classic BPF filter, read in batches.
//!
//! This is the only module of the crate that may use `unsafe` (all of it in `sys.rs`, each
//! block with a `SAFETY:` comment). Everything it hands out is safe: a [`Capture`] yields
//! [`Frame`]s that borrow its buffers.
//!
//! # How it captures
//!
//! * One `AF_PACKET`/`SOCK_DGRAM` socket for IPv4 and IPv6 (`ETH_P_ALL`, so one descriptor to
//!   wait on). `SOCK_DGRAM` strips the link header: every frame starts at the IP header
//!   (the classifier's cooked-L3 link type).
//! * The socket is created with protocol 0 (it receives nothing), the filter is attached, and
//!   only then is it bound to `ETH_P_ALL` and an interface (or all of them). No unfiltered frame
//!   can slip in between.
//! * The filter ([`bpf`]) keeps the frames addressed to this host (`PACKET_HOST`) that can be
//!   a probe, and the host's own answers (SYN-ACK, RST, ICMP unreachable) and flow starts from
//!   the monitored ports (`PACKET_OUTGOING`), truncated to a snap length; ordinary TCP
//!   traffic (ACK or RST set inbound, data outbound) never leaves the kernel. Each [`Frame`]
//!   says its [`Direction`]; user space re-checks the packet type of each frame. With
//!   [`bpf::Outgoing::Nothing`], `PACKET_IGNORE_OUTGOING` also spares the kernel the work of
//!   looping outgoing frames to us.
//! * Frames are read with `recvmmsg(2)`: up to 64 per system call, each with its kernel receive
//!   timestamp (`SO_TIMESTAMPNS`) and interface index. `recvmmsg` was chosen over a
//!   `TPACKET_V3` ring: after the filter only probes reach user space (a low rate even during
//!   a scan), a batch of 64 per call already amortises the system call, and it needs no
//!   shared-memory protocol with the kernel (block ownership, ring geometry, retire timers)
//!   whose mistakes would be memory errors. The receive queue is enlarged (default 4 MiB) to
//!   absorb bursts; the kernel counts what it still has to drop ([`CaptureStats::dropped`]).
//! * [`Capture::recv_batch`] waits with `poll(2)` at most the given timeout, so a daemon loop
//!   can check its stop flag between batches.

#![allow(unsafe_code)]

pub mod bpf;
mod sys;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::Timestamp;

pub(crate) use sys::{
    DATAGRAM_BATCH, Datagram, DatagramBatch, enable_packet_info, force_receive_buffer,
    interface_addresses, poll,
};

/// `PACKET_HOST`: the frame was addressed to this host.
const PACKET_HOST: u8 = 0;
/// `PACKET_OUTGOING`: the frame was sent by this host.
const PACKET_OUTGOING: u8 = 4;

/// Which way a captured frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Addressed to this host (`PACKET_HOST`): a possible probe.
    Incoming,
    /// Sent by this host (`PACKET_OUTGOING`): one of its answers or flows.
    Outgoing,
}

impl Direction {
    fn of(pkttype: u8) -> Option<Self> {
        match pkttype {
            PACKET_HOST => Some(Self::Incoming),
            PACKET_OUTGOING => Some(Self::Outgoing),
            _ => None,
        }
    }
}

/// Errors of opening or reading a capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The kernel refused to open a packet socket: the process is neither root nor holds
    /// `CAP_NET_RAW`.
    #[error("opening an AF_PACKET capture socket needs root or CAP_NET_RAW")]
    NeedsCapNetRaw,
    /// The interface given to [`CaptureOptions::interface`] does not exist.
    #[error("no network interface named {name:?}")]
    NoSuchInterface {
        /// The name that was asked for.
        name: String,
    },
    /// Any other failed system call while opening, configuring or reading the socket.
    #[error("capture: cannot {operation}: {source}")]
    Io {
        /// What was being done ("open the AF_PACKET socket", "receive frames", ...).
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    fn io(operation: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { operation, source }
    }
}

/// How to open a [`Capture`].
///
/// # Examples
///
/// ```
/// use portsentry_core::capture::CaptureOptions;
/// let options = CaptureOptions::new().interface("eth0").ack_family(true);
/// assert_eq!(options.interface_name(), Some("eth0"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    interface: Option<String>,
    ack_family: bool,
    incoming: bpf::Incoming,
    outgoing: bpf::Outgoing,
    receive_buffer: usize,
}

impl CaptureOptions {
    /// The default receive-queue size asked of the kernel: 4 MiB.
    pub const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

    /// All interfaces, probes only (no ACK family) to every port, the host's answers from
    /// every local port, a 4 MiB receive queue.
    pub fn new() -> Self {
        Self {
            interface: None,
            ack_family: false,
            incoming: bpf::Incoming::AnyPort,
            outgoing: bpf::Outgoing::AnyPort,
            receive_buffer: Self::DEFAULT_RECEIVE_BUFFER,
        }
    }

    /// Which destination ports of probes the filter keeps (default [`bpf::Incoming::AnyPort`]).
    #[must_use]
    pub fn incoming(mut self, incoming: bpf::Incoming) -> Self {
        self.incoming = incoming;
        self
    }

    /// What the filter keeps of the host's own frames (default [`bpf::Outgoing::AnyPort`]).
    #[must_use]
    pub fn outgoing(mut self, outgoing: bpf::Outgoing) -> Self {
        self.outgoing = outgoing;
        self
    }

    /// Capture only on the interface called `name` (`-i`), instead of on all interfaces.
    #[must_use]
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.interface = Some(name.into());
        self
    }

    /// Also let bare ACK and FIN+ACK segments through the filter (for `DETECT_ACK_SCANS`).
    #[must_use]
    pub fn ack_family(mut self, enabled: bool) -> Self {
        self.ack_family = enabled;
        self
    }

    /// The receive-queue size to ask for, in bytes (as root it is forced past
    /// `net.core.rmem_max`).
    #[must_use]
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.receive_buffer = bytes;
        self
    }

    /// The interface the capture is limited to, if any.
    pub fn interface_name(&self) -> Option<&str> {
        self.interface.as_deref()
    }

    /// The inbound filter these options attach.
    pub fn filter_variant(&self) -> bpf::Variant {
        if self.ack_family {
            bpf::Variant::WithAckFamily
        } else {
            bpf::Variant::Probes
        }
    }

    /// The whole filter these options attach.
    pub fn filter(&self) -> bpf::Filter {
        bpf::Filter {
            variant: self.filter_variant(),
            incoming: self.incoming.clone(),
            outgoing: self.outgoing.clone(),
        }
    }
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of a capture since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CaptureStats {
    /// Frames the kernel's filter passed (`tp_packets`, including those then dropped).
    pub received: u64,
    /// Frames the kernel dropped because the receive queue was full (`tp_drops`).
    pub dropped: u64,
    /// Frames handed to the caller by [`Capture::recv_batch`] (both directions).
    pub delivered: u64,
    /// Of those, the frames this host sent ([`Direction::Outgoing`]).
    pub outgoing: u64,
    /// Frames user space discarded because they were neither addressed to this host nor
    /// sent by it (the filter already drops these; expected to stay 0).
    pub not_for_host: u64,
}

/// One captured frame, borrowed from the capture's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The kernel's receive time.
    pub at: Timestamp,
    /// The index of the interface the frame arrived on.
    pub ifindex: u32,
    /// The ethertype (0x0800 IPv4, 0x86dd IPv6).
    pub ethertype: u16,
    /// Addressed to this host, or sent by it.
    pub direction: Direction,
    /// The frame from the IP header on, cut at the filter's snap length.
    pub data: &'a [u8],
}

/// The frames of one [`Capture::recv_batch`] call.
#[derive(Debug)]
pub struct Batch<'a> {
    capture: &'a Capture,
    count: usize,
}

impl<'a> Batch<'a> {
    /// The number of frames in the batch (those addressed to or sent by this host).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when the wait timed out with no frame.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The frames, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = Frame<'a>> + 'a {
        let capture = self.capture;
        (0..self.count).filter_map(move |i| capture.frame(i))
    }
}

impl<'a> IntoIterator for &Batch<'a> {
    type Item = Frame<'a>;
    type IntoIter = Box<dyn Iterator<Item = Frame<'a>> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// A live `AF_PACKET` capture of possible probes, IPv4 and IPv6.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use portsentry_core::capture::{Capture, CaptureOptions};
///
/// let mut capture = Capture::open(&CaptureOptions::new())?;
/// let batch = capture.recv_batch(Duration::from_millis(500))?;
/// for frame in batch.iter() {
///     println!("{} bytes on ifindex {} at {:?}", frame.data.len(), frame.ifindex, frame.at);
/// }
/// println!("{:?}", capture.stats()?);
/// # Ok::<(), portsentry_core::capture::CaptureError>(())
/// ```
#[derive(Debug)]
pub struct Capture {
    socket: Socket,
    ring: sys::RecvRing,
    filled: usize,
    ifindex: Option<u32>,
    filter: bpf::Filter,
    totals: CaptureStats,
}

impl Capture {
    /// Opens a capture as `options` say, in the calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// [`CaptureError::NeedsCapNetRaw`] without root or `CAP_NET_RAW`;
    /// [`CaptureError::NoSuchInterface`] for an unknown interface name;
    /// [`CaptureError::Io`] when a socket call fails.
    pub fn open(options: &CaptureOptions) -> Result<Self, CaptureError> {
        // Protocol 0: the socket receives nothing until bound below, after the filter is on.
        let socket = Socket::new(
            Domain::PACKET,
            Type::DGRAM.nonblocking(),
            Some(Protocol::from(0)),
        )
        .map_err(|error| match error.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => CaptureError::NeedsCapNetRaw,
            _ => CaptureError::io("open the AF_PACKET socket")(error),
        })?;
        let ifindex =
            match options.interface_name() {
                None => None,
                Some(name) => Some(sys::interface_index(name).ok_or_else(|| {
                    CaptureError::NoSuchInterface {
                        name: name.to_owned(),
                    }
                })?),
            };
        let filter = options.filter();
        attach(&socket, &filter)?;
        sys::set_int_option(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
            .map_err(CaptureError::io("enable receive timestamps"))?;
        let buffer = libc::c_int::try_from(options.receive_buffer).unwrap_or(libc::c_int::MAX);
        if sys::set_int_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, buffer).is_err() {
            socket
                .set_recv_buffer_size(options.receive_buffer)
                .map_err(CaptureError::io("set the receive buffer size"))?;
        }
        let address = sys::link_address(ifindex.unwrap_or(0), sys::ETH_P_ALL_BE, None);
        sys::bind_link(&socket, &address).map_err(CaptureError::io("bind the AF_PACKET socket"))?;
        Ok(Self {
            socket,
            ring: sys::RecvRing::new(),
            filled: 0,
            ifindex,
            filter,
            totals: CaptureStats::default(),
        })
    }

    /// The interface index the capture is bound to, or `None` for all interfaces.
    pub fn ifindex(&self) -> Option<u32> {
        self.ifindex
    }

    /// The inbound filter attached to the socket.
    pub fn filter_variant(&self) -> bpf::Variant {
        self.filter.variant
    }

    /// The whole filter attached to the socket.
    pub fn filter(&self) -> &bpf::Filter {
        &self.filter
    }

    /// Replaces the filter on the open socket (the kernel swaps it atomically: no frame is
    /// seen unfiltered). Used when the monitored ports change (reload, listening ports).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Io`] when the kernel refuses the program; the old one stays then.
    pub fn set_filter(&mut self, filter: bpf::Filter) -> Result<(), CaptureError> {
        if filter != self.filter {
            attach(&self.socket, &filter)?;
            self.filter = filter;
        }
        Ok(())
    }

    /// Receives the frames queued now (up to 64), waiting at most `timeout` for the first.
    /// An empty batch means the wait timed out (or a signal interrupted it).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Io`] when waiting or receiving fails.
    pub fn recv_batch(&mut self, timeout: Duration) -> Result<Batch<'_>, CaptureError> {
        self.filled = 0;
        let mut count = self
            .ring
            .receive(&self.socket)
            .map_err(CaptureError::io("receive frames"))?;
        if count == 0 && !timeout.is_zero() {
            let mut fds = [libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ready = poll(&mut fds, timeout).map_err(CaptureError::io("wait for frames"))?;
            if ready > 0 {
                count = self
                    .ring
                    .receive(&self.socket)
                    .map_err(CaptureError::io("receive frames"))?;
            }
        }
        self.filled = count;
        for meta in &self.ring.meta[..count] {
            match Direction::of(meta.pkttype) {
                Some(Direction::Incoming) => self.totals.delivered += 1,
                Some(Direction::Outgoing) => {
                    self.totals.delivered += 1;
                    self.totals.outgoing += 1;
                }
                None => self.totals.not_for_host += 1,
            }
        }
        Ok(Batch {
            capture: self,
            count,
        })
    }

    fn frame(&self, i: usize) -> Option<Frame<'_>> {
        let meta = self.ring.meta.get(i)?;
        if i >= self.filled {
            return None;
        }
        let direction = Direction::of(meta.pkttype)?;
        let at = match meta.timestamp {
            Some((secs, nanos)) => Timestamp::from_secs_nanos(secs, nanos),
            None => now(),
        };
        Some(Frame {
            at,
            ifindex: meta.ifindex,
            ethertype: meta.protocol,
            direction,
            data: self.ring.frame(i),
        })
    }

    /// The counters since the capture was opened (the kernel's are read and accumulated).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Io`] when the kernel's counters cannot be read.
    pub fn stats(&mut self) -> Result<CaptureStats, CaptureError> {
        let (received, dropped) = sys::packet_statistics(&self.socket)
            .map_err(CaptureError::io("read PACKET_STATISTICS"))?;
        self.totals.received += u64::from(received);
        self.totals.dropped += u64::from(dropped);
        Ok(self.totals)
    }
}

/// Attaches `filter` to `socket`, and tells the kernel whether to loop the host's own frames
/// to it at all (`PACKET_IGNORE_OUTGOING`, Linux 4.20+; older kernels loop them and the
/// filter decides).
fn attach(socket: &Socket, filter: &bpf::Filter) -> Result<(), CaptureError> {
    let program: Vec<SockFilter> = bpf::program(filter)
        .iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect();
    socket
        .attach_filter(&program)
        .map_err(CaptureError::io("attach the BPF filter"))?;
    let ignore = libc::c_int::from(filter.outgoing == bpf::Outgoing::Nothing);
    let _ = sys::set_int_option(
        socket,
        libc::SOL_PACKET,
        libc::PACKET_IGNORE_OUTGOING,
        ignore,
    );
    Ok(())
}

/// The system clock as a [`Timestamp`] (for a frame without a kernel timestamp, which is
/// never expected, and for connect-mode contacts).
pub(crate) fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(since.as_secs(), since.subsec_nanos())
}

impl AsFd for Capture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for Capture {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;
