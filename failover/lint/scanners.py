"""What finds AWS in one file: one scanner per format, each returning :class:`Hit` rows.

Structured formats are parsed (Terraform with python-hcl2's parser, CloudFormation/SAM,
Kubernetes and CI files as YAML node trees, Python with :mod:`ast`), so a finding sits on the
resource's or the call's first line and a resource type in a comment or a string is not one.
JavaScript/TypeScript, Go, Java and Ruby are read line by line for imports and client
constructions. Every text format is also searched for ARNs and ``*.amazonaws.com`` endpoints.
A file its parser refuses raises :class:`Unparsable` with the parser's message and line.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from .rules import Rule, RuleSet

__all__ = ["Hit", "Scanner", "Unparsable", "scan_text", "scanner_for"]


@dataclass(frozen=True)
class Hit:
    line: int
    rule: Rule
    resource: str
    """What was found, as the file names it: ``aws_sqs_queue.jobs``, ``boto3.client("sqs")``."""
    structured: bool = True
    """Found by a parser (False: by the ARN/endpoint text search, which yields to it on a line)."""


class Unparsable(Exception):
    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = max(1, line)


Scanner = Callable[[str, str, RuleSet], list[Hit]]

# --- text: ARNs and endpoints, in every format --------------------------------------------------

_ARN = re.compile(r"arn:(?:aws[\w-]*|\$\{[^}]{1,80}\}):([a-z0-9-]+):")
_HOST = re.compile(r"((?:(?:[a-z0-9-]+|\$\{[^}]{1,80}\})\.)+)amazonaws\.com(?:\.cn)?\b", re.IGNORECASE)
"""Host names, template placeholders allowed as labels (``${AWS::Region}``, ``${var.region}``)."""


def scan_text(path: str, text: str, rules: RuleSet) -> list[Hit]:
    hits: list[Hit] = []
    if "arn:" not in text and "amazonaws.com" not in text.lower():
        return hits
    for number, line in enumerate(text.splitlines(), 1):
        for match in _ARN.finditer(line):
            rule = rules.arn.get(match.group(1))
            if rule is not None:
                hits.append(Hit(number, rule, _clip(line, match.start()), structured=False))
        for match in _HOST.finditer(line):
            labels = match.group(1).lower().rstrip(".").split(".")
            rule = rules.host(labels)
            if rule is not None:
                hits.append(Hit(number, rule, match.group(0).lstrip("."), structured=False))
    return hits


def _clip(line: str, start: int) -> str:
    found = re.match(r"(?:\$\{[^}]*\}|[^\s\"',)}\]])+", line[start:])
    return found.group(0)[:120] if found else line[start : start + 60]


# --- Terraform --------------------------------------------------------------------------------


def _hcl_text(node: Any) -> str:
    """The text of an HCL label or string (interpolations kept as written)."""
    from lark import Token, Tree

    if isinstance(node, Token):
        return str(node)
    if isinstance(node, Tree):
        return "".join(_hcl_text(child) for child in node.children if not (isinstance(child, Token) and child == '"'))
    return ""


def _hcl_blocks(body: Any) -> Iterator[Any]:
    from lark import Tree

    for child in body.children:
        if isinstance(child, Tree) and child.data == "block":
            yield child


def _hcl_parts(block: Any) -> tuple[str, list[str], Any]:
    """(block type, labels, body) of a parsed HCL block."""
    from lark import Tree

    kind, labels, body = "", [], None
    for child in block.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "identifier" and not kind:
            kind = _hcl_text(child)
        elif child.data in ("string", "identifier"):
            labels.append(_hcl_text(child))
        elif child.data == "body":
            body = child
    return kind, labels, body


def _hcl_attribute(body: Any, name: str) -> str | None:
    from lark import Tree

    for child in body.children:
        if isinstance(child, Tree) and child.data == "attribute":
            parts = [c for c in child.children if isinstance(c, Tree)]
            if parts and _hcl_text(parts[0]) == name and len(parts) > 1:
                return _hcl_text(parts[-1]).strip()
    return None


def scan_terraform(path: str, text: str, rules: RuleSet) -> list[Hit]:
    if "aws" not in text and "module" not in text:
        return []  # nothing in it can name AWS (and parsing is most of lint's time)
    import hcl2
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        tree = hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        raise Unparsable(f"HCL: {str(exc).splitlines()[0]}", getattr(exc, "line", 1) or 1) from exc
    except (LarkError, ValueError, RecursionError) as exc:
        raise Unparsable(f"HCL: {exc}".splitlines()[0]) from exc
    body = next((c for c in tree.children if getattr(c, "data", None) == "body"), None)
    hits: list[Hit] = []
    if body is None:
        return hits
    for block in _hcl_blocks(body):
        kind, labels, inner = _hcl_parts(block)
        line = block.meta.line if not block.meta.empty else 1
        if kind in ("resource", "data") and labels:
            nested: set[str] = set()
            if inner is not None:
                for sub in _hcl_blocks(inner):
                    sub_kind, sub_labels, _ = _hcl_parts(sub)
                    nested.add(sub_labels[0] if sub_kind == "dynamic" and sub_labels else sub_kind)
            rule = rules.terraform(labels[0], nested)
            if rule is not None:
                name = ".".join(labels[:2])
                hits.append(Hit(line, rule, f"data.{name}" if kind == "data" else name))
        elif kind == "module" and labels and inner is not None:
            source = _hcl_attribute(inner, "source")
            rule = rules.module(source) if source else None
            if rule is not None:
                hits.append(Hit(line, rule, f"module.{labels[0]} ({source})"))
    return hits


def scan_terraform_json(path: str, text: str, rules: RuleSet) -> list[Hit]:
    document = _json(text)
    hits: list[Hit] = []
    for kind in ("resource", "data"):
        section = document.get(kind) if isinstance(document, dict) else None
        for resource_type, named in (section or {}).items() if isinstance(section, dict) else ():
            blocks = {k for body in (named or {}).values() if isinstance(body, dict) for k in body}
            rule = rules.terraform(resource_type, blocks)
            if rule is not None:
                for name in named or {"?": None}:
                    line = _line_of(text, f'"{resource_type}"')
                    hits.append(Hit(line, rule, f"{resource_type}.{name}"))
    return hits


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unparsable(f"JSON: {exc.msg}", exc.lineno) from exc
    except RecursionError as exc:
        raise Unparsable("JSON: nested too deeply to read") from exc


def _line_of(text: str, needle: str, start: int = 0) -> int:
    at = text.find(needle, start)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


# --- YAML: CloudFormation/SAM, Kubernetes, CI and compose files --------------------------------


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ComposeLoader(_SafeLoader):  # type: ignore[valid-type,misc] # libyaml's loader when PyYAML has it
    """Node trees only: CloudFormation's ``!Ref``/``!Sub``/``!GetAtt`` tags need no constructor."""


