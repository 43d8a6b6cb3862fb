//! The engine's hook for the host's own answers ([`HostAnswers`]): frames the host sent,
//! replies skipped, alerts held for their port state, and the capture filter's port sets.

use crate::answers::HostAnswers;
use crate::capture::bpf::{Filter, Incoming, Outgoing, Variant};
use crate::capture::{Capture, CaptureError, Direction, Frame};
use crate::classify::{LinkType, Skip, SkipCounts, classify, classify_sent};
use crate::config::{Config, TriggerMode};
use crate::detector::Detector;
use crate::event::{Alert, Event};
use crate::listening::ListeningPorts;
use crate::mode::Mode;
use crate::port_state::PortState;
use crate::ports::PortSet;
use crate::probe::{Probe, Protocol, Timestamp};
use std::time::Duration;

/// What the engine keeps of the host's own answers.
#[derive(Debug)]
pub(super) struct Heard {
    pub(super) answers: HostAnswers,
    /// Alerts whose port state is decided, waiting to be submitted.
    ready: Vec<Alert>,
}

impl Heard {
    pub(super) fn new() -> Self {
        Self {
            answers: HostAnswers::new(crate::hash::HashSeed::random()),
            ready: Vec::new(),
        }
    }

    /// Reads one captured frame: the host's own frames feed the answers (counted as
    /// [`Skip::Outgoing`]), a received probe that replies to one of the host's flows is
    /// counted as [`Skip::Reply`]; the other received probes are returned (classified at
    /// `at`, the engine's timeline) for the detector.
    pub(super) fn probe(
        &mut self,
        frame: &Frame<'_>,
        at: Timestamp,
        skips: &mut SkipCounts,
    ) -> Option<Probe> {
        if frame.direction == Direction::Outgoing {
            skips.record(Skip::Outgoing);
            if let Ok(sent) = classify_sent(at, LinkType::CookedL3, frame.data) {
                self.answers.sent(&sent, &mut self.ready);
            }
            return None;
        }
        match classify(at, LinkType::CookedL3, frame.data) {
            Ok(probe) if self.answers.is_reply(&probe) => {
                skips.record(Skip::Reply);
                None
            }
            Ok(probe) => Some(probe),
            Err(skip) => {
                skips.record(skip);
                None
            }
        }
    }

    /// Passes an event for the responders on: an alert is held for the host's answer to
    /// its probe, any other event goes to `events` at once.
    pub(super) fn pass_on(&mut self, event: Event, events: &mut Vec<Event>) {
        match event {
            Event::Alert(alert) => self.answers.hold(alert, &mut self.ready),
            event => events.push(event),
        }
    }

    /// A connect-mode alert: a TCP handshake completed on portsentry's own socket (open);
    /// a datagram got no answer the host's stack would have sent (unknown). Counted.
    pub(super) fn connect_alert(&mut self, mut alert: Alert) -> Alert {
        if alert.probe.protocol == Protocol::Tcp {
            alert.port_state = PortState::Open;
        }
        self.answers.count(&alert);
        alert
    }

    /// Moves the alerts whose answer came, and those whose wait is over at `now`, to
    /// `events`.
    pub(super) fn take_ready(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        self.answers.due(now, &mut self.ready);
        events.extend(self.ready.drain(..).map(Event::Alert));
    }

    /// How long a wait for traffic may last at `now` so that a held alert is passed on in
    /// time: `wait`, or less when one is due sooner.
    pub(super) fn wait_at_most(&self, now: Timestamp, wait: Duration) -> Duration {
        self.answers
            .next_due()
            .map_or(wait, |due| wait.min(due.saturating_duration_since(now)))
    }

    /// Moves every held alert to `events` (shutdown).
    pub(super) fn flush(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        self.answers.flush(now, &mut self.ready);
        self.take_ready(now, events);
    }
}

/// The capture filter for the detector's monitored ports: probes are kept only to ports some
/// active mode monitors (and, with `SCAN_TRIGGER_MODE="trw"`, to listening ports: the walk
/// counts contacts with them as successes), the host's answers and flows only from monitored
/// ports.
pub(super) fn filter_for(
    detector: &Detector,
    config: &Config,
    listening: &ListeningPorts,
) -> Filter {
    let union = |modes: &[Mode], extra: &PortSet| {
        let mut set = PortSet::new();
        for &mode in modes {
            if let Some(ports) = detector.monitored_ports(mode) {
                for (first, last) in ports.ranges() {
                    set.insert_range(first, last);
                }
            }
        }
        let mut with_extra = set.clone();
        if config.scan_trigger_mode == TriggerMode::Trw {
            for (first, last) in extra.ranges() {
                with_extra.insert_range(first, last);
            }
        }
        (set, with_extra)
    };
    let (tcp, tcp_in) = union(&[Mode::StealthTcp, Mode::AdvancedTcp], &listening.tcp);
    let (udp, udp_in) = union(&[Mode::StealthUdp, Mode::AdvancedUdp], &listening.udp);
    let variant = if config.detect_ack_scans {
        Variant::WithAckFamily
    } else {
        Variant::Probes
    };
    Filter {
        variant,
        incoming: Incoming::ToPorts {
            tcp: tcp_in,
            udp: udp_in,
        },
        outgoing: Outgoing::FromPorts { tcp, udp },
    }
}

/// Puts the filter for the detector's monitored ports on `capture` (no-op when unchanged).
pub(super) fn refresh_filter(
    capture: &mut Capture,
    detector: &Detector,
    config: &Config,
    listening: &ListeningPorts,
) -> Result<(), CaptureError> {
    capture.set_filter(filter_for(detector, config, listening))
}
