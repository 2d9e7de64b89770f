"""``failover report``: render a JSON report for people."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ConfigError
from ..htmlreport import report_kind, write_html
from .app import App, pass_app

__all__ = ["report"]


@click.command()
@click.argument("report_file", metavar="REPORT.json", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write one self-contained HTML page here (default: beside REPORT.json, ending in .html).",
)
@pass_app
def report(app: App, report_file: Path, html_path: Path | None) -> int:
    """Render a playbook run's report.json, or the JSON report of sync or verify, as one HTML page a
    manager reads: outcome, timeline of the steps, throughput over time, recovery time against its
    budget, what was not carried, and the plan that was approved. The page fetches nothing.

    \b
    Example:
      failover report ~/.local/state/failover/runs/evacuate-aws-1a2b3c4d5e/report.json --html evacuation.html
      failover sync aws:media onprem:media --report sync.json && failover report sync.json
    """
    try:
        data = json.loads(report_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{report_file}: cannot read it: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{report_file}: not JSON ({exc})", hint="give the JSON report a run wrote") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{report_file}: not a failover report")
    kind = report_kind(data)
    target = html_path or report_file.with_suffix(".html")
    write_html(data, target)
    if app.json:
        app.emit_json({"schema": 1, "kind": kind, "html": str(target)})
    else:
        app.say(f"wrote {target} ({kind} report)")
    return 0