def _yaml_documents(text: str) -> list[yaml.Node]:
    try:
        return [doc for doc in yaml.compose_all(text, Loader=_ComposeLoader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise Unparsable(f"YAML: {exc.problem or exc}", mark.line + 1 if mark else 1) from exc
    except yaml.YAMLError as exc:
        raise Unparsable(f"YAML: {exc}") from exc
    except RecursionError as exc:
        raise Unparsable("YAML: nested too deeply to read") from exc


def _pairs(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _get(node: yaml.Node, key: str) -> yaml.Node | None:
    return next((v for k, v in _pairs(node) if _scalar(k) == key), None)


def _cloudformation(document: yaml.Node, rules: RuleSet) -> list[Hit]:
    resources = _get(document, "Resources")
    hits: list[Hit] = []
    for key, body in _pairs(resources) if resources is not None else []:
        resource_type = _scalar(_get(body, "Type"))
        if not resource_type:
            continue
        properties = _get(body, "Properties")
        names = {_scalar(k) or "" for k, _ in _pairs(properties)} if properties is not None else set()
        rule = rules.cloudformation(resource_type, names)
        if rule is not None:
            hits.append(Hit(key.start_mark.line + 1, rule, f"{resource_type} {_scalar(key)}"))
        events = _get(properties, "Events") if properties is not None else None
        for event, spec in _pairs(events) if events is not None else []:
            source = _scalar(_get(spec, "Type")) or ""
            event_rule = rules.sam_events.get(source)
            if event_rule is not None:
                what = f"{_scalar(key)} event {_scalar(event)} ({source})"
                hits.append(Hit(event.start_mark.line + 1, event_rule, what))
    return hits


def _is_cloudformation(document: yaml.Node) -> bool:
    if _get(document, "AWSTemplateFormatVersion") is not None:
        return True
    resources = _get(document, "Resources")
    return any(
        (_scalar(_get(body, "Type")) or "").startswith(("AWS::", "Custom::", "Alexa::"))
        for _, body in (_pairs(resources) if resources is not None else [])
    )


def _walk(node: yaml.Node, rules: RuleSet, hits: list[Hit]) -> None:
    """Keys that mean AWS wherever they sit: annotations, provisioners, ingress classes, images,
    GitHub Actions."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _walk(item, rules, hits)
        return
    for key, value in _pairs(node):
        name = _scalar(key)
        text = _scalar(value)
        line = key.start_mark.line + 1
        if name == "annotations":
            for annotation, annotation_value in _pairs(value):
                key_text = _scalar(annotation) or ""
                rule = rules.annotation(key_text)
                if key_text == "kubernetes.io/ingress.class":
                    rule = rules.ingress_classes.get(_scalar(annotation_value) or "")
                if rule is not None:
                    hits.append(Hit(annotation.start_mark.line + 1, rule, key_text))
        elif text is not None and name == "provisioner" and text in rules.provisioners:
            hits.append(Hit(line, rules.provisioners[text], f"provisioner: {text}"))
        elif text is not None and name == "ingressClassName" and text in rules.ingress_classes:
            hits.append(Hit(line, rules.ingress_classes[text], f"ingressClassName: {text}"))
        elif text is not None and name in ("image", "container"):
            rule = rules.image(text)
            if rule is not None:
                hits.append(Hit(line, rule, f"image: {text}"))
        elif text is not None and name == "uses":
            rule = rules.actions.get(text.split("@", 1)[0])
            if rule is not None:
                hits.append(Hit(line, rule, f"uses: {text}"))
        else:
            _walk(value, rules, hits)


_TEMPLATED_LINE = re.compile(r"^\s*(?:-\s*)?([\w./-]+)\s*:\s*['\"]?([^'\"#\s]*)")


def _templated_yaml(text: str, rules: RuleSet) -> list[Hit]:
    """Helm and other templated YAML is not YAML until rendered: its keys are read line by line."""
    hits: list[Hit] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _TEMPLATED_LINE.match(line)
        if not match:
            continue
        key, value = match.groups()
        rule: Rule | None = rules.annotation(key)
        if rule is None and key == "provisioner":
            rule = rules.provisioners.get(value)
        if rule is None and key == "image":
            rule = rules.image(value)
        if rule is None and key == "uses":
            rule = rules.actions.get(value.split("@", 1)[0])
        if rule is not None:
            hits.append(Hit(number, rule, f"{key}: {value}" if value else key))
    return hits


def scan_yaml(path: str, text: str, rules: RuleSet) -> list[Hit]:
    if "{{" in text and "}}" in text:
        return _templated_yaml(text, rules)
    hits: list[Hit] = []
    for document in _yaml_documents(text):
        if _is_cloudformation(document):
            hits += _cloudformation(document, rules)
        _walk(document, rules, hits)
    return hits


def scan_json(path: str, text: str, rules: RuleSet) -> list[Hit]:
    document = _json(text)
    if not (isinstance(document, dict) and isinstance(document.get("Resources"), dict)):
        return []
    try:
        return scan_yaml(path, text, rules)  # JSON is YAML: the node tree has the lines
    except Unparsable:
        pass
    hits: list[Hit] = []  # YAML 1.1 refuses some JSON (tabs): lines found by searching instead
    for name, body in document["Resources"].items():
        if isinstance(body, dict) and isinstance(body.get("Type"), str):
            props = body.get("Properties")
            rule = rules.cloudformation(body["Type"], set(props) if isinstance(props, dict) else set())
            if rule is not None:
                hits.append(Hit(_line_of(text, f'"{name}"'), rule, f"{body['Type']} {name}"))
    return hits


# --- Dockerfiles ----------------------------------------------------------------------------

_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE)


def scan_dockerfile(path: str, text: str, rules: RuleSet) -> list[Hit]:
    hits: list[Hit] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _FROM.match(line)
        if match:
            rule = rules.image(match.group(1))
            if rule is not None:
                hits.append(Hit(number, rule, f"FROM {match.group(1)}"))
    return hits


# --- Python ---------------------------------------------------------------------------------

_AWS_MODULES = ("boto3", "botocore", "aioboto3", "aiobotocore")
_FACTORY_WORDS = ("client", "resource")


def _callee(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _const(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_factory(lowered_name: str) -> bool:
    return lowered_name.endswith(_FACTORY_WORDS) or lowered_name == "create_client"


def _python_factories(tree: ast.Module) -> set[str]:
    """Names bound to a client factory by assignment: ``make = functools.partial(boto3.client, ...)``,
    ``new_client = session.client``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        if isinstance(value, ast.Call) and _callee(value.func) == "partial" and value.args:
            value = value.args[0]
        if isinstance(value, (ast.Attribute, ast.Name)) and _is_factory(_callee(value).lower()):
            found.add(node.targets[0].id)
    return found


def scan_python(path: str, text: str, rules: RuleSet) -> list[Hit]:
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise Unparsable(f"Python: {exc.msg}", exc.lineno or 1) from exc
    except (ValueError, RecursionError) as exc:
        raise Unparsable(f"Python: {exc}") from exc
    hits: list[Hit] = []
    uses_sdk = False
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            uses_sdk = uses_sdk or top in _AWS_MODULES or top.startswith(("mypy_boto3_", "types_aiobotocore_"))
            if top.startswith(("mypy_boto3_", "types_aiobotocore_")):
                sdk_name = top.split("_", 2)[-1].replace("_", "-")
                rule = rules.sdk.get(sdk_name)
                if rule is not None:
                    hits.append(Hit(getattr(node, "lineno", 1), rule, f"import {module}"))
    factories = _python_factories(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node.func)
        lowered = callee.lower()
        candidates = [node.args[0]] if node.args else []
        candidates += [k.value for k in node.keywords if k.arg in ("service_name", "service", "service_id")]
        if not _is_factory(lowered) and callee not in factories:
            # functools.partial(boto3.client, "sqs") and the like: a factory passed with its name
            if not any(_is_factory(_callee(arg).lower()) for arg in node.args):
                continue
            candidates = list(node.args[1:])
        for candidate in candidates:
            name = _const(candidate)
            rule = rules.sdk.get(name) if name else None
            if rule is not None:
                hits.append(Hit(node.lineno, rule, f'{callee}("{name}")'))
                break
    if uses_sdk:
        hits += _python_service_constants(tree, rules)
    return hits


def _python_service_constants(tree: ast.Module, rules: RuleSet) -> list[Hit]:
    """Service names kept in data for a client factory (``SERVICES = ("sqs", "sns")``, a default
    argument, a ``SERVICE = "dynamodb"`` constant) in a module that uses the AWS SDK."""
    hits: list[Hit] = []
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = list(node.elts)
        elif isinstance(node, ast.Dict):
            values = [v for v in (*node.keys, *node.values) if v is not None]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            values = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        elif isinstance(node, ast.Assign) and any("service" in _callee(t).lower() for t in node.targets):
            values = [node.value]
        for value in values:
            name = _const(value)
            rule = rules.sdk.get(name) if name else None
            if rule is not None:
                hits.append(Hit(value.lineno, rule, f'"{name}"'))
    return hits


# --- JavaScript/TypeScript, Go, Java, Ruby -------------------------------------------------

_JS_IMPORT = re.compile(r"""(?:\bfrom\s*|\brequire\s*\(\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]""")
_JS_NEW = re.compile(r"\bnew\s+(?:AWS\.)?([A-Z][\w]*)(?:\.[A-Z]\w*)*\s*\(")
"""``new DynamoDBClient(``, ``new AWS.SQS(``, ``new AWS.DynamoDB.DocumentClient(`` (the service is the first name)."""
_JS_STATIC = re.compile(r"\b([A-Z][\w]*Client)\.(?:from|builder|create)\s*\(")
_GO_IMPORT = re.compile(r'"github\.com/aws/aws-sdk-go(?:-v2)?/(service/[a-z0-9]+)')
_JAVA_IMPORT = re.compile(
    r"^\s*import\s+(?:static\s+)?(?:software\.amazon\.awssdk|com\.amazonaws)\.(services\.[a-z0-9]+)"
)
_RUBY_REQUIRE = re.compile(r"""\brequire\s*\(?\s*['"](aws-sdk-[a-z0-9]+)['"]""")
_RUBY_CONST = re.compile(r"\bAws::([A-Z]\w*)::")
_LINE_COMMENT = re.compile(r"^\s*(?://|#|\*|/\*)")


def _client_class(rules: RuleSet, name: str) -> Rule | None:
    """``SQSClient``, ``SqsClient``, ``SQS`` -> the rule naming the SQS client (case-blind)."""
    return rules.classes.get(name.removesuffix("Client").lower())


def scan_code(path: str, text: str, rules: RuleSet) -> list[Hit]:
    suffix = PurePosixPath(path).suffix.lower()
    hits: list[Hit] = []
    for number, line in enumerate(text.splitlines(), 1):
        if _LINE_COMMENT.match(line):
            continue
        if suffix == ".go":
            for match in _GO_IMPORT.finditer(line):
                rule = rules.go.get(match.group(1))
                if rule is not None:
                    hits.append(Hit(number, rule, match.group(0).strip('"')))
            continue
        if suffix in (".java", ".kt", ".kts", ".scala"):
            java_import = _JAVA_IMPORT.match(line)
            if java_import:
                rule = rules.java.get(java_import.group(1))
                if rule is not None:
                    hits.append(Hit(number, rule, line.strip().removesuffix(";")))
                continue
        if suffix == ".rb":
            for match in _RUBY_REQUIRE.finditer(line):
                rule = rules.ruby.get(match.group(1))
                if rule is not None:
                    hits.append(Hit(number, rule, f"require '{match.group(1)}'"))
            for match in _RUBY_CONST.finditer(line):
                rule = _client_class(rules, match.group(1))
                if rule is not None:
                    hits.append(Hit(number, rule, match.group(0).rstrip(":")))
            continue
        for match in _JS_IMPORT.finditer(line):
            package = match.group(1)
            rule = rules.js.get(package)
            if rule is None and package.startswith("aws-sdk/clients/"):
                rule = rules.sdk.get(package.rsplit("/", 1)[-1])
            if rule is not None:
                hits.append(Hit(number, rule, package))
        for pattern in (_JS_NEW, _JS_STATIC):
            for match in pattern.finditer(line):
                rule = _client_class(rules, match.group(1))
                if rule is not None:
                    hits.append(Hit(number, rule, match.group(0).rstrip("(").strip()))
    return hits


# --- which scanner reads which file -------------------------------------------------------------

_CODE = {".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts", ".go", ".java", ".kt", ".kts", ".scala", ".rb"}
_TEXT_ONLY = {".sh", ".bash", ".env", ".conf", ".cfg", ".ini", ".toml", ".properties", ".tfvars", ".hcl", ".xml"}


def scanner_for(name: str) -> Scanner | None:
    """The structured scanner for a file name, ``scan_text`` for text formats with no structure of
    their own, None for files lint does not read (documentation, images, lock files)."""
    lowered = name.lower()
    suffix = PurePosixPath(lowered).suffix
    if lowered.endswith(".tf.json"):
        return scan_terraform_json
    if suffix == ".tf":
        return scan_terraform
    if lowered in ("dockerfile", "containerfile") or lowered.startswith("dockerfile.") or suffix == ".dockerfile":
        return scan_dockerfile
    if suffix == ".py":
        return scan_python
    if suffix in _CODE:
        return scan_code
    if suffix in (".yaml", ".yml") or lowered.endswith(".template"):
        return scan_yaml
    if suffix == ".json":
        return scan_json
    if suffix in _TEXT_ONLY or lowered.startswith(".env"):
        return scan_text
    return None
