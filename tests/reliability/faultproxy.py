"""A seeded fault-injecting HTTP proxy, put between failover and a real S3 server.

It forwards requests unchanged (the Host header too, so SigV4 signatures stay valid) and, by a
seeded draw per request, answers instead, or damages what the server answered:

* ``slowdown``: 503 SlowDown with ``Retry-After: 1``; ``slowdown_bare``: the same without it
* ``error500``: 500 InternalError
* ``reset``: the server's answer cut off half-way through the body by a TCP reset
* ``truncate``: the body cut short (the connection closed cleanly, Content-Length not met)
* ``complete_error``: CompleteMultipartUpload answered 200 with an ``<Error>`` body (S3 does this)
* ``listing_no_token``: a listing page rewritten to claim more keys without a continuation token
* ``listing_ends_early``: a listing page cut short and rewritten to claim it is the last one (no
  truncation, no continuation): the listing looks complete and is not
* ``listing_omits``: one to three keys silently left out of a listing page (the rest untouched)
* ``black_hole``: the request read, and never answered

Listing faults apply to ListObjectsV2 and ListObjects (V1) pages alike.

It counts what passes: requests by kind, request body bytes (what the client sent), writes per
key, deletes, faults injected. Optionally it listens with TLS (for the TLS tests).
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

FAULTS = (
    "slowdown",
    "slowdown_bare",
    "error500",
    "reset",
    "truncate",
    "complete_error",
    "listing_no_token",
    "listing_ends_early",
    "listing_omits",
    "black_hole",
)


@dataclass
class Plan:
    seed: int = 2021
    rates: dict[str, float] = field(default_factory=dict)
    """Probability of each fault for a request it applies to."""
    only_methods: tuple[str, ...] = ()
    """If set, faults apply only to these methods."""
    hold: float = 20.0
    """How long a black hole holds a connection."""
    limit: dict[str, int] = field(default_factory=dict)
    """At most this many of a fault (then it stops)."""


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    """Request body bytes the client sent (object data and parts), faults included."""
    bytes_by_outcome: Counter[str] = field(default_factory=Counter)
    """Body bytes by request kind and what happened to the request (forwarded or the fault)."""
    writes_per_key: Counter[str] = field(default_factory=Counter)
    deletes: list[str] = field(default_factory=list)
    auth_failures: int = 0
    omitted_keys: int = 0
    """Keys the listing faults left out of pages (to check that none was lost for it)."""
    log: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, path, outcome) of every request: what a failed assertion can be explained with."""


class _Request:
    def __init__(self, line: bytes, headers: list[tuple[str, str]], body: bytes) -> None:
        self.method, self.target, _ = line.decode("latin-1").split(" ", 2)
        self.headers = headers
        self.body = body
        parsed = urllib.parse.urlsplit(self.target)
        self.path = urllib.parse.unquote(parsed.path)
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def kind(self) -> str:
        if self.method == "GET" and "list-type" in self.query:
            return "list"
        bucket_only = len([part for part in self.path.split("/") if part]) == 1
        special = {"uploads", "uploadId", "tagging", "location", "versioning", "policy", "acl", "cors"}
        if self.method == "GET" and bucket_only and not special & set(self.query):
            return "list"  # ListObjects (V1, markers)
        if self.method == "POST" and "uploadId" in self.query:
            return "complete"
        if self.method == "PUT" and "partNumber" in self.query:
            return "part"
        if self.method == "POST" and "uploads" in self.query:
            return "create_upload"
        if self.method == "DELETE" and "uploadId" in self.query:
            return "abort"
        return self.method.lower()


def _read_line(stream: socket.socket, buffer: bytearray) -> bytes:
    while b"\r\n" not in buffer:
        chunk = stream.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\r\n")
    buffer[:] = rest
    return line


def _read_exact(stream: socket.socket, buffer: bytearray, size: int) -> bytes:
    while len(buffer) < size:
        chunk = stream.recv(max(65536, size - len(buffer)))
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def _read_head(stream: socket.socket, buffer: bytearray) -> tuple[bytes, list[tuple[str, str]]]:
    first = _read_line(stream, buffer)
    headers = []
    while True:
        line = _read_line(stream, buffer)
        if not line:
            return first, headers
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))


