"""What each step kind hands to later steps, to the rollback and to the run's budgets: one typed
model per kind, persisted in the run's state as JSON and read back with the same model.

The budgets ask every output the same two questions (:attr:`StepOutput.unverified_objects`,
:attr:`StepOutput.unhealthy_instances`); no reader knows another kind's field names.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "DnsCutoverOutput",
    "DnsPrepareOutput",
    "FleetInstance",
    "HealthOutput",
    "InventoryOutput",
    "NoOutput",
    "RehostOutput",
    "StandbyOutput",
    "StepOutput",
    "SyncOutput",
    "VerifyOutput",
]


class StepOutput(BaseModel):
    # Unknown fields are ignored: a state file written by an older version still loads.
    model_config = ConfigDict(extra="ignore", frozen=True)

    @property
    def unverified_objects(self) -> int:
        """Objects this step left unproven on the target (the unverified_objects budget)."""
        return 0

    @property
    def unhealthy_instances(self) -> int:
        """Instances this step found unhealthy (the unhealthy_instances budget)."""
        return 0

    @property
    def recovery_point(self) -> float | None:
        """The recovery point this step measured (the recovery_point_s budget; None: none)."""
        return None

    @property
    def notice(self) -> float | None:
        """When this step cut over (the recovery time counts from it; None: not a cutover)."""
        return None


class NoOutput(StepOutput):
    """Steps that hand nothing on (approval, notify)."""


class InventoryOutput(StepOutput):
    buckets: int = 0
    objects: int = 0


class SyncOutput(StepOutput):
    copied: int = 0
    bytes: int = 0
    unverified: int = 0

    @property
    def unverified_objects(self) -> int:
        return self.unverified


class StandbyOutput(StepOutput):
    notice_at: float | None = None
    recovery_point_s: float | None = None
    claimed_recovery_point_s: float | None = None
    """What the standby's own status said at the cutover (the measured value is recovery_point_s)."""
    writes: int = 0
    missing_at_cutover: list[str] = []
    missing_count: int = 0
    mode: str | None = None
    copies: int = 0
    drill_prefix: str | None = None
    dns: dict[str, Any] | None = None
    """The DNS standby's plan (target sets written, what they replaced), for the rollback."""

    @property
    def recovery_point(self) -> float | None:
        return self.recovery_point_s

    @property
    def notice(self) -> float | None:
        return self.notice_at


class VerifyOutput(StepOutput):
    missing: int = 0
    different: int = 0

    @property
    def unverified_objects(self) -> int:
        return self.missing + self.different


class FleetInstance(BaseModel):
    """One instance of a rehosted fleet: where traffic moves from and to."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    source: str
    """provider/id of the source instance."""
    source_address: str | None = None
    target_id: str | None = None
    target_address: str | None = None
    """None until the instance exists (a dry run plans with it missing)."""
    action: str | None = None
    healthy: bool | None = None
    health_url: str | None = None
    """The health-check URL (a template with {address} while planned)."""
    stopped: bool = False
    """Left stopped (a standby fleet): the cutover starts it."""


class RehostOutput(StepOutput):
    fleet: str
    instances: list[FleetInstance] = []
    unhealthy: int = 0
    planned: bool = False
    """A dry run's plan: the instances do not exist yet."""

    @property
    def unhealthy_instances(self) -> int:
        return self.unhealthy


class HealthOutput(StepOutput):
    unhealthy: int = 0

    @property
    def unhealthy_instances(self) -> int:
        return self.unhealthy


class DnsPrepareOutput(StepOutput):
    plan: dict[str, Any]
    """The :class:`~failover.cutover.PreparePlan` applied (what the rollback restores)."""
    lowered_at: float | None = None
    """When the TTLs were lowered (epoch seconds): the cutover waits out what is left of them."""
    longest_ttl: int = 0
    planned: bool = False


class DnsCutoverOutput(StepOutput):
    plan: dict[str, Any]
    """The :class:`~failover.cutover.CutoverPlan` applied (recorded before any change)."""
    result: dict[str, Any] | None = None
    planned: bool = False
