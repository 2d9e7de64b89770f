"""Property-based fuzzing of the playbook loader: whatever the input, it either loads or raises
PlaybookError (a message, exit 2), never anything else; and a refused playbook never starts a run."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.errors import PlaybookError
from failover.playbook import load_playbook_text
from tests.unit.test_playbook_loader import GOOD

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE: dict[str, Any] = yaml.safe_load(GOOD)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["{{ source }}", "{{ nope }}", "{{", "aws:", "!!python/object", "*a", "&a x", "\x00", "💥"]),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
)


def loads_or_refuses(text: str) -> None:
    message = "loaded"
    try:
        load_playbook_text(text, "fuzz.yaml")
    except PlaybookError as error:
        message = str(error)
    assert message, "a refusal always says why"


@SETTINGS
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    loads_or_refuses(text)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(GOOD)), st.integers(0, 8), st.text(max_size=6)), max_size=6))
def test_edits_of_a_valid_playbook(edits: list[tuple[int, int, str]]) -> None:
    text = GOOD
    for at, drop, insert in edits:
        text = text[:at] + insert + text[at + drop :]
    loads_or_refuses(text)


@SETTINGS
@given(st.sampled_from(["version", "name", "description", "variables", "steps", "budgets", "on_failure", "zzz"]),
       st.integers(0, 3), st.sampled_from(["id", "kind", "source", "target", "needs", "fleet_of", "ttl", "zzz"]),
       values)  # fmt: skip
def test_any_value_in_any_field(top: str, step: int, field: str, value: Any) -> None:
    document = copy.deepcopy(BASE)
    if top == "steps" and step < len(document["steps"]):
        document["steps"][step][field] = value
    else:
        document[top] = value
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except yaml.YAMLError:
        return
    loads_or_refuses(text)


def test_a_refused_playbook_never_starts_a_run(tmp_path: Path) -> None:
    samples = ["steps: [", "version: 1\nname: x\ndescription: d\nsteps: []\n", GOOD.replace("kind: sync", "kind: nope")]
    for number, text in enumerate(samples):
        path = tmp_path / f"bad-{number}.yaml"
        path.write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "failover", "run", str(path), "--yes"],
            env={**os.environ, "FAILOVER_STATE_DIR": str(tmp_path / "state")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists(), "nothing of a run was written"
