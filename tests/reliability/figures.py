"""Renders the figures the reliability suite recorded into RELIABILITY.md.

``python -m tests.reliability.figures`` prints the tables; ``--write RELIABILITY.md`` replaces the
text between the ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` markers. Each cell shows
``pull-request profile / large profile`` from ``.lab/reliability/{pr,large}.json``; a profile that
has not been run shows ``-``. ``make reliability`` runs this after the large profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / ".lab" / "reliability"
PROFILES = ("pr", "large")
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

Figures = dict[str, dict[str, Any]]
Cell = Callable[[dict[str, Any]], object]


def load() -> dict[str, Figures]:
    found: dict[str, Figures] = {}
    for profile in PROFILES:
        path = RESULTS / f"{profile}.json"
        found[profile] = json.loads(path.read_text()) if path.exists() else {}
    return found


def _cell(results: dict[str, Figures], scenario: str, value: Cell) -> str:
    shown = []
    for profile in PROFILES:
        figures = results[profile].get(scenario)
        shown.append("-" if figures is None else str(value(figures)))
    return " / ".join(shown)


def table(results: dict[str, Figures], title: str, rows: Iterable[tuple[str, str]], columns: dict[str, Cell]) -> str:
    """One markdown table: a row per (label, scenario), a column per figure."""
    lines = [f"| {title} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, scenario in rows:
        cells = [_cell(results, scenario, value) for value in columns.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _get(name: str) -> Cell:
    return lambda figures: figures.get(name, "-")


def _runs(figures: dict[str, Any]) -> str:
    return ", ".join(f"{run['step']}: exit {run['exit']}" for run in figures["runs"])


def _faults(figures: dict[str, Any]) -> str:
    injected = figures["faults_injected"]
    return f"{sum(injected.values())} (" + ", ".join(f"{k} {v}" for k, v in sorted(injected.items())) + ")"


def render(results: dict[str, Figures]) -> str:
    sections = []
    combined = {
        "objects (stored encoded)": lambda f: f"{f['objects']} ({f['stored_encoded']})",
        "dataset MB": lambda f: round(f["dataset_bytes"] / 1e6, 1),
        "missing": _get("missing"),
        "altered": _get("altered"),
        "metadata lost": _get("metadata_lost"),
        "bytes sent / dataset": _get("bytes_sent_ratio"),
        "verified objects re-sent after a crash": _get("resent_after_crash"),
        "orphaned uploads": _get("orphaned_uploads"),
        "deletes after a listing error": _get("deletes_after_listing_error"),
        "most writes of one key": _get("max_writes_of_one_key"),
    }
    sections.append(table(results, "scenario", [("everything at once", "combined")], combined))
    sections.append(
        table(
            results,
            "scenario",
            [("everything at once", "combined")],
            {"runs (step: exit code)": _runs, "faults injected": _faults},
        )
    )
    faults = sorted({s for figures in results.values() for s in figures if s.startswith("fault ")})
    sections.append(
        table(
            results,
            "one fault at a time",
            [(s.removeprefix("fault "), s) for s in faults],
            {
                "injected": _get("injected"),
                "re-runs needed": _get("reruns"),
                "retries": _get("retries"),
                "missing": _get("missing"),
                "altered": _get("altered"),
                "metadata lost": _get("metadata_lost"),
                "seconds": _get("seconds"),
            },
        )
    )
    kills = sorted({s for figures in results.values() for s in figures if s.startswith("kill -9 at ")})
    sections.append(
        table(
            results,
            "`kill -9` at",
            [(f"`{s.removeprefix('kill -9 at ')}`", s) for s in kills],
            {
                "verified before the kill": _get("verified_before_crash"),
                "uploads in flight": _get("uploads_in_flight"),
                "verified re-sent": _get("resent_verified"),
                "missing": _get("missing"),
                "altered": _get("altered"),
                "orphaned uploads": _get("orphans"),
            },
        )
    )
    sections.append(
        table(
            results,
            "target server",
            [("killed mid-run, restarted 2 s later", "target killed and restarted")],
            {
                "first run's exit": _get("first_exit"),
                "runs to exit 0": _get("runs"),
                "kill to exit 0, s": _get("outage_s"),
                "502 answers": _get("bad_gateway_answers"),
                "missing": _get("missing"),
                "altered": _get("altered"),
                "orphaned uploads": _get("orphans"),
            },
        )
    )
    broken = sorted({s for figures in results.values() for s in figures if s.startswith("listing always broken")})
    sections.append(
        table(
            results,
            "`sync --delete`, every listing truncated without a token",
            [(s.removeprefix("listing always broken ").removesuffix(", --delete"), s) for s in broken],
            {
                "exit": _get("exit"),
                "deletes": _get("deletes"),
                "clean re-run's exit": _get("then_clean_exit"),
                "stale objects left after it": _get("stale_left_after_clean_run"),
            },
        )
    )
    sections.append(
        table(
            results,
            "re-run with `--delete`, every target listing page broken",
            [("after a clean copy", "target listing always broken, re-run with --delete")],
            {
                "exit": _get("exit"),
                "objects": _get("objects"),
                "confirmed by HEAD": _get("confirmed_by_head"),
                "write requests": _get("write_requests"),
            },
        )
    )
    privileges = sorted({s for figures in results.values() for s in figures if s.startswith("least privilege")})
    sections.append(
        table(
            results,
            "least privilege (SeaweedFS identities)",
            [(s.removeprefix("least privilege: "), s) for s in privileges],
            {"exit": _get("exit"), "copied": _get("copied"), "seconds to fail": _get("seconds")},
        )
    )
    sections.append(
        table(
            results,
            "secrets",
            [("canary credentials", "secrets")],
            {
                "secrets": _get("secrets_checked"),
                "encodings each": _get("encodings_per_secret"),
                "command outputs": _get("commands_captured"),
                "files scanned": _get("files_scanned"),
                "MB scanned": lambda f: round(f["bytes_scanned"] / 1e6, 1),
                "canary hits": _get("canary_hits"),
            },
        )
    )
    sections.append(
        table(
            results,
            "input",
            [("bad input", "bad input"), ("untrusted TLS certificate", "tls: untrusted certificate refused")],
            {
                "tried": _get("tried"),
                "refused": _get("refused"),
                "exit": _get("exit"),
                "requests sent": _get("requests_sent"),
            },
        )
    )
    trust = sorted({s for figures in results.values() for s in figures if s.startswith("trust ")})
    sections.append(
        table(
            results,
            "nothing lost, nothing falsely verified (tests/reliability/test_trust.py)",
            [(s.removeprefix("trust "), s) for s in trust],
            {"measured": lambda f: "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in f.items())},
        )
    )
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", type=Path, help="replace the figures section of this file")
    args = parser.parse_args(argv)
    text = render(load())
    if args.write is None:
        print(text)
        return 0
    document = args.write.read_text()
    if BEGIN not in document or END not in document:
        print(f"{args.write}: no {BEGIN} ... {END} markers to write the figures between", file=sys.stderr)
        return 2
    head, rest = document.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    args.write.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
