"""The ``local`` storage adapter: a directory of buckets on this machine.

Layout under ``root``::

    <bucket>/photos/cat.jpg          the object "photos/cat.jpg" (segments escaped, see keys.py)
    <bucket>/%meta/photos/cat.jpg    its metadata and tags (JSON)
    <bucket>/%tmp/<random>           writes in progress, renamed into place when complete

Keys can never reach outside ``root``: they are split into escaped segments (no ``..``, no absolute
paths) and every directory is opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a
symlink planted anywhere under the root is refused rather than followed. Listing skips symlinks.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import google_crc32c

from failover.capabilities import Capability, StoreCapabilities, StoreLimits
from failover.config import ServiceSpec
from failover.errors import IntegrityError, InvalidRequest, NotFound, NotSupported, ProviderError
from failover.storage import ObjectStore, RawBody, Readable
from failover.types import BucketInfo, ByteRange, ObjectInfo, ObjectMeta

from .errors import converted
from .keys import META_DIR, NAME_MAX, TMP_DIR, key_to_parts, unescape_segment
from .options import LocalStoreOptions

__all__ = ["LocalStore"]

_SCALAR_FIELDS = (
    "content_type",
    "cache_control",
    "content_disposition",
    "content_encoding",
    "content_language",
    "website_redirect_location",
)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1024 * 1024

CAPABILITIES = StoreCapabilities(
    operations=frozenset(
        {
            Capability.CREATE_BUCKET,
            Capability.DELETE_BUCKET,
            Capability.RANGE_READ,
            Capability.SORTED_LISTING,
            Capability.SERVER_SIDE_COPY,
            Capability.TAGS,
            Capability.VERIFIED_WRITES,  # the store writes, counts and fsyncs every byte itself
            Capability.KEY_EMPTY_SEGMENTS,
            Capability.KEY_TRAILING_SLASH,
            Capability.KEY_DOT_SEGMENTS,
            Capability.KEY_BACKSLASH,
            Capability.KEY_CONTROL_CHARACTERS,
        }
    ),
    limits=StoreLimits(max_key_segment_bytes=NAME_MAX, max_single_put=2**62, max_object_size=2**62),
)


class _Dir:
    """An open directory descriptor, closed on exit."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> _Dir:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _meta_to_json(meta: ObjectMeta, tags: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(meta, f) for f in _SCALAR_FIELDS if getattr(meta, f) is not None}
    if meta.expires is not None:
        data["expires"] = meta.expires.isoformat()
    if meta.user:
        data["user"] = dict(meta.user)
    if tags:
        data["tags"] = tags
    return data


def _meta_from_json(data: dict[str, Any]) -> tuple[ObjectMeta, dict[str, str]]:
    expires = datetime.fromisoformat(data["expires"]) if data.get("expires") else None
    meta = ObjectMeta(
        content_type=data.get("content_type"),
        cache_control=data.get("cache_control"),
        content_disposition=data.get("content_disposition"),
        content_encoding=data.get("content_encoding"),
        content_language=data.get("content_language"),
        website_redirect_location=data.get("website_redirect_location"),
        expires=expires,
        user=data.get("user") or {},
    )
    return meta, dict(data.get("tags") or {})


