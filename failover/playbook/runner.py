"""Running a playbook: preflight, plan, apply step by step with the state persisted after each,
resume after a crash, roll back, and the report (per-step durations, recovery time, budgets)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..changes import Change, changes_to_json
from ..checks import check_providers
from ..config import Providers
from ..errors import ConfigError, FailoverError, Interrupted, PlaybookError, ProviderError
from ..files import write_atomic
from ..secrets import redact
from ..sync.report import JSON_SCHEMA, iso
from .loader import LoadedPlaybook
from .outputs import StepOutput
from .schema import Step
from .state import DONE, RunState, Status, StepState, run_dir
from .steps import ApprovalPending, Context, Planned, kind_of, plan_undo_step, undo_step

__all__ = ["PreflightFailed", "RunOptions", "RunReport", "check_requirements", "preflight", "run_playbook"]


class PreflightFailed(ProviderError):
    """A provider a step needs is unreachable, refuses the credentials, or lacks the service."""


@dataclass
class RunOptions:
    state_root: Path
    dry_run: bool = False
    yes: bool = False
    force: bool = False
    from_step: str | None = None
    restart: bool = False
    rollback: bool = False
    report_path: Path | None = None
    progress: Callable[[str], None] = lambda message: None
    ask: Callable[[str], bool] | None = None


@dataclass
class StepReport:
    id: str
    kind: str
    status: str
    summary: str = ""
    seconds: float | None = None
    changes: list[Change] = field(default_factory=list)
    """What the step would change (a dry run's plan)."""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    done_earlier: bool = False
    attempts: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    """ISO 8601 (UTC), as every timestamp in a report."""
    finished_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "changes": changes_to_json(self.changes)}


@dataclass
class RunReport:
    playbook: str
    name: str
    run_id: str
    dry_run: bool
    outcome: str
    """succeeded | failed | rolled back | waiting for approval | planned | plan has problems"""
    steps: list[StepReport] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    recovery_time_s: float | None = None
    recovery_point_s: float | None = None
    """Measured by a standby step at its cutover (None: the run had none)."""
    budgets: dict[str, Any] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)
    state_file: str | None = None
    report_file: str | None = None
    report_files: list[str] = field(default_factory=list)
    """Every file this attempt's report was written to (JSON, its own numbered copy, HTML)."""
    attempt: int = 0
    """Which invocation of this run this report is (1 for the first); each keeps its own report."""
    plan: dict[str, Any] | None = None
    """The last dry run's plan of this run (what was approved), when one was recorded."""
    done_earlier: set[str] = field(default_factory=set)
    """Steps a previous attempt of this run had finished (not run again)."""

    @property
    def ok(self) -> bool:
        return self.outcome in ("succeeded", "planned") and not self.breaches

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": JSON_SCHEMA,
            "kind": "playbook",
            "playbook": self.playbook,
            "name": self.name,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "ok": self.ok,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "duration_s": round(self.finished - self.started, 3) if self.finished and self.started else None,
            "recovery_time_s": self.recovery_time_s,
            "recovery_point_s": self.recovery_point_s,
            "budgets": self.budgets,
            "breaches": self.breaches,
            "rollback": self.rollback,
            "steps": [s.to_json() for s in self.steps],
            "state_file": self.state_file,
            "report_file": self.report_file,
            "report_files": self.report_files,
            "plan": self.plan,
        }


def check_requirements(loaded: LoadedPlaybook, providers: Providers) -> dict[str, set[str]]:
    """Every provider and service a step (or rollback handler) names is in the providers file;
    contacts nothing. Returns provider -> services to preflight."""
    needed: dict[str, set[str]] = {}
    for step in (*loaded.order, *loaded.playbook.rollback):
        for requirement in kind_of(step).requires(step):
            try:
                if requirement.service is None:
                    providers.get(requirement.provider)
                    continue
                providers.spec(requirement.provider, requirement.service)
            except ConfigError as exc:
                raise PlaybookError(f"step {step.id!r}: {exc.message}", hint=exc.hint) from None
            needed.setdefault(requirement.provider, set()).add(requirement.service)
    return needed


