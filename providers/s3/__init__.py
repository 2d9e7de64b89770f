"""S3 and S3-compatible storage through boto3."""

from .store import S3Store

__all__ = ["S3Store"]
