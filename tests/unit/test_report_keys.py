"""A sync report names every key in its JSON file and in --json, streamed from the spill files, and
holds at most KEY_LIMIT names per kind in memory and in what it keeps elsewhere (the summary, the
journal, a playbook's state)."""

from __future__ import annotations

import io
import json

from failover.secrets import redact
from failover.sync.report import KEY_LIMIT, BucketReport, SyncReport


def a_report(deleted: int) -> SyncReport:
    report = SyncReport(source="a:b", target="c:d", dry_run=False, journal="j.sqlite")
    report.buckets.append(BucketReport(source="a:b", target="c:d"))
    for n in range(deleted):
        report.name_key("deleted", f'old/é-{n:06d}\n"quoted"')
    report.name_key("failed", "broken.bin", "500 from the target")
    return report


def test_the_streamed_report_names_every_key_and_the_data_the_first_ten_thousand() -> None:
    report = a_report(KEY_LIMIT + 25)
    out = io.StringIO()
    report.write_json(out.write, transform=redact)
    streamed = json.loads(out.getvalue())
    held = report.to_json()
    assert len(streamed["keys"]["deleted"]) == KEY_LIMIT + 25
    assert streamed["keys"]["deleted"][-1] == {"key": f'old/é-{KEY_LIMIT + 24:06d}\n"quoted"'}
    assert streamed["keys"]["failed"] == [{"key": "broken.bin", "detail": "500 from the target"}]
    assert streamed["keys"]["kept"] == []
    assert len(held["keys"]["deleted"]) == KEY_LIMIT and held["keys_counts"]["deleted"] == KEY_LIMIT + 25
    held.pop("keys")
    streamed.pop("keys")
    assert streamed == held, "the same document, keys apart"


def test_an_empty_report_streams_valid_json() -> None:
    out = io.StringIO()
    SyncReport(source="a:", target="b:", dry_run=True, journal="j").write_json(out.write)
    assert all(v == [] for v in json.loads(out.getvalue())["keys"].values())
