"""The conformance suite against the lab's S3-compatible server (MinIO when one is reachable, else
SeaweedFS; the session header names which), through the s3 adapter."""

from tests.conformance.storage import ObjectStoreConformance


class TestS3OnPremServer(ObjectStoreConformance):
    provider = "onprem"
