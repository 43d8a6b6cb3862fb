//! Which ports a real service owns: TCP ports with a listening socket and UDP ports with a
//! bound, unconnected socket, IPv4 and IPv6, read from the kernel's socket tables
//! (`/proc/net/{tcp,tcp6,udp,udp6}`, parsed by the `procfs` crate).
//!
//! Stealth and advanced modes leave these ports alone (PortSentry's "service check"), and
//! advanced modes subtract them from the watched range. The daemon re-reads them on a timer
//! and on reload; nothing here runs per packet.
//!
//! A connected UDP socket (a client talking to one peer) does not count: the port still
//! receives nothing from anybody else, so a datagram there is a probe.

use std::io::BufRead;
use std::path::PathBuf;

use procfs::net::{TcpNetEntries, TcpState, UdpNetEntries, UdpState};
use procfs::{FromBufReadSI, FromReadSI, ProcError};

use crate::PortSet;

/// Errors of reading the socket tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListeningError {
    /// A socket table exists but could not be read or parsed.
    #[error("cannot read the socket table {path}: {message}")]
    Table {
        /// The file (`/proc/net/tcp`, ...).
        path: PathBuf,
        /// What went wrong, as the `procfs` crate reports it.
        message: String,
    },
}

/// The ports with a listening TCP socket and with a bound UDP socket.
///
/// # Examples
///
/// ```
/// use portsentry_core::listening::ListeningPorts;
/// let ports = ListeningPorts::read()?;
/// println!("{} TCP and {} UDP ports in use", ports.tcp.len(), ports.udp.len());
/// # Ok::<(), portsentry_core::listening::ListeningError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListeningPorts {
    /// TCP ports with a socket in the LISTEN state (any local address, IPv4 or IPv6).
    pub tcp: PortSet,
    /// UDP ports with a bound, unconnected socket (any local address, IPv4 or IPv6).
    pub udp: PortSet,
}

impl ListeningPorts {
    /// Reads the calling thread's network namespace's socket tables. A missing IPv6 table
    /// (a host without IPv6) counts as empty.
    ///
    /// # Errors
    ///
    /// [`ListeningError::Table`] when a table cannot be read or parsed.
    pub fn read() -> Result<Self, ListeningError> {
        let mut ports = Self::default();
        for file in ["tcp", "tcp6"] {
            if let Some(entries) = read_table::<TcpNetEntries>(file)? {
                ports.add_tcp(&entries);
            }
        }
        for file in ["udp", "udp6"] {
            if let Some(entries) = read_table::<UdpNetEntries>(file)? {
                ports.add_udp(&entries);
            }
        }
        Ok(ports)
    }

    /// Adds the listening ports of a TCP table in `/proc/net/tcp` format (IPv4 or IPv6).
    ///
    /// # Errors
    ///
    /// [`ListeningError::Table`] (with `name` as the path) when the text does not parse.
    pub fn add_tcp_table(&mut self, name: &str, text: impl BufRead) -> Result<(), ListeningError> {
        let entries = TcpNetEntries::from_buf_read(text, procfs::current_system_info())
            .map_err(|error| table_error(name.into(), &error))?;
        self.add_tcp(&entries);
        Ok(())
    }

    /// Adds the bound ports of a UDP table in `/proc/net/udp` format (IPv4 or IPv6).
    ///
    /// # Errors
    ///
    /// [`ListeningError::Table`] (with `name` as the path) when the text does not parse.
    pub fn add_udp_table(&mut self, name: &str, text: impl BufRead) -> Result<(), ListeningError> {
        let entries = UdpNetEntries::from_buf_read(text, procfs::current_system_info())
            .map_err(|error| table_error(name.into(), &error))?;
        self.add_udp(&entries);
        Ok(())
    }

    fn add_tcp(&mut self, entries: &TcpNetEntries) {
        for entry in entries.0.iter().filter(|e| e.state == TcpState::Listen) {
            self.tcp.insert(entry.local_address.port());
        }
    }

    fn add_udp(&mut self, entries: &UdpNetEntries) {
        for entry in entries.0.iter().filter(|e| e.state == UdpState::Close) {
            self.udp.insert(entry.local_address.port());
        }
    }
}

fn table_error(path: PathBuf, error: &ProcError) -> ListeningError {
    ListeningError::Table {
        path,
        message: error.to_string(),
    }
}

/// Reads one table of the calling thread's namespace; `None` when the file does not exist.
fn read_table<T: FromReadSI>(file: &str) -> Result<Option<T>, ListeningError> {
    let path = crate::host::proc_net(file);
    match T::from_file(&path, procfs::current_system_info()) {
        Ok(table) => Ok(Some(table)),
        Err(ProcError::NotFound(_)) => Ok(None),
        Err(error) => Err(table_error(path, &error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

    const TCP_FIXTURE: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0200A8C0:0016 0100A8C0:D431 01 00000000:00000000 02:0009C2FE 00000000     0        0 1003 4 0000000000000000 20 4 30 10 -1
";

    const UDP6_FIXTURE: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2001 2 0000000000000000 0
  101: 00000000000000000000000001000000:E2B6 00000000000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 2002 2 0000000000000000 0
";

    #[test]
    fn tables_from_fixture_text() {
        let mut ports = ListeningPorts::default();
        ports.add_tcp_table("tcp", TCP_FIXTURE.as_bytes()).unwrap();
        ports
            .add_udp_table("udp6", UDP6_FIXTURE.as_bytes())
            .unwrap();
        // 22 and 3306 listen; the established connection from 22 adds nothing new.
        assert_eq!(ports.tcp.iter().collect::<Vec<_>>(), [22, 3306]);
        // 53 is bound; the connected client socket on 58038 does not count.
        assert_eq!(ports.udp.iter().collect::<Vec<_>>(), [53]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut ports = ListeningPorts::default();
        let error = ports
            .add_tcp_table("tcp", "header\n 0: zz:yy\n".as_bytes())
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read the socket table tcp")
        );
    }

    #[test]
    fn real_sockets_appear_and_disappear() {
        let tcp4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let tcp6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).unwrap();
        let udp4 = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let udp6 = UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).unwrap();
        // A connected UDP socket is a client, not a service.
        let client = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        client.connect(udp4.local_addr().unwrap()).unwrap();
        let ports = [&tcp4, &tcp6].map(|s| s.local_addr().unwrap().port());
        let udp_ports = [&udp4, &udp6].map(|s| s.local_addr().unwrap().port());
        let client_port = client.local_addr().unwrap().port();

        let seen = ListeningPorts::read().unwrap();
        for port in ports {
            assert!(seen.tcp.contains(port), "TCP {port} missing");
        }
        for port in udp_ports {
            assert!(seen.udp.contains(port), "UDP {port} missing");
        }
        assert!(!seen.udp.contains(client_port));

        drop((tcp4, tcp6, udp4, udp6));
        let seen = ListeningPorts::read().unwrap();
        for port in ports {
            assert!(!seen.tcp.contains(port), "TCP {port} still listed");
        }
        for port in udp_ports {
            assert!(!seen.udp.contains(port), "UDP {port} still listed");
        }
    }
}
