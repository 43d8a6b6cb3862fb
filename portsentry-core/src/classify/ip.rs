//! The IP layer: addresses, fragment position and the transport bytes, via etherparse's lax
//! slicing (captures cut at their snap length still yield the headers they hold).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::ipv6_exts::HeaderSliceError;
use etherparse::{IpNumber, LaxIpSlice};

use super::Skip;
use super::link::{IpVersion, NetworkLayer, read_u16};
use crate::probe::Protocol;

/// Where an IP packet sits in a fragmented datagram. Later fragments never get this far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fragment {
    /// Not fragmented: the whole datagram.
    Whole,
    /// The first fragment (offset 0, more fragments follow).
    First,
}

/// What the transport classifier needs from the IP layer.
#[derive(Debug, Clone, Copy)]
pub(super) struct IpLayer<'a> {
    pub(super) source: IpAddr,
    pub(super) destination: IpAddr,
    /// True when the IPv4 header carried options.
    pub(super) ip_options: bool,
    pub(super) fragment: Fragment,
    pub(super) protocol: Protocol,
    /// The transport bytes that were captured (may be cut by the snap length).
    pub(super) transport: &'a [u8],
    /// How many transport bytes the IP header says this packet carried on the wire.
    pub(super) declared_len: usize,
}

const IPV6_HEADER_LEN: usize = 40;

/// Parses the IP header(s) of `net` down to the transport protocol.
pub(super) fn ip_layer(net: NetworkLayer<'_>) -> Result<IpLayer<'_>, Skip> {
    let packet = net.packet;
    let first = *packet.first().ok_or(Skip::Truncated)?;
    let nibble_ok = match net.version {
        IpVersion::V4 => first >> 4 == 4,
        IpVersion::V6 => first >> 4 == 6,
        IpVersion::FromNibble => true,
    };
    if !nibble_ok {
        return Err(Skip::Malformed);
    }
    let (slice, ext_error) = LaxIpSlice::from_slice(packet).map_err(|error| match error {
        LaxHeaderSliceError::Len(_) => Skip::Truncated,
        LaxHeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let payload = slice.payload();
    let (source, destination, ip_options, fragment, declared_total) = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            if header.fragments_offset().value() != 0 {
                return Err(Skip::LaterFragment);
            }
            let fragment = if header.more_fragments() {
                Fragment::First
            } else {
                Fragment::Whole
            };
            (
                IpAddr::V4(Ipv4Addr::from(header.source())),
                IpAddr::V4(Ipv4Addr::from(header.destination())),
                header.ihl() > 5,
                fragment,
                usize::from(header.total_len()),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let header = v6.header();
            let extensions = v6.extensions();
            let fragment = ipv6_fragment(extensions.first_header(), extensions.slice())?;
            (
                IpAddr::V6(Ipv6Addr::from(header.source())),
                IpAddr::V6(Ipv6Addr::from(header.destination())),
                false,
                fragment,
                IPV6_HEADER_LEN + usize::from(header.payload_length()),
            )
        }
    };
    match ext_error {
        None => {}
        Some((HeaderSliceError::Len(_), _)) => return Err(Skip::Truncated),
        Some((HeaderSliceError::Content(_), _)) => return Err(Skip::Malformed),
    }
    let protocol = match payload.ip_number {
        IpNumber::TCP => Protocol::Tcp,
        IpNumber::UDP => Protocol::Udp,
        _ => return Err(Skip::NotTcpOrUdp),
    };
    // When the capture was cut, the header tells how much more was on the wire.
    let missing = if payload.incomplete {
        declared_total.saturating_sub(packet.len())
    } else {
        0
    };
    Ok(IpLayer {
        source,
        destination,
        ip_options,
        fragment,
        protocol,
        transport: payload.payload,
        declared_len: payload.payload.len().saturating_add(missing),
    })
}

/// Finds the fragment header among the IPv6 extension headers that etherparse validated
/// (`bytes`, starting with a header of type `first`).
///
/// Walks the bytes itself, bounds-checked: etherparse 0.21's extension iterator reads past the
/// validated bytes when the lax parse stopped on an error, so it must not be used here.
fn ipv6_fragment(first: Option<IpNumber>, bytes: &[u8]) -> Result<Fragment, Skip> {
    let Some(mut next) = first else {
        return Ok(Fragment::Whole);
    };
    let mut rest = bytes;
    let mut fragment = Fragment::Whole;
    while let [next_header, length, ..] = *rest {
        let header_len = match next {
            IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS => (usize::from(length) + 1) * 8,
            IpNumber::AUTHENTICATION_HEADER => (usize::from(length) + 2) * 4,
            IpNumber::IPV6_FRAGMENTATION_HEADER => {
                let word = read_u16(rest, 2).ok_or(Skip::Truncated)?;
                if word >> 3 != 0 {
                    return Err(Skip::LaterFragment);
                }
                if word & 1 != 0 {
                    fragment = Fragment::First;
                }
                8
            }
            _ => break,
        };
        next = IpNumber(next_header);
        rest = rest.get(header_len..).unwrap_or_default();
    }
    Ok(fragment)
}
