"""Loading a playbook: safe YAML (no tags, no duplicate keys, bounded aliases), secrets only by
reference, ``{{ variable }}`` substitution, schema validation, and the step graph checked, all
before anything runs. Every error names ``file:line`` and what to do."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import Providers
from ..errors import PlaybookError
from ..secrets import register_url_secrets
from ..yamlio import Loaded, Path_, YamlError, load_yaml, load_yaml_file
from .schema import STEP_KINDS, NotifyStep, Playbook, RehostStep, Step

__all__ = ["LoadedPlaybook", "load_playbook", "load_playbook_text", "parse_variables", "provider_lookup"]

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "access_key", "private_key")
Lookup = Callable[[str], str | None]
"""Resolves a built-in variable (``providers.NAME.endpoint``); None when there is no such value."""


def provider_lookup(providers: Callable[[], Providers]) -> Lookup:
    """Built-in variables from the providers file (read only if a playbook uses one):
    ``providers.NAME.endpoint``, ``providers.NAME.region``, ``providers.NAME.SERVICE.endpoint``.
    Endpoints and regions only: nothing secret is reachable this way."""

    def lookup(name: str) -> str | None:
        parts = name.split(".")
        if parts[0] != "providers" or len(parts) not in (3, 4) or parts[-1] not in ("endpoint", "region"):
            return None
        config = providers()
        if parts[1] not in config.names:
            return None
        services = config.services(parts[1])
        service = parts[2] if len(parts) == 4 else ("storage" if "storage" in services else services[0])
        if service not in services:
            return None
        spec = config.spec(parts[1], service)
        return spec.endpoint if parts[-1] == "endpoint" else spec.region

    return lookup


@dataclass(frozen=True)
class LoadedPlaybook:
    playbook: Playbook
    path: Path
    digest: str
    """Of what the steps do once the variables are substituted (descriptions left out): a run's identity."""
    variables: dict[str, Any]
    order: list[Step]
    """Steps in the order they run (dependencies first, otherwise as written)."""

    def step(self, step_id: str) -> Step:
        for step in (*self.playbook.steps, *self.playbook.rollback):
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def parse_variables(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--var NAME=VALUE`` arguments."""
    found = {}
    for value in values:
        name, equals, item = value.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise PlaybookError(f"--var {value!r}: write NAME=VALUE (NAME: letters, digits, '_')")
        found[name] = item
    return found


def _walk(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any, Any]]:
    """(path, key, value) of every mapping entry, depth first."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key), key, value
            yield from _walk(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(value, (*path, index))


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _refuse_inline_secrets(loaded: Loaded) -> None:
    for path, key, value in _walk(loaded.data):
        if not isinstance(key, str) or not _looks_secret(key):
            continue
        if isinstance(value, dict) and set(value) == {"env"}:
            continue
        raise PlaybookError(
            f"{loaded.locate(path)}: {'.'.join(map(str, path))}: a secret may not be written in a playbook",
            hint="put it in an environment variable and write {env: VARIABLE_NAME}",
        )


def _resolve_variables(loaded: Loaded, variables: dict[str, Any]) -> dict[str, Any]:
    """Variables whose value names other variables ("compute: '{{ target }}'") take their values,
    after --var overrides, so a default can follow another variable. (References to
    providers.NAME.endpoint are left for the substitution of the whole document.)"""
    resolved = dict(variables)

    def refers_to(value: Any) -> list[str]:
        return [n for n in _VARIABLE.findall(value) if "." not in n] if isinstance(value, str) else []

    for _ in range(len(resolved) + 1):
        pending = {name: refers_to(value) for name, value in resolved.items() if refers_to(value)}
        if not pending:
            return resolved
        for name, names in pending.items():
            unknown = [n for n in names if n not in resolved]
            if unknown:
                raise PlaybookError(
                    f"{loaded.locate(('variables', name))}: variable {name!r} refers to {unknown[0]!r}, "
                    "which is not declared"
                )
            if any(refers_to(resolved[n]) for n in names):
                continue  # those resolve first
            value = resolved[name]
            whole = _VARIABLE.fullmatch(value.strip())
            if whole:  # keeps the other variable's type
                resolved[name] = resolved[whole.group(1)]
            else:
                resolved[name] = _VARIABLE.sub(lambda m: str(resolved.get(m.group(1), m.group(0))), value)
    cycle = ", ".join(sorted(n for n, v in resolved.items() if refers_to(v)))
    raise PlaybookError(f"{loaded.locate(('variables',))}: variables refer to each other in a cycle: {cycle}")


def _substitute(loaded: Loaded, variables: Mapping[str, Any], lookup: Lookup) -> Any:
    def value_of(name: str, path: Path_) -> Any:
        if name in variables:
            return variables[name]
        found = lookup(name) if "." in name else None
        if found is None:
            known = ", ".join(sorted(variables)) or "none"
            raise PlaybookError(
                f"{loaded.locate(path)}: unknown variable {name!r}",
                hint=f"declare it under variables: (declared: {known}), or use providers.NAME.endpoint",
            )
        return found

    def visit(item: Any, path: Path_) -> Any:
        if isinstance(item, dict):
            return {
                (visit(k, (*path, k)) if isinstance(k, str) else k): (
                    v if path == () and k == "variables" else visit(v, (*path, k))
                )
                for k, v in item.items()
            }
        if isinstance(item, list):
            return [visit(v, (*path, i)) for i, v in enumerate(item)]
        if isinstance(item, str):
            whole = _VARIABLE.fullmatch(item.strip())
            if whole:  # "{{ ttl }}" keeps the variable's type (a number stays a number)
                return value_of(whole.group(1), path)
            return _VARIABLE.sub(lambda m: str(value_of(m.group(1), path)), item)
        return item

    return visit(loaded.data, ())


def _errors(exc: ValidationError, loaded: Loaded, data: Mapping[str, Any]) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        # Inside a step, pydantic names the union member (the kind) after the index: drop it, so
        # the path matches the document again.
        if len(loc) >= 3 and loc[0] in ("steps", "rollback") and isinstance(loc[1], int) and loc[2] in STEP_KINDS:
            del loc[2]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "union_tag_invalid":
            message = f"unknown step kind; kinds: {', '.join(STEP_KINDS)}"
            loc.append("kind")
        elif error["type"] == "union_tag_not_found":
            message = f"missing field 'kind'; kinds: {', '.join(STEP_KINDS)}"
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        step_id = _step_id(data, loc)
        where = f" (step {step_id!r})" if step_id else ""
        lines.append(f"{loaded.locate(loc)}: {dotted}{where}: {message}")
    return lines


def _step_id(data: Mapping[str, Any], loc: list[Any]) -> str | None:
    if len(loc) >= 2 and loc[0] in ("steps", "rollback") and isinstance(loc[1], int):
        steps = data.get(loc[0])
        if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
            value = steps[loc[1]].get("id")
            return str(value) if value is not None else None
    return None


def _order(playbook: Playbook, loaded: Loaded) -> list[Step]:
    """Dependencies first; otherwise the order as written. Checks ids, needs and references."""
    seen: dict[str, tuple[str, int]] = {}
    for section in ("steps", "rollback"):
        for index, step in enumerate(getattr(playbook, section)):
            if step.id in seen:
                raise PlaybookError(f"{loaded.locate((section, index, 'id'))}: step id {step.id!r} is used twice")
            seen[step.id] = (section, index)
    steps = {s.id: s for s in playbook.steps}
    needs: dict[str, set[str]] = {}
    for index, step in enumerate(playbook.steps):
        wanted = set(step.depends_on())
        fleet_of = step.fleet_step()
        if fleet_of:
            where = loaded.locate(("steps", index, "fleet_of"))
            if not isinstance(steps.get(fleet_of), RehostStep):
                raise PlaybookError(f"{where}: fleet_of {fleet_of!r} is not a rehost step of this playbook")
        for need in step.needs:
            if need not in steps:
                raise PlaybookError(
                    f"{loaded.locate(('steps', index, 'needs'))}: step {step.id!r} needs {need!r}, "
                    "which is not a step of this playbook",
                    hint=f"steps: {', '.join(steps)}",
                )
        needs[step.id] = wanted - {step.id}
    for index, step in enumerate(playbook.rollback):
        fleet_of = step.fleet_step()
        if fleet_of and not isinstance(steps.get(fleet_of), RehostStep):
            raise PlaybookError(f"{loaded.locate(('rollback', index, 'fleet_of'))}: no rehost step {fleet_of!r}")
    order: list[Step] = []
    done: set[str] = set()
    pending = list(playbook.steps)
    while pending:
        ready = next((s for s in pending if needs[s.id] <= done), None)
        if ready is None:
            cycle = ", ".join(s.id for s in pending)
            raise PlaybookError(f"{loaded.source}: the steps' needs form a cycle among: {cycle}")
        order.append(ready)
        done.add(ready.id)
        pending.remove(ready)
    return order


def load_playbook(
    path: Path, overrides: Mapping[str, str] | None = None, lookup: Lookup = lambda name: None
) -> LoadedPlaybook:
    """Load, check and resolve the playbook at ``path``. Raises PlaybookError (exit 2) on any problem."""
    try:
        loaded = load_yaml_file(path)
    except YamlError as exc:
        raise PlaybookError(exc.message, hint="a playbook is one plain YAML document") from None
    return _resolve(loaded, path, (path.read_text(encoding="utf-8") if path.exists() else ""), overrides, lookup)


def load_playbook_text(
    text: str, source: str = "<playbook>", overrides: Mapping[str, str] | None = None, lookup: Lookup = lambda n: None
) -> LoadedPlaybook:
    """The same from text (for tests and fuzzing)."""
    try:
        loaded = load_yaml(text, source)
    except YamlError as exc:
        raise PlaybookError(exc.message) from None
    return _resolve(loaded, Path(source), text, overrides, lookup)


def _resolve(
    loaded: Loaded, path: Path, text: str, overrides: Mapping[str, str] | None, lookup: Lookup
) -> LoadedPlaybook:
    if not isinstance(loaded.data, dict):
        raise PlaybookError(f"{loaded.source}: expected a mapping with version, name, description and steps")
    _refuse_inline_secrets(loaded)
    declared = loaded.data.get("variables") or {}
    if not isinstance(declared, dict):
        raise PlaybookError(f"{loaded.locate(('variables',))}: variables: expected a mapping of NAME: value")
    variables: dict[str, Any] = dict(declared)
    # A variable declared with no value (``zone: ~``) is required: it must come from --var.
    missing = [name for name, value in declared.items() if value is None and name not in (overrides or {})]
    if missing:
        raise PlaybookError(
            f"{loaded.source}: required variable(s) not given: {', '.join(missing)}",
            hint="add " + " ".join(f"--var {name}=VALUE" for name in missing),
        )
    for name, value in (overrides or {}).items():
        if name not in declared:
            raise PlaybookError(
                f"--var {name}: {loaded.source} declares no variable {name!r}",
                hint=f"declared: {', '.join(sorted(declared)) or 'none'}",
            )
        kind = str if declared[name] is None else type(declared[name])
        variables[name] = _coerce(name, value, kind)
    for name, value in variables.items():
        if not isinstance(value, str | int | float | bool):
            raise PlaybookError(f"{loaded.locate(('variables', name))}: variable {name!r} must be a plain value")
    variables = _resolve_variables(loaded, variables)
    data = _substitute(loaded, variables, lookup)
    if isinstance(data, dict) and isinstance(data.get("variables"), dict):
        data["variables"] = dict(variables)
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        lines = _errors(exc, loaded, data)
        raise PlaybookError(f"{loaded.source}: invalid playbook\n  " + "\n  ".join(lines)) from None
    order = _order(playbook, loaded)
    for step in (*playbook.steps, *playbook.rollback):
        if isinstance(step, NotifyStep) and isinstance(step.url, str):
            register_url_secrets(step.url)  # a webhook URL is a credential: never shown, logged or saved
    # A run's identity is what its steps do once the variables are in: a --var that changes no step
    # (or only a description) is the same run, and resuming it is the same command.
    does = playbook.model_dump(mode="json", exclude={"description": True, "variables": True, "name": True})
    for section in ("steps", "rollback"):
        for step in does.get(section, []):
            step.pop("description", None)
    identity = json.dumps({"name": playbook.name, "does": does}, sort_keys=True, default=str)
    digest = hashlib.sha256(identity.encode()).hexdigest()
    return LoadedPlaybook(playbook, path, digest, variables, order)


def _coerce(name: str, value: str, kind: type) -> Any:
    """A --var value as the type the playbook declared (a number stays a number)."""
    try:
        if kind is bool:
            lowered = value.lower()
            if lowered not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(value)
            return lowered in ("true", "yes", "1")
        if kind in (int, float):
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        expected = "true or false" if kind is bool else "a number"
        raise PlaybookError(f"--var {name}={value}: expected {expected}") from None
    return value
