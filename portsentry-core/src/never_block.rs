//! [`NeverBlock`]: the addresses the detector never counts or blocks, with the reason.
//!
//! Loopback is always protected, and so are the addresses no real host sends from
//! (unspecified, broadcast, multicast, reserved: [`is_reserved`]), which only a forged packet
//! carries. The caller adds this host's own addresses, its default
//! gateways and resolvers (protected while [`NeverBlock::protect_infrastructure`] is on, the
//! `NEVER_BLOCK_GATEWAYS` default), and the ignore file's networks (a list of
//! [`IpNet`], as the ignore-file parser produces). These are the addresses a spoofer would forge
//! to make the host cut itself off.
//!
//! Matching masks both sides (an entry `192.0.2.7/24` covers all of `192.0.2.0/24`), treats
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) and IPv4-mapped entries as the IPv4 address
//! they carry (a mapped address is also covered by an IPv6 entry such as `::/0`, as in
//! [`IgnoreList`](crate::ignore::IgnoreList)), and costs one binary search per distinct prefix
//! length in the list, without allocation.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::event::IgnoreReason;
use crate::net_table::{self, NetTable};

/// True for a source address that no real host uses, so that only a forged packet carries
/// it: `0.0.0.0/8` (unspecified, "this network"), `224.0.0.0/4` (multicast), `240.0.0.0/4`
/// (reserved, with the broadcast `255.255.255.255`), `::` and `ff00::/8` (multicast).
/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
///
/// # Examples
///
/// ```
/// use portsentry_core::never_block::is_reserved;
/// for a in ["0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "240.0.0.9", "::", "ff02::1", "::ffff:224.0.0.1"] {
///     assert!(is_reserved(a.parse().unwrap()), "{a}");
/// }
/// for a in ["203.0.113.1", "2001:db8::1", "223.255.255.255"] {
///     assert!(!is_reserved(a.parse().unwrap()), "{a}");
/// }
/// ```
pub fn is_reserved(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let first = v4.octets()[0];
            first == 0 || first >= 224
        }
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    }
}

/// The never-block list: loopback, own addresses, gateways, resolvers and the ignore file.
///
/// # Examples
///
/// ```
/// use std::net::IpAddr;
/// use portsentry_core::{IgnoreReason, NeverBlock};
///
/// let gw: IpAddr = "192.0.2.1".parse().unwrap();
/// let nb = NeverBlock::new()
///     .own_addresses(["192.0.2.10".parse::<IpAddr>().unwrap().into()])
///     .gateways([gw.into()])
///     .ignore_list(["198.51.100.0/24".parse().unwrap()]);
/// assert_eq!(nb.check("127.0.0.2".parse().unwrap()), Some(IgnoreReason::Loopback));
/// assert_eq!(nb.check(gw), Some(IgnoreReason::Gateway));
/// assert_eq!(nb.check("::ffff:198.51.100.9".parse().unwrap()), Some(IgnoreReason::IgnoreFile));
/// assert_eq!(nb.check("203.0.113.1".parse().unwrap()), None);
/// assert_eq!(nb.clone().protect_infrastructure(false).check(gw), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeverBlock {
    /// The networks given, by reason rank (own, gateway, resolver, ignore file).
    lists: [Vec<IpNet>; 4],
    protect_infrastructure: bool,
    /// All networks that are protected now, ranked by reason, for one lookup per prefix
    /// length.
    index: NetTable<u8>,
}

/// Reasons by rank: the order in which they are reported when several apply.
const REASONS: [IgnoreReason; 4] = [
    IgnoreReason::OwnAddress,
    IgnoreReason::Gateway,
    IgnoreReason::Resolver,
    IgnoreReason::IgnoreFile,
];

impl NeverBlock {
    /// Loopback only, with infrastructure protection on.
    pub fn new() -> Self {
        Self {
            lists: Default::default(),
            protect_infrastructure: true,
            index: NetTable::new(),
        }
    }

    fn add(mut self, rank: usize, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.lists[rank].extend(nets.into_iter().map(net_table::canonical));
        self.reindex();
        self
    }

    fn reindex(&mut self) {
        let mut index = NetTable::new();
        for (rank, nets) in self.lists.iter().enumerate() {
            let infrastructure =
                REASONS[rank] == IgnoreReason::Gateway || REASONS[rank] == IgnoreReason::Resolver;
            if infrastructure && !self.protect_infrastructure {
                continue;
            }
            for net in nets {
                index.insert(*net, rank as u8);
            }
        }
        self.index = index;
    }

    /// Adds this host's own addresses (always protected). A bare [`IpAddr`] converts into a
    /// host network with `.into()`.
    pub fn own_addresses(self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.add(0, nets)
    }

    /// Adds the default gateways (protected while infrastructure protection is on).
    pub fn gateways(self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.add(1, nets)
    }

    /// Adds the DNS resolvers (protected while infrastructure protection is on).
    pub fn resolvers(self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.add(2, nets)
    }

    /// Adds the ignore file's networks (always protected).
    pub fn ignore_list(self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.add(3, nets)
    }

    /// Turns the protection of gateways and resolvers on or off (`NEVER_BLOCK_GATEWAYS`).
    pub fn protect_infrastructure(mut self, on: bool) -> Self {
        self.protect_infrastructure = on;
        self.reindex();
        self
    }

    /// True when gateways and resolvers are protected.
    pub fn protects_infrastructure(&self) -> bool {
        self.protect_infrastructure
    }

    /// The number of networks held (loopback not included).
    pub fn len(&self) -> usize {
        self.lists.iter().map(Vec::len).sum()
    }

