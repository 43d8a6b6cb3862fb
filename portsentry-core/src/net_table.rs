//! [`NetTable`]: a set of IPv4 and IPv6 networks, each with a rank, answering "which of them
//! contain this address, and what is the best (lowest) rank among those?" without allocating.
//!
//! The networks of each family are grouped by prefix length; each group is a sorted vector
//! of network numbers. A lookup masks the address once per prefix length in use and binary
//! searches that group, so its cost grows with the number of distinct prefix lengths, not
//! with the number of networks.
//!
//! This is the one place where IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is handled: a mapped
//! network of /96 or longer is stored as the IPv4 network it means ([`canonical`]), and a
//! mapped address matches the IPv4 networks as the IPv4 address it carries, as well as any
//! IPv6 network that covers it ([`NetTable::best`], [`NetTable::contains`]).
//!
//! Used by [`IgnoreList`](crate::ignore::IgnoreList) (rank `()`: only membership counts) and
//! [`NeverBlock`](crate::never_block::NeverBlock) (rank: the reason's priority).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::BitAnd;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The address numbers of one family (`u32` for IPv4, `u128` for IPv6).
trait Bits: Copy + Ord + BitAnd<Output = Self> {
    /// The mask of a prefix length: its `len` high bits set (none for 0).
    fn mask(len: u8) -> Self;
}

impl Bits for u32 {
    #[inline]
    fn mask(len: u8) -> Self {
        Self::MAX.checked_shl(32 - Self::from(len)).unwrap_or(0)
    }
}

impl Bits for u128 {
    #[inline]
    fn mask(len: u8) -> Self {
        Self::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }
}

/// The networks of one family that share a prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group<B, R> {
    /// The prefix length.
    len: u8,
    /// Its mask, computed once.
    mask: B,
    /// The network numbers (host bits clear), sorted and distinct.
    networks: Vec<B>,
    /// The rank of each network, at the same index as in `networks`.
    ranks: Vec<R>,
}

/// The networks of one family, one [`Group`] per prefix length, ordered by prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Family<B, R> {
    /// The groups, shortest prefix first.
    groups: Vec<Group<B, R>>,
}

impl<B, R> Default for Family<B, R> {
    fn default() -> Self {
        Self { groups: Vec::new() }
    }
}

impl<B: Bits, R: Copy + Ord> Family<B, R> {
    /// Adds `network/len` (host bits are cleared here); a network already present keeps the
    /// lower of its rank and `rank`.
    fn insert(&mut self, len: u8, network: B, rank: R) {
        let index = match self.groups.binary_search_by_key(&len, |g| g.len) {
            Ok(index) => index,
            Err(index) => {
                self.groups.insert(
                    index,
                    Group {
                        len,
                        mask: B::mask(len),
                        networks: Vec::new(),
                        ranks: Vec::new(),
                    },
                );
                index
            }
        };
        let group = &mut self.groups[index];
        let network = network & group.mask;
        match group.networks.binary_search(&network) {
            Ok(at) => group.ranks[at] = group.ranks[at].min(rank),
            Err(at) => {
                group.networks.insert(at, network);
                group.ranks.insert(at, rank);
            }
        }
    }

    /// The lowest rank among the networks that contain `address`.
    #[inline]
    fn best(&self, address: B) -> Option<R> {
        let mut best: Option<R> = None;
        for group in &self.groups {
            if let Ok(at) = group.networks.binary_search(&(address & group.mask))
                && let Some(&rank) = group.ranks.get(at)
            {
                best = Some(best.map_or(rank, |b| b.min(rank)));
            }
        }
        best
    }

    /// True when a network contains `address` (stops at the first).
    #[inline]
    fn contains(&self, address: B) -> bool {
        self.groups
            .iter()
            .any(|g| g.networks.binary_search(&(address & g.mask)).is_ok())
    }

    /// The number of networks.
    fn len(&self) -> usize {
        self.groups.iter().map(|g| g.networks.len()).sum()
    }

