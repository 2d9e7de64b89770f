"""The lint rules: data, one YAML file per service family beside this module (``rules/*.yaml``).

A rule names one AWS service, how portable it is (:class:`Portability`), what replaces it and
the effort, and how it shows in code (``match``). Every matcher is a list of literal names or
prefixes; nothing in a rule is code. :class:`RuleSet` turns the rules into the lookup tables the
scanners use, and is also what ``failover inventory`` labels a live account's resources with, so
a repository and an account are judged in one vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

__all__ = ["EFFORT_DAYS", "Example", "Match", "Portability", "Rule", "RuleSet", "load_rules", "shipped_rules"]


class Portability(enum.StrEnum):
    """How hard a service is to leave, worst first."""

    PROPRIETARY = "proprietary"
    """An API with no drop-in equivalent: code or data model is rewritten."""
    MANAGED = "managed"
    """A managed open-source engine: the engine runs anywhere, only the operator changes."""
    PORTABLE = "portable"
    """Standard everywhere (machines, the S3 API, DNS): re-expressed or moved by failover itself."""
    UNCLASSIFIED = "unclassified"
    """An AWS resource no rule knows yet: not called lock-in, not called portable, listed for review."""

    @property
    def rank(self) -> int:
        return {"proprietary": 3, "managed": 2, "portable": 1, "unclassified": 0}[self.value]

    @property
    def sarif_level(self) -> str:
        return {"proprietary": "error", "managed": "warning", "portable": "note", "unclassified": "warning"}[self.value]


Effort = Literal["small", "medium", "large"]
EFFORT_DAYS: dict[str, tuple[int, int]] = {"small": (1, 3), "medium": (3, 10), "large": (10, 30)}
"""Engineer-days to move one service off AWS, by effort class (a planning range, not a quote)."""


class Match(BaseModel):
    """How a service shows in a repository. Lists of literal names; prefixes where said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sdk: tuple[str, ...] = ()
    """AWS SDK service ids (boto3's names: ``sqs``, ``cognito-idp``). They also give the defaults
    for ``arn``, ``hosts``, ``js``, ``go``, ``java`` and ``ruby``."""
    arn: tuple[str, ...] = ()
    """ARN service parts (``arn:aws:<this>:``), beside the sdk ids."""
    hosts: tuple[str, ...] = ()
    """Labels of ``*.amazonaws.com`` host names (``sqs`` in ``sqs.eu-west-1.amazonaws.com``)."""
    terraform: tuple[str, ...] = ()
    """Terraform resource and data source types; an entry ending in ``_`` is a prefix."""
    terraform_modules: tuple[str, ...] = ()
    """Substrings of a module's ``source`` (registry modules such as ``terraform-aws-modules/sqs/``)."""
    terraform_block: str | None = None
    """Only resources holding this nested block (``alias``); such a rule wins over one without."""
    cloudformation: tuple[str, ...] = ()
    """CloudFormation and SAM resource types; an entry ending in ``::`` is a prefix."""
    cloudformation_property: str | None = None
    """Only resources with this property (``AliasTarget``); such a rule wins over one without."""
    sam_events: tuple[str, ...] = ()
    """SAM function event source types (``Events: {Jobs: {Type: SQS}}``)."""
    classes: tuple[str, ...] = ()
    """SDK client names: ``new AWS.<C>(`` (JavaScript v2), ``new <C>Client(`` (v3), ``Aws::<C>::`` (Ruby)."""
    js: tuple[str, ...] = ()
    """npm packages, beside ``@aws-sdk/client-<sdk>``."""
    go: tuple[str, ...] = ()
    """Go import path endings, beside ``service/<sdk>`` of aws-sdk-go and aws-sdk-go-v2."""
    java: tuple[str, ...] = ()
    """Java package parts, beside ``services.<sdk>`` of both AWS SDKs for Java."""
    ruby: tuple[str, ...] = ()
    """Ruby gems, beside ``aws-sdk-<sdk>``."""
    k8s_annotations: tuple[str, ...] = ()
    """Kubernetes annotation keys; an entry ending in ``-`` or ``/`` is a prefix."""
    k8s_provisioners: tuple[str, ...] = ()
    """StorageClass provisioners."""
    k8s_ingress_classes: tuple[str, ...] = ()
    """Ingress class names."""
    images: tuple[str, ...] = ()
    """Container image reference prefixes (Dockerfiles, CI files, manifests)."""
    actions: tuple[str, ...] = ()
    """GitHub Actions (``uses:`` without the ``@ref``)."""
    files: tuple[str, ...] = ()
    """File names that are themselves the dependency (``buildspec.yml``)."""


