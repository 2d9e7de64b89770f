"""The HTML renderer on reports that say little: it shows what is there, says what is not, and
escapes everything (keys and messages come from providers and users)."""

from __future__ import annotations

import pytest

from failover.errors import ConfigError
from failover.htmlreport import render_html, report_kind


def test_sparse_reports_render_and_say_what_they_lack() -> None:
    playbook = render_html({"kind": "playbook", "playbook": "p.yaml", "steps": [], "outcome": "failed"})
    assert "No step start and end times are recorded" in playbook and "No plan is recorded" in playbook
    sync = render_html({"kind": "sync", "source": "a:b", "target": "c:d", "complete": False})
    assert "NOT every object is verified" in sync and "No throughput samples" in sync
    assert "verify" in render_html({"kind": "verify", "source": "a:", "target": "b:", "ok": True})
    with pytest.raises(ConfigError):
        report_kind({"hello": "world"})


def test_everything_from_a_report_is_escaped() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    page = render_html(
        {
            "kind": "sync",
            "source": hostile,
            "target": "t:b",
            "complete": True,
            "skipped_keys": [{"key": hostile, "reason": hostile}],
            "samples": [{"t": 0, "bytes": 0}, {"t": 1, "bytes": 1048576}],
        }
    )
    assert hostile not in page and "&lt;img src=x" in page
    assert "<polyline" in page, "two samples are one interval, drawn"
    assert "<script" not in page and "default-src 'none'" in page
