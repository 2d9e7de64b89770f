"""Options of the ``powerdns`` DNS adapter."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from failover.dns import NameserverAddress

__all__ = ["PowerDnsOptions"]


class PowerDnsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server_id: str = Field(default="localhost", description="the API's server id (always localhost for pdns_server)")
    nameserver: NameserverAddress = None
    zone_nameservers: list[str] = Field(
        default_factory=lambda: ["ns1.failover.invalid."],
        description="NS records of zones it creates (PowerDNS requires at least one)",
    )
    timeout: float = Field(default=10.0, gt=0)
