"""OSError -> failover errors for the local store (its only SDK is the operating system)."""

from __future__ import annotations

import errno

from failover.errors import AuthError, InvalidRequest, NotFound, ProviderError, Transient, converter

__all__ = ["converted", "translate"]


def translate(exc: OSError, *, operation: str = "", target: str = "") -> ProviderError:
    message = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        return NotFound("no such bucket or key", operation=operation, target=target)
    if isinstance(exc, PermissionError):
        return AuthError(f"permission denied: {message}", operation=operation, target=target)
    if exc.errno in (errno.ENAMETOOLONG,):
        return InvalidRequest("name too long for the filesystem", operation=operation, target=target)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ProviderError("no space left on the device", operation=operation, target=target, hint="free disk space")
    if exc.errno in (errno.EROFS,):
        return AuthError("the filesystem is read-only", operation=operation, target=target)
    if exc.errno in (errno.EINTR, errno.EAGAIN, errno.EBUSY, errno.ESTALE):
        return Transient(message, operation=operation, target=target)
    return ProviderError(message, operation=operation, target=target)


converted = converter((OSError,), translate)
"""Wrap every filesystem call: ``with converted("put", target): ...``."""
