"""The live sensor of the namespace tests (run by ``netlab.SensorChild`` under
``ip netns exec``): writes JSON lines (``ready``, ``call``, ``event``, ``status``,
``stopped``) and obeys ``status`` and ``stop`` lines on stdin.

Usage: sensor_child.py SCENARIO STATE_DIR, SCENARIO one of ``plain``, ``slow``,
``blocking``, ``flood``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import portsentry

_lock = threading.Lock()


def emit(item: dict[str, Any]) -> None:
    with _lock:
        print(json.dumps(item), flush=True)


def describe(event: Any) -> dict[str, Any]:
    if isinstance(event, portsentry.Alert):
        return {
            "kind": "alert",
            "source": str(event.probe.source),
            "scan": str(event.probe.kind),
            "port": event.probe.destination_port,
            "mode": str(event.mode),
            "t": time.monotonic(),
        }
    return {"kind": str(event.kind), "address": str(event.address), "t": time.monotonic()}


def collect(event: Any) -> None:
    emit({"type": "call", "responder": "collect", **describe(event)})


def raising(event: Any) -> None:
    emit({"type": "call", "responder": "raising", **describe(event)})
    raise RuntimeError("webhook down")


class Sleeping(portsentry.Responder):
    def on_alert(self, alert: portsentry.Alert) -> None:
        emit({"type": "call", "responder": "sleeping", **describe(alert)})
        time.sleep(10)


class Firewall(portsentry.Responder):
    """A blocking responder: "blocks" 203.0.113.2, refuses 203.0.113.3."""

    blocking = True

    def on_alert(self, alert: portsentry.Alert) -> None:
        emit({"type": "call", "responder": "firewall", **describe(alert)})
        if str(alert.probe.source) == "203.0.113.3":
            raise RuntimeError("cloud firewall refused")

    def on_release(self, release: portsentry.Released) -> None:
        emit({"type": "call", "responder": "firewall", **describe(release)})


def status_dict(status: portsentry.SensorStatus) -> dict[str, Any]:
    names = [n for n in dir(status) if not n.startswith("_")]
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(status, name)
        if name == "responders":
            value = [
                {k: getattr(r, k) for k in dir(r) if not k.startswith("_")} for r in value
            ]
        out[name] = value
    return out


def main() -> None:
    scenario, state_dir = sys.argv[1], sys.argv[2]
    responders: list[Any] = [collect]
    block = 0
    block_timeout = None
    if scenario == "slow":
        responders = [raising, Sleeping(), collect]
    elif scenario == "blocking":
        responders = [Firewall(), collect]
        block = 1
        block_timeout = 6.0
    try:
        sensor = portsentry.Sensor(
            modes=["stcp"],
            # The plain scenario captures on the veth only; the others on every interface.
            interface="pspyv0" if scenario == "plain" else None,
            responders=responders,
            state_dir=state_dir,
            tcp_ports=[1, 11, 15, 79, 111],
            scan_trigger=2,
            block_tcp=block,
            block_udp=0,
            block_timeout=block_timeout,
            max_tracked_sources=4096,
        )
        sensor.start()
    except Exception as error:  # reported to the test, which fails with it
        emit({"type": "error", "error": f"{type(error).__name__}: {error}"})
        return
    emit({"type": "ready"})

    def commands() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "status":
                emit({"type": "status", **status_dict(sensor.status())})
            elif command == "stop":
                started = time.monotonic()
                final = sensor.stop()
                emit({"type": "stopped", "seconds": time.monotonic() - started,
                      **status_dict(final)})
                return

    answering = threading.Thread(target=commands, daemon=True)
    answering.start()
    with sensor:
        for event in sensor.events(timeout=None):
            emit({"type": "event", **describe(event)})
    # The iteration ends when "stop" closed it: let that command answer before exiting.
    answering.join(timeout=30)


if __name__ == "__main__":
    main()
