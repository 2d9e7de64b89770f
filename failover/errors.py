"""The project's error tree.

Every failure a user can meet is one of these. Adapters convert SDK exceptions into them in one module
per provider (``raise ... from exc``), so nothing above ``providers/`` ever catches a boto3 or libcloud
exception. The CLI maps each class to a message and an exit code.

::

    FailoverError
     ├ ConfigError            bad providers file, missing credentials, unknown provider
     ├ PlaybookError          syntax / validation (with file:line) / unknown step
     ├ StepFailed(step)
     └ ProviderError(provider, operation, retryable)
        ├ NotFound  ├ AlreadyExists  ├ AuthError  ├ NotSupported(capability)  ├ InvalidRequest
        ├ Stalled             an endpoint answered nothing within the run's deadline
        ├ Transient (Throttled, Timeout, ConnectionLost, ListingIncomplete)  -> retried
        └ IntegrityError      digest mismatch, truncated body
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = [
    "AlreadyExists",
    "AuthError",
    "ConfigError",
    "ConnectionLost",
    "FailoverError",
    "IntegrityError",
    "InvalidRequest",
    "ListingIncomplete",
    "NotFound",
    "NotSupported",
    "PlaybookError",
    "ProviderError",
    "Stalled",
    "StepFailed",
    "Throttled",
    "Timeout",
    "Transient",
    "converter",
]


class FailoverError(Exception):
    """Base of every error this project raises on purpose.

    ``hint`` says what the user can do about it; the CLI prints it under the message.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(FailoverError):
    """A providers file, option or credential reference is wrong; nothing was contacted."""

    exit_code = 2


class PlaybookError(FailoverError):
    """A playbook cannot be loaded or validated; nothing was run."""

    exit_code = 2


class Interrupted(FailoverError):
    """Stopped by Ctrl-C or SIGTERM after recording what was done; re-running the command resumes."""

    exit_code = 130


class StepFailed(FailoverError):
    """A playbook step ended in failure."""

    exit_code = 1

    def __init__(self, step: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"step {step!r} failed: {message}", hint=hint)
        self.step = step


class ProviderError(FailoverError):
    """An operation on a provider failed.

    ``provider`` is the configured provider name, ``operation`` what was being done (``put``,
    ``list_objects``...), ``target`` the bucket/key or resource, when there is one.
    ``retryable`` tells the retry policy whether trying again can help.
    """

    exit_code = 3
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        operation: str = "",
        target: str = "",
        hint: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.provider = provider
        self.operation = operation
        self.target = target
        self.retry_after = retry_after
        self.status = status

    def __str__(self) -> str:
        target = self.target if len(self.target) <= 120 else self.target[:117] + "..."
        where = " ".join(part for part in (self.provider, self.operation, target) if part)
        return f"{where}: {self.message}" if where else self.message


class NotFound(ProviderError):
    """The bucket, object or resource does not exist."""


class AlreadyExists(ProviderError):
    """The resource exists and is not ours to reuse (for example a bucket owned by another account)."""


class AuthError(ProviderError):
    """Credentials are missing, wrong, or lack a permission. Never retried."""

    exit_code = 4


class InvalidRequest(ProviderError):
    """The provider rejected the request as malformed (invalid bucket name, key too long...)."""


class NotSupported(ProviderError):
    """The provider does not declare the capability this operation needs."""

    def __init__(self, capability: str, *, provider: str = "", operation: str = "") -> None:
        super().__init__(
            f"not supported by this provider (capability {capability!r} is not declared)",
            provider=provider,
            operation=operation,
        )
        self.capability = capability


class Transient(ProviderError):
    """A failure that may pass: retried with backoff, a bounded number of times."""

    retryable = True


class Throttled(Transient):
    """429 or 503 SlowDown; ``retry_after`` carries the server's Retry-After, if it sent one."""


class Timeout(Transient):
    """The provider did not answer in time."""


class ConnectionLost(Transient):
    """The connection was refused, reset or closed mid-body."""


class ListingIncomplete(Transient):
    """A listing ended early: claimed truncation without a continuation token, or a page failed.

    Nothing may be deleted on the strength of a listing that raised this.
    """


class Stalled(ProviderError):
    """An endpoint stopped answering for longer than the run allows for making no progress."""


class IntegrityError(ProviderError):
    """Bytes did not arrive intact: digest mismatch or truncated body. The copy is not done."""

    retryable = True


Translate = Callable[..., FailoverError]


class Converted(Protocol):
    def __call__(self, operation: str, target: str = "") -> contextlib.AbstractContextManager[None]: ...


def converter(kinds: tuple[type[BaseException], ...], translate: Translate) -> Converted:
    """A context manager for one adapter: SDK exceptions of ``kinds`` raised inside it come out as
    ``translate(exc, operation=..., target=...)``, chained (``raise ... from``); failover errors
    pass through untouched. Each adapter builds its own from its own error module."""

    @contextlib.contextmanager
    def converted(operation: str, target: str = "") -> Iterator[None]:
        try:
            yield
        except FailoverError:
            raise
        except kinds as exc:
            raise translate(exc, operation=operation, target=target) from exc

    return converted
