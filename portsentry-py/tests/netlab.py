"""A two-namespace lab for the live ``Sensor`` tests, and the sensor's child process.

The victim and attacker namespaces (unique names with this process's id) are joined by a
veth pair: 203.0.113.1 and 2001:db8::1 (victim), 203.0.113.2, 203.0.113.3 and 2001:db8::2
(attacker). Traffic goes only between them. The sensor runs in a child Python process under
``ip netns exec`` (``sensor_child.py``), which talks JSON lines on stdout and takes commands
on stdin. Everything is removed at the end, also on failure; every process is ended by its
own PID.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

VICTIM4 = "203.0.113.1"
VICTIM6 = "2001:db8::1"
ATTACKER4 = "203.0.113.2"
ATTACKER6 = "2001:db8::2"
SECOND4 = "203.0.113.3"
CHILD = Path(__file__).with_name("sensor_child.py")


def needs_root_lab(*tools: str) -> None:
    """Skips (with the reason shown by ``pytest -rs``) unless root with ``tools``."""
    if os.geteuid() != 0:
        pytest.skip("skipped: needs root (network namespaces, AF_PACKET capture)")
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            pytest.skip(f"skipped: {tool} is not installed (scripts/install-test-deps)")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=30)


class Lab:
    """The two namespaces; use as a context manager."""

    _count = 0

    def __init__(self) -> None:
        Lab._count += 1
        tag = f"{os.getpid()}-{Lab._count}"
        self.victim = f"pspy-v-{tag}"
        self.attacker = f"pspy-a-{tag}"

    def __enter__(self) -> "Lab":
        try:
            ip("netns", "add", self.victim)
            ip("netns", "add", self.attacker)
            ip("link", "add", "pspyv0", "netns", self.victim, "type", "veth",
               "peer", "name", "pspya0", "netns", self.attacker)
            for ns, dev, addrs in (
                (self.victim, "pspyv0", [f"{VICTIM4}/24"]),
                (self.attacker, "pspya0", [f"{ATTACKER4}/24", f"{SECOND4}/24"]),
            ):
                for addr in addrs:
                    ip("-n", ns, "addr", "add", addr, "dev", dev)
                v6 = VICTIM6 if ns == self.victim else ATTACKER6
                ip("-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
                ip("-n", ns, "link", "set", dev, "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.victim, self.attacker):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)

    def attacker_run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """Runs a command in the attacker namespace, bounded by ``timeout`` (also inside)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.attacker, "timeout", str(int(timeout)), *args],
            capture_output=True, text=True, timeout=timeout + 10,
        )

    def attacker_spawn(self, *args: str, timeout: float = 90) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.attacker, "timeout", str(int(timeout)), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def nmap(self, ports: str, source: Optional[str] = None, target: str = VICTIM4) -> None:
        """A SYN scan of the victim (IPv4, or IPv6 for an IPv6 target), bounded in retries
        and time."""
        args = ["nmap", "-sS", "-Pn", "-n", "--max-retries", "0", "--host-timeout", "30s",
                "-p", ports]
        if ":" in target:
            args.append("-6")
        if source is not None:
            args += ["-S", source, "-e", "pspya0"]
        done = self.attacker_run(*args, target, timeout=60)
        assert done.returncode == 0, done.stderr

    def sensor(self, scenario: str, state_dir: Path) -> "SensorChild":
        return SensorChild(self.victim, scenario, state_dir)


class SensorChild:
    """The sensor's child process in the victim namespace."""

    def __init__(self, netns: str, scenario: str, state_dir: Path) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(CHILD), scenario,
             str(state_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def _take(self, deadline: float) -> Iterator[dict[str, Any]]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                item = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    return
                continue
            self.seen.append(item)
            yield item

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The first line (seen already, or coming within ``timeout`` s) that matches."""
        for item in self.seen:
            if match(item):
                return item
        for item in self._take(time.monotonic() + timeout):
            if match(item):
                return item
        raise AssertionError(
            f"nothing matched within {timeout} s; lines: {self.seen}; stderr: {''.join(self.stderr)}"
        )

    def all(self, match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        for _ in self._take(time.monotonic() + 0.2):
            pass
        return [item for item in self.seen if match(item)]

    def command(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def status(self) -> dict[str, Any]:
        count = len([i for i in self.seen if i["type"] == "status"])
        self.command("status")
        seen = 0
        for item in self.seen:
            if item["type"] == "status":
                seen += 1
        for item in self._take(time.monotonic() + 10):
            if item["type"] == "status":
                seen += 1
                if seen > count:
                    return item
        raise AssertionError(f"no status; stderr: {''.join(self.stderr)}")

    def stop(self) -> dict[str, Any]:
        self.command("stop")
        return self.wait_for(lambda i: i["type"] == "stopped", 20)

    def end(self) -> None:
        """Ends the child (by its PID) if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> "SensorChild":
        self.wait_for(lambda i: i["type"] in ("ready", "error"), 30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()
