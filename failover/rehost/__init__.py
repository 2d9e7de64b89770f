"""Rehosting a fleet from one provider to another: plan (translation table), apply, health, rollback."""

from .engine import RehostReport, apply_plan, check_health, rollback
from .mapping import Translation, choose_image, choose_size, translate
from .plan import (
    FLEET_TAG,
    HEALTH_TAG,
    SOURCE_TAG,
    PlannedInstance,
    RehostPlan,
    fleet_id,
    plan_rehost,
    translation_lines,
)

__all__ = [
    "FLEET_TAG",
    "HEALTH_TAG",
    "SOURCE_TAG",
    "PlannedInstance",
    "RehostPlan",
    "RehostReport",
    "Translation",
    "apply_plan",
    "check_health",
    "choose_image",
    "choose_size",
    "fleet_id",
    "plan_rehost",
    "rollback",
    "translate",
    "translation_lines",
]
