"""The one skip rule of every conformance suite: a test of something a provider does not declare
is skipped on that declaration, never on a failure."""

from __future__ import annotations

import enum
from collections.abc import Container
from typing import Any, Protocol

import pytest


class Declaring(Protocol):
    """A store, compute or DNS service: its provider name and the capabilities it declares."""

    name: str

    @property
    def capabilities(self) -> Container[Any]: ...


def declared(service: Declaring, *capabilities: enum.Enum) -> None:
    """Skip the calling test unless ``service`` declares every one of ``capabilities``."""
    for capability in capabilities:
        if capability not in service.capabilities:
            pytest.skip(f"declared: {service.name} does not declare {capability.value}")
