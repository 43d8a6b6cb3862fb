//! Thin wrappers over the Linux system calls that socket2 and std do not cover.
//!
//! Every `unsafe` block of the crate lives in this file; each says why it is sound. The
//! wrappers take and return safe types (file descriptors by `AsFd`, slices, owned values).

use std::ffi::CString;
use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// `ETH_P_ALL` in network byte order, as `sockaddr_ll.sll_protocol` wants it.
pub(crate) const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// The size of `sockaddr_ll`, as a `socklen_t`.
const SOCKADDR_LL_LEN: libc::socklen_t = size_of::<libc::sockaddr_ll>() as libc::socklen_t;

/// The index of the interface called `name` in the calling thread's network namespace.
///
/// Returns `None` when no interface has that name (or the name holds a NUL byte).
pub(crate) fn interface_index(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call; the function
    // only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// A `sockaddr_ll` for `ifindex` (0: every interface) and `protocol` (network order).
pub(crate) fn link_address(
    ifindex: u32,
    protocol_be: u16,
    mac: Option<[u8; 6]>,
) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is a plain C struct of integers and byte arrays; all-zero is a
    // valid value of it.
    let mut address: libc::sockaddr_ll = unsafe { zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol_be;
    address.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
    if let Some(mac) = mac {
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&mac);
    }
    address
}

/// Binds a packet socket to `address` (the step that starts delivery of frames).
pub(crate) fn bind_link(socket: &impl AsFd, address: &libc::sockaddr_ll) -> io::Result<()> {
    // SAFETY: the pointer and length describe `address`, a live, initialised sockaddr_ll;
    // bind(2) only reads it, and the descriptor is borrowed for the duration of the call.
    let rc = unsafe {
        libc::bind(
            socket.as_fd().as_raw_fd(),
            std::ptr::from_ref(address).cast::<libc::sockaddr>(),
            SOCKADDR_LL_LEN,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `payload` (starting at the L3 header) on a `SOCK_DGRAM` packet socket to `address`.
#[cfg(test)]
pub(crate) fn send_link(
    socket: &impl AsFd,
    payload: &[u8],
    address: &libc::sockaddr_ll,
) -> io::Result<usize> {
    // SAFETY: `payload` is a live slice of `payload.len()` readable bytes and `address` a live
    // sockaddr_ll of the length given; sendto(2) only reads both.
    let rc = unsafe {
        libc::sendto(
            socket.as_fd().as_raw_fd(),
            payload.as_ptr().cast(),
            payload.len(),
            0,
            std::ptr::from_ref(address).cast::<libc::sockaddr>(),
            SOCKADDR_LL_LEN,
        )
    };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(
    socket: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, a live c_int; setsockopt(2) only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads and resets the kernel's counters of a packet socket: (frames passed by the filter,
/// frames dropped because the receive queue was full).
pub(crate) fn packet_statistics(socket: &impl AsFd) -> io::Result<(u32, u32)> {
    let mut stats = MaybeUninit::<libc::tpacket_stats>::zeroed();
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is writable storage of `len` bytes for a tpacket_stats and `len` a
    // live socklen_t; getsockopt(2) writes at most `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            stats.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised above, and the kernel filled it on success.
    let stats = unsafe { stats.assume_init() };
    Ok((stats.tp_packets, stats.tp_drops))
}

/// Waits until one of `fds` is readable, or `timeout` passes. Returns how many entries have
/// events (0 on timeout or when interrupted by a signal).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` is a live, exclusively borrowed slice of `count` pollfd entries; poll(2)
    // reads the entries and writes only their `revents` fields.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    match usize::try_from(rc) {
        Ok(n) => Ok(n),
        Err(_) => {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(error)
            }
        }
    }
}

/// The most frames one [`RecvRing::receive`] call takes.
pub(crate) const BATCH: usize = 64;
/// The bytes kept per frame: the longest snap length a filter returns.
pub(crate) const SLOT: usize = super::bpf::EXTENSION_SNAPLEN as usize;
/// Control-message space per frame, in u64 words (aligned for `cmsghdr`): room for one
/// `SCM_TIMESTAMPNS` (16-byte header + 16-byte timespec) with margin.
const CONTROL_WORDS: usize = 8;

/// What the kernel said about one received frame.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FrameMeta {
    /// Bytes copied into the slot.
    pub(crate) len: usize,
    /// `sll_pkttype` (`PACKET_HOST` = 0, ...).
    pub(crate) pkttype: u8,
    /// `sll_protocol`, host order (the ethertype).
    pub(crate) protocol: u16,
    /// `sll_ifindex`.
    pub(crate) ifindex: u32,
    /// The kernel receive timestamp, if the control message was present.
    pub(crate) timestamp: Option<(u64, u32)>,
}

/// Reusable buffers for `recvmmsg(2)`: one slot, address and control area per frame.
///
/// The `mmsghdr`/`iovec` arrays (which hold raw pointers) are built on the stack for each
/// call, so this struct owns only plain data and stays `Send`.
pub(crate) struct RecvRing {
    data: Box<[[u8; SLOT]]>,
    addresses: Box<[libc::sockaddr_ll]>,
    control: Box<[[u64; CONTROL_WORDS]]>,
    pub(crate) meta: Box<[FrameMeta]>,
}

impl std::fmt::Debug for RecvRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvRing").finish_non_exhaustive()
    }
}

