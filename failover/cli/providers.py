"""``failover providers``: what the providers file defines, and whether each provider works."""

from __future__ import annotations

import click

from ..checks import check_providers
from .app import App, pass_app

__all__ = ["providers"]


@click.group()
def providers() -> None:
    """Inspect and check the configured providers.

    \b
    Example:
      failover providers list
      failover providers check aws onprem
    """


@providers.command("list")
@pass_app
def list_(app: App) -> int:
    """Providers, their services and adapter types (no network).

    \b
    Example:
      failover providers list --json
    """
    config = app.providers
    config.validate_all()
    rows = []
    for name in config.names:
        for service in config.services(name):
            spec = config.spec(name, service)
            rows.append([name, service, spec.type, spec.endpoint or "-", spec.region or "-"])
    if app.json:
        app.emit_json({"providers": [config.spec(n, s).describe() for n in config.names for s in config.services(n)]})
    else:
        app.table(["provider", "service", "type", "endpoint", "region"], rows, title=config.path)
    return 0


@providers.command()
@click.argument("names", nargs=-1)
@pass_app
def check(app: App, names: tuple[str, ...]) -> int:
    """Per provider and service: reachable, authorised, declared capabilities. Exit 3 if any fails.

    \b
    Example:
      failover providers check
      failover providers check onprem --json
    """
    config = app.providers
    for name in names:
        config.get(name)  # unknown names fail before any network call
    results = check_providers(config, list(names))
    if app.json:
        app.emit_json({"checks": [r.to_json() for r in results]})
    else:
        for r in results:
            state = []
            if r.reachable is not None:
                state.append("reachable" if r.reachable else "UNREACHABLE")
            if r.authorised is not None:
                state.append("authorised" if r.authorised else "NOT AUTHORISED")
            verdict = "ok" if r.ok else "FAILED"
            where = f"{r.type}, {r.endpoint}" if r.endpoint else r.type
            detail = "; ".join(r.notes)
            app.say(
                f"{verdict:6} {r.provider}/{r.service} ({where}): {', '.join(state) or 'not checked'}"
                + (f"; {detail}" if detail else ""),
                style=None if r.ok else "red",
            )
            if r.capabilities:
                app.say(f"       capabilities: {', '.join(r.capabilities['operations']) or 'core only'}")
                if "metadata" in r.capabilities:
                    app.say(f"       metadata: {', '.join(r.capabilities['metadata'])}")
            if r.error:
                app.say(f"       error: {r.error}", style="red")
    return 0 if all(r.ok for r in results) else 3
