"""``failover lint``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..lint import Baseline, Portability, fail_threshold, lint, lint_json, lint_sarif, load_rules, shipped_rules
from ..lint.engine import LintReport
from .app import App, pass_app

__all__ = ["lint_command"]

_MARK = {"proprietary": "error", "managed": "warning", "portable": "note", "unclassified": "review", None: "error"}


def _text(app: App, report: LintReport, *, verbose: bool) -> None:
    for finding in report.findings:
        if finding.suppressed is not None:
            continue
        if finding.portability is None:
            app.say(f"{finding.path}:{finding.line}: error [{finding.rule_id}] {finding.message}", style="red")
            continue
        if finding.portability is Portability.PORTABLE and not verbose:
            continue
        advice = (
            f"needs {finding.replacement}"
            if finding.portability is Portability.UNCLASSIFIED
            else f"replace with {finding.replacement} (effort: {finding.effort})"
        )
        app.say(
            f"{finding.path}:{finding.line}: {_MARK[finding.portability.value]} [{finding.rule_id}] "
            f"{finding.service} ({finding.resource}): {finding.portability.value}; {advice}"
        )
    services = report.by_service()
    if services:
        rows = [[s["service"], s["class"], s["findings"], s["files"], s["effort"], s["replacement"]] for s in services]
        app.table(
            ["service", "class", "findings", "files", "effort", "replacement"], rows, title="readiness by service"
        )
    directories = report.by_directory()
    if directories:
        columns = ["proprietary", "managed", "portable", "unclassified", "unparsed"]
        rows = [[d["directory"], *(d[c] for c in columns)] for d in directories]
        app.table(["directory", *columns], rows, title="readiness by directory")
    counts = report.counts()
    low, high = report.effort_days()
    hidden = "" if verbose or not counts["portable"] else " (portable ones listed with -v)"
    app.say(
        f"{report.files_scanned} files in {report.seconds:.2f} s: {counts['proprietary']} proprietary, "
        f"{counts['managed']} managed open-source, {counts['portable']} portable{hidden}, "
        f"{counts['unclassified']} with no rule yet (review), "
        f"{counts['unparsed']} unparsable; {counts['suppressed']} suppressed inline, "
        f"{counts['baselined']} in the baseline"
    )
    if low:
        app.say(f"estimated effort to leave: {low}-{high} engineer-days (each non-portable service once)")
    for skipped in report.files_skipped:
        app.say(f"skipped {skipped}", style="yellow")


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default=None,
    help="Output on stdout (default text; --json is --format json).",
)
@click.option(
    "--fail-on",
    default="proprietary",
    show_default=True,
    metavar="CLASS",
    help="Exit 1 when a finding of this class or worse is left: proprietary, managed, portable, or none "
    "(AWS resources no rule classifies are listed for review; --fail-on unclassified fails on any finding).",
)
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False), help="Accepted findings (JSON).")
@click.option(
    "--write-baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every finding left to this baseline file and exit 0.",
)
@click.option(
    "--rules",
    "rule_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use these rule files instead of the shipped ones (repeatable).",
)
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Also list portable findings in text output.")
@pass_app
def lint_command(
    app: App,
    paths: tuple[Path, ...],
    output_format: str | None,
    fail_on: str,
    baseline: Path | None,
    write_baseline: Path | None,
    rule_files: tuple[Path, ...],
    list_rules: bool,
    verbose: bool,
) -> int:
    """Find what ties the code under PATHS (default: .) to AWS: Terraform, CloudFormation/SAM,
    Kubernetes, Dockerfiles, CI files and Python, JavaScript/TypeScript, Go, Java and Ruby code.
    Each finding names the service, its class, the portable replacement and the effort.

    \b
    Example:
      failover lint . --fail-on managed
      failover lint infra/ app/ --format sarif > lint.sarif
      failover lint . --write-baseline .failover-lint.json   # accept what is there today
      failover lint . --baseline .failover-lint.json         # fail only on new findings

    Suppress one finding with a comment on its line or the line above:
    `# failover-lint: ignore[aws-sqs]` (any comment syntax; without [...] every rule).

    Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it (or a file that
    cannot be parsed), 2 bad input."""
    threshold = fail_threshold(fail_on)
    rules = load_rules(rule_files) if rule_files else shipped_rules()
    output = output_format or ("json" if app.json else "text")
    if list_rules:
        if output == "text":
            rows = [[r.id, r.service, r.portability.value, r.effort, r.replacement] for r in rules]
            app.table(["rule", "service", "class", "effort", "replacement"], rows)
        else:
            app.emit_json({"rules": [{**r.model_dump(mode="json", by_alias=True), "examples": None} for r in rules]})
        return 0
    accepted = Baseline.read(baseline) if baseline is not None else None
    report = lint(list(paths) or [Path(".")], rules=rules, baseline=accepted)
    if write_baseline is not None:
        written = Baseline.write(write_baseline, report.findings)
        app.say(f"wrote {written} findings to {write_baseline}; lint with --baseline {write_baseline}")
        return 0
    failed = bool(report.at_least(threshold))
    if output == "sarif":
        sys.stdout.write(json.dumps(lint_sarif(report, rules), indent=2, ensure_ascii=False) + "\n")
    elif output == "json":
        app.emit_json(lint_json(report, fail_on=fail_on, failed=failed))
    else:
        _text(app, report, verbose=verbose)
    return 1 if failed else 0
