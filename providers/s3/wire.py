"""The s3 adapter's one data path: signed S3 requests on kept-alive HTTP connections.

Every request the adapter makes goes through :meth:`Wire.request`: object reads, writes, listings,
multipart uploads, tags, copies and bucket calls alike, so there is one place that signs, one that
checks headers (:func:`~.codec.check_header`), one that maps errors (:func:`~.errors.classify`), one
TLS configuration and one pool of idle connections per host.

The HTTP protocol is the standard library's ``http.client`` (request framing, chunked and
length-delimited bodies, header parsing), with botocore's ``AWSConnection`` mixin for
``Expect: 100-continue`` (a refused 8 MiB part costs its headers, not its body). Why not urllib3's
pools, which wrap the same ``http.client``: measured here, a small GET costs 0.32-0.36 ms of CPU
through ``AWSHTTPConnectionPool.urlopen`` and 0.18 ms on the connection directly, and copying a
small object takes two requests on a machine whose two cores the servers share. boto3's client
machinery is not involved at all (event hooks, models and parsers, and ~0.5 s of loading before
the first request).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from botocore.awsrequest import AWSConnection

from failover.errors import ConnectionLost, IntegrityError, ProviderError, Timeout

from ..http_errors import untrusted_certificate
from .codec import check_header, error_code
from .errors import classify
from .signing import EMPTY_SHA256, UNSIGNED_PAYLOAD, Credentials, Signer, quote

__all__ = ["EXPECT_CONTINUE_MIN", "Reply", "Wire"]

EXPECT_CONTINUE_MIN = 1024 * 1024
"""Bodies from this size ask ``Expect: 100-continue`` (where the vendor answers it)."""
_USER_AGENT = "failover"
_ERROR_BODY_LIMIT = 65536
_log = logging.getLogger("failover.s3.wire")
_UNLOGGED_HEADERS = frozenset({"authorization", "x-amz-security-token"})
"""Never logged, not even with --debug: the signature and the session token."""


_MAX_IDLE = 64
_STALE = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, http.client.BadStatusLine)
"""What a kept-alive connection the server closed meanwhile fails with: sent again on a fresh one."""


def network_error(exc: BaseException, operation: str, target: str) -> ProviderError:
    """A transport failure (no HTTP answer) as a failover error."""
    refused = untrusted_certificate(exc, operation=operation, target=target)
    if refused is not None:
        return refused
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionLost(f"cannot connect: {exc}", operation=operation, target=target)
    if isinstance(exc, socket.timeout | TimeoutError):
        return Timeout(f"timed out: {exc}", operation=operation, target=target)
    if isinstance(exc, http.client.IncompleteRead):
        return IntegrityError(f"truncated body: {exc!r}", operation=operation, target=target)
    return ConnectionLost(f"{type(exc).__name__}: {exc}", operation=operation, target=target)


class _Tuned:
    """What both connection classes add: a connect timeout of its own (the read timeout stays for
    the answer), and TCP_NODELAY (requests are small and latency-bound)."""

    timeout: float | None
    sock: socket.socket

    def __init__(self, host: str, port: int, *, connect_timeout: float, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(host, port, timeout=read_timeout, **kwargs)  # type: ignore[call-arg] # the http.client class next in the MRO
        self.connect_timeout = connect_timeout

    def connect(self) -> None:
        read_timeout, self.timeout = self.timeout, self.connect_timeout
        try:
            super().connect()  # type: ignore[misc] # the http.client class next in the MRO
        finally:
            self.timeout = read_timeout
        self.sock.settimeout(read_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Connection(_Tuned, AWSConnection, http.client.HTTPConnection):  # type: ignore[misc] # botocore-stubs type it for urllib3
    """A plain-HTTP connection with botocore's Expect: 100-continue handling."""


class _TlsConnection(_Tuned, AWSConnection, http.client.HTTPSConnection):  # type: ignore[misc] # as above
    """The same over TLS (the context carries the verification settings)."""


