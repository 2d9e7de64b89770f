"""Translating an instance from one provider to another: pure logic, no provider calls.

Given the source instance's provider-neutral :class:`InstanceSpec` and the target's catalog and
declared capabilities, choose the cheapest size that meets the spec (or the nearest one, with the
shortfall spelled out), choose an image for the same OS and version, and list everything that does
not carry over. Nothing is dropped silently: every difference is in ``shortfall``, ``losses`` or
``problems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..compute import Catalog, ComputeCapabilities, ComputeCapability, Image, ImageRef, InstanceSpec, Size

__all__ = ["Translation", "choose_image", "choose_size", "translate"]


@dataclass(frozen=True)
class Translation:
    spec: InstanceSpec
    size: Size | None
    image: Image | None
    shortfall: tuple[str, ...] = ()
    """Ways the chosen size is smaller than the spec (the instance will run, with less)."""
    losses: tuple[str, ...] = ()
    """Source properties that cannot be carried (not portable, or the target cannot hold them)."""
    problems: tuple[str, ...] = ()
    """Reasons the instance cannot be created at all (no image, no size of the architecture)."""

    @property
    def creatable(self) -> bool:
        return not self.problems and self.size is not None


def _fits(size: Size, spec: InstanceSpec) -> bool:
    return (
        size.arch == spec.arch
        and size.vcpus >= spec.vcpus
        and size.memory_mib >= spec.memory_mib
        and size.gpus >= spec.gpus
    )


def _short(size: Size, spec: InstanceSpec) -> list[str]:
    shortfall = []
    if size.vcpus < spec.vcpus:
        shortfall.append(f"{size.vcpus} vCPU instead of {spec.vcpus}")
    if size.memory_mib < spec.memory_mib:
        shortfall.append(f"{size.memory_mib} MiB memory instead of {spec.memory_mib}")
    if size.gpus < spec.gpus:
        shortfall.append(f"{size.gpus} GPU instead of {spec.gpus}")
    return shortfall


def _price(size: Size) -> float:
    return size.price_per_hour if size.price_per_hour is not None else float("inf")


def choose_size(spec: InstanceSpec, sizes: Sequence[Size]) -> tuple[Size | None, list[str]]:
    """The cheapest size that meets the spec; failing that, the nearest of the same architecture
    (smallest relative shortfall), with the shortfall described. None if no size has the arch."""
    fitting = [s for s in sizes if _fits(s, spec)]
    if fitting:
        best = min(fitting, key=lambda s: (_price(s), s.vcpus, s.memory_mib, s.gpus, s.id))
        return best, []
    same_arch = [s for s in sizes if s.arch == spec.arch]
    if not same_arch:
        return None, []

    def deficit(size: Size) -> tuple[float, float]:
        missing = (
            max(0.0, 1 - size.vcpus / spec.vcpus) if spec.vcpus else 0.0,
            max(0.0, 1 - size.memory_mib / spec.memory_mib) if spec.memory_mib else 0.0,
            max(0.0, 1 - size.gpus / spec.gpus) if spec.gpus else 0.0,
        )
        return (sum(missing), _price(size))

    nearest = min(same_arch, key=deficit)
    return nearest, _short(nearest, spec)


def choose_image(ref: ImageRef, arch: str, catalog: Catalog) -> tuple[Image | None, list[str]]:
    """The target image for ``ref``: the explicit id if the target has it; else the same OS and
    version for the architecture; else the newest version of the same OS (noted as a loss)."""
    if ref.id:
        found = catalog.image(ref.id)
        return (found, []) if found else (None, [f"image {ref.id} does not exist on the target"])
    if not ref.os:
        return None, ["the source image's OS is not known; give one with --image os:version"]
    same_os = [i for i in catalog.images if i.os == ref.os and i.arch == arch]
    exact = [i for i in same_os if i.version == ref.version]
    if exact:
        return exact[0], []
    if same_os:
        newest = max(same_os, key=lambda i: tuple(int(p) if p.isdigit() else 0 for p in i.version.split(".")))
        return newest, [f"image {ref.os} {ref.version} not on the target: {newest.os} {newest.version} instead"]
    return None, [f"no {ref.os} image for {arch} on the target"]


def translate(
    spec: InstanceSpec,
    source_losses: Sequence[str],
    catalog: Catalog,
    capabilities: ComputeCapabilities,
    *,
    images_apply: bool = True,
) -> Translation:
    """The target size and image for ``spec``, and every way the target differs from the source.

    ``images_apply`` is False for targets that run everything on one OS (the local process
    adapter): then any image is accepted and the difference is a loss, not a problem.
    """
    losses = list(source_losses)
    problems: list[str] = []
    size, shortfall = choose_size(spec, catalog.sizes)
    if size is None:
        problems.append(f"no {spec.arch} size on the target")
    image: Image | None = None
    if images_apply:
        image, image_notes = choose_image(spec.image, spec.arch, catalog)
        (losses if image else problems).extend(image_notes)
    else:
        losses.append(f"image {spec.image} not applied (the target runs every instance on its own OS)")
    if spec.user_data and ComputeCapability.USER_DATA not in capabilities:
        losses.append("user-data not run (the target has no boot scripts)")
    if spec.ports and ComputeCapability.OPEN_PORTS not in capabilities:
        losses.append(f"ports {', '.join(map(str, spec.ports))}: no firewall on the target, every port is reachable")
    if spec.ssh_keys and ComputeCapability.SSH_KEYS not in capabilities:
        losses.append("SSH keys not installed (the target has no key management)")
    if spec.tags and ComputeCapability.TAGS not in capabilities:
        losses.append("tags not carried")
    if spec.disk_gib and size is not None and size.disk_gib is not None and size.disk_gib < spec.disk_gib:
        shortfall.append(f"{size.disk_gib} GiB disk instead of {spec.disk_gib}")
    losses.extend(catalog.notes)
    return Translation(spec, size, image, tuple(shortfall), tuple(losses), tuple(problems))
