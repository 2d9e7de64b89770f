"""Options of the ``hosts`` compute adapter: a pool of machines reachable over SSH."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["HostEntry", "HostsComputeOptions"]


class HostEntry(BaseModel):
    """One machine of the pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(
        description="where its SSH server listens (and, unless service_address is set, where its instance answers)"
    )
    port: int = Field(default=22, ge=1, le=65535)
    host_key: str = Field(
        description="its SSH host key as 'TYPE BASE64' (a line of ssh-keyscan, without the host): pinned, "
        "a server presenting any other key is refused"
    )
    name: str | None = Field(default=None, description="a name for messages (default: ADDRESS:PORT)")
    user: str | None = Field(default=None, description="login user on this host (default: the pool's user)")
    service_address: str | None = Field(default=None, description="the address the instance's services answer on")
    root: str | None = Field(default=None, description="this host's instance directory (default: the pool's root)")
    vcpus: int = Field(default=1, ge=1, description="what the host offers an instance, for size matching")
    memory_mib: int = Field(default=1024, ge=1)

    @field_validator("host_key")
    @classmethod
    def _two_fields(cls, value: str) -> str:
        parts = value.split()
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
            raise ValueError("expected 'TYPE BASE64', e.g. 'ssh-ed25519 AAAAC3Nza...' (from ssh-keyscan)")
        return " ".join(parts[:2])

    @property
    def label(self) -> str:
        return self.name or f"{self.address}:{self.port}"


class HostsComputeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: tuple[HostEntry, ...] = Field(min_length=1, description="the machines; one instance runs on each")
    user: str = Field(default="root", description="login user (a host may name its own)")
    identity_file: str = Field(
        description="private key file for the login (a path: the key never enters the providers file); "
        "its passphrase, if any, comes from the provider's credentials.secret_env"
    )
    root: str = Field(
        default="~/.failover/instances",
        description="directory on each host for its instance (user-data, console log, state)",
    )
    shell: str = Field(default="/bin/bash", description="runs the user-data script on the host")
    connect_timeout: float = Field(default=10.0, gt=0)
    stop_timeout: float = Field(default=10.0, gt=0, description="seconds between SIGTERM and SIGKILL on stop")
