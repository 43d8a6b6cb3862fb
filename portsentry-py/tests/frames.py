"""Test helpers: frames crafted with scapy, and where the shared real captures are."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw

ATTACKER4 = "203.0.113.1"
VICTIM4 = "203.0.113.2"
ATTACKER6 = "2001:db8:113::1"
VICTIM6 = "2001:db8:113::2"

# Explicit MAC addresses: scapy would otherwise look them up.
_ETHER = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}

# The TCP flags scapy writes for each kind that is a plain flag combination.
TCP_KIND_FLAGS = {
    "syn": "S",
    "fin": "F",
    "null": "",
    "xmas": "FPU",
    "maimon": "FA",
    "ack": "A",
    "other": "SF",
}


def ip_layer(version: int, src: Optional[str] = None, dst: Optional[str] = None) -> Any:
    """An IPv4 or IPv6 header from the attacker to the victim (or the given addresses)."""
    if version == 4:
        return IP(src=src or ATTACKER4, dst=dst or VICTIM4)
    return IPv6(src=src or ATTACKER6, dst=dst or VICTIM6)


def packet(kind: str, port: int, version: int = 4, src: Optional[str] = None) -> bytes:
    """The IP packet (no link header) of one probe of `kind` to `port`."""
    if kind == "udp":
        return bytes(ip_layer(version, src) / UDP(sport=40000, dport=port) / b"x")
    if kind == "fragment":
        # A first fragment that carries only the first 8 bytes of the TCP header: ports and
        # sequence number, not the flags (RFC 1858; what nmap -f sends).
        head = bytes(TCP(sport=40000, dport=port, flags="S"))[:8]
        if version == 4:
            return bytes(IP(src=src or ATTACKER4, dst=VICTIM4, proto=6, flags="MF", frag=0) / Raw(head))
        return bytes(
            IPv6(src=src or ATTACKER6, dst=VICTIM6)
            / IPv6ExtHdrFragment(nh=6, m=1, offset=0, id=7)
            / Raw(head)
        )
    flags = TCP_KIND_FLAGS[kind]
    return bytes(ip_layer(version, src) / TCP(sport=40000, dport=port, flags=flags, window=1024))


def frame(kind: str, port: int, version: int = 4, src: Optional[str] = None) -> bytes:
    """The Ethernet frame of one probe of `kind` to `port`."""
    ethertype = 0x0800 if version == 4 else 0x86DD
    return bytes(Ether(type=ethertype, **_ETHER)) + packet(kind, port, version, src)


def syn(port: int, src: str = ATTACKER4) -> bytes:
    """An Ethernet SYN frame to `port`."""
    version = 6 if ":" in src else 4
    return frame("syn", port, version, src)


def _find_captures() -> Optional[Path]:
    env = os.environ.get("PORTSENTRY_CAPTURES")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    for directory in repo_root.parents:
        candidate = directory / "shared" / "captures"
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


CAPTURES: Optional[Path] = _find_captures()
CAPTURES_MISSING = (
    "the shared captures were not found: expected ../shared/captures/manifest.json beside the "
    "repository (or one of its parent directories), or set PORTSENTRY_CAPTURES"
)


def manifest() -> dict[str, Any]:
    """The captures' ground truth (an empty one when they are missing; see test_replay)."""
    if CAPTURES is None:
        return {"captures": {}}
    with open(CAPTURES / "manifest.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
