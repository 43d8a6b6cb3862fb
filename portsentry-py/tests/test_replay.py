"""replay() over the shared real captures reproduces manifest.json's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import portsentry
from frames import CAPTURES, CAPTURES_MISSING, frame, manifest
from portsentry import Alert, Config, Event

ENTRIES: dict[str, Any] = manifest()["captures"]


def test_the_shared_captures_are_there() -> None:
    # Fails (never skips) when the captures are missing: the parametrized tests below would
    # then have nothing to check.
    assert CAPTURES is not None, CAPTURES_MISSING
    assert len(ENTRIES) == 10


def _probe_events(events: list[Event]) -> list[Any]:
    return [e for e in events if hasattr(e, "probe")]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_capture_ground_truth(name: str, captures: Path) -> None:
    expect = ENTRIES[name]["expect"]
    path = captures / name
    alerts = portsentry.replay(path)
    if not expect["alert"]:
        assert alerts == [], f"{name}: {alerts}"
        return
    # One alert: the scanner, in stealth mode, with the manifest's protocol and kind.
    assert len(alerts) == 1, f"{name}: {alerts}"
    alert = alerts[0]
    assert isinstance(alert, Alert)
    assert alert.kind == "alert"
    assert alert.probe.source == expect["source"]
    assert alert.probe.protocol == expect["protocol"]
    assert alert.probe.kind == expect["kind"]
    assert alert.mode == ("stcp" if expect["protocol"] == "tcp" else "sudp")

    # Every event: the scanner probed the manifest's number of distinct ports with that kind.
    every = portsentry.replay(str(path), kinds=None)
    probed = {
        e.probe.destination_port
        for e in _probe_events(every)
        if e.probe.source == expect["source"] and e.probe.kind == expect["kind"]
    }
    assert len(probed) == expect["distinct_ports"], name

    # With the trigger at the number of monitored ports it probed, the alert comes with the
    # last of them.
    config = Config.default()
    monitored = probed & (config.tcp_ports if expect["protocol"] == "tcp" else config.udp_ports)
    late = portsentry.replay(path, config.replace(scan_trigger=len(monitored)))
    assert len(late) == 1
    assert isinstance(late[0], Alert)
    assert late[0].distinct_ports == len(monitored)


def test_replay_repr_shows_the_alert(captures: Path) -> None:
    text = repr(portsentry.replay(captures / "nmap-syn.pcap"))
    assert text.startswith("[Alert(mode='stcp', distinct_ports=1, response=BlockMode.LOG_ONLY, probe=Probe(")
    assert "source='203.0.113.1'" in text and "kind='syn'" in text


def test_replay_is_deterministic_and_matches_the_detector(captures: Path) -> None:
    path = captures / "nmap-syn6.pcap"
    first = portsentry.replay(path, kinds=None)
    assert first == portsentry.replay(path, kinds=None)
    from scapy.utils import rdpcap

    detector = portsentry.Detector()
    fed: list[Event] = []
    for packet in rdpcap(str(path)):
        fed.extend(detector.feed(bytes(packet), ts=float(packet.time)))
    assert fed == first


def test_replay_modes_and_kinds(captures: Path) -> None:
    path = captures / "nmap-udp.pcap"
    assert portsentry.replay(path, modes=["stcp"]) == []
    assert len(portsentry.replay(path, modes="sudp")) == 1
    below = portsentry.replay(path, Config.default().replace(scan_trigger=5), kinds=["below_trigger"])
    assert [e.distinct_ports for e in below] == [1, 2, 3, 4]  # type: ignore[attr-defined]
    with pytest.raises(portsentry.ConfigError) as err:
        portsentry.replay(path, modes=["ftp"])
    assert err.value.key == "modes"
    with pytest.raises(portsentry.ArgumentError):
        portsentry.replay(path, kinds=["alarm"])  # type: ignore[list-item]


def test_blocks_in_a_replay_expire(captures: Path) -> None:
    config = Config.default().replace(block_tcp=1, block_timeout=0.001)
    events = portsentry.replay(captures / "nmap-syn.pcap", config)
    kinds = [e.kind for e in events]
    assert kinds[0] == "alert" and "released" in kinds


def test_unreadable_captures_raise_capture_file_error(tmp_path: Path, captures: Path) -> None:
    missing = tmp_path / "missing.pcap"
    with pytest.raises(portsentry.CaptureFileError) as err:
        portsentry.replay(missing)
    assert err.value.path == str(missing)
    assert err.value.events == []

    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    with pytest.raises(portsentry.CaptureFileError, match="not a pcap or pcapng"):
        portsentry.replay(text)

    # A capture cut in the middle of a record: the events before it are kept on the error.
    whole = (captures / "nmap-syn.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 30])
    with pytest.raises(portsentry.CaptureFileError, match="cut short") as err:
        portsentry.replay(cut)
    assert len(err.value.events) == 1 and isinstance(err.value.events[0], Alert)


def test_pcapng_and_other_link_types(tmp_path: Path) -> None:
    from scapy.utils import wrpcap, wrpcapng
    from scapy.layers.l2 import Ether

    frames = [Ether(frame("xmas", port)) for port in (1, 11, 15)]
    for t, f in enumerate(frames):
        f.time = 1000 + t
    ng = tmp_path / "scan.pcapng"
    wrpcapng(str(ng), frames)
    config = Config.default().replace(scan_trigger=3)
    alerts = portsentry.replay(ng, config)
    assert len(alerts) == 1 and alerts[0].probe.at == 1002.0  # type: ignore[attr-defined]
    classic = tmp_path / "scan.pcap"
    wrpcap(str(classic), frames)
    assert portsentry.replay(classic, config) == alerts