    /// (prefix length, network number, rank), by prefix length then network number.
    fn iter(&self) -> impl Iterator<Item = (u8, B, R)> + '_ {
        self.groups.iter().flat_map(|g| {
            g.networks
                .iter()
                .zip(&g.ranks)
                .map(move |(&n, &r)| (g.len, n, r))
        })
    }
}

/// IPv4 and IPv6 networks, each with a rank (`()` when only membership matters).
///
/// Built once, then queried with [`NetTable::best`] or [`NetTable::contains`], which never
/// allocate and cost one mask and one binary search per prefix length in use (IPv4 and IPv6
/// for an IPv4-mapped address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetTable<R> {
    /// The IPv4 networks, including the mapped IPv6 networks of /96 and longer.
    v4: Family<u32, R>,
    /// The other IPv6 networks.
    v6: Family<u128, R>,
}

impl<R> Default for NetTable<R> {
    fn default() -> Self {
        Self {
            v4: Family::default(),
            v6: Family::default(),
        }
    }
}

/// `net` as the table stores it: host bits cleared, and an IPv4-mapped IPv6 network of /96
/// or longer (`::ffff:192.0.2.0/120`) turned into the IPv4 network it means (`192.0.2.0/24`).
pub(crate) fn canonical(net: IpNet) -> IpNet {
    match net.trunc() {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match mapped_v4(v6.network()) {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(IpNet::V6(v6), IpNet::V4),
            None => IpNet::V6(v6),
        },
        other => other,
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) carries. The deprecated
/// IPv4-compatible form (`::a.b.c.d`) is not mapped.
#[inline]
fn mapped_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    address.to_ipv4_mapped()
}

