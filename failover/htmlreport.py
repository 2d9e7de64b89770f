"""``failover report REPORT.json --html OUT.html``: one self-contained page a manager or an incident
review reads, for a playbook run or a sync.

Self-contained means no request leaves the page: CSS inline, charts as inline SVG, no script, and a
Content-Security-Policy that forbids fetching anything (``default-src 'none'``). Everything shown is
taken from the JSON report; nothing is recomputed or assumed, and what the report does not say
(no plan recorded, no throughput samples) is said as such.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import json
from pathlib import Path
from typing import Any

from .changes import change_line, changes_from_json
from .errors import ConfigError
from .files import write_atomic
from .secrets import redact
from .units import human_size

__all__ = ["render_html", "report_kind", "write_html"]

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:28px 32px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:34px 0 10px;border-bottom:1px solid #d9dde5;padding-bottom:4px}
.sub{color:#5a6373;margin:0 0 18px}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;color:#fff}
.ok{background:#1f8a4c}
.bad{background:#c0392b}
.warn{background:#b7791f}
.muted{color:#5a6373}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:12px 16px;min-width:150px}
.card b{display:block;font-size:22px}
.card span{color:#5a6373;font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d9dde5;font-size:14px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#eef1f5}
code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#eef1f5;padding:1px 4px;border-radius:3px;
word-break:break-all}
svg{background:#fff;border:1px solid #d9dde5;border-radius:8px;display:block;max-width:100%}
.chg{font:13px ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;margin:2px 0}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be fetched: the page is one file, and opening it contacts nobody."""
_STATUS_COLOURS = {
    "ok": "#1f8a4c",
    "changed": "#2b6cb0",
    "succeeded": "#1f8a4c",
    "planned": "#2b6cb0",
    "failed": "#c0392b",
    "skipped": "#b7791f",
    "waiting": "#b7791f",
    "done earlier": "#7f8c9a",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(value: Any) -> dt.datetime | None:
    """A report timestamp (ISO 8601, or epoch seconds in older reports)."""
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _iso(value: Any) -> str:
    moment = _when(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "not recorded"


def _seconds(value: float | None) -> str:
    if value is None:
        return "not recorded"
    if value < 120:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def report_kind(report: dict[str, Any]) -> str:
    """``playbook`` or ``sync`` (or ``verify``); a ConfigError for anything else."""
    if isinstance(report.get("steps"), list) and "playbook" in report:
        return "playbook"
    if report.get("kind") in ("sync", "verify"):
        return str(report["kind"])
    raise ConfigError(
        "not a failover report (a playbook run's report.json, or the JSON of sync or verify)",
        hint="give the report.json a run wrote, or sync --report FILE",
    )


def _tr(*cells: str, code: tuple[int, ...] = ()) -> str:
    """A table row of escaped cells; ``code``: the cells shown as code."""
    shown = (f"<code>{_e(c)}</code>" if n in code else _e(c) for n, c in enumerate(cells))
    return "<tr>" + "".join(f"<td>{c}</td>" for c in shown) + "</tr>"


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _timeline(steps: list[dict[str, Any]], run_start: dt.datetime | None) -> str:
    bars = [
        (s, _when(s.get("started_at")), _when(s.get("finished_at")))
        for s in steps
        if _when(s.get("started_at")) and _when(s.get("finished_at"))
    ]
    if not bars:
        return '<p class="muted">No step start and end times are recorded in this report.</p>'
    start = min([b[1] for b in bars if b[1]] + ([run_start] if run_start else []))
    end = max(b[2] for b in bars if b[2])
    span = max((end - start).total_seconds(), 1e-3)
    width, left, row = 1000, 190, 28
    height = 40 + row * len(bars)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="timeline">']
    for tick in range(6):
        x = left + (width - left - 20) * tick / 5
        parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 14}" stroke="#eceef2"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 2}" font-size="11" text-anchor="middle" fill="#5a6373">'
            f"{_e(_seconds(span * tick / 5))}</text>"
        )
    for index, (step, began, ended) in enumerate(bars):
        assert began is not None
        assert ended is not None
        y = 24 + row * index
        x = left + (width - left - 20) * (began - start).total_seconds() / span
        w = max((width - left - 20) * (ended - began).total_seconds() / span, 2.0)
        colour = _STATUS_COLOURS.get(str(step.get("status")), "#7f8c9a")
        parts.append(f'<text x="8" y="{y + 14}" font-size="12" fill="#1d2330">{_e(step.get("id"))}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" rx="3" fill="{colour}">')
        parts.append(
            f"<title>{_e(step.get('id'))}: {_e(step.get('status'))}, {_e(_seconds(step.get('seconds')))}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _throughput(samples: list[dict[str, Any]]) -> str:
    """Bytes per second between consecutive samples, as a line."""
    points = [(float(s["t"]), float(s["bytes"])) for s in samples if "t" in s and "bytes" in s]
    if len(points) < 2:
        return (
            '<p class="muted">No throughput samples are recorded in this report (the run was too short or older).</p>'
        )
    # The rate between consecutive samples, drawn as steps: flat over each interval (one interval shows too).
    intervals = [(t0, t1, (b1 - b0) / max(t1 - t0, 1e-6)) for (t0, b0), (t1, b1) in itertools.pairwise(points)]
    width, height, left, bottom = 1000, 240, 70, 28
    t_max = max(points[-1][0], 1e-3)
    r_max = max(max(r for _, _, r in intervals), 1.0)

    def at(t: float, r: float) -> str:
        return (
            f"{left + (width - left - 20) * t / t_max:.1f},{height - bottom - (height - bottom - 16) * r / r_max:.1f}"
        )

    coords = " ".join(f"{at(t0, r)} {at(t1, r)}" for t0, t1, r in intervals)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="throughput">'
    ]
    for tick in range(5):
        y = height - bottom - (height - bottom - 16) * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#eceef2"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5a6373">'
            f"{_e(human_size(r_max * tick / 4))}/s</text>"
        )
    for tick in range(6):
        x = left + (width - left - 20) * tick / 5
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" text-anchor="middle" fill="#5a6373">'
            f"{_e(_seconds(t_max * tick / 5))}</text>"
        )
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#2b6cb0" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _changes(changes: list[dict[str, Any]]) -> str:
    """The changes as the CLI prints them (one renderer of a change: :func:`failover.changes.change_line`)."""
    lines = [f'<div class="chg">{_e(change_line(change))}</div>' for change in changes_from_json(changes)]
    return "".join(lines) or '<span class="muted">no changes</span>'


