"""The conformance suite against the in-process MemoryStore (failover.testing), the test double the
engine's unit tests use: it must behave like the real stores it stands in for."""

from collections.abc import Iterator
from typing import ClassVar

import pytest

from failover.storage import ObjectStore
from failover.testing import MemoryOptions, MemoryStore
from tests.conformance.storage import ObjectStoreConformance


class TestMemoryStore(ObjectStoreConformance):
    provider = "memory"
    option_overrides: ClassVar[dict[str, object]] = {}

    @pytest.fixture(scope="class")
    @classmethod
    def store(cls) -> Iterator[ObjectStore]:  # type: ignore[override]
        store = MemoryStore("memory", MemoryOptions(space="conformance", page_size=250))
        store.part_size = store.capabilities.limits.min_part_size
        store.multipart_threshold = store.part_size
        yield store
        store.close()
