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
import urllib.parse
from datetime import UTC, datetime

__all__ = [
    "decode_header_token",
    "decode_identifier",
    "decode_value",
    "encode_header_token",
    "encode_identifier",
    "encode_value",
    "http_date",
]

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


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def encode_identifier(name: str) -> str:
    """A metadata name as an identifier (letters, digits, "_"; not starting with a digit), for stores
    whose metadata names must be C# identifiers (Azure Blob storage). Every other character becomes
    ``_xHHHH_`` (its UTF-16 code unit, as .NET's XmlConvert.EncodeName writes it), and so does a "_"
    that starts ``_x``, so that every name decodes back to itself: "failover-sha256" is stored as
    "failover_x002D_sha256". Names that are identifiers already are kept as they are."""
    if _IDENTIFIER.fullmatch(name) and "_x" not in name:
        return name
    out: list[str] = []
    for index, char in enumerate(name):
        keep = char.isascii() and (char.isalpha() or char == "_" or (char.isdigit() and index > 0))
        if char == "_" and name[index + 1 : index + 2] == "x":
            keep = False
        if keep:
            out.append(char)
        else:
            units = char.encode("utf-16-be")
            out.extend(f"_x{units[i : i + 2].hex().upper()}_" for i in range(0, len(units), 2))
    return "".join(out)


def decode_identifier(name: str) -> str:
    """The name :func:`encode_identifier` was given (a name with no escapes is returned as it is)."""
    if "_x" not in name:
        return name
    units = bytearray()
    out: list[str] = []
    position = 0
    for match in _ESCAPE.finditer(name):
        if match.start() != position:
            if units:
                out.append(units.decode("utf-16-be", errors="replace"))
                units.clear()
            out.append(name[position : match.start()])
        units += bytes.fromhex(match.group(1))
        position = match.end()
    if units:
        out.append(units.decode("utf-16-be", errors="replace"))
    out.append(name[position:])
    return "".join(out)


_TOKEN_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def encode_header_token(name: str) -> str:
    """A name as part of a header name that survives a server which folds header names' case and,
    behind WSGI, conflates "-" with "_" (Swift's container metadata): lowercase letters, digits and
    "-" are kept, every other byte is written ``%HH``. "Cost_Centre" is stored as "%43ost%5F%43entre"."""
    return "".join(c if c in _TOKEN_KEPT else "".join(f"%{b:02X}" for b in c.encode()) for c in name)


def decode_header_token(name: str) -> str:
    """The name :func:`encode_header_token` was given, from the header name as the server returns
    it (in any case); a name it did not write reads as its lowercase self."""
    return urllib.parse.unquote(name.lower(), errors="replace")


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header (Last-Modified, Expires) in UTC; None when absent or not a date."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None
