"""HTTP error responses -> failover errors, by status code and by a provider family's own error
codes (a table per family). Shared by every adapter that speaks HTTP: the botocore families and
the PowerDNS API."""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from failover.errors import (
    AlreadyExists,
    AuthError,
    FailoverError,
    IntegrityError,
    InvalidRequest,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
)

__all__ = ["CodeTable", "retry_after", "untrusted_certificate"]

_CERTIFICATE_FAILURES = ("certificate verify failed", "certificate_verify_failed", "hostname mismatch", "wrong_version")


def untrusted_certificate(exc: BaseException, **common: Any) -> ProviderError | None:
    """A TLS handshake this machine refused (unknown CA, wrong host name, not TLS at all): never
    retried, and the message says what to configure. None for any other error."""
    chain: BaseException | None = exc
    while chain is not None:
        text = str(chain).lower()
        if isinstance(chain, ssl.SSLCertVerificationError) or any(f in text for f in _CERTIFICATE_FAILURES):
            return ProviderError(
                f"TLS: the server's certificate is not trusted here ({str(chain)[:200]})",
                hint="give this provider ca_bundle: <a file with its CA certificate>, or, for a test endpoint "
                "only, verify_tls: false",
                **common,
            )
        chain = chain.__cause__ or chain.__context__
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None


@dataclass(frozen=True)
class CodeTable:
    """A service family's error codes, by the failover error they become."""

    not_found: frozenset[str] = frozenset()
    not_found_suffix: str | None = None
    """Codes ending like this are NotFound too (EC2: ``InvalidInstanceID.NotFound``)."""
    auth: frozenset[str] = frozenset()
    throttled: frozenset[str] = frozenset()
    transient: frozenset[str] = frozenset()
    conflict: frozenset[str] = frozenset()
    integrity: frozenset[str] = frozenset()
    invalid: frozenset[str] = frozenset()
    hints: Mapping[str, str] = field(default_factory=dict)

    def classify(
        self, code: str, status: int, message: str, headers: Mapping[str, str], **common: Any
    ) -> FailoverError:
        text = f"{code}: {message}" if code and message and message != code else (message or code)
        common.update(status=status, hint=self.hints.get(code))
        suffix = self.not_found_suffix
        if code in self.not_found or status == 404 or (suffix is not None and code.endswith(suffix)):
            return NotFound(text, **common)
        if code in self.throttled or status in (429, 503):
            return Throttled(text, retry_after=retry_after(headers), **common)
        if code in self.auth or status in (401, 403):
            return AuthError(text, **common)
        if code in self.conflict:
            return AlreadyExists(text, **common)
        if code in self.integrity:
            return IntegrityError(text, **common)  # the body did not arrive as sent: worth another try
        if code in self.transient or status >= 500:
            return Transient(text, **common)
        if code in self.invalid or status in (400, 405, 411, 416, 422, 501):
            return InvalidRequest(text, **common)
        return ProviderError(text, **common)
