"""User-metadata values as HTTP header values.

Header values are ASCII and lose surrounding whitespace, so a value that is not plain ASCII text
(non-ASCII characters, control characters, leading or trailing spaces) is written as an RFC 2047
encoded-word, which is what Amazon S3 itself returns for such values, and decoded again on read.
Shared by every adapter that carries metadata in HTTP headers.
"""

from __future__ import annotations

import base64
import email.utils
import re
from datetime import UTC, datetime

__all__ = ["decode_value", "encode_value", "http_date"]

_ENCODED_WORD = re.compile(r"=\?utf-8\?([bq])\?([^?]*)\?=", re.IGNORECASE)


def _plain(value: str) -> bool:
    return value.isascii() and value.isprintable() and value == value.strip()


def encode_value(value: str) -> str:
    if _plain(value):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="


def decode_value(value: str) -> str:
    match = _ENCODED_WORD.fullmatch(value.strip())
    if not match:
        return value
    kind, payload = match.group(1).lower(), match.group(2)
    try:
        if kind == "b":
            return base64.b64decode(payload).decode()
        raw = re.sub(r"=([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), payload.replace("_", " "))
        return raw.encode("latin-1").decode()
    except (ValueError, UnicodeError):
        return value


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header (Last-Modified, Expires) in UTC; None when absent or not a date."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None
