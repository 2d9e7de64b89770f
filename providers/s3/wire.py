"""The s3 adapter's one data path: signed S3 requests on urllib3 connection pools.

Every request the adapter makes goes through :meth:`Wire.request`: object reads, writes, listings,
multipart uploads, tags, copies and bucket calls alike, so there is one place that signs, one that
checks headers (:func:`~.codec.check_header`), one that maps errors (:func:`~.errors.classify`), one
TLS configuration and one connection pool per host. The connections are botocore's
``AWSHTTPConnection`` (a urllib3 connection that implements ``Expect: 100-continue``, so a refused
8 MiB part costs its headers, not its body); boto3's client machinery is not involved (its event
hooks, models and parsers cost more CPU per request than the rest of a small-object copy, and
loading them costs every run ~0.5 s before the first request).
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool

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


def network_error(exc: BaseException, operation: str, target: str) -> ProviderError:
    """A transport failure (no HTTP answer) as a failover error."""
    refused = untrusted_certificate(exc, operation=operation, target=target)
    if refused is not None:
        return refused
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # refused (urllib3 files it under timeouts)
        return ConnectionLost(f"cannot connect: {exc}", operation=operation, target=target)
    if isinstance(exc, urllib3.exceptions.TimeoutError | socket.timeout | TimeoutError):
        return Timeout(f"timed out: {exc}", operation=operation, target=target)
    if isinstance(exc, urllib3.exceptions.ProtocolError) and "IncompleteRead" in repr(exc):
        return IntegrityError(f"truncated body: {exc}", operation=operation, target=target)
    return ConnectionLost(f"{type(exc).__name__}: {exc}", operation=operation, target=target)


class Reply:
    """An answered request. ``read`` streams the body; ``close`` returns the connection to its pool
    only when the body was read to its end (otherwise the connection is dropped)."""

    def __init__(self, response: Any, operation: str, target: str) -> None:
        self._response = response
        self.status: int = response.status
        self.headers: dict[str, str] = {k.lower(): v for k, v in response.headers.items()}
        self._operation = operation
        self._target = target
        self._closed = False
        self.data = b""
        """The whole body, for replies that were not streamed."""
        # botocore's connection sets this when the server answered before the body was sent
        # (Expect: 100-continue): the connection then holds an unsent body and cannot be reused.
        connection = getattr(response, "connection", None)
        self._reusable = not getattr(connection, "_response_received", False)

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._response.read(None if size < 0 else size, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._drop()
            raise network_error(exc, "read", self._target) from exc
        return data

    def readall(self) -> bytes:
        try:
            return self.read()
        finally:
            self.close()

    def _drop(self) -> None:
        if not self._closed:
            self._closed = True
            connection = getattr(self._response, "connection", None)
            self._response.close()
            if connection is not None:
                connection.close()
            self._response.release_conn()

    def close(self) -> None:
        if self._closed:
            return
        if self._reusable and self._response.isclosed():
            self._closed = True
            self._response.release_conn()
        else:
            self._drop()


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
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pool_size = pool_size
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        if self.scheme == "https":
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
            else:
                bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
                context = ssl.create_default_context(cafile=bundle or None)
            self._ssl = context

    @property
    def label(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{self.host}" + ("" if self.port == default else f":{self.port}")

    def _pool(self, host: str) -> Any:
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                if self.scheme == "https":
                    pool = AWSHTTPSConnectionPool(
                        host,
                        self.port,
                        maxsize=self.pool_size,
                        block=False,
                        timeout=self.timeout,
                        retries=False,
                        ssl_context=self._ssl,
                        assert_hostname=False if self._ssl and not self._ssl.check_hostname else None,
                    )
                else:
                    pool = AWSHTTPConnectionPool(
                        host, self.port, maxsize=self.pool_size, block=False, timeout=self.timeout, retries=False
                    )
                self._pools[host] = pool
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
        try:
            response = self._pool(host).urlopen(
                method,
                url,
                body=body,
                headers=wire_headers,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
                release_conn=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise network_error(exc, operation, target) from exc
        reply = Reply(response, operation, target)
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