class LocalStore(ObjectStore):
    options_model = LocalStoreOptions

    def __init__(self, name: str, options: LocalStoreOptions) -> None:
        super().__init__(name, self.declared_capabilities(options))
        self.root = os.path.abspath(options.root)
        self.fsync = options.fsync
        if options.create_root:
            os.makedirs(self.root, exist_ok=True)
        if not os.path.isdir(self.root):
            raise NotFound(
                f"root directory {self.root} does not exist",
                provider=name,
                hint="create it, or set options.create_root: true",
            )

    @classmethod
    def declared_capabilities(cls, options: LocalStoreOptions) -> StoreCapabilities:
        if options.normalize_unicode is None:
            return CAPABILITIES
        return replace(CAPABILITIES, limits=replace(CAPABILITIES.limits, key_normalization=options.normalize_unicode))

    def _stored_name(self, key: str) -> str:
        form = self.capabilities.limits.key_normalization
        return unicodedata.normalize(form, key) if form else key

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> LocalStore:
        return cls(spec.provider, spec.options)

    # -- path handling -----------------------------------------------------------------------------

    def _open_root(self) -> _Dir:
        return _Dir(os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))

    def _walk(self, bucket: str, parts: list[str], *, create: bool, target: str) -> _Dir:
        """Open the directory ``root/bucket/parts...`` without following any symlink on the way.
        The bucket name is checked first, so no name can step outside the root."""
        if not self.capabilities.limits.valid_bucket_name(bucket):
            raise NotFound("no such bucket (not a valid bucket name)", target=bucket)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in [bucket, *parts]:
                if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
                    raise InvalidRequest(f"path segment longer than {NAME_MAX} bytes once escaped", target=target)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise NotFound("no such bucket or key", target=target) from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    child = self._open_child_dir(part, fd, target)
                except OSError as exc:
                    raise self._refusal(exc, target, fd, part) from exc
                os.close(fd)
                fd = child
            return _Dir(fd)
        except BaseException:
            os.close(fd)
            raise

    def _open_child_dir(self, part: str, fd: int, target: str) -> int:
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise self._refusal(exc, target, fd, part) from exc

    def _refusal(self, exc: OSError, target: str, fd: int, name: str) -> ProviderError:
        """Explain why ``name`` under ``fd`` could not be opened as a directory or file."""
        try:
            is_link = stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            is_link = False
        if is_link or exc.errno in (errno.ELOOP, errno.EMLINK):
            return InvalidRequest("refusing to follow a symlink inside the store root", target=target)
        if exc.errno == errno.ENOTDIR:
            return NotSupported(
                Capability.KEY_IS_PREFIX.value, operation=f"key {target[:60]!r} (an object is in the way)"
            )
        return ProviderError(exc.strerror or str(exc), target=target)

    def _bucket_dir(self, bucket: str, *, create: bool = False) -> _Dir:
        return self._walk(bucket, [], create=create, target=bucket)

    def _split(self, key: str) -> tuple[list[str], str]:
        parts = key_to_parts(self._stored_name(key))
        return parts[:-1], parts[-1]

    def _open_file(self, bucket: str, key: str) -> tuple[int, os.stat_result]:
        dirs, name = self._split(key)
        target = f"{bucket}/{key}"
        with self._walk(bucket, [*dirs], create=False, target=target) as parent:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
            except FileNotFoundError:
                raise NotFound("no such key", target=target) from None
            except OSError as exc:
                raise self._refusal(exc, target, parent.fd, name) from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound("no such key (a directory of other keys has this name)", target=target)
        return fd, st

    def _read_meta(self, bucket: str, key: str) -> tuple[ObjectMeta, dict[str, str]]:
        dirs, name = self._split(key)
        try:
            with self._walk(bucket, [META_DIR, *dirs], create=False, target=key) as parent:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
                with os.fdopen(fd, "rb") as handle:
                    return _meta_from_json(json.loads(handle.read()))
        except (NotFound, FileNotFoundError):
            return ObjectMeta(), {}

    @staticmethod
    def _etag(st: os.stat_result) -> str:
        return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"

    def _info(
        self, bucket: str, key: str, st: os.stat_result, meta: ObjectMeta | None, tag_count: int | None = None
    ) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=st.st_size,
            etag=self._etag(st),
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
            meta=meta,
            tag_count=tag_count,
        )

    def _stage(
        self, bucket: str, source: Readable, size: int | None, target: str, *, expected_crc: int | None = None
    ) -> tuple[str, int]:
        """Stream ``source`` into a new file under ``%tmp`` (fsynced when configured), then read the
        file back and compare its CRC32C with that of the bytes given (or ``expected_crc``): what
        VERIFIED_WRITES promises, that a write which succeeded holds exactly those bytes. Returns
        (name, bytes)."""
        with self._walk(bucket, [TMP_DIR], create=True, target=target) as tmp:
            tmp_name = secrets.token_hex(8)
            fd = os.open(
                tmp_name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=tmp.fd
            )
            written = 0
            given = 0
            try:
                with os.fdopen(fd, "w+b") as out:
                    while True:
                        want = _COPY_CHUNK if size is None else min(_COPY_CHUNK, size - written)
                        if want <= 0:
                            break
                        chunk = source.read(want)
                        if not chunk:
                            break
                        out.write(chunk)
                        given = google_crc32c.extend(given, chunk)
                        written += len(chunk)
                    if size is not None and written != size:
                        raise IntegrityError(f"source gave {written} of {size} bytes", target=target)
                    out.flush()
                    if self.fsync:
                        os.fsync(out.fileno())
                    out.seek(0)
                    stored = 0
                    while chunk := out.read(_COPY_CHUNK):
                        stored = google_crc32c.extend(stored, chunk)
                    if stored != (given if expected_crc is None else expected_crc):
                        raise IntegrityError("the file written does not hold the bytes given", target=target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name, dir_fd=tmp.fd)
                raise
        return tmp_name, written

    def _discard(self, bucket: str, tmp_name: str) -> None:
        with (
            contextlib.suppress(OSError, NotFound),
            self._walk(bucket, [TMP_DIR], create=False, target=tmp_name) as tmp,
        ):
            os.unlink(tmp_name, dir_fd=tmp.fd)

    def _commit(self, bucket: str, tmp_name: str, parts: list[str], name: str, target: str) -> None:
        """Rename a staged file to ``parts/name`` (atomic) and make the rename durable."""
        with (
            self._walk(bucket, [TMP_DIR], create=False, target=target) as tmp,
            self._walk(bucket, [*parts], create=True, target=target) as parent,
        ):
            try:
                os.rename(tmp_name, name, src_dir_fd=tmp.fd, dst_dir_fd=parent.fd)
            except IsADirectoryError:
                raise NotSupported(
                    Capability.KEY_IS_PREFIX.value, operation=f"key {target[:60]!r} (other keys live under it)"
                ) from None
            if self.fsync:
                os.fsync(parent.fd)

    def _stage_meta(self, bucket: str, meta: ObjectMeta, tags: dict[str, str], target: str) -> str | None:
        data = _meta_to_json(meta, tags)
        if not data:
            return None
        body = json.dumps(data, sort_keys=True).encode()
        return self._stage(bucket, _BytesReader(body), len(body), target)[0]

    def _write(
        self,
        bucket: str,
        key: str,
        source: Readable | None,
        size: int | None,
        meta: ObjectMeta,
        tags: dict[str, str],
        *,
        expected_crc: int | None = None,
    ) -> int:
        """Write data (unless ``source`` is None) and metadata. Both are staged first, so a failed
        write changes nothing; then the metadata and the data are renamed into place."""
        target = f"{bucket}/{key}"
        dirs, name = self._split(key)
        staged: list[str] = []
        try:
            meta_tmp = self._stage_meta(bucket, meta, tags, target)
            if meta_tmp:
                staged.append(meta_tmp)
            data_tmp, written = (
                (None, 0) if source is None else self._stage(bucket, source, size, target, expected_crc=expected_crc)
            )
            if data_tmp:
                staged.append(data_tmp)
            if meta_tmp:
                self._commit(bucket, meta_tmp, [META_DIR, *dirs], name, target)
                staged.remove(meta_tmp)
            else:
                self._remove(bucket, [META_DIR, *dirs], name)
            if data_tmp:
                self._commit(bucket, data_tmp, dirs, name, target)
                staged.remove(data_tmp)
            return written
        finally:
            for leftover in staged:
                self._discard(bucket, leftover)

    def _remove(self, bucket: str, dirs: list[str], name: str) -> bool:
        """Unlink ``dirs/name`` and prune directories it leaves empty. False if it was not there."""
        try:
            parent = self._walk(bucket, [*dirs], create=False, target=name)
        except NotFound:
            return False
        with parent:
            try:
                os.unlink(name, dir_fd=parent.fd)
            except FileNotFoundError:
                return False
            except IsADirectoryError:
                return False
        # Prune now-empty directories bottom-up (S3 has no empty directories). A concurrent put
        # that needs one re-creates it: _walk(create=True) tolerates the race.
        for depth in range(len(dirs), 0, -1):
            try:
                with self._walk(bucket, [*dirs[: depth - 1]], create=False, target=name) as up:
                    os.rmdir(dirs[depth - 1], dir_fd=up.fd)
            except (OSError, NotFound):
                break
        return True

    # -- buckets -----------------------------------------------------------------------------------

    def _list_buckets(self) -> list[BucketInfo]:
        with converted("list_buckets"), self._open_root() as root, os.scandir(root.fd) as entries:
            return [
                BucketInfo(entry.name, datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC))
                for entry in entries
                if entry.is_dir(follow_symlinks=False) and self.capabilities.limits.valid_bucket_name(entry.name)
            ]

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            with converted("bucket_exists", bucket), self._bucket_dir(bucket):
                return True
        except NotFound:
            return False

    def _create_bucket(self, bucket: str) -> None:
        with converted("create_bucket", bucket), self._bucket_dir(bucket, create=True):
            pass

    def _delete_bucket(self, bucket: str) -> None:
        with converted("delete_bucket", bucket), self._bucket_dir(bucket) as handle:
            names = [n for n in os.listdir(handle.fd) if n not in (META_DIR, TMP_DIR)]
            if names:
                raise InvalidRequest("bucket is not empty", target=bucket)
            for special in (META_DIR, TMP_DIR):
                with contextlib.suppress(FileNotFoundError, OSError):
                    os.rmdir(special, dir_fd=handle.fd)
        with self._open_root() as root:
            os.rmdir(bucket, dir_fd=root.fd)

    # -- objects -----------------------------------------------------------------------------------

    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        # Start at the deepest directory the prefix names completely.
        fixed = prefix.split("/")[:-1]
        base = "".join(segment + "/" for segment in fixed)
        try:
            parts = key_to_parts(self._stored_name("/".join(fixed))) if fixed else []
            handle = self._walk(bucket, parts, create=False, target=bucket)
        except NotFound:
            if not self._bucket_exists(bucket):
                raise
            return
        with handle:
            yield from self._walk_dir(handle.fd, bucket, base, prefix, start_after, top=not fixed)

    def _walk_dir(
        self, fd: int, bucket: str, base: str, prefix: str, start_after: str | None, *, top: bool
    ) -> Iterator[ObjectInfo]:
        entries: list[tuple[str, str, bool]] = []  # (sort key, name, is_dir)
        with converted("list_objects", bucket), os.scandir(fd) as scan:
            for entry in scan:
                if top and entry.name in (META_DIR, TMP_DIR):
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and not entry.is_file(follow_symlinks=False):
                    continue  # symlinks, sockets, devices: never part of the store
                segment = unescape_segment(entry.name)
                if segment is None:
                    continue  # a name no key produces: not ours
                key = base + segment
                entries.append((key + "/" if is_dir else key, entry.name, is_dir))
        entries.sort()
        for sort_key, name, is_dir in entries:
            if is_dir:
                if not (sort_key.startswith(prefix) or prefix.startswith(sort_key)):
                    continue
                if start_after is not None and sort_key < start_after and not start_after.startswith(sort_key):
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue  # removed or replaced since the scan
                with _Dir(child):
                    yield from self._walk_dir(child, bucket, sort_key, prefix, start_after, top=False)
            else:
                if not sort_key.startswith(prefix) or (start_after is not None and sort_key <= start_after):
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield self._info(bucket, sort_key, st, None)

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        with converted("head", f"{bucket}/{key}"):
            fd, st = self._open_file(bucket, key)
            os.close(fd)
            meta, tags = self._read_meta(bucket, key)
        return self._info(bucket, key, st, meta, len(tags))

    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        target = f"{bucket}/{key}"
        with converted("open", target):
            fd, st = self._open_file(bucket, key)
            meta, tags = self._read_meta(bucket, key)
        handle = os.fdopen(fd, "rb")
        start, length = 0, st.st_size
        if byte_range is not None:
            if byte_range.start >= st.st_size and st.st_size > 0:
                handle.close()
                raise InvalidRequest("range starts past the end of the object", target=target)
            start = byte_range.start
            end = st.st_size - 1 if byte_range.end is None else min(byte_range.end, st.st_size - 1)
            length = max(end - start + 1, 0)
            handle.seek(start)
        return self._info(bucket, key, st, meta, len(tags)), _FileBody(handle, target), start, length

    def _put_stream(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        size: int | None,
        meta: ObjectMeta,
        tags: dict[str, str],
        *,
        checksum_of: bytes | None = None,
    ) -> ObjectInfo:
        target = f"{bucket}/{key}"
        if not self._bucket_exists(bucket):
            raise NotFound("no such bucket", provider=self.name, operation="put", target=bucket)
        expected = None if checksum_of is None else google_crc32c.value(checksum_of)
        with converted("put", target):
            written = self._write(bucket, key, stream, size, meta, tags, expected_crc=expected)
            self.counters.add("bytes_written", written)
            fd, st = self._open_file(bucket, key)
            os.close(fd)
        return self._info(bucket, key, st, None)

    def _delete(self, bucket: str, key: str) -> None:
        dirs, name = self._split(key)
        with converted("delete", f"{bucket}/{key}"):
            if not self._bucket_exists(bucket):
                raise NotFound("no such bucket", target=bucket)
            self._remove(bucket, dirs, name)
            self._remove(bucket, [META_DIR, *dirs], name)

    def _copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, meta: ObjectMeta | None) -> None:
        if (src_bucket, src_key) == (dst_bucket, dst_key) and meta is not None:
            # Onto itself with new metadata: only the metadata file changes, the data stays put.
            with converted("copy", f"{dst_bucket}/{dst_key}"):
                fd, _ = self._open_file(src_bucket, src_key)
                os.close(fd)
                _, tags = self._read_meta(src_bucket, src_key)
                self._write(dst_bucket, dst_key, None, None, meta, tags)
            return
        with converted("copy", f"{dst_bucket}/{dst_key}"):
            fd, st = self._open_file(src_bucket, src_key)
            source_meta, tags = self._read_meta(src_bucket, src_key)
            with os.fdopen(fd, "rb") as handle:
                self._put_stream(dst_bucket, dst_key, handle, st.st_size, meta or source_meta, tags)

    def _get_tags(self, bucket: str, key: str) -> dict[str, str]:
        with converted("get_tags", f"{bucket}/{key}"):
            fd, _ = self._open_file(bucket, key)
            os.close(fd)
            return self._read_meta(bucket, key)[1]

    def _put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        with converted("put_tags", f"{bucket}/{key}"):
            fd, _ = self._open_file(bucket, key)
            os.close(fd)
            meta, _ = self._read_meta(bucket, key)
            self._write(bucket, key, None, None, meta, tags)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


class _FileBody:
    def __init__(self, handle: Any, target: str) -> None:
        self._handle = handle
        self._target = target

    def read(self, size: int = -1, /) -> bytes:
        with converted("read", self._target):
            data: bytes = self._handle.read(size)
            return data

    def close(self) -> None:
        self._handle.close()