    /// True when only loopback is protected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why `addr` must never be counted or blocked, or `None` when it may be.
    ///
    /// Reasons are checked in the order loopback, reserved, own address, gateway, resolver,
    /// ignore file. Allocates nothing.
    // Kept out of `Detector::observe`: inlined there, it made the spoofed-flood path of the
    // `observe` bench about 5% slower although the lookup itself is faster.
    #[inline(never)]
    pub fn check(&self, addr: IpAddr) -> Option<IgnoreReason> {
        let canonical = addr.to_canonical();
        if canonical.is_loopback() {
            return Some(IgnoreReason::Loopback);
        }
        if is_reserved(canonical) {
            return Some(IgnoreReason::Reserved);
        }
        self.index.best(addr).map(|rank| REASONS[usize::from(rank)])
    }
}

impl Default for NeverBlock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_is_always_protected_in_both_families_and_mapped() {
        let nb = NeverBlock::new().protect_infrastructure(false);
        for a in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(nb.check(ip(a)), Some(IgnoreReason::Loopback), "{a}");
        }
        assert_eq!(nb.check(ip("203.0.113.1")), None);
        assert_eq!(nb.check(ip("2001:db8::1")), None);
    }

    #[test]
    fn each_reason_is_reported() {
        let nb = NeverBlock::new()
            .own_addresses([ip("203.0.113.10").into(), ip("2001:db8::10").into()])
            .gateways([ip("203.0.113.1").into(), ip("fe80::1").into()])
            .resolvers([ip("198.51.100.53").into(), ip("2001:db8:53::53").into()])
            .ignore_list([net("198.51.100.0/24"), net("2001:db8:aa::/48")]);
        assert_eq!(nb.check(ip("203.0.113.10")), Some(IgnoreReason::OwnAddress));
        assert_eq!(nb.check(ip("2001:db8::10")), Some(IgnoreReason::OwnAddress));
        assert_eq!(nb.check(ip("203.0.113.1")), Some(IgnoreReason::Gateway));
        assert_eq!(nb.check(ip("fe80::1")), Some(IgnoreReason::Gateway));
        // The resolver is inside the ignored /24 too: the more specific reason wins.
        assert_eq!(nb.check(ip("198.51.100.53")), Some(IgnoreReason::Resolver));
        assert_eq!(
            nb.check(ip("2001:db8:53::53")),
            Some(IgnoreReason::Resolver)
        );
        assert_eq!(
            nb.check(ip("198.51.100.54")),
            Some(IgnoreReason::IgnoreFile)
        );
        assert_eq!(
            nb.check(ip("2001:db8:aa:ffff::1")),
            Some(IgnoreReason::IgnoreFile)
        );
        assert_eq!(nb.check(ip("2001:db8:ab::1")), None);
        assert_eq!(nb.check(ip("203.0.113.11")), None);

        let off = nb.protect_infrastructure(false);
        assert_eq!(off.check(ip("203.0.113.1")), None);
        assert_eq!(off.check(ip("2001:db8:53::53")), None);
        // Inside the ignore file, so still protected, now for that reason.
        assert_eq!(
            off.check(ip("198.51.100.53")),
            Some(IgnoreReason::IgnoreFile)
        );
        assert_eq!(
            off.check(ip("203.0.113.10")),
            Some(IgnoreReason::OwnAddress)
        );
    }

    #[test]
    fn host_bits_in_entries_are_masked_and_mapped_entries_match_ipv4() {
        let nb =
            NeverBlock::new().ignore_list([net("192.0.2.77/24"), net("::ffff:198.51.100.0/120")]);
        assert_eq!(nb.check(ip("192.0.2.1")), Some(IgnoreReason::IgnoreFile));
        assert_eq!(
            nb.check(ip("::ffff:192.0.2.200")),
            Some(IgnoreReason::IgnoreFile)
        );
        assert_eq!(
            nb.check(ip("198.51.100.99")),
            Some(IgnoreReason::IgnoreFile)
        );
        assert_eq!(nb.check(ip("192.0.3.1")), None);
        assert_eq!(nb.len(), 2);
    }

    #[test]
    fn mapped_sources_match_like_the_ignore_list() {
        let ignore = crate::ignore::IgnoreList::parse("::/0\n203.0.113.0/24\n", "i").unwrap();
        let nb = NeverBlock::new().ignore_list(ignore.networks());
        for a in ["::ffff:198.51.100.1", "::ffff:203.0.113.1", "2001:db8::1"] {
            assert!(ignore.contains(ip(a)), "{a}");
            assert_eq!(nb.check(ip(a)), Some(IgnoreReason::IgnoreFile), "{a}");
        }
        assert_eq!(nb.check(ip("198.51.100.1")), None);
    }

    #[test]
    fn reserved_sources_are_protected_even_under_an_empty_list() {
        let nb = NeverBlock::new().protect_infrastructure(false);
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "::",
            "ff02::1",
            "::ffff:255.255.255.255",
        ] {
            assert_eq!(nb.check(ip(a)), Some(IgnoreReason::Reserved), "{a}");
        }
        assert_eq!(nb.check(ip("223.0.0.1")), None);
        assert_eq!(nb.check(ip("1.0.0.0")), None);
    }

    #[test]
    fn zero_prefix_covers_its_whole_family() {
        let nb = NeverBlock::new().ignore_list([net("0.0.0.0/0")]);
        assert_eq!(nb.check(ip("203.0.113.1")), Some(IgnoreReason::IgnoreFile));
        assert_eq!(nb.check(ip("2001:db8::1")), None);
        let nb = NeverBlock::new().ignore_list([net("::/0")]);
        assert_eq!(nb.check(ip("2001:db8::1")), Some(IgnoreReason::IgnoreFile));
    }
}
