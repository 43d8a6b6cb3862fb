"""replay() and replay_report() over the shared real captures reproduce manifest.json's ground
truth, set up as a deployment on the victim would be (as the Rust replay tests do)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Optional

import pytest

import portsentry
from frames import CAPTURES, CAPTURES_MISSING, frame, manifest
from portsentry import Alert, BlockMode, Config, Event, ReplayReport

MANIFEST: dict[str, Any] = manifest()
ENTRIES: dict[str, Any] = MANIFEST.get("captures", {})


def test_the_shared_captures_are_there() -> None:
    # Fails (never skips) when the captures are missing: the parametrized tests below would
    # then have nothing to check.
    assert CAPTURES is not None, CAPTURES_MISSING
    assert len(ENTRIES) == 10


def _config(scan_trigger: Optional[int]) -> Config:
    """The manifest's port lists; the default trigger (0) or the one given."""
    config = Config.default().replace(
        tcp_ports=MANIFEST["tcp_ports_probed"], udp_ports=MANIFEST["udp_ports_probed"]
    )
    return config if scan_trigger is None else config.replace(scan_trigger=scan_trigger)


def _victim(**extra: Any) -> dict[str, Any]:
    """The victim's setup: its addresses and its listening port 8080."""
    return {
        "own_addresses": MANIFEST["victim"],
        "listening_tcp": MANIFEST["victim_listening_tcp"],
        **extra,
    }


def _check(name: str, config: Config, report: ReplayReport, alerts: list[Event]) -> None:
    """Checks a report (and the alerts `replay` returned) against the manifest's expect."""
    expect = ENTRIES[name]["expect"]
    summary = report.summary
    assert summary.frames > 0, name
    if not expect["alert"]:
        assert summary.events_by_kind.get("alert", 0) == 0, f"{name}: {summary.sources}"
        assert summary.sources == [], name
        assert alerts == [], f"{name}: {alerts}"
        return

    assert [s.source for s in summary.sources] == [expect["source"]], name
    scanner = summary.sources[0]
    assert summary.source(expect["source"]) == scanner
    assert summary.events_by_kind["alert"] == len(scanner.alerts)
    assert alerts == scanner.alerts, name
    trigger = max(config.scan_trigger, 1)
    for alert in scanner.alerts:
        assert isinstance(alert, Alert)
        assert alert.kind == "alert"
        assert alert.probe.source == expect["source"]
        assert alert.probe.protocol == expect["protocol"], f"{name}: {alert}"
        assert alert.probe.kind == expect["kind"], f"{name}: {alert}"
        assert alert.mode == ("stcp" if expect["protocol"] == "tcp" else "sudp")
        assert alert.response == BlockMode.LOG_ONLY, f"{name}: replays are log only"
        assert alert.distinct_ports == trigger, f"{name}: alert at the trigger"
    # A scan shorter than the scan window alerts once (log only: one alert per window).
    assert summary.first_frame_at is not None and summary.last_frame_at is not None
    if summary.last_frame_at - summary.first_frame_at < config.scan_window:
        assert len(scanner.alerts) == 1, f"{name}: one alert per window"

    # distinct_ports in the manifest is what the scan covered: every port probed.
    assert len(scanner.ports_probed) == expect["distinct_ports"], f"{name}: {scanner}"
    # What the detector counted: those ports minus the one a service owns.
    protocol = expect["protocol"]
    listening = set(MANIFEST["victim_listening_tcp"]) if protocol == "tcp" else set()
    probed = getattr(scanner.ports_probed, protocol)
    assert getattr(scanner.ports_counted, protocol) == tuple(p for p in probed if p not in listening)


@pytest.mark.parametrize("scan_trigger", [None, 3], ids=["default-trigger", "trigger-3"])
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_capture_ground_truth(name: str, scan_trigger: Optional[int], captures: Path) -> None:
    assert Config.default().scan_trigger == 0
    config = _config(scan_trigger)
    path = captures / name
    report = portsentry.replay_report(path, config, **_victim())
    alerts = portsentry.replay(str(path), config, kinds=["alert"], **_victim())
    _check(name, config, report, alerts)
    # The report keeps the same events `replay` returns.
    assert report.events == portsentry.replay(path, config, **_victim())


