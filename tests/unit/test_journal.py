"""The journal's bookkeeping (a real SQLite file; no provider involved)."""

import sqlite3
from pathlib import Path

import pytest

from failover.sync.journal import Journal, JournalBusy, JournalError, SourceVersion
from failover.types import PartInfo


def listed(journal: Journal, key: str, size: int, etag: str, modified: str = "t0"):  # type: ignore[no-untyped-def]
    return journal.record_listed([("src", key, "dst", key, size, etag, modified)])[0].row


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
    journal.begin_upload_intent(row, SourceVersion("e", 100, "t0"))
    journal.set_upload(row, "upload-1", 50)
    journal.record_part(row, "upload-1", PartInfo(1, "etag1", 50, "crc=="), "crc32c:crc==")
    assert [(p.number, p.checksum, p.proof) for p in journal.parts(row, "upload-1")] == [(1, "crc==", "crc32c:crc==")]
    assert [r.src_key for r in journal.pending_uploads()] == ["big"]
    # The listing showing another version does not move the upload to it: it stays bound to "e".
    relisted = listed(journal, "big", 120, "e2", modified="t1")
    assert relisted.upload_id == "upload-1"
    assert relisted.upload_version == SourceVersion("e", 100, "t0")
    journal.mark_verified(row, "digest")
    assert journal.pending_uploads() == []
    assert journal.parts(row, "upload-1") == []


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not usable"):
        Journal(path)


def test_one_run_per_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    first = Journal(path)
    with pytest.raises(JournalBusy, match="in use by another failover run") as refused:
        Journal(path)
    assert refused.value.exit_code == 2
    assert Journal(path, lock=False) is not None  # a reader (a dry run's copy) is not refused
    first.close()
    Journal(path).close()  # released with the first run


def _v1_journal(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL,
            status TEXT NOT NULL DEFAULT 'running', report TEXT);
        CREATE TABLE objects (src_bucket TEXT NOT NULL, src_key TEXT NOT NULL, dst_bucket TEXT NOT NULL,
            dst_key TEXT NOT NULL, size INTEGER NOT NULL, src_etag TEXT, src_modified TEXT,
            state TEXT NOT NULL DEFAULT 'listed', digest TEXT, upload_id TEXT, upload_started REAL,
            part_size INTEGER, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, listed_run INTEGER,
            done_run INTEGER, PRIMARY KEY (src_bucket, src_key));
        CREATE TABLE parts (src_bucket TEXT NOT NULL, src_key TEXT NOT NULL, upload_id TEXT NOT NULL,
            number INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT,
            PRIMARY KEY (src_bucket, src_key, upload_id, number));
        CREATE TABLE target (bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, run INTEGER NOT NULL,
            PRIMARY KEY (bucket, key));
        INSERT INTO meta VALUES ('schema', '1'), ('source', 'a:src'), ('target', 'b:dst'), ('digest', 'sha256');
        INSERT INTO objects (src_bucket, src_key, dst_bucket, dst_key, size, state, digest, upload_id)
            VALUES ('src', 'done', 'dst', 'done', 3, 'verified', 'd1', NULL),
                   ('src', 'half', 'dst', 'half', 9, 'copying', NULL, 'old-upload');
        """
    )
    db.commit()
    db.close()


def test_a_version_1_journal_is_migrated_and_its_uploads_are_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    _v1_journal(path)
    journal = Journal(path)
    journal.bind("a:src", "b:dst", "sha256")
    journal.start_run()
    assert journal.record_listed([("src", "done", "dst", "done", 3, None, None)])[0].row.state == "verified"
    half = journal.row("src", "half")
    assert half is not None and half.upload_id == "old-upload" and half.upload_version is None
    journal.close()
    assert (tmp_path / "j.sqlite.v1.bak").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("UPDATE meta SET value = '9' WHERE key = 'schema'", "written by a newer failover"),
        ("ALTER TABLE objects DROP COLUMN digest", "lacks column"),
        ("DROP TABLE meta", "not a failover journal"),
        ("DELETE FROM meta WHERE key = 'schema'", "does not say which schema"),
    ],
)
def test_a_foreign_or_damaged_journal_is_refused_by_name(tmp_path: Path, damage: str, message: str) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    journal.bind("a:src", "b:dst", "sha256")
    journal.start_run()
    listed(journal, "k", 1, "e")
    journal.close()
    db = sqlite3.connect(path)
    db.execute(damage)
    db.commit()
    db.close()
    with pytest.raises(JournalError, match=message) as refused:
        Journal(path)
    assert str(path) in str(refused.value) and refused.value.hint


def test_listed_rows_carry_the_target_size_and_a_colliding_source(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.bind("a:src", "b:dst", "sha256")
    journal.start_run()
    journal.record_target([("dst", "same", 7), ("dst", "only-target", 1)])
    first, second, alone = journal.record_listed(
        [
            ("src", "Same", "dst", "same", 7, "e1", None),
            ("src", "same", "dst", "same", 7, "e2", None),
            ("src", "alone", "dst", "alone", 2, "e3", None),
        ]
    )
    assert (first.target_size, first.other_source) == (7, "same")
    assert (second.target_size, second.other_source) == (7, "Same")
    assert (alone.target_size, alone.other_source) == (None, None)
    journal.close()
