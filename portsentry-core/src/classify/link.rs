//! Link layers: which one a frame starts with, and where its IP packet begins.

use std::fmt;

use super::Skip;

/// The link-layer framing of a captured frame: what comes before the IP header.
///
/// # Examples
///
/// ```
/// use portsentry_core::classify::LinkType;
/// assert_eq!(LinkType::from_pcap_linktype(1), Some(LinkType::Ethernet));
/// assert_eq!(LinkType::from_pcap_linktype(276), Some(LinkType::LinuxSll2));
/// assert_eq!(LinkType::from_pcap_linktype(9), None); // PPP: not supported
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkType {
    /// Ethernet II, with any number of 802.1Q / 802.1ad (QinQ) VLAN tags.
    Ethernet,
    /// No link header: the frame is an IPv4 or IPv6 packet (version from the first nibble).
    RawIp,
    /// Linux cooked capture v1 (16-byte header, `tcpdump -i any` before libpcap 1.10).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    Null,
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    Loop,
    /// What a Linux `AF_PACKET` / `SOCK_DGRAM` socket delivers: the link header already
    /// removed, the frame starts at the IP header (version from the first nibble).
    CookedL3,
}

/// `LINKTYPE_*` numbers of the pcap and pcapng formats (tcpdump.org link-layer registry).
mod linktype {
    pub(super) const NULL: u32 = 0;
    pub(super) const ETHERNET: u32 = 1;
    pub(super) const RAW: u32 = 101;
    pub(super) const LOOP: u32 = 108;
    pub(super) const LINUX_SLL: u32 = 113;
    pub(super) const IPV4: u32 = 228;
    pub(super) const IPV6: u32 = 229;
    pub(super) const LINUX_SLL2: u32 = 276;
}

impl LinkType {
    /// Every link type, for tests and fuzzers that try them all.
    pub const ALL: [Self; 7] = [
        Self::Ethernet,
        Self::RawIp,
        Self::LinuxSll,
        Self::LinuxSll2,
        Self::Null,
        Self::Loop,
        Self::CookedL3,
    ];

    /// The link type for a pcap/pcapng `LINKTYPE_*` number, or `None` when unsupported.
    ///
    /// Supported: `NULL` (0), `ETHERNET` (1), `RAW` (101), `LOOP` (108), `LINUX_SLL` (113),
    /// `IPV4` (228), `IPV6` (229) and `LINUX_SLL2` (276). `IPV4` and `IPV6` map to
    /// [`LinkType::RawIp`].
    pub const fn from_pcap_linktype(linktype: u32) -> Option<Self> {
        match linktype {
            linktype::NULL => Some(Self::Null),
            linktype::ETHERNET => Some(Self::Ethernet),
            linktype::RAW | linktype::IPV4 | linktype::IPV6 => Some(Self::RawIp),
            linktype::LOOP => Some(Self::Loop),
            linktype::LINUX_SLL => Some(Self::LinuxSll),
            linktype::LINUX_SLL2 => Some(Self::LinuxSll2),
            _ => None,
        }
    }

    /// The `LINKTYPE_*` number to write this link type into a pcap file with.
    /// [`LinkType::CookedL3`] frames are written as `RAW` (101): the bytes are the same.
    pub const fn pcap_linktype(self) -> u32 {
        match self {
            Self::Ethernet => linktype::ETHERNET,
            Self::RawIp | Self::CookedL3 => linktype::RAW,
            Self::LinuxSll => linktype::LINUX_SLL,
            Self::LinuxSll2 => linktype::LINUX_SLL2,
            Self::Null => linktype::NULL,
            Self::Loop => linktype::LOOP,
        }
    }

