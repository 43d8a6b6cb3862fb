# Hand-written stubs of the native module; checked with `python -m mypy.stubtest portsentry._portsentry`.
import ipaddress
import os
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Literal, Optional, Union, final

from typing_extensions import disjoint_base

from portsentry._types import (
    BlockMode,
    EventKind,
    IgnoreReason,
    Located,
    Mode,
    Protocol,
    Responder,
    ScanKind,
)

__version__: str
__all__ = [
    "__version__",
    "Alert",
    "AlreadyAlerted",
    "AlreadyBlocked",
    "BelowTrigger",
    "Config",
    "Detector",
    "Event",
    "Ignored",
    "NotMonitored",
    "Probe",
    "Ports",
    "Released",
    "ReplayReport",
    "ReplaySummary",
    "ResponderStatus",
    "Sensor",
    "SensorEvents",
    "SensorStatus",
    "SourceReport",
    "classify",
    "replay",
    "replay_report",
]

_LinkName = Literal[
    "ethernet",
    "raw_ip",
    "raw",
    "ipv4",
    "ipv6",
    "linux_sll",
    "sll",
    "linux_sll2",
    "sll2",
    "null",
    "loop",
    "cooked_l3",
    "cooked",
]
"""A link-layer name; a pcap ``LINKTYPE_*`` number (``int``) is accepted too."""

_ModeName = Literal["tcp", "udp", "stcp", "sudp", "atcp", "audp"]
_PortStateName = Literal["closed", "open", "unreachable", "filtered", "unknown"]
_EventKindName = Literal[
    "not_monitored",
    "ignored",
    "below_trigger",
    "alert",
    "already_blocked",
    "already_alerted",
    "released",
]
_StrPath = Union[str, os.PathLike[str]]
_AddressOrNetwork = Union[
    str,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
]
_PortList = Union[str, Iterable[int]]
_ResponderLike = Union[Responder, Callable[[Union[Alert, Released]], object]]

