"""Plans as data: what a command or a playbook step would change, one :class:`Change` each.

A plan is a list of changes, each an action on one named resource with its state before and after
(``None`` where there is none: nothing before a create, nothing after a delete). Read-only work is
planned too (``read``), as are waits and questions to a person, so a dry run shows everything a
run would do in order. Reporters render changes (:func:`change_line` for people, :meth:`Change.to_json`
for scripts); nothing that plans formats text itself.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Action", "Change", "JsonValue", "change_line", "changes_from_json", "changes_to_json", "undo_of"]

JsonValue = None | bool | int | float | str | Sequence["JsonValue"] | Mapping[str, "JsonValue"]


class Action(enum.StrEnum):
    CREATE = "create"
    """The resource does not exist and will."""
    UPDATE = "update"
    """The resource exists and changes (``before`` -> ``after``)."""
    DELETE = "delete"
    """The resource exists and will not."""
    COPY = "copy"
    """Data is copied from one resource to another (a bucket's objects)."""
    READ = "read"
    """Read-only: inventory, verification, health checks."""
    WAIT = "wait"
    """Time passes (lowered TTLs expiring)."""
    ASK = "ask"
    """A person is asked to approve."""
    SEND = "send"
    """A message leaves (a webhook notification)."""


_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.COPY: ">",
    Action.READ: "=",
    Action.WAIT: ".",
    Action.ASK: "?",
    Action.SEND: "!",
}


@dataclass(frozen=True)
class Change:
    """One action on one resource."""

    action: Action
    resource: str
    """What is acted on, named so a person finds it: ``record www.example.com A on aws``."""
    before: JsonValue = None
    """The resource's relevant state now (None: it does not exist, or it does not matter)."""
    after: JsonValue = None
    """Its state once the change is made (None: it will not exist)."""
    detail: str = ""
    """Why, or what else to know (one short sentence)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "resource": self.resource,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            Action(data["action"]), data["resource"], data.get("before"), data.get("after"), data.get("detail", "")
        )


def changes_to_json(changes: Sequence[Change]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]


def changes_from_json(items: Sequence[Mapping[str, Any]]) -> list[Change]:
    return [Change.from_json(item) for item in items]


def _shown(value: JsonValue) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return " ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def change_line(change: Change) -> str:
    """One line for a person: ``~ update record www.example.com A on aws: ttl 300 -> ttl 60``."""
    line = f"{_SYMBOL[change.action]} {change.action.value} {change.resource}"
    if change.before is not None and change.after is not None:
        line += f": {_shown(change.before)} -> {_shown(change.after)}"
    elif change.after is not None:
        line += f": {_shown(change.after)}"
    elif change.before is not None:
        line += f" (was {_shown(change.before)})"
    if change.detail:
        line += f" ({change.detail})"
    return line


_INVERSE = {Action.CREATE: Action.DELETE, Action.DELETE: Action.CREATE, Action.UPDATE: Action.UPDATE}


def undo_of(changes: Sequence[Change]) -> list[Change]:
    """What undoing ``changes`` does, newest first: creates become deletes, deletes creates, updates
    swap their before and after. Changes that alter nothing (copy, read, wait, ask, send) have no undo."""
    return [
        Change(_INVERSE[c.action], c.resource, c.after, c.before, f"undo: {c.detail}" if c.detail else "undo")
        for c in reversed(changes)
        if c.action in _INVERSE
    ]
