"""Applying a rehost plan: create the target fleet idempotently, wait until it runs, prove each
instance is healthy, and (``rollback``) destroy what failover created.

Idempotent: before creating, the target is asked for an instance tagged with the source instance's
identity; a retried or re-run rehost finds and reuses it (starting it if it was stopped). A client
token derived from the same identity is passed too, for providers that honour one.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from ..compute import Compute, Instance, InstanceState
from ..errors import FailoverError, ProviderError, Timeout
from .plan import FLEET_TAG, SOURCE_TAG, PlannedInstance, RehostPlan

__all__ = ["HealthResult", "InstanceResult", "RehostReport", "apply_plan", "check_health", "rollback"]


@dataclass
class HealthResult:
    url: str | None
    healthy: bool | None
    """None when the instance has no health check."""
    status: int | None = None
    attempts: int = 0
    error: str | None = None
    seconds: float = 0.0


@dataclass
class InstanceResult:
    source: str
    name: str
    target_id: str | None = None
    address: str | None = None
    source_address: str | None = None
    action: str = "skipped"
    """created | reused | started | skipped (not creatable) | failed"""
    state: str | None = None
    error: str | None = None
    seconds_to_running: float | None = None
    health: HealthResult | None = None


@dataclass
class RehostReport:
    plan: RehostPlan
    results: list[InstanceResult] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    healthy_at: float | None = None

    @property
    def ok(self) -> bool:
        return all(
            r.action in ("created", "reused", "started") and (r.health is None or r.health.healthy is not False)
            for r in self.results
        ) and bool(self.results)

    @property
    def unhealthy(self) -> list[InstanceResult]:
        return [r for r in self.results if r.health is not None and r.health.healthy is False]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "ok": self.ok,
            "duration_s": round(self.finished - self.started, 3),
            "seconds_to_healthy": round(self.healthy_at - self.started, 3) if self.healthy_at else None,
            "results": [
                {
                    **{k: v for k, v in vars(r).items() if k != "health"},
                    "health": vars(r.health) if r.health else None,
                }
                for r in self.results
            ],
        }


def _token(plan: RehostPlan, planned: PlannedInstance) -> str:
    return hashlib.sha256(f"{plan.fleet}:{planned.key}".encode()).hexdigest()[:32]


def _ensure(target: Compute, plan: RehostPlan, planned: PlannedInstance) -> tuple[Instance, str]:
    """Find the instance an earlier run created for this source instance, or create it."""
    existing = target.list_instances({FLEET_TAG: plan.fleet, SOURCE_TAG: planned.key})
    if existing:
        instance = existing[0]
        if instance.state in (InstanceState.STOPPED, InstanceState.STOPPING):
            target.start(instance.id)
            return instance, "started"
        return instance, "reused"
    t = planned.translation
    assert t.size is not None
    image = t.image.id if t.image else ""
    return target.create(
        planned.target_spec, size=t.size.id, image=image, client_token=_token(plan, planned)
    ), "created"


def check_health(
    url: str,
    *,
    deadline: float,
    interval: float = 0.5,
    timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
) -> HealthResult:
    """GET ``url`` until it answers 2xx or ``deadline`` (monotonic) passes; retried with tenacity."""
    result = HealthResult(url=url, healthy=False)
    started = time.monotonic()

    def probe() -> int:
        result.attempts += 1
        with httpx.Client(timeout=timeout, trust_env=False, headers=dict(headers or {})) as client:
            response = client.get(url)
        result.status = response.status_code
        if not 200 <= response.status_code < 300:
            raise ProviderError(f"HTTP {response.status_code}")
        return response.status_code

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(max(deadline - time.monotonic(), 0.0)),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_exception_type((httpx.HTTPError, ProviderError)),
        reraise=True,
    )
    try:
        retrying(probe)
        result.healthy = True
        result.error = None
    except (httpx.HTTPError, ProviderError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = round(time.monotonic() - started, 3)
    return result


def apply_plan(
    plan: RehostPlan,
    target: Compute,
    *,
    run_timeout: float = 300.0,
    health_timeout: float = 120.0,
    workers: int = 8,
    progress: Callable[[str], None] = lambda message: None,
) -> RehostReport:
    """Create (or find) every creatable instance, wait until running, then health-check them."""
    report = RehostReport(plan)
    report.started = time.monotonic()

    def one(planned: PlannedInstance) -> InstanceResult:
        result = InstanceResult(planned.key, planned.source.name, source_address=planned.source.address)
        if not planned.translation.creatable:
            result.error = "; ".join(planned.translation.problems) or "no target size"
            return result
        begun = time.monotonic()
        try:
            instance, result.action = _ensure(target, plan, planned)
            result.target_id = instance.id
            progress(f"{planned.source.name}: {result.action} {instance.id} on {target.name}")
            instance = target.wait_for(instance.id, InstanceState.RUNNING, timeout=run_timeout)
        except FailoverError as error:
            result.action = "failed" if result.target_id is None else result.action
            result.error = str(error)
            result.state = "failed" if isinstance(error, Timeout) else None
            return result
        result.state = instance.state.value
        result.address = instance.address
        result.seconds_to_running = round(time.monotonic() - begun, 3)
        url = planned.target_spec.health_check
        if url:
            if not instance.address:
                result.health = HealthResult(url, False, error="the instance has no address to check")
            else:
                address = f"[{instance.address}]" if ":" in instance.address else instance.address
                result.health = check_health(
                    url.replace("{address}", address), deadline=time.monotonic() + health_timeout
                )
            verdict = "healthy" if result.health.healthy else f"UNHEALTHY ({result.health.error})"
            progress(f"{planned.source.name}: {verdict}")
        return result

    with concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="rehost") as pool:
        report.results = list(pool.map(one, plan.instances))
    report.finished = time.monotonic()
    if report.ok:
        report.healthy_at = report.finished
    return report


def rollback(target: Compute, fleet: str, progress: Callable[[str], None] = lambda message: None) -> list[str]:
    """Destroy every target instance failover created for ``fleet`` (tagged with it); nothing else."""
    destroyed = []
    for instance in target.list_instances({FLEET_TAG: fleet}):
        target.destroy(instance.id)
        destroyed.append(instance.id)
        progress(f"destroyed {instance.id} ({instance.name})")
    return destroyed
