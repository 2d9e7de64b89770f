"""The ``hosts`` compute adapter: instances on your own servers, reached over SSH.

The providers file lists the machines (address, port, user, pinned host key) and a key file. Each
machine runs at most one instance: creating one claims a free machine (atomically, on the machine
itself; a claim that a create which died left without an instance is taken back after a minute),
writes the user-data there and runs it as its own session that outlives the SSH connection; stop
ends that session, start runs the user-data again, destroy removes exactly the instance's directory
and the claim. The host side is one POSIX sh script (remote.sh), so a machine needs nothing but
sshd, sh and coreutils. Host keys are pinned: a server presenting another key is refused, never
added.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import secrets
import shlex
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources

import paramiko

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
from failover.errors import AuthError, ConfigError, InvalidRequest, NotFound, ProviderError

from .errors import converted
from .options import HostEntry, HostsComputeOptions

__all__ = ["HostsCompute"]

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
TOKEN_TAG = "failover:client-token"  # noqa: S105 - a tag name
_SCRIPT = resources.files(__package__).joinpath("remote.sh").read_text(encoding="utf-8")


class HostsCompute(Compute):
    options_model = HostsComputeOptions

    def __init__(self, name: str, options: HostsComputeOptions, *, passphrase: str | None = None) -> None:
        super().__init__(name, CAPABILITIES)
        self.options = options
        self._passphrase = passphrase
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._lock = threading.Lock()
        labels = [host.label for host in options.hosts]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"provider {name!r}: hosts are listed twice: {', '.join(labels)}")

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> HostsCompute:
        creds = spec.credentials()
        return cls(spec.provider, spec.options, passphrase=creds.secret.reveal() if creds.secret else None)

    # -- SSH ---------------------------------------------------------------------------------------

    def _client(self, host: HostEntry) -> paramiko.SSHClient:
        with self._lock:
            client = self._clients.get(host.label)
            transport = client.get_transport() if client else None
            if client is not None and transport is not None and transport.is_active():
                return client
            client = paramiko.SSHClient()
            key_type, key_data = host.host_key.split()
            known = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
            with converted("connect", host.label):
                try:
                    pinned = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data))
                except (ValueError, paramiko.SSHException) as exc:
                    raise ConfigError(
                        f"provider {self.name!r}: host {host.label}: host_key is not a key: {exc}"
                    ) from exc
                client.get_host_keys().add(known, key_type, pinned)
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
                client.connect(
                    host.address,
                    port=host.port,
                    username=host.user or self.options.user,
                    key_filename=self.options.identity_file,
                    passphrase=self._passphrase,
                    timeout=self.options.connect_timeout,
                    banner_timeout=self.options.connect_timeout,
                    auth_timeout=self.options.connect_timeout,
                    allow_agent=False,
                    look_for_keys=False,
                )
            self._clients[host.label] = client
            return client

    def _run(self, host: HostEntry, operation: str, *args: str, stdin: bytes = b"") -> str:
        """Run one command of remote.sh on ``host`` (``stdin`` sent to it); its standard output."""
        root = host.root or self.options.root
        command = " ".join(shlex.quote(part) for part in ("sh", "-c", _SCRIPT, "failover-hosts", root, *args))
        client = self._client(host)
        with converted(operation, host.label):
            channel_in, stdout, stderr = client.exec_command(
                command, timeout=self.options.connect_timeout + self.options.stop_timeout + 30
            )
            if stdin:
                channel_in.write(stdin)
            channel_in.channel.shutdown_write()
            output = stdout.read().decode("utf-8", errors="replace")
            errors = stderr.read().decode("utf-8", errors="replace")
            status = stdout.channel.recv_exit_status()
        if status != 0:
            detail = (errors.strip() or output.strip()).splitlines()[-3:]
            if "Permission denied" in errors:
                raise AuthError(f"{host.label}: {' '.join(detail)}", operation=operation, hint="check the root option")
            raise ProviderError(f"{host.label}: exit {status}: {' '.join(detail)}", operation=operation)
        return output

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # -- instances as the hosts hold them ------------------------------------------------------------

    def _address(self, host: HostEntry) -> str:
        return host.service_address or host.address

    def _on_host(self, host: HostEntry) -> list[Instance]:
        instances = []
        for line in self._run(host, "list_instances", "list").splitlines():
            state, _, record = line.partition(" ")
            try:
                data = json.loads(record)
            except ValueError:
                continue  # a record half-written by a create that died: not an instance
            instances.append(
                Instance(
                    id=data["id"],
                    name=data["name"],
                    state=InstanceState.RUNNING if state == "running" else InstanceState.STOPPED,
                    size=data.get("size", "host"),
                    image=data.get("image", "host"),
                    tags=data.get("tags", {}),
                    address=self._address(host),
                    private_address=host.address,
                    created=datetime.fromisoformat(data["created"]) if data.get("created") else None,
                )
            )
        return instances

    def _everywhere(self) -> list[tuple[HostEntry, list[Instance]]]:
        hosts = self.options.hosts
        with concurrent.futures.ThreadPoolExecutor(min(8, len(hosts))) as pool:
            return list(zip(hosts, pool.map(self._on_host, hosts), strict=True))

    def _find(self, instance_id: str) -> tuple[HostEntry, Instance]:
        for host, instances in self._everywhere():
            for instance in instances:
                if instance.id == instance_id:
                    return host, instance
        raise NotFound("no such instance", provider=self.name, target=instance_id)

    # -- the contract ----------------------------------------------------------------------------------

    def _catalog(self) -> Catalog:
        hosts = self.options.hosts
        size = Size("host", min(h.vcpus for h in hosts), min(h.memory_mib for h in hosts), price_per_hour=0.0)
        return Catalog(
            sizes=(size,),
            notes=(
                f"one instance per host ({len(hosts)} hosts); sizes are what the providers file says the hosts offer",
                "the user-data runs as a process session of the login user, not as a system service: "
                "it does not start again when the host reboots",
            ),
        )

    def _list(self, tags: dict[str, str]) -> Sequence[Instance]:
        return [
            instance
            for _, instances in self._everywhere()
            for instance in instances
            if all(instance.tags.get(k) == v for k, v in tags.items())
        ]

    def _get(self, instance_id: str) -> Instance:
        return self._find(instance_id)[1]

    def _user_data(self, instance_id: str) -> str | None:
        host, _ = self._find(instance_id)
        kind, _, script = self._run(host, "user_data", "user-data", instance_id).partition("\n")
        if kind == "missing":
            raise NotFound("no such instance", provider=self.name, target=instance_id)
        return script if kind == "script" else None

    def _create(self, spec: InstanceSpec, size: str, image: str, client_token: str) -> Instance:
        if size != "host":
            raise InvalidRequest(f"unknown size {size!r}; the hosts provider has one size, 'host'", target=spec.name)
        placed = self._everywhere()
        for _, instances in placed:
            for instance in instances:
                if instance.tags.get(TOKEN_TAG) == client_token:
                    return instance  # a retried create: the first one
        instance_id = "h-" + secrets.token_hex(8)
        record = {
            "id": instance_id,
            "name": spec.name,
            "size": size,
            "image": image or "host",
            "tags": {**spec.tags, TOKEN_TAG: client_token},
            "created": datetime.now(UTC).isoformat(),
        }
        encoded = base64.b64encode(json.dumps(record).encode()).decode()
        user_data = spec.user_data.encode() if spec.user_data else b""
        for host, instances in placed:
            if instances:
                continue
            has = "1" if spec.user_data else "0"
            answer = self._run(host, "create", "claim", instance_id, encoded, has, stdin=user_data).strip()
            if answer == "claimed":
                self._run(host, "create", "boot", instance_id, spec.name, self._address(host), self.options.shell)
                return self._get(instance_id)
        raise ProviderError(
            f"no free host: all {len(self.options.hosts)} hosts of {self.name} run an instance",
            provider=self.name,
            operation="create",
            hint="destroy instances you no longer need, or add hosts to the providers file",
        )

    def _start(self, instance_id: str) -> None:
        host, instance = self._find(instance_id)
        if instance.state is not InstanceState.RUNNING:
            self._run(host, "start", "boot", instance_id, instance.name, self._address(host), self.options.shell)

    def _stop(self, instance_id: str) -> None:
        host, _ = self._find(instance_id)
        self._run(host, "stop", "stop", instance_id, str(int(self.options.stop_timeout)))

    def _destroy(self, instance_id: str) -> None:
        host, _ = self._find(instance_id)
        self._run(host, "destroy", "destroy", instance_id, str(int(self.options.stop_timeout)))
