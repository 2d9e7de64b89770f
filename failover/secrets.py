"""Secret values and their redaction.

Credentials are read from the environment (or an AWS profile) when an adapter is built, wrapped in
:class:`Secret` (whose ``repr`` and ``str`` never show the value) and registered here. Every log record,
report and error message this project writes passes through :func:`redact`, which removes registered
values in raw, base64 and URL-encoded form, and request signatures of any kind.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import urllib.parse

__all__ = ["RedactingFilter", "Secret", "display_url", "redact", "register_secret", "register_url_secrets"]

MASK = "***"
_MIN_LENGTH = 8  # shorter values would redact ordinary words ("wrong", "test")

_lock = threading.Lock()
_variants: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Signatures are not secrets themselves but grant access while valid: presigned URLs, SigV4 headers.
_SIGNATURE_PATTERNS = [
    re.compile(r"(?i)(X-Amz-Signature=)[0-9a-f]+"),
    re.compile(r"(?i)(X-Amz-Credential=)[^&\s\"']+"),
    re.compile(r"(?i)(X-Amz-Security-Token=)[^&\s\"']+"),
    re.compile(r"(?i)(Signature=)[A-Za-z0-9%+/=]+"),
    re.compile(r"(?i)(Signature:\s*)[0-9a-f]{32,}"),  # botocore's debug log of a SigV4 signature
    re.compile(r"(?i)(Credential=)[^,&\s\"']+"),
    re.compile(r"(?i)(\"?authorization\"?\s*[:=]\s*\"?)[^\"\n]+"),
    re.compile(r"(?i)(x-amz-security-token\"?\s*[:=]\s*\"?)[^\"\s,]+"),
    re.compile(r"(?i)(x-api-key\"?\s*[:=]\s*\"?)[^\"\s,]+"),
]


def _forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
    }
    return {form for form in forms if len(form) >= _MIN_LENGTH}


def register_secret(value: str) -> None:
    """Make ``value`` (and its encodings) disappear from everything :func:`redact` sees."""
    global _pattern
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        before = len(_variants)
        _variants.update(_forms(value))
        if len(_variants) != before:
            ordered = sorted(_variants, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def register_url_secrets(url: str) -> None:
    """A URL that may carry a token (a webhook: in its path, its query or its user info): register
    the whole URL and each of those parts, so no output shows them."""
    register_secret(url)
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:
        return
    if parsed.password:
        register_secret(parsed.password)
    tail = parsed.path + ("?" + parsed.query if parsed.query else "")
    if len(tail) >= _MIN_LENGTH:
        register_secret(tail)
    for _, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=False):
        register_secret(value)
    for segment in parsed.path.split("/"):
        if len(segment) >= 16 or (len(segment) >= _MIN_LENGTH and any(c.isdigit() for c in segment)):
            register_secret(segment)


def display_url(url: str) -> str:
    """How a URL that may carry a token is shown: scheme and host only."""
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname or "?"
    except ValueError:
        return "(a URL)"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}/\u2026"


def redact(text: str) -> str:
    """``text`` with every registered secret and every request signature masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for signature in _SIGNATURE_PATTERNS:
        text = signature.sub(lambda m: m.group(1) + MASK, text)
    return text


class Secret:
    """A credential value. ``str()``, ``repr()`` and formatting show ``***``; :meth:`reveal` is the
    only way to the value, and is called only where the value is handed to an SDK."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> str:
        raise TypeError("secrets are not serialisable")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message (and any traceback text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg = redact(message)
        record.args = None
        return True