impl RecvRing {
    pub(crate) fn new() -> Self {
        Self {
            data: vec![[0u8; SLOT]; BATCH].into_boxed_slice(),
            addresses: vec![link_address(0, 0, None); BATCH].into_boxed_slice(),
            control: vec![[0u64; CONTROL_WORDS]; BATCH].into_boxed_slice(),
            meta: vec![FrameMeta::default(); BATCH].into_boxed_slice(),
        }
    }

    /// The bytes of frame `i` of the last receive.
    pub(crate) fn frame(&self, i: usize) -> &[u8] {
        let len = self.meta[i].len.min(SLOT);
        &self.data[i][..len]
    }

    /// Takes up to [`BATCH`] queued frames without blocking; returns how many (0 when the
    /// queue is empty). Fills `meta[..n]`.
    pub(crate) fn receive(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero is a valid value (null
        // pointers, zero lengths), and every field used is set below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovecs[i].iov_base = self.data[i].as_mut_ptr().cast();
            iovecs[i].iov_len = SLOT;
            let header = &mut headers[i].msg_hdr;
            header.msg_name = std::ptr::from_mut(&mut self.addresses[i]).cast();
            header.msg_namelen = SOCKADDR_LL_LEN;
            header.msg_iov = &raw mut iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = self.control[i].as_mut_ptr().cast();
            header.msg_controllen = CONTROL_WORDS * size_of::<u64>();
        }
        // Every header points at buffers owned by `self` (slots, addresses, control areas)
        // or at `iovecs` on this stack frame, all live and exclusively borrowed for the call.
        let count = receive_many(socket, &mut headers)?;
        let received = headers.iter().zip(self.addresses.iter());
        for ((header, address), meta) in received.zip(self.meta.iter_mut()).take(count) {
            *meta = FrameMeta {
                len: header.msg_len as usize,
                pkttype: address.sll_pkttype,
                protocol: u16::from_be(address.sll_protocol),
                ifindex: u32::try_from(address.sll_ifindex).unwrap_or(0),
                timestamp: receive_timestamp(&header.msg_hdr),
            };
        }
        Ok(count)
    }
}

