"""classify() on frames crafted with scapy: every kind, IPv4 and IPv6, every link type."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import portsentry
from frames import ATTACKER4, ATTACKER6, VICTIM4, VICTIM6, frame, packet
from portsentry import Probe, Protocol, ScanKind

KINDS = ["syn", "fin", "null", "xmas", "maimon", "ack", "other", "udp", "fragment"]
LINK_NAMES = [
    "ethernet", "raw_ip", "raw", "ipv4", "ipv6", "linux_sll", "sll", "linux_sll2", "sll2",
    "null", "loop", "cooked_l3", "cooked",
]


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_classified(kind: str, version: int) -> None:
    probe = portsentry.classify(frame(kind, 31337, version), ts=1700000000.25)
    assert isinstance(probe, Probe)
    assert probe.kind == kind
    assert probe.kind is ScanKind(kind)
    assert probe.source == (ATTACKER4 if version == 4 else ATTACKER6)
    assert probe.destination == (VICTIM4 if version == 4 else VICTIM6)
    assert probe.destination_port == 31337
    assert probe.source_port == 40000
    assert probe.protocol is (Protocol.UDP if kind == "udp" else Protocol.TCP)
    assert probe.at == pytest.approx(1700000000.25)
    assert probe.ip_options is False
    assert probe.flags == (0x03 if kind == "other" else None)


def test_kind_enum_is_a_string() -> None:
    assert ScanKind.SYN == "syn"
    assert str(ScanKind.XMAS) == "xmas"
    assert isinstance(ScanKind.UDP, str)
    assert {k.value for k in ScanKind} >= set(KINDS) | {"connect"}


def test_replies_and_connections_are_not_probes() -> None:
    from scapy.layers.inet import IP, TCP

    for flags in ["R", "RA", "SA", "PA"]:
        raw = bytes(IP(src=ATTACKER4, dst=VICTIM4) / TCP(dport=22, flags=flags))
        assert portsentry.classify(raw, link="raw") is None, flags
    # A later fragment carries no ports.
    later = bytes(IP(src=ATTACKER4, dst=VICTIM4, proto=6, frag=3) / b"12345678")
    assert portsentry.classify(later, link="raw") is None


def test_ipv4_options_are_noted() -> None:
    from scapy.layers.inet import IP, TCP, IPOption_NOP

    raw = bytes(IP(src=ATTACKER4, dst=VICTIM4, options=[IPOption_NOP()] * 4) / TCP(dport=1, flags="S"))
    probe = portsentry.classify(raw, link="raw")
    assert probe is not None and probe.ip_options is True


def _with_link(link: str, version: int, ip: bytes) -> bytes:
    ethertype = 0x0800 if version == 4 else 0x86DD
    family = 2 if version == 4 else 10
    if link in ("raw_ip", "raw", "ipv4", "ipv6", "cooked_l3", "cooked"):
        return ip
    if link == "ethernet":
        return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + ip
    if link in ("linux_sll", "sll"):
        # packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8, protocol.
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6, ethertype) + ip
    if link in ("linux_sll2", "sll2"):
        # protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
        return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, b"\x02" * 6) + ip
    if link == "null":
        return struct.pack("<I", family) + ip
    if link == "loop":
        return struct.pack("!I", family) + ip
    raise AssertionError(link)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("link", LINK_NAMES)
def test_every_link_type(link: str, version: int) -> None:
    data = _with_link(link, version, packet("fin", 79, version))
    probe = portsentry.classify(data, link=link)
    assert probe is not None, link
    assert probe.kind == ScanKind.FIN and probe.destination_port == 79


@pytest.mark.parametrize(("number", "link"), [(1, "ethernet"), (101, "raw"), (113, "linux_sll"), (276, "linux_sll2"), (0, "null"), (108, "loop")])
def test_pcap_linktype_numbers(number: int, link: str) -> None:
    data = _with_link(link, 4, packet("syn", 1, 4))
    assert portsentry.classify(data, link=number) == portsentry.classify(data, link=link)


def test_outgoing_cooked_frames_are_skipped() -> None:
    ip = packet("syn", 1, 4)
    outgoing = struct.pack("!HHH8sH", 4, 1, 6, b"\x02" * 6, 0x0800) + ip
    assert portsentry.classify(outgoing, link="linux_sll") is None


def test_unknown_link_is_an_argument_error() -> None:
    with pytest.raises(portsentry.ArgumentError, match="unknown link type"):
        portsentry.classify(b"", link="token-ring")  # type: ignore[arg-type]
    with pytest.raises(portsentry.ArgumentError, match="unsupported pcap link type 9"):
        portsentry.classify(b"", link=9)
    # Also a ValueError and a PortsentryError, as documented.
    assert issubclass(portsentry.ArgumentError, ValueError)
    assert issubclass(portsentry.ArgumentError, portsentry.PortsentryError)


def test_probe_values_compare_and_hash() -> None:
    a = portsentry.classify(frame("syn", 1), ts=5.0)
    b = portsentry.classify(frame("syn", 1), ts=5.0)
    c = portsentry.classify(frame("syn", 2), ts=5.0)
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert repr(a) == (
        "Probe(source='203.0.113.1', destination='203.0.113.2', protocol='tcp', "
        "source_port=40000, destination_port=1, kind='syn', at=5.000000)"
    )


def test_probe_built_by_hand() -> None:
    p = Probe("2001:db8::1", "2001:db8::2", 53, "udp", at=3.5)
    assert p.protocol == Protocol.UDP and p.kind == ScanKind.UDP and p.at == 3.5
    other = Probe("192.0.2.1", "192.0.2.2", 1, "other", flags=0x03)
    assert other.flags == 3
    for bad in [
        lambda: Probe("nope", "192.0.2.2", 1, "syn"),
        lambda: Probe("192.0.2.1", "192.0.2.2", 1, "sideways"),
        lambda: Probe("192.0.2.1", "192.0.2.2", 1, "other"),
        lambda: Probe("192.0.2.1", "192.0.2.2", 1, "syn", flags=2),
    ]:
        with pytest.raises(portsentry.ArgumentError):
            bad()


@given(st.binary(max_size=1600), st.sampled_from(LINK_NAMES))
def test_garbage_never_raises(data: bytes, link: str) -> None:
    result = portsentry.classify(data, link=link, ts=1.0)
    assert result is None or isinstance(result, Probe)


@given(st.sampled_from(KINDS), st.sampled_from([4, 6]), st.data())
def test_damaged_probes_never_raise(kind: str, version: int, data: st.DataObject) -> None:
    original = bytearray(frame(kind, 1, version))
    cut = data.draw(st.integers(0, len(original)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=4))
    for index, value in flips:
        original[index] = value
    result = portsentry.classify(bytes(original[:cut]))
    assert result is None or isinstance(result, Probe)


@given(st.binary(max_size=1600), st.floats(allow_nan=True, allow_infinity=True))
def test_detector_feed_on_garbage_never_raises(data: bytes, ts: float) -> None:
    events = portsentry.Detector(scan_trigger=2).feed(data, ts=ts, link="raw")
    assert all(isinstance(e, portsentry.Event) for e in events)
