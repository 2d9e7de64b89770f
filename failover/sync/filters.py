"""Which source objects a sync considers: ``--include``/``--exclude`` globs, sizes and age.

Globs follow rclone's filtering rules, matched against the key relative to the sync's source
prefix: ``*`` is any run of characters but ``/``, ``**`` any run including ``/``, ``?`` one
character but ``/``, ``[...]`` a character class, ``{a,b}`` alternatives. A pattern starting with
``/`` is anchored at the prefix; otherwise it matches the end of the key at a ``/`` boundary
(``*.jpg`` matches ``a/b/c.jpg``), and one ending in ``/`` matches everything under such a
directory. An exclude wins; when any include is given, only keys that match one are considered.

Filtered keys are not copied and never deleted from the target (as with rclone, a filter protects
what it leaves out on both sides).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError

__all__ = ["Filters", "glob_regex", "parse_age", "parse_duration", "parse_size"]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_AGE_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}


def parse_size(text: str, option: str) -> int:
    """``100``, ``100k``, ``1.5G`` (binary units, as rclone: k = KiB) -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise ConfigError(f"{option} {text!r}: not a size", hint="write e.g. 512, 100k, 10M or 1.5G (binary units)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _duration(text: str) -> float | None:
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)", text.strip())
    if parts and "".join(f"{n}{u}" for n, u in parts) == text.strip():
        return sum(float(n) * _AGE_UNITS[u] for n, u in parts)
    return None


def parse_duration(text: str, option: str) -> float:
    """Seconds of ``90s``, ``30m``, ``1h30m`` (as rclone), or of a plain number of seconds."""
    seconds = _duration(text)
    if seconds is None:
        try:
            seconds = float(text)
        except ValueError:
            raise ConfigError(f"{option} {text!r}: not a duration", hint="write e.g. 2, 90s, 30m or 1h") from None
    if seconds < 0:
        raise ConfigError(f"{option} {text!r}: a duration cannot be negative")
    return seconds


def parse_age(text: str, option: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w``, ``1h30m`` (as rclone), or a date/time (ISO 8601)."""
    seconds = _duration(text)
    if seconds is not None:
        return timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: not an age", hint="write e.g. 90s, 30m, 12h, 7d, 2w or 2026-11-30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime.now(UTC) - moment


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of one rclone-style glob (see the module's docstring)."""
    anchored = pattern.startswith("/")
    body = pattern.lstrip("/")
    directory = body.endswith("/")
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(body):
        char = body[i]
        if body.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = body.find("]", i + 1)
            if close < 0:
                raise ConfigError(f"filter {pattern!r}: '[' without ']'")
            out.append("[" + body[i + 1 : close].replace("\\", "\\\\") + "]")
            i = close
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        elif char == "\\" and i + 1 < len(body):
            i += 1
            out.append(re.escape(body[i]))
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        raise ConfigError(f"filter {pattern!r}: '{{' without '}}'")
    start = "^" if anchored else "(?:^|/)"
    end = ".*$" if directory else "$"
    return re.compile(start + "".join(out) + end, re.DOTALL)


@dataclass(frozen=True)
class Filters:
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    min_size: int | None = None
    max_size: int | None = None
    max_age: timedelta | None = None
    _include: tuple[re.Pattern[str], ...] = field(default=(), init=False, repr=False, compare=False)
    _exclude: tuple[re.Pattern[str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", tuple(glob_regex(p) for p in self.include))
        object.__setattr__(self, "_exclude", tuple(glob_regex(p) for p in self.exclude))

    @property
    def active(self) -> bool:
        return bool(
            self.include or self.exclude or self.min_size is not None or self.max_size is not None or self.max_age
        )

    def name_refused(self, relative_key: str) -> str | None:
        """Why the globs leave this key out (None: they do not)."""
        for pattern, regex in zip(self.exclude, self._exclude, strict=True):
            if regex.search(relative_key):
                return f"excluded by --exclude {pattern}"
        if self._include and not any(regex.search(relative_key) for regex in self._include):
            return "matches no --include"
        return None

    def size_refused(self, size: int) -> str | None:
        if self.min_size is not None and size < self.min_size:
            return f"smaller than --min-size ({size} < {self.min_size} bytes)"
        if self.max_size is not None and size > self.max_size:
            return f"larger than --max-size ({size} > {self.max_size} bytes)"
        return None

    def refused(self, relative_key: str, size: int, modified: datetime | None) -> str | None:
        """Why a source object is left out of the sync (None: it is in)."""
        reason = self.name_refused(relative_key) or self.size_refused(size)
        if reason is None and self.max_age is not None:
            if modified is None:
                return "its age is unknown (the source gives no modification time) and --max-age is set"
            age = datetime.now(UTC) - (modified if modified.tzinfo else modified.replace(tzinfo=UTC))
            if age > self.max_age:
                return f"older than --max-age ({age.total_seconds():.0f} s)"
        return reason
