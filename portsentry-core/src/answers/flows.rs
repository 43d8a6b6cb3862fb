//! [`OutboundFlows`]: a bounded table of the host's own recent outbound flows.

use std::net::IpAddr;
use std::time::Duration;

use crate::hash::HashSeed;
use crate::probe::{Protocol, Timestamp};

/// How long after the host's last datagram of a UDP flow a datagram from the peer still
/// counts as its reply: 180 s (Linux conntrack keeps an answered UDP flow 120 s; a little
/// more covers slow NTP and game-server answers).
pub const UDP_FLOW_TIMEOUT: Duration = Duration::from_secs(180);

/// How long after the host's SYN the peer's segments still count as replies: 1 hour. The
/// filter only passes the SYN of the host's own connections, so a connection is remembered
/// from its start; longer ones lose their entry (only the ACK-family probes of
/// `DETECT_ACK_SCANS` could then be mistaken).
pub const TCP_FLOW_TIMEOUT: Duration = Duration::from_secs(3600);

/// The default number of flows remembered: 8192 (256 KiB).
pub const DEFAULT_FLOW_CAPACITY: usize = 8192;

/// Slots per bucket: a new flow replaces the oldest (or an expired) one of its bucket.
const WAYS: usize = 8;

/// One remembered flow; `seen == 0` marks a free slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    remote: [u8; 16],
    family: u8,
    protocol: u8,
    remote_port: u16,
    local_port: u16,
    /// The host's last packet of the flow, in microseconds (+1, so that 0 means free).
    seen: u64,
}

/// The host's recent outbound flows (UDP and TCP): remote address, remote port, local port.
///
/// Only the host's own frames add entries ([`OutboundFlows::record`] is called for frames
/// the host sent, never for received ones), so nothing from outside can fill it. The memory
/// is fixed when it is made: `capacity` slots of 32 bytes in buckets of 8; a new flow takes
/// a free or expired slot of its bucket, else the least recently used one.
///
/// # Examples
///
/// ```
/// use portsentry_core::answers::OutboundFlows;
/// use portsentry_core::{HashSeed, Protocol, Timestamp};
/// let mut flows = OutboundFlows::new(1024, HashSeed::FIXED);
/// let server = "192.0.2.53".parse().unwrap();
/// flows.record(server, Protocol::Udp, 53, 32772, Timestamp::from_secs(10));
/// assert!(flows.answers(server, Protocol::Udp, 53, 32772, Timestamp::from_secs(11)));
/// assert!(!flows.answers(server, Protocol::Udp, 53, 32773, Timestamp::from_secs(11)));
/// assert!(!flows.answers(server, Protocol::Udp, 53, 32772, Timestamp::from_secs(1000)));
/// ```
#[derive(Debug, Clone)]
pub struct OutboundFlows {
    slots: Box<[Slot]>,
    buckets: usize,
    seed: HashSeed,
    len: usize,
}

impl OutboundFlows {
    /// A table of at least `capacity` slots (rounded up to a power of two, at least 8).
    pub fn new(capacity: usize, seed: HashSeed) -> Self {
        let slots = capacity.max(WAYS).next_power_of_two();
        Self {
            slots: vec![Slot::default(); slots].into_boxed_slice(),
            buckets: slots / WAYS,
            seed,
            len: 0,
        }
    }

    /// Remembers that the host sent a packet of the flow (remote, protocol, remote port,
    /// local port) at `at`.
    pub fn record(
        &mut self,
        remote: IpAddr,
        protocol: Protocol,
        remote_port: u16,
        local_port: u16,
        at: Timestamp,
    ) {
        let key = Slot::key(remote, protocol, remote_port, local_port);
        let seen = at.as_micros().saturating_add(1);
        let bucket = self.bucket(&key);
        let slots = &mut self.slots[bucket..bucket + WAYS];
        if let Some(slot) = slots.iter_mut().find(|s| s.seen != 0 && s.same_flow(&key)) {
            slot.seen = slot.seen.max(seen);
            return;
        }
        let victim = slots
            .iter_mut()
            .min_by_key(|s| if s.is_live(seen) { s.seen } else { 0 })
            .expect("a bucket has WAYS slots");
        if victim.seen == 0 {
            self.len += 1;
        }
        *victim = Slot { seen, ..key };
    }

    /// True when a packet from `remote`:`remote_port` to the host's `local_port` at `at`
    /// answers a flow the host started within its timeout.
    pub fn answers(
        &self,
        remote: IpAddr,
        protocol: Protocol,
        remote_port: u16,
        local_port: u16,
        at: Timestamp,
    ) -> bool {
        let key = Slot::key(remote, protocol, remote_port, local_port);
        let bucket = self.bucket(&key);
        let timeout = match protocol {
            Protocol::Tcp => TCP_FLOW_TIMEOUT,
            Protocol::Udp => UDP_FLOW_TIMEOUT,
        };
        let timeout = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        self.slots[bucket..bucket + WAYS].iter().any(|s| {
            s.seen != 0
                && s.same_flow(&key)
                && at.as_micros().saturating_add(1) < s.seen.saturating_add(timeout)
        })
    }

