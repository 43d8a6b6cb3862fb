//! Hear the host's own answers: replies are not probes, and every alert says what the
//! scanner learned about the port.
//!
//! A sans-IO stage between [`classify`](crate::classify) and the responders, fed by the live
//! engine and by replay alike:
//!
//! * **The host's own frames** ([`HostAnswers::sent`], from
//!   [`classify_sent`](crate::classify::classify_sent)): a SYN or a datagram the host sends
//!   from a monitored port starts (or renews) an entry of the [`OutboundFlows`] table; a
//!   SYN+ACK, RST, UDP datagram or ICMP unreachable that answers a held alert decides its
//!   [`PortState`].
//! * **Replies are not probes** ([`HostAnswers::is_reply`]): a probe from a peer address and
//!   port to a local port of one of the host's recent outbound flows is skipped as
//!   [`Skip::Reply`](crate::Skip::Reply) before the detector sees it. Only the host's own
//!   frames add flows, so no flood of received packets can add one.
//! * **Port state** ([`HostAnswers::hold`], [`HostAnswers::due`]): an alert waits up to
//!   [`ANSWER_WAIT`] for the host's answer to the probe that crossed the trigger (same peer,
//!   same ports, same protocol): RST is `closed`, SYN+ACK or a UDP datagram back `open`, ICMP
//!   unreachable `unreachable`, nothing `filtered`. At most [`MAX_HELD_ALERTS`] wait at once;
//!   beyond, the oldest goes on at once as `unknown`.
//!
//! Time is the frames' time, never the clock.
//!
//! # Examples
//!
//! ```
//! use portsentry_core::answers::HostAnswers;
//! use portsentry_core::classify::{Sent, SentKind};
//! use portsentry_core::{Alert, BlockMode, HashSeed, Mode, PortState, Probe, Protocol, ScanKind, Timestamp};
//!
//! let mut answers = HostAnswers::new(HashSeed::FIXED);
//! let probe = Probe {
//!     at: Timestamp::from_secs(10),
//!     source: "203.0.113.1".parse().unwrap(),
//!     destination: "203.0.113.2".parse().unwrap(),
//!     protocol: Protocol::Tcp,
//!     source_port: 40000,
//!     destination_port: 79,
//!     kind: ScanKind::Syn,
//!     ip_options: false,
//! };
//! let alert = Alert { probe, mode: Mode::StealthTcp, distinct_ports: 1, response: BlockMode::LogOnly, port_state: PortState::Unknown };
//! let mut ready = Vec::new();
//! answers.hold(alert, &mut ready);
//! assert!(ready.is_empty());
//! // The host resets the probe.
//! let reset = Sent {
//!     at: Timestamp::from_secs(10),
//!     local: probe.destination,
//!     remote: probe.source,
//!     protocol: Protocol::Tcp,
//!     local_port: 79,
//!     remote_port: 40000,
//!     kind: SentKind::Reset,
//! };
//! answers.sent(&reset, &mut ready);
//! assert_eq!(ready[0].port_state, PortState::Closed);
//! ```

mod flows;

pub use flows::{DEFAULT_FLOW_CAPACITY, OutboundFlows, TCP_FLOW_TIMEOUT, UDP_FLOW_TIMEOUT};

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::classify::{Sent, SentKind};
use crate::event::Alert;
use crate::hash::HashSeed;
use crate::port_state::PortState;
use crate::probe::{Probe, Protocol, Timestamp};

/// How long an alert waits for the host's answer before it goes on as `filtered`: 200 ms.
/// The host answers within microseconds; the wait only delays the responders that much.
pub const ANSWER_WAIT: Duration = Duration::from_millis(200);

/// The most alerts waiting for an answer at once; beyond, the oldest goes on as `unknown`.
pub const MAX_HELD_ALERTS: usize = 4096;

/// The probe an answer would be about: (peer, protocol, peer port, local port).
type ProbeKey = (IpAddr, Protocol, u16, u16);

/// Counters of a [`HostAnswers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AnswerStats {
    /// Frames of the host's own read ([`HostAnswers::sent`]).
    pub sent: u64,
    /// Outbound flows started or renewed.
    pub flows_recorded: u64,
    /// Flows in the table now.
    pub flows: u64,
    /// The table's fixed memory, in bytes.
    pub flow_memory_bytes: u64,
    /// Probes skipped as replies to the host's own flows.
    pub replies: u64,
    /// Alerts passed on, per [`PortState`] (indexed by [`PortState::index`]).
    pub alerts_by_state: [u64; PortState::COUNT],
    /// Alerts waiting for an answer now.
    pub held: u64,
}

impl AnswerStats {
    /// Alerts passed on with `state`.
    pub fn alerts(&self, state: PortState) -> u64 {
        self.alerts_by_state[state.index()]
    }
}

/// The host's own answers and flows; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct HostAnswers {
    flows: OutboundFlows,
    held: HashMap<ProbeKey, Alert>,
    order: VecDeque<(ProbeKey, Timestamp)>,
    stats: AnswerStats,
}

impl HostAnswers {
    /// An empty stage with a flow table of [`DEFAULT_FLOW_CAPACITY`] slots.
    pub fn new(seed: HashSeed) -> Self {
        Self::with_capacity(DEFAULT_FLOW_CAPACITY, seed)
    }

