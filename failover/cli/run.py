"""``failover run PLAYBOOK`` and ``failover validate PLAYBOOK``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..changes import change_line
from ..playbook import RunOptions, RunReport, load_playbook, parse_variables, provider_lookup, run_playbook
from ..playbook.loader import LoadedPlaybook
from ..playbook.runner import check_requirements
from ..sync.engine import state_dir
from .app import App, pass_app

__all__ = ["run", "validate"]


def _find(playbook: Path) -> Path:
    """PLAYBOOK as given, or the shipped playbook of that name when no such file exists."""
    if playbook.exists() or playbook.parent != Path("."):
        return playbook
    from ..playbook.shipped import shipped_playbook

    return shipped_playbook(playbook.name) or playbook


def _load(app: App, playbook: Path, variables: tuple[str, ...]) -> LoadedPlaybook:
    return load_playbook(_find(playbook), parse_variables(variables), provider_lookup(lambda: app.providers))


def _ask(message: str) -> bool:
    answer = click.prompt(f"{message}\nType 'yes' to go on", default="", show_default=False, err=True)
    return str(answer).strip().lower() == "yes"


@click.command()
@click.argument("playbook", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable the playbook declares.")
@pass_app
def validate(app: App, playbook: Path, variables: tuple[str, ...]) -> int:
    """Check PLAYBOOK (a file, or a shipped playbook's name): syntax, schema, variables, step graph,
    and that every provider and service a step names is in the providers file. Contacts nothing.

    \b
    Example:
      failover validate playbooks/evacuate-aws.yaml --var target=onprem
    """
    loaded = _load(app, playbook, variables)
    check_requirements(loaded, app.providers)
    if app.json:
        app.emit_json({"schema": 1, "valid": True, "name": loaded.playbook.name, "steps": [s.id for s in loaded.order]})
    else:
        steps = " -> ".join(s.id for s in loaded.order)
        app.say(f"{playbook}: valid playbook {loaded.playbook.name!r}; steps: {steps}")
    return 0


@click.command()
@click.argument("playbook", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--dry-run", is_flag=True, help="Preflight and plan every step (with --rollback: the undo); change nothing."
)
@click.option("--yes", is_flag=True, help="Approve every approval step in advance.")
@click.option("--from", "from_step", metavar="STEP", help="Run again from STEP (it and every step after it).")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable the playbook declares.")
@click.option("--restart", is_flag=True, help="Start a new run instead of resuming the unfinished one.")
@click.option("--rollback", "do_rollback", is_flag=True, help="Undo what this playbook's run changed, newest first.")
@click.option("--force", is_flag=True, help="Allow DNS changes beyond the playbook's change-share guard.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the report.")
@pass_app
def run(
    app: App,
    playbook: Path,
    dry_run: bool,
    yes: bool,
    from_step: str | None,
    variables: tuple[str, ...],
    restart: bool,
    do_rollback: bool,
    force: bool,
    report_path: Path | None,
) -> int:
    """Run PLAYBOOK: validate it, preflight every provider it uses, plan every step, then (without
    --dry-run) apply them in order. The run's state is saved after every step: re-running the same
    command after a crash resumes at the first unfinished step. Exit 0 only when every step
    succeeded and every budget held. PLAYBOOK is a file, or the name of a shipped playbook
    (`failover playbooks`). The report is written beside the run's state as report.json (and
    report-N.json for the Nth attempt) and report.html; --report FILE.html writes HTML.

    \b
    Example:
      failover run evacuate-aws --dry-run
      failover run playbooks/evacuate-aws.yaml --yes --var max_ttl_wait=30
      failover run evacuate-aws --rollback --dry-run   # what a rollback would undo
    """
    loaded = _load(app, playbook, variables)
    options = RunOptions(
        state_root=state_dir(),
        dry_run=dry_run,
        yes=yes,
        force=force,
        from_step=from_step,
        restart=restart,
        rollback=do_rollback,
        report_path=report_path,
        progress=app.progress,
        ask=_ask if sys.stdin.isatty() and not app.json else None,
    )
    app.progress(f"playbook {loaded.playbook.name} ({playbook}){': dry run' if dry_run else ''}")
    report = run_playbook(loaded, app.providers, options)
    if app.json:
        app.emit_json(report.to_json())
    else:
        _summary(app, report)
    return 0 if report.ok else 1


def _summary(app: App, report: RunReport) -> None:
    if report.dry_run:
        app.say(f"plan of {report.name} (dry run, nothing changed):")
        for step in report.steps:
            app.say(f"  {step.id} ({step.kind}): {step.status}", style="red" if step.problems else None)
            for change in step.changes:
                app.say(f"      {change_line(change)}")
            if not step.changes and not step.done_earlier and not step.problems:
                app.say("      no changes")
            for note in step.notes:
                app.say(f"      note: {note}")
            for problem in step.problems:
                app.say(f"      PROBLEM: {problem}", style="red")
        app.say("the plan has problems" if not report.ok else "every step can run", style=None if report.ok else "red")
        return
    rows = [[s.id, s.kind, s.status, "-" if s.seconds is None else f"{s.seconds:.1f}", s.summary] for s in report.steps]
    app.table(["step", "kind", "status", "seconds", "summary"], rows, title=f"{report.name}: {report.outcome}")
    for line in report.rollback:
        app.say(f"rolled back: {line}")
    if report.recovery_time_s is not None:
        start = "standby cutover" if report.recovery_point_s is not None else "run start"
        app.say(f"recovery time ({start} to DNS cutover confirmed): {report.recovery_time_s:.1f} s")
    if report.recovery_point_s is not None:
        app.say(
            f"recovery point (oldest source change not on the target at the cutover): {report.recovery_point_s:.2f} s"
        )
    for name, value in report.budgets.items():
        if value["budget"] is not None:
            app.say(f"budget {name}: {value['measured']} of {value['budget']}")
    for breach in report.breaches:
        app.say(f"BUDGET EXCEEDED: {breach}", style="red")
    app.say(f"report: {report.report_file}")
