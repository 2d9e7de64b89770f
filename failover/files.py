"""Writing a file so that a crash never leaves it half-written: the one helper every report, run
state, lab state and generated providers file goes through."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, text: str | Callable[[Callable[[str], object]], None], *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text``: written beside it under a unique name, fsynced, renamed into
    place, and the directory fsynced, so after a crash (``kill -9``, power loss) the file holds
    either its old content or the new one. ``text`` may be a writer, called with a function that
    writes a piece (a report too large to hold as one string). ``mode``: the file's permissions
    (e.g. 0o600 for one that names where credentials are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            if isinstance(text, str):
                handle.write(text)
            else:
                text(handle.write)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
