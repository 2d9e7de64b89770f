"""The playbook format: a typed schema. Unknown keys and bad values are errors (reported with
``file:line`` by the loader); secrets appear only as references to the environment.

::

    version: 1
    name: evacuate-aws
    description: what this playbook does and when to run it
    variables: {source: aws, target: onprem}        # "{{ source }}" anywhere in a string
    on_failure: rollback                              # or stop (keep what was done; re-run resumes)
    budgets: {recovery_time_s: 900, unverified_objects: 0}
    steps:
      - id: copy-media
        kind: sync
        source: "{{ source }}:"
        target: "{{ target }}:"
        needs: [inventory]
    rollback:                                         # handlers run after the automatic undo
      - {id: tell-on-call, kind: notify, url: "https://chat.example.com/hooks/ops", message: "rolled back"}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..errors import FailoverError

__all__ = [
    "ApprovalStep",
    "Budgets",
    "DnsCutoverStep",
    "DnsPrepareStep",
    "EnvRef",
    "FleetRef",
    "HealthStep",
    "InventoryStep",
    "NotifyStep",
    "Playbook",
    "RehostStep",
    "StandbyStep",
    "Step",
    "StepSpec",
    "SyncStep",
    "VerifyStep",
]

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""Step ids and playbook names: lower-case letters, digits, '-' and '_'."""
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ProviderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
Zone = Annotated[str, Field(pattern=r"^([a-zA-Z0-9_-]+\.)*[a-zA-Z0-9_-]+\.?$")]
UrlTemplate = Annotated[str, Field(pattern=r"^https?://\S+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvRef(_Strict):
    """A secret, by reference: the name of the environment variable that holds it."""

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class FleetRef(_Strict):
    """Instances to point traffic at, when no rehost step of this playbook made them: those of
    ``provider`` with the tags in ``select``. ``back_to_sources``: the other way round, each
    instance's traffic goes back to the instance it was rehosted from (its ``failover:source`` tag)."""

    provider: ProviderName
    select: dict[str, str] = Field(min_length=1)
    back_to_sources: bool = False


class StepSpec(_Strict):
    """What every step of a playbook has; each kind's model adds its own fields."""

    id: Identifier
    description: str | None = None
    needs: list[Identifier] = Field(default_factory=list, description="steps that must have finished first")
    on_failure: Literal["stop", "rollback", "continue"] | None = Field(
        default=None, description="override the playbook's on_failure for this step"
    )

    def fleet_step(self) -> str | None:
        """The rehost step whose fleet this step works on (None: none)."""
        return None

    def depends_on(self) -> list[str]:
        """Steps that must have finished before this one runs."""
        return list(self.needs)


class InventoryStep(StepSpec):
    """Take stock of a provider: buckets, instances, zones, services with no portable equivalent."""

    kind: Literal["inventory"]
    provider: ProviderName
    sizes: bool = Field(default=True, description="count objects and bytes per bucket")


def _cluster_name(value: str) -> str:
    from ..cluster.spec import parse_cluster

    try:
        parse_cluster(value, what="cluster")
    except FailoverError as error:
        raise ValueError(error.message) from None
    return value


ClusterName = Annotated[str, AfterValidator(_cluster_name)]


class SyncStep(StepSpec):
    """Copy buckets (``failover sync``): verified, incremental, resumable."""

    kind: Literal["sync"]
    source: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+:")]
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+:")]
    bucket_map: dict[str, str] = Field(default_factory=dict)
    delete: bool = False
    max_delete_percent: float = Field(default=25.0, ge=0, le=100)
    workers: int = Field(default=16, ge=1, le=256)
    digest: Literal["sha256", "crc32c"] = "sha256"
    invalid_keys: Literal["skip", "abort", "encode"] = "skip"
    cluster: ClusterName | None = Field(
        default=None, description="local:N or tcp://HOST:PORT: list and copy on a Dask cluster (--cluster)"
    )
    bucket_settings: bool = Field(
        default=False,
        description="carry each bucket's settings as far as the target holds them, read back (--bucket-settings)",
    )


class DrillWritesSpec(_Strict):
    """Writes a drill makes to the source while the standby follows it (the platform's traffic)."""

    bucket: str = Field(min_length=1, description="source bucket written to")
    prefix: str = Field(default="failover-drill/", description="key prefix (the run's id is added)")
    rate: float = Field(default=5.0, gt=0, le=200, description="writes per second")
    size: int = Field(default=4096, ge=0, le=64 * 1024 * 1024, description="bytes per write")


class StandbyStep(StepSpec):
    """Keep the target following the source (``failover standby``) for ``follow_for`` seconds, then
    cut over: the recovery point (age of the oldest source change not on the target at that moment)
    is measured, and the recovery time counts from here. With ``zone``, the target zone's record
    sets follow the source zone meanwhile (no traffic is switched)."""

    kind: Literal["standby"]
    source: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+:")]
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+:")]
    bucket_map: dict[str, str] = Field(default_factory=dict)
    follow_for: float = Field(default=30.0, gt=0, description="seconds of standby after the initial sync")
    interval: float = Field(default=2.0, gt=0, description="seconds between listings (no change feed)")
    use_feed: bool = Field(default=True, description="follow the source's change feed where it declares one")
    workers: int = Field(default=8, ge=1, le=256)
    drill_writes: DrillWritesSpec | None = None
    zone: Zone | None = Field(default=None, description="a zone whose record sets the target keeps in sync")
    dns_source: ProviderName | None = None
    dns_target: ProviderName | None = None

    @model_validator(mode="after")
    def _dns_pair(self) -> StandbyStep:
        if (self.zone is None) != (self.dns_source is None or self.dns_target is None):
            raise ValueError("zone needs dns_source and dns_target (and they need zone)")
        return self


class VerifyStep(StepSpec):
    """Prove a copy (``failover verify``): missing, different and extra keys."""

    kind: Literal["verify"]
    source: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+:")]
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+:")]
    bucket_map: dict[str, str] = Field(default_factory=dict)
    trust_digests: bool = False
    cluster: ClusterName | None = Field(
        default=None, description="local:N or tcp://HOST:PORT: compare on a Dask cluster (--cluster)"
    )


class RehostStep(StepSpec):
    """Rebuild instances on another provider (``failover rehost``)."""

    kind: Literal["rehost"]
    source: ProviderName
    target: ProviderName
    select: dict[str, str] = Field(default_factory=dict, description="only source instances with these tags")
    fleet: Identifier | None = Field(default=None, description="target fleet name (default: derived)")
    health_check: UrlTemplate | None = Field(default=None, description="overrides each instance's own, {address}")
    user_data_replace: dict[str, str] = Field(default_factory=dict, description="text rewritten in user-data")
    run_timeout: float = Field(default=300.0, gt=0)
    health_timeout: float = Field(default=120.0, gt=0)
    on_problem: Literal["fail", "skip"] = Field(
        default="fail", description="an instance that cannot be rebuilt: fail the step before creating anything"
    )
    leave: Literal["running", "stopped"] = Field(
        default="running",
        description="stopped: a standby fleet, built and health-checked, then stopped; the dns_cutover that "
        "points traffic at it starts it (and checks it) first",
    )


class HealthStep(StepSpec):
    """Check that a fleet (or any URLs) answers: 2xx within the timeout, retried."""

    kind: Literal["health"]
    fleet_of: Identifier | None = Field(default=None, description="a rehost step whose new instances to check")
    url: UrlTemplate | None = Field(default=None, description="URL template for each instance, {address}")
    urls: list[UrlTemplate] = Field(default_factory=list)
    headers: dict[str, EnvRef] = Field(default_factory=dict, description="request headers, values by reference")
    timeout: float = Field(default=120.0, gt=0)

    def fleet_step(self) -> str | None:
        return self.fleet_of

    def depends_on(self) -> list[str]:
        return [*self.needs, *([self.fleet_of] if self.fleet_of else [])]  # its new instances must exist

    @model_validator(mode="after")
    def _something_to_check(self) -> HealthStep:
        if not self.fleet_of and not self.urls:
            raise ValueError("give fleet_of (a rehost step) or urls")
        return self


class _DnsStep(StepSpec):
    source: ProviderName = Field(description="the provider answering for the zone today")
    target: ProviderName = Field(description="the provider taking it over")
    zone: Zone
    fleet_of: Identifier | None = Field(default=None, description="a rehost step: old addresses -> new ones")
    fleet: FleetRef | None = None
    ttl: int = Field(default=60, ge=1, le=86400, description="TTL of the moved records during and after")

    def fleet_step(self) -> str | None:
        return self.fleet_of

    @model_validator(mode="after")
    def _one_fleet(self) -> _DnsStep:
        if (self.fleet_of is None) == (self.fleet is None):
            raise ValueError("give exactly one of fleet_of (a rehost step) or fleet")
        return self


class DnsPrepareStep(_DnsStep):
    """Lower the TTLs of the records pointing at the old fleet, and copy the zone to the target.
    It needs only the old fleet, so it does not wait for the rehost step it names."""

    kind: Literal["dns_prepare"]


class DnsCutoverStep(_DnsStep):
    """Point the zone's records at the new fleet once it is healthy; confirm by DNS query."""

    kind: Literal["dns_cutover"]
    max_ttl_wait: float = Field(default=900.0, ge=0, description="longest wait for lowered TTLs to expire")
    update_source: bool = Field(default=True, description="also point the source provider's records")
    max_change_percent: float = Field(default=50.0, ge=0, le=100)
    force: bool = False
    health_gate: bool = Field(default=True, description="re-check the new fleet's health just before switching")
    confirm_timeout: float = Field(default=60.0, gt=0)

    def depends_on(self) -> list[str]:
        return [*self.needs, *([self.fleet_of] if self.fleet_of else [])]  # the new fleet must exist


class NotifyStep(StepSpec):
    """Tell people or systems (a chat webhook, an incident tool): POST a JSON message. Typical as
    a rollback handler."""

    kind: Literal["notify"]
    url: UrlTemplate | EnvRef = Field(
        description="where to POST; webhook URLs carry tokens: give {env: VARIABLE} to keep it out of the playbook "
        "(a written URL is shown as its host only, everywhere)"
    )
    message: str = Field(min_length=1)
    headers: dict[str, EnvRef] = Field(default_factory=dict, description="request headers, values by reference")
    timeout: float = Field(default=10.0, gt=0)


class ApprovalStep(StepSpec):
    """Stop for a person to say yes (interactively, or ``--yes``)."""

    kind: Literal["approval"]
    message: str = Field(min_length=1)


Step = Annotated[
    InventoryStep
    | SyncStep
    | VerifyStep
    | RehostStep
    | StandbyStep
    | HealthStep
    | DnsPrepareStep
    | DnsCutoverStep
    | ApprovalStep
    | NotifyStep,
    Field(discriminator="kind"),
]
STEP_KINDS = (
    "inventory",
    "sync",
    "verify",
    "rehost",
    "standby",
    "health",
    "dns_prepare",
    "dns_cutover",
    "approval",
    "notify",
)


class Budgets(_Strict):
    """What a drill may use up; exceeding any fails the run."""

    recovery_time_s: float | None = Field(
        default=None, gt=0, description="run start (or a standby step's cutover) to DNS cutover confirmed"
    )
    recovery_point_s: float | None = Field(
        default=None, ge=0, description="age of the oldest source change not on the target at a standby's cutover"
    )
    unverified_objects: int | None = Field(default=None, ge=0, description="objects not proven on the target")
    unhealthy_instances: int | None = Field(default=None, ge=0)


class Playbook(_Strict):
    version: Literal[1]
    name: Identifier
    description: str = Field(min_length=1)
    variables: dict[VariableName, str | int | float | bool] = Field(default_factory=dict)
    on_failure: Literal["stop", "rollback"] = "stop"
    budgets: Budgets | None = None
    steps: list[Step] = Field(min_length=1)
    rollback: list[Step] = Field(default_factory=list, description="handlers run after the automatic undo")