/// One non-blocking `recvmmsg(2)` into `headers`; returns how many messages it took (0 when
/// none is queued or a signal came).
///
/// Every header must point at live buffers, exclusively borrowed for the call, with their
/// true lengths (the callers build them from their own buffers just before).
fn receive_many(socket: &impl AsFd, headers: &mut [libc::mmsghdr]) -> io::Result<usize> {
    let capacity = libc::c_uint::try_from(headers.len()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: per the contract above, each header points at live, exclusively borrowed
    // buffers with their true lengths; recvmmsg(2) writes within those lengths and into at
    // most `capacity` headers. MSG_DONTWAIT makes it return at once; the timeout is null.
    let rc = unsafe {
        libc::recvmmsg(
            socket.as_fd().as_raw_fd(),
            headers.as_mut_ptr(),
            capacity,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    match usize::try_from(rc) {
        Ok(n) => Ok(n.min(headers.len())),
        Err(_) => {
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(error),
            }
        }
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received message, as (seconds, nanoseconds).
fn receive_timestamp(header: &libc::msghdr) -> Option<(u64, u32)> {
    // SAFETY: `header` was filled by recvmmsg(2): msg_control points at our control area and
    // msg_controllen is the length the kernel wrote, so the CMSG_* walk stays inside it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a pointer to a complete cmsghdr
        // inside the control area.
        let current = unsafe { &*cmsg };
        if current.cmsg_level == libc::SOL_SOCKET && current.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: a SCM_TIMESTAMPNS message carries one `timespec` in its data; the data
            // may be unaligned, hence read_unaligned.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u32::try_from(ts.tv_nsec).ok()?;
            return Some((secs, nanos));
        }
        // SAFETY: `cmsg` is a valid header inside `header`'s control area (see above).
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    None
}

/// One address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceAddress {
    pub(crate) interface: String,
    pub(crate) address: IpAddr,
}

/// Every IPv4 and IPv6 address configured on this host's interfaces (`getifaddrs(3)`), in
/// the calling thread's network namespace.
pub(crate) fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a live out-pointer; on success getifaddrs(3) stores a list that we
    // free with freeifaddrs below.
    if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut node = head;
    while !node.is_null() {
        // SAFETY: `node` is a non-null element of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*node };
        node = entry.ifa_next;
        if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr whose family says its type;
        // we read the family first and then the matching struct (read_unaligned: no alignment
        // assumption).
        let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
        let address = match family {
            libc::AF_INET => {
                // SAFETY: family AF_INET means the storage is a sockaddr_in.
                let sin: libc::sockaddr_in =
                    unsafe { std::ptr::read_unaligned(entry.ifa_addr.cast()) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
            libc::AF_INET6 => {
                // SAFETY: family AF_INET6 means the storage is a sockaddr_in6.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read_unaligned(entry.ifa_addr.cast()) };
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
            }
            _ => continue,
        };
        // SAFETY: ifa_name is a non-null NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) };
        out.push(InterfaceAddress {
            interface: name.to_string_lossy().into_owned(),
            address,
        });
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once; no
    // reference into the list outlives this point (names were copied).
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Moves the calling thread into the network namespace at `path` (`/run/netns/NAME`).
#[cfg(test)]
pub(crate) fn enter_network_namespace(path: &str) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    // SAFETY: `file` is an open namespace file descriptor, live for the call; setns(2) only
    // changes the calling thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes capability number `capability` from the calling thread's effective set (the
/// other threads keep theirs), so a test can see what an unprivileged process sees.
#[cfg(test)]
pub(crate) fn drop_effective_capability(capability: u32) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and data are live, writable and laid out as capget(2) expects
    // (version 3: one header and two data words).
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let word = (capability / 32) as usize;
    data[word].effective &= !(1 << (capability % 32));
    // SAFETY: as above; capset(2) with pid 0 changes only the calling thread.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One datagram taken by [`DatagramBatch::receive`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    /// The sender, when the kernel gave an IPv4 or IPv6 address.
    pub(crate) source: Option<std::net::SocketAddr>,
    /// The datagram's destination address, from the `IP_PKTINFO`/`IPV6_PKTINFO` control
    /// message (needs [`enable_packet_info`] on the socket).
    pub(crate) destination: Option<IpAddr>,
}

/// Asks the kernel to attach the destination address to each datagram received on a UDP
/// socket (`IP_PKTINFO`, and `IPV6_RECVPKTINFO` for an IPv6 socket).
pub(crate) fn enable_packet_info(socket: &impl AsFd, ipv6: bool) -> io::Result<()> {
    set_int_option(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
    if ipv6 {
        set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    }
    Ok(())
}

/// Sets a socket's receive buffer to `bytes` past `net.core.rmem_max` (`SO_RCVBUFFORCE`,
/// needs `CAP_NET_ADMIN`).
pub(crate) fn force_receive_buffer(socket: &impl AsFd, bytes: usize) -> io::Result<()> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
}

/// Datagrams one [`DatagramBatch::receive`] takes at most.
pub(crate) const DATAGRAM_BATCH: usize = 32;
/// Payload bytes kept per datagram (the payload is not looked at; longer ones are cut).
const DATAGRAM_SLOT: usize = 64;

/// Reusable buffers for `recvmmsg(2)` on a UDP socket: address, control area and a short
/// payload slot per datagram. Plain data only (the `mmsghdr` array is built per call).
pub(crate) struct DatagramBatch {
    names: Box<[libc::sockaddr_storage]>,
    control: Box<[[u64; 16]]>,
    data: Box<[[u8; DATAGRAM_SLOT]]>,
    /// What the last receive took, in order.
    pub(crate) received: Vec<Datagram>,
}

impl std::fmt::Debug for DatagramBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramBatch")
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl DatagramBatch {
    pub(crate) fn new() -> Self {
        // SAFETY: sockaddr_storage is a plain C struct; all-zero is a valid value.
        let name: libc::sockaddr_storage = unsafe { zeroed() };
        Self {
            names: vec![name; DATAGRAM_BATCH].into_boxed_slice(),
            control: vec![[0u64; 16]; DATAGRAM_BATCH].into_boxed_slice(),
            data: vec![[0u8; DATAGRAM_SLOT]; DATAGRAM_BATCH].into_boxed_slice(),
            received: Vec::with_capacity(DATAGRAM_BATCH),
        }
    }

    /// Takes up to [`DATAGRAM_BATCH`] queued datagrams with one `recvmmsg(2)` call, without
    /// blocking, into [`DatagramBatch::received`]; returns how many (0 when none is queued).
    ///
    /// # Errors
    ///
    /// The error of `recvmmsg(2)` other than `EAGAIN`/`EINTR` (e.g. an ICMP-reported
    /// `ECONNREFUSED`, which concerns one earlier datagram).
    pub(crate) fn receive(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.received.clear();
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero is a valid value (null
        // pointers, zero lengths), and every field used is set below.
        let mut iovecs: [libc::iovec; DATAGRAM_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; DATAGRAM_BATCH] = unsafe { zeroed() };
        for i in 0..DATAGRAM_BATCH {
            iovecs[i].iov_base = self.data[i].as_mut_ptr().cast();
            iovecs[i].iov_len = DATAGRAM_SLOT;
            let header = &mut headers[i].msg_hdr;
            header.msg_name = std::ptr::from_mut(&mut self.names[i]).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &raw mut iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = self.control[i].as_mut_ptr().cast();
            header.msg_controllen = size_of::<[u64; 16]>();
        }
        // Every header points at buffers owned by `self` (names, control areas, payload
        // slots) or at `iovecs` on this stack frame, all live and exclusively borrowed.
        let count = receive_many(socket, &mut headers)?;
        for (header, name) in headers.iter().zip(self.names.iter()).take(count) {
            self.received.push(Datagram {
                source: socket_address(name),
                destination: packet_info_destination(&header.msg_hdr),
            });
        }
        Ok(count)
    }
}

/// A `sockaddr_storage` filled by the kernel, as a std socket address (IPv4 or IPv6 only).
fn socket_address(storage: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: family AF_INET: the storage holds a sockaddr_in (storage is larger and
            // suitably aligned for it).
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read(std::ptr::from_ref(storage).cast()) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(std::net::SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: family AF_INET6: the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read(std::ptr::from_ref(storage).cast()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(std::net::SocketAddr::from((
                ip,
                u16::from_be(sin6.sin6_port),
            )))
        }
        _ => None,
    }
}

/// The destination address carried by an `IP_PKTINFO` or `IPV6_PKTINFO` control message.
fn packet_info_destination(header: &libc::msghdr) -> Option<IpAddr> {
    // SAFETY: `header` was filled by recvmsg(2); msg_controllen is what the kernel wrote
    // into our control buffer, so the CMSG_* walk stays inside it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a complete cmsghdr in the buffer.
        let current = unsafe { &*cmsg };
        if current.cmsg_level == libc::IPPROTO_IP && current.cmsg_type == libc::IP_PKTINFO {
            // SAFETY: an IP_PKTINFO message carries one in_pktinfo; read_unaligned avoids
            // any alignment assumption.
            let info: libc::in_pktinfo =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            return Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                info.ipi_addr.s_addr,
            ))));
        }
        if current.cmsg_level == libc::IPPROTO_IPV6 && current.cmsg_type == libc::IPV6_PKTINFO {
            // SAFETY: an IPV6_PKTINFO message carries one in6_pktinfo.
            let info: libc::in6_pktinfo =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            return Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
        }
        // SAFETY: `cmsg` is a valid header inside the control buffer (see above).
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    None
}