class Example(BaseModel):
    """A file in which the rule must find something: the rule's own test (tests/lint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    text: str


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    service: str
    title: str
    portability: Portability = Field(alias="class")
    replacement: str
    effort: Effort
    why: str
    match: Match
    examples: tuple[Example, ...] = Field(min_length=1)
    family: str = ""

    @property
    def effort_days(self) -> tuple[int, int]:
        return EFFORT_DAYS[self.effort]

    def sdk_names(self) -> set[str]:
        return set(self.match.sdk)


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str
    rules: list[Rule]


def _load_file(path: Path | str, text: str) -> list[Rule]:
    try:
        parsed = _RuleFile.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
    return [rule.model_copy(update={"family": parsed.family}) for rule in parsed.rules]


class RuleSet:
    """The rules, indexed the ways the scanners look things up."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ConfigError(f"lint rule {rule.id} is defined twice")
            seen.add(rule.id)
        self.by_id = {rule.id: rule for rule in self.rules}
        self.sdk: dict[str, Rule] = {}
        self.arn: dict[str, Rule] = {}
        self.hosts: dict[str, Rule] = {}
        self.classes: dict[str, Rule] = {}
        self.js: dict[str, Rule] = {}
        self.go: dict[str, Rule] = {}
        self.java: dict[str, Rule] = {}
        self.ruby: dict[str, Rule] = {}
        self.provisioners: dict[str, Rule] = {}
        self.ingress_classes: dict[str, Rule] = {}
        self.actions: dict[str, Rule] = {}
        self.files: dict[str, Rule] = {}
        self.sam_events: dict[str, Rule] = {}
        for rule in self.rules:
            m = rule.match
            flat = [s.replace("-", "") for s in m.sdk]
            self._add(self.sdk, m.sdk, rule)
            self._add(self.arn, (*m.sdk, *m.arn), rule)
            self._add(self.hosts, (*m.sdk, *m.hosts), rule)
            self._add(self.classes, (c.lower() for c in m.classes), rule)  # looked up case-blind
            self._add(self.js, (*(f"@aws-sdk/client-{s}" for s in m.sdk), *m.js), rule)
            self._add(self.go, (*(f"service/{s}" for s in flat), *m.go), rule)
            self._add(self.java, (*(f"services.{s}" for s in flat), *m.java), rule)
            self._add(self.ruby, (*(f"aws-sdk-{s}" for s in flat), *m.ruby), rule)
            self._add(self.provisioners, m.k8s_provisioners, rule)
            self._add(self.ingress_classes, m.k8s_ingress_classes, rule)
            self._add(self.actions, m.actions, rule)
            self._add(self.files, m.files, rule)
            self._add(self.sam_events, m.sam_events, rule)
        # Longest first, so that aws_cloudwatch_event_ (EventBridge) wins over aws_cloudwatch_ (CloudWatch).
        self._terraform = sorted(
            ((name, rule) for rule in self.rules for name in rule.match.terraform), key=lambda p: -len(p[0])
        )
        self._cloudformation = sorted(
            ((name, rule) for rule in self.rules for name in rule.match.cloudformation), key=lambda p: -len(p[0])
        )
        self.modules = [(name, rule) for rule in self.rules for name in rule.match.terraform_modules]
        self.annotations = sorted(
            ((name, rule) for rule in self.rules for name in rule.match.k8s_annotations), key=lambda p: -len(p[0])
        )
        self.images = sorted(
            ((name, rule) for rule in self.rules for name in rule.match.images), key=lambda p: -len(p[0])
        )

    @staticmethod
    def _add(table: dict[str, Rule], names: Iterable[str], rule: Rule) -> None:
        for name in names:
            table.setdefault(name, rule)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @staticmethod
    def _typed(table: list[tuple[str, Rule]], name: str, prefix_end: str) -> list[Rule]:
        """Rules whose entry is ``name`` or, for entries ending in ``prefix_end``, a prefix of it."""
        found: list[Rule] = []
        for entry, rule in table:
            hit = name.startswith(entry) if entry.endswith(prefix_end) else name == entry
            if hit and rule not in found:
                found.append(rule)
        return found

    def terraform(self, resource_type: str, blocks: set[str]) -> Rule | None:
        """The rule for a Terraform resource type; ``blocks``: the nested blocks it holds."""
        candidates = self._typed(self._terraform, resource_type, "_")
        for rule in candidates:
            if rule.match.terraform_block and rule.match.terraform_block in blocks:
                return rule
        return next((r for r in candidates if not r.match.terraform_block), None)

    def cloudformation(self, resource_type: str, properties: set[str]) -> Rule | None:
        candidates = self._typed(self._cloudformation, resource_type, "::")
        for rule in candidates:
            if rule.match.cloudformation_property and rule.match.cloudformation_property in properties:
                return rule
        return next((r for r in candidates if not r.match.cloudformation_property), None)

    def module(self, source: str) -> Rule | None:
        return next((rule for name, rule in self.modules if name in source), None)

    def annotation(self, key: str) -> Rule | None:
        for entry, rule in self.annotations:
            if key.startswith(entry) if entry.endswith(("-", "/")) else key == entry:
                return rule
        return None

    def image(self, reference: str) -> Rule | None:
        return next((rule for entry, rule in self.images if reference.startswith(entry)), None)

    def host(self, labels: list[str]) -> Rule | None:
        """The rule for an ``*.amazonaws.com`` host, from its labels (the service label is the
        rightmost known one: ``db1.abc.eu-west-1.rds``)."""
        for label in reversed(labels):
            rule = self.hosts.get(label)
            if rule is not None:
                return rule
            if label.startswith("s3-"):  # the legacy s3-<region> endpoints
                return self.hosts.get("s3")
        return None

    def for_service(self, sdk_name: str) -> Rule | None:
        """The rule for an SDK service id (``failover inventory`` labels an account's findings with it)."""
        return self.sdk.get(sdk_name)


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Rules from YAML files (``--rules``); a broken file is a ConfigError naming it."""
    rules: list[Rule] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the rules file: {exc.strerror}") from exc
        rules += _load_file(path, text)
    return RuleSet(rules)


@cache
def shipped_rules() -> RuleSet:
    """The rules that ship with failover (``failover/lint/rules/*.yaml``)."""
    folder = resources.files("failover.lint") / "rules"
    rules: list[Rule] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            rules += _load_file(f"failover/lint/rules/{entry.name}", entry.read_text(encoding="utf-8"))
    return RuleSet(rules)
