//! The never-block list: `portsentry.ignore` (the file named by `IGNORE_FILE`).
//!
//! # File format
//!
//! One IPv4 or IPv6 address per line, optionally with a prefix length (`192.0.2.0/24`,
//! `2001:db8::/32`). A `#` starts a comment, on its own line or after an address. Blank lines
//! and whitespace around entries are ignored, lines may end with `\n` or `\r\n`, and the last
//! line needs no newline. Hex digits may be upper or lower case.
//!
//! # Matching
//!
//! Both sides are masked: `127.0.0.77/30` covers 127.0.0.76 to .79, whatever host bits the
//! entry carries, and `/0` covers every address of its family (`0.0.0.0/0`, `::/0`). An
//! IPv4-mapped IPv6 source (`::ffff:192.0.2.1`, what a dual-stack socket reports) matches the
//! IPv4 entries as the IPv4 address it is; entries written in that form
//! (`::ffff:192.0.2.0/120`) are stored as the IPv4 block they mean.
//!
//! # Differences from PortSentry, on purpose
//!
//! None of the bugs of the C versions exist here: leading whitespace, trailing comments,
//! CR line ends and upper-case hex are accepted (1.2 lost indented entries, 2.0 rejected the
//! whole file); the last line keeps its last character (2.0 chopped it, turning
//! `127.0.0.50` into `127.0.0.5`); entries with host bits match (2.0 did not mask the entry);
//! `/0` really means everything (both versions made IPv4 `/0` a `/32`); IPv6 works (1.2 had
//! none). An invalid line is an error naming the file and the line, and every invalid line
//! is reported.
//!
//! ```
//! use portsentry_core::ignore::IgnoreList;
//! let list = IgnoreList::parse("127.0.0.77/30  # a lab\r\n2001:DB8::/32\n", "ignore").unwrap();
//! assert!(list.contains("127.0.0.79".parse().unwrap()));
//! assert!(!list.contains("127.0.0.80".parse().unwrap()));
//! assert!(list.contains("2001:db8::5".parse().unwrap()));
//! assert!(list.contains("::ffff:127.0.0.76".parse().unwrap()));
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::located::Located;
use crate::net_table::NetTable;
use crate::permissions::{self, PermissionFinding, ReadError};

/// One invalid line of an ignore file: `file:line: message` when displayed.
pub type IgnoreProblem = Located<IgnoreProblemKind>;

/// What is wrong with a line of an ignore file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IgnoreProblemKind {
    /// The entry is not an IPv4 or IPv6 address (host names are not resolved).
    #[error(
        "`{text}` is not an IP address: expected an IPv4 or IPv6 address, optionally with /bits"
    )]
    NotAnAddress {
        /// The entry as written.
        text: String,
    },
    /// The prefix length after `/` is not a number or is too long for the address family.
    #[error("`{text}` has an invalid prefix length: expected /0 to /{max}")]
    BadPrefixLength {
        /// The entry as written.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// More than one word on a line (before any `#`).
    #[error("`{text}`: expected one address per line (comments start with `#`)")]
    ExtraText {
        /// The line without its comment.
        text: String,
    },
}

/// The error of [`IgnoreList::load`] and [`IgnoreList::parse`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IgnoreError {
    /// The file could not be read: missing or unreadable.
    #[error("cannot read ignore file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds more than [`MAX_INPUT_BYTES`](crate::permissions::MAX_INPUT_BYTES)
    /// (1 MiB); it was not read further.
    #[error("ignore file {} is larger than {limit} bytes: refused", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// One or more lines are invalid; all of them are listed, in line order.
    #[error("{file}: {} invalid line(s); first: {}", problems.len(), problems.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        /// The file name as given.
        file: String,
        /// Every invalid line.
        problems: Vec<IgnoreProblem>,
    },
}

/// A set of IPv4 and IPv6 networks that are never counted or blocked.
///
/// Built once (from a file or entry by entry), then queried with [`IgnoreList::contains`],
/// which never allocates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    /// The networks; the rank is unused (`()`).
    table: NetTable<()>,
}

