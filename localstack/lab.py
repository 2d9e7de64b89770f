"""The embedded lab: real servers on 127.0.0.1, started from the project's own files, no Docker.

Everything lives under one lab directory (``$FAILOVER_LAB_DIR``, default
``~/.local/state/failover/lab``): virtualenvs, server data, logs, ``state.json`` (what runs, on which
ports, started by whom) and the generated ``providers.yaml``. ``up`` twice is harmless; ``down``
stops only servers that ``up`` started, recognised by pid and command line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from failover.filelock import exclusive_lock
from failover.files import write_atomic
from failover.registry import declared_storage_capabilities, load_adapter, load_options_model

from . import process
from .servers import (
    SSH_HOSTS,
    AzuriteServer,
    LabError,
    LocalStackServer,
    PowerDnsServer,
    S3Server,
    Server,
    ServerState,
    SshHostsServer,
    SwiftServer,
)

__all__ = ["Lab", "LabInfo", "default_lab_dir"]

ENV_LAB_DIR = "FAILOVER_LAB_DIR"
READY_TIMEOUT = {"localstack": 180.0, "onprem-s3": 90.0, "onprem-dns": 30.0}

# Which lab server backs which provider, and the variables carrying its credentials (key, secret).
_CREDENTIAL_ENV: dict[str, tuple[str | None, str]] = {
    "localstack": ("FAILOVER_LAB_AWS_ACCESS_KEY_ID", "FAILOVER_LAB_AWS_SECRET_ACCESS_KEY"),
    "onprem-s3": ("FAILOVER_LAB_ONPREM_ACCESS_KEY_ID", "FAILOVER_LAB_ONPREM_SECRET_ACCESS_KEY"),
    "onprem-dns": (None, "FAILOVER_LAB_ONPREM_DNS_API_KEY"),
    "azure-blob": ("FAILOVER_LAB_AZURE_ACCOUNT", "FAILOVER_LAB_AZURE_KEY"),
    "swift": ("FAILOVER_LAB_SWIFT_USER", "FAILOVER_LAB_SWIFT_KEY"),
}


def default_lab_dir() -> Path:
    explicit = os.environ.get(ENV_LAB_DIR)
    if explicit:
        return Path(explicit).expanduser().resolve()
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return (state / "failover" / "lab").resolve()


@dataclass(frozen=True)
class LabInfo:
    root: Path
    providers_file: Path
    servers: dict[str, ServerState]
    health: dict[str, bool]

    def env(self) -> dict[str, str]:
        """Environment variables that point the CLI at the lab (credentials included)."""
        env = {ENV_LAB_DIR: str(self.root), "FAILOVER_PROVIDERS": str(self.providers_file)}
        for name, (key_var, secret_var) in _CREDENTIAL_ENV.items():
            state = self.servers.get(name)
            if state is not None:
                if key_var:
                    env[key_var] = state.access_key_id
                env[secret_var] = state.secret_access_key
        return env

    def to_json(self, *, with_secrets: bool) -> dict[str, Any]:
        servers = {}
        for name, state in self.servers.items():
            data = state.public()
            data["healthy"] = self.health.get(name, False)
            if with_secrets:
                data["secret_access_key"] = state.secret_access_key
            servers[name] = data
        result: dict[str, Any] = {
            "lab_dir": str(self.root),
            "providers_file": str(self.providers_file),
            "servers": servers,
        }
        if with_secrets:
            result["env"] = self.env()
        return result


class Lab:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_lab_dir()).resolve()
        self.state_path = self.root / "state.json"
        self.providers_path = self.root / "providers.yaml"
        self.instances_root = self.root / "instances"
        """Where the onprem side's local compute keeps its instances (processes on 127.0.0.x)."""
        self.servers: list[Server] = [
            LocalStackServer(self.root),
            S3Server(self.root),
            PowerDnsServer(self.root),
            AzuriteServer(self.root),
            SwiftServer(self.root),
            SshHostsServer(self.root),
        ]

    # -- state -------------------------------------------------------------------------------------

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return exclusive_lock(self.root / "lock")

    def _load(self) -> dict[str, ServerState]:
        try:
            raw = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabError(
                f"{self.state_path} is unreadable: {exc}", hint="remove it and run 'failover lab up'"
            ) from exc
        return {name: ServerState(**data) for name, data in raw.get("servers", {}).items()}

    def _save(self, servers: dict[str, ServerState]) -> None:
        write_atomic(
            self.state_path, json.dumps({"servers": {n: vars(s) for n, s in servers.items()}}, indent=2), mode=0o600
        )

    def _running(self, state: ServerState) -> bool:
        """Started by us and still our process."""
        return state.started_by_lab and state.pid is not None and process.matches(state.pid, str(self.root))

    # -- commands ----------------------------------------------------------------------------------

    def up(self, progress: Callable[[str], None] = lambda message: None) -> LabInfo:
        """Start every server that is not already running and healthy; write the providers file."""
        with self._locked():
            states = self._load()
            started: list[ServerState] = []
            try:
                for server in self.servers:
                    previous = states.get(server.name)
                    external = server.external()
                    if external is not None:
                        progress(f"{server.name}: using {external.kind} at {external.endpoint}")
                        states[server.name] = external
                        continue
                    if previous is not None and self._running(previous) and server.healthy(previous):
                        progress(f"{server.name}: already running ({previous.kind}, {previous.endpoint})")
                        continue
                    if previous is not None and self._running(previous):
                        server.stop(previous)  # running but not healthy: restart
                    progress(f"{server.name}: installing and starting")
                    avoid = {p for name, s in states.items() if name != server.name for p in s.ports.values()}
                    state = server.start(previous, avoid)
                    states[server.name] = state
                    started.append(state)
                    self._save(states)
                for server in self.servers:
                    state = states[server.name]
                    timeout = READY_TIMEOUT.get(server.name, 60.0)
                    if not process.wait_until(
                        functools.partial(server.healthy, state),
                        timeout=timeout,
                        interval=0.5,
                        pid=state.pid,
                    ):
                        detail = process.tail(Path(state.log)) if state.log else ""
                        raise LabError(
                            f"{server.name} ({state.kind}) did not become ready at {state.endpoint} "
                            f"within {timeout:.0f} s" + (f"; last log lines:\n{detail}" if detail else ""),
                            hint=f"see {state.log}" if state.log else None,
                        )
                    progress(f"{server.name}: ready ({state.kind} {state.version}, {state.endpoint})")
            except BaseException:
                servers = {server.name: server for server in self.servers}
                for state in started:
                    servers[state.name].stop(state)
                    states.pop(state.name, None)
                self._save(states)
                raise
            self._save(states)
            self._write_providers(states)
            return LabInfo(self.root, self.providers_path, states, dict.fromkeys(states, True))

    def down(self, progress: Callable[[str], None] = lambda message: None) -> list[str]:
        """Stop what ``up`` started, and the onprem side's running instances (they are part of the
        lab's self-hosted cloud). External servers are left alone. Data stays on disk."""
        stopped = []
        stopped_instances = self._stop_instances()
        if stopped_instances:
            progress(f"onprem compute: stopped {len(stopped_instances)} local instance(s)")
        with self._locked():
            states = self._load()
            servers = {server.name: server for server in self.servers}
            for name, state in list(states.items()):
                if self._running(state) and name in servers:
                    progress(f"{name}: stopping {state.kind} (pid {state.pid})")
                    servers[name].stop(state)
                    stopped.append(name)
                state.pid = None
                if not state.started_by_lab:
                    states.pop(name)
            self._save(states)
        return stopped

    def _stop_instances(self) -> list[str]:
        if not self.instances_root.is_dir():
            return []
        compute = load_adapter("compute", "local")(
            "onprem", load_options_model("compute", "local").model_validate({"root": str(self.instances_root)})
        )
        return list(compute.stop_all())

    def status(self) -> LabInfo:
        states = self._load()
        health = {}
        for server in self.servers:
            state = states.get(server.name)
            if state is None:
                continue
            running = self._running(state) or not state.started_by_lab
            health[server.name] = running and server.healthy(state)
        return LabInfo(self.root, self.providers_path, states, health)

    def info(self) -> LabInfo:
        """The recorded state without probing the servers (for ``lab env``)."""
        states = self._load()
        if not states or not self.providers_path.exists():
            raise LabError("the lab is not set up", hint="run: failover lab up")
        return LabInfo(self.root, self.providers_path, states, {})

    # -- providers file ----------------------------------------------------------------------------

    def _write_providers(self, states: dict[str, ServerState]) -> None:
        aws = states["localstack"]
        onprem = states["onprem-s3"]
        vendor = S3Server.vendor(onprem)
        server = declared_storage_capabilities("s3", {"vendor": vendor})
        # libcloud's driver declares what S3 can do; subtract what the server behind it cannot.
        driver = declared_storage_capabilities("libcloud", {"driver": "minio"})
        missing = sorted(c.value for c in driver.operations - server.operations)
        dns = states["onprem-dns"]
        aws_key, aws_secret = _CREDENTIAL_ENV["localstack"]
        onprem_key, onprem_secret = _CREDENTIAL_ENV["onprem-s3"]
        dns_secret = _CREDENTIAL_ENV["onprem-dns"][1]
        azure = states["azure-blob"]
        azure_key, azure_secret = _CREDENTIAL_ENV["azure-blob"]
        swift = states["swift"]
        hosts = states["ssh-hosts"]
        swift_key, swift_secret = _CREDENTIAL_ENV["swift"]
        powerdns = {
            "endpoint": dns.endpoint,
            "credentials": {"secret_env": dns_secret},
            "options": {"nameserver": dns.nameserver} if dns.nameserver else {},
        }
        document = {
            "version": 1,
            "providers": {
                "aws": {
                    "description": f"{aws.kind} {aws.version} at {aws.endpoint} (the AWS side of the lab)",
                    "region": "us-east-1",
                    "endpoint": aws.endpoint,
                    "credentials": {"key_env": aws_key, "secret_env": aws_secret},
                    "storage": {"type": "s3", "options": {"vendor": "localstack"}},
                    "compute": {"type": "ec2"},
                    "dns": {"type": "route53"},
                    "account": {"type": "aws"},
                    # S3 notifications to SQS: what `failover standby --setup-feed` creates and follows.
                    "feed": {"type": "sqs"},
                },
                "aws-west": {
                    "description": "LocalStack's us-west-2 region through libcloud's EC2 driver",
                    "region": "us-west-2",
                    "endpoint": aws.endpoint,
                    "credentials": {"key_env": aws_key, "secret_env": aws_secret},
                    "compute": {"type": "libcloud", "options": {"driver": "ec2"}},
                },
                "onprem": {
                    "description": f"{onprem.kind} {onprem.version} at {onprem.endpoint} (the self-hosted side)",
                    "region": "us-east-1",
                    "endpoint": onprem.endpoint,
                    "credentials": {"key_env": onprem_key, "secret_env": onprem_secret},
                    "storage": {"type": "s3", "options": {"vendor": vendor}},
                    "compute": {
                        "type": "local",
                        "options": {"root": str(self.instances_root), "create_root": True},
                    },
                    "dns": {"type": "powerdns", **powerdns},
                },
                "onprem-libcloud": {
                    "description": f"the same {onprem.kind} and {dns.kind} servers through libcloud's drivers",
                    "endpoint": onprem.endpoint,
                    "credentials": {"key_env": onprem_key, "secret_env": onprem_secret},
                    "storage": {
                        "type": "libcloud",
                        "options": {
                            "driver": "minio",
                            "without": missing,
                            "key_rewrites": {k.value: v.value for k, v in server.key_rewrites.items()},
                            **(
                                {"max_key_segment_bytes": server.limits.max_key_segment_bytes}
                                if server.limits.max_key_segment_bytes
                                else {}
                            ),
                        },
                    },
                    "dns": {
                        "type": "libcloud",
                        **powerdns,
                        "options": {"driver": "powerdns", **powerdns["options"]},  # type: ignore[dict-item]
                    },
                },
                "azure": {
                    "description": f"{azure.kind} {azure.version} at {azure.endpoint} (Azure Blob storage)",
                    "endpoint": azure.endpoint,
                    "credentials": {"key_env": azure_key, "secret_env": azure_secret},
                    "storage": {"type": "libcloud", "options": {"driver": "azure_blobs"}},
                },
                "swift": {
                    "description": f"OpenStack {swift.kind} {swift.version} at {swift.endpoint} (tempauth)",
                    "endpoint": swift.endpoint,
                    "credentials": {"key_env": swift_key, "secret_env": swift_secret},
                    "storage": {
                        "type": "libcloud",
                        "options": {
                            "driver": "openstack_swift",
                            # tempauth answers v1.0 auth, whose reply names no service: say where the account is.
                            "driver_args": {
                                "ex_force_auth_version": "1.0",
                                "ex_force_base_url": SwiftServer.storage_url(swift),
                            },
                        },
                    },
                },
                "hosts": {
                    "description": f"{SSH_HOSTS} machines of your own over SSH ({hosts.kind} {hosts.version})",
                    "compute": {"type": "hosts", "options": SshHostsServer(self.root).options(hosts)},
                },
                "disk": {
                    "description": "a directory of buckets inside the lab directory",
                    "storage": {"type": "local", "options": {"root": str(self.root / "disk"), "create_root": True}},
                },
            },
        }
        header = (
            "# Written by 'failover lab up'. Credentials are referenced, never stored here:\n"
            '# eval "$(failover lab env)" exports them.\n'
        )
        write_atomic(self.providers_path, header + yaml.safe_dump(document, sort_keys=False))
