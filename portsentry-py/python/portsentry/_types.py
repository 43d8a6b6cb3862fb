"""The vocabulary shared by the native module and Python code: string enums, messages, errors.

The native module (``portsentry._portsentry``) builds these objects; they are plain Python so
that they subclass ``str``/``int``/``Exception`` naturally and read well in tracebacks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from portsentry._portsentry import Alert, Released, ReplayReport


class _StrEnum(str, enum.Enum):
    """A string enum whose ``str()`` is its value (like ``enum.StrEnum``, on Python 3.9 too)."""

    def __str__(self) -> str:
        return str(self.value)


class ScanKind(_StrEnum):
    """What kind of probe a packet is (Rust ``ScanKind``)."""

    SYN = "syn"
    """SYN only (nmap -sS; also the SYN of a full connect seen by a packet sensor)."""
    FIN = "fin"
    """FIN only (nmap -sF)."""
    NULL = "null"
    """No flags at all (nmap -sN)."""
    XMAS = "xmas"
    """FIN+PSH+URG (nmap -sX)."""
    MAIMON = "maimon"
    """FIN+ACK (nmap -sM)."""
    ACK = "ack"
    """A bare ACK (nmap -sA, -sW)."""
    OTHER = "other"
    """Any other flag combination without ACK and RST, e.g. SYN+FIN (see ``Probe.flags``)."""
    FRAGMENT = "fragment"
    """A first IP fragment too short to carry the TCP flags (nmap -f)."""
    UDP = "udp"
    """A UDP datagram."""
    CONNECT = "connect"
    """A completed TCP handshake on a connect-mode listener."""


class Protocol(_StrEnum):
    """The transport protocol of a probe."""

    TCP = "tcp"
    UDP = "udp"


class Mode(_StrEnum):
    """A detection mode, as PortSentry names them (the ``$MODE$`` token)."""

    TCP = "tcp"
    """Connect mode: a listening socket per port."""
    UDP = "udp"
    """Connect mode for UDP."""
    STCP = "stcp"
    """Stealth TCP: packet capture of the listed ports."""
    SUDP = "sudp"
    """Stealth UDP: packet capture of the listed ports."""
    ATCP = "atcp"
    """Advanced stealth TCP: every port below ``advanced_ports_tcp`` minus exclusions."""
    AUDP = "audp"
    """Advanced stealth UDP."""


class IgnoreReason(_StrEnum):
    """Why a source is never counted or blocked."""

    IGNORE_FILE = "ignore_file"
    OWN_ADDRESS = "own_address"
    GATEWAY = "gateway"
    RESOLVER = "resolver"
    LOOPBACK = "loopback"


class EventKind(_StrEnum):
    """The kind of a detector event (``Event.kind``)."""

    NOT_MONITORED = "not_monitored"
    IGNORED = "ignored"
    BELOW_TRIGGER = "below_trigger"
    ALERT = "alert"
    ALREADY_BLOCKED = "already_blocked"
    ALREADY_ALERTED = "already_alerted"
    RELEASED = "released"


class BlockMode(enum.IntEnum):
    """What to do when a source crosses the trigger (``BLOCK_TCP`` / ``BLOCK_UDP``)."""

    LOG_ONLY = 0
    """Log only; nothing is recorded as blocked."""
    BLOCK = 1
    """Run the blocking actions (for a Python detector: its responders)."""
    RUN_COMMAND_ONLY = 2
    """Run ``KILL_RUN_CMD`` only."""

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Located:
    """A configuration problem or warning and where it was found: ``file:line: KEY: message``."""

    file: Optional[str]
    """The file name as given (or a label such as ``<string>``); None for keyword overrides."""
    line: Optional[int]
    """The 1-based line number, when the message belongs to one line."""
    key: Optional[str]
    """The configuration key (or keyword argument) it is about, when there is one."""
    message: str
    """What is wrong."""

    def __str__(self) -> str:
        text = self.file or "<arguments>"
        if self.line is not None:
            text += f":{self.line}"
        if self.key is not None:
            text += f": {self.key}"
        return f"{text}: {self.message}"


class PortsentryError(Exception):
    """Base class of every error raised by portsentry."""


class ArgumentError(PortsentryError, ValueError):
    """An argument has a value portsentry cannot use (an unknown link name, a bad address)."""


class ConfigError(PortsentryError):
    """A configuration (file, text or keyword overrides) is invalid or unreadable.

    ``file``, ``line`` and ``key`` locate the first problem; ``problems`` lists all of them.
    """

    file: Optional[str]
    line: Optional[int]
    key: Optional[str]
    problems: Tuple[Located, ...]
    warnings: Tuple[Located, ...]

    def __init__(
        self,
        message: str,
        *,
        file: Optional[str] = None,
        line: Optional[int] = None,
        key: Optional[str] = None,
        problems: Sequence[Located] = (),
        warnings: Sequence[Located] = (),
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.key = key
        self.problems = tuple(problems)
        self.warnings = tuple(warnings)


class CaptureFileError(PortsentryError):
    """A capture file cannot be opened or read (missing, not pcap/pcapng, cut short, corrupt).

    ``events`` holds the events of the frames before the unreadable record (those that
    ``replay`` would have returned), and ``report`` the ``ReplayReport`` of those frames (what
    ``replay_report`` would have returned for them; ``None`` when the file could not be opened
    at all), so a capture that was cut off loses nothing.
    """

    path: str
    events: list[Any]
    report: Optional[ReplayReport]

    def __init__(
        self,
        message: str,
        *,
        path: str,
        events: Sequence[Any] = (),
        report: Optional[ReplayReport] = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.events = list(events)
        self.report = report


@dataclass(frozen=True)
class ResponderFailure:
    """One responder call that raised."""

    responder: Any
    """The responder (callable or ``Responder``) that raised."""
    event: Any
    """The ``Alert`` or ``Released`` event it was called with."""
    error: Exception
    """What it raised."""


class ResponderError(PortsentryError):
    """One or more responders raised while a detector handled a frame or probe.

    Every responder still ran, and the detector's state is updated (a failed block is not
    recorded). ``events`` holds what the call would have returned, ``failures`` every failed
    call; ``__cause__`` is the first responder's exception.
    """

    events: list[Any]
    failures: Tuple[ResponderFailure, ...]

    def __init__(
        self,
        message: str,
        *,
        events: Sequence[Any] = (),
        failures: Sequence[ResponderFailure] = (),
    ) -> None:
        super().__init__(message)
        self.events = list(events)
        self.failures = tuple(failures)


class SensorError(PortsentryError):
    """A live ``Sensor`` cannot start (other than for missing privileges, which is a
    ``PermissionError``) or was used out of order."""


class Responder:
    """Base class for responders with separate alert and release handlers.

    Register an instance with ``Detector(responders=[...])``, ``Detector.add_responder`` or
    ``Sensor(responders=[...])``. Any plain callable works too: it receives every ``Alert``
    and ``Released`` event.

    On a ``Sensor``, a subclass that sets ``blocking = True`` is a blocking responder: the
    source counts as blocked only when its ``on_alert`` returned (an exception, or no return
    within the sensor's ``callback_timeout``, is a failed block and the source may alert
    again), and ``on_release`` is its undo.
    """

    blocking: bool = False
    """On a ``Sensor``: whether this responder's success decides that a source is blocked."""

    def on_alert(self, alert: Alert) -> None:
        """Called for each alert. The default does nothing."""

    def on_release(self, release: Released) -> None:
        """Called when a block expires. The default does nothing."""


__all__ = [
    "ArgumentError",
    "BlockMode",
    "CaptureFileError",
    "ConfigError",
    "EventKind",
    "IgnoreReason",
    "Located",
    "Mode",
    "PortsentryError",
    "Protocol",
    "Responder",
    "ResponderError",
    "ResponderFailure",
    "ScanKind",
    "SensorError",
]
