"""Bucket settings, provider-neutrally: what a bucket needs besides its objects for a platform to work
on the new side (media public for reads, browsers' CORS, versioning, lifecycle rules...).

The neutral form of each setting is S3's own shape (the API most platforms leave, and the one most
stores imitate): CORS rules and lifecycle rules as S3's ``CORSRules`` and ``Rules``, a website as
``IndexDocument``/``ErrorDocument``. A store declares which settings it can hold
(``StoreCapabilities.settings``); :func:`plan_settings` decides what of a source's settings each
target can take, rewriting what names the source (bucket ARNs in a policy), and says why the rest
cannot be carried. Nothing here talks to a provider.
"""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "CORS_METHODS",
    "BucketSettings",
    "HeldSettings",
    "Setting",
    "SettingOutcome",
    "SettingsPlan",
    "cors_as_one_rule",
    "cors_rules_merged",
    "differences",
    "plan_settings",
    "split_policy",
]


class Setting(enum.StrEnum):
    PUBLIC_READ = "public_read"
    """Anyone may read the bucket's objects (not list them): an S3 policy statement granting
    s3:GetObject to "*", a public-read ACL, Azure's "blob" access level, Swift's ".r:*" read ACL."""
    POLICY = "policy"
    """Access policy statements other than public read (S3 bucket policy JSON)."""
    CORS = "cors"
    LIFECYCLE = "lifecycle"
    VERSIONING = "versioning"
    WEBSITE = "website"
    ENCRYPTION = "encryption"
    """Default encryption of new objects: "AES256" (keys the store manages) or "aws:kms"."""
    TAGS = "tags"
    """The bucket's own tags."""


@dataclass(frozen=True)
class BucketSettings:
    """What one bucket has set (an unset setting is its empty value)."""

    public_read: bool = False
    policy: Mapping[str, Any] | None = None
    cors: tuple[Mapping[str, Any], ...] = ()
    lifecycle: tuple[Mapping[str, Any], ...] = ()
    versioning: bool = False
    website: Mapping[str, Any] | None = None
    encryption: Mapping[str, Any] | None = None
    """S3's ServerSideEncryptionConfiguration rule: {"SSEAlgorithm": "AES256"} or with "KMSMasterKeyID"."""
    tags: Mapping[str, str] = field(default_factory=dict)

    def present(self) -> frozenset[Setting]:
        """The settings that are set."""
        return frozenset(s for s in Setting if _value(self, s) not in (False, None, (), {}))

    def only(self, settings: frozenset[Setting]) -> BucketSettings:
        """A copy with every other setting unset."""
        empty = BucketSettings()
        return replace(self, **{s.value: _value(empty, s) for s in Setting if s not in settings})

    def describe(self) -> dict[str, Any]:
        """JSON-ready, for reports and the inventory (only what is set)."""
        return {s.value: _json_ready(_value(self, s)) for s in Setting if s in self.present()}


def _value(settings: BucketSettings, setting: Setting) -> Any:
    return getattr(settings, setting.value)


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class SettingOutcome:
    """One setting of one bucket pair: ``carried`` (written and read back the same), ``translated``
    (written in the target's own terms, read back), ``not_carried`` (why), ``not_stored`` (the target
    accepted it and does not hold it: reading back is the only proof), ``planned`` (a dry run)."""

    setting: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class SettingsPlan:
    """What to write to the target, and what the target will not hold (with reasons)."""

    write: BucketSettings
    outcomes: tuple[SettingOutcome, ...]


@dataclass(frozen=True)
class HeldSettings:
    """Settings in the form one target holds them: what writing them makes it read back. A target
    whose terms differ from S3's translates (Swift keeps one origin list for CORS; Azure's CORS
    rules are its storage account's): ``outcomes`` say what was translated and how
    (``translated``), and what of a setting it cannot keep (``not_carried``)."""

    settings: BucketSettings
    outcomes: tuple[SettingOutcome, ...] = ()


# -- CORS -------------------------------------------------------------------------------------------

CORS_METHODS = ("DELETE", "GET", "HEAD", "POST", "PUT")
"""Every method an S3 CORS rule can allow."""


def cors_rule_normal(rule: Mapping[str, Any]) -> dict[str, Any]:
    """An S3 CORS rule without what no store holds but S3 (its ID), methods upper-case, a zero
    max age as none, empty lists left out: the form rules are compared and merged in."""
    out: dict[str, Any] = {}
    for name in ("AllowedOrigins", "AllowedMethods", "AllowedHeaders", "ExposeHeaders"):
        values = [str(v) for v in rule.get(name) or []]
        if name == "AllowedMethods":
            values = [v.upper() for v in values]
        if values:
            out[name] = values
    if rule.get("MaxAgeSeconds"):
        out["MaxAgeSeconds"] = int(rule["MaxAgeSeconds"])
    return out


