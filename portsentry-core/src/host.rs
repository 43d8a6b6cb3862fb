//! What this host must never block: its own addresses, its default gateways and its DNS
//! resolvers (the addresses a spoofer would forge to make the host cut itself off).
//!
//! The parsers ([`parse_ipv4_routes`], [`parse_ipv6_routes`], [`parse_resolv_conf`]) are pure
//! functions over the text of `/proc/net/route`, `/proc/net/ipv6_route` and
//! `/etc/resolv.conf`; [`default_gateways`] and [`resolvers`] read those files, and
//! [`own_addresses`] asks the kernel (`getifaddrs`). Lines that do not parse are skipped:
//! the kernel's files have a fixed format, and the resolver reads `resolv.conf` the same
//! lenient way.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Errors of reading the host's network facts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostInfoError {
    /// A file (route table, `resolv.conf`) exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The kernel's list of interface addresses could not be read (`getifaddrs`).
    #[error("cannot list the interface addresses: {0}")]
    Interfaces(#[source] io::Error),
}

/// `RTF_UP`: the route is usable.
const RTF_UP: u32 = 0x0001;
/// `RTF_GATEWAY`: the route goes through a gateway.
const RTF_GATEWAY: u32 = 0x0002;

/// The IPv4 default gateways in the text of `/proc/net/route`.
///
/// A default route has destination and mask 0 and the flags up and gateway. The kernel
/// prints each address as the 32-bit value of its network-order bytes in host byte order,
/// so the bytes are recovered with the host's endianness.
///
/// # Examples
///
/// ```
/// # #[cfg(target_endian = "little")] {
/// use portsentry_core::host::parse_ipv4_routes;
/// let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
///              eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
/// assert_eq!(parse_ipv4_routes(table), vec![std::net::Ipv4Addr::new(192, 168, 0, 1)]);
/// # }
/// ```
pub fn parse_ipv4_routes(text: &str) -> Vec<Ipv4Addr> {
    let mut gateways = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, destination, gateway, flags, _, _, _, mask, ..] = fields[..] else {
            continue;
        };
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(destination), Some(gateway), Some(flags), Some(mask)) =
            (hex(destination), hex(gateway), hex(flags), hex(mask))
        else {
            continue;
        };
        if destination == 0 && mask == 0 && flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY {
            let address = Ipv4Addr::from(gateway.to_ne_bytes());
            if !gateways.contains(&address) {
                gateways.push(address);
            }
        }
    }
    gateways
}

/// The IPv6 default gateways in the text of `/proc/net/ipv6_route`.
///
/// Each line: destination, prefix length, source, prefix length, next hop (addresses as 32
/// hex digits in network order), metric, reference count, use count, flags, device. A
/// default route has prefix length 0, the flags up and gateway, and a non-zero next hop.
///
/// # Examples
///
/// ```
/// use portsentry_core::host::parse_ipv6_routes;
/// let table = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
///              fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
/// assert_eq!(parse_ipv6_routes(table), vec!["fe80::1".parse::<std::net::Ipv6Addr>().unwrap()]);
/// ```
pub fn parse_ipv6_routes(text: &str) -> Vec<Ipv6Addr> {
    let mut gateways = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, prefix, _, _, next_hop, _, _, _, flags, ..] = fields[..] else {
            continue;
        };
        let (Ok(0), Some(next_hop), Ok(flags)) = (
            u8::from_str_radix(prefix, 16),
            parse_hex_ipv6(next_hop),
            u32::from_str_radix(flags, 16),
        ) else {
            continue;
        };
        if flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY
            && !next_hop.is_unspecified()
            && !gateways.contains(&next_hop)
        {
            gateways.push(next_hop);
        }
    }
    gateways
}

/// 32 hex digits in network order to an IPv6 address.
fn parse_hex_ipv6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut octets = [0u8; 16];
    for (i, octet) in octets.iter_mut().enumerate() {
        *octet = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Ipv6Addr::from(octets))
}

/// The `nameserver` addresses in the text of `resolv.conf`, in file order, without
/// duplicates. Comments (`#`, `;`) are skipped, an IPv6 zone (`%eth0`) is dropped, and a line
/// whose address does not parse is skipped (as the C resolver does).
///
/// # Examples
///
/// ```
/// use portsentry_core::host::parse_resolv_conf;
/// let text = "# generated\nsearch example.org\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n";
/// let servers: Vec<String> = parse_resolv_conf(text).iter().map(|a| a.to_string()).collect();
/// assert_eq!(servers, ["192.0.2.53", "fe80::1"]);
/// ```
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(word) = words.next() else { continue };
        let address = word.split('%').next().unwrap_or(word);
        if let Ok(address) = address.parse::<IpAddr>()
            && !servers.contains(&address)
        {
            servers.push(address);
        }
    }
    servers
}

/// Reads a file that may legitimately be absent (no IPv6, no `resolv.conf`): `None` then.
fn read_optional(path: &Path) -> Result<Option<String>, HostInfoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HostInfoError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A `/proc` network file of the calling thread's network namespace: `/proc/thread-self/net`
/// (a thread may have entered another namespace), else `/proc/net`.
pub(crate) fn proc_net(file: &str) -> PathBuf {
    let own = Path::new("/proc/thread-self/net").join(file);
    if own.exists() {
        own
    } else {
        Path::new("/proc/net").join(file)
    }
}

