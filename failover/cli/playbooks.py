"""``failover playbooks``: the playbooks that ship with failover, from any install."""

from __future__ import annotations

import sys

import click
import yaml

from ..errors import ConfigError
from ..playbook.shipped import shipped_playbook, shipped_playbooks
from .app import App, pass_app

__all__ = ["playbooks"]


def _describe(text: str) -> str:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""
    return str(data.get("description", "")) if isinstance(data, dict) else ""


@click.group(invoke_without_command=True)
@pass_app
@click.pass_context
def playbooks(ctx: click.Context, app: App) -> int:
    """List the playbooks that ship with failover. `failover run NAME` runs one by name (a file of
    that name in the working directory wins); `failover playbooks show NAME > mine.yaml` copies one
    to adapt.

    \b
    Example:
      failover playbooks
      failover playbooks show evacuate-aws
      failover run evacuate-aws --dry-run --var source=aws --var target=onprem
    """
    if ctx.invoked_subcommand is not None:
        return 0
    found = shipped_playbooks()
    rows = [[name, _describe(path.read_text(encoding="utf-8")), str(path)] for name, path in found.items()]
    if app.json:
        app.emit_json({"schema": 1, "playbooks": [{"name": r[0], "description": r[1], "path": r[2]} for r in rows]})
    else:
        app.table(["name", "description", "file"], rows, title="shipped playbooks")
    return 0


@playbooks.command("show")
@click.argument("name")
def show(name: str) -> int:
    """Print the shipped playbook NAME (its comments say how to use it).

    \b
    Example:
      failover playbooks show evacuate-aws > my-evacuation.yaml
    """
    path = shipped_playbook(name)
    if path is None:
        raise ConfigError(
            f"no shipped playbook is called {name!r}", hint=f"shipped: {', '.join(shipped_playbooks()) or 'none'}"
        )
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0
