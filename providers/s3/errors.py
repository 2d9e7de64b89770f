"""S3 error responses -> failover errors: the s3 adapter's one error mapper. Every answer with an
error status (or an S3 error document in a 200 answer) goes through :func:`classify`; transport
failures (no answer at all) are mapped in :mod:`.wire`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from failover.errors import AlreadyExists, AuthError, FailoverError

from ..http_errors import CodeTable

__all__ = ["PERMISSIONS", "BucketOwnedByYou", "classify"]


class BucketOwnedByYou(AlreadyExists):
    """CreateBucket on a bucket this account already owns: success for an idempotent create."""


_TABLE = CodeTable(
    not_found=frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404", "NoSuchTagSet"}),
    auth=frozenset(
        {
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "TokenRefreshRequired",
            "AllAccessDisabled",
            "AccountProblem",
            "InvalidSecurity",
            "RequestTimeTooSkewed",
            "UnauthorizedAccess",
            "403",
        }
    ),
    throttled=frozenset(
        {
            "SlowDown",
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "TooManyRequests",
            "TooManyRequestsException",
            "503",
            "429",
        }
    ),
    transient=frozenset(
        {
            "InternalError",
            "ServiceUnavailable",
            "RequestTimeout",
            "RequestTimeoutException",
            "500",
            "502",
            "504",
            "OperationAborted",
        }
    ),
    conflict=frozenset({"BucketAlreadyExists"}),
    integrity=frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}),
    invalid=frozenset(
        {
            "InvalidBucketName",
            "KeyTooLongError",
            "InvalidArgument",
            "InvalidRange",
            "EntityTooLarge",
            "EntityTooSmall",
            "InvalidPart",
            "InvalidPartOrder",
            "MalformedXML",
            "InvalidRequest",
            "MetadataTooLarge",
            "InvalidTag",
            "BucketNotEmpty",
            "NotImplemented",
            "MethodNotAllowed",
            "IllegalLocationConstraintException",
            "InvalidLocationConstraint",
        }
    ),
    hints={
        "RequestTimeTooSkewed": "this machine's clock differs from the provider's; sync it (NTP) and retry",
        "SignatureDoesNotMatch": "the secret key is wrong, or this machine's clock is far off",
        "InvalidAccessKeyId": "the access key id is not known to this provider",
        "AccessDenied": "the credentials lack a permission this operation needs",
        "NotImplemented": "the store does not implement this API; declare it unsupported in the provider's options",
        "XAmzContentSHA256Mismatch": "the store rejects boto3 checksums: set options.checksums: when_required",
        "BadDigest": "the body did not arrive as sent, or the store does not support the checksum it was sent",
    },
)


# The IAM actions each operation of the s3 adapter needs (the least-privilege policies in
# RELIABILITY.md are built from this table): an AccessDenied names what is missing.
PERMISSIONS = {
    "list_buckets": "s3:ListAllMyBuckets",
    "bucket_exists": "s3:ListBucket",
    "create_bucket": "s3:CreateBucket",
    "delete_bucket": "s3:DeleteBucket",
    "list_objects": "s3:ListBucket",
    "head": "s3:GetObject",
    "open": "s3:GetObject",
    "read": "s3:GetObject",
    "get_tags": "s3:GetObjectTagging",
    "put": "s3:PutObject",
    "put_tags": "s3:PutObjectTagging",
    "copy": "s3:GetObject on the source and s3:PutObject",
    "delete": "s3:DeleteObject",
    "start_upload": "s3:PutObject",
    "upload_part": "s3:PutObject",
    "complete_upload": "s3:PutObject",
    "abort_upload": "s3:AbortMultipartUpload",
    "list_uploads": "s3:ListBucketMultipartUploads",
    "list_parts": "s3:ListMultipartUploadParts",
}


def classify(code: str, status: int, message: str, headers: Mapping[str, str], **common: Any) -> FailoverError:
    """The failover error for an S3 error response (code from the XML body, HTTP status, headers)."""
    if code == "BucketAlreadyOwnedByYou":
        text = f"{code}: {message}" if message and message != code else code
        return BucketOwnedByYou(text, status=status, **common)
    error = _TABLE.classify(code, status, message, headers, **common)
    needed = PERMISSIONS.get(str(common.get("operation", "")))
    if isinstance(error, AuthError) and code in ("AccessDenied", "403") and needed:
        target = common.get("target") or "the bucket"
        error.hint = f"the credentials lack {needed} on {target}"
    return error
