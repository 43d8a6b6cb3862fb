"""The live ``Sensor`` in network namespaces: nmap scans, slow and raising responders, a
forged flood. Needs root, nmap and hping3; otherwise each test is skipped with the reason
(shown by ``pytest -rs``, as scripts/test-python runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from netlab import ATTACKER4, ATTACKER6, SECOND4, VICTIM6, Lab, needs_root_lab

PORTS = "1,11,15,79,111"


def is_alert_from(source: str, responder: str | None = None) -> Any:
    def match(item: dict[str, Any]) -> bool:
        return (
            item.get("kind") == "alert"
            and item.get("source") == source
            and (responder is None and item["type"] == "event"
                 or item.get("responder") == responder)
        )
    return match


def test_nmap_scan_reaches_the_callable_and_the_iterator(tmp_path: Path) -> None:
    needs_root_lab("nmap")
    with Lab() as lab, lab.sensor("plain", tmp_path) as sensor:
        assert not sensor.all(lambda i: i["type"] == "error"), sensor.seen
        lab.nmap(PORTS)
        call = sensor.wait_for(is_alert_from(ATTACKER4, "collect"), 20)
        assert call["scan"] == "syn"
        assert call["mode"] == "stcp"
        assert call["port"] in {1, 11, 15, 79, 111}
        event = sensor.wait_for(is_alert_from(ATTACKER4), 10)
        # The iterator yields the same alert the callable got.
        assert (event["source"], event["scan"], event["port"]) == (
            call["source"], call["scan"], call["port"])
        status = sensor.status()
        assert status["running"] is True
        assert status["alerts"] == 1
        assert status["frames"] >= 5
        assert status["responders"][0]["name"] == "collect"
        assert status["responders"][0]["calls"] == 1
        # The same over IPv6.
        lab.nmap(PORTS, target=VICTIM6)
        call6 = sensor.wait_for(is_alert_from(ATTACKER6, "collect"), 20)
        assert call6["scan"] == "syn" and call6["port"] in {1, 11, 15, 79, 111}
        sensor.wait_for(is_alert_from(ATTACKER6), 10)
        stopped = sensor.stop()
        assert stopped["seconds"] < 1.0, stopped
        assert stopped["running"] is False
        sensor.process.wait(timeout=20)
        assert sensor.process.returncode == 0, "".join(sensor.stderr)


def test_raising_and_sleeping_responders_lose_nothing_and_delay_nothing(
    tmp_path: Path,
) -> None:
    needs_root_lab("nmap")
    with Lab() as lab, lab.sensor("slow", tmp_path) as sensor:
        assert not sensor.all(lambda i: i["type"] == "error"), sensor.seen
        lab.nmap(PORTS)
        sensor.wait_for(is_alert_from(ATTACKER4, "sleeping"), 20)
        # The second scanner comes while the sleeping responder is busy for 10 s.
        scanned = time.monotonic()
        lab.nmap(PORTS, source=SECOND4)
        second = sensor.wait_for(is_alert_from(SECOND4, "collect"), 8)
        assert second["t"] - sensor.wait_for(is_alert_from(ATTACKER4, "collect"), 1)["t"] < 9
        sensor.wait_for(is_alert_from(SECOND4), 5)
        assert time.monotonic() - scanned < 8, "the next scanner waited for the slow call"
        # Nothing is lost: the raising one saw both, the sleeping one gets the second alert
        # once its first call returned.
        sensor.wait_for(is_alert_from(SECOND4, "raising"), 5)
        sensor.wait_for(is_alert_from(SECOND4, "sleeping"), 25)
        status = sensor.status()
        by_name = {r["name"]: r for r in status["responders"]}
        assert by_name["raising"]["failures"] == 2
        assert by_name["raising"]["last_error"] == "RuntimeError: webhook down"
        assert by_name["Sleeping"]["busy"] is True
        assert by_name["Sleeping"]["calls"] == 1
        assert by_name["Sleeping"]["dropped"] == 0
        assert by_name["collect"]["calls"] == 2
        assert by_name["collect"]["failures"] == 0
        assert status["alerts"] == 2
        # Both failures are reported like a failed block command.
        assert status["errors"] >= 3
        text = "\n".join(status["messages"])
        assert "responder raising failed: raised RuntimeError: webhook down" in text, text
        assert "responder Sleeping failed: did not return within 1.0 s" in text, text
        # Let the second sleeping call end (no alert lost), then stop.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = sensor.status()
            if {r["name"]: r for r in status["responders"]}["Sleeping"]["calls"] == 2:
                break
            time.sleep(0.5)
        by_name = {r["name"]: r for r in status["responders"]}
        assert by_name["Sleeping"]["calls"] == 2, by_name
        assert by_name["Sleeping"]["abandoned"] == 0
        stopped = sensor.stop()
        assert stopped["seconds"] < 1.0, stopped


def test_a_forged_flood_keeps_memory_bounded_and_the_scanner_is_delivered(
    tmp_path: Path,
) -> None:
    needs_root_lab("nmap", "hping3")
    with Lab() as lab, lab.sensor("flood", tmp_path) as sensor:
        assert not sensor.all(lambda i: i["type"] == "error"), sensor.seen
        before = sensor.status()
        flood = lab.attacker_spawn(
            "hping3", "-q", "--rand-source", "-S", "-p", "11", "-c", "200000", "-i", "u10",
            "203.0.113.1", timeout=90,
        )
        try:
            time.sleep(1)
            lab.nmap(PORTS)
            peak = before["rss_bytes"]
            while flood.poll() is None:
                status = sensor.status()
                peak = max(peak, status["rss_bytes"])
                assert status["tracked_sources"] <= status["tracker_capacity"]
                time.sleep(0.5)
            # hping3 exits 1 when no reply came back (forged sources get none); 124 is the
            # time limit.
            assert flood.returncode in (0, 1), f"hping3 ended with {flood.returncode}"
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait(timeout=30)
        sensor.wait_for(is_alert_from(ATTACKER4, "collect"), 20)
        sensor.wait_for(is_alert_from(ATTACKER4), 5)
        time.sleep(1)
        after = sensor.status()
        print(
            f"flood: frames {after['frames']}, kernel drops {after['kernel_drops']}, "
            f"tracked {after['tracked_sources']}/{after['tracker_capacity']}, "
            f"rss before {before['rss_bytes'] >> 20} MiB, peak {peak >> 20} MiB"
        )
        assert after["frames"] - before["frames"] + after["kernel_drops"] >= 150_000, after
        assert after["tracker_capacity"] == 4096
        assert after["tracked_sources"] <= 4096
        # Bounded: the tracker holds at most 4096 sources; 200,000 sources must not grow
        # the process by more than 64 MiB.
        assert peak - before["rss_bytes"] < 64 << 20, (before["rss_bytes"], peak)
        assert sensor.stop()["seconds"] < 1.0


def test_a_blocking_responder_decides_the_block_and_its_exception_fails_it(
    tmp_path: Path,
) -> None:
    needs_root_lab("nmap")
    with Lab() as lab, lab.sensor("blocking", tmp_path) as sensor:
        assert not sensor.all(lambda i: i["type"] == "error"), sensor.seen
        lab.nmap(PORTS)
        sensor.wait_for(is_alert_from(ATTACKER4, "collect"), 20)
        lab.nmap(PORTS, source=SECOND4)
        sensor.wait_for(is_alert_from(SECOND4, "collect"), 20)
        status = sensor.status()
        # The block the responder made is recorded (and journaled); the refused one is not:
        # reported like a failed block command.
        assert status["blocks"] == [ATTACKER4], status
        assert status["block_failures"] >= 1
        log = "\n".join(status["log"])
        assert f"Action Firewall done for host: {ATTACKER4}" in log, log
        assert (
            f"ERROR: action Firewall failed for host: {SECOND4}: raised RuntimeError: "
            "cloud firewall refused" in log
        ), log
        assert f"ERROR: Could not block host {SECOND4} !!" in log, log
        journal = (tmp_path / "portsentry.blocked").read_text()
        assert ATTACKER4 in journal and SECOND4 not in journal, journal

        # BLOCK_TIMEOUT (6 s) ends the block: the responder undoes it, the iterator and the
        # reporting responder hear of the release, the journal forgets it.
        def released(item: dict[str, Any]) -> bool:
            return item.get("kind") == "released" and item.get("address") == ATTACKER4

        sensor.wait_for(lambda i: released(i) and i.get("responder") == "firewall", 15)
        sensor.wait_for(lambda i: released(i) and i.get("responder") == "collect", 5)
        sensor.wait_for(lambda i: released(i) and i["type"] == "event", 5)
        assert sensor.status()["blocks"] == []
        # The journal says "releasing" until the release's report is back on the engine.
        deadline = time.monotonic() + 5
        while ATTACKER4 in (tmp_path / "portsentry.blocked").read_text():
            assert time.monotonic() < deadline, (tmp_path / "portsentry.blocked").read_text()
            time.sleep(0.1)
        assert sensor.stop()["seconds"] < 1.0


DOCS = Path(__file__).resolve().parents[2] / "docs" / "python.md"

DOC_CHILD = """
import http.server, re, sys, threading
posts = []
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        posts.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 8080), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
text = open(sys.argv[1]).read()
block = re.search(r"## Watch a live interface.*?```python\\n(.*?)```", text, re.S).group(1)
block = block.replace("sensor.events()", "sensor.events(timeout=10)")
print("ready", flush=True)
exec(compile(block, "docs/python.md", "exec"), {"__name__": "__main__"})
print("posts", posts, flush=True)
"""


def test_the_docs_example_posts_to_a_loopback_webhook_and_logs(tmp_path: Path) -> None:
    """The example of docs/python.md, run as written (the iterator given a timeout), against
    a webhook on the victim namespace's loopback."""
    needs_root_lab("nmap")
    env = dict(os.environ, STATE_DIRECTORY=str(tmp_path))
    with Lab() as lab:
        child = subprocess.Popen(
            ["ip", "netns", "exec", lab.victim, sys.executable, "-c", DOC_CHILD, str(DOCS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(2)  # the sensor starts right after "ready"
            lab.nmap(PORTS)
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert f'"source": "{ATTACKER4}"' in out, (out, err)
    assert f"scan from {ATTACKER4} (syn)" in err, err