    /// An empty stage with a flow table of `flows` slots.
    pub fn with_capacity(flows: usize, seed: HashSeed) -> Self {
        Self {
            flows: OutboundFlows::new(flows, seed),
            held: HashMap::with_capacity(MAX_HELD_ALERTS),
            order: VecDeque::with_capacity(MAX_HELD_ALERTS),
            stats: AnswerStats::default(),
        }
    }

    /// Reads one frame the host sent: starts or renews a flow (SYN, datagram), and passes on
    /// (into `ready`) a held alert this frame answers, with its port state.
    pub fn sent(&mut self, sent: &Sent, ready: &mut Vec<Alert>) {
        self.stats.sent += 1;
        if matches!(sent.kind, SentKind::Syn | SentKind::Datagram) {
            self.flows.record(
                sent.remote,
                sent.protocol,
                sent.remote_port,
                sent.local_port,
                sent.at,
            );
            self.stats.flows_recorded += 1;
        }
        let state = match sent.kind {
            SentKind::Syn => return,
            SentKind::SynAck | SentKind::Datagram => PortState::Open,
            SentKind::Reset => PortState::Closed,
            SentKind::Unreachable => PortState::Unreachable,
        };
        if self.held.is_empty() {
            return;
        }
        let key = (
            sent.remote.to_canonical(),
            sent.protocol,
            sent.remote_port,
            sent.local_port,
        );
        if let Some(mut alert) = self.held.remove(&key) {
            alert.port_state = state;
            self.pass(alert, ready);
        }
    }

    /// True when `probe` replies to one of the host's recent outbound flows (counted).
    pub fn is_reply(&mut self, probe: &Probe) -> bool {
        let reply = !self.flows.is_empty()
            && self.flows.answers(
                probe.source,
                probe.protocol,
                probe.source_port,
                probe.destination_port,
                probe.at,
            );
        if reply {
            self.stats.replies += 1;
        }
        reply
    }

    /// Holds `alert` until the host's answer to its probe or [`ANSWER_WAIT`]. When
    /// [`MAX_HELD_ALERTS`] already wait, the oldest is passed on (into `ready`) as `unknown`.
    pub fn hold(&mut self, alert: Alert, ready: &mut Vec<Alert>) {
        if self.order.len() >= MAX_HELD_ALERTS
            && let Some((key, at)) = self.order.pop_front()
            && let Some(old) = self.take_if_held(key, at)
        {
            self.pass(old, ready);
        }
        let probe = &alert.probe;
        let key = (
            probe.source.to_canonical(),
            probe.protocol,
            probe.source_port,
            probe.destination_port,
        );
        if let Some(previous) = self.held.insert(key, alert) {
            self.pass(previous, ready);
        }
        self.order.push_back((key, probe.at));
    }

    /// Passes on (into `ready`) the held alerts whose wait is over at `now`, as `filtered`.
    pub fn due(&mut self, now: Timestamp, ready: &mut Vec<Alert>) {
        while let Some(&(key, at)) = self.order.front() {
            if now.saturating_duration_since(at) < ANSWER_WAIT {
                break;
            }
            self.order.pop_front();
            if let Some(mut alert) = self.take_if_held(key, at) {
                alert.port_state = PortState::Filtered;
                self.pass(alert, ready);
            }
        }
    }

    /// When the oldest held alert's wait is over (`None`: none is held), so that a caller
    /// waiting for traffic can wake up in time to pass it on.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.order
            .iter()
            .find(|(key, at)| self.held.get(key).is_some_and(|a| a.probe.at == *at))
            .map(|(_, at)| at.saturating_add(ANSWER_WAIT))
    }

    /// Passes on every held alert: those whose wait is over at `now` as `filtered`, the
    /// others as `unknown` (the end of a capture, a shutdown).
    pub fn flush(&mut self, now: Timestamp, ready: &mut Vec<Alert>) {
        self.due(now, ready);
        while let Some((key, at)) = self.order.pop_front() {
            if let Some(alert) = self.take_if_held(key, at) {
                self.pass(alert, ready);
            }
        }
    }

    /// Passes `alert` on as it is (an alert whose port state is known without an answer,
    /// e.g. a connect-mode handshake, or a capture that does not hear the host), counting it.
    pub fn pass(&mut self, alert: Alert, ready: &mut Vec<Alert>) {
        self.count(&alert);
        ready.push(alert);
    }

    /// Counts an alert passed on by the caller itself, by its port state.
    pub fn count(&mut self, alert: &Alert) {
        self.stats.alerts_by_state[alert.port_state.index()] += 1;
    }

    /// The counters so far.
    pub fn stats(&self) -> AnswerStats {
        AnswerStats {
            flows: self.flows.len() as u64,
            flow_memory_bytes: self.flows.memory_bytes() as u64,
            held: self.held.len() as u64,
            ..self.stats
        }
    }

    /// The outbound-flow table (read-only).
    pub fn flows(&self) -> &OutboundFlows {
        &self.flows
    }

    /// The held alert of `key` if it is the one held at `at` (not a later one of the key).
    fn take_if_held(&mut self, key: ProbeKey, at: Timestamp) -> Option<Alert> {
        match self.held.get(&key) {
            Some(alert) if alert.probe.at == at => self.held.remove(&key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
