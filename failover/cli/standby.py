"""``failover standby``: keep a warm copy on the other provider, and say how far behind it is."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import click

from .. import commands
from ..changes import change_line, changes_to_json
from ..errors import ConfigError
from ..location import parse_location
from ..standby import StandbyOptions, read_status, status_is_fresh
from ..sync import default_journal_path
from ..sync.filters import parse_duration
from ..units import human_size
from .app import App, complete_location, pass_app
from .sync import copy_options, copy_settings

__all__ = ["standby"]

EXIT_STALE = 1
"""``standby status``: the standby that wrote the file is not running (or stopped)."""


class _StandbyGroup(click.Group):
    """``failover standby SRC DST`` runs ``follow``; ``failover standby status`` reads a status."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["follow", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_StandbyGroup)
def standby() -> None:
    """Keep TARGET following SOURCE (``failover standby SRC DST``), or read its state
    (``failover standby status``).

    \b
    Example:
      failover standby aws:media onprem:media --setup-feed --status-file standby.json
      failover standby aws: onprem: --interval 30s --propagate-deletes --delete-delay 10m
      failover standby status --status-file standby.json
    """


def _metrics_address(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--metrics {value!r}: write HOST:PORT, e.g. --metrics 127.0.0.1:9464")
    return host.strip("[]"), int(port)


@standby.command()
@click.argument("source", shell_complete=complete_location)
@click.argument("target", shell_complete=complete_location)
@click.option("--dry-run", is_flag=True, help="Print the initial sync's plan and the feed's setup; change nothing.")
@click.option(
    "--interval",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="Without a change feed: how often the source is listed for changes.",
)
@click.option(
    "--reconcile-every",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="How often both sides are listed in full (catches what a feed missed; where deletes are chosen).",
)
@click.option(
    "--propagate-deletes", is_flag=True, help="Delete target objects whose source is gone (after --delete-delay)."
)
@click.option(
    "--delete-delay",
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="With --propagate-deletes: how long a source object must stay gone before its copy is deleted.",
)
@click.option("--no-feed", is_flag=True, help="Follow by listings even where the source declares a change feed.")
@click.option("--setup-feed", is_flag=True, help="Create the source's change feed (queue, bucket notifications) first.")
@click.option(
    "--teardown-feed", is_flag=True, help="Remove the change feed --setup-feed created, and exit (no standby)."
)
@click.option(
    "--status-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON state, rewritten every few seconds (default: beside the journal).",
)
@click.option("--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics (lag, copies, errors) here.")
@copy_options
@pass_app
def follow(
    app: App,
    /,
    source: str,
    target: str,
    dry_run: bool,
    interval: str,
    reconcile_every: str,
    propagate_deletes: bool,
    delete_delay: str,
    no_feed: bool,
    setup_feed: bool,
    teardown_feed: bool,
    status_file: Path | None,
    metrics: str | None,
    **copy: Any,
) -> int:
    """Copy SOURCE to TARGET, then follow SOURCE until stopped (SIGTERM or Ctrl-C).

    Changes come from the source's change feed where its provider declares one (feed: in the
    providers file; S3 notifications to SQS on AWS), otherwise from listings every --interval. Both
    sides are reconciled in full every --reconcile-every. Every copy is digest-verified as by sync;
    deletes are propagated only with --propagate-deletes, after --delete-delay, from confirmed
    listings and within --max-delete. Restart after a crash: nothing verified is copied again.

    \b
    Example:
      failover standby follow aws:media onprem:media --setup-feed
      failover standby aws: onprem: --no-feed --interval 30s --metrics 127.0.0.1:9464
    """
    sync_options = copy_settings(app, **copy)
    options = StandbyOptions(
        sync=sync_options,
        interval=max(0.5, parse_duration(interval, "--interval")),
        reconcile_every=max(1.0, parse_duration(reconcile_every, "--reconcile-every")),
        propagate_deletes=propagate_deletes,
        delete_delay=parse_duration(delete_delay, "--delete-delay"),
        use_feed=not no_feed,
        status_file=status_file,
    )
    if teardown_feed:
        return _feed_changes(app, source, "plan" if dry_run else "teardown", teardown=True)
    if dry_run:
        run = commands.sync(app.providers, source, target, replace(sync_options, dry_run=True))
        data = run.report.to_json()
        feed = commands.standby_feed(app.providers, source, "plan") if setup_feed else []
        if app.json:
            app.emit_json({"kind": "standby-plan", "initial_sync": data, "feed_setup": changes_to_json(feed)})
        else:
            totals = data["totals"]
            app.say(
                f"plan (dry run, nothing changed): standby {data['source']} -> {data['target']}: the initial sync "
                f"would copy {totals['to_copy']} object(s) ({human_size(totals['to_copy_bytes'])}), "
                f"{totals['unchanged']} unchanged"
            )
            for change in feed:
                app.say(f"feed: {change_line(change)}")
        return 0
    if setup_feed:
        _feed_changes(app, source, "setup")
    address = _metrics_address(metrics)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        status = commands.standby(app.providers, source, target, options, stop=stop, note=app.progress, metrics=address)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    data = status.to_json()
    if app.json:
        app.emit_json({"kind": "standby", **data})
    else:
        app.say(_summary_line(data))
    return 0


def _feed_changes(
    app: App, source: str, action: Literal["plan", "setup", "teardown"], *, teardown: bool = False
) -> int:
    changes = commands.standby_feed(app.providers, source, action)
    if teardown and app.json:
        app.emit_json({"kind": "standby-feed", "changes": changes_to_json(changes)})
        return 0
    for change in changes:
        app.progress(("(dry run) " if action == "plan" else "") + f"feed: {change_line(change)}")
    if not changes:
        app.progress(f"feed: nothing to {'remove' if teardown else 'set up'}")
    return 0


def _summary_line(data: dict[str, Any]) -> str:
    lag = (
        f"{data['behind_objects']} object(s) behind, oldest change {data['oldest_change_age_s']:.1f} s old"
        if data["behind_objects"]
        else "nothing known to be behind"
    )
    if data["mode"] == "listing" and data["unseen_for_s"]:
        lag += f" (changes of the last {data['unseen_for_s']:.1f} s not looked for yet)"
    mode = f"feed {data['feed']}" if data["mode"] == "feed" else "listings"
    return (
        f"standby {data['phase']}: {data['source']} -> {data['target']} ({mode}): {data['copies']} copied "
        f"({human_size(data['bytes_copied'])}), {data['deletes']} deleted, {data['reconciliations']} "
        f"reconciliation(s), {data['errors']} error(s); {lag}"
    )


@standby.command()
@click.argument("source", required=False, shell_complete=complete_location)
@click.argument("target", required=False, shell_complete=complete_location)
@click.option("--status-file", type=click.Path(path_type=Path, dir_okay=False), help="The status file to read.")
@click.option(
    "--journal", type=click.Path(path_type=Path, dir_okay=False), help="The standby's journal, if not default."
)
@pass_app
def status(app: App, source: str | None, target: str | None, status_file: Path | None, journal: Path | None) -> int:
    """Show a standby's state: how far behind, copies, errors, outages. Exit 0 when the standby is
    running, 1 when its status file is stale (it stopped or died).

    \b
    Example:
      failover standby status --status-file standby.json
      failover standby status aws:media onprem:media --json
    """
    if status_file is None:
        if source is None or target is None:
            raise ConfigError("say which standby: SOURCE TARGET, or --status-file PATH")
        base = journal or default_journal_path(parse_location(source), parse_location(target))
        status_file = base.with_suffix(".standby-status.json")
    data = read_status(status_file)
    fresh = status_is_fresh(data)
    if app.json:
        app.emit_json({"kind": "standby-status", "running": fresh, **data})
    else:
        app.say(_summary_line(data))
        age = time.time() - float(data.get("updated_at") or 0)
        app.say(f"status written {age:.1f} s ago by pid {data.get('pid')}" + ("" if fresh else " (not running)"))
        if data.get("feed_fallback"):
            app.say(f"change feed not used: {data['feed_fallback']}", style="yellow")
        if data.get("outage"):
            app.say(f"backing off since {data['outage']['since']:.0f}: {data['outage']['error']}", style="red")
        for gap in data.get("gaps", [])[-5:]:
            app.say(f"gap: {gap['seconds']:.1f} s ({gap['error']})", style="yellow")
        last = data.get("last_reconciliation")
        if last:
            app.say(
                f"last reconciliation: {'complete' if last['complete'] else 'NOT complete'}, {last['listed']} listed, "
                f"{last['copied']} copied, {last['deleted']} deleted, {last['delete_pending']} waiting to be deleted"
            )
        for message in data.get("recent_errors", [])[-5:]:
            app.say(f"error: {message}", style="red")
    return 0 if fresh else EXIT_STALE
