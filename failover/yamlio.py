"""Safe YAML loading with source positions.

Used for the providers file and playbooks. Compared with ``yaml.safe_load`` it also:

* rejects duplicate mapping keys (``yaml.safe_load`` silently keeps the last one);
* accepts only the standard YAML tags, so ``!!python/...`` and custom tags are errors, not objects;
* bounds alias expansion, so a "billion laughs" document is rejected instead of exhausting memory;
* records where each value came from, so validation errors can say ``file:line:column``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import FailoverError

__all__ = ["Loaded", "Path_", "YamlError", "format_location", "load_yaml", "load_yaml_file"]

Path_ = tuple[Any, ...]

MAX_NODES = 200_000
"""Values a document may expand to (aliases count each time they are used)."""
MAX_DEPTH = 64
"""How deeply mappings and lists may nest (a provider file or playbook needs fewer than ten)."""
MAX_SCALAR = 100_000
"""Characters in one value (a number of 5,000 digits is a mistake, not a setting)."""

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(FailoverError):
    """The document is not acceptable YAML. ``location`` is ``file:line:column``."""

    exit_code = 2

    def __init__(self, source: str, line: int | None, column: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.location = format_location(source, line, column)
        super().__init__(f"{self.location}: {message}")


def format_location(source: str, line: int | None, column: int | None = None) -> str:
    if line is None:
        return source
    return f"{source}:{line}" if column is None else f"{source}:{line}:{column}"


@dataclass(frozen=True)
class Loaded:
    """A loaded document: plain Python data plus where each part came from (1-based line, column)."""

    data: Any
    source: str
    positions: Mapping[Path_, tuple[int, int]]

    def position(self, path: Sequence[str | int]) -> tuple[int, int] | None:
        """Where ``path`` (or, failing that, its nearest ancestor that exists) was written."""
        parts = tuple(path)
        while True:
            if parts in self.positions:
                return self.positions[parts]
            if not parts:
                return None
            parts = parts[:-1]

    def locate(self, path: Sequence[str | int]) -> str:
        found = self.position(path)
        return format_location(self.source, *(found or (None, None)))


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.nodes = 0
        self.loader = yaml.SafeLoader("")

    def error(self, node: yaml.Node, message: str) -> YamlError:
        return YamlError(self.source, node.start_mark.line + 1, node.start_mark.column + 1, message)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(node, f"document expands to more than {MAX_NODES} values (alias bomb?)")
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise self.error(node, f"unsupported tag {node.tag!r}")
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        if node.tag not in _STANDARD_TAGS:
            raise self.error(node, f"unsupported tag {node.tag!r}; only plain YAML values are allowed")
        if isinstance(node.value, str) and len(node.value) > MAX_SCALAR:
            raise self.error(node, f"a value of {len(node.value)} characters is more than {MAX_SCALAR} allowed")
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.error(node, str(exc).splitlines()[0]) from exc
        except ValueError as exc:  # e.g. an integer with more digits than Python converts (4,300)
            raise self.error(node, f"not a usable value: {str(exc).splitlines()[0]}") from exc

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            raise self.error(node, f"unsupported tag {node.tag!r}")
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.error(source, "a merge key (<<) needs a mapping")
                    for k, v in self.mapping(source, path).items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, "mapping keys must be plain values")
            key = self.build(key_node, (*path, "<key>"))
            if not isinstance(key, str | int | bool | float) and key is not None:
                raise self.error(key_node, "mapping keys must be plain values")
            if key in explicit:
                raise self.error(key_node, f"duplicate key {key!r}")
            explicit.add(key)
            self.positions[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            result.setdefault(k, v)
        return result


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the (recursive) composer sees it."""
    depth = 0
    openers = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
               yaml.FlowSequenceStartToken)  # fmt: skip
    closers = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, openers):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = token.start_mark
                    raise YamlError(source, mark.line + 1, mark.column + 1, f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(token, closers):
                depth -= 1
    except yaml.YAMLError:
        return  # the composer reports it, with its position


def load_yaml(text: str, source: str = "<string>") -> Loaded:
    """Parse one YAML document safely. An empty document loads as ``None``."""
    _check_depth(text, source)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(source, mark.line + 1 if mark else None, mark.column + 1 if mark else None, problem) from exc
    except yaml.YAMLError as exc:
        raise YamlError(source, None, None, str(exc)) from exc
    except RecursionError:
        raise YamlError(source, None, None, f"nested more than {MAX_DEPTH} levels deep") from None
    if len(documents) > 1:
        second = documents[1]
        raise YamlError(source, second.start_mark.line + 1, None, "expected one YAML document, found several")
    builder = _Builder(source)
    data = builder.build(documents[0], ()) if documents and documents[0] is not None else None
    return Loaded(data=data, source=source, positions=builder.positions)


def load_yaml_file(path: Path) -> Loaded:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise YamlError(str(path), None, None, "file not found") from exc
    except UnicodeDecodeError as exc:
        raise YamlError(str(path), None, None, "not UTF-8 text") from exc
    except OSError as exc:
        raise YamlError(str(path), None, None, exc.strerror or str(exc)) from exc
    return load_yaml(text, str(path))
