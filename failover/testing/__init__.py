"""Testing support shipped with failover.

* The pytest plugin (``pytest -p failover.testing``): a running lab of real servers, the reference
  platform seeded on it, and a drill runner (see :mod:`failover.testing.plugin`).
* :class:`MemoryStore` (provider type ``memory``): an in-process object store that passes the
  storage conformance suite, with fault hooks (:class:`Faults`) for tests of the engines above it.
* :class:`MemoryDns` and :class:`MemoryCompute` (provider type ``memory`` of the DNS and compute
  services): zones and instances in memory, passing their conformance suites, for in-process tests
  of the playbook runner, cutover and rollback.
* :class:`MemoryFeed` (feed type ``memory``): the change events of a memory store's buckets, for
  tests of ``failover standby``; :meth:`MemoryFeed.drop` loses events as a faulty feed would.

Importing this package does not import pytest; the plugin module is loaded only by pytest.
"""

from .memory import Faults, MemoryFeed, MemoryFeedOptions, MemoryOptions, MemoryStore
from .memory_services import MemoryCompute, MemoryComputeOptions, MemoryDns, MemoryDnsOptions, reset_services

__all__ = [
    "Faults",
    "MemoryCompute",
    "MemoryComputeOptions",
    "MemoryDns",
    "MemoryDnsOptions",
    "MemoryFeed",
    "MemoryFeedOptions",
    "MemoryOptions",
    "MemoryStore",
    "reset_services",
]

# When pytest loads this package as a plugin (-p failover.testing), it also loads the fixtures.
pytest_plugins = ["failover.testing.plugin"]
