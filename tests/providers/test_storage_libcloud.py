"""The conformance suite through the libcloud adapter, using libcloud's own MinIO driver against the
lab's S3-compatible server."""

from tests.conformance.storage import ObjectStoreConformance


class TestLibcloudMinIODriverOnPremServer(ObjectStoreConformance):
    provider = "onprem-libcloud"
