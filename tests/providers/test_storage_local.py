"""The conformance suite against the local-filesystem store (a directory inside the lab)."""

from tests.conformance.storage import ObjectStoreConformance


class TestLocalFilesystemStore(ObjectStoreConformance):
    provider = "disk"
