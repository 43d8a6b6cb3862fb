"""Port-scan detection: classify packets, replay captures, script responses.

The work is done by the Rust library ``portsentry-core``; this package exposes it with typed
classes. The names mirror the Rust ones::

    import portsentry

    for alert in portsentry.replay("nmap-syn.pcap"):
        print(alert.probe.source, alert.probe.kind, alert.distinct_ports)

* ``classify(frame, link=..., ts=...)`` -> ``Probe`` or None;
* ``Config.load(path)`` / ``Config.parse(text)`` / ``Config.default()``;
* ``Detector(config, responders=[...], **overrides)`` with ``feed(frame, ts=...)`` and
  ``observe(probe)``, returning ``Event`` objects (``Alert``, ``BelowTrigger``, ...);
* ``replay(path, config, modes, own_addresses=..., listening_tcp=...)`` over pcap and pcapng
  files (the library's offline replay: log only), and ``replay_report(...)`` for the events
  with a ``ReplaySummary`` (frames, probes, skips, alerting sources and their ports);
* ``Sensor(config, modes=..., responders=[...])``: the daemon's live engine (capture with the
  kernel filter, connect listeners, block table) on its own threads, calling Python responders;
  ``with Sensor(...) as s: for event in s.events(timeout=1.0): ...``, ``s.status()``;
* every error is a ``PortsentryError`` (a missing capability is a ``PermissionError``).
"""

from portsentry._portsentry import (
    Alert,
    AlreadyAlerted,
    AlreadyBlocked,
    BelowTrigger,
    Config,
    Detector,
    Event,
    Ignored,
    NotMonitored,
    Ports,
    Probe,
    Released,
    ReplayReport,
    ReplaySummary,
    ResponderStatus,
    Sensor,
    SensorEvents,
    SensorStatus,
    SourceReport,
    __version__,
    classify,
    replay,
    replay_report,
)
from portsentry._types import (
    ArgumentError,
    BlockMode,
    CaptureFileError,
    ConfigError,
    EventKind,
    IgnoreReason,
    Located,
    Mode,
    PortsentryError,
    Protocol,
    Responder,
    ResponderError,
    ResponderFailure,
    ScanKind,
    SensorError,
)

__all__ = [
    "Alert",
    "AlreadyAlerted",
    "AlreadyBlocked",
    "ArgumentError",
    "BelowTrigger",
    "BlockMode",
    "CaptureFileError",
    "Config",
    "ConfigError",
    "Detector",
    "Event",
    "EventKind",
    "IgnoreReason",
    "Ignored",
    "Located",
    "Mode",
    "NotMonitored",
    "Ports",
    "PortsentryError",
    "Probe",
    "Protocol",
    "Released",
    "ReplayReport",
    "ReplaySummary",
    "Responder",
    "ResponderError",
    "ResponderFailure",
    "ResponderStatus",
    "ScanKind",
    "Sensor",
    "SensorError",
    "SensorEvents",
    "SensorStatus",
    "SourceReport",
    "__version__",
    "classify",
    "replay",
    "replay_report",
]
