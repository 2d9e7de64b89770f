"""``failover sync`` and ``failover verify``: copy buckets across providers and prove it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import commands
from ..changes import change_line, changes_from_json
from ..cluster.spec import parse_cluster
from ..errors import AuthError, ConfigError, ProviderError
from ..liveness import DEFAULT_STALL_TIMEOUT
from ..secrets import redact
from ..sync import SyncOptions, SyncReport, VerifyOptions, parse_rate
from ..sync.digests import ALGORITHMS
from ..sync.filters import Filters, parse_age, parse_size
from ..units import human_size
from .app import EXIT_INTERRUPTED, App, complete_location, pass_app
from .progress import ProgressDisplay

__all__ = ["sync", "verify"]


def _bucket_map(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for value in values:
        src, equals, dst = value.partition("=")
        if not equals or not src or not dst:
            raise ConfigError(f"--bucket-map {value!r}: write SOURCE=TARGET, e.g. --bucket-map My_Bucket=my-bucket")
        mapping[src] = dst
    return mapping


CLUSTER_OPTION = click.option(
    "--cluster",
    metavar="local:N|tcp://HOST:PORT",
    help="Run on a Dask cluster: N worker processes started here, or a running scheduler (the journal, "
    "deletes and the report stay here; workers read credentials from their own environment).",
)


_Command = TypeVar("_Command", bound=Callable[..., Any])
_COPY_OPTIONS = [
    click.option(
        "--max-delete",
        type=click.FloatRange(0, 100),
        default=25.0,
        show_default=True,
        help="Refuse to delete more than this percentage of the target without --force.",
    ),
    click.option("--force", is_flag=True, help="Allow deleting more than --max-delete percent."),
    click.option(
        "-j",
        "--max-workers",
        type=click.IntRange(1, 256),
        default=16,
        show_default=True,
        help="Objects copied at once.",
    ),
    click.option(
        "--parts-in-flight",
        type=click.IntRange(1, 256),
        default=4,
        show_default=True,
        help="Multipart parts uploading at once (raise for far-away targets).",
    ),
    click.option(
        "--bwlimit", help="Bandwidth limit for the bytes sent, e.g. 50M (MiB/s), 512K (with --cluster: per worker)."
    ),
    click.option("--digest", type=click.Choice(ALGORITHMS), default="sha256", show_default=True),
    click.option("--readback", is_flag=True, help="Verify every copy by reading it back from the target."),
    click.option("--bucket-map", multiple=True, metavar="SRC=DST", help="Target name for a source bucket."),
    click.option(
        "--invalid-keys",
        type=click.Choice(["skip", "abort", "encode"]),
        default="skip",
        show_default=True,
        help="Keys the target cannot hold: skip and report them; abort before writing anything; or encode them "
        "reversibly (failover-encoded/<base64url>, original in metadata).",
    ),
    click.option(
        "--journal",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Journal file (default: per pair).",
    ),
    click.option("--durable", is_flag=True, help="fsync the journal at every commit (survives power loss)."),
    click.option(
        "--stall-timeout",
        type=click.FloatRange(1, None),
        default=DEFAULT_STALL_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Stop the run when a provider answers nothing for this long (exit 3; re-run to resume).",
    ),
    click.option(
        "--no-cross-check",
        "no_cross_check",
        is_flag=True,
        help="Do not list the source a second way to cross-check its listing (each listing's end is still confirmed).",
    ),
    click.option(
        "--include",
        multiple=True,
        metavar="GLOB",
        help="Only keys matching GLOB (rclone globs; repeatable).",
    ),
    click.option(
        "--exclude",
        multiple=True,
        metavar="GLOB",
        help="Leave out keys matching GLOB (wins over --include).",
    ),
    click.option("--min-size", metavar="SIZE", help="Leave out objects smaller than SIZE (e.g. 100k; binary units)."),
    click.option("--max-size", metavar="SIZE", help="Leave out objects larger than SIZE (e.g. 5G)."),
    click.option(
        "--max-age",
        metavar="AGE",
        help="Leave out objects last modified longer ago than AGE (e.g. 7d, 12h).",
    ),
    click.option(
        "--bucket-settings",
        is_flag=True,
        help="Carry each bucket's settings too (policy, public read, CORS, lifecycle, versioning, website, "
        "encryption, tags) as far as the target holds them; each is read back, the rest is named.",
    ),
    click.option("-v", "--verbose", is_flag=True, help="Name each key copied, deleted, kept, skipped or filtered."),
]
"""The options of how objects are copied, shared by ``sync`` and ``standby``."""


def copy_options(command: _Command) -> _Command:
    for option in reversed(_COPY_OPTIONS):
        command = option(command)
    return command


def copy_settings(
    app: App,
    *,
    max_delete: float,
    force: bool,
    max_workers: int,
    parts_in_flight: int,
    bwlimit: str | None,
    digest: str,
    readback: bool,
    bucket_map: tuple[str, ...],
    invalid_keys: str,
    journal: Path | None,
    durable: bool,
    stall_timeout: float,
    no_cross_check: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    min_size: str | None,
    max_size: str | None,
    max_age: str | None,
    verbose: bool,
    bucket_settings: bool = False,
) -> SyncOptions:
    """The :data:`_COPY_OPTIONS` given, as sync options."""
    return SyncOptions(
        force=force,
        max_delete_share=max_delete / 100,
        workers=max_workers,
        parts_in_flight=parts_in_flight,
        bandwidth=parse_rate(bwlimit) if bwlimit else None,
        digest=digest,  # type: ignore[arg-type]
        readback=readback,
        bucket_map=_bucket_map(bucket_map),
        invalid_keys=invalid_keys,  # type: ignore[arg-type]
        journal=journal,
        durable=durable,
        stall_timeout=stall_timeout,
        cross_check=not no_cross_check,
        bucket_settings=bucket_settings,
        filters=Filters(
            include=include,
            exclude=exclude,
            min_size=parse_size(min_size, "--min-size") if min_size else None,
            max_size=parse_size(max_size, "--max-size") if max_size else None,
            max_age=parse_age(max_age, "--max-age") if max_age else None,
        ),
        on_key=_key_printer(app) if verbose else None,
    )


@click.command()
@click.argument("source", shell_complete=complete_location)
@click.argument("target", shell_complete=complete_location)
@click.option("--dry-run", is_flag=True, help="Print the plan (objects and bytes per bucket); change nothing.")
@click.option("--delete", is_flag=True, help="Delete target objects that are not in the source (guarded).")
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the JSON report here."
)
@click.option(
    "--checksum",
    is_flag=True,
    help="Read every object an earlier run verified again on the target and compare its digest; send again "
    "what differs (without it, an unchanged object verified earlier is trusted to the journal).",
)
@CLUSTER_OPTION
@copy_options
@click.option(
    "--spread-above",
    metavar="SIZE",
    default="1G",
    show_default=True,
    help="With --cluster: send an object at least this large as part ranges by several workers at once.",
)
@pass_app
def sync(
    app: App,
    /,
    source: str,
    target: str,
    dry_run: bool,
    delete: bool,
    report_path: Path | None,
    checksum: bool,
    cluster: str | None,
    spread_above: str,
    **copy: Any,
) -> int:
    """Copy SOURCE to TARGET (PROVIDER:BUCKET[/PREFIX], or PROVIDER: for every bucket).

    Streams every object, digests it on the way, carries metadata and tags, and proves each copy
    arrived. Resumable: re-running continues where a crash stopped (or Ctrl-C), and copies only what
    is new or changed. Exit code 0 only when every object is verified. Filters follow rclone's
    globs, relative to the source prefix; filtered keys are neither copied nor deleted.

    \b
    Example:
      failover sync aws:media onprem:media --dry-run
      failover sync aws: onprem: -j 32 --report evacuation.html
      failover sync aws:media/2024/ onprem:media/2024/ --include '*.jpg' --max-age 7d -v
      failover sync aws:media onprem:media --cluster local:4
    """
    options = replace(
        copy_settings(app, **copy),
        dry_run=dry_run,
        delete=delete,
        checksum=checksum,
        cluster=parse_cluster(cluster) if cluster else None,
        spread_above=parse_size(spread_above, "--spread-above"),
    )
    with ProgressDisplay(app.err, enabled=not (app.quiet or app.json), title="sync") as progress:
        run = commands.sync(app.providers, source, target, options, progress)
    report = run.report
    data = report.to_json()
    if report_path:
        commands.write_report(report_path, data, report)
    if app.json:
        report.write_json(sys.stdout.write, transform=redact)  # every key named, streamed
    else:
        _summary(app, data)
    code = _exit_code(report)
    if run.abandoned:
        # Copies are still waiting on a server that stopped answering; their threads would hold the
        # process until the requests time out. Everything is recorded: leave now. (After Ctrl-C,
        # main() leaves the same way for every command.)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _key_printer(app: App) -> Callable[[str, str, str], None]:
    """``-v``: one line per key on stderr, as it happens."""
    words = {"to_copy": "would copy", "deleted": "deleted", "copied": "copied"}

    def say(kind: str, key: str, detail: str) -> None:
        if not (app.quiet or app.json):
            app.err.print(redact(f"{words.get(kind, kind)} {key!r}" + (f": {detail}" if detail else "")), markup=False)

    return say


def _exit_code(report: SyncReport) -> int:
    if report.auth_failed:
        return AuthError.exit_code
    if report.stalled:
        return ProviderError.exit_code
    if report.interrupted:
        return EXIT_INTERRUPTED
    if report.dry_run:
        return 0 if report.aborted is None and all(b.listing_complete for b in report.buckets) else 1
    return 0 if report.complete else 1


def _summary(app: App, data: dict[str, Any]) -> None:
    totals = data["totals"]
    title = "plan (dry run, nothing changed)" if data["dry_run"] else "sync"
    app.say(f"{title}: {data['source']} -> {data['target']}")
    rows = []
    for b in data["buckets"]:
        if data["dry_run"]:
            rows.append(
                [
                    b["source"],
                    b["target"],
                    b["listed"],
                    b["to_copy"],
                    human_size(b["to_copy_bytes"]),
                    b["unchanged"],
                    b["skipped"],
                    b["delete_candidates"],
                ]
            )
        else:
            rows.append(
                [
                    b["source"],
                    b["target"],
                    b["listed"],
                    b["copied"],
                    human_size(b["copied_bytes"]),
                    b["unchanged"] + b["content_unchanged"],
                    b["failed"],
                    b["skipped"],
                    b["deleted"],
                ]
            )
    if data["dry_run"]:
        app.table(["source", "target", "listed", "to copy", "bytes", "unchanged", "skipped", "to delete"], rows)
        for change in changes_from_json(data["changes"]):
            app.say(change_line(change))
        for kind, verb in (("to_copy", "would copy"), ("deleted", "would delete")):
            named = data["keys"][kind]
            for item in named[:10]:
                app.say(f"  {verb} {item['key']!r}")
            if len(named) > 10:
                app.say(f"  ... and {len(named) - 10} more to {verb.split()[1]} (--json names every one)")
    else:
        app.table(["source", "target", "listed", "copied", "bytes", "unchanged", "failed", "skipped", "deleted"], rows)
        rate = data["throughput"]
        speed = (
            f"{rate['objects_per_s']:.0f} objects/s, {human_size(rate['bytes_per_s'])}/s"
            if totals["copied"]
            else "nothing needed copying"
            if data["complete"]
            else "nothing copied"  # a listing that failed proves nothing about what needed copying
        )
        app.say(
            f"{totals['copied']} copied ({human_size(totals['copied_bytes'])}) in {data['duration_s']:.1f} s: "
            f"{speed}; retries {sum(data['retries'].values())}; verification: {data['verification']}"
        )
    cluster = data.get("cluster")
    if cluster and (cluster["workers"] or cluster["chunks_lost"]):
        workers = cluster["workers"]
        line = (
            f"cluster {cluster['cluster']}: {len(workers)} worker(s), "
            f"{sum(w['chunks'] for w in workers.values())} chunk(s) of objects"
        )
        if cluster["chunks_run_again"]:
            line += f"; {cluster['chunks_run_again']} run again (their results were lost with a worker)"
        if cluster["chunks_lost"]:
            line += f"; {cluster['chunks_lost']} lost (their objects are named failed; re-run to copy them)"
        app.say(line, style="yellow" if cluster["chunks_lost"] else None)
    if totals.get("filtered"):
        app.say(f"{totals['filtered']} left out by the filters (not copied, not deleted; named in the report)")
    fidelity = data["fidelity"]
    if fidelity["fields_not_carried"]:
        lost = ", ".join(f"{k} ({v})" for k, v in sorted(fidelity["fields_not_carried"].items()))
        app.say(f"metadata the target cannot hold (see report): {lost}", style="yellow")
    for bucket in data["buckets"]:
        for outcome, verb in (
            ("planned", "would carry"),
            ("carried", "carried, read back"),
            ("translated", "translated"),
        ):
            done = [o for o in bucket["settings"] if o["outcome"] == outcome]
            if done:
                named = ", ".join(o["setting"] + (f" ({o['detail']})" if o["detail"] else "") for o in done)
                app.say(f"{bucket['target']} settings {verb}: {named}")
        for o in bucket["settings"]:
            if o["outcome"] in ("not_carried", "not_stored"):
                app.say(f"{bucket['target']} settings: {o['setting']} not carried: {o['detail']}", style="yellow")
    for kind, style in (("skipped", "yellow"), ("listing", "red"), ("unconfirmed", "red"), ("kept", "yellow")):
        for item in data["keys"][kind][:10]:
            app.say(f"{kind} {item['key']!r}: {item.get('detail', '')}", style=style)
    for item in data["errors"][:10]:
        app.say(f"failed {item['key']!r}: {item['error']}", style="red")
    if data["delete_refused"]:
        app.say(data["delete_refused"], style="yellow")
    if data["aborted"]:
        app.say(f"stopped: {data['aborted']}", style="red")
    if data["interrupted"]:
        app.say(
            f"interrupted: what was copied is recorded; re-run the same command to resume (journal {data['journal']})",
            style="yellow",
        )
    if not data["dry_run"]:
        verified = data["verified"]
        if data["complete"]:
            app.say(
                f"every object verified: {verified['now']} in this run, {verified['earlier_unchanged']} by earlier "
                f"runs and unchanged since (not read again; --checksum reads them); journal {data['journal']}"
            )
        else:
            app.say(f"NOT every object is verified; journal {data['journal']}", style="red")


@click.command()
@click.argument("source", shell_complete=complete_location)
@click.argument("target", shell_complete=complete_location)
@click.option("--trust-digests", is_flag=True, help="Compare recorded digests instead of re-reading bytes.")
@click.option("--digest", type=click.Choice(ALGORITHMS), default="sha256", show_default=True)
@click.option("-j", "--max-workers", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--bucket-map", multiple=True, metavar="SRC=DST")
@click.option("--journal", type=click.Path(path_type=Path, dir_okay=False), help="Sync journal with recorded digests.")
@click.option("--no-metadata", is_flag=True, help="Compare bytes only.")
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the JSON report here."
)
@CLUSTER_OPTION
@pass_app
def verify(
    app: App,
    source: str,
    target: str,
    trust_digests: bool,
    digest: str,
    max_workers: int,
    bucket_map: tuple[str, ...],
    journal: Path | None,
    no_metadata: bool,
    report_path: Path | None,
    cluster: str | None,
) -> int:
    """Compare SOURCE and TARGET: report missing, different and extra keys. Exit 1 if any object is
    missing or different (extra keys alone are reported, not failed).

    \b
    Example:
      failover verify aws:media onprem:media
      failover verify aws: onprem: --report verify.html
    """
    options = VerifyOptions(
        trust_digests=trust_digests,
        digest=digest,  # type: ignore[arg-type]
        workers=max_workers,
        bucket_map=_bucket_map(bucket_map),
        journal=journal,
        check_metadata=not no_metadata,
        cluster=parse_cluster(cluster) if cluster else None,
    )
    with ProgressDisplay(app.err, enabled=not (app.quiet or app.json), title="verify", verb="compared") as progress:
        report = commands.verify(app.providers, source, target, options, progress)
    data = report.to_json()
    if report_path:
        commands.write_report(report_path, data)
    if app.json:
        app.emit_json(data)
    else:
        counts = data["counts"]
        app.say(
            f"verify {data['source']} -> {data['target']} ({data['mode']}): {data['checked']} checked, "
            f"{data['matching']} match, {counts['missing']} missing, {counts['different']} different, "
            f"{counts['metadata_different']} with different metadata, {counts['extra']} extra on the target "
            f"({human_size(data['bytes_compared'])} compared in {data['duration_s']:.1f} s)"
        )
        for key in data["missing"][:10]:
            app.say(f"missing   {key}", style="red")
        for item in data["different"][:10]:
            app.say(f"different {item['key']}: {item['source'][:16]} vs {item['target'][:16]}", style="red")
        for item in data["metadata_different"][:10]:
            app.say(f"metadata  {item['key']}: {', '.join(item['fields'])}", style="red")
        for key in data["extra"][:10]:
            app.say(f"extra     {key}", style="yellow")
        for item in data["errors"][:10]:
            app.say(f"error     {item['key']}: {item['error']}", style="red")
    return 0 if report.ok else 1
