"""The sync journal: one SQLite file per source -> target pair, crash-safe.

WAL mode with ``synchronous=NORMAL``: every commit survives the process being killed (``kill -9``)
at any point; only a power loss can take the last few commits (``--durable`` uses FULL for that).
"Verified" marks are group-committed: gathered for at most ``GROUP_COMMIT`` seconds (or 256 marks)
and written in one transaction, so a kill loses at most that window of marks, whose objects are
then simply not verified and are copied again. Everything else commits at once.

Per object the journal records what the source listing said, how far its copy got, and the digest
of the bytes that reached the target::

    listed   -> copying (multipart: upload id and every finished part) -> verified
             -> failed (error kept; retried by the next run)

An object is marked ``verified`` only after the target confirmed the write (and, on targets that do
not check bodies themselves, after reading it back). A re-run skips verified objects whose source
is unchanged, resumes multipart uploads part by part, and aborts uploads it no longer needs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import failpoints
from ..errors import FailoverError
from ..types import PartInfo

__all__ = ["Journal", "JournalError", "ObjectRow", "PartRow"]

SCHEMA_VERSION = 1
GROUP_COMMIT = 0.02
GROUP_SIZE = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL DEFAULT 'running',
    report TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    src_bucket TEXT NOT NULL,
    src_key TEXT NOT NULL,
    dst_bucket TEXT NOT NULL,
    dst_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    src_etag TEXT,
    src_modified TEXT,
    state TEXT NOT NULL DEFAULT 'listed',
    digest TEXT,
    upload_id TEXT,
    upload_started REAL,
    part_size INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    listed_run INTEGER,
    done_run INTEGER,
    PRIMARY KEY (src_bucket, src_key)
);
CREATE INDEX IF NOT EXISTS objects_dst ON objects (dst_bucket, dst_key);
CREATE INDEX IF NOT EXISTS objects_upload ON objects (upload_id) WHERE upload_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS parts (
    src_bucket TEXT NOT NULL,
    src_key TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    checksum TEXT,
    PRIMARY KEY (src_bucket, src_key, upload_id, number)
);
CREATE TABLE IF NOT EXISTS target (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    run INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
"""


class JournalError(FailoverError):
    exit_code = 2


@dataclass(frozen=True)
class ObjectRow:
    src_bucket: str
    src_key: str
    dst_bucket: str
    dst_key: str
    size: int
    src_etag: str | None
    state: str
    digest: str | None
    upload_id: str | None
    upload_started: float | None
    part_size: int | None
    attempts: int


@dataclass(frozen=True)
class PartRow:
    number: int
    etag: str
    size: int
    checksum: str | None


_OBJECT_COLUMNS = (
    "src_bucket, src_key, dst_bucket, dst_key, size, src_etag, state, digest, upload_id, upload_started, "
    "part_size, attempts"
)