def preflight(loaded: LoadedPlaybook, providers: Providers, progress: Callable[[str], None]) -> None:
    """Every (provider, service) a step needs: configured, reachable, credentials accepted."""
    needed = check_requirements(loaded, providers)
    failures = []
    for name, services in sorted(needed.items()):
        for check in check_providers(providers, [name]):
            if check.service in services and not check.ok:
                failures.append(f"{check.provider}/{check.service}: {check.error or 'failed'}")
            elif check.service in services:
                progress(f"preflight: {check.provider}/{check.service} ok ({'; '.join(check.notes)})")
    if failures:
        raise PreflightFailed(
            "preflight failed, nothing was changed:\n  " + "\n  ".join(failures),
            hint="failover providers check shows every provider's state",
        )


def _plan_all(loaded: LoadedPlaybook, ctx: Context) -> list[StepReport]:
    reports = []
    for step in loaded.order:
        done = ctx.state.steps.get(step.id) if ctx.state else None
        if done is not None and done.status in DONE:
            earlier = StepReport(step.id, step.kind, "done earlier", done.summary, done.seconds, done_earlier=True)
            reports.append(earlier)
            continue
        try:
            planned = kind_of(step).plan(step, ctx)
        except FailoverError as error:
            planned = Planned(problems=[str(error)])
        if planned.outputs is not None:
            ctx.planned[step.id] = planned.outputs
        status = "would fail" if planned.problems else "planned"
        entry = StepReport(step.id, step.kind, status, changes=planned.changes, problems=planned.problems)
        entry.notes = planned.notes
        reports.append(entry)
    return reports


def _write_report(report: RunReport, directory: Path | None, extra: Path | None) -> None:
    """The report as JSON (``report.json``, the latest, and ``report-<attempt>.json``, kept) and as
    HTML (``report.html``) in the run's directory; ``extra`` (``--report``) is HTML when it ends in
    ``.html``, JSON otherwise."""
    from ..htmlreport import HTML_SUFFIXES, render_html

    written: list[Path] = []
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        if not report.dry_run:
            report.attempt = 1 + sum(1 for _ in directory.glob("report-*.json"))
            written += [directory / "report.json", directory / f"report-{report.attempt}.json"]
        written.append(directory / ("plan.html" if report.dry_run else "report.html"))
    if extra is not None:
        written.append(extra)
    report.report_file = str(extra or (written[0] if written else "")) or None
    report.report_files = [str(p) for p in written]
    data = report.to_json()
    text = redact(json.dumps(data, indent=2, default=str)) + "\n"
    page = redact(render_html(data))
    for path in written:
        write_atomic(path, page if path.suffix.lower() in HTML_SUFFIXES else text)


def _record_plan(report: RunReport, directory: Path) -> None:
    """A dry run's plan, kept in the run's directory: the plan an apply of the same run reports as approved."""
    plan = {
        "planned_at": iso(time.time()),
        "steps": [{"id": s.id, "kind": s.kind, "changes": changes_to_json(s.changes)} for s in report.steps],
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "plan.json", redact(json.dumps(plan, indent=2, default=str)) + "\n")


def _recorded_plan(directory: Path) -> dict[str, Any] | None:
    try:
        plan: dict[str, Any] = json.loads((directory / "plan.json").read_text())
    except (OSError, ValueError):
        return None
    return plan


def _other_unfinished_runs(state_root: Path, loaded: LoadedPlaybook, run_id: str) -> list[str]:
    """Unfinished runs of the same playbook file with other step definitions: why this is a new run,
    and how to resume the other one."""
    found = []
    for path in sorted((state_root / "runs").glob(f"{loaded.playbook.name}-*/state.json")):
        other = RunState.load(path)
        if other is None or other.run_id == run_id or other.finished is not None:
            continue
        if Path(other.playbook).resolve() != loaded.path.resolve():
            continue
        differs = sorted(
            k for k in {*other.variables, *loaded.variables} if other.variables.get(k) != loaded.variables.get(k)
        )
        resume = " ".join(f"--var {k}={other.variables[k]}" for k in differs if k in other.variables)
        what = f"variables {', '.join(differs)} change what its steps do" if differs else "the playbook's steps changed"
        found.append(
            f"unfinished run {other.run_id} of this playbook is not this run ({what}); "
            f"resume it with: failover run {loaded.path} {resume}".rstrip()
        )
    return found


