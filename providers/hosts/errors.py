"""paramiko and socket errors -> failover errors, in one place for the ``hosts`` adapter."""

from __future__ import annotations

import socket

import paramiko

from failover.errors import AuthError, ProviderError, Transient, converter

__all__ = ["converted", "translate"]


def translate(exc: Exception, *, operation: str = "", target: str = "") -> ProviderError:
    if isinstance(exc, paramiko.BadHostKeyException):
        return AuthError(
            f"the host key of {target} is not the one pinned in the providers file",
            operation=operation,
            target=target,
            hint="if the host was rebuilt, check its new key out of band and update host_key",
        )
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return AuthError(f"{target} has no pinned host key", operation=operation, target=target)
    if isinstance(exc, paramiko.AuthenticationException):
        return AuthError(
            f"SSH login refused: {exc}", operation=operation, target=target, hint="check user and identity_file"
        )
    if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError, paramiko.ssh_exception.NoValidConnectionsError)):
        return Transient(f"cannot reach {target} over SSH: {exc}", operation=operation, target=target)
    if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
        return Transient(f"SSH to {target} failed: {exc}", operation=operation, target=target)
    return ProviderError(str(exc), operation=operation, target=target)


converted = converter((paramiko.SSHException, OSError, EOFError), translate)
"""Wrap every SSH call: ``with converted("create", host): ...``."""
