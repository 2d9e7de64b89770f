"""The ``s3`` storage adapter: Amazon S3 and S3-compatible stores through boto3."""

from __future__ import annotations

import contextlib
import email.utils
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from failover.capabilities import Capability, StoreCapabilities
from failover.config import ServiceSpec
from failover.errors import AuthError, IntegrityError, ListingIncomplete, NotFound
from failover.headermeta import decode_value, encode_value
from failover.storage import ObjectStore, RawBody
from failover.types import BucketInfo, ByteRange, ObjectInfo, ObjectMeta, PartInfo, UploadInfo

from .errors import BucketOwnedByYou, converted
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


def meta_from_response(response: Mapping[str, Any]) -> ObjectMeta:
    expires: datetime | None = None
    raw_expires = response.get("ExpiresString")
    if raw_expires:
        try:
            expires = email.utils.parsedate_to_datetime(raw_expires)
        except (TypeError, ValueError):
            expires = None
    elif isinstance(response.get("Expires"), datetime):
        expires = response["Expires"]
    return ObjectMeta(
        **{field: response.get(param) or None for field, param in _META_PARAMS.items()},
        expires=expires.astimezone(UTC) if expires else None,
        user={name: decode_value(value) for name, value in (response.get("Metadata") or {}).items()},
    )


def _etag(value: object) -> str | None:
    return str(value).strip('"') if value else None


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

    @staticmethod
    def profile_for(options: S3Options) -> VendorProfile:
        """The vendor profile with this provider's overrides applied."""
        overrides = {
            "addressing_style": options.addressing_style,
            "checksums": options.checksums,
            "operations": options.operations,
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
        except AuthError as error:
            error.message = f"{error.message} (the bucket may exist but belong to another account)"
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

    def _list_objects(self, bucket: str, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            params["StartAfter"] = start_after
        # On a store that lists in key order, a key that does not sort after the previous one means
        # pagination went wrong (a repeated or lost page): never pass such a listing on.
        ordered = Capability.SORTED_LISTING in self.capabilities
        last = start_after
        tokens: set[str] = set()
        while True:
            with converted("list_objects", bucket):
                page = self._client.list_objects_v2(**params)
            for item in page.get("Contents", []):
                key = item["Key"]
                if ordered and last is not None and key <= last:
                    raise ListingIncomplete(
                        f"listing went backwards or repeated ({key!r} after {last!r})", target=bucket
                    )
                last = key
                yield ObjectInfo(
                    bucket=bucket,
                    key=key,
                    size=int(item.get("Size", 0)),
                    etag=_etag(item.get("ETag")),
                    last_modified=item.get("LastModified"),
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                raise ListingIncomplete("listing claims more keys but gave no continuation token", target=bucket)
            if token in tokens:
                raise ListingIncomplete("listing returned a continuation token twice", target=bucket)
            tokens.add(token)
            params = {"Bucket": bucket, "Prefix": prefix, "ContinuationToken": token}

    def _info(self, bucket: str, key: str, response: Mapping[str, Any], size: int) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=size,
            etag=_etag(response.get("ETag")),
            last_modified=response.get("LastModified"),
            meta=meta_from_response(response),
        )

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        with converted("head", f"{bucket}/{key}"):
            response = self._client.head_object(Bucket=bucket, Key=key)
        return self._info(bucket, key, response, int(response.get("ContentLength", 0)))

    def _open(self, bucket: str, key: str, byte_range: ByteRange | None) -> tuple[ObjectInfo, RawBody, int, int]:
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

    def _put_bytes(self, bucket: str, key: str, body: bytes, meta: ObjectMeta, tags: dict[str, str]) -> ObjectInfo:
        params = meta_to_params(meta)
        if tags:
            params["Tagging"] = _tagging(tags)
        with converted("put", f"{bucket}/{key}"):
            response = self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=len(body), **params)
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
        if tags:
            params["Tagging"] = _tagging(tags)
        with converted("start_upload", f"{bucket}/{key}"):
            response = self._client.create_multipart_upload(Bucket=bucket, Key=key, **params)
        return response["UploadId"]

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
        with converted("upload_part", f"{bucket}/{key}#{number}"):
            response = self._client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, ContentLength=len(data)
            )
        return PartInfo(number=number, etag=_etag(response.get("ETag")) or "", size=len(data))

    def _complete_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        with converted("complete_upload", f"{bucket}/{key}"):
            self._client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"ETag": f'"{p.etag}"', "PartNumber": p.number} for p in parts]},
            )

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
                yield PartInfo(int(part["PartNumber"]), _etag(part.get("ETag")) or "", int(part.get("Size", 0)))
            if not page.get("IsTruncated"):
                return
            params = {**params, "PartNumberMarker": page.get("NextPartNumberMarker", 0)}
