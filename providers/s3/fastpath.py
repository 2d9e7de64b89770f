"""A lean HTTP path for the s3 adapter's hot calls: GetObject, PutObject and UploadPart.

Why: botocore spends ~2.5 ms of CPU per call (event hooks, user-agent assembly, response models);
copying small objects is two calls per object, and on a 2-core machine that CPU, not the network,
limits throughput. This path signs requests itself (SigV4, signing key cached per day), keeps
connections alive in a small pool, and parses only the headers it needs. Everything else (listing,
multipart control, tags, copies) stays on boto3, and errors go through the same classifier.

Integrity: PUT bodies carry a checksum the server checks (x-amz-checksum-crc32c or Content-MD5, per
vendor; LocalStack and SeaweedFS do not check a signed payload hash), so they are signed as
UNSIGNED-PAYLOAD and no second hash pass is spent on them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import io
import os
import re
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast
from xml.etree import ElementTree

from failover.errors import ConnectionLost, FailoverError, IntegrityError, ProviderError, Timeout

from ..http_errors import untrusted_certificate
from .errors import classify

__all__ = ["Credentials", "FastPath", "ListPage", "ListedObject", "Response", "parse_list_page"]

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-_.~"
_MAX_IDLE = 64


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def _quote(text: str, safe: str = "") -> str:
    return urllib.parse.quote(text, safe=_UNRESERVED + safe)


def md5_header(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


EXPECT_CONTINUE_MIN = 1024 * 1024
"""Bodies from this size ask ``Expect: 100-continue`` (where the vendor answers it)."""
EXPECT_CONTINUE_WAIT = 1.0
"""How long to wait for 100 Continue before sending the body anyway (RFC 9110 section 10.1.1)."""


class _Connection:
    """One keep-alive HTTP/1.1 connection: a socket (TLS-wrapped for https) and a buffered reader.

    http.client parses every response's headers through the email package, which costs more CPU
    than the rest of a small-object request; S3 responses need only status, headers and a
    Content-Length or chunked body, which this reads directly.
    """

    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext | None) -> None:
        self.key = (host, port)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.reader = cast(io.BufferedReader, sock.makefile("rb", buffering=65536))

    def send(self, head: bytes, body: bytes | None) -> None:
        if body is not None and len(body) <= 65536:
            self.sock.sendall(head + body)
            return
        self.sock.sendall(head)
        if body:
            self.sock.sendall(body)

    def send_expecting(self, head: bytes, body: bytes, wait: float) -> tuple[int, dict[str, str]] | None:
        """Send a request that asked ``Expect: 100-continue``: the body follows the server's
        100 Continue (or ``wait`` seconds of silence). A final answer before that (503 SlowDown,
        403...) is returned, and the body is never sent: a refused 8 MiB part costs nothing."""
        self.sock.sendall(head)
        readable, _, _ = select.select([self.sock], [], [], wait)
        if readable:
            status, headers = self.read_head()
            if status != 100:
                return status, headers
        self.sock.sendall(body)
        return None

    def read_head(self) -> tuple[int, dict[str, str]]:
        line = self.reader.readline(65537)
        if not line:
            raise http.client.RemoteDisconnected("connection closed before the response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise http.client.BadStatusLine(repr(line[:80]))
        status = int(parts[1])
        headers: dict[str, str] = {}
        readline = self.reader.readline
        while True:
            line = readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return status, headers

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


class Response:
    """An HTTP response whose body is still on the wire. ``close()`` returns the connection to the
    pool only when the body was read to its end; otherwise the connection is dropped."""

    def __init__(self, pool: _Pool, conn: _Connection, status: int, headers: dict[str, str], method: str) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        self._keep = headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304):
            self._remaining = 0
        elif self._chunked:
            self._remaining = -1
        else:
            self._remaining = int(headers.get("content-length", "-1"))

    @property
    def complete(self) -> bool:
        return self._remaining == 0

    def read(self, size: int = -1, /) -> bytes:
        if self._conn is None or self._remaining == 0:
            return b""
        try:
            if self._chunked:
                return self._read_chunked(size)
            if self._remaining < 0:  # no length: the body ends when the server closes
                data = self._conn.reader.read() if size < 0 else self._conn.reader.read(size)
                if not data:
                    self._remaining, self._keep = 0, False
                return data
            want = self._remaining if size < 0 else min(size, self._remaining)
            data = self._conn.reader.read(want)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise _network_error(exc, "read") from exc
        if len(data) < want:
            self._drop()
            raise IntegrityError(f"body ended {self._remaining - len(data)} bytes early", operation="read")
        self._remaining -= len(data)
        return data

    def _read_chunked(self, size: int) -> bytes:
        assert self._conn is not None
        reader = self._conn.reader
        out = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if self._chunk_left == 0:
                line = reader.readline(1026)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._remaining = 0
                    break
                self._chunk_left = length
            piece = reader.read(min(self._chunk_left, wanted))
            if not piece:
                raise http.client.IncompleteRead(b"")
            out.append(piece)
            self._chunk_left -= len(piece)
            wanted -= len(piece)
            if self._chunk_left == 0:
                reader.readline(3)  # the CRLF after a chunk
        return b"".join(out)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is None:
            return
        if self._remaining == 0 and self._keep:
            self._pool.release(self._conn)
            self._conn = None
        else:
            self._drop()


def _network_error(exc: BaseException, operation: str) -> ProviderError:
    refused = untrusted_certificate(exc, operation=operation)
    if refused is not None:
        return refused
    if isinstance(exc, socket.timeout | TimeoutError):
        return Timeout(f"timed out: {exc}", operation=operation)
    if isinstance(exc, http.client.IncompleteRead):
        return IntegrityError(f"truncated body: {exc}", operation=operation)
    return ConnectionLost(f"{type(exc).__name__}: {exc}", operation=operation)


class _Pool:
    """Idle keep-alive connections per host, shared by all threads."""

    def __init__(self, timeout: float, context: ssl.SSLContext | None) -> None:
        self.timeout = timeout
        self.context = context
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._lock = threading.Lock()

    def acquire(self, host: str, port: int) -> tuple[_Connection, bool]:
        """A connection and whether it was reused (a reused one may have been closed by the server)."""
        with self._lock:
            idle = self._idle.get((host, port))
            if idle:
                return idle.pop(), True
        return _Connection(host, port, self.timeout, self.context), False

    def release(self, conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < _MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for connections in self._idle.values():
                for conn in connections:
                    conn.close()
            self._idle.clear()


class FastPath:
    def __init__(
        self,
        *,
        endpoint: str | None,
        region: str,
        addressing_style: str,
        credentials: Callable[[], Credentials],
        verify: bool | str | None,
        connect_timeout: float,
        read_timeout: float,
        expect_continue: bool = False,
    ) -> None:
        self.expect_continue = expect_continue
        if endpoint is None:
            endpoint = f"https://s3.{region}.amazonaws.com"
        parsed = urllib.parse.urlsplit(endpoint)
        self.scheme = parsed.scheme
        self.host = parsed.hostname or ""
        self.port = parsed.port or (443 if self.scheme == "https" else 80)
        self.base_path = parsed.path.rstrip("/")
        self.region = region
        self.virtual = addressing_style == "virtual"
        self.credentials = credentials
        context = None
        if self.scheme == "https":
            if verify is False:
                context = ssl._create_unverified_context()  # noqa: S323 - the provider's own verify_tls: false
            else:
                bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
                context = ssl.create_default_context(cafile=bundle)
        self.pool = _Pool(max(connect_timeout, read_timeout), context)
        self._keys: dict[tuple[str, str], bytes] = {}
        self._keys_lock = threading.Lock()

    # -- signing -----------------------------------------------------------------------------------

    def _signing_key(self, secret: str, day: str) -> bytes:
        with self._keys_lock:
            key = self._keys.get((secret, day))
            if key is None:
                key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
                for part in (self.region, "s3", "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._keys = {(secret, day): key}
            return key

    def _target(self, bucket: str, key: str | None) -> tuple[str, int, str]:
        """(host, port, path) for an object (or, with ``key=None``, the bucket itself), in path or
        virtual-host style."""
        encoded = "/" + _quote(key, "/") if key is not None else ""
        if self.virtual:
            return f"{bucket}.{self.host}", self.port, f"{self.base_path}{encoded or '/'}"
        return self.host, self.port, f"{self.base_path}/{_quote(bucket)}{encoded}"

    def _sign(
        self,
        method: str,
        host: str,
        port: int,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        payload_hash: str,
    ) -> None:
        creds = self.credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = stamp[:8]
        default_port = 443 if self.scheme == "https" else 80
        headers["host"] = host if port == default_port else f"{host}:{port}"
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_hash
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        names = sorted(headers)
        canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
        signed = ";".join(names)
        canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))
        request = f"{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_hash}"
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(creds.secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )

    # -- requests ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        bucket: str,
        key: str | None,
        *,
        query: Mapping[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        operation: str,
    ) -> Response:
        """Send one signed request; error statuses raise the classified failover error."""
        query = dict(query or {})
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        host, port, path = self._target(bucket, key)
        if body and ("content-md5" in headers or "x-amz-checksum-crc32c" in headers):
            payload = "UNSIGNED-PAYLOAD"
        else:
            payload = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        if body is not None:
            headers["content-length"] = str(len(body))
        self._sign(method, host, port, path, query, headers, payload)
        url = path + ("?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query.items()) if query else "")
        head = (
            f"{method} {url} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        ).encode("latin-1")
        target = bucket if key is None else f"{bucket}/{key}"
        expect = self.expect_continue and body is not None and len(body) >= EXPECT_CONTINUE_MIN
        if expect:  # not signed: proxies may drop it, and a missing Expect only costs the early answer
            head = head[:-2] + b"expect: 100-continue\r\n\r\n"
        for attempt in (1, 2):
            conn: _Connection | None = None
            reused = False
            try:
                conn, reused = self.pool.acquire(host, port)
                early = conn.send_expecting(head, body, EXPECT_CONTINUE_WAIT) if expect and body else None
                if early is None and not expect:
                    conn.send(head, body)
                status, found = early or conn.read_head()
                if early is not None:
                    found = {**found, "connection": "close"}  # the unsent body leaves the connection unusable
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                # A kept-alive connection the server already closed: try once on a fresh one.
                stale = isinstance(exc, ConnectionError | http.client.RemoteDisconnected | http.client.BadStatusLine)
                if reused and attempt == 1 and stale:
                    continue
                error = _network_error(exc, operation)
                error.target = target
                raise error from exc
            response = Response(self.pool, conn, status, found, method)
            if status >= 300:
                raise self._error(response, operation, target)
            return response
        raise AssertionError("unreachable")

    def _error(self, response: Response, operation: str, target: str) -> FailoverError:
        try:
            body = response.read(65536) if response.status != 304 else b""
        except FailoverError:
            body = b""
        response.close()
        code, message = str(response.status), http.client.responses.get(response.status, "")
        if body:
            with contextlib.suppress(ElementTree.ParseError):
                # A short error document from the server; expat >= 2.4 refuses entity expansion bombs.
                root = ElementTree.fromstring(body)  # noqa: S314
                code = root.findtext("Code") or code
                message = root.findtext("Message") or message
        return classify(code, response.status, message, response.headers, operation=operation, target=target)

    def close(self) -> None:
        self.pool.close()


_META_PREFIX = "x-amz-meta-"
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    return {name[len(_META_PREFIX) :]: value for name, value in headers.items() if name.startswith(_META_PREFIX)}


def content_range(value: str) -> tuple[int, int] | None:
    """(first byte, total size) of a Content-Range header."""
    match = _RANGE.fullmatch(value.strip())
    if not match:
        return None
    start = int(match.group(1))
    total = int(match.group(3)) if match.group(3) != "*" else -1
    return start, total


_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str | None
    last_modified: dt.datetime | None


@dataclass(frozen=True)
class ListPage:
    objects: list[ListedObject]
    truncated: bool
    next_token: str | None


def _timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(text)
    return None


def parse_list_page(body: bytes) -> ListPage:
    """A ListObjectsV2 response. Keys are decoded only if the server says it URL-encoded them."""
    root = ElementTree.fromstring(body)  # noqa: S314 - a listing from the configured server
    ns = _S3_NS if root.tag.startswith(_S3_NS) else ""
    encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    objects = []
    for item in root.iterfind(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        if encoded:
            key = urllib.parse.unquote_plus(key)
        etag = item.findtext(f"{ns}ETag")
        objects.append(
            ListedObject(
                key=key,
                size=int(item.findtext(f"{ns}Size") or 0),
                etag=etag.strip('"') if etag else None,
                last_modified=_timestamp(item.findtext(f"{ns}LastModified")),
            )
        )
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
    return ListPage(objects, truncated, root.findtext(f"{ns}NextContinuationToken") or None)
