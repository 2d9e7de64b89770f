"""The ``s3`` storage adapter: Amazon S3 and S3-compatible stores through boto3."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import hashlib
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import boto3
import google_crc32c
from botocore.config import Config

from failover.capabilities import Capability, StoreCapabilities
from failover.config import ServiceSpec
from failover.errors import AuthError, IntegrityError, InvalidRequest, ListingIncomplete, NotFound
from failover.headermeta import decode_value, encode_value, http_date
from failover.storage import ObjectStore, RawBody
from failover.types import BucketInfo, ByteRange, ObjectInfo, ObjectMeta, PartInfo, UploadInfo

from .errors import BucketOwnedByYou, converted
from .fastpath import (
    Credentials,
    FastPath,
    ListedObject,
    ListPage,
    Response,
    content_range,
    md5_header,
    parse_list_page,
    user_metadata,
)
from .options import S3Options
from .vendors import VendorProfile, vendor_profile

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["S3Store"]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# ObjectMeta field -> boto3 parameter / response key
_META_PARAMS = {
    "content_type": "ContentType",
    "cache_control": "CacheControl",
    "content_disposition": "ContentDisposition",
    "content_encoding": "ContentEncoding",
    "content_language": "ContentLanguage",
}


def meta_to_params(meta: ObjectMeta) -> dict[str, Any]:
    params: dict[str, Any] = {
        param: getattr(meta, field) for field, param in _META_PARAMS.items() if getattr(meta, field)
    }
    if meta.expires is not None:
        params["Expires"] = meta.expires
    if meta.user:
        params["Metadata"] = {name: encode_value(value) for name, value in meta.user.items()}
    return params


# ObjectMeta field -> HTTP header, for the lean data path
_META_HEADERS = {
    "content_type": "content-type",
    "cache_control": "cache-control",
    "content_disposition": "content-disposition",
    "content_encoding": "content-encoding",
    "content_language": "content-language",
}


def meta_to_headers(meta: ObjectMeta) -> dict[str, str]:
    headers = {header: getattr(meta, field) for field, header in _META_HEADERS.items() if getattr(meta, field)}
    if meta.expires is not None:
        headers["expires"] = email.utils.format_datetime(meta.expires.astimezone(UTC), usegmt=True)
    for name, value in meta.user.items():
        headers[f"x-amz-meta-{name}"] = encode_value(value)
    for name, value in headers.items():
        if not value.isascii():
            raise InvalidRequest(f"the {name} value is not ASCII and cannot be sent as an HTTP header")
    return headers


def meta_from_headers(headers: Mapping[str, str]) -> ObjectMeta:
    return ObjectMeta(
        **{field: headers.get(header) or None for field, header in _META_HEADERS.items()},
        expires=http_date(headers.get("expires")),
        user={name: decode_value(value) for name, value in user_metadata(headers).items()},
    )


def meta_from_response(response: Mapping[str, Any]) -> ObjectMeta:
    expires = http_date(response.get("ExpiresString"))
    if expires is None and isinstance(response.get("Expires"), datetime):
        expires = response["Expires"].astimezone(UTC)
    return ObjectMeta(
        **{field: response.get(param) or None for field, param in _META_PARAMS.items()},
        expires=expires,
        user={name: decode_value(value) for name, value in (response.get("Metadata") or {}).items()},
    )


def _etag(value: object) -> str | None:
    return str(value).strip('"') if value else None


def _crc32c(body: bytes) -> str:
    return base64.b64encode(google_crc32c.value(body).to_bytes(4, "big")).decode()


def _tagging(tags: Mapping[str, str]) -> str:
    return urllib.parse.urlencode(dict(tags))


class _Body:
    """A botocore StreamingBody whose errors arrive as failover errors."""

    def __init__(self, body: Any, target: str) -> None:
        self._body = body
        self._target = target

    def read(self, size: int = -1, /) -> bytes:
        with converted("read", self._target):
            data: bytes = self._body.read(None if size < 0 else size)
            return data

    def close(self) -> None:
        # Closing a broken connection must not mask the error that broke it.
        with contextlib.suppress(Exception):
            self._body.close()


class _FastBody:
    """A lean-path response body as a RawBody."""

    def __init__(self, response: Response) -> None:
        self._response = response

    def read(self, size: int = -1, /) -> bytes:
        return self._response.read(size)

    def close(self) -> None:
        self._response.close()


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
        capabilities = self.vendor.capabilities()
        super().__init__(
            name,
            capabilities,
            part_size=options.part_size_mib * 1024 * 1024,
            multipart_threshold=(options.multipart_threshold_mib or options.part_size_mib) * 1024 * 1024,
        )
        self.endpoint = endpoint
        self.region = region or "us-east-1"
        config = Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": self.vendor.addressing_style},
            retries={"total_max_attempts": 1, "mode": "standard"},  # failover's RetryPolicy retries
            max_pool_connections=options.max_pool_connections,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            tcp_keepalive=True,
            request_checksum_calculation=self.vendor.checksums,
            response_checksum_validation=self.vendor.checksums,
            user_agent_extra="failover",
        )
        with converted("connect"):
            session = boto3.Session(
                profile_name=profile,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
            )
            self._client: S3Client = session.client("s3", endpoint_url=endpoint, config=config, verify=verify)
            session_credentials = session.get_credentials() if options.fast_path else None
        self._fast: FastPath | None = None
        if session_credentials is not None:

            def credentials() -> Credentials:
                frozen = session_credentials.get_frozen_credentials()
                return Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token)

            self._fast = FastPath(
                endpoint=endpoint,
                region=self.region,
                addressing_style="path" if self.vendor.addressing_style == "path" else "virtual",
                credentials=credentials,
                verify=verify,
                connect_timeout=options.connect_timeout,
                read_timeout=options.read_timeout,
                expect_continue=self.vendor.expect_continue,
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

    def close(self) -> None:
        self._client.close()
        if self._fast is not None:
            self._fast.close()

    # -- buckets -----------------------------------------------------------------------------------

    def _list_buckets(self) -> list[BucketInfo]:
        buckets: list[BucketInfo] = []
        token: str | None = None
        with converted("list_buckets"):
            while True:
                response = self._client.list_buckets(ContinuationToken=token) if token else self._client.list_buckets()
                buckets.extend(BucketInfo(b["Name"], b.get("CreationDate")) for b in response.get("Buckets", []))
                token = response.get("ContinuationToken")
                if not token:
                    return buckets

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            with converted("bucket_exists", bucket):
                self._client.head_bucket(Bucket=bucket)
        except NotFound:
            return False
        except AuthError:
            # HEAD responses have no body, so a 403 does not say why. A listing request does:
            # SignatureDoesNotMatch (wrong secret), InvalidAccessKeyId, or AccessDenied (the bucket
            # exists but these credentials may not use it).
            with converted("bucket_exists", bucket):
                self._client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            raise
        return True

    def _create_bucket(self, bucket: str) -> None:
        params: dict[str, Any] = {"Bucket": bucket}
        if self.vendor.location_constraint and self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            with converted("create_bucket", bucket):
                self._client.create_bucket(**params)
        except BucketOwnedByYou:
            return

    def _delete_bucket(self, bucket: str) -> None:
        with converted("delete_bucket", bucket):
            self._client.delete_bucket(Bucket=bucket)

    # -- objects -----------------------------------------------------------------------------------

    def _list_page(self, bucket: str, prefix: str, start_after: str | None, token: str | None) -> ListPage:
        """One ListObjectsV2 page, through the lean path or boto3."""
        if self._fast is not None:
            query = {"list-type": "2", "encoding-type": "url", "max-keys": "1000", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            elif start_after:
                query["start-after"] = start_after
            reply = self._fast.request("GET", bucket, None, query=query, operation="list_objects")
            try:
                body = reply.read()
            finally:
                reply.close()
            try:
                return parse_list_page(body)
            except ElementTree.ParseError as exc:
                raise ListingIncomplete(f"unparseable listing: {exc}", target=bucket) from exc
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            params["ContinuationToken"] = token
        elif start_after:
            params["StartAfter"] = start_after
        with converted("list_objects", bucket):
            page = self._client.list_objects_v2(**params)
        objects = [
            ListedObject(item["Key"], int(item.get("Size", 0)), _etag(item.get("ETag")), item.get("LastModified"))
            for item in page.get("Contents", [])
        ]
        return ListPage(objects, bool(page.get("IsTruncated")), page.get("NextContinuationToken"))

    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        # On a store that lists in key order, a key that does not sort after the previous one means
        # pagination went wrong (a repeated or lost page): never pass such a listing on.
        ordered = Capability.SORTED_LISTING in self.capabilities
        last = start_after
        token: str | None = None
        tokens: set[str] = set()
        while True:
            # Each page under the retry policy, checked before any of it is passed on: a bad page is
            # asked for again with the same token, not the whole listing (which, on a store that
            # does not list in key order, could only resume by listing again from the start).
            page = self._call(
                "list_objects", functools.partial(self._checked_page, bucket, prefix, start_after, token, tokens)
            )
            for item in page.objects:
                if ordered and last is not None and item.key <= last:
                    raise ListingIncomplete(
                        f"listing went backwards or repeated ({item.key!r} after {last!r})", target=bucket
                    )
                last = item.key
                yield ObjectInfo(
                    bucket=bucket, key=item.key, size=item.size, etag=item.etag, last_modified=item.last_modified
                )
            if not page.truncated:
                return
            token = page.next_token
            assert token is not None  # checked by _checked_page
            tokens.add(token)

    def _checked_page(
        self, bucket: str, prefix: str, start_after: str | None, token: str | None, seen: set[str]
    ) -> ListPage:
        page = self._list_page(bucket, prefix, start_after, token)
        if page.truncated and not page.next_token:
            raise ListingIncomplete("listing claims more keys but gave no continuation token", target=bucket)
        if page.next_token in seen:
            raise ListingIncomplete("listing returned a continuation token twice", target=bucket)
        return page

    def _info(self, bucket: str, key: str, response: Mapping[str, Any], size: int) -> ObjectInfo:
        # The store omits x-amz-tagging-count when there are no tags, if it reports counts at all.
        tag_count = int(response.get("TagCount") or 0) if self.vendor.reports_tag_count else None
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=size,
            etag=_etag(response.get("ETag")),
            last_modified=response.get("LastModified"),
            meta=meta_from_response(response),
            tag_count=tag_count,
        )

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        with converted("head", f"{bucket}/{key}"):
            response = self._client.head_object(Bucket=bucket, Key=key)
        return self._info(bucket, key, response, int(response.get("ContentLength", 0)))

    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        if self._fast is not None:
            return self._open_fast(bucket, key, byte_range)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if byte_range is not None:
            params["Range"] = byte_range.header()
        target = f"{bucket}/{key}"
        with converted("open", target):
            response = self._client.get_object(**params)
        length = int(response.get("ContentLength", 0))
        start, total = 0, length
        content_range = response.get("ContentRange")
        if content_range:
            match = _CONTENT_RANGE.fullmatch(content_range.strip())
            if not match:
                response["Body"].close()
                raise IntegrityError(f"unparseable Content-Range {content_range!r}", target=target)
            start = int(match.group(1))
            total = int(match.group(3)) if match.group(3) != "*" else start + length
        elif byte_range is not None and byte_range.start > 0:
            # The server ignored the Range header and sent the whole object.
            response["Body"].close()
            raise IntegrityError("server ignored the Range header", target=target)
        return self._info(bucket, key, response, total), _Body(response["Body"], target), start, length

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

    def _checksum(self, body: bytes) -> tuple[dict[str, str], dict[str, Any], str | None]:
        """The body checksum the store checks and refuses a mismatch of (BadDigest): as HTTP
        headers, as boto3 parameters, and the CRC32C value a multipart completion repeats."""
        if self.vendor.body_checksum == "crc32c":
            value = _crc32c(body)
            return {"x-amz-checksum-crc32c": value}, {"ChecksumCRC32C": value}, value
        value = md5_header(body)
        return {"content-md5": value}, {"ContentMD5": value}, None

    def _open_fast(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
        assert self._fast is not None
        target = f"{bucket}/{key}"
        headers = {"range": byte_range.header()} if byte_range is not None else {}
        response = self._fast.request("GET", bucket, key, headers=headers, operation="open")
        found = response.headers
        length = int(found.get("content-length", 0))
        start, total = 0, length
        if "content-range" in found:
            parsed = content_range(found["content-range"])
            if parsed is None:
                response.close()
                raise IntegrityError(f"unparseable Content-Range {found['content-range']!r}", target=target)
            start, total = parsed[0], parsed[1] if parsed[1] >= 0 else parsed[0] + length
        elif byte_range is not None and byte_range.start > 0:
            response.close()
            raise IntegrityError("server ignored the Range header", target=target)
        tag_count = int(found.get("x-amz-tagging-count") or 0) if self.vendor.reports_tag_count else None
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            size=total,
            etag=_etag(found.get("etag")),
            last_modified=http_date(found.get("last-modified")),
            meta=meta_from_headers(found),
            tag_count=tag_count,
        )
        return info, _FastBody(response), start, length

    def _put_bytes(self, bucket: str, key: str, body: bytes, meta: ObjectMeta, tags: dict[str, str]) -> ObjectInfo:
        if self._fast is not None:
            headers = meta_to_headers(meta)
            headers.update(self._checksum(body)[0])
            if tags:
                headers["x-amz-tagging"] = _tagging(tags)
            reply = self._fast.request("PUT", bucket, key, headers=headers, body=body, operation="put")
            reply.read()
            reply.close()
            self.counters.add("bytes_written", len(body))
            return ObjectInfo(bucket=bucket, key=key, size=len(body), etag=_etag(reply.headers.get("etag")))
        params = meta_to_params(meta)
        if tags:
            params["Tagging"] = _tagging(tags)
        with converted("put", f"{bucket}/{key}"):
            response = self._client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentLength=len(body), **self._checksum(body)[1], **params
            )
        self.counters.add("bytes_written", len(body))
        return ObjectInfo(bucket=bucket, key=key, size=len(body), etag=_etag(response.get("ETag")))

    def _delete(self, bucket: str, key: str) -> None:
        with converted("delete", f"{bucket}/{key}"):
            self._client.delete_object(Bucket=bucket, Key=key)

    def _copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, meta: ObjectMeta | None) -> None:
        source = {"Bucket": src_bucket, "Key": src_key}
        target = f"{dst_bucket}/{dst_key}"
        info = self._head(src_bucket, src_key)
        if info.size <= self.vendor.limits.max_copy_mib * 1024 * 1024:
            params: dict[str, Any] = {"MetadataDirective": "COPY"}
            if meta is not None:
                params = {"MetadataDirective": "REPLACE", **meta_to_params(meta)}
            with converted("copy", target):
                self._client.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source, **params)  # type: ignore[arg-type]
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
                with converted("copy", target):
                    response = self._client.upload_part_copy(
                        Bucket=dst_bucket,
                        Key=dst_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=source,  # type: ignore[arg-type]
                        CopySourceRange=f"bytes={offset}-{end}",
                    )
                parts.append(PartInfo(number, _etag(response["CopyPartResult"].get("ETag")) or "", end - offset + 1))
            self._complete_upload(dst_bucket, dst_key, upload_id, parts)
        except BaseException:
            self._abort_upload(dst_bucket, dst_key, upload_id)
            raise

    def _get_tags(self, bucket: str, key: str) -> dict[str, str]:
        with converted("get_tags", f"{bucket}/{key}"):
            response = self._client.get_object_tagging(Bucket=bucket, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    def _put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        with converted("put_tags", f"{bucket}/{key}"):
            self._client.put_object_tagging(
                Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
            )

    # -- multipart ---------------------------------------------------------------------------------

    def _start_upload(self, bucket: str, key: str, meta: ObjectMeta, tags: dict[str, str]) -> str:
        params = meta_to_params(meta)
        if self.vendor.body_checksum == "crc32c":
            params["ChecksumAlgorithm"] = "CRC32C"  # parts then carry CRC32C, repeated at completion
        if tags:
            params["Tagging"] = _tagging(tags)
        with converted("start_upload", f"{bucket}/{key}"):
            response = self._client.create_multipart_upload(Bucket=bucket, Key=key, **params)
        return response["UploadId"]

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
        headers, params, checksum = self._checksum(data)
        if self._fast is not None:
            reply = self._fast.request(
                "PUT",
                bucket,
                key,
                query={"partNumber": str(number), "uploadId": upload_id},
                headers=headers,
                body=data,
                operation="upload_part",
            )
            reply.read()
            reply.close()
            etag = _etag(reply.headers.get("etag")) or ""
            return PartInfo(number=number, etag=etag, size=len(data), checksum=checksum)
        with converted("upload_part", f"{bucket}/{key}#{number}"):
            response = self._client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
                **params,
            )
        return PartInfo(number=number, etag=_etag(response.get("ETag")) or "", size=len(data), checksum=checksum)

    def _complete_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        with converted("complete_upload", f"{bucket}/{key}"):
            self._client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [self._completed_part(p) for p in parts]},
            )

    @staticmethod
    def _completed_part(part: PartInfo) -> Any:
        entry: dict[str, Any] = {"ETag": f'"{part.etag}"', "PartNumber": part.number}
        if part.checksum:
            entry["ChecksumCRC32C"] = part.checksum
        return entry

    def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with converted("abort_upload", f"{bucket}/{key}"):
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def _list_uploads(self, bucket: str, prefix: str) -> Iterator[UploadInfo]:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            with converted("list_uploads", bucket):
                page = self._client.list_multipart_uploads(**params)
            for upload in page.get("Uploads", []):
                yield UploadInfo(bucket, upload["Key"], upload["UploadId"], upload.get("Initiated"))
            if not page.get("IsTruncated"):
                return
            params = {
                "Bucket": bucket,
                "Prefix": prefix,
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

    def _list_parts(self, bucket: str, key: str, upload_id: str) -> Iterator[PartInfo]:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        while True:
            with converted("list_parts", f"{bucket}/{key}"):
                page = self._client.list_parts(**params)
            for part in page.get("Parts", []):
                yield PartInfo(
                    int(part["PartNumber"]),
                    _etag(part.get("ETag")) or "",
                    int(part.get("Size", 0)),
                    part.get("ChecksumCRC32C"),
                )
            if not page.get("IsTruncated"):
                return
            params = {**params, "PartNumberMarker": page.get("NextPartNumberMarker", 0)}
