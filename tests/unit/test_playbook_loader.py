"""Playbooks are checked whole before anything runs: every malformed one is refused with its
file:line and what to do."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from failover.errors import PlaybookError
from failover.playbook import load_playbook, load_playbook_text, parse_variables, provider_lookup
from failover.playbook.schema import DnsCutoverStep, SyncStep

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"

GOOD = """\
version: 1
name: small
description: a small valid playbook
variables: {source: aws, target: onprem, ttl: 60}
steps:
  - id: copy
    kind: sync
    source: "{{ source }}:"
    target: "{{ target }}:"
  - id: move
    kind: rehost
    source: "{{ source }}"
    target: "{{ target }}"
    select: {app: social}
    needs: [copy]
  - id: prepare
    kind: dns_prepare
    source: "{{ source }}"
    target: "{{ target }}"
    zone: social.example
    fleet_of: move
    ttl: "{{ ttl }}"
  - id: cut
    kind: dns_cutover
    source: "{{ source }}"
    target: "{{ target }}"
    zone: social.example
    fleet_of: move
    ttl: "{{ ttl }}"
"""


# Each line refers to the previous one ten times: a million values from a few hundred bytes.
ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
)


def load(text: str, **overrides: str) -> object:
    return load_playbook_text(textwrap.dedent(text), "play.yaml", overrides)


def refused(text: str, *expected: str, **overrides: str) -> str:
    with pytest.raises(PlaybookError) as raised:
        load(text, **overrides)
    message = str(raised.value) + (raised.value.hint or "")
    for part in expected:
        assert part in message, message
    return message


def test_a_valid_playbook_resolves_variables_with_their_types_and_orders_steps() -> None:
    loaded = load_playbook_text(GOOD, "play.yaml")
    steps = {s.id: s for s in loaded.playbook.steps}
    assert isinstance(steps["copy"], SyncStep) and steps["copy"].source == "aws:"
    cut = steps["cut"]
    assert isinstance(cut, DnsCutoverStep) and cut.ttl == 60  # "{{ ttl }}" stayed a number
    # dns_prepare needs only the old fleet, so it is not held back behind the rehost step.
    assert [s.id for s in loaded.order] == ["copy", "move", "prepare", "cut"]
    assert load_playbook_text(GOOD, "play.yaml", {"ttl": "30"}).variables["ttl"] == 30


def test_the_run_identity_follows_text_and_variables() -> None:
    first = load_playbook_text(GOOD, "play.yaml")
    assert load_playbook_text(GOOD, "play.yaml").digest == first.digest
    assert load_playbook_text(GOOD, "play.yaml", {"ttl": "30"}).digest != first.digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nname: x\n  bad: [indent\n", ["play.yaml:3"]),
        ("version: 1\nname: x\nname: y\n", ["play.yaml:3", "duplicate key 'name'"]),
        ("version: 1\nname: !!python/object:os.system x\n", ["play.yaml:2", "unsupported tag"]),
        (ALIAS_BOMB, ["alias bomb"]),
        ("- just\n- a list\n", ["expected a mapping"]),
    ],
    ids=["syntax", "duplicate-key", "python-tag", "alias-bomb", "not-a-mapping"],
)
def test_unsafe_or_broken_yaml_is_refused_with_its_location(text: str, expected: list[str]) -> None:
    refused(text, *expected)


def test_unknown_fields_and_kinds_are_named_with_line_and_step() -> None:
    message = refused(GOOD.replace("    select: {app: social}\n", "    selct: {app: social}\n"), "play.yaml:14")
    assert "steps.1.selct (step 'move'): unknown field" in message
    refused(GOOD.replace("kind: sync", "kind: rsync"), "play.yaml:7", "unknown step kind", "dns_cutover")
    refused(GOOD.replace("    kind: sync\n", ""), "missing field 'kind'")
    refused(GOOD.replace("version: 1", "version: 2"), "play.yaml:1", "version")
    refused(GOOD.replace('ttl: "{{ ttl }}"', "ttl: -5", 1), "ttl", "greater than or equal to 1")


def test_secrets_only_by_reference() -> None:
    inline = GOOD + "  - {id: tell, kind: notify, url: 'https://chat.example/x', message: m, token: hunter2}\n"
    message = refused(inline, "play.yaml:30", "a secret may not be written", "{env: VARIABLE_NAME}")
    assert "hunter2" not in message
    refused(GOOD.replace("ttl: 60}", "ttl: 60, api_token: abc}"), "play.yaml:4", "a secret may not be written")
    by_reference = GOOD + (
        "  - {id: tell, kind: notify, url: 'https://chat.example/x', message: m,\n"
        "     headers: {Authorization: {env: CHAT_TOKEN}}}\n"
    )
    assert load(by_reference).playbook.steps[-1].headers["Authorization"].env == "CHAT_TOKEN"  # type: ignore[attr-defined,union-attr]


def test_variables_must_be_declared_and_typed() -> None:
    refused(GOOD.replace('"{{ source }}:"', '"{{ sauce }}:"'), "play.yaml:8", "unknown variable 'sauce'")
    refused(GOOD, "declares no variable 'region'", region="eu-west-1")
    refused(GOOD, "--var ttl=soon: expected a number", ttl="soon")
    with pytest.raises(PlaybookError, match="NAME=VALUE"):
        parse_variables(["no-equals"])


def test_a_variable_may_default_to_another_one() -> None:
    text = GOOD.replace(
        "variables: {source: aws, target: onprem, ttl: 60}",
        'variables: {source: aws, target: onprem, ttl: 60, compute: "{{ target }}", wait: "{{ ttl }}"}',
    )
    text = text.replace('target: "{{ target }}"\n    select', 'target: "{{ compute }}"\n    select')
    steps = {s.id: s for s in load_playbook_text(text, "play.yaml").playbook.steps}
    assert steps["move"].target == "onprem"  # type: ignore[union-attr]
    loaded = load_playbook_text(text, "play.yaml", {"target": "elsewhere"})
    assert loaded.variables["compute"] == "elsewhere", "it follows the --var override"
    assert loaded.variables["wait"] == 60, "a whole reference keeps the type"
    assert load_playbook_text(text, "play.yaml", {"compute": "hosts"}).variables["compute"] == "hosts"
    cyclic = GOOD.replace("ttl: 60}", 'ttl: 60, a: "{{ b }}", b: "{{ a }}"}')
    refused(cyclic, "cycle", "a, b")
    refused(GOOD.replace("ttl: 60}", 'ttl: 60, a: "{{ nope }}"}'), "refers to 'nope'")


def test_the_step_graph_is_checked() -> None:
    refused(GOOD.replace("needs: [copy]", "needs: [paste]"), "play.yaml:15", "needs 'paste'")
    refused(GOOD.replace("id: move", "id: copy").replace("fleet_of: move", "fleet_of: copy"), "used twice")
    refused(GOOD.replace("fleet_of: move\n    ttl", "fleet_of: copy\n    ttl", 1), "is not a rehost step")
    cycle = GOOD.replace("    select: {app: social}\n    needs: [copy]", "    select: {app: social}\n    needs: [cut]")
    refused(cycle, "cycle")


def test_shipped_playbooks_are_valid() -> None:
    endpoints = {"providers.aws.endpoint": "http://aws.invalid", "providers.onprem.endpoint": "http://onprem.invalid"}
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        loaded = load_playbook(path, lookup=endpoints.get)
        text = path.read_text()
        assert text.startswith(f"# {loaded.playbook.name}:"), f"{path.name} explains itself at the top"
    assert provider_lookup(lambda: None)("not.a.provider.variable") is None  # type: ignore[arg-type,return-value]