def _open_state(loaded: LoadedPlaybook, options: RunOptions) -> RunState:
    run_id, directory = run_dir(options.state_root, loaded.playbook.name, loaded.path, loaded.digest)
    path = directory / "state.json"
    state = None if options.restart else RunState.load(path)
    if state is not None and state.outcome == "rolled back" and not options.rollback:
        state = None  # what it did was undone: a new run starts from the beginning
    if state is not None and state.digest != loaded.digest and state.finished is None and not options.from_step:
        raise PlaybookError(
            f"{loaded.path} changed since its unfinished run {run_id} started",
            hint="finish it with the playbook as it was, re-run from a step with --from STEP, or start over with "
            "--restart (steps are idempotent: what is done stays done)",
        )
    if state is None:
        state = RunState(run_id, str(loaded.path), loaded.playbook.name, loaded.digest, dict(loaded.variables))
    state.path = path
    state.digest = loaded.digest
    if options.from_step:
        ids = [s.id for s in loaded.order]
        if options.from_step not in ids:
            raise PlaybookError(f"--from {options.from_step}: no such step", hint=f"steps: {', '.join(ids)}")
        for step in loaded.order[ids.index(options.from_step) :]:
            if step.id in state.steps and state.steps[step.id].status in DONE:
                state.steps[step.id].status = "pending"
        state.finished = None
        state.outcome = None
    return state


def _outputs(loaded: LoadedPlaybook, state: RunState) -> list[StepOutput]:
    return [
        kind_of(step).read_outputs(state.steps[step.id].outputs)
        for step in loaded.order
        if step.id in state.steps and state.steps[step.id].outputs
    ]


def _recovery_time(state: RunState, outputs: list[StepOutput]) -> float | None:
    """Run start, or the last standby cutover (the notice: the source is taken to be gone from
    then on), to the DNS cutover confirmed (or the run's end)."""
    end = state.cutover_at or (state.finished if state.outcome == "succeeded" else None)
    notices = [o.notice for o in outputs if o.notice is not None]
    start = max(notices) if notices else state.started
    return round(end - start, 3) if end else None


def _recovery_point(outputs: list[StepOutput]) -> float | None:
    points = [o.recovery_point for o in outputs if o.recovery_point is not None]
    return max(points) if points else None


def _budgets(
    loaded: LoadedPlaybook, outputs: list[StepOutput], recovery: float | None, point: float | None
) -> tuple[dict[str, Any], list[str]]:
    budgets = loaded.playbook.budgets
    if budgets is None:
        return {}, []
    unverified = sum(o.unverified_objects for o in outputs)
    unhealthy = sum(o.unhealthy_instances for o in outputs)
    measured = {
        "recovery_time_s": recovery,
        "recovery_point_s": point,
        "unverified_objects": unverified,
        "unhealthy_instances": unhealthy,
    }
    breaches = []
    for name, measured_value in measured.items():
        limit = getattr(budgets, name)
        if limit is None:
            continue
        if measured_value is None:
            breaches.append(f"{name}: not measured (the run did not get that far), budget {limit}")
        elif measured_value > limit:
            breaches.append(f"{name}: {measured_value} exceeds the budget of {limit}")
    return {name: {"budget": getattr(budgets, name), "measured": value} for name, value in measured.items()}, breaches


def _undo_run(loaded: LoadedPlaybook, state: RunState, ctx: Context, report: RunReport) -> None:
    """Undo every step that changed something, newest first; then run the rollback handlers."""
    for step in reversed(loaded.order):
        recorded = state.steps.get(step.id)
        if recorded is None or recorded.status not in ("changed", "failed", "running"):
            continue
        ctx.progress(f"rollback: {step.id}")
        message = undo_step(step, ctx, recorded.outputs)
        if message:
            report.rollback.append(f"{step.id}: {message}")
            recorded.status = "rolled_back"
            state.save()
        elif recorded.status == "changed":
            report.rollback.append(f"{step.id}: kept (a {step.kind} step is not undone)")
    for handler in loaded.playbook.rollback:
        ctx.progress(f"rollback handler: {handler.id}")
        try:
            outcome = kind_of(handler).apply(handler, ctx)
            report.rollback.append(f"{handler.id}: {outcome.summary}")
        except FailoverError as error:
            report.rollback.append(f"{handler.id}: FAILED: {error}")


