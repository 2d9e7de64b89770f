"""The sync journal: one SQLite file per source -> target pair, crash-safe, one writer at a time.

WAL mode with ``synchronous=NORMAL``: every commit survives the process being killed (``kill -9``)
at any point; only a power loss can take the last few commits (``--durable`` uses FULL for that).
"Verified" marks are group-committed: gathered for at most ``GROUP_COMMIT`` seconds (or 256 marks)
and written in one transaction, so a kill loses at most that window of marks, whose objects are
then simply not verified and are copied again. Everything else commits at once.

One run at a time: opening a journal for writing takes an exclusive lock on ``<journal>.lock``
(released by the kernel if the process dies); a second run on the same journal is refused at once,
never allowed to interleave its listings and deletes with the first one's.

Per object the journal records what the source listing said, how far its copy got, and the digest
of the bytes that reached the target::

    listed   -> copying (multipart: upload id, the source version it belongs to, and every finished
                part with a checksum of its bytes) -> verified
             -> failed / skipped (reason kept; looked at again by the next run)

An object is marked ``verified`` only after the target confirmed the write (and, on targets that do
not check bodies themselves, after reading it back). A re-run skips verified objects whose source
is unchanged, resumes multipart uploads part by part (only parts proven to hold the bytes now being
sent), and aborts uploads it no longer needs. ``events`` names every key a run deleted, skipped,
failed, repaired or refused, for an audit of what a run did.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import failpoints
from ..errors import FailoverError
from ..types import PartInfo

__all__ = ["Journal", "JournalBusy", "JournalError", "Ledger", "ObjectRow", "PartRow", "SourceVersion", "snapshot"]

SCHEMA_VERSION = 2
GROUP_COMMIT = 0.02
GROUP_SIZE = 256

_TABLES = """
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
    upload_etag TEXT,
    upload_size INTEGER,
    upload_modified TEXT,
    dst_etag TEXT,
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
    proof TEXT,
    PRIMARY KEY (src_bucket, src_key, upload_id, number)
);
CREATE TABLE IF NOT EXISTS target (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    run INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS events (
    run INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_run ON events (run, kind);
CREATE TABLE IF NOT EXISTS listing_check (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    run INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
"""

# Every column a journal of this schema version has: checked on open, so a damaged or foreign file
# is refused with its name instead of failing mid-run with an SQL error.
_COLUMNS = {
    "meta": {"key", "value"},
    "runs": {"id", "started", "finished", "status", "report"},
    "objects": {
        "src_bucket",
        "src_key",
        "dst_bucket",
        "dst_key",
        "size",
        "src_etag",
        "src_modified",
        "state",
        "digest",
        "upload_id",
        "upload_started",
        "part_size",
        "attempts",
        "error",
        "listed_run",
        "done_run",
        "upload_etag",
        "upload_size",
        "upload_modified",
        "dst_etag",
    },
    "parts": {"src_bucket", "src_key", "upload_id", "number", "etag", "size", "checksum", "proof"},
    "target": {"bucket", "key", "size", "run"},
    "events": {"run", "at", "kind", "bucket", "key", "detail"},
    "listing_check": {"bucket", "key", "size", "run"},
}

# Version 1 -> 2: the source version an upload belongs to, a checksum proving each part's bytes,
# the audit events and the listing cross-check.
_MIGRATIONS = {
    1: [
        "ALTER TABLE objects ADD COLUMN upload_etag TEXT",
        "ALTER TABLE objects ADD COLUMN upload_size INTEGER",
        "ALTER TABLE objects ADD COLUMN upload_modified TEXT",
        "ALTER TABLE objects ADD COLUMN dst_etag TEXT",
        "ALTER TABLE parts ADD COLUMN proof TEXT",
        # Uploads begun by version 1 carry no source version: they cannot be proven, so they are
        # abandoned (aborted by the next run) rather than resumed.
        "UPDATE objects SET upload_etag = NULL, upload_size = NULL, upload_modified = NULL",
    ],
}

EVENT_KINDS = ("deleted", "kept", "skipped", "failed", "repaired", "collision", "listing")


class JournalError(FailoverError):
    exit_code = 2


class JournalBusy(JournalError):
    """Another run holds this journal."""


@dataclass(frozen=True)
class SourceVersion:
    """What identifies one version of a source object: an upload belongs to exactly one."""

    etag: str | None
    size: int
    modified: str | None


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
    src_modified: str | None = None
    upload_etag: str | None = None
    upload_size: int | None = None
    upload_modified: str | None = None
    dst_etag: str | None = None
    """The target object's ETag when it was verified (what a later HEAD recognises it by)."""

    @property
    def upload_version(self) -> SourceVersion | None:
        """The source version the recorded multipart upload was started for (None: unknown)."""
        if self.upload_size is None:
            return None
        return SourceVersion(self.upload_etag, self.upload_size, self.upload_modified)


@dataclass(frozen=True)
class PartRow:
    number: int
    etag: str
    size: int
    checksum: str | None
    proof: str | None = None
    """A checksum of the part's bytes as sent (``crc32c:<b64>`` or ``md5:<hex>``)."""


_OBJECT_COLUMNS = (
    "src_bucket, src_key, dst_bucket, dst_key, size, src_etag, state, digest, upload_id, upload_started, "
    "part_size, attempts, src_modified, upload_etag, upload_size, upload_modified, dst_etag"
)

# One statement per listed object: its row, the size this run's target listing showed for its target
# key, and another source key listed in this run that lands on the same target key.
_LISTED_QUERY = (
    f"SELECT {', '.join('o.' + c.strip() for c in _OBJECT_COLUMNS.split(','))}, "  # noqa: S608 - constant columns
    "(SELECT t.size FROM target t WHERE t.bucket = o.dst_bucket AND t.key = o.dst_key AND t.run = ?), "
    "(SELECT c.src_key FROM objects c WHERE c.dst_bucket = o.dst_bucket AND c.dst_key = o.dst_key "
    " AND NOT (c.src_bucket = o.src_bucket AND c.src_key = o.src_key) AND c.listed_run = ? LIMIT 1) "
    "FROM objects o WHERE o.src_bucket = ? AND o.src_key = ?"
)


@dataclass(frozen=True)
class Listed:
    """A source object as this run's listing recorded it, with what deciding needs to know."""

    row: ObjectRow
    target_size: int | None
    """The size this run's target listing showed for the row's target key (None: not listed)."""
    other_source: str | None
    """Another source key listed in this run that maps to the same target key (None: no other)."""


def _lock_path(path: str) -> str:
    return path + ".lock"


def snapshot(path: Path, copy: Path) -> None:
    """A consistent copy of the journal at ``path`` (for a dry run), without taking its lock: SQLite's
    online backup reads it as a WAL reader would, while a run may be writing."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"journal {path} is not usable: {exc}", hint=_START_OVER) from exc
    finally:
        source.close()


_START_OVER = "move it away to start over (objects already copied are recognised by their digest, not re-sent)"


class Ledger(Protocol):
    """What copying one object records (the :class:`Journal` on the machine that runs the command;
    on a cluster's worker, a record of the calls, committed to the journal by the coordinator)."""

    def mark_verified(
        self, row: ObjectRow, digest: str | None, size: int | None = None, dst_etag: str | None = None
    ) -> None: ...
    def begin_upload_intent(self, row: ObjectRow, version: SourceVersion) -> None: ...
    def set_upload(self, row: ObjectRow, upload_id: str, part_size: int) -> None: ...
    def record_part(self, row: ObjectRow, upload_id: str, part: PartInfo, proof: str) -> None: ...
    def parts(self, row: ObjectRow, upload_id: str) -> list[PartRow]: ...
    def clear_upload(self, row: ObjectRow) -> None: ...
    def refresh(self, row: ObjectRow) -> ObjectRow: ...


class Journal:
    """Thread-safe: one connection, every call serialised by a lock, every write committed."""

    def __init__(self, path: Path | str, *, durable: bool = False, lock: bool = True) -> None:
        self.path = str(path)
        self._lock_handle: Any = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if lock:
                self._take_lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise JournalError(f"journal {self.path} is not usable: {exc}", hint=_START_OVER) from exc
        except BaseException:
            self._release_lock()
            raise
        self._lock = threading.Lock()
        self.run_id = 0
        self._pending: list[tuple[ObjectRow, str | None, int, str | None]] = []
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._committer: threading.Thread | None = None

    # -- the one-run lock --------------------------------------------------------------------------

    def _take_lock(self) -> None:
        handle = open(_lock_path(self.path), "a+")  # noqa: SIM115 - held for the journal's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise JournalBusy(
                f"journal {self.path} is in use by another failover run ({holder}); two runs on one journal would "
                "undo each other's work",
                hint="wait for that run to finish (or stop it); re-running afterwards resumes where it stopped",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
        handle.flush()
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            with contextlib.suppress(OSError):
                self._lock_handle.seek(0)
                self._lock_handle.truncate()
                fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # -- schema ------------------------------------------------------------------------------------

    def _open_schema(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            db.executescript(_TABLES)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            return
        if "meta" not in tables:
            raise JournalError(f"{self.path} is not a failover journal (it has no meta table)", hint=_START_OVER)
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        version = int(found[0]) if found and str(found[0]).isdigit() else None
        if version is None and "objects" in tables and not db.execute("SELECT 1 FROM objects LIMIT 1").fetchone():
            # Created by version 1, which wrote its schema row only when first bound: nothing in it yet.
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', '1')")
            version = 1
        if version is None:
            raise JournalError(f"{self.path}: the journal does not say which schema it has", hint=_START_OVER)
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} was written by a newer failover (journal schema {version}; this one reads up to "
                f"{SCHEMA_VERSION})",
                hint="run the failover that wrote it, or move the journal away to start over",
            )
        if version < SCHEMA_VERSION:
            self._check_columns(version_tables(version))
            self._migrate(version)
        db.executescript(_TABLES)  # tables added since (idempotent)
        self._check_columns(_COLUMNS)

    def _check_columns(self, wanted: dict[str, set[str]]) -> None:
        for table, columns in wanted.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = sorted(columns - have)
            if missing:
                raise JournalError(
                    f"{self.path}: table {table} lacks column(s) {', '.join(missing)}: the journal is damaged or "
                    "was not written by failover",
                    hint=_START_OVER,
                )

    def _migrate(self, version: int) -> None:
        backup = Path(f"{self.path}.v{version}.bak")
        if not backup.exists():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copyfile(self.path, backup)
        self._db.execute("BEGIN")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    self._db.execute(statement)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        self._stop.set()
        if self._committer is not None:
            self._committer.join()
        self.flush()
        with self._lock:
            self._db.close()
        self._release_lock()

    # -- identity ----------------------------------------------------------------------------------

    def bind(self, source: str, target: str, digest: str) -> None:
        """Tie the journal to one source -> target pair and digest; refuse a mismatch."""
        wanted = {"source": source, "target": target, "digest": digest}
        with self._lock:
            found = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if "source" not in found:
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", wanted.items())
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

    # -- audit -------------------------------------------------------------------------------------

    def event(self, kind: str, bucket: str, key: str, detail: str | None = None) -> None:
        """Name a key in the audit trail: what this run deleted, kept, skipped, failed, repaired..."""
        assert kind in EVENT_KINDS, kind
        self._write(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            (self.run_id, time.time(), kind, bucket, key, None if detail is None else detail[:2000]),
        )

    def events(self, run: int | None = None, kind: str | None = None) -> list[tuple[str, str, str, str | None]]:
        """(kind, bucket, key, detail) of a run's events (this run by default)."""
        query = "SELECT kind, bucket, key, detail FROM events WHERE run = ?"
        params: list[Any] = [self.run_id if run is None else run]
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        return [tuple(row) for row in self._all(query + " ORDER BY rowid", params)]

    # -- listings ----------------------------------------------------------------------------------

    def record_target(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Remember what the target listing showed in this run (bucket, key, size)."""
        self._many(
            "INSERT INTO target (bucket, key, size, run) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, run = excluded.run",
            [(*row, self.run_id) for row in rows],
        )

    def record_listed(self, rows: Sequence[tuple[str, str, str, str, int, str | None, str | None]]) -> list[Listed]:
        """Upsert source objects seen in this run's listing (src bucket, src key, dst bucket,
        dst key, size, source ETag, source modification time); return their journal rows.

        A verified object whose size, ETag or modification time changed goes back to ``listed``.
        That only means "look again": its digest is kept, so unchanged bytes are recognised and
        not sent (a metadata-only change is applied in place). ETags and times are compared only
        with the same provider's earlier values for the same key, never across providers. An
        unfinished multipart upload keeps the source version it was started for: the copier
        resumes it only if the source still is that version.

        Each row comes with what deciding needs about it, read in the same statement: the size this
        run's target listing showed for its target key, and another source key listed in this run
        that maps to the same target key.
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
        found = []
        with self._lock:
            for src_bucket, src_key, *_ in rows:
                *columns, target_size, other_source = self._db.execute(
                    _LISTED_QUERY, (self.run_id, self.run_id, src_bucket, src_key)
                ).fetchone()
                found.append(Listed(ObjectRow(*columns), target_size, other_source))
        return found

    def record_check(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """What the second, independent listing of the source showed in this run (bucket, key, size)."""
        self._many(
            "INSERT INTO listing_check (bucket, key, size, run) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, run = excluded.run",
            [(*row, self.run_id) for row in rows],
        )

    def check_differences(self, bucket: str, prefix: str, limit: int = 10_000) -> tuple[list[str], list[str]]:
        """Keys under ``prefix`` that only the main listing showed in this run, and keys only the
        cross-check listing showed (each list at most ``limit`` long)."""
        only_main = self._all(
            "SELECT o.src_key FROM objects o WHERE o.src_bucket = ? AND o.listed_run = ? "
            "AND substr(o.src_key, 1, ?) = ? AND NOT EXISTS (SELECT 1 FROM listing_check c "
            "WHERE c.bucket = o.src_bucket AND c.key = o.src_key AND c.run = ?) ORDER BY o.src_key LIMIT ?",
            (bucket, self.run_id, len(prefix), prefix, self.run_id, limit),
        )
        only_check = self._all(
            "SELECT c.key FROM listing_check c WHERE c.bucket = ? AND c.run = ? AND substr(c.key, 1, ?) = ? "
            "AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.src_bucket = c.bucket AND o.src_key = c.key "
            "AND o.listed_run = ?) ORDER BY c.key LIMIT ?",
            (bucket, self.run_id, len(prefix), prefix, self.run_id, limit),
        )
        return [str(r[0]) for r in only_main], [str(r[0]) for r in only_check]

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

    def verified_objects(self, src_bucket: str, src_prefix: str = "") -> list[tuple[str, str]]:
        """(src key, dst key) of every object of ``src_bucket`` under ``src_prefix`` that this run's
        listing showed and the journal has verified on the target (now or earlier), in key order."""
        self.flush()
        return [
            (str(r[0]), str(r[1]))
            for r in self._all(
                "SELECT src_key, dst_key FROM objects WHERE src_bucket = ? AND substr(src_key, 1, ?) = ? "
                "AND state = 'verified' AND listed_run = ? ORDER BY src_key",
                (src_bucket, len(src_prefix), src_prefix, self.run_id),
            )
        ]

    def copied_in_run(self, bucket: str, after: str = "", limit: int = 1000) -> list[tuple[str, str, int]]:
        """(dst key, src key, size) of objects of ``bucket`` this run copied and verified, in key order."""
        self.flush()
        return [
            (str(r[0]), str(r[1]), int(r[2]))
            for r in self._all(
                "SELECT dst_key, src_key, size FROM objects WHERE dst_bucket = ? AND done_run = ? "
                "AND state = 'verified' AND dst_key > ? ORDER BY dst_key LIMIT ?",
                (bucket, self.run_id, after, limit),
            )
        ]

    def refresh(self, row: ObjectRow) -> ObjectRow:
        """``row`` as the journal has it now (an upload begun by an earlier attempt included)."""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE src_bucket = ? AND src_key = ?",  # noqa: S608 - constant columns
                (row.src_bucket, row.src_key),
            ).fetchone()
        return ObjectRow(*found) if found else row

    def row(self, src_bucket: str, src_key: str) -> ObjectRow | None:
        found = self._one(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE src_bucket = ? AND src_key = ?",  # noqa: S608 - constant columns
            (src_bucket, src_key),
        )
        return ObjectRow(*found) if found else None

    def forget_target(self, bucket: str, key: str) -> None:
        self._write("DELETE FROM target WHERE bucket = ? AND key = ?", (bucket, key))

    # -- copies ------------------------------------------------------------------------------------

    def begin_upload_intent(self, row: ObjectRow, version: SourceVersion) -> None:
        """Committed before CreateMultipartUpload: if the process dies before the upload id is
        recorded, the next run knows to look for (and abort) an upload started at about this time.
        The upload belongs to ``version`` of the source object and to no other."""
        self._write(
            "UPDATE objects SET state = 'copying', upload_id = NULL, upload_started = ?, attempts = attempts + 1, "
            "upload_etag = ?, upload_size = ?, upload_modified = ? WHERE src_bucket = ? AND src_key = ?",
            (time.time(), version.etag, version.size, version.modified, row.src_bucket, row.src_key),
        )
        failpoints.hit("journal.upload_intent")

    def set_upload(self, row: ObjectRow, upload_id: str, part_size: int) -> None:
        self._write(
            "UPDATE objects SET upload_id = ?, part_size = ? WHERE src_bucket = ? AND src_key = ?",
            (upload_id, part_size, row.src_bucket, row.src_key),
        )
        failpoints.hit("journal.upload_started")

    def record_part(self, row: ObjectRow, upload_id: str, part: PartInfo, proof: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.src_bucket, row.src_key, upload_id, part.number, part.etag, part.size, part.checksum, proof),
        )
        failpoints.hit("journal.part")

    def parts(self, row: ObjectRow, upload_id: str) -> list[PartRow]:
        with self._lock:
            found = self._db.execute(
                "SELECT number, etag, size, checksum, proof FROM parts "
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
                "UPDATE objects SET upload_id = NULL, upload_started = NULL, part_size = NULL, upload_etag = NULL, "
                "upload_size = NULL, upload_modified = NULL WHERE src_bucket = ? AND src_key = ?",
                (row.src_bucket, row.src_key),
            )
            self._db.execute("COMMIT")

    def mark_verified(
        self, row: ObjectRow, digest: str | None, size: int | None = None, dst_etag: str | None = None
    ) -> None:
        """The commit point of a copy: only called once the target holds the bytes durably.
        ``size`` is what was copied when it differs from the listing (the object changed since);
        ``dst_etag`` the target object's ETag as the write reported it. Group-committed (see the
        module docstring)."""
        with self._pending_lock:
            self._pending.append((row, digest, row.size if size is None else size, dst_etag))
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
                    [(row.src_bucket, row.src_key) for row, *_ in batch],
                )
                self._db.executemany(
                    "UPDATE objects SET state = 'verified', digest = ?, size = ?, upload_id = NULL, "
                    "upload_started = NULL, part_size = NULL, upload_etag = NULL, upload_size = NULL, "
                    "upload_modified = NULL, error = NULL, done_run = ?, dst_etag = ? "
                    "WHERE src_bucket = ? AND src_key = ?",
                    [
                        (digest, size, self.run_id, etag, row.src_bucket, row.src_key)
                        for row, digest, size, etag in batch
                    ],
                )
                self._db.executemany(
                    "INSERT INTO target (bucket, key, size, run) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, run = excluded.run",
                    [(row.dst_bucket, row.dst_key, size, self.run_id) for row, _, size, _ in batch],
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
        self.event("failed", row.src_bucket, row.src_key, error)

    def mark_skipped(self, row: ObjectRow, reason: str, kind: str = "skipped") -> None:
        self._write(
            "UPDATE objects SET state = 'skipped', error = ? WHERE src_bucket = ? AND src_key = ?",
            (reason[:2000], row.src_bucket, row.src_key),
        )
        self.event(kind, row.src_bucket, row.src_key, reason)

    def mark_unverified(self, src_bucket: str, src_key: str, reason: str) -> bool:
        """What ``verify`` found missing or different on the target: no longer verified, so the next
        sync copies it again (the target's own recorded digest is not believed over its bytes).
        False when the journal has no such object."""
        self.flush()
        cursor = self._write(
            "UPDATE objects SET state = 'listed', error = ? WHERE src_bucket = ? AND src_key = ?",
            (reason[:2000], src_bucket, src_key),
        )
        return cursor.rowcount > 0

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


def version_tables(version: int) -> dict[str, set[str]]:
    """The columns a journal of an older schema ``version`` must have before it is migrated."""
    if version == 1:
        current = {table: set(columns) for table, columns in _COLUMNS.items() if table in ("meta", "runs", "target")}
        current["objects"] = _COLUMNS["objects"] - {"upload_etag", "upload_size", "upload_modified", "dst_etag"}
        current["parts"] = _COLUMNS["parts"] - {"proof"}
        return current
    raise JournalError(f"journal schema {version} is not known", hint=_START_OVER)
