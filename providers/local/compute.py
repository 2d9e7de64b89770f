"""The ``local`` compute adapter: instances are processes on this host.

Each instance gets its own loopback address (127.0.0.2 upwards) and its own directory, where its
cloud-init-style user-data script runs in a new session with ``INSTANCE_ID``, ``INSTANCE_NAME`` and
``INSTANCE_ADDRESS`` set, so a workload binds to its own address and a drill really starts it on the
target and probes it over HTTP. The instance runs while processes of that session run; stop and
destroy end them; start runs the user-data again (there is no disk image to boot). State is one
JSON file per instance, so it survives a restart of the CLI.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from failover.compute import (
    Catalog,
    Compute,
    ComputeCapabilities,
    ComputeCapability,
    Instance,
    InstanceSpec,
    InstanceState,
    Size,
)
from failover.config import ServiceSpec
from failover.errors import InvalidRequest, NotFound, ProviderError
from failover.filelock import exclusive_lock
from failover.files import write_atomic

from .options import LocalComputeOptions

__all__ = ["LocalCompute"]

CAPABILITIES = ComputeCapabilities(
    frozenset(
        {
            ComputeCapability.START_STOP,
            ComputeCapability.USER_DATA,
            ComputeCapability.READ_USER_DATA,
            ComputeCapability.TAGS,
        }
    )
)


@dataclass
class _Record:
    id: str
    name: str
    address: str
    size: str
    image: str
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "running"
    session: int = 0
    created: str = ""
    starts: int = 0


def _memory_mib() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


def _arch() -> str:
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


def _session_pids(session: int) -> list[int]:
    """Processes whose session id is ``session`` (all an instance's processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After "comm)": state ppid pgrp session ...; zombies are already gone for our purposes.
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


class LocalCompute(Compute):
    options_model = LocalComputeOptions

    def __init__(self, name: str, options: LocalComputeOptions) -> None:
        super().__init__(name, CAPABILITIES)
        self.options = options
        self.root = Path(options.root).resolve()
        if options.create_root:
            self.root.mkdir(parents=True, exist_ok=True)
        if not self.root.is_dir():
            raise NotFound(
                f"instances directory {self.root} does not exist", provider=name, hint="set create_root: true"
            )

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> LocalCompute:
        return cls(spec.provider, spec.options)

    # -- records -----------------------------------------------------------------------------------

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return exclusive_lock(self.root / ".lock")

    def _records(self) -> list[_Record]:
        records = []
        for meta in sorted(self.root.glob("*/instance.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                records.append(_Record(**json.loads(meta.read_text())))
        return records

    def _record(self, instance_id: str) -> _Record:
        path = self.root / instance_id / "instance.json"
        if "/" in instance_id or instance_id.startswith(".") or not path.is_file():
            raise NotFound("no such instance", provider=self.name, target=instance_id)
        return _Record(**json.loads(path.read_text()))

    def _save(self, record: _Record) -> None:
        folder = self.root / record.id
        folder.mkdir(exist_ok=True)
        write_atomic(folder / "instance.json", json.dumps(asdict(record), indent=2))

    def _state(self, record: _Record) -> InstanceState:
        if record.state == "terminated":
            return InstanceState.TERMINATED
        if record.state == "running" and record.session and _session_pids(record.session):
            return InstanceState.RUNNING
        return InstanceState.STOPPED

    def _instance(self, record: _Record) -> Instance:
        user_data = self.root / record.id / "user-data"
        return Instance(
            id=record.id,
            name=record.name,
            state=self._state(record),
            size=record.size,
            image=record.image,
            tags=record.tags,
            address=record.address,
            private_address=record.address,
            user_data=user_data.read_text() if user_data.exists() else None,
            arch=_arch(),
            created=datetime.fromisoformat(record.created) if record.created else None,
        )

    # -- catalog -----------------------------------------------------------------------------------

    def _catalog(self) -> Catalog:
        host = Size("host", os.cpu_count() or 1, _memory_mib(), _arch(), 0, 0.0)
        return Catalog(
            sizes=(host,),
            notes=("sizes are not enforced: every local instance shares this host's CPUs and memory",),
        )

    # -- instances ---------------------------------------------------------------------------------

    def _list(self, tags: dict[str, str]) -> Sequence[Instance]:
        return [
            self._instance(r)
            for r in self._records()
            if r.state != "terminated" and all(r.tags.get(k) == v for k, v in tags.items())
        ]

    def _get(self, instance_id: str) -> Instance:
        return self._instance(self._record(instance_id))

    def _user_data(self, instance_id: str) -> str | None:
        return self._get(instance_id).user_data

    def _free_address(self) -> str:
        taken = {r.address for r in self._records() if r.state != "terminated"}
        first = ipaddress.IPv4Address(self.options.first_address)
        last = ipaddress.IPv4Address(self.options.last_address)
        address = first
        while address <= last:
            if str(address) not in taken:
                return str(address)
            address += 1
        raise ProviderError(
            f"no free loopback address between {first} and {last}",
            provider=self.name,
            hint="destroy instances you no longer need",
        )

    def _create(self, spec: InstanceSpec, size: str, image: str, client_token: str) -> Instance:
        if size != "host":
            raise InvalidRequest(f"unknown size {size!r}; the local provider has one size, 'host'", target=spec.name)
        with self._locked():
            record = _Record(
                id="i-" + secrets.token_hex(8),
                name=spec.name,
                address=self._free_address(),
                size=size,
                image=image or "host",
                tags={**spec.tags, "failover:client-token": client_token},
                created=datetime.now(UTC).isoformat(),
            )
            folder = self.root / record.id
            folder.mkdir()
            if spec.user_data is not None:
                (folder / "user-data").write_text(spec.user_data)
            self._save(record)
        self._boot(record)
        return self._instance(record)

    def _boot(self, record: _Record) -> None:
        """Run the user-data script in a new session (its processes are the instance)."""
        folder = self.root / record.id
        script = folder / "user-data"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FAILOVER_", "AWS_"))},
            "INSTANCE_ID": record.id,
            "INSTANCE_NAME": record.name,
            "INSTANCE_ADDRESS": record.address,
            "HOME": str(folder),
        }
        has_script = script.exists() and script.read_text().strip()
        argv = [self.options.shell, str(script)] if has_script else ["sleep", "infinity"]
        with open(folder / "console.log", "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - the instance's own boot script
                argv,
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self._locked():
            record.session = process.pid
            record.state = "running"
            record.starts += 1
            self._save(record)

    def _kill_session(self, record: _Record) -> None:
        if not record.session:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            pids = _session_pids(record.session)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _session_pids(record.session):
                time.sleep(0.05)

    def _start(self, instance_id: str) -> None:
        record = self._record(instance_id)
        if record.state == "terminated":
            raise InvalidRequest("the instance is terminated", target=instance_id)
        if self._state(record) is not InstanceState.RUNNING:
            self._boot(record)

    def _stop(self, instance_id: str) -> None:
        record = self._record(instance_id)
        self._kill_session(record)
        with self._locked():
            record.state = "stopped" if record.state != "terminated" else record.state
            self._save(record)

    def _destroy(self, instance_id: str) -> None:
        record = self._record(instance_id)
        self._kill_session(record)
        with self._locked():
            shutil.rmtree(self.root / record.id, ignore_errors=True)

    def stop_all(self) -> list[str]:
        """Stop every running instance (the lab does this when it goes down)."""
        stopped = []
        for record in self._records():
            if self._state(record) is InstanceState.RUNNING:
                self._stop(record.id)
                stopped.append(record.id)
        return stopped
