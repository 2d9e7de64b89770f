"""The ``s3`` storage adapter: Amazon S3 and S3-compatible stores.

Every operation is one or more signed requests on :class:`~.wire.Wire` (urllib3), with object
metadata in headers through :mod:`.codec` and errors through :func:`~.errors.classify`. Vendor
differences come from the vendor profile (``vendors.yaml``), never from code that names a vendor.
Credentials are read from the environment variables the providers file names, or resolved by
botocore's credential chain for an AWS profile (refreshed as they expire).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import google_crc32c

from failover.capabilities import Capability, StoreCapabilities
from failover.config import ServiceSpec
from failover.errors import AuthError, ConfigError, IntegrityError, ListingIncomplete, NotFound
from failover.headermeta import http_date
from failover.settings import BucketSettings, Setting
from failover.storage import ObjectStore, RawBody
from failover.types import BucketInfo, ByteRange, ObjectInfo, ObjectMeta, PartInfo, UploadInfo

from .codec import (
    ListPage,
    complete_xml,
    content_range,
    create_bucket_xml,
    md5_base64,
    meta_from_headers,
    meta_to_headers,
    parse_buckets,
    parse_copy_etag,
    parse_list_page,
    parse_parts,
    parse_tags,
    parse_upload_id,
    parse_uploads,
    tagging_xml,
    uncarried_from_headers,
)
from .errors import BucketOwnedByYou
from .options import S3Options
from .settings import S3Settings
from .signing import Credentials, quote
from .vendors import VendorProfile, vendor_profile
from .wire import Reply, Wire

__all__ = ["S3Store"]

_AWS_HOST_SUFFIX = ".amazonaws.com"


def _etag(value: object) -> str | None:
    return str(value).strip('"') if value else None


def _crc32c(body: bytes) -> str:
    return base64.b64encode(google_crc32c.value(body).to_bytes(4, "big")).decode()


def _tagging(tags: Mapping[str, str]) -> str:
    return urllib.parse.urlencode(dict(tags))


def _profile_credentials(profile: str | None) -> Callable[[], Credentials]:
    """botocore's credential chain (profile, environment, container or instance metadata); imported
    only when the providers file asks for it, since it costs ~0.3 s to load."""
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=profile)
        found = session.get_credentials()
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(f"AWS profile not found: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise AuthError(f"could not resolve AWS credentials: {exc}") from None
    if found is None:
        raise AuthError(
            "no usable credentials",
            hint="reference them in the providers file (key_env/secret_env or profile)",
        )

    def credentials() -> Credentials:
        frozen = found.get_frozen_credentials()
        return Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token)

    return credentials


class _Body:
    """A streamed GET body as a RawBody."""

    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    def read(self, size: int = -1, /) -> bytes:
        return self._reply.read(size)

    def close(self) -> None:
        self._reply.close()


class S3Store(ObjectStore):
    """An S3 or S3-compatible store. Vendor differences come from the ``vendor`` profile."""

    options_model = S3Options

    def __init__(
        self,
        name: str,
        *,
        endpoint: str | None,
        region: str | None,
        options: S3Options,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        verify: bool | str | None = None,
    ) -> None:
        self.vendor: VendorProfile = self.profile_for(options)
        super().__init__(
            name,
            self.vendor.capabilities(),
            part_size=options.part_size_mib * 1024 * 1024,
            multipart_threshold=(options.multipart_threshold_mib or options.part_size_mib) * 1024 * 1024,
        )
        self.endpoint = endpoint
        self.region = region or "us-east-1"
        if access_key and secret_key:
            static = Credentials(access_key, secret_key, session_token)

            def credentials() -> Credentials:
                return static

        else:
            credentials = _profile_credentials(profile)
        self._settings = S3Settings(
            endpoint=endpoint,
            region=self.region,
            addressing_style="path" if self.vendor.addressing_style == "path" else "virtual",
            credentials=credentials,
            verify=verify,
            timeouts=(options.connect_timeout, options.read_timeout),
        )
        self.wire = Wire(
            endpoint=endpoint,
            region=self.region,
            addressing_style="path" if self.vendor.addressing_style == "path" else "virtual",
            credentials=credentials,
            verify=verify,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            expect_continue=self.vendor.expect_continue,
            pool_size=options.max_pool_connections,
        )

    @staticmethod
    def profile_for(options: S3Options) -> VendorProfile:
        """The vendor profile with this provider's overrides applied."""
        overrides = {
            "addressing_style": options.addressing_style,
            "checksums": options.checksums,
            "operations": options.operations,
            "expect_continue": options.expect_continue,
        }
        return vendor_profile(options.vendor).model_copy(update={k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def declared_capabilities(cls, options: S3Options) -> StoreCapabilities:
        """What a store with these options declares (no connection is made)."""
        return cls.profile_for(options).capabilities()

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> S3Store:
        creds = spec.credentials()
        verify: bool | str | None = spec.ca_bundle or (None if spec.verify_tls else False)
        return cls(
            spec.provider,
            endpoint=spec.endpoint,
            region=spec.region,
            options=spec.options,
            access_key=creds.key,
            secret_key=creds.secret.reveal() if creds.secret else None,
            session_token=creds.token.reveal() if creds.token else None,
            profile=creds.profile,
            verify=verify,
        )

    @property
    def namespace(self) -> str:
        # Bucket names are global on AWS, whatever the region or account: one namespace.
        host = self.wire.host
        if host == "s3.amazonaws.com" or (host.startswith("s3") and host.endswith(_AWS_HOST_SUFFIX)):
            return "s3:aws"
        return f"s3:{self.wire.scheme}://{host}:{self.wire.port}{self.wire.base_path}"

    @property
    def endpoint_label(self) -> str:
        return f"{self.name} ({self.wire.label})"

    def close(self) -> None:
        self.wire.close()

    def _request(self, method: str, bucket: str | None, key: str | None = None, **kwargs: Any) -> Reply:
        return self.wire.request(method, bucket, key, **kwargs)

    # -- buckets -----------------------------------------------------------------------------------

    def _list_buckets(self) -> list[BucketInfo]:
        buckets: list[BucketInfo] = []
        token: str | None = None
        while True:
            query = {"continuation-token": token} if token else {}
            page, token = parse_buckets(self._request("GET", None, query=query, operation="list_buckets").data)
            buckets.extend(page)
            if not token:
                return buckets

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self._request("HEAD", bucket, operation="bucket_exists")
        except NotFound:
            return False
        except AuthError:
            # HEAD responses have no body, so a 403 does not say why. A listing request does
            # (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied); and where the store ties
            # HEAD to another permission than listing (SeaweedFS: Read), a listing that works shows
            # the bucket is there for what a sync needs of it.
            self._request("GET", bucket, query={"list-type": "2", "max-keys": "1"}, operation="bucket_exists")
        return True

    def _clock(self, bucket: str) -> datetime:
        reply = self._request("GET", bucket, query={"list-type": "2", "max-keys": "0"}, operation="clock")
        return http_date(reply.headers.get("date")) or datetime.now(UTC)

    def _create_bucket(self, bucket: str) -> None:
        body = None
        if self.vendor.location_constraint and self.region != "us-east-1":
            body = create_bucket_xml(self.region)
        try:
            self._request("PUT", bucket, body=body, operation="create_bucket")
        except BucketOwnedByYou:
            return

    def _object_public(self, bucket: str, key: str) -> bool:
        return self._settings.object_public(bucket, key)

    def _make_object_public(self, bucket: str, key: str) -> None:
        self._settings.make_object_public(bucket, key)

    def _bucket_settings(self, bucket: str) -> BucketSettings:
        return self._settings.read(bucket, self.capabilities.settings)

    def _put_bucket_settings(self, bucket: str, settings: BucketSettings, which: frozenset[Setting]) -> None:
        self._settings.write(bucket, settings, which)

    def _delete_bucket(self, bucket: str) -> None:
        self._request("DELETE", bucket, operation="delete_bucket")

    # -- listings ----------------------------------------------------------------------------------

    def _page(self, bucket: str, query: dict[str, str], *, url: bool) -> ListPage:
        if url:
            query["encoding-type"] = "url"
        reply = self._attempt(
            "list_objects", lambda: self._request("GET", bucket, query=query, operation="list_objects")
        )
        try:
            return parse_list_page(reply.data, url_encoded=url)
        except ListingIncomplete as error:
            error.target = bucket
            raise

    def _pages(self, bucket: str, prefix: str, start_after: str | None, *, second: bool) -> Iterator[ObjectInfo]:
        listing = self.vendor.listing
        url = listing.url_encoding
        size = str(listing.page_size)
        by_token = listing.pagination == "token" and not second
        token: str | None = None
        seen: set[str] = set()
        last = start_after
        while True:
            query = {"prefix": prefix, "max-keys": size}
            if not second:
                query["list-type"] = "2"
                if by_token and token:
                    query["continuation-token"] = token
                elif last:
                    query["start-after"] = last
            elif last:
                query["marker"] = last
            page = self._page(bucket, query, url=url)
            for item in page.objects:
                last = item.key
                yield ObjectInfo(bucket, item.key, item.size, item.etag, item.last_modified)
            if not page.truncated:
                return
            if not page.objects:
                raise ListingIncomplete("listing claims more keys but gave none on this page", target=bucket)
            if by_token:
                if not page.next_token:
                    raise ListingIncomplete("listing claims more keys but gave no continuation token", target=bucket)
                if page.next_token in seen:
                    raise ListingIncomplete("listing returned a continuation token twice", target=bucket)
                token = page.next_token
                seen.add(token)

    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        return self._pages(bucket, prefix, start_after, second=False)

    def _list_objects_second(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        return self._pages(bucket, prefix, start_after, second=True)

    def _first_after(self, bucket: str, prefix: str, key: str | None, *, second_way: bool) -> str | None:
        query = {"prefix": prefix, "max-keys": "1"}
        if second_way:
            if key:
                query["marker"] = key
        else:
            query["list-type"] = "2"
            if key:
                query["start-after"] = key
        page = self._page(bucket, query, url=self.vendor.listing.url_encoding)
        return page.objects[0].key if page.objects else None

    # -- objects -----------------------------------------------------------------------------------

    def _info(self, bucket: str, key: str, headers: Mapping[str, str], size: int) -> ObjectInfo:
        # The store omits x-amz-tagging-count when there are no tags, if it reports counts at all.
        tag_count = int(headers.get("x-amz-tagging-count") or 0) if self.vendor.reports_tag_count else None
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=size,
            etag=_etag(headers.get("etag")),
            last_modified=http_date(headers.get("last-modified")),
            meta=meta_from_headers(headers),
            tag_count=tag_count,
            uncarried=uncarried_from_headers(headers),
        )

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        reply = self._request("HEAD", bucket, key, operation="head")
        return self._info(bucket, key, reply.headers, int(reply.headers.get("content-length", 0)))

    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        target = f"{bucket}/{key}"
        headers = {"range": byte_range.header()} if byte_range is not None else {}
        reply = self._request("GET", bucket, key, headers=headers, operation="open", stream=True)
        found = reply.headers
        length = int(found.get("content-length", 0))
        start, total = 0, length
        if "content-range" in found:
            parsed = content_range(found["content-range"])
            if parsed is None:
                reply.close()
                raise IntegrityError(f"unparseable Content-Range {found['content-range']!r}", target=target)
            start, total = parsed[0], parsed[1] if parsed[1] is not None else parsed[0] + length
        elif byte_range is not None and byte_range.start > 0:
            reply.close()
            raise IntegrityError("server ignored the Range header", target=target)
        return self._info(bucket, key, found, total), _Body(reply), start, length

    def confirm_part(self, part: PartInfo, data: bytes) -> PartInfo | None:
        if part.size != len(data):
            return None
        checksum = _crc32c(data) if self.vendor.body_checksum == "crc32c" else None
        if part.checksum and checksum:
            return part if part.checksum == checksum else None
        # A part's ETag is the MD5 of its bytes on these stores (not an object's multipart ETag).
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest() if self.vendor.etag != "opaque" else None
        if md5 and part.etag.strip('"').lower() == md5:
            return PartInfo(part.number, part.etag, part.size, checksum)  # what completion repeats
        return None

    def part_proof(self, data: bytes) -> str:
        """A checksum of ``data`` as this store checks it on arrival (what its parts are proven by)."""
        if self.vendor.body_checksum == "crc32c":
            return "crc32c:" + _crc32c(data)
        return "md5:" + hashlib.md5(data, usedforsecurity=False).hexdigest()

    def _checksum(self, body: bytes) -> tuple[dict[str, str], str | None]:
        """The body checksum the store checks and refuses a mismatch of (BadDigest), as headers, and
        the CRC32C value a multipart completion repeats."""
        if self.vendor.body_checksum == "crc32c":
            value = _crc32c(body)
            return {"x-amz-checksum-crc32c": value}, value
        return {"content-md5": md5_base64(body)}, None

    def _put_bytes(
        self,
        bucket: str,
        key: str,
        body: bytes,
        meta: ObjectMeta,
        tags: dict[str, str],
        *,
        checksum_of: bytes | None = None,
    ) -> ObjectInfo:
        headers = meta_to_headers(meta)
        headers.update(self._checksum(body if checksum_of is None else checksum_of)[0])
        if tags:
            headers["x-amz-tagging"] = _tagging(tags)
        reply = self._request("PUT", bucket, key, headers=headers, body=body, operation="put", checked_body=True)
        self.counters.add("bytes_written", len(body))
        return ObjectInfo(bucket=bucket, key=key, size=len(body), etag=_etag(reply.headers.get("etag")))

    def _delete(self, bucket: str, key: str) -> None:
        self._request("DELETE", bucket, key, operation="delete")

    def _copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, meta: ObjectMeta | None) -> None:
        source = quote(f"{src_bucket}/{src_key}", "/")
        info = self._head(src_bucket, src_key)
        if info.size <= self.vendor.limits.max_copy_mib * 1024 * 1024:
            headers = {"x-amz-copy-source": source, "x-amz-metadata-directive": "COPY"}
            redirect = info.meta.website_redirect_location if info.meta else None
            if redirect:  # S3 does not copy it with the rest of the metadata: it must be given again
                headers["x-amz-website-redirect-location"] = redirect
            if meta is not None:
                headers = {"x-amz-copy-source": source, "x-amz-metadata-directive": "REPLACE", **meta_to_headers(meta)}
            self._request("PUT", dst_bucket, dst_key, headers=headers, operation="copy")
            return
        # Too large for one CopyObject: copy part ranges. Metadata and tags are not carried by the
        # part copies, so they are set explicitly on the new upload (the bug that loses metadata on
        # multipart copies elsewhere).
        tags = self._get_tags(src_bucket, src_key) if Capability.TAGS in self.capabilities else {}
        upload_id = self._start_upload(dst_bucket, dst_key, meta or info.meta or ObjectMeta(), tags)
        part_size = self.capabilities.limits.part_size_for(info.size, self.part_size)
        parts: list[PartInfo] = []
        try:
            for number, offset in enumerate(range(0, info.size, part_size), start=1):
                end = min(offset + part_size, info.size) - 1
                reply = self._attempt(
                    "copy",
                    lambda number=number, offset=offset, end=end: self._request(  # type: ignore[misc]
                        "PUT",
                        dst_bucket,
                        dst_key,
                        query={"partNumber": str(number), "uploadId": upload_id},
                        headers={"x-amz-copy-source": source, "x-amz-copy-source-range": f"bytes={offset}-{end}"},
                        operation="copy",
                    ),
                )
                parts.append(PartInfo(number, parse_copy_etag(reply.data), end - offset + 1))
            self._complete_upload(dst_bucket, dst_key, upload_id, parts)
        except BaseException:
            with contextlib.suppress(Exception):
                self._abort_upload(dst_bucket, dst_key, upload_id)
            raise

    def _get_tags(self, bucket: str, key: str) -> dict[str, str]:
        return parse_tags(self._request("GET", bucket, key, query={"tagging": ""}, operation="get_tags").data)

    def _put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        body = tagging_xml(tags)
        headers = {"content-md5": md5_base64(body), "content-type": "application/xml"}
        self._request("PUT", bucket, key, query={"tagging": ""}, headers=headers, body=body, operation="put_tags")

    # -- multipart ---------------------------------------------------------------------------------

    def _start_upload(self, bucket: str, key: str, meta: ObjectMeta, tags: dict[str, str]) -> str:
        headers = meta_to_headers(meta)
        if self.vendor.body_checksum == "crc32c":
            headers["x-amz-checksum-algorithm"] = "CRC32C"  # parts then carry CRC32C, repeated at completion
        if tags:
            headers["x-amz-tagging"] = _tagging(tags)
        reply = self._request("POST", bucket, key, query={"uploads": ""}, headers=headers, operation="start_upload")
        return parse_upload_id(reply.data)

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
        headers, checksum = self._checksum(data)
        reply = self._request(
            "PUT",
            bucket,
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            headers=headers,
            body=data,
            operation="upload_part",
            checked_body=True,
        )
        return PartInfo(number=number, etag=_etag(reply.headers.get("etag")) or "", size=len(data), checksum=checksum)

    def _complete_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]) -> str | None:
        body = complete_xml(parts)
        reply = self._request(
            "POST",
            bucket,
            key,
            query={"uploadId": upload_id},
            headers={"content-type": "application/xml"},
            body=body,
            operation="complete_upload",
        )
        return parse_copy_etag(reply.data) or None

    def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._request("DELETE", bucket, key, query={"uploadId": upload_id}, operation="abort_upload")

    def _list_uploads(self, bucket: str, prefix: str) -> Iterator[UploadInfo]:
        query = {"uploads": "", "prefix": prefix, "encoding-type": "url"}
        while True:
            reply = self._attempt(
                "list_uploads",
                functools.partial(self._request, "GET", bucket, query=dict(query), operation="list_uploads"),
            )
            uploads, key_marker, id_marker = parse_uploads(reply.data, bucket)
            yield from uploads
            if key_marker is None:
                return
            query = {**query, "key-marker": key_marker, "upload-id-marker": id_marker or ""}

    def _list_parts(self, bucket: str, key: str, upload_id: str) -> Iterator[PartInfo]:
        query = {"uploadId": upload_id}
        while True:
            reply = self._attempt(
                "list_parts",
                functools.partial(self._request, "GET", bucket, key, query=dict(query), operation="list_parts"),
            )
            parts, marker = parse_parts(reply.data)
            yield from parts
            if marker is None:
                return
            query = {"uploadId": upload_id, "part-number-marker": str(marker)}
