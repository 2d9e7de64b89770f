"""pytest fixtures for portability drills in your own CI: a running lab of real servers, the
reference platform seeded on it, and a drill runner that rolls back what it did.

Enable the plugin with ``pytest -p failover.testing``, or in your pytest configuration
(``addopts = "-p failover.testing"``), or in the conftest.py at your repository's root
(``pytest_plugins = ["failover.testing"]``); then::

    def test_we_can_leave(failover_seeded_lab, run_drill):
        report = run_drill("playbooks/drill.yaml", variables={"recovery_budget_s": "300"})
        assert report.ok, report.breaches or report.outcome
        assert report.recovery_point_s is not None and report.recovery_point_s < 30  # a standby step measured it

Fixtures:

* ``failover_lab`` (session): starts the lab (LocalStack, the S3-compatible server, PowerDNS) if it
  is not running, points failover at it (``FAILOVER_PROVIDERS`` and the credential variables), and
  stops at the end what it started. ``FAILOVER_LAB_DIR`` chooses the lab directory.
* ``failover_providers`` (session): the lab's providers file, loaded.
* ``failover_seeded_lab`` (session): the lab with the reference platform seeded (``failover lab seed``).
* ``run_drill`` (function): ``run_drill(playbook, variables=..., dry_run=False, rollback_after=True)``
  runs a playbook through the same code as ``failover run`` (approvals pre-approved), with its run
  state in a temporary directory, and afterwards rolls back every run it started, so tests do not
  leak fleets or DNS changes into each other. Its report has ``recovery_time_s`` (run start, or a
  standby step's cutover, to DNS cutover confirmed) and ``recovery_point_s`` (the age of the oldest
  source change not on the target at a standby step's cutover), next to ``budgets`` and ``breaches``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from ..config import Providers, load_providers
from ..playbook import RunOptions, RunReport, load_playbook, provider_lookup, run_playbook

__all__ = ["failover_lab", "failover_providers", "failover_seeded_lab", "run_drill"]

RunDrill = Callable[..., RunReport]


def _lab_module() -> Any:
    # The lab ships as failover.lab (the repository's localstack/ folder); imported by name so the
    # core package never depends on it statically.
    return importlib.import_module("failover.lab")


@pytest.fixture(scope="session")
def failover_lab() -> Iterator[Any]:
    """A running lab (a ``failover.lab.LabInfo``), with the environment pointing failover at it."""
    lab = _lab_module().Lab()
    before = lab.status()
    was_running = bool(before.servers) and all(before.health.get(name) for name in before.servers)
    info = lab.up()  # on a running lab this only rewrites the providers file
    saved = {k: os.environ.get(k) for k in info.env()}
    os.environ.update(info.env())
    yield info
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if not was_running:
        lab.down()


@pytest.fixture(scope="session")
def failover_providers(failover_lab: Any) -> Providers:
    return load_providers(failover_lab.providers_file)


@pytest.fixture(scope="session")
def failover_seeded_lab(failover_lab: Any) -> Any:
    """The lab with the reference platform (media, fleet, zone, services) on its aws side."""
    from click.testing import CliRunner

    from ..cli.main import cli

    result = CliRunner().invoke(cli, ["-q", "lab", "seed"], catch_exceptions=False)
    if result.exit_code != 0:
        pytest.fail(f"failover lab seed failed: {result.output}")
    return failover_lab


@pytest.fixture
def run_drill(failover_providers: Providers, tmp_path: Path) -> Iterator[RunDrill]:
    started: list[tuple[Any, RunOptions]] = []

    def run(
        playbook: str | Path,
        *,
        variables: Mapping[str, str] | None = None,
        dry_run: bool = False,
        rollback_after: bool = True,
        progress: Callable[[str], None] = lambda message: None,
    ) -> RunReport:
        loaded = load_playbook(Path(playbook), dict(variables or {}), provider_lookup(lambda: failover_providers))
        options = RunOptions(state_root=tmp_path / "state", dry_run=dry_run, yes=True, progress=progress)
        report = run_playbook(loaded, failover_providers, options)
        if not dry_run and rollback_after:
            started.append((loaded, options))
        return report

    yield run
    for loaded, options in reversed(started):
        options.rollback = True
        run_playbook(loaded, failover_providers, options)