def _exact_origins(rules: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Origins a store that matches origins exactly (or all of them, "*") can hold, and the others
    (S3's "https://*.example.com" patterns)."""
    exact: list[str] = []
    patterns: list[str] = []
    for rule in rules:
        for origin in rule.get("AllowedOrigins") or []:
            kept = exact if origin == "*" or "*" not in origin else patterns
            if origin not in kept:
                kept.append(origin)
    return exact, patterns


def cors_as_one_rule(rules: Sequence[Mapping[str, Any]]) -> tuple[tuple[Mapping[str, Any], ...], list[str]]:
    """S3 CORS rules as the one rule of a store that keeps one origin list per bucket and allows
    every method and request header for those origins (Swift): the rule, and each way it differs
    from the source's rules (for the plan and the report). Origin patterns are not carried: widening
    them to every origin would let any site in."""
    if not rules:
        return (), []
    normal = [cors_rule_normal(r) for r in rules]
    origins, patterns = _exact_origins(normal)
    notes = [f"origin pattern {p} not carried (origins match exactly or all, '*')" for p in patterns]
    if not origins:
        return (), notes
    methods = sorted({m for r in normal for m in r.get("AllowedMethods", [])})
    expose = sorted({h for r in normal for h in r.get("ExposeHeaders", [])})
    ages = sorted({r["MaxAgeSeconds"] for r in normal if "MaxAgeSeconds" in r})
    rule: dict[str, Any] = {"AllowedOrigins": origins, "AllowedMethods": list(CORS_METHODS), "AllowedHeaders": ["*"]}
    if expose:
        rule["ExposeHeaders"] = expose
    if ages:
        rule["MaxAgeSeconds"] = ages[0]
    if len(normal) > 1:
        notes.append(f"{len(normal)} rules merged into one (one origin list per bucket)")
    if methods != list(CORS_METHODS):
        notes.append(f"every method allowed for these origins (the source allowed {', '.join(methods)})")
    if any(r.get("AllowedHeaders") != ["*"] for r in normal):
        notes.append("every request header allowed")
    if len(ages) > 1:
        notes.append(f"max age {ages[0]} s, the shortest of the rules'")
    return (rule,), notes


def cors_rules_merged(
    existing: Sequence[Mapping[str, Any]], added: Sequence[Mapping[str, Any]]
) -> tuple[tuple[Mapping[str, Any], ...], int, list[str]]:
    """``added`` rules joined to rules a store keeps for more than this bucket (Azure's account):
    rules it has already are not added twice, so a re-run changes nothing. The merged rules, how
    many are new, and the origin patterns left out (origins match exactly or all)."""
    merged = [cors_rule_normal(r) for r in existing]
    seen = {_normal(r) for r in merged}
    new = 0
    notes: list[str] = []
    for rule in (cors_rule_normal(r) for r in added):
        origins, patterns = _exact_origins([rule])
        notes.extend(f"origin pattern {p} not carried (origins match exactly or all, '*')" for p in patterns)
        if not origins:
            continue
        rule = {**rule, "AllowedOrigins": origins}
        if _normal(rule) not in seen:
            seen.add(_normal(rule))
            merged.append(rule)
            new += 1
    return tuple(merged), new, notes


# -- policies ---------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and set(principal) == {"AWS"} and _as_list(principal["AWS"]) == ["*"]


def _public_read_statement(statement: Mapping[str, Any], bucket: str) -> bool:
    """Exactly "anyone may GET every object of ``bucket``": nothing narrower, nothing more."""
    actions = {a.lower() for a in _as_list(statement.get("Action", []))}
    resources = _as_list(statement.get("Resource", []))
    return (
        statement.get("Effect") == "Allow"
        and _is_anyone(statement.get("Principal"))
        and "Condition" not in statement
        and "NotAction" not in statement
        and "NotPrincipal" not in statement
        and actions == {"s3:getobject"}
        and resources == [f"arn:aws:s3:::{bucket}/*"]
    )


def split_policy(policy: Mapping[str, Any] | None, bucket: str) -> tuple[bool, Mapping[str, Any] | None]:
    """A bucket policy as (public read?, the other statements as a policy, or None)."""
    if not policy:
        return False, None
    statements = _as_list(policy.get("Statement", []))
    public = [s for s in statements if isinstance(s, Mapping) and _public_read_statement(s, bucket)]
    rest = [s for s in statements if s not in public]
    remainder = {**policy, "Statement": rest} if rest else None
    return bool(public), remainder


def policy_document(settings: BucketSettings, bucket: str) -> dict[str, Any] | None:
    """The S3 bucket policy that expresses ``public_read`` and ``policy`` for ``bucket``."""
    statements = list(_as_list((settings.policy or {}).get("Statement", []))) if settings.policy else []
    if settings.public_read:
        statements.insert(
            0,
            {
                "Sid": "FailoverPublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
        )
    if not statements:
        return None
    return {"Version": (settings.policy or {}).get("Version", "2012-10-17"), "Statement": statements}


def _rewrite_arns(value: Any, source: str, target: str) -> Any:
    prefix = f"arn:aws:s3:::{source}"
    if isinstance(value, str):
        if value == prefix or value.startswith(prefix + "/"):
            return f"arn:aws:s3:::{target}" + value[len(prefix) :]
        return value
    if isinstance(value, list):
        return [_rewrite_arns(v, source, target) for v in value]
    if isinstance(value, Mapping):
        return {k: _rewrite_arns(v, source, target) for k, v in value.items()}
    return value


def _carry_policy(policy: Mapping[str, Any], source: str, target: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Statements whose principals mean the same on any store ("*") are carried with the bucket's
    resource ARNs rewritten for the target; statements naming principals of the source's account
    have no equivalent there and are listed."""
    carried, dropped = [], []
    for index, statement in enumerate(_as_list(policy.get("Statement", []))):
        label = statement.get("Sid") or f"statement {index + 1}" if isinstance(statement, Mapping) else str(index)
        if not isinstance(statement, Mapping):
            dropped.append(f"{label}: not a statement")
        elif "NotPrincipal" in statement or not _is_anyone(statement.get("Principal")):
            principal = json.dumps(statement.get("Principal", statement.get("NotPrincipal")))
            dropped.append(f"{label}: principal {principal} belongs to the source's account")
        else:
            carried.append(_rewrite_arns(copy.deepcopy(dict(statement)), source, target))
    document = {"Version": policy.get("Version", "2012-10-17"), "Statement": carried} if carried else None
    return document, dropped


# -- planning -----------------------------------------------------------------------------------------

_WHY_NOT = {
    Setting.PUBLIC_READ: "the target has no way to let anyone read a bucket's objects",
    Setting.POLICY: "the target holds no access policies",
    Setting.CORS: "the target holds no CORS rules for a bucket",
    Setting.LIFECYCLE: "the target holds no lifecycle rules for a bucket",
    Setting.VERSIONING: "the target has no bucket versioning",
    Setting.WEBSITE: "the target serves no bucket as a website",
    Setting.ENCRYPTION: "the target has no default encryption setting for a bucket",
    Setting.TAGS: "the target holds no bucket tags",
}


def plan_settings(
    source: BucketSettings,
    source_bucket: str,
    target_bucket: str,
    holds: frozenset[Setting],
    *,
    reasons: Mapping[Setting, str] | None = None,
    implied: Mapping[Setting, str] | None = None,
) -> SettingsPlan:
    """What of ``source`` a target that ``holds`` these settings takes. ``reasons``: the target's own
    words for what it does not hold (its declaration), else a generic reason; ``implied``: what it
    always has (nothing to write: encryption at rest with keys it manages)."""
    outcomes: list[SettingOutcome] = []
    write = source
    implied = implied or {}
    if Setting.ENCRYPTION in implied and source.encryption and not source.encryption.get("KMSMasterKeyID"):
        outcomes.append(SettingOutcome("encryption", "translated", implied[Setting.ENCRYPTION]))
        write = replace(write, encryption=None)
    if Setting.POLICY in source.present():
        assert source.policy is not None
        if Setting.POLICY in holds:
            document, dropped = _carry_policy(source.policy, source_bucket, target_bucket)
            write = replace(write, policy=document)
            outcomes.extend(SettingOutcome("policy", "not_carried", why) for why in dropped)
        else:
            write = replace(write, policy=None)
    translated = {Setting(o.setting) for o in outcomes if o.outcome == "translated"}
    for setting in sorted(source.present() - translated, key=list(Setting).index):
        if setting not in holds:
            why = (reasons or {}).get(setting) or _WHY_NOT[setting]
            outcomes.append(SettingOutcome(setting.value, "not_carried", why))
    if source.encryption and Setting.ENCRYPTION in holds and source.encryption.get("KMSMasterKeyID"):
        write = replace(write, encryption={"SSEAlgorithm": "AES256"})
        outcomes.append(
            SettingOutcome(
                "encryption",
                "not_carried",
                f"KMS key {source.encryption['KMSMasterKeyID']} belongs to the source's account: "
                "the target encrypts with keys it manages (AES256) instead",
            )
        )
    return SettingsPlan(write=write.only(holds), outcomes=tuple(outcomes))


def differences(wanted: BucketSettings, found: BucketSettings, settings: Sequence[Setting]) -> list[Setting]:
    """The settings among ``settings`` whose read-back value is not what was written."""
    return [s for s in settings if _normal(_value(wanted, s)) != _normal(_value(found, s))]


def _normal(value: Any) -> Any:
    """Order-insensitive form: servers return rules and lists in their own order and defaults."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _normal(v)) for k, v in value.items() if v not in (None, [], {})))
    if isinstance(value, list | tuple):
        items = [_normal(v) for v in value]
        return tuple(sorted(items, key=repr))
    return value