def _not_carried_sync(sync: dict[str, Any], where: str) -> list[str]:
    rows = []
    for item in sync.get("skipped_keys", []) or []:
        rows.append(_tr(where, "key", str(item.get("key")), str(item.get("reason")), code=(2,)))
    for field, count in (sync.get("fidelity", {}).get("fields_not_carried", {}) or {}).items():
        rows.append(_tr(where, "metadata field", field, f"{count} object(s): the target cannot hold it", code=(2,)))
    for item in (sync.get("keys", {}) or {}).get("unconfirmed", []) or []:
        rows.append(_tr(where, "unconfirmed", str(item.get("key")), str(item.get("detail", "")), code=(2,)))
    for item in sync.get("errors", []) or []:
        rows.append(_tr(where, "failed", str(item.get("key")), str(item.get("error")), code=(2,)))
    filtered = (sync.get("totals") or {}).get("filtered", 0)
    if filtered:
        rows.append(_tr(where, "left out by filters", f"{filtered} object(s)", "by choice: named in the JSON report"))
    return rows


def _not_carried(report: dict[str, Any], kind: str) -> str:
    rows: list[str] = []
    if kind == "sync":
        rows += _not_carried_sync(report, "sync")
    for step in report.get("steps", []) or []:
        details = step.get("details") or {}
        where = str(step.get("id", ""))
        if step.get("kind") == "sync" and "totals" in details:
            rows += _not_carried_sync(details, where)
        for item in details.get("non_portable", []) or []:
            what = f"service ({item.get('portability') or 'no portable equivalent'})"
            name = f"{item.get('service')} {item.get('name')}"
            replacement = f"replace with {item.get('replacement') or 'a rebuild by hand'}"
            rows.append(_tr(where, what, name, replacement, code=(2,)))
        for instance in details.get("instances", []) or []:
            for note in instance.get("not_portable", []) or []:
                rows.append(_tr(where, "instance", str(instance.get("name")), str(note), code=(2,)))
    if not rows:
        return (
            "<p>Nothing: the report lists no skipped key, no metadata field the target could not hold and no "
            "service without a portable equivalent.</p>"
        )
    more = f'<p class="muted">{len(rows) - 500} more in the JSON report.</p>' if len(rows) > 500 else ""
    head = "<tr><th>where</th><th>what</th><th>name</th><th>why</th></tr>"
    return f"<table>{head}{''.join(rows[:500])}</table>{more}"