class _Pool:
    """Idle kept-alive connections to one host, shared by every thread."""

    def __init__(self, factory: Callable[[], http.client.HTTPConnection], size: int) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (it may have been closed by the server)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._factory(), False

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < min(self._size, _MAX_IDLE):
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Reply:
    """An answered request. ``read`` streams the body; ``close`` returns the connection to its pool
    only when the body was read to its end (otherwise the connection is dropped)."""

    def __init__(
        self, response: http.client.HTTPResponse, conn: http.client.HTTPConnection, pool: _Pool, target: str
    ) -> None:
        self._response = response
        self._conn: http.client.HTTPConnection | None = conn
        self._pool = pool
        self.status: int = response.status
        self.headers: dict[str, str] = {k.lower(): v for k, v in response.getheaders()}
        self._target = target
        self.data = b""
        """The whole body, for replies that were not streamed."""
        # botocore's connection sets this when the server answered before the body was sent
        # (Expect: 100-continue): the connection then holds an unsent body and cannot be reused.
        self._reusable = not getattr(conn, "_response_received", False)

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._response.read(None if size < 0 else size)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise network_error(exc, "read", self._target) from exc

    def readall(self) -> bytes:
        try:
            return self.read()
        finally:
            self.close()

    def _drop(self) -> None:
        if self._conn is not None:
            self._response.close()
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is None:
            return
        if self._reusable and self._response.isclosed() and not self._response.will_close:
            conn, self._conn = self._conn, None
            self._pool.put(conn)
        else:
            self._drop()


def _log_exchange(
    method: str, host: str, url: str, sent: Mapping[str, str], size: int, reply: Reply, seconds: float, reused: bool
) -> None:
    """One --debug line per request: what was sent (never the signature or a token) and what came back."""
    headers = " ".join(f"{k}={v!r}" for k, v in sorted(sent.items()) if k not in _UNLOGGED_HEADERS)
    answered = " ".join(
        f"{k}={reply.headers[k]!r}"
        for k in ("content-length", "content-type", "etag", "x-amz-request-id", "x-amz-version-id")
        if k in reply.headers
    )
    _log.debug(
        "%s %s%s (%d bytes, %s connection) [%s] -> %d in %.1f ms [%s]",
        method,
        host,
        url,
        size,
        "kept-alive" if reused else "new",
        headers,
        reply.status,
        seconds * 1000,
        answered,
    )


