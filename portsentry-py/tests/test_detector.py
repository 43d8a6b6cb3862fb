"""Detector: thresholds, overrides, events, and Python responders."""

from __future__ import annotations

from typing import Any

import pytest

import portsentry
from frames import ATTACKER4, frame, syn
from portsentry import (
    Alert,
    AlreadyAlerted,
    AlreadyBlocked,
    BelowTrigger,
    BlockMode,
    Detector,
    Event,
    Ignored,
    NotMonitored,
    Probe,
    Released,
    Responder,
    ResponderError,
)


def test_threshold_trips_once() -> None:
    det = Detector(tcp_ports="1-1024", scan_trigger=3)
    events = [det.feed(syn(port), ts=float(i)) for i, port in enumerate((1, 2, 2, 3, 4))]
    kinds = [[e.kind for e in batch] for batch in events]
    assert kinds == [["below_trigger"], ["below_trigger"], ["below_trigger"], ["alert"], ["already_alerted"]]
    below = events[2][0]
    assert isinstance(below, BelowTrigger)
    assert (below.distinct_ports, below.trigger) == (2, 3)  # a retransmission does not count
    alert = events[3][0]
    assert isinstance(alert, Alert)
    assert alert.distinct_ports == 3 and alert.mode == "stcp" and alert.response is BlockMode.LOG_ONLY
    assert alert.probe.destination_port == 3 and alert.probe.at == 3.0
    assert isinstance(events[4][0], AlreadyAlerted)
    assert det.stats["alerts"] == 1 and det.stats["below_trigger"] == 3


def test_non_probes_and_unmonitored_ports() -> None:
    det = Detector()  # the classic port lists
    assert det.feed(b"\x00" * 10, ts=1.0) == []
    [event] = det.feed(syn(22), ts=1.0)
    assert isinstance(event, NotMonitored) and event.kind == "not_monitored"
    # ACK-family probes count only with detect_ack_scans.
    assert isinstance(det.feed(frame("ack", 1), ts=2.0)[0], NotMonitored)
    det = Detector(detect_ack_scans=True)
    assert isinstance(det.feed(frame("ack", 1), ts=2.0)[0], Alert)


def test_ipv6_udp_and_modes() -> None:
    det = Detector(modes=["sudp"], scan_trigger=2)
    assert det.modes == ("sudp",)
    assert isinstance(det.feed(syn(1), ts=0.0)[0], NotMonitored)
    assert isinstance(det.feed(frame("udp", 7, 6), ts=0.0)[0], BelowTrigger)
    [alert] = det.feed(frame("udp", 9, 6), ts=1.0)
    assert isinstance(alert, Alert) and alert.probe.source == "2001:db8:113::1"
    assert alert.probe.protocol == "udp" and alert.mode == portsentry.Mode.SUDP


def test_ignored_sources() -> None:
    det = Detector(ignore=["203.0.113.0/24", "2001:db8::/32"])
    [event] = det.feed(syn(1), ts=0.0)
    assert isinstance(event, Ignored) and event.reason == "ignore_file"
    [event] = det.feed(syn(1, src="127.0.0.1"), ts=0.0)
    assert isinstance(event, Ignored) and event.reason is portsentry.IgnoreReason.LOOPBACK
    assert "reason='loopback'" in repr(event)


def test_observe_hand_made_probes() -> None:
    det = Detector(scan_trigger=2)
    p1 = Probe("198.51.100.7", "192.0.2.1", 1, "fin", at=10.0)
    p2 = Probe("198.51.100.7", "192.0.2.1", 11, "fin", at=11.0)
    assert isinstance(det.observe(p1)[0], BelowTrigger)
    [alert] = det.observe(p2)
    assert isinstance(alert, Alert) and alert.probe == p2


def test_events_are_frozen() -> None:
    [alert] = Detector().feed(syn(1), ts=0.0)
    with pytest.raises(AttributeError):
        alert.distinct_ports = 5  # type: ignore[misc]
    assert isinstance(alert, Event)


class Recorder(Responder):
    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.releases: list[Released] = []

    def on_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def on_release(self, release: Released) -> None:
        self.releases.append(release)


def test_callable_responder_receives_alerts() -> None:
    got: list[Any] = []
    det = Detector(scan_trigger=2, responders=[got.append])
    det.feed(syn(1), ts=0.0)
    assert got == []
    events = det.feed(syn(11), ts=1.0)
    assert got == events and isinstance(got[0], Alert)
    assert det.responders == (got.append,)