impl IgnoreList {
    /// An empty list: nothing is ignored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a network. Host bits are cleared (`127.0.0.77/30` is stored as `127.0.0.76/30`);
    /// IPv4-mapped IPv6 networks of /96 or longer are stored as the IPv4 network they mean.
    pub fn insert(&mut self, net: IpNet) {
        self.table.insert(net, ());
    }

    /// True when `address` lies in one of the networks. An IPv4-mapped IPv6 address also
    /// matches the IPv4 entries. No allocation; one binary search per prefix length in use.
    #[inline]
    pub fn contains(&self, address: IpAddr) -> bool {
        self.table.contains(address)
    }

    /// The number of distinct networks.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The networks, IPv4 first, each family by prefix length then address.
    pub fn networks(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.table.iter().map(|(net, ())| net)
    }

    /// Parses ignore-file text (format in the [module docs](self)). `origin` names the text
    /// in error messages. Pure: nothing is read or resolved.
    ///
    /// # Errors
    ///
    /// [`IgnoreError::Invalid`] listing every invalid line with its number.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::IgnoreList;
    ///
    /// let list = IgnoreList::parse("127.0.0.77/30  # local\r\n2001:db8::/32\n", "ignore")?;
    /// assert!(list.contains("127.0.0.76".parse()?)); // both sides are masked
    /// assert!(list.contains("2001:db8::9".parse()?));
    /// assert!(!list.contains("203.0.113.1".parse()?));
    ///
    /// let err = IgnoreList::parse("192.0.2.1\nnot-an-address\n", "ignore").unwrap_err();
    /// assert!(err.to_string().contains("ignore:2"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(text: &str, origin: &str) -> Result<Self, IgnoreError> {
        let mut list = Self::new();
        let mut problems = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            match parse_line(raw) {
                Ok(Some(net)) => list.insert(net),
                Ok(None) => {}
                Err(kind) => problems.push(Located {
                    file: origin.to_owned(),
                    line: Some(index + 1),
                    key: None,
                    kind,
                }),
            }
        }
        if problems.is_empty() {
            Ok(list)
        } else {
            Err(IgnoreError::Invalid {
                file: origin.to_owned(),
                problems,
            })
        }
    }

    /// Reads and parses the ignore file at `path` (at most
    /// [`MAX_INPUT_BYTES`](crate::permissions::MAX_INPUT_BYTES)).
    ///
    /// # Errors
    ///
    /// As [`IgnoreList::load_checked`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IgnoreError> {
        Self::load_checked(path).map(|(list, _)| list)
    }

    /// Reads the ignore file at `path` once, from one descriptor, and parses it, with the
    /// permission findings of its whole path ([`permissions::read_checked`]): the daemon
    /// takes no root action while there is any.
    ///
    /// # Errors
    ///
    /// [`IgnoreError::Read`] when the file cannot be read; [`IgnoreError::TooLarge`] above
    /// 1 MiB; [`IgnoreError::Invalid`] listing every invalid line otherwise.
    pub fn load_checked(
        path: impl AsRef<Path>,
    ) -> Result<(Self, Vec<PermissionFinding>), IgnoreError> {
        let path = path.as_ref();
        let file =
            permissions::read_checked(path, permissions::MAX_INPUT_BYTES).map_err(|error| {
                match error {
                    ReadError::TooLarge { limit, .. } => IgnoreError::TooLarge {
                        path: path.to_owned(),
                        limit,
                    },
                    ReadError::Io { source, .. } => IgnoreError::Read {
                        path: path.to_owned(),
                        source,
                    },
                }
            })?;
        // Bytes that are not UTF-8 become U+FFFD: harmless in a comment, and never part of
        // a valid address, so such an entry is reported as invalid.
        let list = Self::parse(
            &String::from_utf8_lossy(&file.bytes),
            &path.display().to_string(),
        )?;
        Ok((list, file.findings))
    }
}

impl FromIterator<IpNet> for IgnoreList {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        let mut list = Self::new();
        for net in iter {
            list.insert(net);
        }
        list
    }
}