/// This host's default gateways, IPv4 then IPv6, from the kernel's routing tables.
///
/// # Errors
///
/// [`HostInfoError::Read`] when a routing table exists but cannot be read (a missing
/// `ipv6_route`, on a host without IPv6, is not an error).
pub fn default_gateways() -> Result<Vec<IpAddr>, HostInfoError> {
    let mut gateways: Vec<IpAddr> = Vec::new();
    if let Some(text) = read_optional(&proc_net("route"))? {
        gateways.extend(parse_ipv4_routes(&text).into_iter().map(IpAddr::V4));
    }
    if let Some(text) = read_optional(&proc_net("ipv6_route"))? {
        gateways.extend(parse_ipv6_routes(&text).into_iter().map(IpAddr::V6));
    }
    Ok(gateways)
}

/// The resolvers of `/etc/resolv.conf` (none when the file does not exist).
///
/// # Errors
///
/// [`HostInfoError::Read`] when the file exists but cannot be read.
pub fn resolvers() -> Result<Vec<IpAddr>, HostInfoError> {
    resolvers_from(Path::new("/etc/resolv.conf"))
}

/// The resolvers of the `resolv.conf`-format file at `path` (none when it does not exist).
///
/// # Errors
///
/// [`HostInfoError::Read`] when the file exists but cannot be read.
pub fn resolvers_from(path: &Path) -> Result<Vec<IpAddr>, HostInfoError> {
    Ok(read_optional(path)?
        .map(|text| parse_resolv_conf(&text))
        .unwrap_or_default())
}

/// Every address configured on this host's interfaces (IPv4 and IPv6, loopback included),
/// sorted and without duplicates, in the calling thread's network namespace.
///
/// # Errors
///
/// [`HostInfoError::Interfaces`] when the kernel's list cannot be read.
///
/// # Examples
///
/// ```
/// let own = portsentry_core::host::own_addresses()?;
/// # let _ = own;
/// # Ok::<(), portsentry_core::host::HostInfoError>(())
/// ```
#[cfg(all(feature = "capture", target_os = "linux"))]
pub fn own_addresses() -> Result<Vec<IpAddr>, HostInfoError> {
    let mut addresses: Vec<IpAddr> = crate::capture::interface_addresses()
        .map_err(HostInfoError::Interfaces)?
        .into_iter()
        .map(|entry| entry.address)
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    Ok(addresses)
}

/// The interfaces' addresses with the interface names, as `(name, address)` pairs, in the
/// calling thread's network namespace.
///
/// # Errors
///
/// [`HostInfoError::Interfaces`] when the kernel's list cannot be read.
#[cfg(all(feature = "capture", target_os = "linux"))]
pub fn interface_addresses() -> Result<Vec<(String, IpAddr)>, HostInfoError> {
    Ok(crate::capture::interface_addresses()
        .map_err(HostInfoError::Interfaces)?
        .into_iter()
        .map(|entry| (entry.interface, entry.address))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0
eth1\t00000000\t FE01A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth2\t00000000\t0101A8C0\t0002\t0\t0\t300\t00000000\t0\t0\t0
eth0\t00000000\t0100A8C0\t0003\t0\t0\t400\t00000000\t0\t0\t0
garbage line
eth3\tZZ\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn ipv4_default_gateways_from_fixture() {
        // 192.168.0.1 (twice: listed once), 192.168.1.254; the down route (flags 0002),
        // the on-link default (no gateway flag) and the network route are not gateways.
        assert_eq!(
            parse_ipv4_routes(ROUTE),
            vec![
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(192, 168, 1, 254)
            ]
        );
        assert!(parse_ipv4_routes("").is_empty());
        assert!(parse_ipv4_routes("only a header\n\n").is_empty());
    }

    const IPV6_ROUTE: &str = "\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000403 eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe8000000000000000000000000000zz 00000400 00000001 00000000 00000003 eth0
short
";

    #[test]
    fn ipv6_default_gateways_from_fixture() {
        let expected: Vec<Ipv6Addr> =
            vec!["fe80::1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(parse_ipv6_routes(IPV6_ROUTE), expected);
        assert!(parse_ipv6_routes("").is_empty());
    }

    #[test]
    fn resolvers_from_fixture() {
        let text = "\
# Generated by NetworkManager
search example.org
nameserver 192.0.2.53
nameserver\t198.51.100.53 # trailing comment
;nameserver 203.0.113.99
# nameserver 203.0.113.98
nameserver 2001:db8::53
nameserver fe80::1%eth0
nameserver 192.0.2.53
nameserver not-an-address
nameserver
options edns0
";
        let got: Vec<String> = parse_resolv_conf(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            ["192.0.2.53", "198.51.100.53", "2001:db8::53", "fe80::1"]
        );
    }

    #[test]
    fn missing_resolv_conf_means_no_resolvers() {
        let dir = std::env::temp_dir().join(format!("ps-host-{}", std::process::id()));
        assert!(resolvers_from(&dir.join("absent")).unwrap().is_empty());
    }

    #[test]
    #[cfg(all(feature = "capture", target_os = "linux"))]
    fn this_machine_smoke_test() {
        // The real files parse (whatever they hold) and the real interface list has loopback.
        default_gateways().unwrap();
        resolvers().unwrap();
        let own = own_addresses().unwrap();
        let names = interface_addresses().unwrap();
        assert_eq!(own.len(), {
            let mut a: Vec<IpAddr> = names.iter().map(|(_, a)| *a).collect();
            a.sort_unstable();
            a.dedup();
            a.len()
        });
        if names.iter().any(|(name, _)| name == "lo") {
            assert!(own.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{own:?}");
        }
    }
}
