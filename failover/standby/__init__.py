"""``failover standby``: a target that follows the source (change feed, listings, reconciliation)."""

from .engine import PendingDeletes, Standby, StandbyOptions
from .status import StandbyStatus, read_status, status_is_fresh

__all__ = ["PendingDeletes", "Standby", "StandbyOptions", "StandbyStatus", "read_status", "status_is_fresh"]
