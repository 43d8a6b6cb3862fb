//! The never-block list of a live host: its own addresses, default gateways, resolvers
//! (loopback is always protected by [`NeverBlock`] itself) and the ignore file.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::host;
use crate::ignore::IgnoreList;
use crate::never_block::NeverBlock;

/// What the host looks like now: the inputs of the never-block list, so that a refresh can
/// tell whether anything changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HostFacts {
    pub(super) own: Vec<IpAddr>,
    pub(super) gateways: Vec<IpAddr>,
    pub(super) resolvers: Vec<IpAddr>,
}

impl HostFacts {
    /// Reads the host's addresses, gateways and resolvers; every failure is returned as a
    /// message and the part concerned stays empty.
    pub(super) fn read() -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let mut take = |what: &str, result: Result<Vec<IpAddr>, host::HostInfoError>| {
            result.unwrap_or_else(|e| {
                problems.push(format!("cannot read the {what}: {e}"));
                Vec::new()
            })
        };
        let facts = Self {
            own: take("host's own addresses", host::own_addresses()),
            gateways: take("default gateways", host::default_gateways()),
            resolvers: take("resolvers", host::resolvers()),
        };
        (facts, problems)
    }

    /// The never-block list of these facts plus the ignore file's networks.
    pub(super) fn never_block(&self, ignore: Option<&IgnoreList>) -> NeverBlock {
        let nets = |addrs: &[IpAddr]| addrs.iter().map(|&a| IpNet::from(a)).collect::<Vec<_>>();
        NeverBlock::new()
            .own_addresses(nets(&self.own))
            .gateways(nets(&self.gateways))
            .resolvers(nets(&self.resolvers))
            .ignore_list(
                ignore
                    .map(|l| l.networks().collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
    }
}
