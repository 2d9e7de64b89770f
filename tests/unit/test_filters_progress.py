"""Filters (rclone's glob rules, sizes, age) and the progress meter (rclone -P's terms), in process;
the sync engine with filters on the memory store: what a filter leaves out is neither copied nor
deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from failover.errors import ConfigError
from failover.location import parse_location
from failover.progress import ProgressMeter, duration
from failover.sync import SyncEngine, SyncOptions
from failover.sync.filters import Filters, glob_regex, parse_age, parse_size
from failover.testing import MemoryOptions, MemoryStore


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.jpg", ["a.jpg", "x/y/a.jpg"], ["a.jpeg", "a.jpg/b"]),
        ("/*.jpg", ["a.jpg"], ["x/a.jpg"]),
        ("avatars/**", ["avatars/a", "avatars/x/y.png", "users/avatars/z"], ["avatar/a"]),
        ("/avatars/**", ["avatars/a"], ["users/avatars/z"]),
        ("logs/", ["logs/a", "x/logs/b/c"], ["logs", "blogs/a"]),
        ("user?.png", ["user1.png"], ["user10.png", "user/.png"]),
        ("*.{jpg,png}", ["a.jpg", "b/c.png"], ["a.gif"]),
        ("file[0-9].txt", ["file7.txt"], ["filex.txt"]),
        ("été/*", ["été/a", "x/été/b"], ["ete/a"]),
    ],
)
def test_globs_follow_rclone(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_regex(pattern)
    assert [k for k in matches if not regex.search(k)] == []
    assert [k for k in misses if regex.search(k)] == []


def test_exclude_wins_and_include_limits() -> None:
    filters = Filters(include=("*.png",), exclude=("tmp/**",))
    assert filters.name_refused("a.png") is None
    assert filters.name_refused("tmp/a.png") == "excluded by --exclude tmp/**"
    assert filters.name_refused("a.txt") == "matches no --include"


def test_sizes_and_ages_parse_like_rclone() -> None:
    assert parse_size("100k", "--min-size") == 100 * 1024 and parse_size("1.5G", "x") == int(1.5 * 1024**3)
    assert parse_age("1h30m", "--max-age") == timedelta(minutes=90) and parse_age("7d", "x") == timedelta(days=7)
    assert parse_age("2000-01-01", "x") > timedelta(days=9000)
    for bad, parse in (("ten", parse_size), ("soon", parse_age)):
        with pytest.raises(ConfigError):
            parse(bad, "--opt")
    with pytest.raises(ConfigError):
        glob_regex("a[b")
    old = datetime.now(UTC) - timedelta(days=2)
    filters = Filters(min_size=10, max_size=100, max_age=timedelta(days=1))
    assert filters.refused("k", 5, None) and filters.refused("k", 500, None)
    assert filters.refused("k", 50, old) and filters.refused("k", 50, None)
    assert filters.refused("k", 50, datetime.now(UTC)) is None


def test_a_filtered_sync_copies_and_deletes_only_what_the_filters_let_in(tmp_path: Path) -> None:
    space = f"filters-{tmp_path.name}"
    source = MemoryStore("src", MemoryOptions(space=f"{space}-a"))
    target = MemoryStore("dst", MemoryOptions(space=f"{space}-b"))
    source.create_bucket("bkt")
    target.create_bucket("bkt")
    for key in ("keep/a.png", "keep/b.png", "keep/c.txt", "big/huge.png"):
        source.put("bkt", key, b"x" * (5000 if key.startswith("big") else 10))
    for key in ("keep/old.png", "keep/notes.txt", "other/x.bin"):
        target.put("bkt", key, b"y")
    options = SyncOptions(
        delete=True,
        force=True,
        journal=tmp_path / "j.sqlite",
        filters=Filters(include=("*.png",), max_size=1000),
    )
    report = SyncEngine(source, target, parse_location("src:bkt"), parse_location("dst:bkt"), options).run()
    assert report.complete, report.to_json()["errors"]
    assert sorted(target.objects("bkt")) == ["keep/a.png", "keep/b.png", "keep/notes.txt", "other/x.bin"]
    data = report.to_json()
    assert data["totals"]["filtered"] == 2 and data["totals"]["deleted"] == 1
    assert sorted(k["key"] for k in data["keys"]["filtered"]) == ["big/huge.png", "keep/c.txt"]
    assert [k["key"] for k in data["keys"]["deleted"]] == ["keep/old.png"]
    with pytest.raises(ConfigError, match="--max-age"):
        SyncEngine(
            source,
            target,
            parse_location("src:bkt"),
            parse_location("dst:bkt"),
            SyncOptions(delete=True, journal=tmp_path / "k.sqlite", filters=Filters(max_age=timedelta(days=1))),
        ).run()
    MemoryStore.reset()


def test_the_meter_reports_a_windowed_rate_and_never_a_rate_for_unchanged_objects() -> None:
    now = [1000.0]
    meter = ProgressMeter("sync", clock=lambda: now[0])
    meter.checked(3000, 3 * 2**30)  # a re-run: everything verified earlier
    now[0] += 5
    line = meter.line()
    assert "0/0 objects copied (3000 unchanged)" in line and "GiB/s" not in line and "ETA" not in line
    meter = ProgressMeter("sync", clock=lambda: now[0])
    meter.planned(10, 10 * 2**20)
    for _ in range(4):
        now[0] += 1
        meter.transferring(2**20)
    meter.advanced(4, 4 * 2**20)
    line = meter.line()
    assert "4/10 objects copied" in line and "4.0 MiB / 10.0 MiB (40%)" in line
    assert "1.0 MiB/s" in line and "ETA 6.0s" in line
    now[0] += 30  # a stall: the window empties, the rate says so
    assert "0 B/s" in meter.line() and "ETA -" in meter.line()
    assert duration(75) == "1m15s" and duration(3700) == "1h01m40s"


def test_a_dry_run_with_another_journal_plans_objects_already_on_the_target_as_checks(tmp_path: Path) -> None:
    """A playbook's sync keeps its own journal: what a standalone sync copied is on the target but
    not in that journal. The plan says so (compared by digest, sent only if different), not 'to copy'."""
    space = f"check-{tmp_path.name}"
    source = MemoryStore("src", MemoryOptions(space=f"{space}-a"))
    target = MemoryStore("dst", MemoryOptions(space=f"{space}-b"))
    source.create_bucket("bkt")
    for i in range(6):
        source.put("bkt", f"k{i}", bytes([i]) * 100)
    where = parse_location("src:bkt"), parse_location("dst:bkt")
    first = SyncEngine(source, target, *where, SyncOptions(journal=tmp_path / "standalone.sqlite")).run()
    assert first.complete
    source.put("bkt", "new", b"n" * 10)
    plan = SyncEngine(source, target, *where, SyncOptions(dry_run=True, journal=tmp_path / "playbook.sqlite")).run()
    totals = plan.to_json()["totals"]
    assert (totals["to_check"], totals["to_copy"]) == (6, 1)
    assert any(c.resource.startswith("dst:bkt: objects already there") for c in plan.changes())
    applied = SyncEngine(source, target, *where, SyncOptions(journal=tmp_path / "playbook.sqlite")).run()
    data = applied.to_json()["totals"]
    assert applied.complete and data["copied"] == 1 and data["content_unchanged"] == 6, data
    MemoryStore.reset()


def test_lab_down_says_that_localstack_keeps_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import failover.lab.cli as lab_cli
    from click.testing import CliRunner

    from failover.cli.main import cli

    class _Lab:
        def down(self, progress: object) -> list[str]:
            return ["localstack", "onprem-s3"]

    monkeypatch.setattr(lab_cli, "Lab", _Lab)
    result = CliRunner().invoke(cli, ["lab", "down"])
    assert result.exit_code == 0 and "LocalStack keeps no data" in result.output
    as_json = CliRunner().invoke(cli, ["--json", "lab", "down"])
    assert '"data_lost": [\n    "localstack"\n  ]' in as_json.output
