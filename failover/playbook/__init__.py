"""Playbooks: declarative YAML runs of inventory, sync, verify, rehost, health checks, DNS cutover
and approvals, resumable after a crash and able to roll back."""

from .loader import LoadedPlaybook, load_playbook, load_playbook_text, parse_variables, provider_lookup
from .runner import PreflightFailed, RunOptions, RunReport, run_playbook
from .schema import Playbook

__all__ = [
    "LoadedPlaybook",
    "Playbook",
    "PreflightFailed",
    "RunOptions",
    "RunReport",
    "load_playbook",
    "load_playbook_text",
    "parse_variables",
    "provider_lookup",
    "run_playbook",
]