impl<R: Copy + Ord> NetTable<R> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `net` in its [`canonical`] form with `rank`. A network already present keeps the
    /// lower of its rank and `rank`.
    pub(crate) fn insert(&mut self, net: IpNet, rank: R) {
        match canonical(net) {
            IpNet::V4(n) => self.v4.insert(n.prefix_len(), n.network().to_bits(), rank),
            IpNet::V6(n) => self.v6.insert(n.prefix_len(), n.network().to_bits(), rank),
        }
    }

    /// The lowest rank among the networks that contain `address`, or `None` when none does.
    /// An IPv4-mapped address is looked up as its IPv4 address and as itself.
    #[inline]
    pub(crate) fn best(&self, address: IpAddr) -> Option<R> {
        match address {
            IpAddr::V4(v4) => self.v4.best(v4.to_bits()),
            IpAddr::V6(v6) => {
                let as_v6 = self.v6.best(v6.to_bits());
                match mapped_v4(v6).and_then(|v4| self.v4.best(v4.to_bits())) {
                    Some(as_v4) => Some(as_v6.map_or(as_v4, |r| r.min(as_v4))),
                    None => as_v6,
                }
            }
        }
    }

    /// True when a network contains `address` (what [`NetTable::best`] would find, but
    /// stopping at the first match).
    #[inline]
    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(v4) => self.v4.contains(v4.to_bits()),
            IpAddr::V6(v6) => {
                mapped_v4(v6).is_some_and(|v4| self.v4.contains(v4.to_bits()))
                    || self.v6.contains(v6.to_bits())
            }
        }
    }

    /// The number of distinct networks.
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The networks with their ranks: IPv4 first, each family by prefix length then address.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpNet, R)> + '_ {
        let v4 = self.v4.iter().filter_map(|(len, n, r)| {
            Ipv4Net::new(Ipv4Addr::from_bits(n), len)
                .ok()
                .map(|n| (IpNet::V4(n), r))
        });
        let v6 = self.v6.iter().filter_map(|(len, n, r)| {
            Ipv6Net::new(Ipv6Addr::from_bits(n), len)
                .ok()
                .map(|n| (IpNet::V6(n), r))
        });
        v4.chain(v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(entries: &[(&str, u8)]) -> NetTable<u8> {
        let mut t = NetTable::new();
        for (net, rank) in entries {
            t.insert(net.parse().unwrap(), *rank);
        }
        t
    }

    #[test]
    fn zero_and_full_prefixes_in_both_families() {
        let t = table(&[
            ("10.9.9.9/0", 5),
            ("192.0.2.7/32", 1),
            ("2001:db8::7/128", 2),
        ]);
        assert_eq!(t.best(ip("0.0.0.0")), Some(5));
        assert_eq!(t.best(ip("255.255.255.255")), Some(5));
        assert_eq!(t.best(ip("192.0.2.7")), Some(1), "lowest rank wins");
        assert_eq!(t.best(ip("192.0.2.8")), Some(5));
        assert_eq!(t.best(ip("2001:db8::7")), Some(2));
        assert_eq!(t.best(ip("2001:db8::8")), None, "IPv4 /0 is not IPv6");
        assert!(!t.contains(ip("2001:db8::8")));
        let all_v6 = table(&[("2001:db8::/0", 3)]);
        assert_eq!(all_v6.best(ip("::")), Some(3));
        assert_eq!(
            all_v6.best(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some(3)
        );
        assert_eq!(all_v6.best(ip("192.0.2.1")), None);
        assert_eq!(
            t.iter()
                .map(|(n, r)| (n.to_string(), r))
                .collect::<Vec<_>>(),
            [
                ("0.0.0.0/0".to_owned(), 5),
                ("192.0.2.7/32".to_owned(), 1),
                ("2001:db8::7/128".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn duplicates_keep_the_lowest_rank_and_count_once() {
        let t = table(&[
            ("198.51.100.0/24", 4),
            ("198.51.100.99/24", 2),
            ("198.51.100.0/24", 3),
        ]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.best(ip("198.51.100.1")), Some(2));
        assert_eq!(t.best(ip("198.51.101.1")), None);
    }

    #[test]
    fn mapped_networks_and_addresses_are_ipv4() {
        let t = table(&[("::ffff:192.0.2.0/120", 1), ("::ffff:0:0/96", 7)]);
        assert_eq!(
            t.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
            ["0.0.0.0/0", "192.0.2.0/24"]
        );
        assert_eq!(t.best(ip("192.0.2.9")), Some(1));
        assert_eq!(t.best(ip("::ffff:192.0.2.9")), Some(1));
        assert_eq!(t.best(ip("::ffff:203.0.113.1")), Some(7));
        assert_eq!(t.best(ip("2001:db8::1")), None);
        // The IPv4-compatible form is not mapped.
        assert_eq!(t.best(ip("::192.0.2.9")), None);
        // Shorter than /96 the network is IPv6, and still covers the mapped addresses in it.
        let wide = table(&[("::/0", 6), ("203.0.113.0/24", 3)]);
        assert_eq!(wide.best(ip("::ffff:203.0.113.1")), Some(3));
        assert_eq!(wide.best(ip("::ffff:198.51.100.1")), Some(6));
        assert!(wide.contains(ip("::ffff:198.51.100.1")));
        assert_eq!(wide.best(ip("198.51.100.1")), None);
        assert_eq!(
            canonical("::ffff:192.0.2.77/127".parse().unwrap()).to_string(),
            "192.0.2.76/31"
        );
    }

    #[test]
    fn contains_agrees_with_best() {
        let t = table(&[
            ("192.0.2.0/24", 1),
            ("192.0.2.128/25", 0),
            ("2001:db8::/32", 2),
            ("::ffff:198.51.100.0/120", 3),
        ]);
        for a in [
            "192.0.2.1",
            "192.0.2.200",
            "192.0.3.1",
            "2001:db8:1::1",
            "2001:db9::1",
            "::ffff:192.0.2.130",
            "198.51.100.4",
            "::ffff:198.51.101.4",
        ] {
            assert_eq!(t.contains(ip(a)), t.best(ip(a)).is_some(), "{a}");
        }
        assert_eq!(t.best(ip("192.0.2.200")), Some(0));
        assert_eq!(t.best(ip("192.0.2.1")), Some(1));
    }
}
