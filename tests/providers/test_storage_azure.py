"""The conformance suite against Azure Blob storage: libcloud's Azure Blobs driver and Azurite,
Microsoft's emulator, started by the lab."""

from tests.conformance.storage import ObjectStoreConformance


class TestLibcloudAzureBlobsOnAzurite(ObjectStoreConformance):
    provider = "azure"
