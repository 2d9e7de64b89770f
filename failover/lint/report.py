"""Renderers of a :class:`~.engine.LintReport`: JSON for scripts and SARIF 2.1.0 for code scanning
(text for people is rendered by the CLI from the same data)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from .. import __version__
from .engine import PARSE_ERROR, Finding, LintReport
from .rules import Portability, RuleSet

__all__ = ["SARIF_SCHEMA", "lint_json", "lint_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_INFORMATION_URI = "https://github.com/failover-project/failover#failover-lint"


def lint_json(report: LintReport, *, fail_on: str, failed: bool) -> dict[str, Any]:
    low, high = report.effort_days()
    return {
        "schema": 1,
        "tool": "failover lint",
        "version": __version__,
        "paths": report.paths,
        "files_scanned": report.files_scanned,
        "files_skipped": report.files_skipped,
        "seconds": round(report.seconds, 3),
        "counts": report.counts(),
        "effort_days": [low, high],
        "fail_on": fail_on,
        "failed": failed,
        "by_service": report.by_service(),
        "by_directory": report.by_directory(),
        "findings": [f.to_json() for f in report.findings],
    }


def _uri(path: str, root: Path) -> tuple[str, str | None]:
    """(uri, uriBaseId): paths under ``root`` (the working directory, SRCROOT) are relative to it."""
    resolved = Path(path).resolve()
    try:
        relative = resolved.relative_to(root)
    except ValueError:
        return resolved.as_uri(), None
    return urllib.parse.quote(relative.as_posix()), "SRCROOT"


def _sarif_rule(rule_id: str, rules: RuleSet) -> dict[str, Any]:
    if rule_id == PARSE_ERROR:
        return {
            "id": PARSE_ERROR,
            "name": "UnparsableFile",
            "shortDescription": {"text": "A file lint could not parse"},
            "fullDescription": {
                "text": "What a file that cannot be parsed depends on is unknown; fix it or suppress it."
            },
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["portability"]},
        }
    rule = rules.by_id[rule_id]
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {
            "text": f"Replace with: {rule.replacement}. Effort: {rule.effort}.",
            "markdown": f"**Replace with:** {rule.replacement}\n\n**Effort:** {rule.effort}\n\n{rule.why}",
        },
        "defaultConfiguration": {"level": rule.portability.sarif_level},
        "properties": {
            "tags": ["portability", "aws", rule.family, rule.portability.value],
            "class": rule.portability.value,
            "service": rule.service,
            "replacement": rule.replacement,
            "effort": rule.effort,
        },
    }


def _sarif_result(finding: Finding, index: int, root: Path) -> dict[str, Any]:
    uri, base = _uri(finding.path, root)
    location: dict[str, Any] = {"uri": uri}
    if base:
        location["uriBaseId"] = base
    if finding.portability is None:
        text = f"{finding.path} {finding.message}"
        level = "error"
    else:
        text = (
            f"{finding.service} ({finding.resource}): {finding.portability.value}; "
            f"replace with {finding.replacement} (effort: {finding.effort})"
        )
        level = finding.portability.sarif_level
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": location, "region": {"startLine": finding.line}}}],
        "partialFingerprints": {"failoverLint/v1": finding.fingerprint},
    }
    if finding.suppressed is not None:
        result["suppressions"] = [{"kind": "inSource" if finding.suppressed == "inline" else "external"}]
    return result


def lint_sarif(report: LintReport, rules: RuleSet) -> dict[str, Any]:
    """One SARIF 2.1.0 log: one run, the rules that fired as ``tool.driver.rules``."""
    rule_ids = list(dict.fromkeys(f.rule_id for f in report.findings))
    index = {rule_id: n for n, rule_id in enumerate(rule_ids)}
    root = Path.cwd().resolve()
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "failover lint",
                "informationUri": _INFORMATION_URI,
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_sarif_rule(rule_id, rules) for rule_id in rule_ids],
            }
        },
        "originalUriBaseIds": {"SRCROOT": {"uri": root.as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(f, index[f.rule_id], root) for f in report.findings],
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "note", "message": {"text": f"skipped {skipped}"}} for skipped in report.files_skipped
                ],
            }
        ],
        "properties": {
            "filesScanned": report.files_scanned,
            "counts": report.counts(),
            "classes": [p.value for p in Portability],
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
