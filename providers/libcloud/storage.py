"""The ``libcloud`` storage adapter: Google Cloud Storage, Azure Blobs, OpenStack Swift and the other
apache-libcloud storage drivers, behind the same ObjectStore interface.

libcloud's own types (Container, Object, ``extra`` dicts, per-driver argument names) stay inside this
module.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from importlib import resources
from typing import Any, Literal

from libcloud.storage.base import Container, StorageDriver
from libcloud.storage.base import Object as LibcloudObject
from libcloud.storage.providers import get_driver
from pydantic import BaseModel, ConfigDict

from failover.capabilities import Capability, KeyRewrite, StoreCapabilities, StoreLimits
from failover.config import ServiceSpec
from failover.errors import IntegrityError, InvalidRequest, NotFound
from failover.headermeta import decode_identifier, decode_value, encode_identifier, encode_value, http_date
from failover.settings import BucketSettings, HeldSettings, Setting, SettingOutcome
from failover.storage import ObjectStore, RawBody, Readable
from failover.types import BucketInfo, ByteRange, MetaField, ObjectInfo, ObjectMeta
from failover.yamlio import load_yaml

from .drivers import ThreadDrivers, connection_kwargs, profile_for
from .errors import converted
from .options import LibcloudStorageOptions
from .settings import SettingDialect, SettingRequest

__all__ = ["LibcloudStore"]

_CHUNK = 1024 * 1024


class DriverProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: Literal["host_port", "auth_url", "none"]
    region: bool = False
    operations: tuple[Capability, ...]
    metadata: tuple[MetaField, ...]
    omit_version_param: bool = False
    hash_after_send: bool = False
    download_name_unquoted: bool = False
    metadata_names: Literal["any", "identifier"] = "any"
    key_rewrites: dict[Capability, KeyRewrite] = {}
    settings: dict[Setting, SettingDialect] = {}
    settings_not_held: dict[Setting, str] = {}
    settings_implied: dict[Setting, str] = {}
    description: str = ""


class _DriverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_family: dict[str, Any]
    drivers: dict[str, DriverProfile]


@functools.cache
def driver_profiles() -> dict[str, DriverProfile]:
    text = resources.files(__package__).joinpath("drivers.yaml").read_text(encoding="utf-8")
    return _DriverFile.model_validate(load_yaml(text, "drivers.yaml").data).drivers


class _ChunkBody:
    """libcloud's chunk iterator as a ``read(n)`` body."""

    def __init__(self, chunks: Iterator[bytes], target: str) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._target = target

    def read(self, size: int = -1, /) -> bytes:
        with converted("read", self._target):
            while size < 0 or len(self._buffer) < size:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _chunks_of(stream: Readable, size: int | None) -> Iterator[bytes]:
    remaining = size
    while remaining is None or remaining > 0:
        chunk = stream.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


