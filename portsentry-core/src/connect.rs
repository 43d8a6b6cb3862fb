//! Connect mode (PortSentry's `-tcp` and `-udp`): a real listening socket on each monitored
//! port. A completed TCP handshake is a probe of kind [`ScanKind::Connect`], any datagram one
//! of kind [`ScanKind::Udp`].
//!
//! Each port gets one dual-stack socket on `[::]` (`IPV6_V6ONLY` off), so IPv4 and IPv6 are
//! both covered; on a host without IPv6 the socket is IPv4 only. IPv4 peers, which a
//! dual-stack socket reports as IPv4-mapped IPv6 addresses, are given back as IPv4. TCP
//! sockets use `SO_REUSEADDR`; all are non-blocking. A port that cannot be bound (in use,
//! privileged, out of descriptors) is reported in the failure list and skipped, as PortSentry
//! does.
//!
//! [`ConnectListener::wait`] waits with `poll(2)` at most the given timeout and returns a
//! [`Contact`] per connection or datagram. The daemon asks the detector about
//! [`Contact::probe`] and then either sends `PORT_BANNER` ([`Contact::send_banner`]: write
//! then close for TCP, a reply datagram for UDP) or just drops the contact (which closes a
//! TCP connection).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::capture::{
    DATAGRAM_BATCH, DatagramBatch, enable_packet_info, force_receive_buffer, now, poll,
};
use crate::{PortSet, Probe, Protocol, ScanKind};

/// The listen backlog of each TCP socket.
const BACKLOG: i32 = 16;
/// The most connections or datagrams taken from one socket per wait, so one busy port
/// cannot starve the others.
const PER_SOCKET_PER_WAIT: usize = 64;

/// Receive queue of each UDP socket, in bytes (about 4,000 queued datagrams).
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// A port that could not be bound, and why.
#[derive(Debug)]
pub struct BindFailure {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port.
    pub port: u16,
    /// The operating system's error (e.g. "Address already in use").
    pub error: io::Error,
}

impl std::fmt::Display for BindFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot bind {} port {}: {}",
            self.protocol.as_upper_str(),
            self.port,
            self.error
        )
    }
}

/// Errors of waiting for connections.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// `poll(2)` on the listening sockets failed.
    #[error("connect mode: cannot wait for connections: {0}")]
    Wait(#[source] io::Error),
}

enum Listener {
    Tcp(Socket),
    Udp(Arc<UdpSocket>),
}

struct Bound {
    port: u16,
    listener: Listener,
}

/// The listening sockets of connect mode.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use portsentry_core::{PortSet, connect::ConnectListener};
///
/// let tcp: PortSet = [40111].into_iter().collect();
/// let (mut listener, failures) = ConnectListener::bind(&tcp, &PortSet::new());
/// for failure in &failures {
///     eprintln!("{failure}"); // e.g. the port is in use: skipped
/// }
/// let mut contacts = Vec::new();
/// listener.wait(Duration::from_millis(10), &mut contacts)?;
/// for contact in contacts {
///     println!("{:?}", contact.probe());
///     contact.send_banner(b"go away\n")?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ConnectListener {
    bound: Vec<Bound>,
    pollfds: Vec<libc::pollfd>,
    accept_failures: u64,
    /// `recvmmsg(2)` buffers for the UDP sockets.
    datagrams: DatagramBatch,
}

impl std::fmt::Debug for ConnectListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectListener")
            .field("tcp", &self.ports(Protocol::Tcp))
            .field("udp", &self.ports(Protocol::Udp))
            .finish_non_exhaustive()
    }
}

impl ConnectListener {
    /// Binds a listening socket on every port of `tcp` and `udp` (all addresses, IPv4 and
    /// IPv6). Ports that cannot be bound are returned as failures and not monitored.
    pub fn bind(tcp: &PortSet, udp: &PortSet) -> (Self, Vec<BindFailure>) {
        let mut listener = Self {
            bound: Vec::new(),
            pollfds: Vec::new(),
            accept_failures: 0,
            datagrams: DatagramBatch::new(),
        };
        let mut failures = Vec::new();
        let wanted = tcp
            .iter()
            .map(|port| (Protocol::Tcp, port))
            .chain(udp.iter().map(|port| (Protocol::Udp, port)));
        for (protocol, port) in wanted {
            match bind_one(protocol, port) {
                Ok(bound) => {
                    let fd = match &bound {
                        Listener::Tcp(socket) => socket.as_raw_fd(),
                        Listener::Udp(socket) => socket.as_raw_fd(),
                    };
                    listener.pollfds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    listener.bound.push(Bound {
                        port,
                        listener: bound,
                    });
                }
                Err(error) => failures.push(BindFailure {
                    protocol,
                    port,
                    error,
                }),
            }
        }
        (listener, failures)
    }

