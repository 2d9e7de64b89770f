"""``failover lint``: walk paths, run each file's scanner, apply suppressions and the baseline.

Results are data (:class:`LintReport` of :class:`Finding`); :mod:`.report` renders them.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import write_atomic
from .rules import EFFORT_DAYS, Portability, Rule, RuleSet, shipped_rules
from .scanners import Hit, Scanner, Unparsable, scan_text, scanner_for

__all__ = [
    "PARSE_ERROR",
    "Baseline",
    "Finding",
    "LintReport",
    "fail_threshold",
    "lint",
]

PARSE_ERROR = "parse-error"
"""The rule id of a file lint could not read: its dependencies are unknown, so it is a finding."""
MAX_FILE_BYTES = 4 * 1024 * 1024
"""Larger files (generated bundles, data) are listed as skipped, not read."""
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".terraform", ".venv", "venv", "__pycache__", ".tox", "site-packages"}
)
"""Folders of tools and dependencies, not of the repository's own code (a virtualenv anywhere, known
by its pyvenv.cfg, is skipped too)."""
_SUPPRESS = re.compile(r"failover-lint:\s*ignore(?!-file)(?:\[([^\]]*)\])?")
_SUPPRESS_FILE = "failover-lint: ignore-file"


@dataclass(frozen=True)
class Finding:
    path: str
    """As given on the command line (relative paths stay relative), with ``/`` separators."""
    line: int
    rule_id: str
    service: str
    portability: Portability | None
    """None for a file that could not be parsed."""
    resource: str
    replacement: str
    effort: str
    snippet: str
    """The finding's line, stripped: what the baseline's fingerprint is made of."""
    message: str = ""
    suppressed: str | None = None
    """``inline`` (a failover-lint comment) or ``baseline``; suppressed findings are kept, not counted."""

    @property
    def fingerprint(self) -> str:
        """Stable across line moves: rule, file and the line's text (not its number)."""
        digest = hashlib.sha256(f"{self.rule_id}\0{self.path}\0{' '.join(self.snippet.split())}".encode())
        return digest.hexdigest()[:32]

    @property
    def directory(self) -> str:
        parent = self.path.rsplit("/", 1)[0] if "/" in self.path else "."
        return parent or "/"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "rule": self.rule_id,
            "service": self.service,
            "class": self.portability.value if self.portability else None,
            "resource": self.resource,
            "replacement": self.replacement,
            "effort": self.effort,
            "message": self.message,
            "suppressed": self.suppressed,
            "fingerprint": self.fingerprint,
        }


@dataclass
class Baseline:
    """Accepted findings (``--baseline``), by fingerprint; each entry absorbs one finding."""

    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Baseline:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--baseline {path}: cannot read it: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--baseline {path}: not JSON (line {exc.lineno}: {exc.msg})") from exc
        entries = data.get("findings") if isinstance(data, dict) else None
        if data.get("schema") != 1 or not isinstance(entries, list):
            raise ConfigError(
                f"--baseline {path}: not a failover lint baseline (write one with --write-baseline {path})"
            )
        baseline = cls()
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("fingerprint"), str):
                baseline.counts[entry["fingerprint"]] = baseline.counts.get(entry["fingerprint"], 0) + 1
        return baseline

    def absorbs(self, finding: Finding) -> bool:
        left = self.counts.get(finding.fingerprint, 0)
        if left:
            self.counts[finding.fingerprint] = left - 1
        return bool(left)

    @staticmethod
    def write(path: Path, findings: Iterable[Finding]) -> int:
        entries = [
            {"fingerprint": f.fingerprint, "rule": f.rule_id, "path": f.path, "line": f.line}
            for f in findings
            if f.suppressed is None
        ]
        write_atomic(path, json.dumps({"schema": 1, "findings": entries}, indent=2) + "\n")
        return len(entries)


