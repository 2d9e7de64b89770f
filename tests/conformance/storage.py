"""The ObjectStore conformance suite, written once and run against every storage provider.

A provider test file subclasses :class:`ObjectStoreConformance` and names a provider of the lab's
providers file. Every test talks to the real server behind it.

Skips happen only on a store's *declaration* (a capability, a metadata field or a key limit it does
not claim); their reasons start with ``declared:`` and the session summary counts them apart. Real
divergences from the contract are listed in ``divergences.yaml`` beside this file, with the reason,
and run as strict xfails.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import os
import posixpath
import re
import tracemalloc
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from failover.capabilities import KEY_SHAPES, Capability, KeyRewrite, key_shapes
from failover.config import Providers
from failover.connect import open_store
from failover.errors import IntegrityError, InvalidRequest, NotFound, NotSupported, ProviderError
from failover.settings import BucketSettings, Setting, differences
from failover.storage import ObjectStore
from failover.types import ByteRange, MetaField, ObjectMeta

from .declared import declared
from .divergences import divergence_for

MIB = 1024 * 1024

# (test id, key suffix). Each is written under the test's own prefix unless noted in the test.
TRICKY_KEYS = [
    ("unicode-nfc", unicodedata.normalize("NFC", "café/naïve-ümlaut-日本語.txt")),
    ("unicode-nfd", unicodedata.normalize("NFD", "café/naïve-ümlaut-日本語.txt")),
    ("emoji", "📦/🚀 launch.bin"),
    ("spaces", "with some  spaces /and a trailing space "),
    ("plus", "a+b+c.txt"),
    ("percent", "100% done %2F not-a-slash %25.txt"),
    ("reserved-chars", "~!$&'()*,;=:@[]{}^`|\"<>#?.txt"),
    ("double-slash", "a//b///c"),
    ("trailing-slash", "folder/"),
    ("dot-segments", "a/./b/../c/.../d"),
    ("backslash", "reports\\2024\\q1.csv"),
    ("tab-and-newline", "tab\there/line\nfeed"),
    ("control-cr", "carriage\rreturn"),
    ("control-0x01", "start\x01of-heading"),
    ("long-segmented-1024", "<1024 bytes in segments of 200>"),
    ("long-single-segment-1024", "<1024 bytes in one segment>"),
]


def build_key(prefix: str, suffix: str) -> str:
    """The full key for a TRICKY_KEYS entry; the long ones are exactly 1,024 UTF-8 bytes."""
    if suffix == "<1024 bytes in segments of 200>":
        filler = "/".join(["s" * 199] * 6)
        return (prefix + filler)[:1024]
    if suffix == "<1024 bytes in one segment>":
        return prefix + "x" * (1024 - len(prefix.encode()))
    return prefix + suffix


def _probe_raw_key(store: ObjectStore, bucket: str, prefix: str, key: str) -> tuple[str, list[str], bytes | None]:
    """Write ``key`` past the interface's checks and see what the store made of it: ("faithful" |
    "refused" | "unlistable" | "renamed" | "emptied", what the listing shows, what reading it gives)."""
    try:
        raw_put(store, bucket, key, b"written raw")
    except ProviderError:
        return "refused", [], None
    try:
        body: bytes | None = store._attempt("open", lambda: store._open(bucket, key, None))[1].read()
    except ProviderError:
        body = None
    try:
        listed = [info.key for info in store.list_objects(bucket, prefix)]
    except ProviderError:
        return "unlistable", [], body
    finally:
        with contextlib.suppress(ProviderError):
            store._delete(bucket, key)
    for other in listed:
        with contextlib.suppress(ProviderError):
            store._delete(bucket, other)
    if key in listed:
        return ("faithful" if body == b"written raw" else "emptied"), listed, body
    return "renamed", listed, body


def raw_put(store: ObjectStore, bucket: str, key: str, data: bytes) -> None:
    """Write past the interface's checks, through the adapter's own hook (to probe the server)."""
    if Capability.MULTIPART in store.capabilities:
        store._put_bytes(bucket, key, data, ObjectMeta(), {})
    else:
        store._put_stream(bucket, key, io.BytesIO(data), len(data), ObjectMeta(), {})


def declared_key(store: ObjectStore, key: str) -> None:
    for shape in key_shapes(key):
        declared(store, shape)
    limit = store.capabilities.limits.max_key_segment_bytes
    if limit is not None and any(len(s.encode()) > limit for s in key.split("/")):
        pytest.skip(f"declared: {store.name} limits key segments to {limit} bytes")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Stream(io.RawIOBase):
    """``size`` pseudo-random bytes produced on demand, never held whole (for the memory test)."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.digest = hashlib.sha256()
        self._block = os.urandom(MIB)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size < 0 else min(size, self.remaining)
        chunks = []
        while want > 0:
            piece = self._block[: min(want, len(self._block))]
            chunks.append(piece)
            want -= len(piece)
        data = b"".join(chunks)
        self.remaining -= len(data)
        self.digest.update(data)
        return data


