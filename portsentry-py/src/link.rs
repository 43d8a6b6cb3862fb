//! Link-layer names accepted from Python (`link="ethernet"`), and pcap `LINKTYPE_*` numbers.

use pyo3::prelude::*;

use portsentry_core::LinkType;

use crate::vocab::argument_error;

/// Every accepted name, with the link type it means. The first name of each type is the one
/// the Rust library uses (`LinkType::as_str`).
const NAMES: [(&str, LinkType); 13] = [
    ("ethernet", LinkType::Ethernet),
    ("raw_ip", LinkType::RawIp),
    ("raw", LinkType::RawIp),
    ("ipv4", LinkType::RawIp),
    ("ipv6", LinkType::RawIp),
    ("linux_sll", LinkType::LinuxSll),
    ("sll", LinkType::LinuxSll),
    ("linux_sll2", LinkType::LinuxSll2),
    ("sll2", LinkType::LinuxSll2),
    ("null", LinkType::Null),
    ("loop", LinkType::Loop),
    ("cooked_l3", LinkType::CookedL3),
    ("cooked", LinkType::CookedL3),
];

/// A `link=` argument: a name or a pcap `LINKTYPE_*` number.
#[derive(Debug, FromPyObject)]
pub(crate) enum LinkArg {
    /// `"ethernet"`, `"raw"`, ...
    Name(String),
    /// `1` (Ethernet), `101` (raw IP), `113` (Linux cooked), ...
    Number(u32),
}

impl LinkArg {
    /// The link type this argument names.
    ///
    /// # Errors
    ///
    /// `ArgumentError` for an unknown name or an unsupported `LINKTYPE_*` number.
    pub(crate) fn resolve(&self, py: Python<'_>) -> PyResult<LinkType> {
        match self {
            Self::Name(name) => NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|&(_, link)| link)
                .ok_or_else(|| {
                    let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                    argument_error(
                        py,
                        &format!("unknown link type {name:?}: expected one of {}", known.join(", ")),
                    )
                }),
            Self::Number(number) => LinkType::from_pcap_linktype(*number).ok_or_else(|| {
                argument_error(
                    py,
                    &format!(
                        "unsupported pcap link type {number}: supported are 0 (null), 1 (ethernet), \
                         101/228/229 (raw IP), 108 (loop), 113 (linux_sll), 276 (linux_sll2)"
                    ),
                )
            }),
        }
    }
}

impl Default for LinkArg {
    fn default() -> Self {
        Self::Name("ethernet".to_owned())
    }
}