    /// The ports of `protocol` that are bound and monitored.
    pub fn ports(&self, protocol: Protocol) -> PortSet {
        self.bound
            .iter()
            .filter(|b| {
                matches!(
                    (&b.listener, protocol),
                    (Listener::Tcp(_), Protocol::Tcp) | (Listener::Udp(_), Protocol::Udp)
                )
            })
            .map(|b| b.port)
            .collect()
    }

    /// True when no port is bound (nothing to monitor).
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// How many `accept` calls failed after a socket was reported ready (the peer gave up
    /// between handshake and accept; PortSentry logged these as possible stealth scans).
    pub fn accept_failures(&self) -> u64 {
        self.accept_failures
    }

    /// Waits at most `timeout` for connections and datagrams and appends a [`Contact`] for
    /// each to `out`. Returns how many were appended (0 on timeout or a signal).
    ///
    /// # Errors
    ///
    /// [`ConnectError::Wait`] when `poll(2)` fails.
    pub fn wait(
        &mut self,
        timeout: Duration,
        out: &mut Vec<Contact>,
    ) -> Result<usize, ConnectError> {
        if self.pollfds.is_empty() {
            std::thread::sleep(timeout);
            return Ok(0);
        }
        let ready = poll(&mut self.pollfds, timeout).map_err(ConnectError::Wait)?;
        if ready == 0 {
            return Ok(0);
        }
        let before = out.len();
        for (pollfd, bound) in self.pollfds.iter_mut().zip(&self.bound) {
            if pollfd.revents == 0 {
                continue;
            }
            pollfd.revents = 0;
            match &bound.listener {
                Listener::Tcp(socket) => {
                    for _ in 0..PER_SOCKET_PER_WAIT {
                        match socket.accept() {
                            Ok((stream, peer)) => match tcp_contact(stream, &peer) {
                                Some(contact) => out.push(contact),
                                None => self.accept_failures += 1,
                            },
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => self.accept_failures += 1,
                        }
                    }
                }
                Listener::Udp(socket) => {
                    // Batches of up to DATAGRAM_BATCH datagrams per recvmmsg(2) call.
                    for _ in 0..PER_SOCKET_PER_WAIT.div_ceil(DATAGRAM_BATCH) {
                        match self.datagrams.receive(socket.as_ref()) {
                            Ok(n) => {
                                let at = now();
                                out.extend(
                                    self.datagrams
                                        .received
                                        .iter()
                                        .filter_map(|d| udp_contact(socket, bound.port, *d, at)),
                                );
                                if n < DATAGRAM_BATCH {
                                    break; // drained
                                }
                            }
                            // Errors (e.g. ICMP-reported ECONNREFUSED) concern one
                            // datagram; try again next wait.
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        Ok(out.len() - before)
    }
}

fn bind_one(protocol: Protocol, port: u16) -> io::Result<Listener> {
    let kind = match protocol {
        Protocol::Tcp => Type::STREAM,
        Protocol::Udp => Type::DGRAM,
    };
    // Dual-stack [::] first; IPv4 alone where the host has no IPv6.
    let (socket, ipv6) = match Socket::new(Domain::IPV6, kind.nonblocking(), None) {
        Ok(socket) => {
            socket.set_only_v6(false)?;
            (socket, true)
        }
        Err(error) if error.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            (Socket::new(Domain::IPV4, kind.nonblocking(), None)?, false)
        }
        Err(error) => return Err(error),
    };
    let address: SocketAddr = if ipv6 {
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    };
    match protocol {
        Protocol::Tcp => {
            socket.set_reuse_address(true)?;
            socket.bind(&address.into())?;
            socket.listen(BACKLOG)?;
            Ok(Listener::Tcp(socket))
        }
        Protocol::Udp => {
            socket.bind(&address.into())?;
            enable_packet_info(&socket, ipv6)?;
            // A deep queue, so that a burst waits for the next batch instead of being
            // dropped by the kernel (above net.core.rmem_max only as root; else the most
            // the kernel allows).
            if force_receive_buffer(&socket, UDP_RECEIVE_BUFFER).is_err() {
                let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
            }
            Ok(Listener::Udp(Arc::new(socket.into())))
        }
    }
}

/// `peer` is the address `accept` returned: a scanner that resets the connection right
/// after the handshake (`nmap -sT`) leaves a socket whose `getpeername` fails, but the
/// handshake was complete and the contact counts.
fn tcp_contact(stream: Socket, peer: &socket2::SockAddr) -> Option<Contact> {
    let peer = peer.as_socket()?;
    let local = stream.local_addr().ok()?.as_socket()?;
    // A write that would block (it never should: a fresh socket) is dropped, not waited on.
    stream.set_nonblocking(true).ok()?;
    Some(Contact {
        probe: Probe {
            at: now(),
            source: peer.ip().to_canonical(),
            destination: local.ip().to_canonical(),
            protocol: Protocol::Tcp,
            source_port: peer.port(),
            destination_port: local.port(),
            kind: ScanKind::Connect,
            ip_options: false,
        },
        reply: Reply::Tcp(stream.into()),
    })
}

fn udp_contact(
    socket: &Arc<UdpSocket>,
    port: u16,
    datagram: crate::capture::Datagram,
    at: crate::probe::Timestamp,
) -> Option<Contact> {
    let peer = datagram.source?;
    let destination = datagram
        .destination
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ip| ip.to_canonical());
    Some(Contact {
        probe: Probe {
            at,
            source: peer.ip().to_canonical(),
            destination,
            protocol: Protocol::Udp,
            source_port: peer.port(),
            destination_port: port,
            kind: ScanKind::Udp,
            ip_options: false,
        },
        reply: Reply::Udp {
            socket: Arc::clone(socket),
            peer,
        },
    })
}

enum Reply {
    Tcp(TcpStream),
    Udp {
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
    },
}

/// One accepted connection or received datagram on a monitored port.
///
/// Dropping it closes a TCP connection without a word; [`Contact::send_banner`] answers
/// first.
pub struct Contact {
    probe: Probe,
    reply: Reply,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contact")
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Contact {
    /// The probe: kind [`ScanKind::Connect`] (TCP) or [`ScanKind::Udp`], with the peer as
    /// source and this host's address and port as destination (IPv4-mapped addresses given as
    /// IPv4). The time is the system clock when the connection was accepted.
    pub fn probe(&self) -> Probe {
        self.probe
    }

    /// Sends `banner` (`PORT_BANNER`): on TCP, written to the connection, which is then
    /// closed; on UDP, a datagram back to the sender.
    ///
    /// # Errors
    ///
    /// The operating system's error when the write or send fails (the peer may be gone).
    pub fn send_banner(self, banner: &[u8]) -> io::Result<()> {
        match self.reply {
            Reply::Tcp(mut stream) => {
                stream.write_all(banner)?;
                stream.flush()
            }
            Reply::Udp { socket, peer } => socket.send_to(banner, peer).map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, UdpSocket};

    /// A free port on both loopbacks (TCP and UDP), found by binding port 0.
    fn free_port() -> u16 {
        loop {
            let tcp = TcpListener::bind("[::]:0").unwrap();
            let port = tcp.local_addr().unwrap().port();
            if UdpSocket::bind(("::", port)).is_ok() {
                return port;
            }
        }
    }

    fn wait_for(listener: &mut ConnectListener, count: usize) -> Vec<Contact> {
        let mut contacts = Vec::new();
        for _ in 0..50 {
            listener
                .wait(Duration::from_millis(100), &mut contacts)
                .unwrap();
            if contacts.len() >= count {
                break;
            }
        }
        contacts
    }

    #[test]
    fn tcp_connects_on_both_loopbacks_become_connect_probes() {
        let port = free_port();
        let tcp: PortSet = [port].into_iter().collect();
        let (mut listener, failures) = ConnectListener::bind(&tcp, &PortSet::new());
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(
            listener.ports(Protocol::Tcp).iter().collect::<Vec<_>>(),
            [port]
        );

        let v4 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let v6 = TcpStream::connect((Ipv6Addr::LOCALHOST, port)).unwrap();
        let clients = [v4.local_addr().unwrap(), v6.local_addr().unwrap()];
        let contacts = wait_for(&mut listener, 2);
        assert_eq!(contacts.len(), 2);
        for contact in &contacts {
            let probe = contact.probe();
            assert_eq!(probe.kind, ScanKind::Connect);
            assert_eq!(probe.protocol, Protocol::Tcp);
            assert_eq!(probe.destination_port, port);
            assert_eq!(probe.destination, probe.source, "loopback to loopback");
            let from = SocketAddr::new(probe.source, probe.source_port);
            assert!(clients.contains(&from), "{from} not one of {clients:?}");
        }
        // IPv4 arrives as IPv4, not as ::ffff:127.0.0.1.
        let sources: Vec<IpAddr> = contacts.iter().map(|c| c.probe().source).collect();
        assert!(sources.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(sources.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)));

        // The banner goes to one client, then the connection closes; the other is closed
        // without a word.
        let mut contacts = contacts.into_iter();
        let first = contacts.next().unwrap();
        let first_is_v4 = first.probe().source.is_ipv4();
        first.send_banner(b"** go away **\n").unwrap();
        drop(contacts);
        let (mut banner_client, mut silent_client) = if first_is_v4 { (v4, v6) } else { (v6, v4) };
        let mut got = String::new();
        banner_client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "** go away **\n");
        let mut nothing = Vec::new();
        silent_client.read_to_end(&mut nothing).unwrap();
        assert!(nothing.is_empty());
        assert_eq!(listener.accept_failures(), 0);
    }

    #[test]
    fn a_burst_of_datagrams_is_read_in_batches_and_none_is_lost() {
        let port = free_port();
        let udp: PortSet = [port].into_iter().collect();
        let (mut listener, failures) = ConnectListener::bind(&PortSet::new(), &udp);
        assert!(failures.is_empty(), "{failures:?}");
        let clients: Vec<UdpSocket> = (0..100)
            .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        for client in &clients {
            client
                .send_to(&[0x55; 300], (Ipv4Addr::LOCALHOST, port))
                .unwrap();
        }
        // One wait takes at most PER_SOCKET_PER_WAIT (two batches), the next the rest.
        let mut contacts = Vec::new();
        let first = listener
            .wait(Duration::from_secs(5), &mut contacts)
            .unwrap();
        assert_eq!(first, PER_SOCKET_PER_WAIT);
        let contacts = {
            let mut all = contacts;
            all.extend(wait_for(&mut listener, 100 - first));
            all
        };
        let mut ports: Vec<u16> = contacts.iter().map(|c| c.probe().source_port).collect();
        ports.sort_unstable();
        let mut expected: Vec<u16> = clients
            .iter()
            .map(|c| c.local_addr().unwrap().port())
            .collect();
        expected.sort_unstable();
        assert_eq!(
            ports, expected,
            "every datagram became one probe, with its sender"
        );
    }

    #[test]
    fn udp_datagrams_become_udp_probes_with_their_destination() {
        let port = free_port();
        let udp: PortSet = [port].into_iter().collect();
        let (mut listener, failures) = ConnectListener::bind(&PortSet::new(), &udp);
        assert!(failures.is_empty(), "{failures:?}");
        let client4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
        client4
            .send_to(b"probe", (Ipv4Addr::LOCALHOST, port))
            .unwrap();
        client6
            .send_to(b"probe", (Ipv6Addr::LOCALHOST, port))
            .unwrap();
        let contacts = wait_for(&mut listener, 2);
        assert_eq!(contacts.len(), 2);
        for contact in contacts {
            let probe = contact.probe();
            assert_eq!(probe.kind, ScanKind::Udp);
            assert_eq!(probe.protocol, Protocol::Udp);
            assert_eq!(probe.destination_port, port);
            // The destination comes from IP(V6)_PKTINFO, not the wildcard bind address.
            assert_eq!(probe.destination, probe.source);
            let client = if probe.source.is_ipv4() {
                &client4
            } else {
                &client6
            };
            assert_eq!(probe.source_port, client.local_addr().unwrap().port());
            contact.send_banner(b"hello").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from.port(), port);
        }
    }

    #[test]
    fn ports_in_use_are_reported_and_skipped() {
        let taken = TcpListener::bind("[::]:0").unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let taken_udp = UdpSocket::bind("[::]:0").unwrap();
        let taken_udp_port = taken_udp.local_addr().unwrap().port();
        let free = free_port();
        let tcp: PortSet = [taken_port, free].into_iter().collect();
        let udp: PortSet = [taken_udp_port].into_iter().collect();
        let (listener, failures) = ConnectListener::bind(&tcp, &udp);
        assert_eq!(failures.len(), 2, "{failures:?}");
        let described: Vec<(Protocol, u16, Option<io::ErrorKind>)> = failures
            .iter()
            .map(|f| (f.protocol, f.port, Some(f.error.kind())))
            .collect();
        assert!(described.contains(&(Protocol::Tcp, taken_port, Some(io::ErrorKind::AddrInUse))));
        assert!(described.contains(&(
            Protocol::Udp,
            taken_udp_port,
            Some(io::ErrorKind::AddrInUse)
        )));
        assert!(failures[0].to_string().contains("Address already in use"));
        assert_eq!(
            listener.ports(Protocol::Tcp).iter().collect::<Vec<_>>(),
            [free]
        );
        assert!(listener.ports(Protocol::Udp).is_empty());
    }

    #[test]
    fn wait_times_out_quietly() {
        let port = free_port();
        let (mut listener, _) =
            ConnectListener::bind(&[port].into_iter().collect(), &PortSet::new());
        let mut contacts = Vec::new();
        assert_eq!(
            listener
                .wait(Duration::from_millis(20), &mut contacts)
                .unwrap(),
            0
        );
        assert!(contacts.is_empty());
    }
}