def test_without_the_listening_port_the_benign_http_capture_alerts(captures: Path) -> None:
    # The knob that keeps benign-http quiet is the victim's listening port 8080, as in a
    # real deployment: the stealth modes do not watch ports a service owns.
    report = portsentry.replay_report(
        captures / "benign-http.pcap", _config(None), own_addresses=MANIFEST["victim"]
    )
    sources = report.summary.sources
    assert {s.source for s in sources} == {"203.0.113.1", "2001:db8:113::1"}
    assert all(s.ports_counted.tcp == (8080,) for s in sources)


def test_the_capture_host_filter_and_the_counts_add_up(captures: Path) -> None:
    path = captures / "benign-outbound.pcap"
    # Without own addresses every probe reaches the detector; with them, what the victim
    # sent is "outgoing" and nothing that reached the detector went elsewhere.
    everything = portsentry.replay_report(path, _config(3), kinds=None)
    victim = portsentry.replay_report(
        path,
        _config(3),
        kinds=None,
        own_addresses=[ipaddress.ip_address(a) for a in MANIFEST["victim"]],
        listening_tcp=",".join(str(p) for p in MANIFEST["victim_listening_tcp"]),
    )
    assert victim.summary.frames == everything.summary.frames
    assert victim.summary.skips.get("outgoing", 0) > 0
    assert victim.summary.probes < everything.summary.probes
    for report in (everything, victim):
        s = report.summary
        assert s.frames == s.probes + sum(s.skips.values()) + s.not_to_host
        assert sum(s.probes_by_kind.values()) == s.probes
        assert sum(s.events_by_kind.values()) == s.probes  # no release: log only
        assert len(report.events) == s.probes  # kinds=None keeps every event

    syn = portsentry.replay_report(captures / "nmap-syn.pcap", _config(3), kinds=(), **_victim())
    assert syn.events == []  # nothing kept, everything counted
    assert syn.summary.probes_by_kind["syn"] == syn.summary.probes
    assert syn.summary.events_by_kind["below_trigger"] == 2
    assert syn.summary.events_by_kind["alert"] == 1


def test_replay_repr_shows_the_alert(captures: Path) -> None:
    text = repr(portsentry.replay(captures / "nmap-syn.pcap"))
    assert text.startswith(
        "[Alert(mode='stcp', distinct_ports=1, response=BlockMode.LOG_ONLY, port_state='unknown', probe=Probe("
    )
    assert "source='203.0.113.1'" in text and "kind='syn'" in text
    report = portsentry.replay_report(captures / "nmap-syn.pcap", **_victim())
    assert repr(report).startswith("ReplayReport(events=<1 event(s)>, summary=ReplaySummary(frames=")
    assert "sources=['203.0.113.1']" in repr(report.summary)
    assert "ports_counted=Ports(tcp=[1, 11," in repr(report.summary.sources[0])


def test_replay_is_deterministic_and_matches_the_detector(captures: Path) -> None:
    path = captures / "nmap-syn6.pcap"
    first = portsentry.replay(path, kinds=None)
    assert first == portsentry.replay(path, kinds=None)
    assert portsentry.replay_report(path, **_victim()) == portsentry.replay_report(path, **_victim())
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


def test_bad_setup_arguments_are_config_errors(captures: Path, tmp_path: Path) -> None:
    path = captures / "nmap-syn.pcap"
    with pytest.raises(portsentry.ConfigError) as err:
        portsentry.replay(path, own_addresses=["203.0.113.2", "victim"])
    assert err.value.key == "own_addresses"
    assert "entry 2" in str(err.value)
    with pytest.raises(portsentry.ConfigError) as err:
        portsentry.replay(path, own_addresses="203.0.113.2")
    assert err.value.key == "own_addresses"
    with pytest.raises(portsentry.ConfigError) as err:
        portsentry.replay_report(path, listening_tcp=[80, 70000], listening_udp="x")
    assert [p.key for p in err.value.problems] == ["listening_tcp", "listening_udp"]
    missing = Config.parse(f'IGNORE_FILE="{tmp_path / "missing.ignore"}"\n')
    with pytest.raises(portsentry.ConfigError) as err:
        portsentry.replay(path, missing)
    assert err.value.key == "IGNORE_FILE"
    with pytest.raises(portsentry.ConfigError) as err:
        portsentry.replay(path, modes=[])
    assert err.value.key == "modes"