    /// A short stable name: `ethernet`, `raw_ip`, `linux_sll`, `linux_sll2`, `null`, `loop`,
    /// `cooked_l3`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ethernet => "ethernet",
            Self::RawIp => "raw_ip",
            Self::LinuxSll => "linux_sll",
            Self::LinuxSll2 => "linux_sll2",
            Self::Null => "null",
            Self::Loop => "loop",
            Self::CookedL3 => "cooked_l3",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which IP version the link layer announced for the packet it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IpVersion {
    /// Announced IPv4 (EtherType 0x0800, address family `AF_INET`).
    V4,
    /// Announced IPv6 (EtherType 0x86DD, one of the `AF_INET6` values).
    V6,
    /// Nothing announced: the version nibble decides (raw IP, cooked L3).
    FromNibble,
}

/// The IP packet inside a frame, once the link header is removed.
#[derive(Debug, Clone, Copy)]
pub(super) struct NetworkLayer<'a> {
    /// The version the link layer announced.
    pub(super) version: IpVersion,
    /// The bytes from the first byte of the IP header to the end of the frame.
    pub(super) packet: &'a [u8],
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD1: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const SLL_HEADER_LEN: usize = 16;
const SLL2_HEADER_LEN: usize = 20;
const LOOPBACK_HEADER_LEN: usize = 4;
/// Linux `PACKET_OUTGOING`: the frame was sent by the capturing host.
const PACKET_OUTGOING: u16 = 4;

/// `AF_INET` on every system.
const AF_INET: u32 = 2;
/// `AF_INET6` on Linux, NetBSD/OpenBSD, FreeBSD/DragonFly and macOS.
const AF_INET6_VALUES: [u32; 4] = [10, 24, 28, 30];

/// Removes the link header of `frame` and returns the IP packet it carries; a frame the
/// capturing host sent (cooked captures say so) is [`Skip::Outgoing`].
pub(super) fn network_layer(link: LinkType, frame: &[u8]) -> Result<NetworkLayer<'_>, Skip> {
    network_layer_of(link, frame, Direction::Received)
}

/// As [`network_layer`], for a frame the capturing host sent: the packet type of a cooked
/// capture is not looked at.
pub(super) fn network_layer_sent(link: LinkType, frame: &[u8]) -> Result<NetworkLayer<'_>, Skip> {
    network_layer_of(link, frame, Direction::Sent)
}

/// Which frames [`network_layer_of`] is asked about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Received,
    Sent,
}

fn network_layer_of(
    link: LinkType,
    frame: &[u8],
    direction: Direction,
) -> Result<NetworkLayer<'_>, Skip> {
    let outgoing =
        |packet_type: u16| packet_type == PACKET_OUTGOING && direction == Direction::Received;
    match link {
        LinkType::Ethernet => {
            let ethertype = read_u16(frame, 12).ok_or(Skip::Truncated)?;
            from_ethertype(ethertype, rest(frame, ETHERNET_HEADER_LEN))
        }
        LinkType::RawIp | LinkType::CookedL3 => Ok(NetworkLayer {
            version: IpVersion::FromNibble,
            packet: frame,
        }),
        LinkType::LinuxSll => {
            let packet_type = read_u16(frame, 0).ok_or(Skip::Truncated)?;
            let protocol = read_u16(frame, 14).ok_or(Skip::Truncated)?;
            if outgoing(packet_type) {
                return Err(Skip::Outgoing);
            }
            from_ethertype(protocol, rest(frame, SLL_HEADER_LEN))
        }
        LinkType::LinuxSll2 => {
            if frame.len() < SLL2_HEADER_LEN {
                return Err(Skip::Truncated);
            }
            let protocol = read_u16(frame, 0).ok_or(Skip::Truncated)?;
            let packet_type = frame.get(10).copied().ok_or(Skip::Truncated)?;
            if outgoing(u16::from(packet_type)) {
                return Err(Skip::Outgoing);
            }
            from_ethertype(protocol, rest(frame, SLL2_HEADER_LEN))
        }
        LinkType::Null => {
            let bytes = read_array::<4>(frame, 0).ok_or(Skip::Truncated)?;
            // Written in the capturing host's byte order: the right reading is the small one.
            let little = u32::from_le_bytes(bytes);
            let family = if little > 0xFFFF {
                u32::from_be_bytes(bytes)
            } else {
                little
            };
            from_address_family(family, rest(frame, LOOPBACK_HEADER_LEN))
        }
        LinkType::Loop => {
            let bytes = read_array::<4>(frame, 0).ok_or(Skip::Truncated)?;
            from_address_family(u32::from_be_bytes(bytes), rest(frame, LOOPBACK_HEADER_LEN))
        }
    }
}

