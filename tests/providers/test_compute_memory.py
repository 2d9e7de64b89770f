"""The compute conformance suite against the in-process MemoryCompute (failover.testing), the test
double the runner's in-process tests use: it must behave like the real providers it stands in for."""

from collections.abc import Iterator

import pytest

from failover.compute import Compute
from failover.testing import MemoryCompute, MemoryComputeOptions
from tests.conformance.compute import ComputeConformance


class TestMemoryCompute(ComputeConformance):
    provider = "memory"

    @pytest.fixture(scope="class")
    @classmethod
    def compute(cls) -> Iterator[Compute]:  # type: ignore[override]
        compute = MemoryCompute("memory", MemoryComputeOptions(space="conformance"))
        yield compute
        compute.close()


class TestMemoryComputeDeclaringLittle(ComputeConformance):
    """A provider that declares no optional operation: each is refused as NotSupported."""

    provider = "memory-minimal"

    @pytest.fixture(scope="class")
    @classmethod
    def compute(cls) -> Iterator[Compute]:  # type: ignore[override]
        compute = MemoryCompute("memory-minimal", MemoryComputeOptions(space="conformance-minimal", operations=()))
        yield compute
        compute.close()
