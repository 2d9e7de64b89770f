"""The conformance suite against OpenStack Swift: libcloud's OpenStack Swift driver and a real Swift
cluster (proxy, account, container and object servers) started by the lab."""

from tests.conformance.storage import ObjectStoreConformance


class TestLibcloudSwiftDriverOnSwift(ObjectStoreConformance):
    provider = "swift"
