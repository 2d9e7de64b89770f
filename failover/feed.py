"""The change feed interface: what a source store says changed, for ``failover standby``.

A feed is a provider's ``feed:`` service (the providers file declares it; a store without one is
followed by listing it). On AWS and LocalStack it is S3 event notifications delivered to an SQS
queue (``failover.providers.aws.feed``); ``failover.testing`` has one in memory.

Contract, for every adapter:

* Delivery is at least once and unordered: an event can come twice, late, or after a later change of
  the same key. A standby therefore reads each key an event names by name and copies what the
  source holds *now*; events only say where to look. A feed that loses events is caught by the
  standby's periodic full reconciliation.
* An event is acknowledged (:meth:`ChangeFeed.ack`) only after the change it names is on the target
  (or found to need nothing); until then a crash delivers it again.
* Feed errors are :class:`~failover.errors.ProviderError`: :class:`~failover.errors.NotFound` when the
  feed is gone (its queue deleted; the standby falls back to listings and says so), ``retryable``
  ones for outages.
* Nothing here returns or logs credentials.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .changes import Change

__all__ = ["ChangeEvent", "ChangeFeed"]

EventKind = Literal["put", "delete"]


@dataclass(frozen=True)
class ChangeEvent:
    bucket: str
    key: str
    kind: EventKind
    """``put``: an object was written (created or overwritten); ``delete``: one was removed."""
    time: float
    """When the source changed (the event's own time, epoch seconds), not when it arrived."""
    receipt: str
    """Opaque: what :meth:`ChangeFeed.ack` needs to acknowledge the message that carried it."""
    size: int | None = None
    """The object's size as the event gives it (puts), for the bytes a standby is behind."""


class ChangeFeed(ABC):
    """One provider's feed of changes to its buckets (see the module's contract)."""

    name: str
    """The provider's name (for messages)."""

    @abstractmethod
    def plan_setup(self, buckets: Sequence[str]) -> list[Change]:
        """What :meth:`setup` would change for ``buckets`` (read-only; empty when all is in place)."""

    @abstractmethod
    def setup(self, buckets: Sequence[str]) -> list[Change]:
        """Create the feed for ``buckets`` (queue, notification configuration), keeping any other
        notification the buckets already have. Idempotent; returns what it changed."""

    @abstractmethod
    def teardown(self, buckets: Sequence[str]) -> list[Change]:
        """Remove what :meth:`setup` created for ``buckets`` and nothing else; idempotent."""

    @abstractmethod
    def check(self, buckets: Sequence[str]) -> None:
        """Raise :class:`~failover.errors.NotFound` (with a hint naming ``--setup-feed``) unless the
        feed exists and every bucket of ``buckets`` sends its changes to it."""

    @abstractmethod
    def receive(self, wait: float) -> list[ChangeEvent]:
        """The events waiting, after at most ``wait`` seconds of waiting for the first (a batch;
        empty when none came). Messages that are not change events (a test event) are acknowledged
        and left out."""

    @abstractmethod
    def ack(self, events: Sequence[ChangeEvent]) -> None:
        """Acknowledge ``events``: they are not delivered again."""

    @abstractmethod
    def backlog(self) -> int | None:
        """About how many messages wait in the feed, not yet received (None: the feed cannot say)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