class ObjectStoreConformance:
    """Mix in, and set ``provider`` to a name in the lab's providers file."""

    provider: ClassVar[str]
    option_overrides: ClassVar[dict[str, object]] = {}
    """Adapter options to change from the providers file (to run the suite on another code path)."""

    # -- fixtures ----------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def store(cls, lab_providers: Providers) -> Iterator[ObjectStore]:
        store = open_store(lab_providers, cls.provider, option_overrides=cls.option_overrides)
        # Small parts, so part boundaries are cheap to reach.
        store.part_size = store.capabilities.limits.min_part_size
        store.multipart_threshold = store.part_size
        yield store
        store.close()

    @pytest.fixture(scope="class")
    @classmethod
    def bucket(cls, store: ObjectStore) -> Iterator[str]:
        name = f"conf-{uuid.uuid4().hex[:12]}"
        store.create_bucket(name)
        yield name
        for key in [info.key for info in store.list_objects(name)]:
            store.delete(name, key)
        if Capability.MULTIPART in store.capabilities:
            for upload in store.list_uploads(name):
                store.abort_upload(name, upload.key, upload.upload_id)
        if Capability.DELETE_BUCKET in store.capabilities:
            store.delete_bucket(name)

    @pytest.fixture
    def prefix(self, request: pytest.FixtureRequest) -> str:
        return f"{request.node.originalname}-{uuid.uuid4().hex[:8]}/"

    @pytest.fixture(autouse=True)
    def _known_divergence(self, request: pytest.FixtureRequest, store: ObjectStore) -> None:
        reason = divergence_for(self.provider, request.node.name)
        if reason:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"known divergence: {reason}"))

    # -- buckets -----------------------------------------------------------------------------------

    def test_bucket_exists_and_is_listed(self, store: ObjectStore, bucket: str) -> None:
        assert store.bucket_exists(bucket)
        assert bucket in [b.name for b in store.list_buckets()]
        assert not store.bucket_exists(f"conf-missing-{uuid.uuid4().hex[:10]}")

    def test_create_bucket_is_idempotent(self, store: ObjectStore, bucket: str) -> None:
        declared(store, Capability.CREATE_BUCKET)
        store.create_bucket(bucket)
        assert store.bucket_exists(bucket)

    def test_create_and_delete_bucket(self, store: ObjectStore) -> None:
        declared(store, Capability.CREATE_BUCKET, Capability.DELETE_BUCKET)
        name = f"conf-tmp-{uuid.uuid4().hex[:10]}"
        store.create_bucket(name)
        assert store.bucket_exists(name)
        store.delete_bucket(name)
        assert not store.bucket_exists(name)
        store.delete_bucket(name)  # idempotent

    def test_invalid_bucket_name_is_refused_before_sending(self, store: ObjectStore) -> None:
        declared(store, Capability.CREATE_BUCKET)
        with pytest.raises(InvalidRequest):
            store.create_bucket("Invalid_Bucket_Name")

    # -- keys --------------------------------------------------------------------------------------

    @pytest.mark.parametrize(("label", "suffix"), TRICKY_KEYS, ids=[k[0] for k in TRICKY_KEYS])
    def test_tricky_key_round_trip(self, store: ObjectStore, bucket: str, prefix: str, label: str, suffix: str) -> None:
        key = build_key(prefix, suffix)
        declared_key(store, key)
        body = f"body of {label}".encode()
        store.put(bucket, key, body)
        assert store.get_bytes(bucket, key) == body
        assert store.head(bucket, key).size == len(body)
        listed = [info.key for info in store.list_objects(bucket, prefix)]
        assert listed == [key], "the key must list exactly as written (no normalisation)"
        store.delete(bucket, key)
        with pytest.raises(NotFound):
            store.head(bucket, key)

    @pytest.mark.parametrize("shape", KEY_SHAPES, ids=[shape.value for shape in KEY_SHAPES])
    def test_undeclared_key_shapes_are_rewritten_as_declared(
        self, store: ObjectStore, bucket: str, prefix: str, shape: Capability
    ) -> None:
        """Keys of a shape the store does not declare, written past the adapter's own refusal: the
        store must do with them what its declaration says (``key_rewrites``), at least one of them
        must show it (or the shape is to be declared), and none may be treated otherwise. This is
        what makes the declarations true."""
        if shape in store.capabilities:
            pytest.skip(f"declared: {store.name} declares {shape.value}")
        rewrite = store.capabilities.key_rewrites.get(shape)
        outcomes = {}
        for label, suffix in TRICKY_KEYS:
            key = build_key(prefix + label + "/", suffix)
            if key_shapes(key) != [shape]:
                continue
            with pytest.raises(NotSupported):
                store.put(bucket, key, b"refused before sending")
            outcomes[label] = _probe_raw_key(store, bucket, prefix + label + "/", key)
        assert outcomes, f"no tricky key has the shape {shape.value}"
        unfaithful = {label: found for label, found in outcomes.items() if found[0] != "faithful"}
        assert unfaithful, f"the store holds every {shape.value} key as given: declare {shape.value}"
        for label, (kind, listed, body) in unfaithful.items():
            where = f"{label}: {kind}, listed {listed}, read {body!r}"
            assert rewrite is not None, f"{shape.value} keys are not held as given ({where}); declare what happens"
            if rewrite is KeyRewrite.REFUSED:
                assert kind == "refused", where
            elif rewrite is KeyRewrite.UNLISTABLE:
                assert kind in ("unlistable", "renamed"), where
            elif rewrite is KeyRewrite.DIRECTORY:
                assert kind in ("renamed", "emptied"), where
            else:
                assert kind == "renamed", where
                rewritten = {
                    KeyRewrite.COLLAPSED: lambda k: re.sub("/{2,}", "/", k).lstrip("/"),
                    KeyRewrite.RESOLVED: posixpath.normpath,
                    KeyRewrite.SLASH: lambda k: k.replace("\\", "/"),
                }[rewrite]
                original = build_key(prefix + label + "/", dict(TRICKY_KEYS)[label])
                assert listed == [rewritten(original)], where

    def test_nfc_and_nfd_keys_are_distinct(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        nfc = prefix + unicodedata.normalize("NFC", "é")
        nfd = prefix + unicodedata.normalize("NFD", "é")
        assert nfc != nfd
        store.put(bucket, nfc, b"nfc")
        store.put(bucket, nfd, b"nfd")
        assert store.get_bytes(bucket, nfc) == b"nfc"
        assert store.get_bytes(bucket, nfd) == b"nfd"
        assert sorted(i.key for i in store.list_objects(bucket, prefix)) == sorted([nfc, nfd])

    def test_leading_slash_key(self, store: ObjectStore, bucket: str) -> None:
        key = f"/conf-leading-{uuid.uuid4().hex[:8]}"
        declared_key(store, key)
        store.put(bucket, key, b"leading")
        try:
            assert store.get_bytes(bucket, key) == b"leading"
            assert [i.key for i in store.list_objects(bucket, key)] == [key]
        finally:
            store.delete(bucket, key)

    def test_key_longer_than_declared_limit_is_refused(self, store: ObjectStore, bucket: str) -> None:
        too_long = "k" * (store.capabilities.limits.max_key_bytes + 1)
        with pytest.raises(InvalidRequest):
            store.put(bucket, too_long, b"x")

    def test_key_that_is_also_a_prefix(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.KEY_IS_PREFIX)
        store.put(bucket, prefix + "a", b"file")
        store.put(bucket, prefix + "a/b", b"nested")
        assert store.get_bytes(bucket, prefix + "a") == b"file"
        assert store.get_bytes(bucket, prefix + "a/b") == b"nested"
        assert [i.key for i in store.list_objects(bucket, prefix)] == [prefix + "a", prefix + "a/b"]

    # -- sizes -------------------------------------------------------------------------------------

    def test_zero_byte_object(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        store.put(bucket, prefix + "empty", b"")
        assert store.head(bucket, prefix + "empty").size == 0
        assert store.get_bytes(bucket, prefix + "empty") == b""
        assert [(i.key, i.size) for i in store.list_objects(bucket, prefix)] == [(prefix + "empty", 0)]

    @pytest.mark.parametrize("delta", [-1, 0, 1], ids=["part-minus-1", "part-exact", "part-plus-1"])
    def test_sizes_at_part_boundary(self, store: ObjectStore, bucket: str, prefix: str, delta: int) -> None:
        size = store.part_size + delta
        data = os.urandom(size)
        store.put(bucket, prefix + "obj", io.BytesIO(data), size=size)
        assert store.head(bucket, prefix + "obj").size == size
        assert sha(store.get_bytes(bucket, prefix + "obj")) == sha(data)

    def test_two_parts_plus_one_from_unsized_stream(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        size = 2 * store.part_size + 1
        data = os.urandom(size)
        store.put(bucket, prefix + "obj", io.BytesIO(data))  # size unknown: detected while streaming
        assert sha(store.get_bytes(bucket, prefix + "obj")) == sha(data)

    def test_streamed_write_never_holds_the_whole_object(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        size = 48 * MIB
        source = _Stream(size)
        tracemalloc.start()
        try:
            store.put(bucket, prefix + "big", source, size=size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < size / 2, f"peak {peak / MIB:.1f} MiB while writing a {size / MIB:.0f} MiB object"
        digest = hashlib.sha256()
        with store.open(bucket, prefix + "big") as reader:
            for chunk in reader.iter_chunks():
                digest.update(chunk)
        assert digest.hexdigest() == source.digest.hexdigest()

    def test_short_source_is_an_error_and_writes_nothing(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        from failover.errors import IntegrityError

        store.put(bucket, prefix + "keep", b"original")
        with pytest.raises(IntegrityError):
            store.put(bucket, prefix + "keep", io.BytesIO(b"short"), size=store.part_size * 2)
        assert store.get_bytes(bucket, prefix + "keep") == b"original"

    # -- metadata ----------------------------------------------------------------------------------

    META_CASES: ClassVar[list[tuple[MetaField, ObjectMeta]]] = [
        (MetaField.CONTENT_TYPE, ObjectMeta(content_type="text/x-failover; charset=utf-8")),
        (MetaField.CACHE_CONTROL, ObjectMeta(cache_control="public, max-age=31536000, immutable")),
        (MetaField.CONTENT_DISPOSITION, ObjectMeta(content_disposition='attachment; filename="report 2024.pdf"')),
        (MetaField.CONTENT_ENCODING, ObjectMeta(content_encoding="gzip")),
        (MetaField.CONTENT_LANGUAGE, ObjectMeta(content_language="de-CH")),
        (MetaField.EXPIRES, ObjectMeta(expires=datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC))),
        (MetaField.WEBSITE_REDIRECT_LOCATION, ObjectMeta(website_redirect_location="/moved/elsewhere.html")),
        (MetaField.USER, ObjectMeta(user={"owner": "ops-team", "sha256": "0" * 64, "Mixed-Case": "Value With Spaces"})),
    ]

    @pytest.mark.parametrize(("field", "meta"), META_CASES, ids=[c[0].value for c in META_CASES])
    @pytest.mark.parametrize("size_kind", ["single", "multipart"])
    def test_metadata_round_trip(
        self, store: ObjectStore, bucket: str, prefix: str, field: MetaField, meta: ObjectMeta, size_kind: str
    ) -> None:
        if field not in store.capabilities.metadata:
            pytest.skip(f"declared: {store.name} does not declare metadata field {field.value}")
        size = 10 if size_kind == "single" else store.part_size + 1
        store.put(bucket, prefix + "obj", os.urandom(size), meta=meta)
        got = store.head(bucket, prefix + "obj").meta
        assert got is not None
        if field is MetaField.USER:
            assert dict(got.user) == dict(meta.user)  # names fold to lower case everywhere
        else:
            assert getattr(got, field.value) == getattr(meta, field.value)
        with store.open(bucket, prefix + "obj") as reader:  # a GET carries the same metadata
            assert reader.info.meta is not None
            assert getattr(reader.info.meta, field.value) == getattr(got, field.value)

    USER_VALUES: ClassVar[list[tuple[str, str]]] = [
        ("non-ascii", "Zürich — 東京"),
        ("surrounding-spaces", "  padded  "),
        ("looks-encoded", "=?not really?="),
        ("empty", ""),
    ]

    @pytest.mark.parametrize(("label", "value"), USER_VALUES, ids=[v[0] for v in USER_VALUES])
    def test_user_metadata_values(self, store: ObjectStore, bucket: str, prefix: str, label: str, value: str) -> None:
        if MetaField.USER not in store.capabilities.metadata:
            pytest.skip(f"declared: {store.name} does not declare metadata field user")
        store.put(bucket, prefix + "obj", b"x", meta=ObjectMeta(user={"probe": value, "other": "plain"}))
        meta = store.head(bucket, prefix + "obj").meta
        assert meta is not None
        assert dict(meta.user) == {"probe": value, "other": "plain"}

    # -- bucket settings ---------------------------------------------------------------------------

    SETTINGS: ClassVar[BucketSettings] = BucketSettings(
        public_read=True,
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "List",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::{b}",
                }
            ],
        },
        cors=({"AllowedOrigins": ["https://social.example"], "AllowedMethods": ["GET", "HEAD"], "MaxAgeSeconds": 300},),
        lifecycle=({"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 7}},),
        versioning=True,
        website={"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "404.html"}},
        encryption={"SSEAlgorithm": "AES256"},
        tags={"team": "media", "cost-centre": "42", "Owner Name/EU": "ops@social.example"},
    )

    @pytest.mark.parametrize("setting", list(Setting), ids=[s.value for s in Setting])
    def test_declared_bucket_settings_are_held_and_read_back(self, store: ObjectStore, setting: Setting) -> None:
        if setting not in store.capabilities.settings:
            pytest.skip(f"declared: {store.name} does not declare bucket setting {setting.value}")
        declared(store, Capability.CREATE_BUCKET)
        bucket = f"conf-settings-{uuid.uuid4().hex[:8]}"
        store.create_bucket(bucket)
        try:
            wanted = replace(
                self.SETTINGS,
                policy={
                    **self.SETTINGS.policy,
                    "Statement": [{**self.SETTINGS.policy["Statement"][0], "Resource": f"arn:aws:s3:::{bucket}"}],
                },  # type: ignore[index, dict-item]
            )
            which = frozenset({setting})
            # AWS (and LocalStack) encrypt every new bucket with keys they manage: that reads as set.
            default_on = setting is Setting.ENCRYPTION
            # A setting kept for more than this bucket (Azure's account-wide CORS) may be set already:
            # the account's own is put back at the end.
            shared = setting in store.capabilities.settings_shared
            before = store.bucket_settings(bucket)
            if not default_on and not shared:
                assert before.present() & which == frozenset(), "a new bucket has it unset"
            # In the store's own terms (Swift's one CORS origin list...): what it reads back.
            held = store.settings_as_held(bucket, wanted.only(which))
            assert setting in held.settings.present(), (
                f"the suite's {setting.value} is one it can hold: {held.outcomes}"
            )
            assert all(o.setting == setting.value for o in held.outcomes), held.outcomes
            store.put_bucket_settings(bucket, held.settings, which)
            assert differences(held.settings, store.bucket_settings(bucket), [setting]) == [], "read back as written"
            again = store.settings_as_held(bucket, wanted.only(which))
            assert differences(held.settings, again.settings, [setting]) == [], "translating it again adds nothing"
            if setting is not Setting.VERSIONING and not default_on:  # versioning is never switched off
                store.put_bucket_settings(bucket, BucketSettings(), which)
                assert setting not in store.bucket_settings(bucket).present(), "removed again"
        finally:
            if shared:
                store.put_bucket_settings(bucket, before, which)
            if Capability.DELETE_BUCKET in store.capabilities:
                if not shared:
                    store.put_bucket_settings(bucket, BucketSettings(), which - {Setting.VERSIONING})
                store.delete_bucket(bucket)

    def test_object_acls_make_one_object_public(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.OBJECT_ACLS)
        store.put(bucket, prefix + "public", b"for everyone")
        store.put(bucket, prefix + "private", b"for us")
        assert store.object_public(bucket, prefix + "public") is False, "a new object is private"
        store.make_object_public(bucket, prefix + "public")
        assert store.object_public(bucket, prefix + "public") is True
        assert store.object_public(bucket, prefix + "private") is False, "only that one"
        with pytest.raises(NotFound):
            store.object_public(bucket, prefix + "missing")

    def test_bucket_settings_of_a_missing_bucket(self, store: ObjectStore) -> None:
        if not store.capabilities.settings:
            pytest.skip(f"declared: {store.name} declares no bucket settings")
        with pytest.raises(NotFound):
            store.bucket_settings(f"conf-missing-{uuid.uuid4().hex[:8]}")

    # -- listing -----------------------------------------------------------------------------------

    def test_pagination_past_1000_keys(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        keys = [f"{prefix}{i:05d}" for i in range(1005)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: store.put(bucket, k, k.encode()), keys))
        listed = [info.key for info in store.list_objects(bucket, prefix)]
        assert listed == keys
        assert [i.key for i in store.list_objects(bucket, prefix, start_after=keys[999])] == keys[1000:]
        assert sum(1 for _ in store.list_objects(bucket, prefix + "0010")) == 10  # 00100-00109

    def test_listing_order_and_prefix_filter(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        # "!" and "-" sort below "/": S3 order puts "a!" and "a-b" before "a/z".
        keys = ["b", "a/z", "a!", "a-b", "a0", "ab", "A"]
        for key in keys:
            store.put(bucket, prefix + key, b"x")
        listed = [i.key for i in store.list_objects(bucket, prefix)]
        in_a = [i.key for i in store.list_objects(bucket, prefix + "a")]
        if Capability.SORTED_LISTING in store.capabilities:
            assert listed == sorted(prefix + k for k in keys)
            assert in_a == sorted(prefix + k for k in keys if k.startswith("a"))
        else:  # every key exactly once, in the store's own order
            assert sorted(listed) == sorted(prefix + k for k in keys)
            assert len(set(listed)) == len(listed)
            assert sorted(in_a) == sorted(prefix + k for k in keys if k.startswith("a"))
        assert [i.key for i in store.list_objects(bucket, prefix + "a/")] == [prefix + "a/z"]
        assert list(store.list_objects(bucket, prefix + "nothing-here")) == []

    def test_listing_resumes_after_a_key(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        keys = [prefix + k for k in ("a!", "a-b", "a/z", "a0", "b")]
        for key in keys:
            store.put(bucket, key, b"x")
        order = [i.key for i in store.list_objects(bucket, prefix)]
        for index, key in enumerate(order):
            assert [i.key for i in store.list_objects(bucket, prefix, start_after=key)] == order[index + 1 :]

    def test_second_listing_agrees_with_the_first(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.SECOND_LISTING)
        keys = [f"{prefix}{name}" for name in ("a", "a!", "a-b", "a/z", "b", "été/1", "日本/2", "z z")]
        keys += [f"{prefix}many/{i:04d}" for i in range(1010)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: store.put(bucket, k, b"x"), keys))
        first = [i.key for i in store.list_objects(bucket, prefix)]
        second = [i.key for i in store.list_objects_second_way(bucket, prefix)]
        assert sorted(first) == sorted(keys)
        assert second == first, "both mechanisms list every key, in the same order"
        middle = first[len(first) // 2]
        assert [i.key for i in store.list_objects_second_way(bucket, prefix, start_after=middle)] == first[
            len(first) // 2 + 1 :
        ]

    def test_listing_end_is_confirmed(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        """The confirmation hook agrees with the listing: nothing after the last key, and the key
        after any other."""
        keys = [prefix + k for k in ("a", "b", "c/d", "é")]
        for key in keys:
            store.put(bucket, key, b"x")
        order = [i.key for i in store.list_objects(bucket, prefix)]
        second = Capability.SECOND_LISTING in store.capabilities
        for way in {False, second}:
            assert store._first_after(bucket, prefix, order[-1], second_way=way) is None
            assert store._first_after(bucket, prefix, None, second_way=way) == order[0]
            assert store._first_after(bucket, prefix, order[1], second_way=way) == order[2]
        assert store.counters.listings_ended_early == 0

    def test_listing_reports_sizes(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        store.put(bucket, prefix + "three", b"abc")
        (info,) = store.list_objects(bucket, prefix)
        assert (info.key, info.size, info.bucket) == (prefix + "three", 3, bucket)

    # -- reads -------------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("start", "end"),
        [(0, 0), (0, 9), (5, 5), (100, 199), (999, 999), (990, None), (500, 5000)],
        ids=["first-byte", "first-ten", "one-middle", "middle", "last-byte", "open-ended", "past-end-clipped"],
    )
    def test_range_read(self, store: ObjectStore, bucket: str, prefix: str, start: int, end: int | None) -> None:
        declared(store, Capability.RANGE_READ)
        data = os.urandom(1000)
        store.put(bucket, prefix + "ranged", data)
        expected = data[start : (None if end is None else end + 1)]
        assert store.get_bytes(bucket, prefix + "ranged", ByteRange(start, end)) == expected

    def test_range_starting_past_the_end_is_refused(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.RANGE_READ)
        store.put(bucket, prefix + "ranged", b"0123456789")
        with pytest.raises(InvalidRequest):
            store.get_bytes(bucket, prefix + "ranged", ByteRange(50, 60))

    def test_streamed_read_in_small_chunks(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        data = os.urandom(3 * MIB + 17)
        store.put(bucket, prefix + "obj", data)
        with store.open(bucket, prefix + "obj") as reader:
            assert reader.info.size == len(data)
            chunks = list(reader.iter_chunks(65536))
        assert max(len(c) for c in chunks) <= 65536
        assert b"".join(chunks) == data

    # -- writes ------------------------------------------------------------------------------------

    def test_verified_writes_refuse_a_body_that_does_not_match(
        self, store: ObjectStore, bucket: str, prefix: str
    ) -> None:
        """VERIFIED_WRITES: the store checks each body against the checksum sent with it; a body
        that is not the one the checksum was computed for is refused and nothing is stored."""
        declared(store, Capability.VERIFIED_WRITES)
        key = prefix + "checked"

        def write_mismatched() -> None:
            if Capability.MULTIPART in store.capabilities:
                store._put_bytes(bucket, key, b"what arrived", ObjectMeta(), {}, checksum_of=b"what was meant")
            else:
                body = io.BytesIO(b"what arrived")
                store._put_stream(bucket, key, body, 12, ObjectMeta(), {}, checksum_of=b"what was meant")

        with pytest.raises(IntegrityError):
            write_mismatched()
        with pytest.raises(NotFound):
            store.head(bucket, key)

    # -- not found ---------------------------------------------------------------------------------

    def test_missing_object(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        with pytest.raises(NotFound):
            store.head(bucket, prefix + "missing")
        with pytest.raises(NotFound):
            store.open(bucket, prefix + "missing")
        store.delete(bucket, prefix + "missing")  # idempotent, no error

    def test_missing_bucket(self, store: ObjectStore) -> None:
        missing = f"conf-missing-{uuid.uuid4().hex[:10]}"
        with pytest.raises(NotFound):
            list(store.list_objects(missing))
        with pytest.raises(NotFound):
            store.head(missing, "key")
        with pytest.raises(NotFound):
            store.open(missing, "key")

    def test_overwrite_replaces_body_and_metadata(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        store.put(bucket, prefix + "obj", b"first", meta=ObjectMeta(user={"v": "1"}))
        store.put(bucket, prefix + "obj", b"second!", meta=ObjectMeta(user={"v": "2"}))
        assert store.get_bytes(bucket, prefix + "obj") == b"second!"
        if MetaField.USER in store.capabilities.metadata:
            meta = store.head(bucket, prefix + "obj").meta
            assert meta is not None
            assert dict(meta.user) == {"v": "2"}

    # -- optional operations -----------------------------------------------------------------------

    def test_server_side_copy_keeps_metadata(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.SERVER_SIDE_COPY)
        meta = ObjectMeta(content_type="image/png", cache_control="no-cache", user={"origin": "test"})
        data = os.urandom(store.part_size + 3)
        store.put(bucket, prefix + "src", data, meta=meta)
        store.copy(bucket, prefix + "src", bucket, prefix + "dst")
        assert store.get_bytes(bucket, prefix + "dst") == data
        copied = store.head(bucket, prefix + "dst").meta
        assert copied is not None
        assert copied.only(store.capabilities.metadata & meta.present()) == meta.only(store.capabilities.metadata)

    def test_server_side_copy_replacing_metadata(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.SERVER_SIDE_COPY)
        store.put(bucket, prefix + "src", b"data", meta=ObjectMeta(user={"a": "1"}))
        store.copy(bucket, prefix + "src", bucket, prefix + "dst", meta=ObjectMeta(user={"b": "2"}))
        copied = store.head(bucket, prefix + "dst").meta
        assert copied is not None
        assert dict(copied.user) == {"b": "2"}

    def test_tags(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.TAGS)
        store.put(bucket, prefix + "obj", b"x", tags={"team": "ops", "tier": "gold plated"})
        assert store.get_tags(bucket, prefix + "obj") == {"team": "ops", "tier": "gold plated"}
        store.put_tags(bucket, prefix + "obj", {"team": "dev"})
        assert store.get_tags(bucket, prefix + "obj") == {"team": "dev"}

    def test_multipart_upload_api(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.MULTIPART)
        key = prefix + "parts"
        upload = store.start_upload(bucket, key, meta=ObjectMeta(user={"kind": "parts"}))
        first, second = os.urandom(store.part_size), os.urandom(1234)
        assert any(u.upload_id == upload for u in store.list_uploads(bucket, prefix))
        p2 = store.upload_part(bucket, key, upload, 2, second)
        p1 = store.upload_part(bucket, key, upload, 1, first)
        assert [p.number for p in store.list_parts(bucket, key, upload)] == [1, 2]
        store.complete_upload(bucket, key, upload, [p2, p1])
        assert store.get_bytes(bucket, key) == first + second
        meta = store.head(bucket, key).meta
        assert meta is not None
        assert meta.user.get("kind") == "parts"
        assert not any(u.upload_id == upload for u in store.list_uploads(bucket, prefix))

    def test_multipart_abort_leaves_nothing(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        declared(store, Capability.MULTIPART)
        key = prefix + "aborted"
        upload = store.start_upload(bucket, key)
        store.upload_part(bucket, key, upload, 1, os.urandom(store.part_size))
        store.abort_upload(bucket, key, upload)
        store.abort_upload(bucket, key, upload)  # idempotent
        assert not any(u.upload_id == upload for u in store.list_uploads(bucket, prefix))
        with pytest.raises(NotFound):
            store.head(bucket, key)

    # -- the capability contract -------------------------------------------------------------------

    def test_undeclared_capabilities_raise_not_supported(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        store.put(bucket, prefix + "exists", b"data")
        probes = {
            Capability.CREATE_BUCKET: lambda: store.create_bucket(f"conf-never-{uuid.uuid4().hex[:8]}"),
            Capability.DELETE_BUCKET: lambda: store.delete_bucket(f"conf-never-{uuid.uuid4().hex[:8]}"),
            Capability.RANGE_READ: lambda: store.open(bucket, prefix + "exists", ByteRange(0, 1)),
            Capability.SERVER_SIDE_COPY: lambda: store.copy(bucket, prefix + "exists", bucket, prefix + "copy"),
            Capability.TAGS: lambda: store.get_tags(bucket, prefix + "exists"),
            Capability.MULTIPART: lambda: store.start_upload(bucket, prefix + "mp"),
            Capability.KEY_IS_PREFIX: lambda: store.put(bucket, prefix + "exists/child", b"x"),
            Capability.KEY_EMPTY_SEGMENTS: lambda: store.put(bucket, prefix + "a//b", b"x"),
            Capability.KEY_TRAILING_SLASH: lambda: store.put(bucket, prefix + "dir/", b"x"),
            Capability.KEY_DOT_SEGMENTS: lambda: store.put(bucket, prefix + "a/../b", b"x"),
            Capability.KEY_BACKSLASH: lambda: store.put(bucket, prefix + "a\\b", b"x"),
            Capability.KEY_CONTROL_CHARACTERS: lambda: store.put(bucket, prefix + "a\x01b", b"x"),
            Capability.SECOND_LISTING: lambda: store.list_objects_second_way(bucket, prefix),
            Capability.OBJECT_ACLS: lambda: store.object_public(bucket, prefix + "exists"),
        }
        # Properties of results rather than operations, checked by their own tests.
        behaviour = {Capability.SORTED_LISTING, Capability.VERIFIED_WRITES, Capability.LISTING_START_AFTER}
        assert set(probes) == set(Capability) - behaviour, "every operation needs a probe"
        undeclared = [c for c in probes if c not in store.capabilities]
        if not undeclared:
            pytest.skip(f"declared: {store.name} declares every capability")
        for capability in undeclared:
            with pytest.raises(NotSupported) as raised:
                probes[capability]()
            assert raised.value.capability == capability.value
        if Capability.TAGS not in store.capabilities:
            with pytest.raises(NotSupported):
                store.put(bucket, prefix + "tagged", b"x", tags={"a": "b"})
