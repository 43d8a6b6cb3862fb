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
//! * The filter ([`bpf`]) keeps only frames addressed to this host (`PACKET_HOST`) that can be
//!   a probe, truncated to a snap length; ordinary TCP traffic (ACK or RST set) never leaves the
//!   kernel. `PACKET_IGNORE_OUTGOING` also spares the kernel the work of looping outgoing
//!   frames to us. User space re-checks the packet type of each frame.
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
    interface_addresses, kill_with_parent, poll,
};

/// `PACKET_HOST`: the frame was addressed to this host.
const PACKET_HOST: u8 = 0;

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
    receive_buffer: usize,
}

impl CaptureOptions {
    /// The default receive-queue size asked of the kernel: 4 MiB.
    pub const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

    /// All interfaces, probes only (no ACK family), a 4 MiB receive queue.
    pub fn new() -> Self {
        Self {
            interface: None,
            ack_family: false,
            receive_buffer: Self::DEFAULT_RECEIVE_BUFFER,
        }
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

    /// The filter these options attach.
    pub fn filter_variant(&self) -> bpf::Variant {
        if self.ack_family {
            bpf::Variant::WithAckFamily
        } else {
            bpf::Variant::Probes
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
    /// Frames handed to the caller by [`Capture::recv_batch`].
    pub delivered: u64,
    /// Frames user space discarded because they were not addressed to this host (the
    /// filter already drops these; expected to stay 0).
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
    /// The number of frames in the batch (those for this host).
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
    variant: bpf::Variant,
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
        let variant = options.filter_variant();
        let filter: Vec<SockFilter> = bpf::program(variant)
            .iter()
            .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
            .collect();
        socket
            .attach_filter(&filter)
            .map_err(CaptureError::io("attach the BPF filter"))?;
        sys::set_int_option(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
            .map_err(CaptureError::io("enable receive timestamps"))?;
        // Linux 4.20+; older kernels loop outgoing frames to us and the filter drops them.
        let _ = sys::set_int_option(&socket, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1);
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
            variant,
            totals: CaptureStats::default(),
        })
    }

    /// The interface index the capture is bound to, or `None` for all interfaces.
    pub fn ifindex(&self) -> Option<u32> {
        self.ifindex
    }

    /// The filter attached to the socket.
    pub fn filter_variant(&self) -> bpf::Variant {
        self.variant
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
        let mut delivered = 0u64;
        for meta in &self.ring.meta[..count] {
            if meta.pkttype == PACKET_HOST {
                delivered += 1;
            } else {
                self.totals.not_for_host += 1;
            }
        }
        self.totals.delivered += delivered;
        Ok(Batch {
            capture: self,
            count,
        })
    }

    fn frame(&self, i: usize) -> Option<Frame<'_>> {
        let meta = self.ring.meta.get(i)?;
        if i >= self.filled || meta.pkttype != PACKET_HOST {
            return None;
        }
        let at = match meta.timestamp {
            Some((secs, nanos)) => Timestamp::from_secs_nanos(secs, nanos),
            None => now(),
        };
        Some(Frame {
            at,
            ifindex: meta.ifindex,
            ethertype: meta.protocol,
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