/// Follows an EtherType through any VLAN tags to the IP packet.
fn from_ethertype(mut ethertype: u16, mut payload: &[u8]) -> Result<NetworkLayer<'_>, Skip> {
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => {
                return Ok(NetworkLayer {
                    version: IpVersion::V4,
                    packet: payload,
                });
            }
            ETHERTYPE_IPV6 => {
                return Ok(NetworkLayer {
                    version: IpVersion::V6,
                    packet: payload,
                });
            }
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD1 | ETHERTYPE_QINQ_OLD2 => {
                // A tag: 2 bytes of priority/VLAN id, then the inner EtherType. Each turn
                // consumes 4 bytes, so the loop ends.
                ethertype = read_u16(payload, 2).ok_or(Skip::Truncated)?;
                payload = rest(payload, VLAN_TAG_LEN);
            }
            _ => return Err(Skip::NotIp),
        }
    }
}

fn from_address_family(family: u32, packet: &[u8]) -> Result<NetworkLayer<'_>, Skip> {
    let version = if family == AF_INET {
        IpVersion::V4
    } else if AF_INET6_VALUES.contains(&family) {
        IpVersion::V6
    } else {
        return Err(Skip::NotIp);
    };
    Ok(NetworkLayer { version, packet })
}

/// The big-endian `u16` at `offset`, if the slice holds it.
pub(super) fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    read_array::<2>(bytes, offset).map(u16::from_be_bytes)
}

/// The `N` bytes at `offset`, if the slice holds them.
pub(super) fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// The bytes after the first `len`, or an empty slice.
fn rest(bytes: &[u8], len: usize) -> &[u8] {
    bytes.get(len..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_linktypes_round_trip() {
        for link in LinkType::ALL {
            let number = link.pcap_linktype();
            let back = LinkType::from_pcap_linktype(number);
            let expected = if link == LinkType::CookedL3 {
                LinkType::RawIp
            } else {
                link
            };
            assert_eq!(back, Some(expected), "{link}");
        }
        assert_eq!(LinkType::from_pcap_linktype(228), Some(LinkType::RawIp));
        assert_eq!(LinkType::from_pcap_linktype(229), Some(LinkType::RawIp));
        assert_eq!(LinkType::from_pcap_linktype(u32::MAX), None);
    }

    #[test]
    fn ethernet_header_is_removed_through_vlan_tags() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x88, 0xA8, 0x00, 0x05, 0x81, 0x00, 0x00, 0x07, 0x86, 0xDD]);
        frame.extend_from_slice(&[0x60, 1, 2]);
        let net = network_layer(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(net.version, IpVersion::V6);
        assert_eq!(net.packet, &[0x60, 1, 2]);
    }

    #[test]
    fn vlan_tag_cut_short_is_truncated() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08]);
        assert_eq!(
            network_layer(LinkType::Ethernet, &frame).unwrap_err(),
            Skip::Truncated
        );
    }

    #[test]
    fn null_reads_either_byte_order_and_loop_big_endian() {
        let le = [2, 0, 0, 0, 0x45];
        let be = [0, 0, 0, 30, 0x60];
        assert_eq!(
            network_layer(LinkType::Null, &le).unwrap().version,
            IpVersion::V4
        );
        assert_eq!(
            network_layer(LinkType::Null, &be).unwrap().version,
            IpVersion::V6
        );
        assert_eq!(
            network_layer(LinkType::Loop, &be).unwrap().version,
            IpVersion::V6
        );
        assert_eq!(network_layer(LinkType::Loop, &le).unwrap_err(), Skip::NotIp);
        assert_eq!(
            network_layer(LinkType::Null, &[2, 0]).unwrap_err(),
            Skip::Truncated
        );
    }

    #[test]
    fn arp_is_not_ip() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(
            network_layer(LinkType::Ethernet, &frame).unwrap_err(),
            Skip::NotIp
        );
    }

    #[test]
    fn read_helpers_never_overflow() {
        assert_eq!(read_u16(&[1, 2, 3], usize::MAX), None);
        assert_eq!(read_u16(&[1, 2, 3], 1), Some(0x0203));
        assert_eq!(read_array::<4>(&[1, 2, 3], 0), None);
    }
}