    /// The slots in use (live or expired but not yet reused).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no flow was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of slots (the most flows remembered at once).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The bytes the table holds: fixed when it is made.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of::<Self>()
    }

    fn bucket(&self, key: &Slot) -> usize {
        let ports = u64::from(key.remote_port) << 24
            | u64::from(key.local_port) << 8
            | u64::from(key.protocol);
        let mixed =
            (self.seed.hash_addr(key.address()) ^ ports).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The high half is the well-mixed one; the modulo keeps the index in range.
        usize::try_from(mixed >> 32).unwrap_or(0) % self.buckets * WAYS
    }
}

impl Slot {
    fn key(remote: IpAddr, protocol: Protocol, remote_port: u16, local_port: u16) -> Self {
        let (remote, family) = match remote.to_canonical() {
            IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), 4),
            IpAddr::V6(a) => (a.octets(), 6),
        };
        Self {
            remote,
            family,
            protocol: match protocol {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
            },
            remote_port,
            local_port,
            seen: 0,
        }
    }

    fn same_flow(&self, key: &Self) -> bool {
        (
            self.remote,
            self.family,
            self.protocol,
            self.remote_port,
            self.local_port,
        ) == (
            key.remote,
            key.family,
            key.protocol,
            key.remote_port,
            key.local_port,
        )
    }

    /// Still within the longer of the two timeouts at `now` (micros + 1).
    fn is_live(&self, now: u64) -> bool {
        let timeout = if self.protocol == 6 {
            TCP_FLOW_TIMEOUT
        } else {
            UDP_FLOW_TIMEOUT
        };
        let timeout = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        self.seen != 0 && now < self.seen.saturating_add(timeout)
    }

    fn address(&self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self.remote);
        if self.family == 4 {
            v6.to_canonical()
        } else {
            IpAddr::V6(v6)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0200 + (i % 256)))
    }

    #[test]
    fn memory_is_fixed_whatever_is_recorded() {
        let mut flows = OutboundFlows::new(DEFAULT_FLOW_CAPACITY, HashSeed::FIXED);
        let before = flows.memory_bytes();
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        assert!(before <= 32 * DEFAULT_FLOW_CAPACITY + 128, "{before}");
        for i in 0..200_000u32 {
            let port = u16::try_from(i % 60000).unwrap();
            flows.record(
                addr(i),
                Protocol::Udp,
                53,
                port,
                Timestamp::from_micros(u64::from(i)),
            );
        }
        assert_eq!(flows.memory_bytes(), before);
        assert_eq!(flows.len(), flows.capacity());
        assert_eq!(flows.capacity(), DEFAULT_FLOW_CAPACITY);
        // The most recent flows are there.
        let last = 199_999u32;
        assert!(flows.answers(
            addr(last),
            Protocol::Udp,
            53,
            u16::try_from(last % 60000).unwrap(),
            Timestamp::from_secs(1)
        ));
    }

    #[test]
    fn exact_match_on_every_field_and_family() {
        let mut flows = OutboundFlows::new(64, HashSeed::FIXED);
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let t = Timestamp::from_secs(100);
        flows.record(v4, Protocol::Udp, 123, 32772, t);
        flows.record(v6, Protocol::Tcp, 443, 32771, t);
        assert!(flows.answers(v4, Protocol::Udp, 123, 32772, t));
        assert!(flows.answers(mapped, Protocol::Udp, 123, 32772, t));
        assert!(!flows.answers(v4, Protocol::Tcp, 123, 32772, t));
        assert!(!flows.answers(v4, Protocol::Udp, 124, 32772, t));
        assert!(!flows.answers(v4, Protocol::Udp, 123, 32773, t));
        assert!(!flows.answers(
            "198.51.100.8".parse().unwrap(),
            Protocol::Udp,
            123,
            32772,
            t
        ));
        assert!(flows.answers(v6, Protocol::Tcp, 443, 32771, t));
        assert!(!flows.answers(v6, Protocol::Udp, 443, 32771, t));
        assert_eq!(flows.len(), 2);
    }

    #[test]
    fn entries_age_out_after_their_protocol_timeout() {
        let mut flows = OutboundFlows::new(64, HashSeed::FIXED);
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Timestamp::from_secs(1000);
        flows.record(peer, Protocol::Udp, 53, 40000, t);
        flows.record(peer, Protocol::Tcp, 80, 40001, t);
        let just_before = |d: Duration| t.saturating_add(d - Duration::from_micros(2));
        assert!(flows.answers(
            peer,
            Protocol::Udp,
            53,
            40000,
            just_before(UDP_FLOW_TIMEOUT)
        ));
        assert!(!flows.answers(
            peer,
            Protocol::Udp,
            53,
            40000,
            t.saturating_add(UDP_FLOW_TIMEOUT)
        ));
        assert!(flows.answers(
            peer,
            Protocol::Tcp,
            80,
            40001,
            just_before(TCP_FLOW_TIMEOUT)
        ));
        assert!(!flows.answers(
            peer,
            Protocol::Tcp,
            80,
            40001,
            t.saturating_add(TCP_FLOW_TIMEOUT)
        ));
        // A new packet of the flow renews it.
        flows.record(
            peer,
            Protocol::Udp,
            53,
            40000,
            t.saturating_add(UDP_FLOW_TIMEOUT),
        );
        assert!(flows.answers(
            peer,
            Protocol::Udp,
            53,
            40000,
            t.saturating_add(UDP_FLOW_TIMEOUT)
        ));
        assert_eq!(flows.len(), 2);
    }
}