def test_ignored_sources_are_never_counted(captures: Path, tmp_path: Path) -> None:
    path = captures / "nmap-syn.pcap"
    ignored = portsentry.replay(
        path, kinds=["alert", "ignored"], ignore=[ipaddress.ip_network("203.0.113.0/30")]
    )
    assert ignored and all(e.kind == "ignored" for e in ignored)
    assert {e.reason for e in ignored} == {"ignore_file"}  # type: ignore[attr-defined]
    # The configuration's IGNORE_FILE is honoured too.
    ignore_file = tmp_path / "portsentry.ignore"
    ignore_file.write_text("# the lab\n203.0.113.1\n")
    config = Config.parse(
        f'TCP_PORTS="{MANIFEST["tcp_ports_probed"]}"\nIGNORE_FILE="{ignore_file}"\n'
    )
    report = portsentry.replay_report(path, config, **_victim())
    assert report.summary.sources == [] and report.summary.events_by_kind["ignored"] >= 26


def test_replays_are_log_only(captures: Path) -> None:
    config = _config(None).replace(block_tcp=1, block_timeout=0.001, scan_window=300)
    report = portsentry.replay_report(captures / "nmap-syn.pcap", config, **_victim())
    events = report.events
    assert [e.kind for e in events] == ["alert"]
    assert isinstance(events[0], Alert) and events[0].response == BlockMode.LOG_ONLY
    counts = report.summary.events_by_kind
    assert "already_blocked" not in counts and "released" not in counts
    # The other counted ports come after the alert.
    assert counts["already_alerted"] == len(report.summary.sources[0].ports_counted) - 1


def test_unreadable_captures_raise_capture_file_error(tmp_path: Path, captures: Path) -> None:
    missing = tmp_path / "missing.pcap"
    with pytest.raises(portsentry.CaptureFileError) as err:
        portsentry.replay(missing)
    assert err.value.path == str(missing)
    assert err.value.events == []
    assert err.value.report is None

    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    with pytest.raises(portsentry.CaptureFileError, match="not a pcap or pcapng"):
        portsentry.replay_report(text)

    # A capture cut in the middle of a record: the events and the report of the frames before
    # it are kept on the error.
    whole = (captures / "nmap-syn.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 30])
    with pytest.raises(portsentry.CaptureFileError, match="cut short") as err:
        portsentry.replay(cut)
    assert len(err.value.events) == 1 and isinstance(err.value.events[0], Alert)
    partial = err.value.report
    assert partial is not None and partial.events == err.value.events
    whole_summary = portsentry.replay_report(captures / "nmap-syn.pcap").summary
    assert 0 < partial.summary.frames < whole_summary.frames
    assert [s.source for s in partial.summary.sources] == ["203.0.113.1"]


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
    summary = portsentry.replay_report(classic, config).summary
    assert (summary.first_frame_at, summary.last_frame_at) == (1000.0, 1002.0)
    assert summary.probes_by_kind == {"xmas": 3}


def test_alerts_carry_the_port_state_when_the_host_is_known(captures: Path) -> None:
    """With the victim's addresses its answers are heard: nmap's SYNs met closed ports."""
    heard = portsentry.replay(captures / "nmap-syn.pcap", **_victim())
    assert heard and all(a.port_state == "closed" for a in heard), heard
    blind = portsentry.replay(captures / "nmap-syn.pcap")
    assert blind and all(a.port_state == "unknown" for a in blind), blind
    udp = portsentry.replay(captures / "nmap-udp.pcap", **_victim())
    assert udp and all(a.port_state in ("unreachable", "filtered") for a in udp), udp


def test_the_trw_trigger_needs_more_first_contacts_than_the_first_probe(captures: Path) -> None:
    """SCAN_TRIGGER_MODE="trw": four failed first contacts net of the successful ones."""
    path = captures / "nmap-fin.pcap"
    count = portsentry.replay(path, _config(None), **_victim())
    trw = portsentry.replay(path, _config(None).replace(scan_trigger_mode="trw"), **_victim())
    assert [a.distinct_ports for a in count] == [1]
    assert [a.distinct_ports for a in trw] == [4]
    assert _config(None).replace(scan_trigger_mode="trw").scan_trigger_mode == "trw"