@dataclass
class LintReport:
    paths: list[str]
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    files_skipped: list[str] = field(default_factory=list)
    """Files not read (too large, not text), with the reason."""
    seconds: float = 0.0

    @property
    def active(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed is None]

    def at_least(self, threshold: Portability | None) -> list[Finding]:
        """Unsuppressed findings at or above ``threshold``; a file that could not be parsed counts
        whenever there is a threshold (what it depends on is unknown)."""
        if threshold is None:
            return []
        return [f for f in self.active if f.portability is None or f.portability.rank >= threshold.rank]

    def by_service(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for finding in self.active:
            if finding.portability is None:
                continue
            row = rows.setdefault(
                finding.rule_id,
                {
                    "rule": finding.rule_id,
                    "service": finding.service,
                    "class": finding.portability.value,
                    "findings": 0,
                    "files": set(),
                    "replacement": finding.replacement,
                    "effort": finding.effort,
                },
            )
            row["findings"] += 1
            row["files"].add(finding.path)
        ordered = sorted(rows.values(), key=lambda r: (-Portability(r["class"]).rank, -r["findings"], r["service"]))
        return [{**row, "files": len(row["files"])} for row in ordered]

    def by_directory(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for finding in self.active:
            row = rows.setdefault(
                finding.directory,
                {
                    "directory": finding.directory,
                    "proprietary": 0,
                    "managed": 0,
                    "portable": 0,
                    "unclassified": 0,
                    "unparsed": 0,
                },
            )
            row[finding.portability.value if finding.portability else "unparsed"] += 1
        return sorted(rows.values(), key=lambda r: (-r["proprietary"], -r["managed"], r["directory"]))

    def counts(self) -> dict[str, int]:
        found = {"proprietary": 0, "managed": 0, "portable": 0, "unclassified": 0, "unparsed": 0}
        for finding in self.active:
            found[finding.portability.value if finding.portability else "unparsed"] += 1
        found["suppressed"] = sum(1 for f in self.findings if f.suppressed == "inline")
        found["baselined"] = sum(1 for f in self.findings if f.suppressed == "baseline")
        return found

    def effort_days(self) -> tuple[int, int]:
        """Engineer-days to replace every non-portable service found (each service once)."""
        low = high = 0
        for row in self.by_service():
            if row["class"] in (Portability.PROPRIETARY.value, Portability.MANAGED.value):
                a, b = EFFORT_DAYS[row["effort"]]
                low, high = low + a, high + b
        return low, high


def fail_threshold(name: str) -> Portability | None:
    """``--fail-on``: a class name, or ``none``."""
    if name == "none":
        return None
    try:
        return Portability(name)
    except ValueError:
        raise ConfigError(f"--fail-on {name}: not a class (use one of: proprietary, managed, portable, none)") from None


def _files(paths: list[Path]) -> Iterator[tuple[Path, str]]:
    """(file, display path) under every path, in a stable order, skipping tool and VCS folders."""
    for root in paths:
        if not root.exists():
            raise ConfigError(f"{root}: no such file or directory (give a repository or files to lint)")
        if root.is_file():
            yield root, root.as_posix()
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(
                d for d in dirs if d not in SKIPPED_DIRS and not (Path(folder) / d / "pyvenv.cfg").exists()
            )
            for name in sorted(names):
                path = Path(folder) / name
                yield path, path.as_posix().removeprefix("./")


def _suppressed(lines: list[str], line: int, rule_id: str) -> bool:
    for index in (line - 1, line - 2):
        if 0 <= index < len(lines):
            match = _SUPPRESS.search(lines[index])
            if match and (match.group(1) is None or rule_id in {r.strip() for r in match.group(1).split(",")}):
                return True
    return False


def _snippet(lines: list[str], line: int) -> str:
    return lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""


def _finding(path: str, lines: list[str], hit: Hit) -> Finding:
    rule: Rule = hit.rule
    return Finding(
        path=path,
        line=hit.line,
        rule_id=rule.id,
        service=rule.service,
        portability=rule.portability,
        resource=hit.resource,
        replacement=rule.replacement,
        effort=rule.effort,
        snippet=_snippet(lines, hit.line),
        message=f"{rule.title}: {rule.why}",
        suppressed="inline" if _suppressed(lines, hit.line, rule.id) else None,
    )


def _scan(scanner: Scanner, display: str, text: str, rules: RuleSet) -> list[Hit]:
    """Run one scanner; whatever it raises is Unparsable (a scanner's bug must not end the scan or
    hide the file)."""
    try:
        return scanner(display, text, rules)
    except Unparsable:
        raise
    except RecursionError as exc:
        raise Unparsable("nested too deeply to read") from exc
    except Exception as exc:
        raise Unparsable(f"lint could not read it ({type(exc).__name__}: {exc}); please report this") from exc


def lint_file(path: Path, display: str, rules: RuleSet) -> tuple[list[Finding], str | None]:
    """The findings of one file, or (nothing, why it was skipped)."""
    scanner = scanner_for(path.name)
    file_rule = rules.files.get(path.name)
    if scanner is None and file_rule is None:
        return [], None
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return [], f"{display}: {size} bytes, over the {MAX_FILE_BYTES}-byte limit"
        raw = path.read_bytes()
    except OSError as exc:
        return [], f"{display}: cannot read it ({exc.strerror})"
    if b"\0" in raw[:8192]:
        return [], f"{display}: binary"
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if any(_SUPPRESS_FILE in line for line in lines[:5]):
        return [], None
    hits: list[Hit] = []
    if file_rule is not None:
        hits.append(Hit(1, file_rule, path.name))
    try:
        if scanner is not None:
            hits += _scan(scanner, display, text, rules)
    except Unparsable as error:
        unparsed = Finding(
            path=display,
            line=error.line,
            rule_id=PARSE_ERROR,
            service="",
            portability=None,
            resource="",
            replacement="",
            effort="",
            snippet=_snippet(lines, error.line),
            message=f"cannot be parsed, so what it depends on is unknown: {error.message}",
            suppressed="inline" if _suppressed(lines, error.line, PARSE_ERROR) else None,
        )
        return [_finding(display, lines, h) for h in hits] + [unparsed], None
    if scanner is not scan_text:
        hits += scan_text(display, text, rules)
    structured_lines = {h.line for h in hits if h.structured}
    seen: set[tuple[int, str]] = set()
    findings: list[Finding] = []
    for hit in sorted(hits, key=lambda h: (h.line, not h.structured)):
        if (hit.line, hit.rule.id) in seen or (not hit.structured and hit.line in structured_lines):
            continue
        seen.add((hit.line, hit.rule.id))
        findings.append(_finding(display, lines, hit))
    return findings, None


_worker_rules: RuleSet | None = None


def _start_worker(rules: RuleSet) -> None:
    global _worker_rules
    _worker_rules = rules


def _lint_batch(batch: list[tuple[Path, str]]) -> list[tuple[list[Finding], str | None]]:
    assert _worker_rules is not None
    return [lint_file(path, display, _worker_rules) for path, display in batch]


PARALLEL_FROM = 200
"""From this many files, they are read by one process per core (parsing is CPU-bound)."""
_BATCH = 48


def lint(
    paths: list[Path], *, rules: RuleSet | None = None, baseline: Baseline | None = None, jobs: int | None = None
) -> LintReport:
    """Every finding under ``paths``, in path order. Raises ConfigError for a path that does not
    exist. ``jobs``: worker processes (default: one per core, for PARALLEL_FROM files or more)."""
    rules = rules or shipped_rules()
    started = time.monotonic()
    report = LintReport([p.as_posix() for p in paths])
    # Only formats lint reads (not documentation, images or lock files).
    files = [(p, d) for p, d in _files(paths) if scanner_for(p.name) is not None or p.name in rules.files]
    workers = jobs if jobs is not None else (os.cpu_count() or 1 if len(files) >= PARALLEL_FROM else 1)
    if workers > 1:
        batches = [files[i : i + _BATCH] for i in range(0, len(files), _BATCH)]
        with concurrent.futures.ProcessPoolExecutor(
            min(workers, 8), initializer=_start_worker, initargs=(rules,)
        ) as pool:
            results = [item for batch in pool.map(_lint_batch, batches) for item in batch]
    else:
        results = [lint_file(path, display, rules) for path, display in files]
    for findings, skipped in results:
        if skipped:
            report.files_skipped.append(skipped)
            continue
        report.files_scanned += 1
        report.findings += findings
    if baseline is not None:
        for index, finding in enumerate(report.findings):
            if finding.suppressed is None and baseline.absorbs(finding):
                report.findings[index] = Finding(**{**finding.__dict__, "suppressed": "baseline"})
    report.seconds = time.monotonic() - started
    return report
