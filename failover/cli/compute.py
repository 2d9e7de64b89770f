"""``failover inventory`` and ``failover rehost``."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import commands
from ..changes import change_line, changes_to_json
from ..errors import ConfigError
from ..inventory import take_inventory
from ..rehost import RehostPlan
from ..rehost.plan import translation_notes
from .app import App, complete_provider, pass_app

__all__ = ["inventory", "rehost"]


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    found = {}
    for value in values:
        key, equals, item = value.partition("=")
        if not equals or not key:
            raise ConfigError(f"{option} {value!r}: write KEY=VALUE")
        found[key] = item
    return found


@click.command()
@click.argument("provider", shell_complete=complete_provider)
@click.option("--no-sizes", is_flag=True, help="Do not count objects and bytes per bucket (faster).")
@pass_app
def inventory(app: App, provider: str, no_sizes: bool) -> int:
    """What PROVIDER's account holds: buckets, instances, DNS zones, and services with no portable
    equivalent (to be rebuilt by hand), each labelled with failover lint's class and replacement.

    \b
    Example:
      failover inventory aws
      failover inventory aws --no-sizes --json
    """
    found = take_inventory(app.providers, provider, sizes=not no_sizes)
    if app.json:
        app.emit_json(found.to_json())
        return 0
    app.say(f"inventory of {provider}")
    if found.buckets:
        rows = [
            [b["name"], b.get("objects", "-"), b.get("bytes", "-"), _settings_cell(b.get("settings"))]
            for b in found.buckets
        ]
        app.table(["bucket", "objects", "bytes", "settings"], rows, title="buckets")
    if found.instances:
        rows = [
            [
                i["name"],
                i["id"],
                i["state"],
                i["type"],
                i["os"] or i["image"],
                {True: "yes", False: "no", None: "unknown"}[i["user_data"]],
                ",".join(map(str, i["open_ports"])) or "-",
                ", ".join(f"{k}={v}" for k, v in sorted(i["tags"].items()) if k != "Name"),
            ]
            for i in found.instances
        ]
        app.table(["instance", "id", "state", "type", "image", "user-data", "ports", "tags"], rows, title="instances")
        for i in found.instances:
            for note in i["not_portable"]:
                app.say(f"  {i['name']}: not portable: {note}", style="yellow")
    if found.dns_zones:
        app.table(["zone", "id", "records"], [[z.name, z.id, z.records] for z in found.dns_zones], title="DNS zones")
    if found.non_portable:
        rows = [
            [n.service, n.kind, n.name, n.detail, n.portability or "-", n.replacement or "-"]
            for n in found.non_portable
        ]
        app.table(
            ["service", "kind", "name", "detail", "class", "replace with"],
            rows,
            title="no portable equivalent (rebuild by hand; classes and replacements as failover lint has them)",
        )
    for note in found.unchecked:
        app.say(f"not checked: {note}", style="yellow")
    return 0


def _confirm(app: App, yes: bool, what: str) -> None:
    """Ask a person before rehost changes a provider; refuse without a terminal unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty() or app.json:
        raise ConfigError(
            f"rehost would {what}: nobody is at a terminal to confirm", hint="add --yes (review first with --dry-run)"
        )
    answer = click.prompt(f"{what}? Type 'yes' to go on", default="", show_default=False, err=True)
    if str(answer).strip().lower() != "yes":
        raise ConfigError(f"not confirmed: nothing was changed ({what})", hint="re-run and type yes, or pass --yes")


def _table(app: App, rows: list[dict[str, Any]]) -> None:
    """The translation table, then per instance what does not carry; notes every instance shares
    (the target's own limits) once at the end."""
    table = [
        [
            r["name"],
            r["source_type"],
            r["spec"],
            r["source_image"],
            r["target_size"] or "-",
            r["target_os"] or r["target_image"] or "-",
            "-" if r["hourly_price"] is None else f"{r['hourly_price']:.4f}",
        ]
        for r in rows
    ]
    app.table(["instance", "source type", "needs", "source image", "target size", "target image", "$/hour"], table)
    for note in translation_notes(rows):
        app.say(note, style="red" if ": PROBLEM: " in note else None)


