"""Config: the built-in default, files of both dialects, and errors with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import portsentry
from portsentry import BlockMode, Config, ConfigError

CLASSIC_TCP = {1, 11, 15, 79, 111, 119, 143, 540, 635, 1080, 1524, 2000, 5742, 6667, 12345, 12346,
               20034, 27665, 31337, 32771, 32772, 32773, 32774, 40421, 49724, 54320}


def test_default() -> None:
    c = Config.default()
    assert c.tcp_ports == CLASSIC_TCP and isinstance(c.tcp_ports, frozenset)
    assert 31337 in c.udp_ports and len(c.udp_ports) == 21
    assert c.block_tcp == 0 and c.block_tcp is BlockMode.LOG_ONLY
    assert c.scan_trigger == 0 and c.scan_window == 300.0 and c.block_timeout is None
    assert c.history_file == "portsentry.history" and c.history_format == "classic"
    assert c.ignore_file is None and c.kill_route is None
    assert c.advanced_ports_tcp == 1024 and c.advanced_exclude_tcp == {113, 139}
    assert c.never_block_infrastructure is True and c.detect_ack_scans is False
    assert c.warnings == ()
    assert c == Config.default()
    assert repr(c).startswith("Config(tcp_ports='1,11,15,79,")


def test_load_portsentry_12_file(tmp_path: Path) -> None:
    path = tmp_path / "portsentry.conf"
    path.write_text(
        '# PortSentry 1.2 style\n'
        'TCP_PORTS="1,11,15"\n'
        'UDP_PORTS="1,7"\n'
        'ADVANCED_PORTS_TCP="1024"\n'
        'IGNORE_FILE="portsentry.ignore"\n'
        'RESOLVE_HOST = "0"\n'
        'BLOCK_TCP="1"\n'
        'KILL_ROUTE="/sbin/route add -host $TARGET$ reject"\n'
        'SCAN_TRIGGER="2"\n'
    )
    c = Config.load(path)
    assert c.tcp_ports == {1, 11, 15} and c.udp_ports == {1, 7}
    assert c.block_tcp == BlockMode.BLOCK and c.block_udp == 0
    assert c.kill_route == "/sbin/route add -host $TARGET$ reject"
    assert c.ignore_file == str(tmp_path / "portsentry.ignore")
    assert c.scan_trigger == 2


def test_load_portsentry_20_ranges_and_warnings() -> None:
    c = Config.parse('TCP_PORTS="1-1024,8080"\nFANCY="1"\nSCAN_TRIGGER="3"\nSCAN_TRIGGER="4"\n', "x.conf")
    assert len(c.tcp_ports) == 1025 and c.scan_trigger == 4
    unknown, duplicate = c.warnings
    assert (unknown.file, unknown.line, unknown.key) == ("x.conf", 2, "FANCY")
    assert (duplicate.line, duplicate.key) == (4, "SCAN_TRIGGER")
    assert str(duplicate).startswith("x.conf:4: SCAN_TRIGGER: set again")


def test_errors_carry_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text('TCP_PORTS="1,2"\n\nBLOCK_TCP="3"\n# comment\nSCAN_TRIGGER="many"\n')
    with pytest.raises(ConfigError) as info:
        Config.load(path)
    err = info.value
    assert (err.file, err.line, err.key) == (str(path), 3, "BLOCK_TCP")
    assert [(p.line, p.key) for p in err.problems] == [(3, "BLOCK_TCP"), (5, "SCAN_TRIGGER")]
    assert str(err).startswith(f"{path}:3: BLOCK_TCP: ")
    assert "and 1 more problem" in str(err)
    assert isinstance(err, portsentry.PortsentryError)


def test_syntax_error_line() -> None:
    with pytest.raises(ConfigError) as info:
        Config.parse('TCP_PORTS="1"\nthis is not a setting\n', "s.conf")
    assert info.value.line == 2 and info.value.file == "s.conf"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    with pytest.raises(ConfigError, match="cannot read") as info:
        Config.load(str(missing))
    assert info.value.file == str(missing) and info.value.line is None and info.value.key is None


def test_replace() -> None:
    c = Config.default().replace(scan_trigger=5, tcp_ports="1-10", advanced_exclude_udp="")
    assert c.scan_trigger == 5 and c.tcp_ports == frozenset(range(1, 11))
    assert c.advanced_exclude_udp == frozenset()
    assert Config.default().scan_trigger == 0
    with pytest.raises(ConfigError) as info:
        Config.default().replace(block_udp=7)
    assert info.value.key == "block_udp"


def test_detector_reads_the_ignore_file(tmp_path: Path) -> None:
    (tmp_path / "portsentry.ignore").write_text("203.0.113.0/24\n")
    conf = tmp_path / "portsentry.conf"
    conf.write_text('TCP_PORTS="1"\nIGNORE_FILE="portsentry.ignore"\n')
    from frames import syn

    [event] = portsentry.Detector(Config.load(conf)).feed(syn(1), ts=0.0)
    assert isinstance(event, portsentry.Ignored)
    (tmp_path / "portsentry.ignore").write_text("203.0.113.0/99\n")
    with pytest.raises(ConfigError) as info:
        portsentry.Detector(Config.load(conf))
    assert info.value.line == 1 and info.value.file is not None and info.value.file.endswith("portsentry.ignore")


@given(st.text(max_size=300))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    try:
        Config.parse(text)
    except ConfigError as err:
        assert err.problems
