"""Session fixtures: a running lab of real servers (started here if it is not already running, and
then stopped at the end), and its providers file with credentials in the environment."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest

# The shared suites live outside test modules; let pytest explain their failed asserts too.
pytest.register_assert_rewrite("tests.conformance")

from failover.lab import Lab, LabInfo  # noqa: E402

from failover.config import Providers, load_providers  # noqa: E402

from .conformance.divergences import ENV_SERVER_KIND  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The same places `make test` uses, so running pytest directly reuses its lab and virtualenvs.
os.environ.setdefault("FAILOVER_LAB_DIR", str(REPO / ".lab" / "test"))
os.environ.setdefault("FAILOVER_LAB_CACHE", str(REPO / ".lab" / "cache"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    info = Lab().status()
    if not info.servers:
        return ["lab: not running yet (the session starts it)"]
    return [
        f"lab {name}: {state.kind} {state.version} at {state.endpoint} "
        f"({'healthy' if info.health.get(name) else 'NOT healthy'})"
        for name, state in info.servers.items()
    ]


@pytest.fixture(scope="session")
def lab(failover_lab: LabInfo) -> LabInfo:
    """The lab, from failover's own pytest plugin (failover.testing), as users get it."""
    os.environ[ENV_SERVER_KIND] = failover_lab.servers["onprem-s3"].kind.split()[0]
    return failover_lab


@pytest.fixture(scope="session")
def lab_providers(lab: LabInfo) -> Providers:
    return load_providers(lab.providers_file)


# -- a per-provider summary: passed / skipped by declaration / known divergences --------------------

_outcomes: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
_SUITES = {
    "tests/providers/test_storage_": "storage",
    "tests/providers/test_compute_": "compute",
    "tests/providers/test_dns_": "dns",
}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    parts = report.nodeid.split("::")
    suite = next((name for prefix, name in _SUITES.items() if parts[0].startswith(prefix)), None)
    if suite is None or len(parts) <= 2:
        return
    cls = parts[1]
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if hasattr(report, "wasxfail"):
            kind = "known divergence" if report.skipped else "XPASS (remove from divergences.yaml)"
        elif report.skipped:
            reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
            kind = "skipped by declaration" if "declared:" in reason else "skipped OTHERWISE"
        else:
            kind = report.outcome
        _outcomes[suite][cls][kind] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for suite, classes in sorted(_outcomes.items()):
        terminalreporter.section(f"{suite} conformance per provider")
        for cls, counts in sorted(classes.items()):
            parts = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
            terminalreporter.write_line(f"{cls}: {parts}")
