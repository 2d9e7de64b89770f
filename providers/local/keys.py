"""Object keys <-> path segments for the local store.

Each '/'-separated segment of a key becomes one path component, escaped so that every key maps to
exactly one safe name and back:

* ``%`` is written ``%25`` and NUL ``%00``, so a literal ``%`` never starts anything else;
* an empty segment (``a//b``, ``/a``, ``a/``) is the name ``%``;
* ``.`` and ``..`` are ``%2E`` and ``%2E%2E``: no key can name the current or parent directory.

Names that contain ``%`` followed by anything other than two hex digits are reserved for the store
itself (``%meta``, ``%tmp``) and can never be produced by a key.
"""

from __future__ import annotations

import re

__all__ = ["META_DIR", "NAME_MAX", "TMP_DIR", "escape_segment", "key_to_parts", "unescape_segment"]

META_DIR = "%meta"
TMP_DIR = "%tmp"
NAME_MAX = 255
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def escape_segment(segment: str) -> str:
    if segment == "":
        return "%"
    if segment in (".", ".."):
        return segment.replace(".", "%2E")
    return segment.replace("%", "%25").replace("\0", "%00")


def unescape_segment(name: str) -> str | None:
    """The segment a name stands for, or None for names no key produces (reserved or foreign)."""
    if name == "%":
        return ""
    segment = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)
    return segment if escape_segment(segment) == name else None


def key_to_parts(key: str) -> list[str]:
    return [escape_segment(segment) for segment in key.split("/")]
