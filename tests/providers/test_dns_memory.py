"""The DNS conformance suite against the in-process MemoryDns (failover.testing), the test double the
runner's in-process tests use: it must behave like the real DNS services it stands in for."""

from collections.abc import Iterator

import pytest

from failover.dns import Dns
from failover.testing import MemoryDns, MemoryDnsOptions
from tests.conformance.dns import DnsConformance


class TestMemoryDns(DnsConformance):
    provider = "memory"

    @pytest.fixture(scope="class")
    @classmethod
    def dns(cls) -> Iterator[Dns]:  # type: ignore[override]
        dns = MemoryDns("memory", MemoryDnsOptions(space="conformance"))
        yield dns
        dns.close()


class TestMemoryDnsDeclaringLittle(DnsConformance):
    """A provider that declares no optional operation: each is refused as NotSupported."""

    provider = "memory-minimal"

    @pytest.fixture(scope="class")
    @classmethod
    def dns(cls) -> Iterator[Dns]:  # type: ignore[override]
        dns = MemoryDns("memory-minimal", MemoryDnsOptions(space="conformance-minimal", operations=()))
        yield dns
        dns.close()