@final
class Probe:
    def __new__(
        cls,
        source: str,
        destination: str,
        destination_port: int,
        kind: str,
        *,
        source_port: int = 0,
        at: float = 0.0,
        ip_options: bool = False,
        flags: Optional[int] = None,
    ) -> Probe: ...
    @property
    def source(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def protocol(self) -> Protocol: ...
    @property
    def source_port(self) -> int: ...
    @property
    def destination_port(self) -> int: ...
    @property
    def kind(self) -> ScanKind: ...
    @property
    def flags(self) -> Optional[int]: ...
    @property
    def ip_options(self) -> bool: ...
    @property
    def at(self) -> float: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def classify(
    frame: bytes, *, link: Union[_LinkName, int] = ..., ts: float = 0.0
) -> Optional[Probe]: ...

@final
class Config:
    @staticmethod
    def default() -> Config: ...
    @staticmethod
    def load(path: _StrPath) -> Config: ...
    @staticmethod
    def parse(text: str, origin: str = "<string>") -> Config: ...
    def replace(
        self,
        *,
        tcp_ports: Union[str, Iterable[int]] = ...,
        udp_ports: Union[str, Iterable[int]] = ...,
        advanced_ports_tcp: int = ...,
        advanced_ports_udp: int = ...,
        advanced_exclude_tcp: Union[str, Iterable[int]] = ...,
        advanced_exclude_udp: Union[str, Iterable[int]] = ...,
        scan_trigger: int = ...,
        scan_window: float = ...,
        max_tracked_sources: int = ...,
        block_tcp: int = ...,
        block_udp: int = ...,
        block_timeout: Optional[float] = ...,
        detect_ack_scans: bool = ...,
        never_block_infrastructure: bool = ...,
        scan_trigger_mode: Literal["count", "trw"] = ...,
    ) -> Config: ...
    @property
    def warnings(self) -> tuple[Located, ...]: ...
    @property
    def tcp_ports(self) -> frozenset[int]: ...
    @property
    def udp_ports(self) -> frozenset[int]: ...
    @property
    def advanced_ports_tcp(self) -> int: ...
    @property
    def advanced_ports_udp(self) -> int: ...
    @property
    def advanced_exclude_tcp(self) -> frozenset[int]: ...
    @property
    def advanced_exclude_udp(self) -> frozenset[int]: ...
    @property
    def ignore_file(self) -> Optional[str]: ...
    @property
    def history_file(self) -> Optional[str]: ...
    @property
    def history_format(self) -> Literal["classic", "v2", "json"]: ...
    @property
    def scan_trigger_mode(self) -> Literal["count", "trw"]: ...
    @property
    def blocked_file(self) -> Optional[str]: ...
    @property
    def resolve_host(self) -> bool: ...
    @property
    def block_tcp(self) -> BlockMode: ...
    @property
    def block_udp(self) -> BlockMode: ...
    @property
    def kill_route(self) -> Optional[str]: ...
    @property
    def kill_hosts_deny(self) -> Optional[str]: ...
    @property
    def kill_run_cmd(self) -> Optional[str]: ...
    @property
    def kill_run_cmd_first(self) -> bool: ...
    @property
    def unblock_cmd(self) -> Optional[str]: ...
    @property
    def hosts_deny_file(self) -> str: ...
    @property
    def scan_trigger(self) -> int: ...
    @property
    def scan_window(self) -> float: ...
    @property
    def max_tracked_sources(self) -> int: ...
    @property
    def block_timeout(self) -> Optional[float]: ...
    @property
    def detect_ack_scans(self) -> bool: ...
    @property
    def never_block_infrastructure(self) -> bool: ...
    @property
    def nft_set(self) -> Optional[str]: ...
    @property
    def port_banner(self) -> Optional[str]: ...
    def __eq__(self, value: object, /) -> bool: ...

@disjoint_base
class Event:
    @property
    def kind(self) -> EventKind: ...

@final
class NotMonitored(Event):
    @property
    def probe(self) -> Probe: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Ignored(Event):
    @property
    def probe(self) -> Probe: ...
    @property
    def reason(self) -> IgnoreReason: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class BelowTrigger(Event):
    @property
    def probe(self) -> Probe: ...
    @property
    def distinct_ports(self) -> int: ...
    @property
    def trigger(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Alert(Event):
    @property
    def probe(self) -> Probe: ...
    @property
    def mode(self) -> Mode: ...
    @property
    def distinct_ports(self) -> int: ...
    @property
    def response(self) -> BlockMode: ...
    @property
    def port_state(self) -> _PortStateName: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class AlreadyBlocked(Event):
    @property
    def probe(self) -> Probe: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class AlreadyAlerted(Event):
    @property
    def probe(self) -> Probe: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Released(Event):
    @property
    def address(self) -> str: ...
    @property
    def blocked_at(self) -> float: ...
    @property
    def released_at(self) -> float: ...
    @property
    def mode(self) -> Mode: ...
    @property
    def port(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Detector:
    def __new__(
        cls,
        config: Optional[Config] = None,
        *,
        modes: Union[_ModeName, Iterable[str], None] = None,
        ignore: Optional[Iterable[str]] = None,
        responders: Optional[Iterable[_ResponderLike]] = None,
        tcp_ports: Union[str, Iterable[int]] = ...,
        udp_ports: Union[str, Iterable[int]] = ...,
        advanced_ports_tcp: int = ...,
        advanced_ports_udp: int = ...,
        advanced_exclude_tcp: Union[str, Iterable[int]] = ...,
        advanced_exclude_udp: Union[str, Iterable[int]] = ...,
        scan_trigger: int = ...,
        scan_window: float = ...,
        max_tracked_sources: int = ...,
        block_tcp: int = ...,
        block_udp: int = ...,
        block_timeout: Optional[float] = ...,
        detect_ack_scans: bool = ...,
        never_block_infrastructure: bool = ...,
        scan_trigger_mode: Literal["count", "trw"] = ...,
    ) -> Detector: ...
    def feed(
        self, frame: bytes, *, ts: float, link: Union[_LinkName, int] = ...
    ) -> list[Event]: ...
    def observe(self, probe: Probe) -> list[Event]: ...
    def expire(self, *, ts: float) -> list[Event]: ...
    def add_responder(self, responder: _ResponderLike) -> None: ...
    @property
    def responders(self) -> tuple[_ResponderLike, ...]: ...
    def is_blocked(self, address: str) -> bool: ...
    @property
    def config(self) -> Config: ...
    @property
    def modes(self) -> tuple[Mode, ...]: ...
    @property
    def stats(self) -> dict[str, int]: ...

def replay(
    path: _StrPath,
    config: Optional[Config] = None,
    modes: Union[_ModeName, Iterable[str], None] = None,
    *,
    kinds: Optional[Iterable[_EventKindName]] = ...,
    ignore: Optional[Iterable[_AddressOrNetwork]] = None,
    own_addresses: Optional[Iterable[_AddressOrNetwork]] = None,
    listening_tcp: Optional[_PortList] = None,
    listening_udp: Optional[_PortList] = None,
) -> list[Event]: ...
def replay_report(
    path: _StrPath,
    config: Optional[Config] = None,
    modes: Union[_ModeName, Iterable[str], None] = None,
    *,
    kinds: Optional[Iterable[_EventKindName]] = ...,
    ignore: Optional[Iterable[_AddressOrNetwork]] = None,
    own_addresses: Optional[Iterable[_AddressOrNetwork]] = None,
    listening_tcp: Optional[_PortList] = None,
    listening_udp: Optional[_PortList] = None,
) -> ReplayReport: ...

@final
class Ports:
    @property
    def tcp(self) -> tuple[int, ...]: ...
    @property
    def udp(self) -> tuple[int, ...]: ...
    def __len__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class SourceReport:
    @property
    def source(self) -> str: ...
    @property
    def alerts(self) -> list[Alert]: ...
    @property
    def probes(self) -> int: ...
    @property
    def ports_probed(self) -> Ports: ...
    @property
    def ports_counted(self) -> Ports: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class ReplaySummary:
    @property
    def frames(self) -> int: ...
    @property
    def first_frame_at(self) -> Optional[float]: ...
    @property
    def last_frame_at(self) -> Optional[float]: ...
    @property
    def probes(self) -> int: ...
    @property
    def probes_by_kind(self) -> dict[str, int]: ...
    @property
    def skips(self) -> dict[str, int]: ...
    @property
    def not_to_host(self) -> int: ...
    @property
    def events_by_kind(self) -> dict[str, int]: ...
    @property
    def sources(self) -> list[SourceReport]: ...
    def source(self, address: Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address]) -> Optional[SourceReport]: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class ReplayReport:
    @property
    def events(self) -> list[Event]: ...
    @property
    def summary(self) -> ReplaySummary: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class ResponderStatus:
    """One Python responder's counters in a ``SensorStatus``."""

    @property
    def name(self) -> str: ...
    @property
    def calls(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def abandoned(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def busy(self) -> bool: ...
    @property
    def last_error(self) -> Optional[str]: ...

@final
class SensorStatus:
    """A snapshot of a live ``Sensor``: counters, blocks, drops, responder results."""

    @property
    def running(self) -> bool: ...
    @property
    def failure(self) -> Optional[str]: ...
    @property
    def modes(self) -> list[str]: ...
    @property
    def frames(self) -> int: ...
    @property
    def kernel_drops(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def capture_errors(self) -> int: ...
    @property
    def alerts(self) -> int: ...
    @property
    def ignored(self) -> int: ...
    @property
    def below_trigger(self) -> int: ...
    @property
    def not_monitored(self) -> int: ...
    @property
    def already_blocked(self) -> int: ...
    @property
    def already_alerted(self) -> int: ...
    @property
    def limited(self) -> int: ...
    @property
    def tracked_sources(self) -> int: ...
    @property
    def tracker_capacity(self) -> int: ...
    @property
    def blocks(self) -> list[str]: ...
    @property
    def block_failures(self) -> int: ...
    @property
    def dispatch_dropped(self) -> int: ...
    @property
    def events_dropped(self) -> int: ...
    @property
    def responders(self) -> list[ResponderStatus]: ...
    @property
    def errors(self) -> int: ...
    @property
    def messages(self) -> list[str]: ...
    @property
    def log(self) -> list[str]: ...
    @property
    def rss_bytes(self) -> int: ...

@final
class SensorEvents:
    """The iterator ``Sensor.events()`` returns: ``Alert`` and ``Released`` events."""

    def __iter__(self) -> SensorEvents: ...
    def __next__(self) -> Event: ...

@final
class Sensor:
    """The daemon's live engine on its own threads, calling Python responders."""

    def __new__(
        cls,
        config: Optional[Config] = None,
        *,
        modes: Union[_ModeName, Iterable[str], None] = None,
        interface: Optional[str] = None,
        responders: Optional[Iterable[_ResponderLike]] = None,
        ignore: Optional[Iterable[_AddressOrNetwork]] = None,
        state_dir: Optional[_StrPath] = None,
        callback_timeout: float = 1.0,
        queue_size: int = 1024,
        tcp_ports: Union[str, Iterable[int]] = ...,
        udp_ports: Union[str, Iterable[int]] = ...,
        advanced_ports_tcp: int = ...,
        advanced_ports_udp: int = ...,
        advanced_exclude_tcp: Union[str, Iterable[int]] = ...,
        advanced_exclude_udp: Union[str, Iterable[int]] = ...,
        scan_trigger: int = ...,
        scan_window: float = ...,
        max_tracked_sources: int = ...,
        block_tcp: int = ...,
        block_udp: int = ...,
        block_timeout: Optional[float] = ...,
        detect_ack_scans: bool = ...,
        never_block_infrastructure: bool = ...,
    ) -> Sensor: ...
    def start(self) -> Sensor: ...
    def stop(self) -> SensorStatus: ...
    def status(self) -> SensorStatus: ...
    def events(self, timeout: Optional[float] = None) -> SensorEvents: ...
    def wait(self, timeout: Optional[float] = None) -> bool: ...
    @property
    def running(self) -> bool: ...
    def __enter__(self) -> Sensor: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...
