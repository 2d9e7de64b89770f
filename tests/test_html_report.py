"""The HTML report in a real headless browser (Debian's Chromium, unpacked by the lab's tools):
a sync's page (here) and a playbook run's page (tests/unit/test_runner_memory.py, which uses this
module's browser) load with no request leaving the page and no console message, and their
screenshots are not blank. Control pages prove each check can fail: a page that logs and fetches
is caught, and a blank page is judged blank."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from failover.lab import LabInfo
from failover.lab.tools import chromium

from tests.helpers import raw_s3, run_cli, seed, unique


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def _any(self) -> None:
        type(self).seen.append(f"{self.command} {self.path}")
        self.send_response(204)
        self.end_headers()

    do_GET = do_POST = do_CONNECT = do_HEAD = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[tuple[Path, dict[str, str], list[str], int]]:
    binary, env = chromium()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield binary, env, _Recorder.seen, server.server_address[1]
    server.shutdown()


def load(browser: tuple[Path, dict[str, str], list[str], int], page: Path, shot: Path) -> tuple[list[str], list[str]]:
    """Open ``page``, screenshot it; (console messages, requests that left the page)."""
    binary, env, seen, port = browser
    seen.clear()
    result = subprocess.run(
        [
            str(binary),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            # The browser's own traffic (updates, safe browsing, time sync) is not the page's.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-client-side-phishing-detection",
            "--disable-features=OptimizationHints,MediaRouter,Translate,NetworkTimeServiceQuerying,AutofillServerCommunication",
            "--no-default-browser-check",
            "--metrics-recording-only",
            f"--user-data-dir={shot.parent / 'profile'}",
            # Every request the page makes goes to the recorder, whatever its host.
            f"--proxy-server=http://127.0.0.1:{port}",
            "--proxy-bypass-list=<-loopback>",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(shot.parent), **env},
        check=False,
    )
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    # Chromium's own services (sign-in, updates, safe browsing) call home whatever the page does;
    # the flags above silence most, and what is left goes to Google's hosts, never the page's.
    page_requests = [
        r
        for r in seen
        if not re.search(
            r"(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)(:\d+)?(/|$)", r.split(" ")[1].split("?")[0]
        )
    ]
    return console, page_requests


def distinct_pixels(png: Path) -> int:
    """How many distinct byte values the decoded image rows hold (a blank page holds a handful)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat = 8, b""
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    return len(set(zlib.decompress(idat)))


def test_a_sync_report_written_by_the_cli_loads_alone(
    browser: tuple[Path, dict[str, str], list[str], int], lab: LabInfo, tmp_path: Path
) -> None:
    aws = raw_s3(lab, "aws")
    bucket = unique("html")
    seed(aws, bucket, {f"o{i}": {"body": bytes([i]) * (256 * 1024)} for i in range(12)})
    page = tmp_path / "sync.html"
    result = run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", "--bwlimit", "2M", "--report", str(page))
    assert result.code == 0, result.stderr
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "every object verified" in html
    assert "<polyline" in html, "throughput samples drawn"
    rendered = run_cli("report", str(tmp_path / "missing.json"))
    assert rendered.code == 2
    json_report = tmp_path / "sync.json"
    assert run_cli("sync", f"aws:{bucket}", f"onprem:{bucket}", "--report", str(json_report)).code == 0
    assert json.loads(json_report.read_text())["schema"] == 1
    again = run_cli("report", str(json_report), "--html", str(tmp_path / "again.html"))
    assert again.code == 0 and (tmp_path / "again.html").is_file()
    console, requests = load(browser, page, tmp_path / "sync.png")
    assert console == [] and requests == []
    assert distinct_pixels(tmp_path / "sync.png") > 40


def test_the_checks_can_fail(browser: tuple[Path, dict[str, str], list[str], int], tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.html"
    noisy.write_text(
        '<html><body><script>console.error("x")</script><img src="http://example.invalid/a.png"></body></html>'
    )
    console, requests = load(browser, noisy, tmp_path / "noisy.png")
    assert console and requests, "a page that logs and fetches is caught"
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body style='background:#fff'></body></html>")
    load(browser, blank, tmp_path / "blank.png")
    assert distinct_pixels(tmp_path / "blank.png") <= 40, "a blank page is judged blank"