def run_playbook(loaded: LoadedPlaybook, providers: Providers, options: RunOptions) -> RunReport:
    """Preflight, then plan (``dry_run``) or apply. Never raises for a step's failure: the report says."""
    run_id, directory = run_dir(options.state_root, loaded.playbook.name, loaded.path, loaded.digest)
    preflight(loaded, providers, options.progress)
    existing = RunState.load(directory / "state.json") if not options.restart else None

    if options.dry_run and options.rollback:
        ctx = Context(providers, existing, yes=options.yes, force=options.force, progress=options.progress)
        ctx.definitions = _definitions(loaded)
        undo = _plan_undo(loaded, existing, ctx)
        report = RunReport(str(loaded.path), loaded.playbook.name, run_id, True, "planned", undo)
        if options.report_path:
            _write_report(report, None, options.report_path)
        return report
    if options.dry_run:
        ctx = Context(providers, existing, yes=options.yes, force=options.force, progress=options.progress)
        ctx.definitions = _definitions(loaded)
        steps = _plan_all(loaded, ctx)
        problems = any(s.problems for s in steps)
        report = RunReport(
            str(loaded.path), loaded.playbook.name, run_id, True, "plan has problems" if problems else "planned", steps
        )
        _record_plan(report, directory)
        _write_report(report, directory, options.report_path)
        return report

    if existing is None and not options.rollback:
        for message in _other_unfinished_runs(options.state_root, loaded, run_id):
            options.progress(message)
    state = _open_state(loaded, options)
    ctx = Context(providers, state, yes=options.yes, force=options.force, progress=options.progress, ask=options.ask)
    ctx.definitions = _definitions(loaded)
    report = RunReport(str(loaded.path), loaded.playbook.name, run_id, False, "running", state_file=str(state.path))
    if options.rollback:
        _undo_run(loaded, state, ctx, report)
        state.outcome, state.finished = "rolled back", time.time()
        state.save()
        report.outcome = "rolled back"
        return _finish(loaded, state, report, directory, options)
    if state.finished is not None:
        options.progress(f"run {run_id} already finished ({state.outcome}); nothing to do (--restart for a new run)")
    state.save()
    report.done_earlier = {s.id for s in loaded.order if s.id in state.steps and state.steps[s.id].status in DONE}
    failed: set[str] = set()
    stop = False
    for position, step in enumerate(loaded.order, 1):
        recorded = state.step(step.id, step.kind)
        label = f"[{position}/{len(loaded.order)}] {step.id} ({step.kind})"
        if recorded.status in DONE:
            options.progress(f"{label}: done earlier: {recorded.summary}")
            continue
        if stop:
            break
        blocked = [need for need in step.depends_on() if need in failed]
        if blocked:
            recorded.status, recorded.summary = "skipped", f"needs {', '.join(blocked)}, which did not finish"
            failed.add(step.id)
            state.save()
            continue
        options.progress(f"{label}{': ' + step.description if step.description else ''}")
        try:
            stop = not _run_step(step, recorded, state, ctx, options)
        except KeyboardInterrupt:
            options.progress(f"stopping (Ctrl-C) in step {step.id}: recorded as interrupted")
            state.outcome = "interrupted"
            state.save()
            report.outcome = "interrupted"
            finished = _finish(loaded, state, report, directory, options)
            raise Interrupted(
                f"run {run_id} interrupted in step {step.id!r}",
                hint=f"re-run the same command to resume at {step.id}; report: {finished.report_file}",
            ) from None
        if recorded.status == "failed":
            failed.add(step.id)
            policy = step.on_failure or loaded.playbook.on_failure
            if policy == "continue":
                stop = False
            elif policy == "rollback":
                _undo_run(loaded, state, ctx, report)
                state.outcome, state.finished = "rolled back", time.time()
                report.outcome = "rolled back"
                state.save()
                return _finish(loaded, state, report, directory, options)
    if any(s.status == "waiting" for s in state.steps.values()):
        state.outcome = "waiting for approval"
    elif all(state.steps.get(s.id) is not None and state.steps[s.id].status in DONE for s in loaded.order):
        state.outcome = "succeeded"
        state.finished = state.finished or time.time()
        if state.steps and any(s.status == "skipped" for s in state.steps.values()):
            state.outcome = "failed"
    else:
        state.outcome = "failed"
    state.save()
    report.outcome = state.outcome
    return _finish(loaded, state, report, directory, options)


