"""The journal's bookkeeping (a real SQLite file; no provider involved)."""

from pathlib import Path

import pytest

from failover.sync.journal import Journal, JournalError
from failover.types import PartInfo


def listed(journal: Journal, key: str, size: int, etag: str, modified: str = "t0"):  # type: ignore[no-untyped-def]
    return journal.record_listed([("src", key, "dst", key, size, etag, modified)])[0]


def test_state_survives_reopening_and_changes_reset_it(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    journal.bind("a:src", "b:dst", "sha256")
    journal.start_run()
    row = listed(journal, "k", 10, "e1")
    assert row.state == "listed"
    journal.mark_verified(row, "d1")
    journal.close()

    journal = Journal(path)
    journal.bind("a:src", "b:dst", "sha256")
    journal.start_run()
    assert listed(journal, "k", 10, "e1").state == "verified"
    changed = listed(journal, "k", 10, "e2")
    assert changed.state == "listed"
    assert changed.digest == "d1", "the digest is kept so unchanged bytes are recognised"
    assert listed(journal, "k", 10, "e2", modified="t1").state == "listed"
    assert journal.runs() == 2


def test_a_journal_belongs_to_one_pair(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.bind("a:src", "b:dst", "sha256")
    with pytest.raises(JournalError, match="belongs to another sync"):
        journal.bind("a:src", "c:dst", "sha256")


def test_target_only_keys_and_parts(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.start_run()
    journal.record_target([("dst", f"k{i}", 1) for i in range(2500)] + [("dst", "extra", 1)])
    journal.record_listed([("src", f"k{i}", "dst", f"k{i}", 1, "e", None) for i in range(2500)])
    assert list(journal.target_only("dst", "")) == [("extra", 1)]
    assert journal.target_count("dst", "k1") == 1111

    row = listed(journal, "big", 100, "e")
    journal.begin_upload_intent(row)
    journal.set_upload(row, "upload-1", 50)
    journal.record_part(row, "upload-1", PartInfo(1, "etag1", 50, "crc=="))
    assert [(p.number, p.checksum) for p in journal.parts(row, "upload-1")] == [(1, "crc==")]
    assert [r.src_key for r in journal.pending_uploads()] == ["big"]
    journal.mark_verified(row, "digest")
    assert journal.pending_uploads() == []
    assert journal.parts(row, "upload-1") == []


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not usable"):
        Journal(path)