class Journal:
    """Thread-safe: one connection, every call serialised by a lock, every write committed."""

    def __init__(self, path: Path | str, *, durable: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"journal {self.path} is not usable: {exc}",
                hint="move it away to start over (objects already copied will be copied again)",
            ) from exc
        self._lock = threading.Lock()
        self.run_id = 0
        self._pending: list[tuple[ObjectRow, str | None, int]] = []
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._committer: threading.Thread | None = None

    # -- plumbing ----------------------------------------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def close(self) -> None:
        self._stop.set()
        if self._committer is not None:
            self._committer.join()
        self.flush()
        with self._lock:
            self._db.close()

    # -- identity ----------------------------------------------------------------------------------

    def bind(self, source: str, target: str, digest: str) -> None:
        """Tie the journal to one source -> target pair and digest; refuse a mismatch."""
        wanted = {"schema": str(SCHEMA_VERSION), "source": source, "target": target, "digest": digest}
        with self._lock:
            found = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if not found:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())
                return
        for key, value in wanted.items():
            if found.get(key) != value:
                raise JournalError(
                    f"journal {self.path} belongs to another sync ({key}: {found.get(key)!r}, not {value!r})",
                    hint="pass a different --journal, or remove this one to start over",
                )

    def start_run(self) -> int:
        cursor = self._write("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        self.run_id = int(cursor.lastrowid or 0)
        return self.run_id

    def finish_run(self, status: str, report: dict[str, Any]) -> None:
        self._write(
            "UPDATE runs SET finished = ?, status = ?, report = ? WHERE id = ?",
            (time.time(), status, json.dumps(report, default=str), self.run_id),
        )

    def runs(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM runs")[0])

    # -- listings ----------------------------------------------------------------------------------

    def record_target(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Remember what the target listing showed in this run (bucket, key, size)."""
        self._many(
            "INSERT INTO target (bucket, key, size, run) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, run = excluded.run",
            [(*row, self.run_id) for row in rows],
        )

    def target_size(self, bucket: str, key: str) -> int | None:
        self.flush()
        row = self._one("SELECT size FROM target WHERE bucket = ? AND key = ? AND run = ?", (bucket, key, self.run_id))
        return None if row is None else int(row[0])

    def record_listed(self, rows: Sequence[tuple[str, str, str, str, int, str | None, str | None]]) -> list[ObjectRow]:
        """Upsert source objects seen in this run's listing (src bucket, src key, dst bucket,
        dst key, size, source ETag, source modification time); return their journal rows.

        A verified object whose size, ETag or modification time changed goes back to ``listed``.
        That only means "look again": its digest is kept, so unchanged bytes are recognised and
        not sent (a metadata-only change is applied in place). ETags and times are compared only
        with the same provider's earlier values for the same key, never across providers.
        """
        self._many(
            "INSERT INTO objects (src_bucket, src_key, dst_bucket, dst_key, size, src_etag, src_modified, listed_run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (src_bucket, src_key) DO UPDATE SET "
            "  state = CASE WHEN objects.size = excluded.size AND objects.src_etag IS excluded.src_etag "
            "               AND objects.src_modified IS excluded.src_modified "
            "               AND objects.dst_bucket = excluded.dst_bucket AND objects.dst_key = excluded.dst_key "
            "          THEN objects.state ELSE 'listed' END, "
            "  size = excluded.size, src_etag = excluded.src_etag, src_modified = excluded.src_modified, "
            "  dst_bucket = excluded.dst_bucket, dst_key = excluded.dst_key, listed_run = excluded.listed_run",
            [(*row, self.run_id) for row in rows],
        )
        with self._lock:
            found = []
            for src_bucket, src_key, *_ in rows:
                row = self._db.execute(
                    f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE src_bucket = ? AND src_key = ?",  # noqa: S608 - constant columns
                    (src_bucket, src_key),
                ).fetchone()
                found.append(ObjectRow(*row))
        return found

    def target_only(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """Keys the target listing showed under ``prefix`` that no source object of this run maps to."""
        self.flush()
        offset_key = ""
        while True:
            with self._lock:
                batch = self._db.execute(
                    "SELECT t.key, t.size FROM target t WHERE t.bucket = ? AND t.run = ? AND t.key > ? "
                    "AND substr(t.key, 1, ?) = ? AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.dst_bucket = t.bucket "
                    "AND o.dst_key = t.key AND o.listed_run = ?) ORDER BY t.key LIMIT 1000",
                    (bucket, self.run_id, offset_key, len(prefix), prefix, self.run_id),
                ).fetchall()
            if not batch:
                return
            yield from ((str(key), int(size)) for key, size in batch)
            offset_key = batch[-1][0]

    def target_count(self, bucket: str, prefix: str) -> int:
        self.flush()
        row = self._one(
            "SELECT COUNT(*) FROM target WHERE bucket = ? AND run = ? AND substr(key, 1, ?) = ?",
            (bucket, self.run_id, len(prefix), prefix),
        )
        return int(row[0])

    def refresh(self, row: ObjectRow) -> ObjectRow:
        """``row`` as the journal has it now (an upload begun by an earlier attempt included)."""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE src_bucket = ? AND src_key = ?",  # noqa: S608 - constant columns
                (row.src_bucket, row.src_key),
            ).fetchone()
        return ObjectRow(*found) if found else row

    def other_source(self, row: ObjectRow) -> str | None:
        """Another source key of this journal mapped to ``row``'s target key, if there is one."""
        found = self._one(
            "SELECT src_key FROM objects WHERE dst_bucket = ? AND dst_key = ? AND NOT (src_bucket = ? AND src_key = ?) "
            "LIMIT 1",
            (row.dst_bucket, row.dst_key, row.src_bucket, row.src_key),
        )
        return str(found[0]) if found else None

    def forget_target(self, bucket: str, key: str) -> None:
        self._write("DELETE FROM target WHERE bucket = ? AND key = ?", (bucket, key))

    # -- copies ------------------------------------------------------------------------------------

    def begin_upload_intent(self, row: ObjectRow) -> None:
        """Committed before CreateMultipartUpload: if the process dies before the upload id is
        recorded, the next run knows to look for (and abort) an upload started at about this time."""
        self._write(
            "UPDATE objects SET state = 'copying', upload_id = NULL, upload_started = ?, attempts = attempts + 1 "
            "WHERE src_bucket = ? AND src_key = ?",
            (time.time(), row.src_bucket, row.src_key),
        )
        failpoints.hit("journal.upload_intent")

    def set_upload(self, row: ObjectRow, upload_id: str, part_size: int) -> None:
        self._write(
            "UPDATE objects SET upload_id = ?, part_size = ? WHERE src_bucket = ? AND src_key = ?",
            (upload_id, part_size, row.src_bucket, row.src_key),
        )
        failpoints.hit("journal.upload_started")

    def record_part(self, row: ObjectRow, upload_id: str, part: PartInfo) -> None:
        self._write(
            "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.src_bucket, row.src_key, upload_id, part.number, part.etag, part.size, part.checksum),
        )
        failpoints.hit("journal.part")

    def parts(self, row: ObjectRow, upload_id: str) -> list[PartRow]:
        with self._lock:
            found = self._db.execute(
                "SELECT number, etag, size, checksum FROM parts "
                "WHERE src_bucket = ? AND src_key = ? AND upload_id = ? "
                "ORDER BY number",
                (row.src_bucket, row.src_key, upload_id),
            ).fetchall()
        return [PartRow(*part) for part in found]

    def clear_upload(self, row: ObjectRow) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM parts WHERE src_bucket = ? AND src_key = ?", (row.src_bucket, row.src_key))
            self._db.execute(
                "UPDATE objects SET upload_id = NULL, upload_started = NULL, part_size = NULL "
                "WHERE src_bucket = ? AND src_key = ?",
                (row.src_bucket, row.src_key),
            )
            self._db.execute("COMMIT")

    def mark_copying(self, row: ObjectRow) -> None:
        self._write(
            "UPDATE objects SET state = 'copying', attempts = attempts + 1 WHERE src_bucket = ? AND src_key = ?",
            (row.src_bucket, row.src_key),
        )

    def mark_verified(self, row: ObjectRow, digest: str | None, size: int | None = None) -> None:
        """The commit point of a copy: only called once the target holds the bytes durably.
        ``size`` is what was copied when it differs from the listing (the object changed since).
        Group-committed (see the module docstring)."""
        with self._pending_lock:
            self._pending.append((row, digest, row.size if size is None else size))
            full = len(self._pending) >= GROUP_SIZE
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_loop, name="journal", daemon=True)
                self._committer.start()
        if full:
            self.flush()

    def _commit_loop(self) -> None:
        while not self._stop.wait(GROUP_COMMIT):
            self.flush()

    def flush(self) -> None:
        """Commit the verified marks gathered so far, in one transaction."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        failpoints.hit("journal.before_verified")
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "DELETE FROM parts WHERE src_bucket = ? AND src_key = ?",
                    [(row.src_bucket, row.src_key) for row, _, _ in batch],
                )
                self._db.executemany(
                    "UPDATE objects SET state = 'verified', digest = ?, size = ?, upload_id = NULL, "
                    "upload_started = NULL, part_size = NULL, error = NULL, done_run = ? "
                    "WHERE src_bucket = ? AND src_key = ?",
                    [(digest, size, self.run_id, row.src_bucket, row.src_key) for row, digest, size in batch],
                )
                self._db.executemany(
                    "INSERT INTO target (bucket, key, size, run) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, run = excluded.run",
                    [(row.dst_bucket, row.dst_key, size, self.run_id) for row, _, size in batch],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        failpoints.hit("journal.verified")

    def mark_failed(self, row: ObjectRow, error: str) -> None:
        self._write(
            "UPDATE objects SET state = 'failed', error = ? WHERE src_bucket = ? AND src_key = ?",
            (error[:2000], row.src_bucket, row.src_key),
        )

    def mark_skipped(self, row: ObjectRow, reason: str) -> None:
        self._write(
            "UPDATE objects SET state = 'skipped', error = ? WHERE src_bucket = ? AND src_key = ?",
            (reason[:2000], row.src_bucket, row.src_key),
        )

    def pending_uploads(self) -> list[ObjectRow]:
        """Rows with a multipart upload (or the intent to start one) from an earlier run."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE upload_id IS NOT NULL OR upload_started IS NOT NULL"  # noqa: S608
            ).fetchall()
        return [ObjectRow(*row) for row in rows]

    def digest_of(self, src_bucket: str, src_key: str) -> tuple[str | None, str | None]:
        """(state, digest) recorded for a source object."""
        self.flush()
        row = self._one("SELECT state, digest FROM objects WHERE src_bucket = ? AND src_key = ?", (src_bucket, src_key))
        return (None, None) if row is None else (row[0], row[1])