def _plan_undo(loaded: LoadedPlaybook, state: RunState | None, ctx: Context) -> list[StepReport]:
    """``--rollback --dry-run``: what undoing the run would change, newest step first."""
    if state is None:
        raise PlaybookError(
            f"{loaded.path}: this run has no recorded state, so there is nothing to roll back",
            hint="a rollback undoes what an earlier run of the same command changed",
        )
    reports = []
    for step in reversed(loaded.order):
        recorded = state.steps.get(step.id)
        if recorded is None or recorded.status not in ("changed", "failed", "running"):
            continue
        changes = plan_undo_step(step, recorded.outputs)
        status = "planned" if changes else "kept"
        entry = StepReport(step.id, step.kind, status, changes=changes)
        if not changes:
            entry.notes = [
                f"a {step.kind} step is not undone" if recorded.status == "changed" else "nothing recorded to undo"
            ]
        reports.append(entry)
    for handler in loaded.playbook.rollback:
        try:
            planned = kind_of(handler).plan(handler, ctx)
        except FailoverError as error:
            planned = Planned(problems=[str(error)])
        status = "would fail" if planned.problems else "planned"
        reports.append(
            StepReport(
                handler.id,
                handler.kind,
                status,
                changes=planned.changes,
                problems=planned.problems,
                notes=planned.notes,
            )
        )
    return reports


def _definitions(loaded: LoadedPlaybook) -> dict[str, Step]:
    return {s.id: s for s in (*loaded.playbook.steps, *loaded.playbook.rollback)}


def _run_step(step: Step, recorded: StepState, state: RunState, ctx: Context, options: RunOptions) -> bool:
    """Apply one step, its state saved before and after. False when it failed."""
    recorded.status, recorded.started, recorded.finished = "running", time.time(), None
    recorded.attempts += 1
    state.save()

    def checkpoint(outputs: StepOutput) -> None:
        recorded.outputs = outputs.model_dump(mode="json")
        state.save()

    ctx.checkpoint = checkpoint
    try:
        outcome = kind_of(step).apply(step, ctx)
    except FailoverError as error:
        status: Status = "waiting" if isinstance(error, ApprovalPending) else "failed"
        recorded.status, recorded.summary, recorded.finished = status, str(error), time.time()
        if error.hint:
            recorded.summary += f" (hint: {error.hint})"
        state.save()
        options.progress(f"  {status.upper()}: {recorded.summary}")
        return False
    except BaseException as error:  # interrupted, or a bug: recorded, then passed on
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"internal error: {error!r}"
        recorded.status, recorded.summary, recorded.finished = "failed", reason, time.time()
        state.save()
        raise
    recorded.status, recorded.summary, recorded.finished = outcome.status, outcome.summary, time.time()
    recorded.outputs = outcome.outputs.model_dump(mode="json")
    recorded.details = outcome.details
    state.save()
    options.progress(f"  {outcome.status}: {outcome.summary} ({recorded.seconds:.1f} s)")
    return True


def _finish(
    loaded: LoadedPlaybook, state: RunState, report: RunReport, directory: Path, options: RunOptions
) -> RunReport:
    report.started, report.finished = state.started, state.finished or time.time()
    outputs = _outputs(loaded, state)
    report.recovery_time_s = _recovery_time(state, outputs)
    report.recovery_point_s = _recovery_point(outputs)
    report.budgets, report.breaches = _budgets(loaded, outputs, report.recovery_time_s, report.recovery_point_s)
    for step in loaded.order:
        recorded = state.steps.get(step.id)
        if recorded is None:
            report.steps.append(StepReport(step.id, step.kind, "not run"))
            continue
        summary, seconds = recorded.summary, recorded.seconds
        entry = StepReport(step.id, step.kind, recorded.status, summary, seconds, details=recorded.details)
        entry.started_at, entry.finished_at = iso(recorded.started), iso(recorded.finished)
        entry.done_earlier, entry.attempts = step.id in report.done_earlier, recorded.attempts
        report.steps.append(entry)
    if report.breaches and report.outcome == "succeeded":
        report.outcome = "failed"
        state.outcome = "failed: budget exceeded"
        state.save()
    report.plan = _recorded_plan(directory)
    _write_report(report, directory, options.report_path)
    return report