def test_responder_blocks_and_releases() -> None:
    recorder = Recorder()
    det = Detector(block_tcp=1, block_timeout=60, responders=[recorder])
    [alert] = det.feed(syn(1), ts=100.0)
    assert isinstance(alert, Alert) and alert.response == 1
    assert recorder.alerts == [alert]
    assert det.is_blocked(ATTACKER4)
    assert isinstance(det.feed(syn(11), ts=120.0)[0], AlreadyBlocked)
    # At 161 s the block is over: the release comes first, then the new probe's event.
    events = det.feed(syn(15), ts=161.0)
    assert [e.kind for e in events] == ["released", "alert"]
    release = events[0]
    assert isinstance(release, Released)
    assert (release.address, release.port, release.mode) == (ATTACKER4, 1, "stcp")
    assert (release.blocked_at, release.released_at) == (100.0, 161.0)
    assert recorder.releases == [release]
    assert repr(release).startswith("Released(address='203.0.113.1', mode='stcp', port=1,")
    assert det.expire(ts=10_000.0)[0].kind == "released"


def test_added_responder_and_bad_responder() -> None:
    det = Detector()
    got: list[Any] = []
    det.add_responder(got.append)
    det.feed(syn(1), ts=0.0)
    assert len(got) == 1
    with pytest.raises(TypeError, match="must be callable"):
        det.add_responder(42)  # type: ignore[arg-type]


def test_raising_responder_is_reported_not_lost() -> None:
    boom = ValueError("webhook down")

    def failing(event: Any) -> None:
        raise boom

    after: list[Any] = []
    det = Detector(block_tcp=1, responders=[failing, after.append])
    with pytest.raises(ResponderError) as info:
        det.feed(syn(1), ts=0.0)
    err = info.value
    assert err.__cause__ is boom
    assert "webhook down" in str(err)
    # The event is not lost: it is on the error, and the next responder still ran.
    [alert] = err.events
    assert isinstance(alert, Alert)
    assert after == [alert]
    [failure] = err.failures
    assert failure.responder is failing and failure.event == alert and failure.error is boom
    # A failed block is not recorded as a block; the source is quiet for its window.
    assert not det.is_blocked(ATTACKER4)
    assert isinstance(det.feed(syn(11), ts=1.0)[0], AlreadyAlerted)


def test_interrupts_in_responders_propagate() -> None:
    class Stop(BaseException):
        pass

    def stop(event: Any) -> None:
        raise Stop

    det = Detector(responders=[stop])
    with pytest.raises(Stop):
        det.feed(syn(1), ts=0.0)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"scan_trigger": "three"}, "scan_trigger"),
        ({"scan_trigger": -1}, "scan_trigger"),
        ({"scan_trigger": 100}, "scan_trigger"),  # above the tracker's limit
        ({"tcp_ports": "20-10"}, "tcp_ports"),
        ({"tcp_ports": [0, 5]}, "tcp_ports"),
        ({"udp_ports": 12}, "udp_ports"),
        ({"scan_window": 0}, "scan_window"),
        ({"block_tcp": 3}, "block_tcp"),
        ({"block_timeout": -5}, "block_timeout"),
        ({"detect_ack_scans": "yes"}, "detect_ack_scans"),
        ({"max_tracked_sources": 0}, "max_tracked_sources"),
        ({"modes": ["stealth"]}, "modes"),
        ({"modes": []}, "modes"),
        ({"ignore": ["not-an-address"]}, "ignore"),
        ({"ignore": "10.0.0.1"}, "ignore"),
        ({"scan_triger": 2}, "scan_triger"),
    ],
)
def test_bad_overrides_are_config_errors(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(portsentry.ConfigError) as info:
        Detector(**overrides)
    err = info.value
    assert err.key == key and err.file is None and err.line is None
    assert err.problems[0].key == key


def test_all_override_problems_are_listed() -> None:
    with pytest.raises(portsentry.ConfigError) as info:
        Detector(scan_trigger="x", tcp_ports="0", modes=["nope"])
    assert sorted(p.key for p in info.value.problems) == ["modes", "scan_trigger", "tcp_ports"]  # type: ignore[type-var]


def test_overrides_apply() -> None:
    det = Detector(tcp_ports=range(1, 100), scan_window=2.5, block_timeout=0, detect_ack_scans=True)
    assert det.config.tcp_ports == frozenset(range(1, 100))
    assert det.config.scan_window == 2.5 and det.config.block_timeout is None
    assert det.config.detect_ack_scans is True
    assert repr(det) == "Detector(modes=['stcp', 'sudp'], responders=0)"
