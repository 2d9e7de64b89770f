"""botocore exceptions -> failover errors for the AWS services other than S3's data path (EC2, Route53,
SQS and S3 notification settings for the change feed, and the account inventory's services). The
only place in this family that knows botocore's exceptions."""

from __future__ import annotations

from failover.errors import converter

from ..botocore_errors import KINDS, CodeTable, translator

__all__ = ["converted", "translate"]

TABLE = CodeTable(
    not_found=frozenset(
        {
            "NoSuchHostedZone",
            "NoSuchEntity",
            "ResourceNotFoundException",
            "NotFoundException",
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "NoSuchChange",
            "NoSuchBucket",
        }
    ),
    not_found_suffix=".NotFound",
    auth=frozenset(
        {
            "UnauthorizedOperation",
            "AuthFailure",
            "AccessDenied",
            "AccessDeniedException",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "RequestExpired",
            "OptInRequired",
            "UnrecognizedClientException",
        }
    ),
    throttled=frozenset(
        {
            "RequestLimitExceeded",
            "Throttling",
            "ThrottlingException",
            "TooManyRequestsException",
            "PriorRequestNotComplete",
            "SlowDown",
        }
    ),
    transient=frozenset(
        {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "InsufficientInstanceCapacity"}
    ),
    conflict=frozenset(
        {
            "InvalidGroup.Duplicate",
            "InvalidKeyPair.Duplicate",
            "HostedZoneAlreadyExists",
            "ResourceInUseException",
            "ConflictingDomainExists",
        }
    ),
    invalid=frozenset(
        {
            "InvalidParameterValue",
            "InvalidParameterCombination",
            "MissingParameter",
            "Unsupported",
            "InvalidInput",
            "InvalidChangeBatch",
            "ValidationError",
            "ValidationException",
            "InvalidAMIID.Malformed",
        }
    ),
    hints={
        "UnauthorizedOperation": "the credentials lack a permission this operation needs",
        "AuthFailure": "the access key or secret is wrong",
        "InvalidClientTokenId": "the access key id is not known to AWS",
        "RequestLimitExceeded": "AWS is throttling this account's API calls; retried with backoff",
        "InsufficientInstanceCapacity": "no capacity for this size in this zone now; retry, or pick another size",
    },
)

translate = translator(TABLE.classify)
converted = converter(KINDS, translate)
"""Wrap every boto3 call of this family: ``with converted("create", name): ...``."""