class Wire:
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
        expect_continue: bool,
        pool_size: int,
    ) -> None:
        if endpoint is None:
            endpoint = f"https://s3.{region}.amazonaws.com"
        parsed = urllib.parse.urlsplit(endpoint)
        self.scheme = parsed.scheme
        self.host = parsed.hostname or ""
        self.port = parsed.port or (443 if self.scheme == "https" else 80)
        self.base_path = parsed.path.rstrip("/")
        self.virtual = addressing_style == "virtual"
        self.signer = Signer(region, credentials)
        self.expect_continue = expect_continue
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        if self.scheme == "https":
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
                context = ssl.create_default_context(cafile=bundle or None)
            self._ssl = context

    @property
    def label(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{self.host}" + ("" if self.port == default else f":{self.port}")

    def _pool(self, host: str) -> _Pool:
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                timeouts = {"connect_timeout": self.connect_timeout, "read_timeout": self.read_timeout}
                if self._ssl is not None:
                    context = self._ssl

                    def factory() -> http.client.HTTPConnection:
                        return _TlsConnection(host, self.port, context=context, **timeouts)

                else:

                    def factory() -> http.client.HTTPConnection:
                        return _Connection(host, self.port, **timeouts)

                pool = self._pools[host] = _Pool(factory, self.pool_size)
            return pool

    def _where(self, bucket: str | None, key: str | None) -> tuple[str, str]:
        """(host, path) in path or virtual-host style; ``bucket=None`` is the service itself."""
        encoded = "/" + quote(key, "/") if key is not None else ""
        if bucket is None:
            return self.host, f"{self.base_path}/"
        if self.virtual:
            return f"{bucket}.{self.host}", f"{self.base_path}{encoded or '/'}"
        return self.host, f"{self.base_path}/{quote(bucket)}{encoded}"

    def request(
        self,
        method: str,
        bucket: str | None,
        key: str | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        operation: str,
        stream: bool = False,
        checked_body: bool = False,
    ) -> Reply:
        """Send one signed request. Error statuses raise the classified failover error; so does an
        S3 error document in a 200 answer (CompleteMultipartUpload, CopyObject). Without
        ``stream`` the body is read, and the connection returned, before this returns.
        ``checked_body``: the headers carry a checksum of ``body`` the server verifies (so the
        payload is signed as UNSIGNED-PAYLOAD and no second hash pass is spent on it)."""
        target = bucket or ""
        if key is not None:
            target = f"{bucket}/{key}"
        query = dict(query or {})
        sent: dict[str, str] = {}
        for name, value in (headers or {}).items():
            lower = name.lower()
            check_header(lower, value)
            sent[lower] = value
        host, path = self._where(bucket, key)
        payload = EMPTY_SHA256
        if body:
            payload = UNSIGNED_PAYLOAD if checked_body else hashlib.sha256(body).hexdigest()
        if body is not None or method in ("PUT", "POST"):
            sent["content-length"] = str(len(body or b""))
        sent["user-agent"] = _USER_AGENT
        default_port = 443 if self.scheme == "https" else 80
        self.signer.sign(
            method, host if self.port == default_port else f"{host}:{self.port}", path, query, sent, payload
        )
        url = path + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()) if query else "")
        wire_headers: dict[str, Any] = dict(sent)
        if self.expect_continue and body is not None and len(body) >= EXPECT_CONTINUE_MIN:
            # Not signed: a proxy may drop it, and a missing Expect only costs the early answer.
            wire_headers["Expect"] = b"100-continue"
        pool = self._pool(host)
        debug = _log.isEnabledFor(logging.DEBUG)
        started = time.monotonic() if debug else 0.0
        for attempt in (1, 2):
            conn, reused = pool.get()
            try:
                conn.request(method, url, body=body, headers=wire_headers)
                response = conn.getresponse()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if debug:
                    _log.debug(
                        "%s %s%s failed on a %s connection: %r",
                        method,
                        host,
                        url,
                        "kept-alive" if reused else "new",
                        exc,
                    )
                if reused and attempt == 1 and isinstance(exc, _STALE):
                    continue  # the server had closed this kept-alive connection: once more, on a fresh one
                raise network_error(exc, operation, target) from exc
        reply = Reply(response, conn, pool, target)
        if debug:
            _log_exchange(method, host, url, sent, len(body or b""), reply, time.monotonic() - started, reused)
        if reply.status >= 300:
            raise self._error(reply, method, operation, target)
        if stream:
            return reply
        data = reply.readall()
        if method in ("POST", "PUT") and data.lstrip().startswith(b"<?xml") and b"<Error>" in data[:512]:
            # S3 answers some requests 200 and reports the failure in the body.
            code, message = error_code(data)
            if code is not None:
                raise classify(code, 500, message or code, reply.headers, operation=operation, target=target)
        reply.data = data
        return reply

    def _error(self, reply: Reply, method: str, operation: str, target: str) -> ProviderError:
        body = b""
        if method != "HEAD" and reply.status != 304:
            try:
                body = reply.read(_ERROR_BODY_LIMIT)
            except ProviderError:
                body = b""
        reply.close()
        code, message = error_code(body) if body else (None, None)
        error = classify(
            code or str(reply.status),
            reply.status,
            message or reply.headers.get("x-amz-error-message") or "",
            reply.headers,
            operation=operation,
            target=target,
        )
        return error if isinstance(error, ProviderError) else ProviderError(str(error))

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
