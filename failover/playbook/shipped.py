"""The playbooks that ship with failover (top-level ``playbooks/``, installed as ``failover.playbooks``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_playbook", "shipped_playbooks"]


def shipped_playbooks() -> dict[str, Path]:
    """Name (the file name without ``.yaml``) -> file, for every shipped playbook."""
    folder = Path(str(resources.files("failover.playbooks")))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def shipped_playbook(name: str) -> Path | None:
    """The shipped playbook called ``name`` (with or without ``.yaml``), or None."""
    return shipped_playbooks().get(name.removesuffix(".yaml").removesuffix(".yml"))
