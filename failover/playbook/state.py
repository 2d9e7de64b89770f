"""A playbook run's persisted state: which steps finished, with what outputs, so a re-run after a
crash resumes at the first unfinished step and a rollback knows what to undo.

One JSON file per run, replaced atomically (written beside, fsynced, renamed, directory fsynced)
after every change: a ``kill -9`` leaves either the previous state or the new one, never half.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import PlaybookError
from ..files import write_atomic
from ..secrets import redact

__all__ = ["DONE", "RunState", "Status", "StepState", "run_dir"]

Status = Literal["pending", "running", "ok", "changed", "skipped", "failed", "waiting", "rolled_back"]
DONE = ("ok", "changed", "skipped")
"""A step in one of these states is not run again (a re-run reports it as done earlier)."""


@dataclass
class StepState:
    id: str
    kind: str
    status: Status = "pending"
    summary: str = ""
    started: float | None = None
    finished: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    """What later steps and the rollback need (fleet addresses, the records as they were)."""
    details: dict[str, Any] = field(default_factory=dict)
    """The step's own report (sync counts, translation table...)."""
    attempts: int = 0

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return round(self.finished - self.started, 3)


@dataclass
class RunState:
    run_id: str
    playbook: str
    name: str
    digest: str
    variables: dict[str, Any]
    started: float = field(default_factory=time.time)
    finished: float | None = None
    outcome: str | None = None
    cutover_at: float | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    path: Path | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: Path) -> RunState | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise PlaybookError(
                f"{path}: the run state cannot be read ({exc})",
                hint="start over with --restart (what the run did stays done; steps are idempotent)",
            ) from None
        steps = {k: StepState(**v) for k, v in raw.pop("steps").items()}
        return cls(**raw, steps=steps, path=path)

    def save(self) -> None:
        assert self.path is not None
        data = asdict(self)
        data.pop("path")
        write_atomic(self.path, redact(json.dumps(data, indent=2, default=str)))

    def step(self, step_id: str, kind: str) -> StepState:
        if step_id not in self.steps:
            self.steps[step_id] = StepState(step_id, kind)
        return self.steps[step_id]


def run_dir(state_root: Path, name: str, path: Path, digest: str) -> tuple[str, Path]:
    """A run's id and directory: one per playbook file and what its steps do (``digest``), so a
    re-run of the same command finds the same run, and so does one whose --var changes no step."""
    identity = json.dumps({"path": str(path.resolve()), "does": digest}, sort_keys=True)
    run_id = f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"
    return run_id, state_root / "runs" / run_id
