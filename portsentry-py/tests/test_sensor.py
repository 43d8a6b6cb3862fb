"""The ``Sensor``'s Python shapes without a namespace: connect mode on loopback (no root
needed), argument checks, Ctrl-C, and the ``PermissionError`` without ``CAP_NET_RAW``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import portsentry


def free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::", 0))
        port: int = s.getsockname()[1]
        return port


def test_connect_mode_on_loopback_runs_reports_and_stops_quickly(tmp_path: Path) -> None:
    port = free_port()
    seen: list[object] = []
    with portsentry.Sensor(
        modes="tcp", tcp_ports=[port], state_dir=tmp_path, responders=[seen.append]
    ) as sensor:
        assert sensor.running
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        deadline = time.monotonic() + 5
        while sensor.status().ignored == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = sensor.status()
        assert isinstance(status, portsentry.SensorStatus)
        assert status.running and status.modes == ["tcp"]
        # Loopback is protected: counted, never an alert, nothing for the responders.
        assert status.ignored == 1 and status.alerts == 0
        assert list(sensor.events(timeout=0.2)) == []
        assert [r.name for r in status.responders] == ["list.append"]
        assert status.rss_bytes > 0
        started = time.monotonic()
        final = sensor.stop()
        assert time.monotonic() - started < 1.0
    assert seen == []
    assert not final.running and not sensor.running
    assert "Going into listen mode (connect) (tcp)" in "\n".join(final.messages)
    # The block table is written in the state directory given.
    assert (tmp_path / "portsentry.blocked").exists()


def test_bad_arguments_are_named() -> None:
    with pytest.raises(portsentry.ConfigError) as error:
        portsentry.Sensor(callback_timeout=0)
    assert error.value.key == "callback_timeout"
    with pytest.raises(portsentry.ConfigError) as error:
        portsentry.Sensor(queue_size=0)
    assert error.value.key == "queue_size"
    with pytest.raises(TypeError, match="callable"):
        portsentry.Sensor(responders=[42])  # type: ignore[list-item]
    sensor = portsentry.Sensor(modes="tcp")
    with pytest.raises(portsentry.SensorError, match="not started"):
        sensor.status()
    with pytest.raises(portsentry.SensorError, match="not started"):
        sensor.stop()


def test_started_twice_is_refused(tmp_path: Path) -> None:
    with portsentry.Sensor(modes="tcp", tcp_ports=[free_port()], state_dir=tmp_path) as s:
        with pytest.raises(portsentry.SensorError, match="already started"):
            s.start()


def _child(code: str, *prefix: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    code = f"""
        import portsentry
        try:
            with portsentry.Sensor(modes="tcp", tcp_ports=[{free_port()}],
                                   state_dir={str(tmp_path)!r}) as s:
                print("ready", flush=True)
                for event in s.events():
                    pass
        except KeyboardInterrupt:
            print("stopped", s.running, s.status().running, flush=True)
    """
    child = _child(code)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=10)
    assert out.strip() == "stopped False False", err
    assert child.returncode == 0, err


def test_without_cap_net_raw_start_raises_permission_error(tmp_path: Path) -> None:
    code = f"""
        import portsentry
        try:
            portsentry.Sensor(modes=["stcp"], state_dir={str(tmp_path)!r}).start()
        except PermissionError as error:
            print("PermissionError:", error)
    """
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("skipped: setpriv (util-linux) is needed to drop CAP_NET_RAW as root")
        # Root without CAP_NET_RAW: dropped from the bounding set before exec.
        prefix = ("setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw")
    child = _child(code, *prefix)
    out, err = child.communicate(timeout=30)
    assert out.startswith("PermissionError:"), (out, err)
    assert "CAP_NET_RAW" in out


def test_status_and_stop_from_other_threads_while_one_waits(tmp_path: Path) -> None:
    """No lock is held while the interpreter lock is released: a thread in ``wait()`` and
    others calling ``status()`` and ``stop()`` never deadlock."""
    with portsentry.Sensor(modes="tcp", tcp_ports=[free_port()], state_dir=tmp_path) as s:
        waiter = threading.Thread(target=s.wait)
        reader = threading.Thread(target=lambda: [s.status() for _ in range(20)])
        waiter.start()
        reader.start()
        for _ in range(20):
            assert s.status().running
        reader.join(timeout=10)
        stopper = threading.Thread(target=s.stop)
        stopper.start()
        stopper.join(timeout=10)
        waiter.join(timeout=10)
        assert not (reader.is_alive() or stopper.is_alive() or waiter.is_alive())
        assert not s.running


@pytest.mark.parametrize("mode", [0o644, 0o666])
def test_an_ignore_file_named_by_a_config_others_may_edit_is_not_read(
    tmp_path: Path, mode: int
) -> None:
    ignore = tmp_path / "portsentry.ignore"
    ignore.write_text("203.0.113.0/24\n")
    ignore.chmod(0o644)
    conf = tmp_path / "portsentry.conf"
    conf.write_text(f'TCP_PORTS="{free_port()}"\nIGNORE_FILE="{ignore}"\n')
    conf.chmod(mode)
    config = portsentry.Config.load(conf)
    with portsentry.Sensor(config, modes="tcp", state_dir=tmp_path) as sensor:
        text = "\n".join(sensor.status().messages)
    not_read = f"IGNORE_FILE {ignore} is not read while the configuration is not root's alone"
    if mode == 0o666:
        assert not_read in text, text
        assert "KILL_ROUTE" in text or "writable" in text, text
    else:
        assert not_read not in text, text