def _read_body(stream: socket.socket, buffer: bytearray, headers: list[tuple[str, str]]) -> bytes:
    lower = {k.lower(): v for k, v in headers}
    if lower.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int(_read_line(stream, buffer).split(b";")[0], 16)
            if size == 0:
                while _read_line(stream, buffer):
                    pass
                return bytes(body)
            body += _read_exact(stream, buffer, size)
            _read_line(stream, buffer)
    return _read_exact(stream, buffer, int(lower.get("content-length", "0")))


def _head_bytes(first: bytes, headers: list[tuple[str, str]]) -> bytes:
    return first + b"\r\n" + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers) + b"\r\n"


def _with_length(headers: list[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
    return [*kept, ("Content-Length", str(length))]


def _error_reply(status: int, reason: str, code: str, retry_after: bool = False) -> bytes:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))), ("Connection", "close")]
    if retry_after:
        headers.append(("Retry-After", "1"))
    return _head_bytes(f"HTTP/1.1 {status} {reason}".encode(), headers) + body.encode()


class FaultProxy:
    def __init__(self, upstream: str, plan: Plan | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.plan = plan or Plan()
        self.stats = Stats()
        self._random = random.Random(self.plan.seed)
        self._lock = threading.Lock()
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="faultproxy")
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def retarget(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)

    def reset(self) -> None:
        """New counters, and the plan's seed drawn from the start again."""
        with self._lock:
            self.stats = Stats()
            self._random = random.Random(self.plan.seed)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the fault draw ------------------------------------------------------------------------------

    def _draw(self, request: _Request) -> str | None:
        if self.plan.only_methods and request.method not in self.plan.only_methods:
            return None
        applicable = ["slowdown", "slowdown_bare", "error500", "black_hole"]
        if request.method == "GET" and request.kind != "list":
            applicable += ["reset", "truncate"]
        if request.kind == "complete":
            applicable.append("complete_error")
        if request.kind == "list":
            applicable += ["listing_no_token", "listing_ends_early", "listing_omits"]
        with self._lock:
            for fault in applicable:
                rate = self.plan.rates.get(fault, 0.0)
                if fault in self.plan.limit and self.stats.faults[fault] >= self.plan.limit[fault]:
                    continue
                if rate and self._random.random() < rate:
                    self.stats.faults[fault] += 1
                    return fault
        return None

    # -- serving -------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self._tls is not None:
                client = self._tls.wrap_socket(client, server_side=True)
            buffer = bytearray()
            while not self._stop.is_set():
                try:
                    first, headers = _read_head(client, buffer)
                except (ConnectionError, OSError, ValueError):
                    return
                if not self._one(client, buffer, _Request(first, headers, b"")):
                    return
        except (ConnectionError, OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()

    def _count(self, request: _Request) -> None:
        with self._lock:
            self.stats.requests[request.kind] += 1
            if request.method in ("PUT", "POST"):
                self.stats.body_bytes += len(request.body)
            if request.method == "PUT" and request.kind == "put" and not request.header("x-amz-copy-source"):
                self.stats.writes_per_key[request.path] += 1
            if request.kind == "delete":
                self.stats.deletes.append(request.path)

    @staticmethod
    def _reset(client: socket.socket) -> None:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _one(self, client: socket.socket, buffer: bytearray, request: _Request) -> bool:
        """Serve one request; False when the connection is done. The body is read only when it
        would be sent: a client that asked ``Expect: 100-continue`` is answered before it sends
        the body when the answer is an error, and a server that is down refuses before any body
        arrives (as a direct connection would)."""
        fault = self._draw(request)
        expects = request.header("expect") is not None
        request.headers = [(k, v) for k, v in request.headers if k.lower() != "expect"]
        upstream: socket.socket | None = None
        if fault is None or fault in ("reset", "truncate", "listing_no_token", "listing_ends_early", "listing_omits"):
            try:
                upstream = socket.create_connection(self.upstream, timeout=60)
            except OSError:  # the server is down (a test killed it)
                with self._lock:
                    self.stats.faults["upstream_down"] += 1
                    self.stats.requests[request.kind] += 1
                    self.stats.log.append((request.kind, request.path, "upstream_down"))
                self._reset(client)
                return False
        answered_early = expects and fault in ("slowdown", "slowdown_bare", "error500", "complete_error")
        if not answered_early:
            if expects:
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.body = _read_body(client, buffer, request.headers)
        self._count(request)
        with self._lock:
            self.stats.log.append((request.kind, request.path, fault or "forwarded"))
            self.stats.bytes_by_outcome[f"{request.kind}:{fault or 'forwarded'}"] += len(request.body)
        if fault == "black_hole":
            self._stop.wait(self.plan.hold)
            return False
        if fault in ("slowdown", "slowdown_bare"):
            client.sendall(_error_reply(503, "Slow Down", "SlowDown", retry_after=fault == "slowdown"))
            return False
        if fault == "error500":
            client.sendall(_error_reply(500, "Internal Server Error", "InternalError"))
            return False
        if fault == "complete_error":
            body = b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>injected</Message></Error>"
            headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
            client.sendall(_head_bytes(b"HTTP/1.1 200 OK", headers) + body)
            return not answered_early
        assert upstream is not None
        with upstream:
            status_line, headers, body = self._forward(upstream, request)
        if status_line.split(b" ")[1:2] == [b"403"]:
            with self._lock:
                self.stats.auth_failures += 1
        if fault == "listing_no_token" and body:
            text = body.decode("utf-8", "replace")
            text = re.sub(r"<IsTruncated>\w+</IsTruncated>", "<IsTruncated>true</IsTruncated>", text)
            text = re.sub(r"<NextContinuationToken>.*?</NextContinuationToken>", "", text)
            body = text.encode()
            headers = _with_length(headers, len(body))
        if fault in ("listing_ends_early", "listing_omits") and body:
            body = self._damage_listing(body, fault)
            headers = _with_length(headers, len(body))
        if fault in ("reset", "truncate") and len(body) > 1:
            client.sendall(_head_bytes(status_line, _with_length(headers, len(body))) + body[: len(body) // 2])
            if fault == "reset":
                self._reset(client)
            return False
        if request.method == "HEAD":  # its Content-Length is the object's, with no body
            client.sendall(_head_bytes(status_line, headers))
            return True
        client.sendall(_head_bytes(status_line, _with_length(headers, len(body))) + body)
        return True

    def _damage_listing(self, body: bytes, fault: str) -> bytes:
        """Cut a listing page short claiming it is the last, or leave keys out of it silently."""
        text = body.decode("utf-8")
        entries = list(re.finditer(r"<Contents>.*?</Contents>", text, re.S))
        if not entries:
            return body
        with self._lock:
            if fault == "listing_ends_early":
                keep = self._random.randrange(len(entries))
                dropped = entries[keep:]
            else:
                dropped = self._random.sample(entries, min(len(entries), self._random.randint(1, 3)))
            self.stats.omitted_keys += len(dropped)
        for entry in sorted(dropped, key=lambda m: m.start(), reverse=True):
            text = text[: entry.start()] + text[entry.end() :]
        if fault == "listing_ends_early":
            text = re.sub(r"<IsTruncated>\w+</IsTruncated>", "<IsTruncated>false</IsTruncated>", text)
            text = re.sub(r"<NextContinuationToken>.*?</NextContinuationToken>", "", text)
            text = re.sub(r"<NextMarker>.*?</NextMarker>", "", text)
        return text.encode()

    def _forward(self, upstream: socket.socket, request: _Request) -> tuple[bytes, list[tuple[str, str]], bytes]:
        headers = [(k, v) for k, v in request.headers if k.lower() not in ("transfer-encoding", "connection")]
        if request.method in ("PUT", "POST") or request.body:
            headers = _with_length(headers, len(request.body))
        headers.append(("Connection", "close"))
        line = f"{request.method} {request.target} HTTP/1.1".encode()
        upstream.sendall(_head_bytes(line, headers) + request.body)
        buffer = bytearray()
        status_line, reply_headers = _read_head(upstream, buffer)
        status = int(status_line.split(b" ")[1])
        if request.method == "HEAD" or status in (204, 304):
            body = b""
        elif any(k.lower() in ("content-length", "transfer-encoding") for k, _ in reply_headers):
            body = _read_body(upstream, buffer, reply_headers)
        else:
            chunks = [bytes(buffer)]
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
            body = b"".join(chunks)
        kept = [(k, v) for k, v in reply_headers if k.lower() != "connection"]
        return status_line, kept, body


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")
