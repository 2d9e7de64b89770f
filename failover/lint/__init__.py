"""``failover lint``: what ties a codebase to AWS, with the portable replacement for each finding.

Rules are data (``rules/*.yaml``, one file per service family, see :mod:`.rules`); scanners read
each format (:mod:`.scanners`); :func:`lint` gives a :class:`LintReport` that the CLI renders as
text, JSON or SARIF 2.1.0 (:mod:`.report`). ``failover inventory`` labels a live account's
resources with the same rules (:meth:`RuleSet.for_service`).
"""

from __future__ import annotations

from .engine import PARSE_ERROR, Baseline, Finding, LintReport, fail_threshold, lint
from .report import lint_json, lint_sarif
from .rules import Portability, Rule, RuleSet, load_rules, shipped_rules

__all__ = [
    "PARSE_ERROR",
    "Baseline",
    "Finding",
    "LintReport",
    "Portability",
    "Rule",
    "RuleSet",
    "fail_threshold",
    "lint",
    "lint_json",
    "lint_sarif",
    "load_rules",
    "shipped_rules",
]