class _SentChunks:
    """The body of an upload as libcloud's iterator, counting what it hands over, and hashing it
    (MD5) only for drivers that need that hash (``hash_after_send``): the rest pay nothing for it."""

    def __init__(self, chunks: Iterator[bytes], size: int | None, target: str, *, hashed: bool) -> None:
        self._chunks = chunks
        self._size = size
        self._target = target
        self.sent = 0
        self.md5 = hashlib.md5(usedforsecurity=False) if hashed else None

    def __iter__(self) -> _SentChunks:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks, None)
        if chunk is None:
            if self._size is not None and self.sent != self._size:
                # Raised inside the upload, so libcloud aborts it and an existing object survives.
                raise IntegrityError(f"source gave {self.sent} of {self._size} bytes", target=self._target)
            raise StopIteration
        self.sent += len(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        return chunk


def _hash_what_was_sent(driver: StorageDriver) -> None:
    """libcloud hashes a streamed body after sending it, from the drained iterator (LIBCLOUD-935),
    then compares that MD5 of nothing with the server's ETag: every upload "mismatches". Give it
    the MD5 of the bytes that were sent instead, so its comparison with the ETag means something."""
    original: Callable[..., tuple[str, int]] = driver._hash_buffered_stream

    def hash_buffered_stream(stream: Any, hasher: Any, blocksize: int = 65536) -> tuple[str, int]:
        if isinstance(stream, _SentChunks) and stream.md5 is not None:
            return stream.md5.hexdigest(), stream.sent
        return original(stream, hasher, blocksize)

    driver._hash_buffered_stream = hash_buffered_stream  # type: ignore[method-assign]


def _prepare(profile: DriverProfile) -> Callable[[StorageDriver], None] | None:
    """The adjustments a new driver of ``profile`` needs (quirks declared in drivers.yaml)."""
    steps = [
        step
        for flag, step in (
            (profile.omit_version_param, _omit_version_param),
            (profile.hash_after_send, _hash_what_was_sent),
        )
        if flag
    ]
    if not steps:
        return None

    def prepare(driver: StorageDriver) -> None:
        for step in steps:
            step(driver)

    return prepare


def _omit_version_param(driver: StorageDriver) -> None:
    """Stop libcloud's SigV4 signer from adding ``Version=`` to GET requests (see drivers.yaml).
    Applied before signing, so the signature still covers exactly what is sent."""
    signer = getattr(driver.connection, "signer", None)
    original = getattr(signer, "get_request_params", None)
    if signer is None or original is None:
        return

    def get_request_params(params: dict[str, Any], method: str = "GET", path: str = "/") -> dict[str, Any]:
        params = original(params, method=method, path=path)
        params.pop("Version", None)
        return params

    signer.get_request_params = get_request_params


class LibcloudStore(ObjectStore):
    options_model = LibcloudStorageOptions

    def __init__(
        self,
        name: str,
        options: LibcloudStorageOptions,
        *,
        endpoint: str | None,
        region: str | None,
        key: str | None,
        secret: str | None,
    ) -> None:
        self.profile = self.profile_for(options, name)
        super().__init__(name, self.declared_capabilities(options))
        kwargs = connection_kwargs(
            endpoint, self.profile.endpoint, region=region, takes_region=self.profile.region, extra=options.driver_args
        )
        with converted("connect"):
            driver_class: Callable[..., StorageDriver] = get_driver(options.driver)
        self._drivers = ThreadDrivers(
            lambda: driver_class(key, secret, **kwargs),
            _prepare(self.profile),
        )
        self._driver  # noqa: B018 - build one now so bad arguments fail at construction

    @property
    def _driver(self) -> StorageDriver:
        return self._drivers.get()

    @staticmethod
    def profile_for(options: LibcloudStorageOptions, name: str = "") -> DriverProfile:
        return profile_for(driver_profiles(), options.driver, name, "storage")

    @classmethod
    def declared_capabilities(cls, options: LibcloudStorageOptions) -> StoreCapabilities:
        """What a store with these options declares (no connection is made)."""
        profile = cls.profile_for(options)
        return StoreCapabilities(
            operations=frozenset(profile.operations) - frozenset(options.without),
            metadata=frozenset(profile.metadata),
            limits=StoreLimits(max_key_segment_bytes=options.max_key_segment_bytes),
            # What the driver does to a key happens before the server sees it.
            key_rewrites={**options.key_rewrites, **profile.key_rewrites},
            settings=frozenset(profile.settings),
            settings_not_held=dict(profile.settings_not_held),
            settings_implied=dict(profile.settings_implied),
            settings_shared=frozenset(s for s, dialect in profile.settings.items() if dialect.shared),
        )

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> LibcloudStore:
        creds = spec.credentials()
        return cls(
            spec.provider,
            spec.options,
            endpoint=spec.endpoint,
            region=spec.region,
            key=creds.key,
            secret=creds.secret.reveal() if creds.secret else None,
        )

    def _name_written(self, name: str) -> str:
        return encode_identifier(name) if self.profile.metadata_names == "identifier" else name

    def _name_read(self, name: str) -> str:
        return decode_identifier(name).lower() if self.profile.metadata_names == "identifier" else name

    def _container(self, bucket: str) -> Container:
        return Container(name=bucket, extra={}, driver=self._driver)

    def _to_info(self, bucket: str, obj: LibcloudObject, *, with_meta: bool) -> ObjectInfo:
        extra = obj.extra or {}
        meta = None
        if with_meta:
            meta = ObjectMeta(
                content_type=extra.get("content_type"),
                content_encoding=extra.get("content_encoding"),
                content_language=extra.get("content_language"),
                user={self._name_read(name): decode_value(value) for name, value in (obj.meta_data or {}).items()},
            ).only(self.capabilities.metadata)
        modified = extra.get("last_modified")
        return ObjectInfo(
            bucket=bucket,
            key=obj.name,
            size=int(obj.size or 0),
            etag=(obj.hash or extra.get("etag") or "").strip('"') or None,
            last_modified=http_date(modified) if isinstance(modified, str) else None,
            meta=meta,
        )

    # -- buckets -----------------------------------------------------------------------------------

    def _list_buckets(self) -> list[BucketInfo]:
        with converted("list_buckets"):
            return [BucketInfo(c.name) for c in self._driver.iterate_containers()]

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            with converted("bucket_exists", bucket):
                self._driver.get_container(bucket)
        except NotFound:
            return False
        return True

    def _create_bucket(self, bucket: str) -> None:
        if self._bucket_exists(bucket):
            return
        with converted("create_bucket", bucket):
            self._driver.create_container(bucket)

    def _delete_bucket(self, bucket: str) -> None:
        with converted("delete_bucket", bucket):
            self._driver.delete_container(self._container(bucket))

    # -- objects -----------------------------------------------------------------------------------

    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        # libcloud has no start-after: resume by skipping what was already seen.
        with converted("list_objects", bucket):
            if not self._bucket_exists(bucket):
                raise NotFound("no such bucket", target=bucket)
            for obj in self._driver.iterate_container_objects(self._container(bucket), prefix=prefix or None):
                if start_after is not None and obj.name <= start_after:
                    continue
                yield self._to_info(bucket, obj, with_meta=False)

    def _get(self, bucket: str, key: str) -> LibcloudObject:
        with converted("head", f"{bucket}/{key}"):
            return self._driver.get_object(bucket, key)

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        return self._to_info(bucket, self._get(bucket, key), with_meta=True)

    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        target = f"{bucket}/{key}"
        obj = self._get(bucket, key)
        info = self._to_info(bucket, obj, with_meta=True)
        if self.profile.download_name_unquoted:
            obj = copy.copy(obj)
            obj.name = urllib.parse.quote(obj.name)  # the driver puts it into the path as it is
        with converted("open", target):
            if byte_range is None:
                return info, _ChunkBody(iter(self._driver.download_object_as_stream(obj, _CHUNK)), target), 0, info.size
            if byte_range.start >= info.size and info.size > 0:
                raise InvalidRequest("range starts past the end of the object", target=target)
            end = info.size - 1 if byte_range.end is None else min(byte_range.end, info.size - 1)
            length = max(end - byte_range.start + 1, 0)
            if length == 0:
                return info, _ChunkBody(iter(()), target), byte_range.start, 0
            chunks = self._driver.download_object_range_as_stream(obj, byte_range.start, end + 1, _CHUNK)
            return info, _ChunkBody(iter(chunks), target), byte_range.start, length

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
        extra: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if meta.content_type:
            extra["content_type"] = meta.content_type
        if meta.content_encoding:
            headers["Content-Encoding"] = meta.content_encoding
        if meta.content_language and MetaField.CONTENT_LANGUAGE in self.capabilities.metadata:
            headers["Content-Language"] = meta.content_language
        if meta.user:
            extra["meta_data"] = {self._name_written(name): encode_value(value) for name, value in meta.user.items()}
        body = _SentChunks(_chunks_of(stream, size), size, f"{bucket}/{key}", hashed=self.profile.hash_after_send)
        with converted("put", f"{bucket}/{key}"):
            obj = self._driver.upload_object_via_stream(
                body, self._container(bucket), key, extra=extra, headers=headers
            )
        written = body.sent
        self.counters.add("bytes_written", written)
        return ObjectInfo(bucket=bucket, key=key, size=written, etag=(obj.hash or "").strip('"') or None)

    # -- bucket settings (as data: drivers.yaml) ----------------------------------------------------

    def _setting_request(
        self,
        bucket: str,
        request: SettingRequest,
        *,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
    ) -> Any:
        """One request on the driver's connection (libcloud signs it); its response."""
        connection: Any = self._driver.connection
        sent = {**request.headers, **(headers or {})}
        if body is not None:
            sent["Content-Length"] = str(len(body.encode()))  # signed (Azure's Shared Key): set it first
        with converted("bucket_settings" if request.method in ("GET", "HEAD") else "put_bucket_settings", bucket):
            return connection.request(
                request.path.format(bucket=urllib.parse.quote(bucket, safe="")),
                params=dict(request.params),
                headers=sent,
                data=body,
                method=request.method,
            )

    def _bucket_settings(self, bucket: str) -> BucketSettings:
        if not self._bucket_exists(bucket):
            raise NotFound("no such bucket", target=bucket)
        replies: dict[str, Any] = {}

        def read_once(
            bucket: str, request: SettingRequest, *, headers: Mapping[str, str] | None = None, body: str | None = None
        ) -> Any:
            # Several settings live in one reply (Swift's container HEAD): ask for it once.
            key = request.model_dump_json()
            if key not in replies:
                replies[key] = self._setting_request(bucket, request, headers=headers, body=body)
            return replies[key]

        found: dict[str, Any] = {
            s.value: dialect.read(read_once, bucket) for s, dialect in self.profile.settings.items()
        }
        return BucketSettings(**found)

    def _put_bucket_settings(self, bucket: str, settings: BucketSettings, which: frozenset[Setting]) -> None:
        for setting, dialect in self.profile.settings.items():
            if setting in which:
                dialect.write(self._setting_request, bucket, getattr(settings, setting.value))

    def _settings_as_held(self, bucket: str, settings: BucketSettings) -> HeldSettings:
        held: dict[str, Any] = {}
        outcomes: list[SettingOutcome] = []
        for setting, dialect in self.profile.settings.items():
            if setting in settings.present():
                value, notes = dialect.as_held(
                    self._setting_request, bucket, setting.value, getattr(settings, setting.value)
                )
                held[setting.value] = value
                outcomes.extend(notes)
        return HeldSettings(replace(settings, **held), tuple(outcomes))

    def _delete(self, bucket: str, key: str) -> None:
        with converted("delete", f"{bucket}/{key}"):
            obj = LibcloudObject(key, 0, "", {}, {}, self._container(bucket), self._driver)
            self._driver.delete_object(obj)