def _samples(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "sync":
        return list(report.get("samples") or [])
    for step in report.get("steps", []) or []:
        details = step.get("details") or {}
        if step.get("kind") == "sync" and details.get("samples"):
            return list(details["samples"])
    return []


def _playbook_body(report: dict[str, Any]) -> list[str]:
    body = []
    budgets = report.get("budgets") or {}
    rto = report.get("recovery_time_s")
    rpo = report.get("recovery_point_s")
    budget = (budgets.get("recovery_time_s") or {}).get("budget")
    body.append('<div class="cards">')
    body.append(_card(_seconds(report.get("duration_s")), "run duration"))
    body.append(_card(_seconds(rto) if rto is not None else "not reached", "recovery time (start to DNS cutover)"))
    body.append(_card(_seconds(budget) if budget else "none set", "recovery time budget"))
    if rpo is not None:
        body.append(_card(_seconds(rpo), "recovery point (data a cutover would lose)"))
    body.append(_card(str(len(report.get("steps", []))), "steps"))
    body.append("</div>")
    if report.get("breaches"):
        body.append("<p><b>Budgets exceeded:</b> " + "; ".join(_e(b) for b in report["breaches"]) + "</p>")
    if budgets:
        rows = "".join(
            f"<tr><td>{_e(name)}</td><td>{_e(json.dumps(value, default=str))}</td></tr>"
            for name, value in budgets.items()
        )
        body.append(f"<h2>Budgets</h2><table><tr><th>budget</th><th>measured</th></tr>{rows}</table>")
    body.append("<h2>Timeline</h2>")
    body.append(_timeline(report.get("steps", []), _when(report.get("started"))))
    rows = "".join(
        f"<tr><td>{_e(s.get('id'))}</td><td>{_e(s.get('kind'))}</td><td>{_e(s.get('status'))}</td>"
        f"<td>{_e(_seconds(s.get('seconds')))}</td><td>{_e(s.get('summary', ''))}</td></tr>"
        for s in report.get("steps", [])
    )
    body.append(
        f"<h2>Steps</h2><table><tr><th>step</th><th>kind</th><th>status</th><th>time</th><th>summary</th></tr>{rows}</table>"
    )
    return body


def _sync_body(report: dict[str, Any]) -> list[str]:
    totals = report.get("totals") or {}
    verified = report.get("verified") or {}
    body = ['<div class="cards">']
    body.append(_card(_seconds(report.get("duration_s")), "duration"))
    body.append(_card(f"{totals.get('copied', 0)}", f"objects copied ({human_size(totals.get('copied_bytes', 0))})"))
    body.append(_card(f"{totals.get('listed', 0)}", "objects listed at the source"))
    body.append(_card(f"{verified.get('now', 0)} + {verified.get('earlier_unchanged', 0)}", "verified now + earlier"))
    body.append(_card(f"{totals.get('failed', 0) + totals.get('skipped', 0)}", "failed or skipped"))
    body.append("</div>")
    rows = "".join(
        _tr(
            *(str(b.get(k)) for k in ("source", "target", "listed", "copied", "failed", "skipped", "deleted")),
            code=(0, 1),
        )
        for b in report.get("buckets", [])
    )
    body.append(
        "<h2>Buckets</h2><table><tr><th>source</th><th>target</th><th>listed</th><th>copied</th><th>failed</th>"
        f"<th>skipped</th><th>deleted</th></tr>{rows}</table>"
    )
    return body


def render_html(report: dict[str, Any]) -> str:
    kind = report_kind(report)
    if kind == "playbook":
        title = f"Playbook run: {report.get('name', '')}"
        outcome = str(report.get("outcome", "unknown"))
        good = bool(report.get("ok"))
    else:
        title = f"{kind}: {report.get('source', '')} \u2192 {report.get('target', '')}"
        good = bool(report.get("complete") if kind == "sync" else report.get("ok"))
        outcome = "every object verified" if good else "NOT every object is verified"
    badge = "ok" if good else "bad"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub"><span class="badge {badge}">{_e(outcome)}</span> &nbsp; '
        f"started {_e(_iso(report.get('started')))}, finished {_e(_iso(report.get('finished')))}</p>",
    ]
    body += _playbook_body(report) if kind == "playbook" else _sync_body(report)
    body.append("<h2>Throughput over time</h2>")
    body.append(_throughput(_samples(report, kind)))
    body.append("<h2>What was not carried</h2>")
    body.append(_not_carried(report, kind))
    heading = "The plan that was approved" if kind == "playbook" else "What it changed"
    if report.get("dry_run"):
        heading = "The plan (dry run: nothing was changed)"
    body.append(f"<h2>{heading}</h2>")
    plan = report.get("plan")
    if isinstance(plan, dict) and plan.get("steps"):
        body.append(f'<p class="muted">Dry run of {_e(_iso(plan.get("planned_at")))}:</p>')
        for step in plan["steps"]:
            body.append(
                f"<p><b>{_e(step.get('id'))}</b> ({_e(step.get('kind'))})</p>{_changes(step.get('changes', []))}"
            )
    elif kind == "playbook" and any(s.get("changes") for s in report.get("steps", [])):
        for step in report["steps"]:
            body.append(
                f"<p><b>{_e(step.get('id'))}</b> ({_e(step.get('kind'))})</p>{_changes(step.get('changes', []))}"
            )
    elif report.get("changes"):
        body.append(_changes(report["changes"]))
    else:
        body.append(
            '<p class="muted">No plan is recorded for this run (run it with --dry-run first to record one).</p>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>{''.join(body)}"
        '<p class="muted" style="margin-top:40px">Written by failover from its JSON report; '
        "every figure is from that report.</p>"
        "</main></body></html>\n"
    )


HTML_SUFFIXES = (".html", ".htm")
"""A ``--report`` file with one of these endings is written as this page; any other as JSON."""


def write_html(report: dict[str, Any], path: Path) -> Path:
    """The page, redacted (as every report file is) and written atomically."""
    write_atomic(path, redact(render_html(report)))
    return path
