"""What the s3 adapter puts in and reads from HTTP messages, in one place: object metadata as
headers (the one codec), header safety, ``Content-Range``, and the XML documents of listings,
errors and the small control responses.

Header safety: every header value that goes on the wire is checked here, whatever the source
object said. A value holding CR, LF, NUL or any other control character, or a character outside
ASCII, is refused (user-metadata values are first written as RFC 2047 encoded-words, as S3 itself
does, so any text survives); a header name must be an HTTP token. A hostile source can therefore
never add a header of its own to a request to the target.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import email.utils
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from types import MappingProxyType
from xml.etree import ElementTree

from failover.errors import InvalidRequest, ListingIncomplete
from failover.headermeta import decode_value, encode_value, http_date
from failover.types import BucketInfo, ObjectMeta, PartInfo, UploadInfo

__all__ = [
    "ListPage",
    "ListedObject",
    "check_header",
    "content_range",
    "error_code",
    "meta_from_headers",
    "meta_to_headers",
    "parse_buckets",
    "parse_copy_etag",
    "parse_list_page",
    "parse_parts",
    "parse_tags",
    "parse_upload_id",
    "parse_uploads",
    "tagging_xml",
    "uncarried_from_headers",
]

META_PREFIX = "x-amz-meta-"

# ObjectMeta field -> HTTP header
_META_HEADERS = {
    "content_type": "content-type",
    "cache_control": "cache-control",
    "content_disposition": "content-disposition",
    "content_encoding": "content-encoding",
    "content_language": "content-language",
    "website_redirect_location": "x-amz-website-redirect-location",
}

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SAFE_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_header(name: str, value: str, *, what: str | None = None) -> None:
    """Refuse a header that could not go on the wire exactly as meant (see the module docstring)."""
    label = what or name
    if not _TOKEN.fullmatch(name):
        raise InvalidRequest(
            f"{label}: {name!r} is not a valid HTTP header name",
            hint="metadata names may use letters, digits and !#$%&'*+.^_`|~-",
        )
    if not _SAFE_VALUE.fullmatch(value):
        bad = next(c for c in value if not _SAFE_VALUE.fullmatch(c))
        kind = "a line break" if bad in "\r\n" else ("a control character" if ord(bad) < 0x20 else "non-ASCII text")
        raise InvalidRequest(
            f"{label}: the value holds {kind} ({bad!r}), which an HTTP header cannot carry; not sent",
            hint="fix the value on the source; user metadata can hold any text, other headers only ASCII",
        )


def meta_to_headers(meta: ObjectMeta) -> dict[str, str]:
    """Request headers for ``meta``, every one checked."""
    headers = {header: value for field, header in _META_HEADERS.items() if (value := getattr(meta, field))}
    if meta.expires is not None:
        headers["expires"] = email.utils.format_datetime(meta.expires.astimezone(UTC), usegmt=True)
    for name, value in meta.user.items():
        headers[META_PREFIX + name] = encode_value(value)
    for name, value in headers.items():
        check_header(name, value, what=f"metadata {name}")
    return headers


def meta_from_headers(headers: Mapping[str, str]) -> ObjectMeta:
    """``ObjectMeta`` from response headers (lower-case names)."""
    user = {name[len(META_PREFIX) :]: decode_value(v) for name, v in headers.items() if name.startswith(META_PREFIX)}
    return ObjectMeta(
        **{field: headers.get(header) or None for field, header in _META_HEADERS.items()},
        expires=http_date(headers.get("expires")),
        user=user,
    )


# Response headers naming object properties that failover does not carry to another store.
_DEFAULT_STORAGE_CLASS = "STANDARD"


def uncarried_from_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    found: dict[str, str] = {}
    storage = headers.get("x-amz-storage-class")
    if storage and storage.upper() != _DEFAULT_STORAGE_CLASS:
        found["storage_class"] = storage
    encryption = headers.get("x-amz-server-side-encryption")
    if encryption and encryption.upper() != "AES256":  # SSE-S3 is every bucket's default: nothing to carry
        found["server_side_encryption"] = encryption
    if headers.get("x-amz-server-side-encryption-customer-algorithm"):
        found["server_side_encryption"] = "customer-provided key"
    lock = [headers[h] for h in ("x-amz-object-lock-mode", "x-amz-object-lock-legal-hold") if headers.get(h)]
    if lock:
        found["object_lock"] = ", ".join(lock)
    missing = headers.get("x-amz-missing-meta")
    if missing and missing != "0":
        found["user_metadata_unreadable"] = f"{missing} entries the source could not return as headers"
    return MappingProxyType(found)


_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def content_range(value: str) -> tuple[int, int | None] | None:
    """(first byte, total size or None when the server does not say) of a Content-Range header."""
    match = _RANGE.fullmatch(value.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(3)) if match.group(3) != "*" else None


# -- XML ------------------------------------------------------------------------------------------

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _root(body: bytes) -> tuple[ElementTree.Element, str]:
    # Documents from the configured server; expat >= 2.4 refuses entity-expansion bombs.
    root = ElementTree.fromstring(body)  # noqa: S314
    return root, _S3_NS if root.tag.startswith(_S3_NS) else ""


def error_code(body: bytes) -> tuple[str | None, str | None]:
    """(Code, Message) of an S3 error document, or (None, None) when the body is not one."""
    with contextlib.suppress(ElementTree.ParseError):
        root, ns = _root(body)
        if root.tag.removeprefix(ns) == "Error":
            return root.findtext(f"{ns}Code"), root.findtext(f"{ns}Message")
    return None, None


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str | None
    last_modified: dt.datetime | None


@dataclass(frozen=True)
class ListPage:
    objects: list[ListedObject]
    truncated: bool
    next_token: str | None
    """ListObjectsV2's NextContinuationToken, or ListObjects' NextMarker."""


def _timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(text)
    return None


def parse_list_page(body: bytes, *, url_encoded: bool) -> ListPage:
    """A ListObjectsV2 or ListObjects page. Keys are decoded when the server says it URL-encoded
    them. ``url_encoded`` is whether they were asked for so: a page asked for without encoding
    that holds a raw carriage return cannot be trusted (XML turns it into a line feed, so the key
    would silently change), and one holding characters XML cannot carry does not parse."""
    if not url_encoded and b"\r" in body:
        raise ListingIncomplete(
            "the listing holds a key with a carriage return, which an unencoded XML listing cannot carry faithfully"
        )
    try:
        root, ns = _root(body)
    except ElementTree.ParseError as exc:
        raise ListingIncomplete(f"unparseable listing ({exc}); a key may hold characters XML cannot carry") from exc
    encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    if url_encoded and not encoded and root.find(f"{ns}Contents") is not None:
        raise ListingIncomplete("the store ignored encoding-type=url in its listing; its keys cannot be trusted")
    objects = []
    for item in root.iterfind(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        if encoded:
            key = urllib.parse.unquote_plus(key)
        etag = item.findtext(f"{ns}ETag")
        objects.append(
            ListedObject(
                key=key,
                size=int(item.findtext(f"{ns}Size") or 0),
                etag=etag.strip('"') if etag else None,
                last_modified=_timestamp(item.findtext(f"{ns}LastModified")),
            )
        )
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") or None
    if token is None:
        marker = root.findtext(f"{ns}NextMarker")
        if marker:
            token = urllib.parse.unquote_plus(marker) if encoded else marker
    return ListPage(objects, truncated, token)


def parse_buckets(body: bytes) -> tuple[list[BucketInfo], str | None]:
    """ListBuckets: the buckets and the continuation token, if any."""
    root, ns = _root(body)
    buckets = [
        BucketInfo(item.findtext(f"{ns}Name") or "", _timestamp(item.findtext(f"{ns}CreationDate")))
        for item in root.iterfind(f"{ns}Buckets/{ns}Bucket")
    ]
    return buckets, root.findtext(f"{ns}ContinuationToken") or None


def parse_upload_id(body: bytes) -> str:
    root, ns = _root(body)
    upload_id = root.findtext(f"{ns}UploadId")
    if not upload_id:
        raise InvalidRequest("CreateMultipartUpload answered without an UploadId")
    return upload_id


def parse_uploads(body: bytes, bucket: str) -> tuple[list[UploadInfo], str | None, str | None]:
    """ListMultipartUploads: uploads, and the next key and upload-id markers when truncated."""
    root, ns = _root(body)
    encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    uploads = []
    for item in root.iterfind(f"{ns}Upload"):
        key = item.findtext(f"{ns}Key") or ""
        uploads.append(
            UploadInfo(
                bucket,
                urllib.parse.unquote_plus(key) if encoded else key,
                item.findtext(f"{ns}UploadId") or "",
                _timestamp(item.findtext(f"{ns}Initiated")),
            )
        )
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
    if not truncated:
        return uploads, None, None
    key_marker = root.findtext(f"{ns}NextKeyMarker") or ""
    return (
        uploads,
        urllib.parse.unquote_plus(key_marker) if encoded else key_marker,
        root.findtext(f"{ns}NextUploadIdMarker"),
    )


def parse_parts(body: bytes) -> tuple[list[PartInfo], int | None]:
    """ListParts: the parts, and the next part-number marker when truncated."""
    root, ns = _root(body)
    parts = [
        PartInfo(
            int(item.findtext(f"{ns}PartNumber") or 0),
            (item.findtext(f"{ns}ETag") or "").strip('"'),
            int(item.findtext(f"{ns}Size") or 0),
            item.findtext(f"{ns}ChecksumCRC32C") or None,
        )
        for item in root.iterfind(f"{ns}Part")
    ]
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
    marker = root.findtext(f"{ns}NextPartNumberMarker")
    return parts, int(marker) if truncated and marker else None


def parse_copy_etag(body: bytes) -> str:
    """The ETag of a CopyObjectResult or CopyPartResult."""
    root, ns = _root(body)
    return (root.findtext(f"{ns}ETag") or "").strip('"')


def parse_tags(body: bytes) -> dict[str, str]:
    root, ns = _root(body)
    return {
        item.findtext(f"{ns}Key") or "": item.findtext(f"{ns}Value") or ""
        for item in root.iterfind(f"{ns}TagSet/{ns}Tag")
    }


def _serialise(root: ElementTree.Element) -> bytes:
    data: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _element(parent: ElementTree.Element, name: str, text: str) -> None:
    ElementTree.SubElement(parent, name).text = text


def tagging_xml(tags: Mapping[str, str]) -> bytes:
    root = ElementTree.Element("Tagging", xmlns=_S3_NS.strip("{}"))
    tag_set = ElementTree.SubElement(root, "TagSet")
    for key, value in tags.items():
        tag = ElementTree.SubElement(tag_set, "Tag")
        _element(tag, "Key", key)
        _element(tag, "Value", value)
    return _serialise(root)


def complete_xml(parts: list[PartInfo]) -> bytes:
    root = ElementTree.Element("CompleteMultipartUpload", xmlns=_S3_NS.strip("{}"))
    for part in parts:
        item = ElementTree.SubElement(root, "Part")
        _element(item, "PartNumber", str(part.number))
        _element(item, "ETag", f'"{part.etag}"')
        if part.checksum:
            _element(item, "ChecksumCRC32C", part.checksum)
    return _serialise(root)


def create_bucket_xml(region: str) -> bytes:
    root = ElementTree.Element("CreateBucketConfiguration", xmlns=_S3_NS.strip("{}"))
    _element(root, "LocationConstraint", region)
    return _serialise(root)


def md5_base64(body: bytes) -> str:
    import hashlib

    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def b64_to_hex(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None