@click.command()
@click.argument("source", shell_complete=complete_provider)
@click.argument("target", shell_complete=complete_provider)
@click.option("--select", "selectors", multiple=True, metavar="TAG=VALUE", help="Only source instances with this tag.")
@click.option("--fleet", help="Name of the target fleet (default: derived from source, target and selection).")
@click.option("--health-check", metavar="URL", help="Health-check URL template, e.g. http://{address}:8080/healthz.")
@click.option("--no-health-check", is_flag=True, help="Do not health-check (targets whose addresses are unreachable).")
@click.option("--user-data-replace", multiple=True, metavar="OLD=NEW", help="Rewrite text in user-data for the target.")
@click.option(
    "--on-problem",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="An instance that cannot be rebuilt: refuse before creating anything, or leave it out.",
)
@click.option("--dry-run", is_flag=True, help="Show the translation table; create nothing.")
@click.option("--rollback", "do_rollback", is_flag=True, help="Destroy what rehost created for this fleet.")
@click.option("--yes", is_flag=True, help="Create (or with --rollback destroy) without asking.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds for instances to be running.")
@click.option("--health-timeout", type=float, default=120.0, show_default=True, help="Seconds for each health check.")
@pass_app
def rehost(
    app: App,
    source: str,
    target: str,
    selectors: tuple[str, ...],
    fleet: str | None,
    health_check: str | None,
    no_health_check: bool,
    user_data_replace: tuple[str, ...],
    on_problem: str,
    dry_run: bool,
    do_rollback: bool,
    yes: bool,
    timeout: float,
    health_timeout: float,
) -> int:
    """Rebuild SOURCE's instances on TARGET (provider names): translate sizes and images, create
    the fleet idempotently, wait until it runs, and health-check every instance. Exit 1 if any
    instance is unhealthy or cannot be rebuilt (nothing is created then, unless --on-problem
    skip), naming it. Asks before creating or destroying anything unless --yes.

    \b
    Example:
      failover rehost aws onprem --select role=web --dry-run
      failover rehost aws onprem --select role=web --yes
      failover rehost aws onprem --select role=web --rollback --yes
    """
    request = commands.RehostRequest(
        source=source,
        target=target,
        select=_pairs(selectors, "--select"),
        fleet=fleet,
        health_check="" if no_health_check else health_check,
        user_data_replace=_pairs(user_data_replace, "--user-data-replace"),
        run_timeout=timeout,
        health_timeout=health_timeout,
        on_problem=on_problem,  # type: ignore[arg-type]
    )
    if do_rollback:
        _confirm(app, yes, f"destroy every instance of fleet {request.fleet_name} on {target}")
        destroyed = commands.rehost_rollback(app.providers, request, app.progress)
        if app.json:
            app.emit_json({"fleet": request.fleet_name, "destroyed": destroyed})
        else:
            app.say(f"rollback of fleet {request.fleet_name} on {target}: {len(destroyed)} instance(s) destroyed")
        return 0
    if dry_run:
        plan = commands.plan_rehost_fleet(app.providers, request)
        if not plan.instances:
            raise ConfigError(f"no instances on {source} match the selection", hint="check --select TAG=VALUE")
        changes = plan.changes()
        if app.json:
            app.emit_json({**plan.to_json(), "dry_run": True, "changes": changes_to_json(changes)})
        else:
            app.say(f"plan (dry run, nothing created): {source} -> {target}, fleet {plan.fleet}")
            _table(app, [p.row() for p in plan.instances])
            for change in changes:
                app.say(change_line(change))
        return 0 if len(plan.creatable) == len(plan.instances) else 1

    def show(plan: RehostPlan) -> None:
        if not app.json:
            _table(app, [p.row() for p in plan.instances])
        creating = [p for p in plan.creatable if p.existing is None]
        if creating:
            _confirm(app, yes, f"create {len(creating)} instance(s) of fleet {plan.fleet} on {target}")

    run = commands.rehost(app.providers, request, progress=app.progress, before_create=show)
    report = run.report
    data = report.to_json()
    if app.json:
        app.emit_json(data)
    else:
        for r in report.results:
            health = r.health
            verdict = "-" if health is None else ("healthy" if health.healthy else f"UNHEALTHY: {health.error}")
            app.say(
                f"{r.name}: {r.action} {r.target_id or ''} {r.address or ''} -> {verdict}"
                + (f" ({r.error})" if r.error else "")
            )
        if report.ok:
            count, seconds = len(report.results), data["seconds_to_healthy"]
            checked = sum(1 for r in report.results if r.health is not None)
            verdict = "running and healthy" if checked == count else f"running ({checked} health-checked)"
            app.say(f"fleet {run.plan.fleet} on {target}: {count} instance(s) {verdict} in {seconds:.1f} s")
        else:
            bad = [r.name for r in report.results if r.error or (r.health and r.health.healthy is False)]
            app.say(f"fleet {run.plan.fleet} on {target}: NOT healthy: {', '.join(bad)}", style="red")
    return 0 if report.ok else 1


def _settings_cell(settings: dict[str, object] | None) -> str:
    """A bucket's settings in a few words (the JSON has them whole)."""
    if settings is None:
        return "-"
    if "unreadable" in settings:
        return f"unreadable: {settings['unreadable']}"
    return ", ".join(sorted(settings)) or "none"
