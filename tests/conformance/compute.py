"""The Compute conformance suite, written once and run against every compute provider of the lab.

A provider test file subclasses :class:`ComputeConformance` and names a provider. Instances are
created from the provider's own catalog (the cheapest size; an Ubuntu image where the provider has
images) and destroyed at the end of each test. Skips happen only on a declaration (``declared:``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest

from failover.compute import Compute, ComputeCapability, ImageRef, InstanceSpec, InstanceState
from failover.config import Providers
from failover.connect import open_compute
from failover.errors import NotFound, NotSupported, Timeout
from failover.rehost.mapping import choose_image, choose_size

from .declared import declared


class ComputeConformance:
    provider: ClassVar[str]

    @pytest.fixture(scope="class")
    @classmethod
    def compute(cls, lab_providers: Providers) -> Iterator[Compute]:
        compute = open_compute(lab_providers, cls.provider)
        yield compute
        compute.close()

    @pytest.fixture
    def created(self, compute: Compute) -> Iterator[list[str]]:
        """Instance ids a test created; destroyed afterwards whatever happens."""
        ids: list[str] = []
        yield ids
        for instance_id in ids:
            compute.destroy(instance_id)

    def _spec(self, name: str, **extra: object) -> InstanceSpec:
        return InstanceSpec(name=name, vcpus=1, memory_mib=512, image=ImageRef("ubuntu", "16.04"), **extra)  # type: ignore[arg-type]

    def _create(self, compute: Compute, created: list[str], spec: InstanceSpec) -> str:
        catalog = compute.catalog()
        size, _ = choose_size(spec, catalog.sizes)
        assert size is not None, "the catalog has an x86_64 size"
        image, _ = choose_image(spec.image, spec.arch, catalog) if catalog.images else (None, [])
        instance = compute.create(spec, size=size.id, image=image.id if image else "", client_token=uuid.uuid4().hex)
        created.append(instance.id)
        return instance.id

    # -- tests -------------------------------------------------------------------------------------

    def test_catalog_has_sizes(self, compute: Compute) -> None:
        catalog = compute.catalog()
        assert catalog.sizes
        assert all(s.vcpus > 0 and s.memory_mib > 0 for s in catalog.sizes)

    def test_create_get_list_destroy(self, compute: Compute, created: list[str]) -> None:
        name = f"conf-{uuid.uuid4().hex[:8]}"
        tags = {"conformance": name} if ComputeCapability.TAGS in compute.capabilities else {}
        instance_id = self._create(compute, created, self._spec(name, tags=tags))
        running = compute.wait_for(instance_id, InstanceState.RUNNING, timeout=120)
        assert running.name == name
        assert running.address
        if tags:
            assert [i.id for i in compute.list_instances(tags)] == [instance_id]
            assert running.tags.get("conformance") == name
        compute.destroy(instance_id)
        compute.destroy(instance_id)  # idempotent
        assert instance_id not in [i.id for i in compute.list_instances()]

    def test_stop_and_start(self, compute: Compute, created: list[str]) -> None:
        declared(compute, ComputeCapability.START_STOP)
        instance_id = self._create(compute, created, self._spec(f"conf-{uuid.uuid4().hex[:8]}"))
        compute.wait_for(instance_id, InstanceState.RUNNING, timeout=120)
        compute.stop(instance_id)
        compute.wait_for(instance_id, InstanceState.STOPPED, timeout=120)
        compute.start(instance_id)
        compute.wait_for(instance_id, InstanceState.RUNNING, timeout=120)

    def test_user_data_is_kept(self, compute: Compute, created: list[str]) -> None:
        declared(compute, ComputeCapability.USER_DATA)
        declared(compute, ComputeCapability.READ_USER_DATA)
        script = "#!/bin/bash\necho conformance\nexec sleep 300\n"
        instance_id = self._create(compute, created, self._spec(f"conf-{uuid.uuid4().hex[:8]}", user_data=script))
        compute.wait_for(instance_id, InstanceState.RUNNING, timeout=120)
        assert compute.user_data(instance_id) == script
        other = self._create(compute, created, self._spec(f"conf-{uuid.uuid4().hex[:8]}"))
        assert compute.user_data(other) is None

    def test_list_by_tag_selects_exactly(self, compute: Compute, created: list[str]) -> None:
        declared(compute, ComputeCapability.TAGS)
        run = uuid.uuid4().hex[:8]
        blue = self._create(compute, created, self._spec(f"conf-{run}-b", tags={"conf-run": run, "colour": "blue"}))
        green = self._create(compute, created, self._spec(f"conf-{run}-g", tags={"conf-run": run, "colour": "green"}))
        assert sorted(i.id for i in compute.list_instances({"conf-run": run})) == sorted([blue, green])
        assert [i.id for i in compute.list_instances({"conf-run": run, "colour": "green"})] == [green]
        assert compute.list_instances({"conf-run": run, "colour": "red"}) == []

    def test_open_ports_are_read_back(self, compute: Compute, created: list[str]) -> None:
        declared(compute, ComputeCapability.OPEN_PORTS)
        instance_id = self._create(compute, created, self._spec(f"conf-{uuid.uuid4().hex[:8]}", ports=(8080, 443)))
        assert compute.get(instance_id).ports == (443, 8080)

    def test_waiting_for_a_state_that_never_comes_times_out(self, compute: Compute, created: list[str]) -> None:
        instance_id = self._create(compute, created, self._spec(f"conf-{uuid.uuid4().hex[:8]}"))
        compute.wait_for(instance_id, InstanceState.RUNNING, timeout=120)
        with pytest.raises(Timeout, match="not stopped"):
            compute.wait_for(instance_id, InstanceState.STOPPED, timeout=1, interval=0.2)

    def test_missing_instance(self, compute: Compute) -> None:
        with pytest.raises(NotFound):
            compute.get("i-0000000000000000f")
        compute.destroy("i-0000000000000000f")  # idempotent

    def test_undeclared_capabilities_raise_not_supported(self, compute: Compute) -> None:
        spec = self._spec("conf-never")
        probes = {
            ComputeCapability.START_STOP: lambda: compute.stop("i-0000000000000000f"),
            ComputeCapability.USER_DATA: lambda: compute.create(
                InstanceSpec("x", 1, 512, user_data="#!/bin/sh"), size="x", image="x", client_token="t"
            ),
            ComputeCapability.READ_USER_DATA: lambda: compute.user_data("i-0000000000000000f"),
            ComputeCapability.TAGS: lambda: compute.list_instances({"a": "b"}),
            ComputeCapability.OPEN_PORTS: lambda: compute.create(
                InstanceSpec("x", 1, 512, ports=(80,)), size="x", image="x", client_token="t"
            ),
            ComputeCapability.SSH_KEYS: lambda: compute.create(
                InstanceSpec("x", 1, 512, ssh_keys=("ssh-ed25519 AAAA",)), size="x", image="x", client_token="t"
            ),
        }
        assert spec.name == "conf-never"
        undeclared = [c for c in probes if c not in compute.capabilities]
        if not undeclared:
            pytest.skip(f"declared: {compute.name} declares every probed capability")
        for capability in undeclared:
            with pytest.raises(NotSupported):
                probes[capability]()
