"""Loads divergences.yaml: the one list of real divergences, with reasons."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from failover.yamlio import load_yaml_file

__all__ = ["ENV_SERVER_KIND", "divergence_for"]

ENV_SERVER_KIND = "FAILOVER_TEST_ONPREM_KIND"


class Divergence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    test: str
    reason: str
    server: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    divergences: list[Divergence]


@functools.cache
def _load() -> list[Divergence]:
    return _File.model_validate(load_yaml_file(Path(__file__).with_name("divergences.yaml")).data).divergences


def divergence_for(provider: str, test: str) -> str | None:
    """The reason ``test`` (``name`` or ``name[param]``) is known to fail on ``provider``, if it is."""
    server = os.environ.get(ENV_SERVER_KIND, "")
    function = test.split("[", 1)[0]
    for entry in _load():
        if entry.provider == provider and entry.test in (test, function) and entry.server in (None, server):
            return entry.reason
    return None
