"""The conformance suite against LocalStack's S3 (the lab's ``aws`` provider), through the s3 adapter."""

from tests.conformance.storage import ObjectStoreConformance


class TestS3OnLocalStack(ObjectStoreConformance):
    provider = "aws"