/// One line: `Ok(None)` for blanks and comments.
fn parse_line(raw: &str) -> Result<Option<IpNet>, IgnoreProblemKind> {
    let without_comment = raw.split_once('#').map_or(raw, |(before, _)| before);
    let text = without_comment.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.contains(char::is_whitespace) {
        return Err(IgnoreProblemKind::ExtraText {
            text: text.to_owned(),
        });
    }
    let not_an_address = || IgnoreProblemKind::NotAnAddress {
        text: text.to_owned(),
    };
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| not_an_address())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let len = match bits {
        None => max,
        Some(bits) => {
            let bad = || IgnoreProblemKind::BadPrefixLength {
                text: text.to_owned(),
                max,
            };
            if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match bits.parse::<u8>() {
                Ok(len) if len <= max => len,
                _ => return Err(bad()),
            }
        }
    };
    IpNet::new(address, len)
        .map(|net| Some(net.trunc()))
        .map_err(|_| not_an_address())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::{Ipv4Net, Ipv6Net};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn list(text: &str) -> IgnoreList {
        IgnoreList::parse(text, "ignore").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn problems(text: &str) -> Vec<(usize, IgnoreProblemKind)> {
        match IgnoreList::parse(text, "ignore") {
            Err(IgnoreError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| (p.line.unwrap(), p.kind))
                .collect(),
            other => panic!("{text:?} should fail: {other:?}"),
        }
    }

    #[test]
    fn both_sides_masked() {
        let l = list("127.0.0.77/30");
        for host in ["127.0.0.76", "127.0.0.77", "127.0.0.78", "127.0.0.79"] {
            assert!(l.contains(ip(host)), "{host}");
        }
        assert!(!l.contains(ip("127.0.0.75")));
        assert!(!l.contains(ip("127.0.0.80")));
        assert_eq!(
            l.networks().collect::<Vec<_>>(),
            ["127.0.0.76/30".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn slash_zero_matches_its_whole_family_only() {
        let v4 = list("10.1.2.3/0");
        assert!(v4.contains(ip("203.0.113.9")) && v4.contains(ip("0.0.0.0")));
        assert!(v4.contains(ip("255.255.255.255")));
        assert!(!v4.contains(ip("2001:db8::1")));
        let v6 = list("2001:db8::/0");
        assert!(v6.contains(ip("fe80::1")) && v6.contains(ip("::")));
        assert!(!v6.contains(ip("192.0.2.1")));
    }

    #[test]
    fn hosts_without_bits_are_exact() {
        let l = list("0.0.0.0\n127.0.0.1/32\n2001:db8::1\n");
        assert!(l.contains(ip("0.0.0.0")));
        assert!(!l.contains(ip("0.0.0.1")));
        assert!(l.contains(ip("127.0.0.1")));
        assert!(l.contains(ip("2001:db8::1")));
        assert!(!l.contains(ip("2001:db8::2")));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn comments_whitespace_crlf_and_last_line_without_newline() {
        let text = "# shipped\r\n\r\n   127.0.0.1/32   \r\n\t192.0.2.0/24\t# lab # more\r\n2001:DB8:0:0::/64#x\r\n  # indented comment\n127.0.0.50";
        let l = list(text);
        assert!(l.contains(ip("127.0.0.1")));
        assert!(l.contains(ip("192.0.2.200")));
        assert!(l.contains(ip("2001:db8::abcd")));
        assert!(
            l.contains(ip("127.0.0.50")),
            "the last line keeps its last character"
        );
        assert!(!l.contains(ip("127.0.0.5")));
        assert_eq!(l.len(), 4);
        assert!(list("").is_empty());
        assert!(list("\n\n# only comments\n").is_empty());
    }

    #[test]
    fn ipv4_mapped_sources_and_entries() {
        let l = list("192.0.2.0/24\n::ffff:198.51.100.0/120\n");
        assert!(l.contains(ip("::ffff:192.0.2.7")));
        assert!(l.contains(ip("198.51.100.3")));
        assert!(l.contains(ip("::ffff:198.51.100.3")));
        assert!(!l.contains(ip("::ffff:203.0.113.1")));
        // An IPv6 block that covers the mapped range still matches mapped sources.
        assert!(list("::/0").contains(ip("::ffff:203.0.113.1")));
        // IPv4-compatible (deprecated) addresses are not treated as mapped.
        assert!(!l.contains(ip("::192.0.2.7")));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "127.0.0.1\nlocalhost\n10.0.0.0/33\n::1/129\n10.0.0.1 10.0.0.2\n1.2.3.4/\n1.2.3.4/x\nfe80::1%eth0\n1.2.3\n1.2.3.4/-1\n";
        let got = problems(text);
        let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(matches!(got[0].1, IgnoreProblemKind::NotAnAddress { .. }));
        assert_eq!(
            got[1].1,
            IgnoreProblemKind::BadPrefixLength {
                text: "10.0.0.0/33".into(),
                max: 32
            }
        );
        assert!(matches!(
            got[2].1,
            IgnoreProblemKind::BadPrefixLength { max: 128, .. }
        ));
        assert!(matches!(got[3].1, IgnoreProblemKind::ExtraText { .. }));
        let shown = IgnoreList::parse("x\n", "/etc/portsentry/portsentry.ignore")
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains("/etc/portsentry/portsentry.ignore:1: `x` is not an IP address"),
            "{shown}"
        );
    }

    #[test]
    fn load_reads_files_and_names_them() {
        let dir = std::env::temp_dir().join(format!("ps-ignore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("portsentry.ignore");
        std::fs::write(&path, "127.0.0.1/32\n0.0.0.0").unwrap();
        let l = IgnoreList::load(&path).unwrap();
        assert!(l.contains(ip("127.0.0.1")) && l.contains(ip("0.0.0.0")));
        std::fs::write(&path, "127.0.0.1/32\nbogus\n").unwrap();
        let err = IgnoreList::load(&path).unwrap_err();
        let IgnoreError::Invalid { problems, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(problems[0].file, path.display().to_string());
        assert_eq!(problems[0].line, Some(2));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            IgnoreList::load(&path),
            Err(IgnoreError::Read { .. })
        ));
    }

    /// The meaning of `contains`, written the slow way with `ipnet`: the address, or the IPv4
    /// address a mapped one stands for, lies in a truncated entry.
    fn reference_contains(nets: &[IpNet], address: IpAddr) -> bool {
        let mut candidates = vec![address];
        if let IpAddr::V6(v6) = address
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            candidates.push(IpAddr::V4(v4));
        }
        candidates
            .iter()
            .any(|c| nets.iter().any(|n| n.trunc().contains(c)))
    }

    fn any_net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 0u8..=32)
                .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap())),
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap())),
        ]
    }

    proptest! {
        #[test]
        fn matching_agrees_with_ipnet(
            nets in proptest::collection::vec(any_net(), 0..12),
            probes in proptest::collection::vec(any::<u32>(), 1..20),
        ) {
            let text: String = nets.iter().map(|n| format!("  {n} # entry\r\n")).collect();
            let l = IgnoreList::parse(&text, "p").unwrap();
            // Probe near every entry (same network) and at random.
            let mut addresses: Vec<IpAddr> = nets.iter().map(|n| n.addr()).collect();
            addresses.extend(probes.iter().map(|&p| IpAddr::V4(Ipv4Addr::from(p))));
            addresses.extend(probes.iter().map(|&p| IpAddr::V6(Ipv4Addr::from(p).to_ipv6_mapped())));
            for a in addresses {
                prop_assert_eq!(l.contains(a), reference_contains(&nets, a), "{}", a);
            }
        }

        #[test]
        fn parse_format_round_trip(nets in proptest::collection::vec(any_net(), 0..12)) {
            let l: IgnoreList = nets.iter().copied().collect();
            let text: String = l.networks().map(|n| format!("{n}\n")).collect();
            let back = IgnoreList::parse(&text, "p").unwrap();
            prop_assert_eq!(&back, &l);
        }

        #[test]
        fn parse_never_panics(text in "[0-9a-fA-F.:/# \t\r\nx%-]{0,120}") {
            let _ = IgnoreList::parse(&text, "p");
        }
    }
}
